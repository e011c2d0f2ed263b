//! `dhcp[:OPTS]`: busybox udhcpc in a helper container sharing the guest container's
//! network, as the original runs it, but removed when done (`--rm`): the plain form
//! waits for the helper to take the lease and quit (`-q`); `dhcp:-f` leaves it
//! renewing, in the guest's PID namespace too, so that it ends with the guest.

use std::fs::File;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use ipnetwork::IpNetwork;
use nix::sys::memfd::{memfd_create, MFdFlags};

use super::docker_rm::{remove, remove_after_kill};
use super::{lease, sandbox, Acquired, Kept, Target};
use crate::model::Family;
use crate::plan::DhcpRequest;
use crate::programs::last_line;

/// Run the helper; on success the lease is on the interface. On failure the helper
/// is removed and nothing it configured is left.
pub async fn acquire(req: &DhcpRequest, target: &Target<'_>) -> Result<Acquired> {
    let docker =
        crate::programs::find("docker").ok_or_else(|| anyhow!("the docker command is not installed"))?;
    // One limit for the whole step: `docker run` and, for `-f`, the lease after it.
    let deadline = Instant::now() + req.limit();
    let mut output: File = memfd_create("pipework-docker", MFdFlags::MFD_CLOEXEC)?.into();
    let name = req.helper_name();
    if req.helper_stays() {
        // Named before it is made (its name is ours to choose): a run killed from
        // here on leaves a helper that a re-run, `del` or `gc` removes.
        (target.started)(&Kept::container(&name, None, target.net_ns()?))?;
    }
    // Its own process group: the terminal's Ctrl-C is ours to handle, not the CLI's
    // to die of half-way through creating the helper.
    let mut child = Command::new(docker)
        .process_group(0)
        .args(&req.helper_command()[1..])
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output.try_clone()?)
        .spawn()
        .context("cannot run docker")?;
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
        bail!("docker run failed ({status}): {}", last_line(&mut output));
    }
    let configured = match configured(req, target, &name, deadline, &mut output).await {
        Ok(addrs) => addrs,
        Err(e) => {
            if req.helper_stays() {
                let helper = name.clone();
                let _ = crate::blocking::run("docker rm", move || remove(&helper)).await;
            }
            return Err(e);
        }
    };
    // `docker run -d` ends with the new container's id on stdout.
    let id =
        Some(last_line(&mut output)).filter(|l| l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()));
    let running = match req.helper_stays() {
        true => Some(Kept::container(&name, id, target.net_ns()?)),
        false => None,
    };
    Ok(Acquired { lease: None, configured, running, ..Default::default() })
}

/// The addresses the helper configured: the plain form has quit after its lease
/// (udhcpc's script sets the address without a lifetime; making it permanent is a
/// no-op unless the image's script differs); `dhcp:-f` returns once the helper is
/// started, so wait until its lease is on the link.
async fn configured(
    req: &DhcpRequest,
    target: &Target<'_>,
    name: &str,
    deadline: Instant,
    output: &mut File,
) -> Result<Vec<IpNetwork>> {
    if req.helper_stays() {
        wait_for_address(target, name, deadline, req.limit()).await?;
    } else {
        lease::make_permanent(target.nl, target.index, Family::V4).await?;
    }
    let addrs = lease::addresses(target.nl, target.index, Family::V4).await?;
    if addrs.is_empty() {
        // udhcpc exits 0 after a lease even when its script (missing from the image)
        // configured nothing: that is no success.
        bail!("the helper container ended without an address on {}: {}", req.dev, last_line(output));
    }
    Ok(addrs)
}

/// `dhcp:-f` returns once the helper is started: wait until its lease is on the link.
async fn wait_for_address(target: &Target<'_>, name: &str, deadline: Instant, limit: Duration) -> Result<()> {
    while lease::addresses(target.nl, target.index, Family::V4).await?.is_empty() {
        crate::interrupt::check()?;
        if Instant::now() > deadline {
            bail!("the helper container {name} got no lease within {} s", limit.as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
