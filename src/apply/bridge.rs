//! The veth modes' host side: a Linux bridge made when missing, a stale veth out of
//! the way, and the veth pair whose guest end is born in the guest.

use anyhow::{bail, Result};
use nix::errno::Errno;

use super::{index_of, Context, Journal, Undo};
use crate::netlink::{errno_of, VethRequest};
use crate::plan::Step;

/// Create a bridge; losing a race to another run that creates the same bridge is
/// fine (we use theirs, and it is not ours to remove on rollback).
pub async fn create_bridge(ctx: &Context<'_>, journal: &mut Journal, name: &str) -> Result<()> {
    match ctx.host.create_bridge(name).await {
        Ok(()) => {
            let index = index_of(ctx.host, name).await?;
            journal.push(Undo::DeleteBridgeIfUnused { index, name: name.to_string() });
            Ok(())
        }
        Err(e) if errno_of(&e) == Some(Errno::EEXIST) => match ctx.host.link_by_name(name).await? {
            Some(l) if l.is_bridge() => Ok(()),
            _ => bail!("{name} exists and is not a bridge"),
        },
        Err(e) => Err(e),
    }
}

/// A down veth left by an earlier run, as the original deletes it: irreversible by
/// nature, so the planner puts it after every check.
pub async fn delete_stale_veth(ctx: &Context<'_>, name: &str) -> Result<()> {
    match ctx.host.link_by_name(name).await? {
        Some(l) => ctx.host.delete_link(l.index).await,
        None => Ok(()),
    }
}

/// The pair, host end on its bridge (if a Linux one), guest end in the guest.
pub async fn create_veth(ctx: &Context<'_>, journal: &mut Journal, step: &Step) -> Result<()> {
    let Step::CreateVeth { host, peer, mtu, bridge, mac } = step else { unreachable!("a veth step") };
    let master = match bridge {
        Some(b) => Some(index_of(ctx.host, b).await?),
        None => None,
    };
    let req = VethRequest {
        name: host,
        mtu: *mtu,
        master,
        peer_name: peer,
        peer_netns: ctx.guest_ns,
        peer_mac: *mac,
    };
    ctx.host.create_veth(&req).await?;
    let index = index_of(ctx.host, host).await?;
    journal.push(Undo::DeleteHostLink { index, name: host.clone() });
    Ok(())
}
