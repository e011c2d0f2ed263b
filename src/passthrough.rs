//! `pipework route|rule|tc GUEST ARGS...`: run `ip route`, `ip rule` or `tc` inside
//! the guest's network namespace, with ARGS as they came and the tool's own output,
//! error text and exit status passed through.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};

use nix::sched::{setns, CloneFlags};

use crate::guest;
use crate::model::{Passthrough, Tool};
use crate::report::Outcome;

/// What a shell answers for a command it cannot find; scripts may test for it.
const NOT_FOUND: u8 = 127;

/// Resolve the guest, run the tool in its netns, and exit as the tool did.
pub fn run(req: &Passthrough) -> Outcome {
    let guest = match guest::resolve(&req.guest) {
        Ok(g) => g,
        Err(e) => return Outcome::failed(e),
    };
    let (program, first_args) = program_of(req.tool);
    let Some(path) = crate::programs::find(program) else {
        // One line, and the status a shell gives: the original ran these through sh.
        let line = format!("cannot run {program}: not found (install Debian package iproute2)");
        return Outcome::Exit { code: NOT_FOUND, lines: vec![line] };
    };
    let mut cmd = Command::new(&path);
    cmd.arg0(program).args(first_args).args(&req.args);
    match spawn_in_netns(&mut cmd, guest.netns()).and_then(|mut child| child.wait()) {
        Ok(status) => Outcome::exit(exit_code(status)),
        Err(e) => Outcome::failed(
            anyhow::Error::new(e).context(format!("cannot run {program} in {}", guest.describe())),
        ),
    }
}

/// The program and the words that come before ARGS.
fn program_of(tool: Tool) -> (&'static str, &'static [&'static str]) {
    match tool {
        Tool::Route => ("ip", &["route"]),
        Tool::Rule => ("ip", &["rule"]),
        Tool::Tc => ("tc", &[]),
    }
}

/// Spawn `cmd` (stdin, stdout and stderr inherited) with its network namespace
/// switched to `netns` between fork and exec: only the child moves, never us.
fn spawn_in_netns(cmd: &mut Command, netns: BorrowedFd<'_>) -> io::Result<std::process::Child> {
    // The fd stays open in the parent until `wait` returns, and fork copies it into
    // the child; it is close-on-exec, so the tool itself never inherits it.
    let fd = netns.as_raw_fd();
    // SAFETY: the closure runs in the forked child before exec and only calls
    // setns(2), which is async-signal-safe; it allocates nothing and takes no lock.
    // `fd` is a valid open descriptor in the child (see above).
    unsafe {
        cmd.pre_exec(move || {
            let netns = BorrowedFd::borrow_raw(fd);
            setns(netns, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
        });
    }
    cmd.spawn()
}

/// The tool's exit status, or 128 + the signal that killed it, as a shell reports it.
fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => (128 + signal) as u8,
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_and_leading_words() {
        assert_eq!(program_of(Tool::Route), ("ip", &["route"][..]));
        assert_eq!(program_of(Tool::Rule), ("ip", &["rule"][..]));
        assert_eq!(program_of(Tool::Tc), ("tc", &[][..]));
    }

    #[test]
    fn exit_codes_as_a_shell_reports_them() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(2 << 8)), 2);
        assert_eq!(exit_code(ExitStatus::from_raw(255 << 8)), 255);
        // Killed by SIGKILL (9) or SIGINT (2): no exit code, a signal number.
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_code(ExitStatus::from_raw(2)), 130);
    }
}
