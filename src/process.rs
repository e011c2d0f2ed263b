//! Processes as they can be recognised again later, by another run: a pid is
//! reused, a pid with its start time is not (within a boot), and a boot's id never.
//! The DHCP clients an attach leaves running are kept so (`dhcp::Kept`), and so is
//! the run that writes an intent (`crate::intent`).

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

/// A process as it can be recognised again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub pid: u32,
    /// The 22nd field of `/proc/PID/stat`, clock ticks after boot.
    pub start: u64,
}

impl Process {
    /// `pid` as it is now; `None` once it has ended (a zombie has ended).
    pub fn of(pid: u32) -> Option<Process> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces and parentheses: the fields follow its last ')'.
        let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
        if fields.next()? == "Z" {
            return None;
        }
        let start = fields.nth(18)?.parse().ok()?;
        Some(Process { pid, start })
    }

    /// Still this very process (not ended, its pid not another's now).
    pub fn is_alive(&self) -> bool {
        Process::of(self.pid) == Some(*self)
    }
}

/// A run as it can be recognised again: a pid is reused, a start time after boot
/// is not (within a boot), and a boot's id is never.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub process: Process,
    pub boot: String,
}

impl Run {
    /// This very process.
    pub fn current() -> Result<Run> {
        let pid = std::process::id();
        let process = Process::of(pid).context("cannot read /proc/self/stat")?;
        Ok(Run { process, boot: boot_id()? })
    }

    /// Still running: same boot, same process.
    pub fn is_alive(&self) -> bool {
        boot_id().is_ok_and(|b| b == self.boot) && self.process.is_alive()
    }
}

fn boot_id() -> Result<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").context("cannot read the boot id")?;
    Ok(id.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_run_is_alive_and_a_dead_or_reused_pid_is_not() {
        let me = Run::current().unwrap();
        assert!(me.is_alive());
        let other_boot = Run { boot: "not-this-boot".into(), ..me.clone() };
        assert!(!other_boot.is_alive());
        let reused = Run { process: Process { start: me.process.start + 1, ..me.process }, ..me.clone() };
        assert!(!reused.is_alive(), "the same pid with another start time is another process");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = Run { process: Process { pid, start: 1 }, ..me };
        assert!(!gone.is_alive());
    }
}
