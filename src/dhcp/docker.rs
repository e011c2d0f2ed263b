//! `dhcp[:OPTS]`: busybox udhcpc in a helper container sharing the guest container's
//! network, as the original runs it, but removed when done (`--rm`): the plain form
//! waits for the helper to take the lease and quit (`-q`); `dhcp:-f` leaves it
//! renewing, in the guest's PID namespace too, so that it ends with the guest.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use nix::sys::memfd::{memfd_create, MFdFlags};

use super::{find_program, lease, sandbox, DhcpRequest, Running};
use crate::apply::{index_of, Context, Journal, Undo};

/// The image the original uses; it must have udhcpc's `/etc/udhcpc/default.script`.
const IMAGE: &str = "busybox";

/// udhcpc's options ask for the foreground (`-f`, alone or among other short flags).
fn foreground(req: &DhcpRequest) -> bool {
    req.options
        .iter()
        .any(|o| o == "--foreground" || (o.starts_with('-') && !o.starts_with("--") && o.contains('f')))
}

/// One helper per guest interface, so that a leftover one is easy to name.
fn helper_name(req: &DhcpRequest) -> String {
    let dev: String = req.dev.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("pipework-dhcp-{}-{dev}", req.hostname)
}

pub fn args(req: &DhcpRequest) -> Vec<String> {
    let container = req.container.clone().unwrap_or_default();
    let fg = foreground(req);
    let mut args: Vec<String> = vec!["docker".into(), "run".into()];
    if fg {
        args.push("-d".into());
    }
    args.extend(["--rm", "--name"].map(String::from));
    args.push(helper_name(req));
    args.push(format!("--net=container:{container}"));
    if fg {
        // When the guest's first process ends, the kernel ends every process of its
        // PID namespace: the helper with it.
        args.push(format!("--pid=container:{container}"));
    }
    args.extend(["--cap-add", "NET_ADMIN", IMAGE, "udhcpc"].map(String::from));
    if !fg {
        args.push("-q".into());
    }
    args.extend(["-i".to_string(), req.dev.clone(), "-x".to_string(), format!("hostname:{}", req.hostname)]);
    args.extend(req.options.iter().cloned());
    args
}

pub async fn run(req: &DhcpRequest, ctx: &Context<'_>, journal: &mut Journal) -> Result<()> {
    let docker = find_program("docker").ok_or_else(|| anyhow!("the docker command is not installed"))?;
    let index = index_of(ctx.guest, &req.dev).await?;
    // One limit for the whole step: `docker run` and, for `-f`, the lease after it.
    let deadline = Instant::now() + req.limit();
    let output: File = memfd_create("pipework-docker", MFdFlags::MFD_CLOEXEC)?.into();
    // Its own process group: the terminal's Ctrl-C is ours to handle, not the CLI's
    // to die of half-way through creating the helper.
    let mut child = Command::new(docker)
        .process_group(0)
        .args(&args(req)[1..])
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output.try_clone()?)
        .spawn()
        .context("cannot run docker")?;
    let name = helper_name(req);
    let fd = sandbox::watch(child.id())?;
    let stopped = tokio::select! {
        waited = tokio::time::timeout_at(deadline.into(), fd.readable()) => match waited {
            Ok(_) => None,
            Err(_) => Some(anyhow!(
                "the helper container got no lease on {} within {} s",
                req.dev,
                req.limit().as_secs_f64()
            )),
        },
        signal = crate::interrupt::arrived() => Some(signal.into()),
    };
    if let Some(error) = stopped {
        let _ = child.kill();
        let _ = child.wait();
        let helper = name.clone();
        let _ = crate::blocking::run("docker rm", move || remove_after_kill(&helper)).await;
        return Err(error);
    }
    let status = child.wait()?;
    if !status.success() {
        // Killed by a signal, it may have left the helper being created.
        let clean: fn(&str) -> Result<()> =
            if status.signal().is_some() { remove_after_kill } else { remove };
        let helper = name.clone();
        let _ = crate::blocking::run("docker rm", move || clean(&helper)).await;
        bail!("docker run failed ({status}): {}", last_line(output));
    }
    if foreground(req) {
        journal.push(Undo::StopDhcp(Running::Container { name: name.clone() }));
        wait_for_address(ctx, index, &name, deadline, req.limit()).await?;
    } else {
        // udhcpc's script sets the address without a lifetime; this is a no-op unless
        // the image's script differs.
        lease::make_permanent(ctx.guest, index).await?;
    }
    let addrs = lease::ipv4_addresses(ctx.guest, index).await?;
    if addrs.is_empty() {
        // udhcpc exits 0 after a lease even when its script (missing from the image)
        // configured nothing: that is no success.
        bail!("the helper container ended without an address on {}: {}", req.dev, last_line(output));
    }
    for addr in addrs {
        journal.push(Undo::DeleteAddress { index, addr });
    }
    Ok(())
}

/// `dhcp:-f` returns once the helper is started: wait until its lease is on the link.
async fn wait_for_address(
    ctx: &Context<'_>,
    index: u32,
    name: &str,
    deadline: Instant,
    limit: Duration,
) -> Result<()> {
    while lease::ipv4_addresses(ctx.guest, index).await?.is_empty() {
        crate::interrupt::check()?;
        if Instant::now() > deadline {
            bail!("the helper container {name} got no lease within {} s", limit.as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// How long one `docker rm -f` may take: a daemon that hangs must not hang us.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(15);

/// `docker rm -f NAME`; a helper already gone is fine.
pub fn remove(name: &str) -> Result<()> {
    remove_once(name).map(|_| ())
}

/// [`remove`] after we killed the `docker run` that makes the helper: the daemon
/// may still be creating it (and, its client gone, would leave it created but never
/// started, which `--rm` does not clean up), so "no such container" is believed
/// only once it has held for a while.
fn remove_after_kill(name: &str) -> Result<()> {
    let settle = Instant::now() + Duration::from_secs(3);
    while !remove_once(name)? && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(())
}

/// One `docker rm -f NAME`, within [`REMOVE_TIMEOUT`]: `true` if it removed a
/// container, `false` if there was none. The CLI exits 0 either way (since 20.10)
/// and names on stdout only the containers it removed.
fn remove_once(name: &str) -> Result<bool> {
    let removed: File = memfd_create("pipework-docker-rm", MFdFlags::MFD_CLOEXEC)?.into();
    let errors: File = memfd_create("pipework-docker-rm-err", MFdFlags::MFD_CLOEXEC)?.into();
    let mut child = Command::new("docker")
        .process_group(0)
        .args(["rm", "-f", name])
        .stdin(Stdio::null())
        .stdout(removed.try_clone()?)
        .stderr(errors.try_clone()?)
        .spawn()
        .context("cannot run docker")?;
    let deadline = Instant::now() + REMOVE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("docker rm -f {name}: no answer within {} s", REMOVE_TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let err = last_line(errors);
    if err.contains("No such container") {
        return Ok(false);
    }
    if status.success() {
        return Ok(last_line(removed) == name);
    }
    bail!("docker rm -f {name}: {err}")
}

fn last_line(mut f: File) -> String {
    let mut text = String::new();
    let _ = f.seek(SeekFrom::Start(0));
    let _ = f.read_to_string(&mut text);
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string()
}
