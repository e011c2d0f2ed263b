//! Addressing inside the guest: addresses, the link up, routes; each with its undo.
//! Static addresses and the built-in DHCP client's lease both come through here.

use anyhow::Result;

use super::{index_of, Context, Journal, Undo};
use crate::netlink::Route;
use crate::plan::Step;

pub async fn run(step: &Step, ctx: &Context<'_>, journal: &mut Journal) -> Result<()> {
    match step {
        Step::AddAddress { dev, addr, broadcast } => {
            let index = index_of(ctx.guest, dev).await?;
            ctx.guest.add_address(index, *addr, *broadcast).await?;
            journal.push(Undo::DeleteAddress { index, addr: *addr });
            Ok(())
        }
        Step::LinkUp { dev } => {
            // No undo of its own: the link is one we created, and undoing that removes it.
            ctx.guest.set_up(index_of(ctx.guest, dev).await?).await
        }
        Step::DeleteRoute { route, .. } => {
            ctx.guest.del_route(route).await?;
            journal.push(Undo::RestoreRoute(route.clone()));
            Ok(())
        }
        Step::AddRoute { dst, gateway, dev, replace } => {
            let route = Route::new(*dst, *gateway, index_of(ctx.guest, dev).await?)?;
            ctx.guest.add_route(&route, *replace).await?;
            journal.push(Undo::DeleteRoute(route));
            Ok(())
        }
        other => unreachable!("not an addressing step: {other}"),
    }
}
