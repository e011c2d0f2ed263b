//! The gate a DHCP process started by a run waits at until that run has named it
//! in its intent: a run killed in between (a few system calls wide) closes the gate
//! by dying, and the process, which nothing would know to stop, ends before it does
//! anything. Its standard input is the gate: one byte opens it, end-of-file shuts it.
//!
//! The `-f` keeper (our own binary) waits at it first thing; an external client
//! (udhcpc, dhclient, dhcpcd) is started as `pipework __gate PROGRAM ARGS...`, which
//! waits, then gives the client `/dev/null` as stdin and execs it: same pid, same
//! sandbox, so it is named as before.

use std::ffi::CString;
use std::io::{Read, Write};
use std::process::{ChildStdin, ExitCode};

/// The hidden subcommand that runs an external client through the gate.
pub const SUBCOMMAND: &str = "__gate";

/// The run's end of the gate (the child's stdin).
pub struct Gate(Option<ChildStdin>);

impl Gate {
    pub fn new(stdin: Option<ChildStdin>) -> Gate {
        Gate(stdin)
    }

    /// Let the process go: it is named where `del`, `gc` or a re-run find it. A
    /// process already gone is no error here (`check` and the run's wait tell).
    pub fn open(&mut self) {
        if let Some(mut stdin) = self.0.take() {
            let _ = stdin.write_all(b"\n");
        }
    }
}

/// Wait at the gate; `false` when the run that started this process ended without
/// opening it.
pub fn pass() -> bool {
    let mut byte = [0u8; 1];
    matches!(std::io::stdin().read(&mut byte), Ok(1))
}

/// `pipework __gate PROGRAM ARGS...`: wait, then become PROGRAM with `/dev/null` as
/// stdin. Shut, it exits 1 and says nothing (nobody is left to hear it).
pub fn main(argv: &[String]) -> ExitCode {
    if !pass() {
        return ExitCode::from(1);
    }
    let Some(program) = argv.first() else { return ExitCode::from(1) };
    let args: Option<Vec<CString>> = argv.iter().map(|a| CString::new(a.as_bytes()).ok()).collect();
    let Some(args) = args else { return ExitCode::from(1) };
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
    }
    let Ok(path) = CString::new(program.as_bytes()) else { return ExitCode::from(1) };
    let err = nix::unistd::execv(&path, &args).unwrap_err();
    crate::report::say(&format!("cannot start {program}: {err}"));
    ExitCode::from(127)
}
