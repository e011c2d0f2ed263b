//! `dhcp4-f` and `dhcp6-f`: starting the keeper, a detached copy of pipework
//! (`pipework __dhcp-keep JSON`, hidden; its loop is `crate::keeper`, outside this
//! module because it applies a new lease by `crate::apply`) that lives in the guest's
//! network namespace and renews the lease. Its pid file is
//! `/var/run/dhcp4.HOSTNAME.pid` (`dhcp6.HOSTNAME.pid`); it is stopped as every
//! client left running is, by [`Kept::stop`].

use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result};
use nix::sched::{setns, CloneFlags};
use nix::unistd::setsid;
use serde::{Deserialize, Serialize};

use super::gate::Gate;
use super::{sandbox, Interface, Kept, Target};
use crate::plan::dhcp::BuiltinOptions;
use crate::plan::{DhcpRequest, Leased};

/// The hidden subcommand's name.
pub const SUBCOMMAND: &str = "__dhcp-keep";

/// `dhcp4-f`, `dhcp6-f`: hand the applied `lease` to a keeper that renews it from
/// now on, started detached (own session, no output) in the guest's netns. It waits
/// at its [`Gate`] until the run has named it (in its intent): a run killed before
/// that closes the gate, and the keeper, which nothing would know to stop, ends
/// (`super::gate`).
///
/// `bound_at`: the lease is one a keeper that is gone held, granted then (see
/// `HeldLease`); the new keeper verifies it first (INIT-REBOOT). `None`: just taken.
pub fn start(
    req: &DhcpRequest,
    target: &Target<'_>,
    lease: &Leased,
    bound_at: Option<u64>,
) -> Result<(Kept, Gate)> {
    let options = BuiltinOptions::parse(&req.options)?;
    let iface = Interface::of(req, target)?;
    let pid_file = req.pid_file(&req.name());
    let args = Args {
        iface,
        pid: req.pid,
        renew: options.renew,
        dns: options.dns,
        pid_file: pid_file.clone(),
        lease: lease.clone(),
        bound_at,
        keep_lease_on_stop: req.keep_lease_on_del,
    };
    let args = serde_json::to_string(&args).context("cannot write the keeper's arguments")?;
    let fd = target.netns.as_raw_fd();
    // /proc/self/exe: this very binary, even if its file has been replaced meanwhile.
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg(SUBCOMMAND).arg(args).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: runs in the forked child before exec; only system calls, no allocation.
    unsafe {
        cmd.pre_exec(move || {
            setns(BorrowedFd::borrow_raw(fd), CloneFlags::CLONE_NEWNET)?;
            setsid()?;
            sandbox::close_inherited();
            Ok(())
        })
    };
    let mut child = cmd.spawn().with_context(|| format!("cannot start the {} keeper", req.name()))?;
    let gate = Gate::new(child.stdin.take());
    let kept = Kept::keeper(&req.name(), child.id(), &pid_file, lease);
    if let Err(e) = std::fs::write(&pid_file, format!("{}\n", child.id())) {
        let _ = kept.stop_now();
        return Err(anyhow::Error::new(e).context(format!("cannot write {}", pid_file.display())));
    }
    Ok((kept, gate))
}

/// What the keeper is handed, as JSON on its command line.
#[derive(Debug, Serialize, Deserialize)]
pub struct Args {
    pub iface: Interface,
    /// The guest's process, which the keeper lives as long as.
    pub pid: Option<u32>,
    /// `renew=SECONDS`.
    pub renew: Option<u32>,
    /// `dns`: the attach wrote the lease's name servers into the guest's
    /// resolv.conf; a renewal that changes them writes them again. Missing in the
    /// arguments of earlier versions.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dns: bool,
    pub pid_file: PathBuf,
    pub lease: Leased,
    /// `lease` is a gone keeper's, granted at this time (seconds since the epoch):
    /// verified with INIT-REBOOT before it is renewed, or given up if it has run
    /// out. Missing in the arguments of earlier versions (a lease just taken).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_at: Option<u64>,
    /// Stopped (SIGTERM, `del`), send no DHCPRELEASE: a pod's identity, which a new
    /// sandbox of the pod may hold by then (`DhcpRequest::for_pod`). Missing in the
    /// arguments of earlier versions (then it releases).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_lease_on_stop: bool,
}

/// Seconds since the epoch: the lease times a keeper writes down and a re-run
/// compares with (the wall clock, which the run directory does not outlive a
/// reboot of anyway).
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Args {
    pub fn parse(text: &str) -> Result<Args> {
        serde_json::from_str(text).context("bad keeper arguments")
    }
}
