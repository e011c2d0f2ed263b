//! Addressing inside the guest: addresses, the link up, routes; each with its undo,
//! recorded before the request (see `Journal::attempt`). Static addresses and the
//! built-in DHCP client's lease both come through here.

use anyhow::Result;

use super::{Context, Journal, Undo};
use crate::netlink::Route;
use crate::plan::{Side, Step};

pub async fn run(step: &Step, ctx: &Context<'_>, journal: &mut Journal) -> Result<()> {
    let nl = ctx.guest;
    match step {
        Step::AddAddress { dev, addr, broadcast } => {
            let index = ctx.index(Side::Guest, dev).await?;
            let undo = Undo::DeleteAddress { index, addr: *addr };
            journal.attempt(undo, nl.add_address(index, *addr, *broadcast)).await
        }
        Step::LinkUp { dev, arp_notify } => {
            // No undo of its own: the link is one we created, and undoing that removes it.
            let index = ctx.index(Side::Guest, dev).await?;
            match arp_notify {
                true => nl.set_up_with_arp_notify(index).await,
                false => nl.set_up(index).await,
            }
        }
        Step::DeleteRoute { route, .. } => {
            journal.attempt(Undo::RestoreRoute(route.clone()), nl.del_route(route)).await
        }
        Step::AddRoute { dst, gateway, dev, replace } => {
            let route = Route::new(*dst, *gateway, ctx.index(Side::Guest, dev).await?)?;
            journal.attempt(Undo::DeleteRoute(route.clone()), nl.add_route(&route, *replace)).await
        }
        other => unreachable!("not an addressing step: {other}"),
    }
}
