//! `dhcp4-f` and `dhcp6-f`: starting and stopping the keeper, a detached copy of
//! pipework (`pipework __dhcp-keep JSON`, hidden; its loop is `crate::keeper`) that
//! lives in the guest's network namespace and renews the lease. Its pid file is
//! `/var/run/dhcp4.HOSTNAME.pid` (`dhcp6.HOSTNAME.pid`).

use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{setsid, Pid};
use serde::{Deserialize, Serialize};

use super::builtin::Interface;
use super::{sandbox, Running};
use crate::plan::{DhcpRequest, Leased};

/// The hidden subcommand's name.
pub const SUBCOMMAND: &str = "__dhcp-keep";

/// Start the keeper for `lease`, detached (own session, no stdio), in the guest's netns.
pub fn start(
    req: &DhcpRequest,
    netns: BorrowedFd<'_>,
    iface: &Interface,
    lease: &Leased,
    renew: Option<u32>,
) -> Result<Running> {
    let pid_file = req.pid_file(&req.name());
    let args =
        Args { iface: iface.clone(), pid: req.pid, renew, pid_file: pid_file.clone(), lease: lease.clone() };
    let args = serde_json::to_string(&args).context("cannot write the keeper's arguments")?;
    let fd = netns.as_raw_fd();
    // /proc/self/exe: this very binary, even if its file has been replaced meanwhile.
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg(SUBCOMMAND).arg(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: runs in the forked child before exec; only system calls, no allocation.
    unsafe {
        cmd.pre_exec(move || {
            setns(BorrowedFd::borrow_raw(fd), CloneFlags::CLONE_NEWNET)?;
            setsid()?;
            sandbox::close_inherited();
            Ok(())
        })
    };
    let child = cmd.spawn().with_context(|| format!("cannot start the {} keeper", req.name()))?;
    let pid = child.id();
    if let Err(e) = std::fs::write(&pid_file, format!("{pid}\n")) {
        let _ = stop(pid, &pid_file);
        return Err(anyhow::Error::new(e).context(format!("cannot write {}", pid_file.display())));
    }
    Ok(Running::Keeper { pid, pid_file })
}

/// Stop a keeper (the undo of `dhcp4-f`): SIGTERM, and wait a little for it to go.
pub fn stop(pid: u32, pid_file: &Path) -> Result<()> {
    let target = Pid::from_raw(pid as i32);
    if kill(target, Signal::SIGTERM).is_ok() {
        for _ in 0..100 {
            if kill(target, None).is_err() || is_zombie(pid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let _ = std::fs::remove_file(pid_file);
    Ok(())
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')))
}

/// What the keeper is handed, as JSON on its command line.
#[derive(Debug, Serialize, Deserialize)]
pub struct Args {
    pub iface: Interface,
    /// The guest's process, which the keeper lives as long as.
    pub pid: Option<u32>,
    /// `renew=SECONDS`.
    pub renew: Option<u32>,
    pub pid_file: PathBuf,
    pub lease: Leased,
}

impl Args {
    pub fn parse(text: &str) -> Result<Args> {
        serde_json::from_str(text).context("bad keeper arguments")
    }
}
