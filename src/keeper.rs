//! The `dhcp4-f` keeper's own run (`pipework __dhcp-keep JSON`, started by
//! `dhcp::keep::start`): it lives in the guest's network namespace, renews the lease
//! at T1, rebinds at T2, and ends when the guest's process does. It must watch that
//! process: its own sockets keep the namespace, and so the interface, alive. A new
//! address on rebinding is applied by the planner's lease steps, all or nothing.
//! `/var/run/dhcp4.HOSTNAME.lease` says how it is doing.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context as _, Result};
use ipnetwork::IpNetwork;
use mozim::{DhcpV4Client, DhcpV4State};
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{signal, SignalKind};

use crate::apply::{self, Context};
use crate::dhcp::builtin;
use crate::dhcp::keep::Args;
use crate::netlink::Netlink;
use crate::plan::{addressing, Lease};
use crate::types::Family;

/// `pipework __dhcp-keep JSON`: keep the lease until the guest goes, or SIGTERM.
pub fn main(args: &[String]) -> ExitCode {
    let result = (|| -> Result<()> {
        let args = Args::parse(args.first().map(String::as_str).unwrap_or(""))?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let outcome = rt.block_on(keep(&args));
        forget(&args);
        outcome
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::report::say(&format!("dhcp4 keeper: {e:#}"));
            ExitCode::from(1)
        }
    }
}

async fn keep(args: &Args) -> Result<()> {
    let guest = watch_guest(args.pid)?;
    let nl = Netlink::current()?;
    let mut client =
        DhcpV4Client::init(builtin::config(&args.iface, 0)?, None).await.map_err(|e| anyhow!("{e}"))?;
    client.done(builtin::shorten(builtin::to_mozim(&args.lease), args.renew)).map_err(|e| anyhow!("{e}"))?;
    let mut current = args.lease.clone();
    let mut renewals = 0u32;
    // The handler first: a rollback's SIGTERM in between would otherwise end the
    // keeper by default action and leave its status file behind.
    let mut term = signal(SignalKind::terminate())?;
    report(args, &current, renewals, "bound");
    loop {
        tokio::select! {
            state = client.run() => match state {
                Ok(DhcpV4State::Done(l)) => {
                    let new = builtin::from_mozim(&l)?;
                    if new.addr != current.addr {
                        replace(&nl, args, &current, &new).await?;
                    }
                    current = new;
                    renewals += 1;
                    report(args, &current, renewals, "bound");
                    client.done(builtin::shorten(*l, args.renew)).map_err(|e| anyhow!("{e}"))?;
                }
                Ok(state) => report(args, &current, renewals, &state.to_string()),
                Err(e) => {
                    // The interface went away (deleted, or its guest without a pid gone).
                    if nl.link_by_name(&args.iface.dev).await?.is_none() {
                        return Ok(());
                    }
                    report(args, &current, renewals, &format!("error: {e}"));
                    client.clean_up();
                    tokio::time::sleep(builtin::RETRY).await;
                }
            },
            _ = gone(&guest) => return Ok(()),
            _ = term.recv() => return Ok(()),
        }
    }
}

/// A new address on rebinding: the old lease's address goes, the new one comes with
/// its routes, all or nothing (there is no run to roll back: the keeper ends on error).
async fn replace(nl: &Netlink, args: &Args, old: &Lease, new: &Lease) -> Result<()> {
    let index = args.iface.index;
    nl.del_address(index, IpNetwork::V4(old.addr)).await.context("cannot remove the old leased address")?;
    let routes = nl.routes(Family::V4).await.context("cannot read the guest's routes")?;
    let steps = addressing::lease_steps(&args.iface.dev, new, &routes);
    // The keeper lives in the guest's namespace: its one socket is the guest's.
    let here = File::open("/proc/self/ns/net").context("cannot open the guest's network namespace")?;
    let ctx = Context::new(nl, nl, here.as_fd(), format!("the guest of {}", args.iface.dev));
    apply::apply(&steps, &ctx).await.map_err(|f| f.error)
}

/// A pidfd for the guest's process; `None` for a guest that has none (a netns file).
/// A pid that no longer shares our namespace belongs to someone else: the guest is gone.
fn watch_guest(pid: Option<u32>) -> Result<Option<AsyncFd<OwnedFd>>> {
    let Some(pid) = pid else {
        return Ok(None);
    };
    let fd = crate::dhcp::watch(pid)?;
    let ns = |p: &str| std::fs::metadata(p).map(|m| m.ino()).ok();
    if ns(&format!("/proc/{pid}/ns/net")) != ns("/proc/self/ns/net") {
        return Err(anyhow!("the guest's process {pid} is gone"));
    }
    Ok(Some(fd))
}

async fn gone(guest: &Option<AsyncFd<OwnedFd>>) {
    match guest {
        Some(fd) => {
            let _ = fd.readable().await;
        }
        None => std::future::pending().await,
    }
}

fn status_file(args: &Args) -> PathBuf {
    args.pid_file.with_extension("lease")
}

/// `/var/run/dhcp4.HOSTNAME.lease`: the lease and how many renewals so far.
fn report(args: &Args, lease: &Lease, renewals: u32, state: &str) {
    let path = status_file(args);
    let router = lease.router.map(|r| r.to_string()).unwrap_or_default();
    let text = format!(
        "state={state}\naddress={}\nserver={}\nrouter={router}\nlease={}\nt1={}\nt2={}\nrenewals={renewals}\n",
        lease.addr, lease.server, lease.secs, lease.t1, lease.t2
    );
    let tmp = path.with_extension("lease.new");
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, &path);
    }
}

/// On the way out: our pid file (only if it still names us) and status file go.
fn forget(args: &Args) {
    let mine =
        std::fs::read_to_string(&args.pid_file).is_ok_and(|s| s.trim() == std::process::id().to_string());
    if mine {
        let _ = std::fs::remove_file(&args.pid_file);
    }
    let _ = std::fs::remove_file(status_file(args));
}
