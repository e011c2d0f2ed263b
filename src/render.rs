//! The edge between the verbs and the terminal: a verb's typed value becomes the
//! text, `--dry-run` lines or `--json` document its caller asked for. The only
//! place that makes JSON of a verb's value; the front ends that read values (CNI,
//! `watch`) read them as they are and never come here.

use serde::Serialize;
use serde_json::json;

use crate::attach::Attachment;
use crate::lifecycle::check::CheckReport;
use crate::lifecycle::del::{Detached, Removed};
use crate::lifecycle::gc::{Collected, Garbage, GarbageKind};
use crate::lifecycle::ls::Listing;
use crate::model::RunOpts;
use crate::report::{self, Outcome, Said, Verb};

/// An attach: `--dry-run`'s steps, one to a line or as `{"dry_run": true, "steps"}`;
/// with `--json` the attachment as read back; else only what it said.
pub fn attachment(opts: &RunOpts, verb: Verb<Attachment>) -> Outcome {
    let Said { value, notes, notices } = match verb {
        Ok(said) => said,
        Err(failed) => return failed.into(),
    };
    let outcome = match value {
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
            Outcome::Json { doc: document(&attached), notes, code: 0 }
        }
        Attachment::Done(_) => Outcome::Done(notes),
    };
    match notices.is_empty() {
        true => outcome,
        false => Outcome::Noticed { notices, then: Box::new(outcome) },
    }
}

/// `--json` for a verb that failed: `{"error", "rollback_errors"}` (see `report::json`).
fn edge(opts: &RunOpts, outcome: Outcome) -> Outcome {
    match opts.json {
        true => report::json(outcome),
        false => outcome,
    }
}

fn document(value: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(value).expect("plain data")
}

/// `del`: what it removed, or why nothing; with `--dry-run` what it would do.
pub fn removed(opts: &RunOpts, verb: Verb<Removed>) -> Outcome {
    let outcome = match verb {
        Err(failed) => failed.into(),
        Ok(Said { value: Removed::Nothing(why), notes, .. }) if opts.json => {
            let doc = json!({ "removed": false, "nothing_to_remove": why, "steps": [] });
            Outcome::Json { doc, notes, code: 0 }
        }
        Ok(Said { value: Removed::Nothing(why), mut notes, .. }) => {
            notes.push(format!("nothing to remove: {why}"));
            Outcome::Done(notes)
        }
        Ok(Said { value: Removed::Found(r), notes, .. }) => removal(opts, *r, notes),
    };
    edge(opts, outcome)
}

fn removal(opts: &RunOpts, r: Detached, mut notes: Vec<String>) -> Outcome {
    // In the order they are done: the clients first, then the links, then the routes.
    let mut shown: Vec<String> = r.stopped.iter().map(|k| format!("stop {k}")).collect();
    shown.extend(r.steps.iter().map(|s| s.to_string()));
    shown.extend(r.put_back.iter().map(|p| p.to_string()));
    let a = &r.found.alias;
    if opts.json {
        let doc = json!({
            "guest": r.guest,
            "guest_ref": a.guest.to_string(),
            "container_if": a.container_if,
            "host_if": a.host_if,
            "kind": a.kind.as_str(),
            "host_end": r.found.host_end,
            "removed": !r.dry_run,
            "steps": shown,
            "routes_put_back": r.put_back.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "dhcp_stopped": r.stopped,
        });
        return Outcome::Json { doc, notes, code: 0 };
    }
    if r.dry_run {
        return Outcome::Printed { lines: shown, notes };
    }
    if opts.verbose {
        notes.extend(shown);
    }
    let end = r.found.host_end.as_deref().map_or(String::new(), |e| format!(" (host end {e})"));
    notes.push(format!("removed {} of {} from {}{end}", a.container_if, r.guest, a.host_if));
    notes.extend(r.put_back.iter().map(|p| format!("put back {}", p.describe())));
    notes.extend(r.stopped.iter().map(|k| format!("stopped {k}")));
    Outcome::Done(notes)
}

/// `check`: exit 0 when as attached, else 1 with one line per difference.
pub fn check_report(opts: &RunOpts, verb: Verb<CheckReport>) -> Outcome {
    let Said { value: v, notes, .. } = match verb {
        Ok(said) => said,
        Err(failed) => return edge(opts, failed.into()),
    };
    let code = if v.ok() { 0 } else { 1 };
    if opts.json {
        let a = v.alias.as_ref();
        let doc = json!({
            "ok": v.ok(),
            "guest": v.guest,
            "container_if": v.container_if,
            "host_if": a.map(|a| a.host_if.clone()),
            "kind": a.map(|a| a.kind.as_str()),
            "host_end": v.host_end,
            "differences": v.differences,
            "not_compared": v.not_compared,
        });
        return Outcome::Json { doc, notes, code };
    }
    let mut lines = notes;
    lines.extend(v.differences.iter().map(|d| format!("{} in {}: {d}", v.container_if, v.guest)));
    lines.extend(v.not_compared.iter().cloned());
    if v.ok() {
        let on = v.alias.as_ref().map(|a| a.host_if.as_str()).unwrap_or_default();
        lines.insert(0, format!("{} in {} is as attached to {on}", v.container_if, v.guest));
        return Outcome::Done(lines);
    }
    Outcome::Exit { code, lines }
}

/// `ls`: a table, or `{"attachments": [...]}`.
pub fn listing(opts: &RunOpts, verb: Verb<Listing>) -> Outcome {
    let outcome = match verb {
        Err(failed) => failed.into(),
        Ok(Said { value, notes, .. }) if opts.json => Outcome::Json { doc: document(&value), notes, code: 0 },
        Ok(Said { value, notes, .. }) => Outcome::Printed { lines: value.table(), notes },
    };
    edge(opts, outcome)
}

/// `gc`: one line for each thing removed (`nothing left behind`), or `--dry-run`'s.
pub fn collected(opts: &RunOpts, verb: Verb<Collected>) -> Outcome {
    let outcome = match verb {
        Err(failed) => failed.into(),
        Ok(Said { value, notes, .. }) if opts.json => Outcome::Json { doc: document(&value), notes, code: 0 },
        Ok(Said { value, notes, .. }) if value.dry_run => {
            Outcome::Printed { lines: value.removed.iter().map(|g| garbage(g, true)).collect(), notes }
        }
        Ok(Said { value, mut notes, .. }) => {
            notes.extend(value.removed.iter().map(|g| garbage(g, false)));
            if value.removed.is_empty() {
                notes.push("nothing left behind".to_string());
            }
            Outcome::Done(notes)
        }
    };
    edge(opts, outcome)
}

fn garbage(g: &Garbage, dry_run: bool) -> String {
    if g.kind == GarbageKind::DhcpClient {
        let verb = if dry_run { "would stop" } else { "stopped" };
        return format!("{verb} {} ({})", g.name, g.reason);
    }
    if g.kind == GarbageKind::Interrupted {
        let verb = if dry_run { "would undo" } else { "undid" };
        return format!("{verb} {} ({})", g.name, g.reason);
    }
    if g.kind == GarbageKind::NicHome {
        let verb = if dry_run { "would give back" } else { "gave back" };
        return format!("{verb} {} ({})", g.name, g.reason);
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    format!("{verb} {} {} ({})", g.kind.words(), g.name, g.reason)
}
