//! Removing a `dhcp` helper container (`docker rm -f`), bounded in time: after a
//! failed or interrupted `docker run` (`super::docker`), and when a `dhcp:-f`
//! helper left running is stopped (`super::kept`).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use nix::sys::memfd::{memfd_create, MFdFlags};

use crate::programs::last_line;

/// How long one `docker rm -f` may take: a daemon that hangs must not hang us.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(15);

/// `docker rm -f NAME`; a helper already gone is fine.
pub fn remove(name: &str) -> Result<()> {
    remove_once(name).map(|_| ())
}

/// A helper named before `docker run` made it (no id known): removed if it is in
/// network namespace `net_ns` (the guest's), or not running (made, never started, by
/// a run killed meanwhile). One of the same name elsewhere is the helper of the
/// guest's next life (a restarted container has a new namespace), and stays.
pub fn remove_if_in(name: &str, net_ns: u64) -> Result<()> {
    let Some(socket) = crate::docker::endpoint::api_socket() else { return remove(name) };
    let path = format!("/containers/{}/json", crate::docker::client::url_encode(name));
    let Some(found) = crate::docker::client::get_json(&socket, &path)? else { return Ok(()) };
    let pid = found["State"]["Pid"].as_u64().unwrap_or(0);
    let elsewhere =
        pid > 0 && std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.ino() != net_ns);
    match (elsewhere, found["Id"].as_str()) {
        (true, _) => Ok(()),
        (false, Some(id)) => remove(id),
        (false, None) => remove(name),
    }
}

/// [`remove`] after we killed the `docker run` that makes the helper: the daemon
/// may still be creating it (and, its client gone, would leave it created but never
/// started, which `--rm` does not clean up), so "no such container" is believed
/// only once it has held for a while.
pub fn remove_after_kill(name: &str) -> Result<()> {
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
    let mut removed: File = memfd_create("pipework-docker-rm", MFdFlags::MFD_CLOEXEC)?.into();
    let mut errors: File = memfd_create("pipework-docker-rm-err", MFdFlags::MFD_CLOEXEC)?.into();
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
    let err = last_line(&mut errors);
    if err.contains("No such container") {
        return Ok(false);
    }
    if status.success() {
        return Ok(last_line(&mut removed) == name);
    }
    bail!("docker rm -f {name}: {err}")
}
