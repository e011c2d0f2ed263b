//! A DHCP client that an attach left running (the `-f` forms), as the attachment's
//! record keeps it (`crate::record`), so that `del` and `gc` can stop it in a later
//! run: which client, its processes each with its start time (a pid reused by
//! another process has another start time, so a pid alone is never signalled), the
//! mount namespace of an external client's sandbox (it may fork), a helper
//! container's name, and the files pipework wrote for it. Generic over the client
//! and the family: every [`Running`] becomes one.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::{docker, sandbox, Running};

/// One client left running, as a record holds it. Every field but `client` may be
/// missing in a record a later version wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// As `Running` names it: `dhcp4` (pipework's keeper), `udhcpc`, `dhclient`, ...
    pub client: String,
    /// Its processes when the attach ended.
    #[serde(default)]
    pub processes: Vec<Process>,
    /// An external client's private mount namespace: everything it forked is in it.
    #[serde(default)]
    pub mnt_ns: Option<u64>,
    /// The `dhcp:-f` helper container's name.
    #[serde(default)]
    pub container: Option<String>,
    /// Its id, which `stop` removes it by: the guest's next life has a helper of the
    /// same name. Missing in the records of earlier versions (then by its name).
    #[serde(default)]
    pub container_id: Option<String>,
    /// Pid and status files written for it, removed once it is stopped.
    #[serde(default)]
    pub files: Vec<PathBuf>,
}

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

impl Running {
    /// What a record keeps of it.
    pub fn kept(&self) -> Kept {
        let none = Kept {
            client: String::new(),
            processes: Vec::new(),
            mnt_ns: None,
            container: None,
            container_id: None,
            files: Vec::new(),
        };
        match self {
            // dhclient leaves its pid file behind when it ends (udhcpc removes its own).
            Running::Sandbox { client, mnt_ns, pid_file } => Kept {
                client: client.clone(),
                processes: sandbox::pids_in(mnt_ns).into_iter().filter_map(Process::of).collect(),
                mnt_ns: Some(mnt_ns.ino()),
                files: pid_file.iter().cloned().collect(),
                ..none
            },
            // `/var/run/CLIENT.HOSTNAME.pid`: the keeper's client is the file's first word.
            Running::Keeper { pid, pid_file } => Kept {
                client: keeper_client(pid_file),
                processes: Process::of(*pid).into_iter().collect(),
                files: vec![pid_file.clone(), pid_file.with_extension("lease")],
                ..none
            },
            Running::Container { name, id } => Kept {
                client: "dhcp".into(),
                container: Some(name.clone()),
                container_id: id.clone(),
                ..none
            },
        }
    }
}

impl Kept {
    /// Any of its processes still runs; `None` for a helper container (Docker is
    /// not asked).
    pub fn is_running(&self) -> Option<bool> {
        if self.container.is_some() {
            return None;
        }
        Some(self.processes.iter().any(Process::is_alive))
    }

    /// `the DHCP client udhcpc (pid 42)`.
    pub fn describe(&self) -> String {
        if let Some(name) = &self.container {
            return format!("the DHCP helper container {name}");
        }
        let pids: Vec<String> = self.processes.iter().map(|p| p.pid.to_string()).collect();
        match pids.is_empty() {
            true => format!("the DHCP client {}", self.client),
            false => format!("the DHCP client {} (pid {})", self.client, pids.join(", ")),
        }
    }

    /// Stop it, on the runtime's blocking pool (signals and waits take up to seconds).
    /// What already ended is no error; files another client's run wrote since stay.
    pub async fn stop(&self) -> Result<()> {
        let kept = self.clone();
        crate::blocking::run("stop", move || kept.stop_now()).await
    }

    fn stop_now(&self) -> Result<()> {
        if let Some(name) = &self.container {
            return docker::remove(self.container_id.as_deref().unwrap_or(name));
        }
        let live: Vec<Process> = self.processes.iter().copied().filter(Process::is_alive).collect();
        match self.mnt_ns {
            // A live recorded process proves the namespace number is still the sandbox's.
            Some(ino) => {
                if let Some(ns) = live.iter().find_map(|p| sandbox::MountNs::hold_through(ino, p.pid)) {
                    self.release(&live);
                    sandbox::kill_all(&ns, Signal::SIGTERM)?;
                }
            }
            None => terminate(&live),
        }
        for file in &self.files {
            if self.is_ours(file) {
                let _ = std::fs::remove_file(file);
            }
        }
        Ok(())
    }

    /// udhcpc releases its lease on SIGUSR2 (and on SIGTERM only when started with
    /// `-R`, which the original does not pass): asked first, and given a moment to
    /// send the DHCPRELEASE and run its script's `deconfig` before the SIGTERM.
    fn release(&self, live: &[Process]) {
        if self.client != "udhcpc" {
            return;
        }
        for p in live {
            let _ = kill(Pid::from_raw(p.pid as i32), Signal::SIGUSR2);
        }
        std::thread::sleep(RELEASE_GRACE);
    }

    /// A pid file is ours while it names one of our processes (or nothing readable);
    /// another file is ours while its pid file beside it (`.pid`) is.
    fn is_ours(&self, file: &std::path::Path) -> bool {
        let pid_file = file.with_extension("pid");
        match std::fs::read_to_string(&pid_file) {
            Ok(text) => match text.trim().parse::<u32>() {
                Ok(pid) => self.processes.iter().any(|p| p.pid == pid),
                Err(_) => true,
            },
            Err(_) => true,
        }
    }
}

const RELEASE_GRACE: Duration = Duration::from_millis(200);

/// SIGTERM, then wait up to 2 s for them to end (a keeper sends its DHCPRELEASE
/// first), then SIGKILL.
fn terminate(live: &[Process]) {
    for p in live {
        let _ = kill(Pid::from_raw(p.pid as i32), Signal::SIGTERM);
    }
    for _ in 0..200 {
        if !live.iter().any(Process::is_alive) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for p in live.iter().filter(|p| p.is_alive()) {
        let _ = kill(Pid::from_raw(p.pid as i32), Signal::SIGKILL);
    }
}

fn keeper_client(pid_file: &std::path::Path) -> String {
    let name = pid_file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.split('.').next().filter(|c| !c.is_empty()).unwrap_or("dhcp4").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_known_by_its_pid_and_start_time() {
        let me = Process::of(std::process::id()).unwrap();
        assert!(me.is_alive());
        assert!(!Process { start: me.start + 1, ..me }.is_alive(), "the pid is another process's now");
    }

    #[test]
    fn an_old_record_without_the_new_fields_reads() {
        let k: Kept = serde_json::from_str(r#"{"client":"dhcp4"}"#).unwrap();
        assert_eq!((k.processes.len(), k.mnt_ns, k.is_running()), (0, None, Some(false)));
    }
}
