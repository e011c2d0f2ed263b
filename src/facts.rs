//! Reading the facts the planner needs, before anything changes: single-link
//! lookups by name (no dump of every host interface, so the cost does not grow
//! with the number of containers), and the guest's few routes.

use anyhow::{Context, Result};

use crate::cli::{Attach, HostIf};
use crate::netlink::{Link, Netlink};
use crate::plan::{self, GuestFacts, GuestId, HostFacts};

/// The host interface, by name, or by MAC (case does not matter; where several
/// share it, as a bridge and its first port do, the first by name wins).
pub async fn host_if(host: &Netlink, req: &Attach) -> Result<Option<Link>> {
    match &req.host_if {
        HostIf::Name(n) => host.link_by_name(n.as_str()).await,
        HostIf::Mac(mac) => {
            let mut links: Vec<Link> =
                host.links().await?.into_iter().filter(|l| l.mac == Some(*mac)).collect();
            links.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(links.into_iter().next())
        }
    }
}

pub async fn host(host: &Netlink, req: &Attach, guest: &GuestId) -> Result<HostFacts> {
    let host_if = host_if(host, req).await.context("cannot read the host interface")?;
    let local = local_if_name(req, guest);
    let local_if = match local {
        Some(name) => host.link_by_name(&name).await.context("cannot read the host end")?,
        None => None,
    };
    Ok(HostFacts { host_if, local_if })
}

/// The host-end name to look for; a derived name too long to exist is left to the planner.
fn local_if_name(req: &Attach, guest: &GuestId) -> Option<String> {
    match &req.local_if {
        Some(l) => Some(l.to_string()),
        None => {
            let name = format!("v{}pl{}", plan::container_if(req), guest.tag);
            (name.len() <= crate::cli::types::IFNAME_MAX).then_some(name)
        }
    }
}

pub async fn guest(nl: &Netlink, req: &Attach) -> Result<GuestFacts> {
    let cif = plan::container_if(req);
    let container_if = nl.link_by_name(cif.as_str()).await.context("cannot read the guest's interfaces")?;
    let container_addrs = match &container_if {
        Some(l) => nl.addresses(l.index).await?,
        None => Vec::new(),
    };
    let routes = nl.routes(req.family).await.context("cannot read the guest's routes")?;
    Ok(GuestFacts { container_if, container_addrs, routes })
}
