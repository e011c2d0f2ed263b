//! A DHCPv4 lease on the guest's interface: read what an external client configured,
//! or apply the built-in client's lease as the static path does (address with its
//! broadcast, the old default route out, a host route to an off-link router, the new
//! default route in), each change with its undo in the journal.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{Context as _, Result};
use ipnetwork::{IpNetwork, Ipv4Network};

use crate::apply::{Journal, Undo};
use crate::netlink::{Netlink, Route};
use crate::types::Family;

/// What the built-in client applies and hands on to its keeper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub addr: Ipv4Network,
    pub broadcast: Option<Ipv4Addr>,
    pub router: Option<Ipv4Addr>,
    pub server: Ipv4Addr,
    /// Renewal (T1) and rebinding (T2) times and the lease time, in seconds.
    pub t1: u32,
    pub t2: u32,
    pub secs: u32,
}

/// The IPv4 addresses on link `index`.
pub async fn ipv4_addresses(nl: &Netlink, index: u32) -> Result<Vec<IpNetwork>> {
    let all = nl.addresses(index).await.context("cannot read the leased address")?;
    Ok(all.into_iter().filter(|a| a.is_ipv4()).collect())
}

/// Keep the leased address once nobody renews it.
pub async fn make_permanent(nl: &Netlink, index: u32) -> Result<()> {
    nl.make_ipv4_permanent(index).await.context("cannot make the leased address permanent")
}

/// Apply `lease` on `index`, recording every change's undo in `journal`.
pub async fn apply(nl: &Netlink, index: u32, lease: &Lease, journal: &mut Journal) -> Result<()> {
    let addr = IpNetwork::V4(lease.addr);
    let broadcast = lease.broadcast.or_else(|| (lease.addr.prefix() < 31).then(|| lease.addr.broadcast()));
    nl.add_address(index, addr, broadcast).await.with_context(|| format!("cannot add address {addr}"))?;
    journal.push(Undo::DeleteAddress { index, addr });
    let Some(gw) = lease.router else {
        return Ok(());
    };
    let gw = IpAddr::V4(gw);
    let routes = nl.routes(Family::V4).await.context("cannot read the guest's routes")?;
    if let Some(old) = routes.iter().find(|r| r.is_default()) {
        nl.del_route(old).await.context("cannot delete the old default route")?;
        journal.push(Undo::RestoreRoute(old.clone()));
    }
    let on_link = addr.contains(gw) || routes.iter().any(|r| !r.is_default() && r.dst.contains(gw));
    if !on_link {
        let host = Route::new(IpNetwork::new(gw, 32)?, None, index)?;
        nl.add_route(&host, false).await.with_context(|| format!("cannot add the route to {gw}"))?;
        journal.push(Undo::DeleteRoute(host));
    }
    let default = Route::new(IpNetwork::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)?, Some(gw), index)?;
    nl.add_route(&default, true).await.with_context(|| format!("cannot set the default route via {gw}"))?;
    journal.push(Undo::DeleteRoute(default));
    Ok(())
}

/// A new address on rebinding: the old lease's address and routes go, the new one's
/// come (used by the keeper, which has no run to roll back).
pub async fn replace(nl: &Netlink, index: u32, old: &Lease, new: &Lease) -> Result<()> {
    nl.del_address(index, IpNetwork::V4(old.addr)).await?;
    let mut journal = Journal::default();
    let applied = apply(nl, index, new, &mut journal).await;
    journal.commit();
    applied
}
