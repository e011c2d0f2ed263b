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
mod docker_rm;
mod external;
pub mod gate;
mod interface;
pub mod keep;
pub mod kept;
mod lease;
pub mod options4;
mod sandbox;

use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use anyhow::{anyhow, Context as _, Result};
use ipnetwork::IpNetwork;

pub use interface::Interface;
pub use kept::Kept;
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
    /// CONTAINER_IF's MTU as it was made (the host side's), for the built-in client:
    /// the most a lease's MTU option may set.
    pub mtu: Option<u32>,
    /// Told of an external client as soon as it runs (before its lease), so that a
    /// run killed while it waits leaves a client its intent names; its error ends
    /// the run's wait (the client is stopped then).
    pub started: &'a dyn Fn(&Kept) -> Result<()>,
}

impl Target<'_> {
    /// The guest's network namespace's number, which a client left running is
    /// known by with the rest (see `Kept::net_ns`).
    pub fn net_ns(&self) -> Result<u64> {
        let stat = nix::sys::stat::fstat(self.netns).context("cannot read the guest's namespace")?;
        Ok(stat.st_ino)
    }
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
    pub running: Option<Kept>,
    /// Warning lines: the options of a lease left out as bad.
    pub warnings: Vec<String>,
}

/// Take a lease on the target's interface with the planned client. On failure
/// nothing of the client is left running, and nothing it configured is left: the
/// executor cleans up its own half-done work, and records no undo for the rest.
pub async fn acquire(req: &DhcpRequest, target: &Target<'_>) -> Result<Acquired> {
    match req.client {
        DhcpClient::DockerUdhcpc => docker::acquire(req, target).await,
        DhcpClient::Builtin => {
            let (lease, warnings) = match req.family {
                Family::V4 => {
                    let (lease, warnings) = builtin::acquire(req, target).await?;
                    (Leased::V4(lease), warnings)
                }
                Family::V6 => {
                    let (lease, warnings) = builtin6::acquire(req, target).await?;
                    (Leased::V6(lease), warnings)
                }
            };
            Ok(Acquired { lease: Some(lease), warnings, ..Default::default() })
        }
        _ => external::acquire(req, target).await,
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

#[cfg(test)]
pub(crate) mod tests;
