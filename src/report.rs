//! How a run ends, and the one place that writes to the terminal: every
//! `pipework: ...` line on stderr and everything on stdout goes through here.
//! The ground floor: it imports nothing of the crate but the signal type, so any
//! layer may return an [`Outcome`] and none prints by itself.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::interrupt::Interrupted;

/// How a run ended, ready to be printed.
#[derive(Debug)]
pub enum Outcome {
    /// Success; lines for stderr: warnings and notices always, the steps done with
    /// `--verbose`. A batch prefixes each with its line number.
    Done(Vec<String>),
    /// Success; `lines` for stdout (`--dry-run`), `notes` for stderr (warnings).
    Printed { lines: Vec<String>, notes: Vec<String> },
    /// Nothing (or everything undone); what failed, and any undo that failed too.
    /// `notes`: what the run said on its way (stderr, before the error).
    Failed { error: anyhow::Error, rollback_errors: Vec<String>, notes: Vec<String> },
    /// Exit with this status after these lines on stderr (`route`, `rule` and `tc`
    /// pass the status of `ip` or `tc` through, and say nothing of their own).
    Exit { code: u8, lines: Vec<String> },
    /// What a run said before a signal cut it short; the process then dies of it.
    Interrupted(Interrupted, Box<Outcome>),
    /// `--json`: one document on stdout, `notes` on stderr, then exit `code`.
    Json { doc: serde_json::Value, notes: Vec<String>, code: u8 },
    /// A success's notices (see [`Said::notices`]) on stderr, then `then`.
    Noticed { notices: Vec<String>, then: Box<Outcome> },
}

/// A verb's value, and what it said on its way: warnings and notices, and with
/// `--verbose` the steps it took. The front ends read the value; the renderer
/// (`crate::render`) prints both.
#[derive(Debug)]
pub struct Said<T> {
    pub value: T,
    pub notes: Vec<String>,
    /// What the run did that is worth knowing (`eth2 moved into ... as container0`):
    /// made only by a run that succeeded, and written best effort: a notice that
    /// cannot be written does not fail a run whose changes stand (exit 1 says they
    /// do not).
    pub notices: Vec<String>,
}

impl<T> Said<T> {
    pub fn new(value: T, notes: Vec<String>) -> Said<T> {
        Said { value, notes, notices: Vec::new() }
    }

    pub fn with_notices(self, notices: Vec<String>) -> Said<T> {
        Said { notices, ..self }
    }
}

/// A verb that failed: what failed, each undo that failed too, and what it said
/// before it failed.
#[derive(Debug)]
pub struct Failed {
    pub error: anyhow::Error,
    pub rollback_errors: Vec<String>,
    pub notes: Vec<String>,
}

impl Failed {
    /// `error`, after `notes` were said.
    pub fn after(error: anyhow::Error, notes: Vec<String>) -> Failed {
        Failed { error, rollback_errors: Vec::new(), notes }
    }
}

impl From<anyhow::Error> for Failed {
    fn from(error: anyhow::Error) -> Failed {
        Failed::after(error, Vec::new())
    }
}

impl From<Failed> for Outcome {
    fn from(f: Failed) -> Outcome {
        Outcome::Failed { error: f.error, rollback_errors: f.rollback_errors, notes: f.notes }
    }
}

/// What a verb gives: its value and notes, or its failure.
pub type Verb<T> = Result<Said<T>, Failed>;

/// The outcome of a `--json` run: a failure becomes `{"error": ..., "rollback_errors":
/// [...]}` on stdout (exit 1; what it said on its way stays on stderr); a success
/// the command already made a document of is kept.
pub fn json(outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Failed { error, rollback_errors, notes } => {
            let doc =
                serde_json::json!({ "error": format!("{error:#}"), "rollback_errors": rollback_errors });
            Outcome::Json { doc, notes, code: 1 }
        }
        Outcome::Interrupted(signal, said) => Outcome::Interrupted(signal, Box::new(json(*said))),
        Outcome::Noticed { notices, then } => Outcome::Noticed { notices, then: Box::new(json(*then)) },
        other => other,
    }
}

impl Outcome {
    pub fn failed(error: anyhow::Error) -> Outcome {
        Outcome::Failed { error, rollback_errors: Vec::new(), notes: Vec::new() }
    }

    /// The same outcome with `said` on stderr before anything it says (the parse's
    /// warnings, which come before the run's).
    pub fn said_first(self, mut said: Vec<String>) -> Outcome {
        if said.is_empty() {
            return self;
        }
        match self {
            Outcome::Done(lines) => Outcome::Done([said, lines].concat()),
            Outcome::Printed { lines, notes } => Outcome::Printed { lines, notes: [said, notes].concat() },
            Outcome::Failed { error, rollback_errors, notes } => {
                Outcome::Failed { error, rollback_errors, notes: [said, notes].concat() }
            }
            Outcome::Exit { code, lines } => Outcome::Exit { code, lines: [said, lines].concat() },
            Outcome::Interrupted(signal, inner) => {
                Outcome::Interrupted(signal, Box::new(inner.said_first(said)))
            }
            Outcome::Noticed { notices, then } => {
                Outcome::Noticed { notices, then: Box::new(then.said_first(said)) }
            }
            Outcome::Json { doc, notes, code } => {
                said.extend(notes);
                Outcome::Json { doc, notes: said, code }
            }
        }
    }

    /// A status to pass through, with nothing to say.
    pub fn exit(code: u8) -> Outcome {
        Outcome::Exit { code, lines: Vec::new() }
    }
}

/// Print the outcome; the process's exit status. A failure to write what a run
/// had to say fails it (`--dry-run > /dev/full`, a stderr that is gone): exit 1.
pub fn finish(outcome: Outcome) -> ExitCode {
    let code = finish_outcome(outcome);
    if code == ExitCode::SUCCESS && SAY_FAILED.load(Ordering::Relaxed) {
        return ExitCode::from(1);
    }
    code
}

fn finish_outcome(outcome: Outcome) -> ExitCode {
    match outcome {
        Outcome::Done(lines) => {
            lines.iter().for_each(|l| say(l));
            ExitCode::SUCCESS
        }
        Outcome::Printed { lines, notes } => match print_lines(&lines) {
            Ok(()) if notes.is_empty() => ExitCode::SUCCESS,
            Ok(()) => finish_outcome(Outcome::Done(notes)),
            Err(e) => {
                say(&format!("cannot write to standard output: {e}"));
                ExitCode::from(1)
            }
        },
        Outcome::Failed { error, rollback_errors, notes } => {
            notes.iter().for_each(|l| say(l));
            say(&format!("{error:#}"));
            rollback_errors.iter().for_each(|l| say(l));
            ExitCode::from(1)
        }
        Outcome::Exit { code, lines } => {
            lines.iter().for_each(|l| say(l));
            ExitCode::from(code)
        }
        Outcome::Json { doc, notes, code } => match print_lines(&[doc.to_string()]) {
            Ok(()) => {
                notes.iter().for_each(|l| say(l));
                ExitCode::from(code)
            }
            Err(e) => {
                say(&format!("cannot write to standard output: {e}"));
                ExitCode::from(1)
            }
        },
        Outcome::Noticed { notices, then } => {
            notices.iter().for_each(|l| say_best_effort(l));
            finish_outcome(*then)
        }
        Outcome::Interrupted(signal, said) => {
            let _ = finish_outcome(*said);
            signal.die();
            ExitCode::from(signal.exit_code())
        }
    }
}

/// Lines on stdout, flushed: an error (a closed pipe, a full disk) is the caller's.
/// Buffered whole: stdout writes each line on its own, and `ls` of 1000 attachments
/// paid a write(2) per line.
pub fn print_lines(lines: &[String]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    for l in lines {
        writeln!(out, "{l}")?;
    }
    out.flush()
}

/// A line on stderr could not be written: the run's exit status says so.
static SAY_FAILED: AtomicBool = AtomicBool::new(false);

/// One `pipework: TEXT` line on stderr. Never `eprintln!`, which panics when stderr
/// is gone (the terminal hung up): a panic here would skip the undo or the exit
/// status. A failed write is remembered, and makes the exit status 1.
pub fn say(text: &str) {
    if writeln!(std::io::stderr(), "pipework: {text}").is_err() {
        SAY_FAILED.store(true, Ordering::Relaxed);
    }
}

/// One `pipework: TEXT` line on stderr whose loss does not change the exit status.
fn say_best_effort(text: &str) {
    let _ = writeln!(std::io::stderr(), "pipework: {text}");
}

/// A line on stderr as it is, without the `pipework: ` prefix (a `watch --json` log
/// line, which must stay one JSON object); a failed write is remembered as by [`say`].
pub fn say_as_is(text: &str) {
    if writeln!(std::io::stderr(), "{text}").is_err() {
        SAY_FAILED.store(true, Ordering::Relaxed);
    }
}

/// A warning, in the words every warning uses.
pub fn warning(text: impl std::fmt::Display) -> String {
    format!("warning: {text}")
}
