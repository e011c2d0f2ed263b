//! A DHCP client left running (the `-f` forms): the one type for it, from the moment
//! an attach starts it (a rollback's undo holds it), through the attachment's record
//! (`crate::record`), to the `del` or `gc` of a later run; and the one way to stop it.
//! It names which client, its processes each with its start time (a pid reused by
//! another process has another start time, so a pid alone is never signalled), the
//! mount namespace of an external client's sandbox (it may fork), a helper
//! container's name, and the files pipework wrote for it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

pub use crate::process::Process;

use super::{docker_rm, sandbox};
use crate::plan::{HeldLease, Leased};

/// One client left running, as a record holds it (its fields are the record's
/// format: see `record::VERSION`). Every field but `client` may be missing in a
/// record an earlier version wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// As IPSPEC names it: `dhcp4` (pipework's keeper), `udhcpc`, `dhclient6`, `dhcp`
    /// (the helper container), ...
    pub client: String,
    /// Its processes, as last read.
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
    /// The guest's network namespace, which a sandboxed client and a helper
    /// container live in: with the mount namespace (or the helper's name), what
    /// proves a process or container found later is this client, once none of its
    /// recorded processes is left to prove it (udhcpc forks into the background; a
    /// helper is named before Docker gives it an id). Missing in earlier records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_ns: Option<u64>,
    /// A keeper's: the lease it was handed, which the attach applied (its address
    /// and router are among the record's). It may move on (rebound to another
    /// address, a new one after a DHCPNAK): `check` compares with the lease it holds
    /// now (`held_lease`). Missing in earlier records and for the other clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted: Option<Leased>,
}

impl Kept {
    /// The same client as `other` says it (its processes may differ: read later):
    /// one sandbox, one helper container (by name: it is named before it is made,
    /// and again with the id Docker gave it), or else the same processes.
    pub fn is_the_same_client(&self, other: &Kept) -> bool {
        if self.container.is_some() {
            return self.client == other.client && self.container == other.container;
        }
        let by_place = self.mnt_ns.is_some() || self.container_id.is_some() || self.container.is_some();
        self.client == other.client
            && self.mnt_ns == other.mnt_ns
            && self.container_id == other.container_id
            && self.container == other.container
            && (by_place || self.processes == other.processes)
    }

    /// An external client in its sandbox (`udhcpc-f`, `dhclient-f`, ...): the
    /// processes in its mount namespace now, and the pid file it writes on the host
    /// (dhclient leaves its own behind when it ends; udhcpc removes its own).
    pub fn sandboxed(
        client: &str,
        mnt_ns: &sandbox::MountNs,
        net_ns: u64,
        pid_file: Option<PathBuf>,
    ) -> Kept {
        Kept {
            processes: sandbox::pids_in(mnt_ns).into_iter().filter_map(Process::of).collect(),
            mnt_ns: Some(mnt_ns.ino()),
            files: pid_file.into_iter().collect(),
            net_ns: Some(net_ns),
            ..Kept::named(client)
        }
    }

    /// Pipework's own keeper (`dhcp4-f`, `dhcp6-f`), and its pid file
    /// (`CLIENT.HOSTNAME.pid`) with the status file beside it (`.lease`) and the
    /// lease it holds (`.lease.json`, see `HeldLease`).
    pub fn keeper(client: &str, pid: u32, pid_file: &Path, granted: &Leased) -> Kept {
        Kept {
            processes: Process::of(pid).into_iter().collect(),
            files: vec![pid_file.to_path_buf(), pid_file.with_extension("lease"), HeldLease::path(pid_file)],
            granted: Some(granted.clone()),
            ..Kept::named(client)
        }
    }

    /// A keeper's `state=` line in its status file (`.lease`), if it has one.
    pub fn keeper_state(&self) -> Option<String> {
        let status = self.files.iter().find(|f| f.extension().is_some_and(|e| e == "lease"))?;
        let text = std::fs::read_to_string(status).ok()?;
        text.lines().find_map(|l| l.strip_prefix("state=")).map(String::from)
    }

    /// The lease a keeper held when it last wrote it (beside its pid file), if it
    /// left one: a keeper that ends by itself or is stopped removes it, one killed
    /// does not.
    pub fn held_lease(&self) -> Option<HeldLease> {
        let pid_file = self.files.iter().find(|f| f.extension().is_some_and(|e| e == "pid"))?;
        let text = std::fs::read(HeldLease::path(pid_file)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// The `dhcp:-f` helper container in the guest's network namespace `net_ns`, by
    /// its id when `docker run -d` said it.
    pub fn container(name: &str, id: Option<String>, net_ns: u64) -> Kept {
        Kept {
            container: Some(name.to_string()),
            container_id: id,
            net_ns: Some(net_ns),
            ..Kept::named("dhcp")
        }
    }

    fn named(client: &str) -> Kept {
        Kept {
            client: client.to_string(),
            processes: Vec::new(),
            mnt_ns: None,
            container: None,
            container_id: None,
            files: Vec::new(),
            net_ns: None,
            granted: None,
        }
    }

    /// As it is now, for the record: a sandbox's processes read again (the client
    /// may have forked since it was started), through one of its recorded processes
    /// that still runs, so that a namespace number reused meanwhile is not taken for
    /// its own. Whatever else it is, it stays.
    pub fn refreshed(&self) -> Kept {
        match self.sandbox(&self.live()) {
            Some(ns) => Kept {
                processes: sandbox::pids_in(&ns).into_iter().filter_map(Process::of).collect(),
                ..self.clone()
            },
            None => self.clone(),
        }
    }

    /// Its sandbox held, if it still has processes: through a recorded one still
    /// running, or, when none is left (the client forked into the background), a
    /// process in both its mount namespace and the guest's network namespace.
    fn sandbox(&self, live: &[Process]) -> Option<sandbox::MountNs> {
        let ino = self.mnt_ns?;
        live.iter()
            .find_map(|p| sandbox::MountNs::hold_through(ino, p.pid))
            .or_else(|| sandbox::MountNs::hold_in(ino, self.net_ns?))
    }

    /// Its recorded processes that are still those very processes.
    fn live(&self) -> Vec<Process> {
        self.processes.iter().copied().filter(Process::is_alive).collect()
    }

    /// Any of its processes still runs; `None` for a helper container (Docker is
    /// not asked).
    pub fn is_running(&self) -> Option<bool> {
        if self.container.is_some() {
            return None;
        }
        Some(self.processes.iter().any(Process::is_alive) || self.sandbox(&[]).is_some())
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

    /// [`Self::stop`] on the calling thread. udhcpc is asked to release its lease
    /// first; a sandbox's processes then get SIGTERM, and SIGKILL after half a
    /// second; pipework's keeper gets SIGTERM (it releases its lease then), and
    /// SIGKILL after 2 s; a helper container is removed (`docker rm -f`). Only a
    /// process whose start time is the recorded one is signalled.
    pub fn stop_now(&self) -> Result<()> {
        if let Some(name) = &self.container {
            return match (&self.container_id, self.net_ns) {
                (Some(id), _) => docker_rm::remove(id),
                (None, Some(net_ns)) => docker_rm::remove_if_in(name, net_ns),
                (None, None) => docker_rm::remove(name),
            };
        }
        let live = self.live();
        match self.mnt_ns {
            Some(_) => {
                if let Some(ns) = self.sandbox(&live) {
                    let now: Vec<Process> =
                        sandbox::pids_in(&ns).into_iter().filter_map(Process::of).collect();
                    self.release(&now);
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

    /// A pid file is ours while it names one of our processes (or nothing readable),
    /// unless that pid is another process's now; another file is ours while its pid
    /// file beside it (`.pid`) is.
    fn is_ours(&self, file: &Path) -> bool {
        // `.lease.json` beside `.pid` too.
        let base = match file.extension().is_some_and(|e| e == "json") {
            true => file.with_extension(""),
            false => file.to_path_buf(),
        };
        let pid_file = base.with_extension("pid");
        match std::fs::read_to_string(&pid_file) {
            Ok(text) => match text.trim().parse::<u32>() {
                Ok(pid) => self
                    .processes
                    .iter()
                    .any(|p| p.pid == pid && Process::of(pid).is_none_or(|now| now == *p)),
                Err(_) => true,
            },
            Err(_) => true,
        }
    }
}

const RELEASE_GRACE: Duration = Duration::from_millis(200);

/// How long pipework's keeper has to release its lease and end after SIGTERM (its
/// release waits at most a second for the network).
const KEEPER_GRACE: Duration = Duration::from_secs(2);

/// SIGTERM, then wait up to [`KEEPER_GRACE`] for them to end (a keeper sends its
/// DHCPRELEASE first), then SIGKILL.
fn terminate(live: &[Process]) {
    for p in live {
        let _ = kill(Pid::from_raw(p.pid as i32), Signal::SIGTERM);
    }
    let deadline = std::time::Instant::now() + KEEPER_GRACE;
    while std::time::Instant::now() < deadline {
        if !live.iter().any(Process::is_alive) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for p in live.iter().filter(|p| p.is_alive()) {
        let _ = kill(Pid::from_raw(p.pid as i32), Signal::SIGKILL);
    }
    // SIGKILL cannot be refused, but the process ends a moment later: gone once this returns.
    for _ in 0..100 {
        if !live.iter().any(Process::is_alive) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
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

    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::{Child, Command};
    use std::time::Instant;

    /// `sleep 60`, this test's own child; with `ignore_term`, SIGTERM ignored (as by
    /// a keeper that hangs), which exec keeps.
    fn sleeper(ignore_term: bool) -> Child {
        let mut cmd = Command::new("sleep");
        cmd.arg("60");
        if ignore_term {
            // SAFETY: runs in the forked child before exec; signal(2) only.
            unsafe {
                cmd.pre_exec(|| {
                    nix::sys::signal::signal(Signal::SIGTERM, nix::sys::signal::SigHandler::SigIgn)?;
                    Ok(())
                })
            };
        }
        cmd.spawn().expect("sleep")
    }

    /// A keeper named for `child`, with a pid file in a directory of the test's own.
    fn keeper_of(child: &Child, dir: &Path) -> Kept {
        let pid_file = dir.join("dhcp4.web1.pid");
        std::fs::write(&pid_file, format!("{}\n", child.id())).unwrap();
        std::fs::write(pid_file.with_extension("lease"), "state=bound\n").unwrap();
        Kept::keeper("dhcp4", child.id(), &pid_file, &crate::plan::Leased::V4(crate::dhcp::tests::lease()))
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pipework-kept-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_pid_whose_start_time_is_not_the_recorded_one_is_never_signalled() {
        let dir = scratch("reused");
        let mut child = sleeper(false);
        let mut kept = keeper_of(&child, &dir);
        // As if the keeper had ended and another process had its pid since.
        kept.processes[0].start += 1;
        assert_eq!(kept.is_running(), Some(false));
        kept.stop_now().unwrap();
        assert!(child.try_wait().unwrap().is_none(), "another process's pid was signalled");
        // Its pid file names a pid that is not ours any more: another run's, it stays.
        assert!(dir.join("dhcp4.web1.pid").exists());
        child.kill().unwrap();
        child.wait().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_keeper_that_ends_on_sigterm_is_not_killed_and_its_files_go() {
        let dir = scratch("term");
        let mut child = sleeper(false);
        let kept = keeper_of(&child, &dir);
        assert_eq!(kept.is_running(), Some(true));
        kept.stop_now().unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(Signal::SIGTERM as i32));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "its pid and status files stay");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_keeper_that_does_not_end_on_sigterm_is_killed_after_its_grace() {
        let dir = scratch("kill");
        let mut child = sleeper(true);
        let kept = keeper_of(&child, &dir);
        let started = Instant::now();
        kept.stop_now().unwrap();
        assert!(started.elapsed() >= KEEPER_GRACE, "killed before its grace: {:?}", started.elapsed());
        assert_eq!(child.wait().unwrap().signal(), Some(Signal::SIGKILL as i32));
        assert_eq!(kept.is_running(), Some(false));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The record's format (`record::VERSION` 1): the same keys as the records that
    /// are on disk already.
    #[test]
    fn a_kept_client_is_recorded_in_the_format_of_earlier_records() {
        let kept = Kept {
            processes: vec![Process { pid: 42, start: 7 }],
            files: vec!["/var/run/dhcp4.web1.pid".into()],
            ..Kept::named("dhcp4")
        };
        let text = serde_json::to_string(&kept).unwrap();
        let keys = r#"{"client":"dhcp4","processes":[{"pid":42,"start":7}],"mnt_ns":null,"container":null,"container_id":null,"files":["/var/run/dhcp4.web1.pid"]}"#;
        assert_eq!(text, keys);
        assert_eq!(serde_json::from_str::<Kept>(keys).unwrap(), kept);
        let helper = Kept::container("pipework-dhcp-web1", None, 4026531840);
        assert_eq!((helper.client.as_str(), helper.is_running()), ("dhcp", None));
        assert_eq!(helper.describe(), "the DHCP helper container pipework-dhcp-web1");
    }

    /// Named before `docker run` (no id yet) and again after it: one helper, so the
    /// intent keeps one entry for it.
    #[test]
    fn a_helper_container_is_the_same_client_before_and_after_it_has_an_id() {
        let before = Kept::container("pipework-dhcp-web1-eth1", None, 7);
        let after = Kept::container("pipework-dhcp-web1-eth1", Some("ab".repeat(32)), 7);
        assert!(after.is_the_same_client(&before) && before.is_the_same_client(&after));
        assert!(!Kept::container("pipework-dhcp-web2-eth1", None, 7).is_the_same_client(&before));
        assert!(!Kept::named("dhcp").is_the_same_client(&before));
    }

    #[test]
    fn an_old_record_without_the_new_fields_reads() {
        let k: Kept = serde_json::from_str(r#"{"client":"dhcp4"}"#).unwrap();
        assert_eq!((k.processes.len(), k.mnt_ns, k.is_running()), (0, None, Some(false)));
    }
}
