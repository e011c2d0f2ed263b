//! DHCP inside the guest, the executor: what to run was planned (`plan::dhcp`); this
//! runs it and hands back what it got. The original's clients (udhcpc, dhclient,
//! dhcpcd, and busybox udhcpc in a helper Docker container), their DHCPv6 forms
//! (`dhclient6`, `dhcpcd6`), and pipework's own clients (`dhcp4`, `dhcp6`).
//!
//! The external clients run in the guest's network namespace and in a private mount
//! and UTS namespace of their own (see `sandbox`), so that their scripts cannot touch
//! the host's `/etc/resolv.conf` or hostname, and two guests' dhcpcd runs never meet.

pub mod builtin;
pub mod builtin6;
mod docker;
mod external;
pub mod keep;
pub mod kept;
mod lease;
mod sandbox;

use std::fmt;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use anyhow::{anyhow, Result};
use ipnetwork::IpNetwork;

pub use sandbox::watch;

use crate::model::DhcpClient;
use crate::model::Family;
use crate::model::Mac;
use crate::netlink::Netlink;
use crate::plan::{DhcpRequest, Leased};

/// The guest's interface a client works on.
pub struct Target<'a> {
    /// The guest's netlink socket.
    pub nl: &'a Netlink,
    /// The guest's network namespace.
    pub netns: BorrowedFd<'a>,
    /// CONTAINER_IF's index there, and its MAC (the built-in client's chaddr).
    pub index: u32,
    pub mac: Option<Mac>,
}

/// What a client got. The executor changes nothing it does not hand back here, and
/// pushes no undo: the caller records one for each part.
#[derive(Debug, Default)]
pub struct Acquired {
    /// A lease for the caller to apply (the built-in clients'); the external clients
    /// configure the interface themselves.
    pub lease: Option<Leased>,
    /// The addresses an external client configured on the interface.
    pub configured: Vec<IpNetwork>,
    /// A `-f` form's client, which stays, renewing the lease. A plain form's is
    /// stopped before [`acquire`] returns.
    pub running: Option<Running>,
}

/// Take a lease on the target's interface with the planned client. On failure
/// nothing of the client is left running, and nothing it configured is left: the
/// executor cleans up its own half-done work, and records no undo for the rest.
pub async fn acquire(req: &DhcpRequest, target: &Target<'_>) -> Result<Acquired> {
    match req.client {
        DhcpClient::DockerUdhcpc => docker::acquire(req, target).await,
        DhcpClient::Builtin => {
            let lease = match req.family {
                Family::V4 => Leased::V4(builtin::acquire(req, target).await?),
                Family::V6 => Leased::V6(builtin6::acquire(req, target).await?),
            };
            Ok(Acquired { lease: Some(lease), ..Default::default() })
        }
        _ => external::acquire(req, target).await,
    }
}

/// `dhcp4-f`, `dhcp6-f`: the keeper that renews `lease` from now on.
pub fn keep_renewing(req: &DhcpRequest, target: &Target<'_>, lease: &Leased) -> Result<Running> {
    match lease {
        Leased::V4(lease) => builtin::keep_renewing(req, target, lease),
        Leased::V6(lease) => builtin6::keep_renewing(req, target, lease),
    }
}

/// Before any change, as the original checks: every external client asked for is installed.
pub fn preflight<'a>(requests: impl IntoIterator<Item = &'a DhcpRequest>) -> Result<()> {
    for req in requests {
        match req.client {
            DhcpClient::Udhcpc | DhcpClient::Dhclient | DhcpClient::Dhcpcd => {
                // The program's name: `dhclient6` runs dhclient.
                find_client(&req.client.to_string())?;
            }
            DhcpClient::DockerUdhcpc => {
                crate::programs::find("docker").ok_or_else(|| {
                    anyhow!("DHCP client dhcp needs the docker command, and I can't find it.")
                })?;
            }
            DhcpClient::Builtin => {}
        }
    }
    Ok(())
}

/// The client's path, or the original's message for a missing one.
fn find_client(name: &str) -> Result<PathBuf> {
    crate::programs::find(name)
        .ok_or_else(|| anyhow!("You asked for DHCP client {name}, but I can't find it."))
}

/// A client left running for a `-f` form, stopped by the undo of the DHCP step.
#[derive(Clone, Debug)]
pub enum Running {
    /// Every process in the client's private mount namespace (it may have forked),
    /// and the pid file it writes on the host (dhclient leaves its own behind).
    Sandbox { client: String, mnt_ns: sandbox::MountNs, pid_file: Option<PathBuf> },
    /// The built-in client's keeper process (`dhcp4-f` or `dhcp6-f`), and the pid
    /// file that names it.
    Keeper { pid: u32, pid_file: PathBuf },
    /// The `dhcp:-f` helper container, and its id (`docker run -d` says it): a later
    /// helper of the guest's next life has the same name.
    Container { name: String, id: Option<String> },
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
            Running::Sandbox { mnt_ns, pid_file, .. } => {
                sandbox::kill_all(mnt_ns, nix::sys::signal::Signal::SIGTERM)?;
                pid_file.iter().for_each(|f| external::remove_if_stale(f));
                Ok(())
            }
            Running::Keeper { pid, pid_file } => keep::stop(*pid, pid_file),
            Running::Container { name, id } => docker::remove(id.as_deref().unwrap_or(name)),
        }
    }
}

impl fmt::Display for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Running::Sandbox { client, .. } => write!(f, "the DHCP client {client}"),
            Running::Keeper { pid, pid_file } => {
                // The pid file is named for the client: `dhcp6.HOSTNAME.pid`.
                let name = pid_file.file_name().and_then(|n| n.to_str()).and_then(|n| n.split('.').next());
                write!(f, "the DHCP client {} (pid {pid})", name.unwrap_or("dhcp4"))
            }
            Running::Container { name, .. } => write!(f, "the DHCP helper container {name}"),
        }
    }
}

#[cfg(test)]
mod tests;
