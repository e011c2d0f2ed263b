//! `dhcp4-f`: the keeper, a detached copy of pipework (`pipework __dhcp-keep JSON`,
//! hidden) that lives in the guest's network namespace, renews the lease at T1,
//! rebinds at T2, and ends when the guest's process does. It must watch that process:
//! its own sockets keep the namespace, and so the interface, alive. Its pid file is
//! `/var/run/dhcp4.HOSTNAME.pid`; `/var/run/dhcp4.HOSTNAME.lease` says how it is doing.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use mozim::{DhcpV4Client, DhcpV4State};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{setsid, Pid};
use serde_json::{json, Value};
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{signal, SignalKind};

use super::builtin::{self, Interface};
use super::lease::{self, Lease};
use super::{sandbox, DhcpRequest, Running};
use crate::netlink::Netlink;

/// The hidden subcommand's name.
pub const SUBCOMMAND: &str = "__dhcp-keep";

/// Start the keeper for `lease`, detached (own session, no stdio), in the guest's netns.
pub fn start(
    req: &DhcpRequest,
    netns: BorrowedFd<'_>,
    iface: &Interface,
    lease: &Lease,
    renew: Option<u32>,
) -> Result<Running> {
    let pid_file = req.pid_file("dhcp4");
    let args = json!({
        "dev": iface.dev, "index": iface.index, "mac": iface.mac, "hostname": iface.hostname,
        "pid": req.pid, "renew": renew, "pid_file": pid_file, "addr": lease.addr.to_string(),
        "broadcast": lease.broadcast, "router": lease.router, "server": lease.server,
        "t1": lease.t1, "t2": lease.t2, "secs": lease.secs,
    });
    let fd = netns.as_raw_fd();
    // /proc/self/exe: this very binary, even if its file has been replaced meanwhile.
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg(SUBCOMMAND)
        .arg(args.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: runs in the forked child before exec; only system calls, no allocation.
    unsafe {
        cmd.pre_exec(move || {
            setns(BorrowedFd::borrow_raw(fd), CloneFlags::CLONE_NEWNET)?;
            setsid()?;
            sandbox::close_inherited();
            Ok(())
        })
    };
    let child = cmd.spawn().context("cannot start the dhcp4 keeper")?;
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

/// What the keeper was handed.
struct Args {
    iface: Interface,
    pid: Option<u32>,
    renew: Option<u32>,
    pid_file: PathBuf,
    lease: Lease,
}

fn parse(text: &str) -> Result<Args> {
    let v: Value = serde_json::from_str(text).context("bad keeper arguments")?;
    let get =
        |k: &str| v.get(k).filter(|x| !x.is_null()).ok_or_else(|| anyhow!("keeper argument {k} missing"));
    let num = |k: &str| get(k)?.as_u64().ok_or_else(|| anyhow!("keeper argument {k} is not a number"));
    let text = |k: &str| {
        get(k)?.as_str().map(str::to_string).ok_or_else(|| anyhow!("keeper argument {k} is not text"))
    };
    let ip = |k: &str| text(k)?.parse().map_err(|_| anyhow!("keeper argument {k} is not an address"));
    let opt_ip = |k: &str| get(k).ok().map(|_| ip(k)).transpose();
    let mac: Vec<u8> = serde_json::from_value(get("mac")?.clone())?;
    let iface = Interface {
        dev: text("dev")?,
        index: num("index")? as u32,
        mac: mac.try_into().map_err(|_| anyhow!("bad MAC"))?,
        hostname: text("hostname")?,
    };
    let lease = Lease {
        addr: text("addr")?.parse().map_err(|_| anyhow!("bad address"))?,
        broadcast: opt_ip("broadcast")?,
        router: opt_ip("router")?,
        server: ip("server")?,
        t1: num("t1")? as u32,
        t2: num("t2")? as u32,
        secs: num("secs")? as u32,
    };
    let pid = get("pid").ok().and_then(Value::as_u64).map(|p| p as u32);
    let renew = get("renew").ok().and_then(Value::as_u64).map(|r| r as u32);
    Ok(Args { iface, pid, renew, pid_file: text("pid_file")?.into(), lease })
}

/// `pipework __dhcp-keep JSON`: keep the lease until the guest goes, or SIGTERM.
pub fn main(args: &[String]) -> ExitCode {
    let result = (|| -> Result<()> {
        let args = parse(args.first().map(String::as_str).unwrap_or(""))?;
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
                        lease::replace(&nl, args.iface.index, &current, &new).await?;
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

/// A pidfd for the guest's process; `None` for a guest that has none (a netns file).
/// A pid that no longer shares our namespace belongs to someone else: the guest is gone.
fn watch_guest(pid: Option<u32>) -> Result<Option<AsyncFd<OwnedFd>>> {
    let Some(pid) = pid else {
        return Ok(None);
    };
    let fd = sandbox::watch(pid)?;
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
