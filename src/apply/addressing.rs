//! Addressing inside the guest: addresses, the link up, routes; each with its undo,
//! recorded before the request (see `Journal::attempt`). Static addresses and the
//! built-in DHCP client's lease both come through here.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::Result;
use ipnetwork::IpNetwork;

use super::{Context, Journal, Undo};
use crate::netlink::Route;
use crate::plan::Side;

pub async fn add_address(
    ctx: &Context<'_>,
    journal: &mut Journal,
    dev: &str,
    addr: IpNetwork,
    broadcast: Option<Ipv4Addr>,
) -> Result<()> {
    let index = ctx.index(Side::Guest, dev).await?;
    let undo = Undo::DeleteAddress { index, addr };
    journal.attempt(undo, ctx.guest.add_address(index, addr, broadcast)).await
}

/// No undo of its own: the link is one we created, and undoing that removes it.
pub async fn link_up(ctx: &Context<'_>, dev: &str, arp_notify: bool) -> Result<()> {
    let index = ctx.index(Side::Guest, dev).await?;
    match arp_notify {
        true => ctx.guest.set_up_with_arp_notify(index).await,
        false => ctx.guest.set_up(index).await,
    }
}

pub async fn delete_route(ctx: &Context<'_>, journal: &mut Journal, route: &Route) -> Result<()> {
    journal.attempt(Undo::RestoreRoute(route.clone()), ctx.guest.del_route(route)).await
}

pub async fn add_route(
    ctx: &Context<'_>,
    journal: &mut Journal,
    dst: IpNetwork,
    gateway: Option<IpAddr>,
    dev: &str,
    replace: bool,
) -> Result<()> {
    let route = Route::new(dst, gateway, ctx.index(Side::Guest, dev).await?)?;
    journal.attempt(Undo::DeleteRoute(route.clone()), ctx.guest.add_route(&route, replace)).await
}

/// A lease's MTU on the guest's `dev`: put back as it was on rollback (a link this
/// run made goes whole anyway).
pub async fn set_mtu(ctx: &Context<'_>, journal: &mut Journal, dev: &str, mtu: u32) -> Result<()> {
    let index = ctx.index(Side::Guest, dev).await?;
    let Some(link) = ctx.guest.link_by_index(index).await? else {
        anyhow::bail!("{dev} is gone");
    };
    if link.mtu == mtu {
        return Ok(());
    }
    journal.attempt(Undo::SetGuestMtu { index, mtu: link.mtu }, ctx.guest.set_mtu(index, mtu)).await
}
