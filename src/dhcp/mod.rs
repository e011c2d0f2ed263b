//! DHCP inside the guest: the original's clients (udhcpc, dhclient, dhcpcd, and busybox
//! udhcpc in a helper Docker container) and pipework's own DHCPv4 client (`dhcp4`).
//!
//! The external clients run in the guest's network namespace and in a private mount
//! and UTS namespace of their own (see `sandbox`), so that their scripts cannot touch
//! the host's `/etc/resolv.conf` or hostname, and two guests' dhcpcd runs never meet.

pub mod builtin;
mod dhclient;
mod dhcpcd;
mod docker;
mod external;
pub mod keep;
mod lease;
mod sandbox;
mod udhcpc;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};

use crate::apply::{Context, Journal};
use crate::cli::{DhcpClient, IpSpec};
use crate::plan::{GuestId, Step};

/// How long an external client may take to get its lease before it is stopped and
/// everything undone. dhclient gives up by itself after 60 s (its `timeout`), and
/// must be let to say so; udhcpc without `-n` would try for ever.
const EXTERNAL_TIMEOUT: Duration = Duration::from_secs(90);

/// One DHCP run, as planned: everything the client needs, nothing read from the system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhcpRequest {
    /// CONTAINER_IF.
    pub dev: String,
    pub client: DhcpClient,
    /// A `-f` form: the client stays and renews the lease.
    pub foreground: bool,
    pub options: Vec<String>,
    /// Sent to the server, and part of the pid and lease file names.
    pub hostname: String,
    /// The Docker container's ID (the `dhcp` helper joins its namespaces).
    pub container: Option<String>,
    /// The guest's process, which the built-in `dhcp4-f` client lives as long as.
    pub pid: Option<u32>,
    /// `--timeout`: how long the client may take to get its lease.
    pub timeout: Option<Duration>,
}

impl DhcpRequest {
    /// The DHCP step for `IPSPEC` on `dev`, or `None` for a static IPSPEC. Refuses
    /// what can be refused before any change: `dhcp` for a guest that is not a
    /// Docker container, and bad `dhcp4` options.
    pub fn plan(
        ip: &IpSpec,
        dev: &str,
        guest: &GuestId,
        timeout: Option<Duration>,
    ) -> Result<Option<DhcpRequest>> {
        let IpSpec::Dhcp { client, foreground, options } = ip else {
            return Ok(None);
        };
        let container = guest.container.as_ref().map(|(id, _)| id.clone());
        if *client == DhcpClient::DockerUdhcpc && container.is_none() {
            bail!(
                "DHCP client dhcp runs udhcpc in a helper Docker container, and {} is not a Docker \
                 container; use udhcpc, dhclient, dhcpcd or dhcp4",
                guest.name
            );
        }
        if *client == DhcpClient::Builtin {
            builtin::Options::parse(options)?;
            // The keeper ends when the guest's process does; a bare netns file has none
            // to watch, and the keeper itself would keep that namespace alive for ever.
            if *foreground && guest.pid.is_none() {
                bail!(
                    "dhcp4-f needs a guest with a process to watch (pid:N or a container), not a netns file"
                );
            }
        }
        Ok(Some(DhcpRequest {
            dev: dev.to_string(),
            client: *client,
            foreground: *foreground,
            options: options.clone(),
            hostname: hostname(guest),
            container,
            pid: guest.pid,
            timeout,
        }))
    }

    /// How long an external client (or the Docker helper) may take to get its lease.
    fn limit(&self) -> Duration {
        self.timeout.unwrap_or(EXTERNAL_TIMEOUT)
    }

    /// The command that runs, word by word (the `dhcp4` client runs in-process).
    pub fn command_line(&self) -> Vec<String> {
        match self.client {
            DhcpClient::Udhcpc => udhcpc::args(self),
            DhcpClient::Dhclient => dhclient::args(self),
            DhcpClient::Dhcpcd => dhcpcd::args(self),
            DhcpClient::DockerUdhcpc => docker::args(self),
            DhcpClient::Builtin => builtin::describe(self),
        }
    }

    /// `/var/run/NAME.HOSTNAME.pid`, the original's pid file naming.
    fn pid_file(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/var/run/{name}.{}.pid", self.hostname))
    }
}

impl fmt::Display for DhcpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.command_line().join(" "))
    }
}

/// The name the guest goes by: a Docker container's own name (without Docker's
/// leading '/'), else GUEST made into a host name (`pid:123` gives `pid-123`).
fn hostname(guest: &GuestId) -> String {
    // A container named as the original takes it (name, ID or ID prefix): GUEST as
    // typed, as the original puts it in the host name and in the pid and lease file
    // names that scripts written for it look for. The leading '/' of a Docker name
    // would make a path.
    let typed = guest.name.strip_prefix('/').unwrap_or(&guest.name);
    if !guest.name.starts_with("pid:") && !typed.is_empty() && !typed.contains('/') {
        // Whole, even a 64-character ID: the sandbox cuts it for sethostname(2) only.
        return typed.to_string();
    }
    // Forms the original lacks: a name of our own making.
    let raw = match guest.pid {
        Some(pid) if guest.name.starts_with("pid:") || guest.name.starts_with("/proc/") => {
            format!("pid-{pid}")
        }
        _ => guest.name.rsplit('/').find(|p| !p.is_empty()).unwrap_or_default().to_string(),
    };
    // A host name is letters, digits and '-' (RFC 952); anything else would be refused
    // by the server, or make an odd file name. A DNS label is at most 63 bytes.
    let clean: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    let clean: String = clean.chars().take(63).collect();
    match clean.trim_matches('-') {
        "" => "guest".to_string(),
        c => c.to_string(),
    }
}

/// Run the DHCP step: the lease is on `dev` when this returns, or nothing is left running.
pub async fn run(req: &DhcpRequest, ctx: &Context<'_>, journal: &mut Journal) -> Result<()> {
    match req.client {
        DhcpClient::Udhcpc => udhcpc::run(req, ctx, journal).await,
        DhcpClient::Dhclient => dhclient::run(req, ctx, journal).await,
        DhcpClient::Dhcpcd => dhcpcd::run(req, ctx, journal).await,
        DhcpClient::DockerUdhcpc => docker::run(req, ctx, journal).await,
        DhcpClient::Builtin => builtin::run(req, ctx, journal).await,
    }
}

/// Before any change, as the original checks: every external client asked for is installed.
pub fn preflight(steps: &[Step]) -> Result<()> {
    for step in steps {
        if let Step::Dhcp(req) = step {
            match req.client {
                DhcpClient::Udhcpc | DhcpClient::Dhclient | DhcpClient::Dhcpcd => {
                    find_client(&req.client.to_string())?;
                }
                DhcpClient::DockerUdhcpc => {
                    find_program("docker").ok_or_else(|| {
                        anyhow!("DHCP client dhcp needs the docker command, and I can't find it.")
                    })?;
                }
                DhcpClient::Builtin => {}
            }
        }
    }
    Ok(())
}

/// The client's path, or the original's message for a missing one.
fn find_client(name: &str) -> Result<PathBuf> {
    find_program(name).ok_or_else(|| anyhow!("You asked for DHCP client {name}, but I can't find it."))
}

/// Look `name` up in PATH, then in the sbin directories a non-login root shell may lack.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let sbin = ["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from);
    std::env::split_paths(&path).chain(sbin).map(|d| d.join(name)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A client left running for a `-f` form, stopped by the undo of the DHCP step.
#[derive(Clone, Debug)]
pub enum Running {
    /// Every process in the client's private mount namespace (it may have forked).
    Sandbox { client: String, mnt_ns: sandbox::MountNs },
    /// The built-in client's keeper process, and the pid file that names it.
    Keeper { pid: u32, pid_file: PathBuf },
    /// The `dhcp:-f` helper container.
    Container { name: String },
}

impl Running {
    /// Stop it, on the runtime's blocking pool: that takes up to seconds (signals and
    /// a wait, or `docker rm`), and the other lines of a --batch go on meanwhile.
    pub async fn stop(&self) -> Result<()> {
        let running = self.clone();
        crate::blocking::run("stop", move || running.stop_now()).await
    }

    fn stop_now(&self) -> Result<()> {
        match self {
            Running::Sandbox { mnt_ns, .. } => sandbox::kill_all(mnt_ns, nix::sys::signal::Signal::SIGTERM),
            Running::Keeper { pid, pid_file } => keep::stop(*pid, pid_file),
            Running::Container { name } => docker::remove(name),
        }
    }
}

impl fmt::Display for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Running::Sandbox { client, .. } => write!(f, "the DHCP client {client}"),
            Running::Keeper { pid, .. } => write!(f, "the DHCP client dhcp4 (pid {pid})"),
            Running::Container { name } => write!(f, "the DHCP helper container {name}"),
        }
    }
}

#[cfg(test)]
mod tests;
