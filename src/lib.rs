//! pipework: software-defined networking for Linux containers.
//!
//! argv --cli--> Invocation --guest--> Guest --facts--> plan --> apply --> report

mod announce;
pub mod apply;
mod attach;
mod batch;
mod blocking;
pub mod cli;
pub mod dhcp;
mod facts;
pub mod guest;
mod interrupt;
pub mod netlink;
mod netns;
mod ovs;
mod passthrough;
pub mod plan;
mod wait;

use std::io::Write;
use std::process::ExitCode;

use cli::{CliError, Invocation};

/// How a run ended, ready to be printed.
#[derive(Debug)]
pub enum Outcome {
    /// Success; lines for stderr (with `--verbose`).
    Done(Vec<String>),
    /// Success; lines for stdout (`--dry-run`).
    Printed(Vec<String>),
    /// Nothing (or everything undone); what failed, and any undo that failed too.
    Failed { error: anyhow::Error, rollback_errors: Vec<String> },
    /// Exit with this status; anything to say was said already (`route`, `rule`
    /// and `tc` pass the status of `ip` or `tc` through).
    Exit(u8),
    /// What a run said before a signal cut it short; the process then dies of it.
    Interrupted(interrupt::Interrupted, Box<Outcome>),
}

impl Outcome {
    pub fn failed(error: anyhow::Error) -> Outcome {
        Outcome::Failed { error, rollback_errors: Vec::new() }
    }
}

/// Run with the arguments after the program name; the process's exit code.
pub fn main<I: IntoIterator<Item = String>>(argv: I) -> ExitCode {
    let argv: Vec<String> = argv.into_iter().collect();
    // The detached `dhcp4-f` keeper: a hidden subcommand, never typed by a user.
    if argv.first().map(String::as_str) == Some(dhcp::keep::SUBCOMMAND) {
        return dhcp::keep::main(&argv[1..]);
    }
    // `completions SHELL` and the man page: documentation, not an attachment.
    if let Some(code) = cli::docs::early(&argv) {
        return code;
    }
    let parsed = match cli::parse(argv.clone()) {
        // An existing host interface wins over the `route*`/`rule*`/`tc*` prefixes,
        // in the original's order (one ioctl, only for these words).
        Ok(Invocation::Passthrough(p)) if nix::net::if_::if_nametoindex(p.word.as_str()).is_ok() => {
            cli::parse_without_passthrough(argv)
        }
        other => other,
    };
    let invocation = match parsed {
        Ok(i) => i,
        Err(CliError::Syntax) => {
            print!("{}", cli::SYNTAX);
            return ExitCode::from(1);
        }
        Err(CliError::Clap(e)) => {
            let _ = e.print();
            return ExitCode::from(if e.exit_code() == 0 { 0 } else { 1 });
        }
        Err(CliError::Invalid(e)) => return report(Outcome::failed(e)),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return report(Outcome::failed(anyhow::Error::new(e).context("cannot start the runtime"))),
    };
    let outcome = match invocation {
        Invocation::Attach(a) => runtime.block_on(attach::run(&a)),
        Invocation::Passthrough(p) => passthrough::run(&p),
        Invocation::Wait { container_if, timeout } => runtime.block_on(wait::run(&container_if, timeout)),
        Invocation::Batch(b) => runtime.block_on(batch::run(&b)),
    };
    // An interrupted built-in DHCP exchange may still sit on the blocking pool until
    // its own timeout: nothing waits for it.
    runtime.shutdown_background();
    report(outcome)
}

fn report(outcome: Outcome) -> ExitCode {
    match outcome {
        Outcome::Done(lines) => {
            for l in lines {
                say(&format!("pipework: {l}"));
            }
            ExitCode::SUCCESS
        }
        Outcome::Printed(lines) => {
            let mut out = std::io::stdout().lock();
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
            ExitCode::SUCCESS
        }
        Outcome::Failed { error, rollback_errors } => {
            say(&format!("pipework: {error:#}"));
            for l in rollback_errors {
                say(&format!("pipework: {l}"));
            }
            ExitCode::from(1)
        }
        Outcome::Exit(code) => ExitCode::from(code),
        Outcome::Interrupted(signal, said) => {
            let _ = report(*said);
            let _ = std::io::stdout().flush();
            signal.die();
            ExitCode::from(signal.exit_code())
        }
    }
}

/// One line on stderr. Never `eprintln!`, which panics when stderr is gone (the
/// terminal hung up): a panic here would skip the undo or the exit status.
pub(crate) fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
