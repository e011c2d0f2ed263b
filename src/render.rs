//! The edge between the verbs and the terminal: a verb's typed value becomes the
//! text, `--dry-run` lines or `--json` document its caller asked for. The only
//! place that makes JSON of a verb's value; the front ends that read values (CNI,
//! `watch`) read them as they are and never come here.

use serde_json::json;

use crate::attach::Attachment;
use crate::model::RunOpts;
use crate::report::{Outcome, Said, Verb};

/// An attach: `--dry-run`'s steps, one to a line or as `{"dry_run": true, "steps"}`;
/// with `--json` the attachment as read back; else only what it said.
pub fn attachment(opts: &RunOpts, verb: Verb<Attachment>) -> Outcome {
    let Said { value, notes } = match verb {
        Ok(said) => said,
        Err(failed) => return failed.into(),
    };
    match value {
        Attachment::Planned(steps) => {
            let lines: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
            match opts.json {
                true => Outcome::Json {
                    doc: json!({ "changed": true, "dry_run": true, "steps": lines }),
                    notes,
                    code: 0,
                },
                false => Outcome::Printed { lines, notes },
            }
        }
        Attachment::Done(Some(attached)) if opts.json => {
            Outcome::Json { doc: serde_json::to_value(attached).expect("plain data"), notes, code: 0 }
        }
        Attachment::Done(_) => Outcome::Done(notes),
    }
}
