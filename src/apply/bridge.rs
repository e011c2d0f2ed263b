//! The veth modes' host side: a Linux bridge made when missing, a stale veth out of
//! the way, and the veth pair whose guest end is born in the guest.

use anyhow::{bail, Result};
use nix::errno::Errno;

use super::{record_host_link, Context, Journal, Undo};
use crate::model::Mac;
use crate::netlink::{errno_of, unanswered, VethRequest};
use crate::plan::{Side, Veth};

/// Create a bridge; losing a race to another run that creates the same bridge is
/// fine (we use theirs, and it is not ours to remove on rollback).
pub async fn create_bridge(ctx: &Context<'_>, journal: &mut Journal, name: &str) -> Result<()> {
    let made = ctx.host.create_bridge(name).await;
    let undo = |index| Undo::DeleteBridgeIfUnused { index, name: name.to_string() };
    match record_host_link(ctx, journal, made, name, undo).await {
        Ok(_) => Ok(()),
        Err(e) if errno_of(&e) == Some(Errno::EEXIST) => match ctx.host.link_by_name(name).await? {
            Some(l) if l.is_bridge() => {
                ctx.learn(Side::Host, name, l.index, None);
                Ok(())
            }
            _ => bail!("{name} exists and is not a bridge"),
        },
        Err(e) => Err(e),
    }
}

/// A down veth left by an earlier run, as the original deletes it: irreversible by
/// nature, so the planner puts it after every check.
pub async fn delete_stale_veth(ctx: &Context<'_>, name: &str) -> Result<()> {
    ctx.forget(Side::Host, name);
    match ctx.host.link_by_name(name).await? {
        Some(l) => ctx.host.delete_link(l.index).await,
        None => Ok(()),
    }
}

/// The pair, host end on its bridge (if a Linux one), guest end in the guest. The
/// guest end gets a MAC of our choosing when none is asked for (random and locally
/// administered, as the kernel would pick), so that the announcement later needs no
/// lookup; the kernel's echo of the host end gives both indexes.
pub async fn create_veth(ctx: &Context<'_>, journal: &mut Journal, veth: &Veth) -> Result<()> {
    let Veth { host, peer, mtu, bridge, mac } = veth;
    let master = match bridge {
        Some(b) => Some(ctx.index(Side::Host, b).await?),
        None => None,
    };
    let peer_mac = match mac {
        Some(m) => *m,
        None => Mac::random_local()?,
    };
    let req = VethRequest {
        name: host,
        mtu: *mtu,
        master,
        peer_name: peer,
        peer_netns: ctx.guest_ns,
        peer_mac: Some(peer_mac),
    };
    let made = ctx.host.create_veth(&req).await;
    if let Err(e) = made {
        // Its answer lost, the pair may be made, or may be another run's (EEXIST): ours
        // only if the guest end carries the MAC we chose for it.
        if unanswered(&e) {
            let guest_end = ctx.guest.link_by_name(peer).await.ok().flatten();
            if guest_end.is_some_and(|l| l.mac == Some(peer_mac)) {
                journal.push(Undo::DeleteHostLink { index: None, name: host.clone() });
            }
        }
        return Err(e);
    }
    let undo = |index| Undo::DeleteHostLink { index, name: host.clone() };
    let echo = record_host_link(ctx, journal, made, host, undo).await?;
    // On its bridge now: a rollback elsewhere sees the port and keeps the bridge.
    ctx.release_bridge_lock();
    if let Some(p) = echo.and_then(|l| l.peer) {
        ctx.learn(Side::Guest, peer, p, Some(peer_mac));
    }
    Ok(())
}

/// VLAN filtering on for `@VLAN` on a Linux bridge (a kernel without it answers
/// EOPNOTSUPP, said as the missing feature by the caller).
pub async fn vlan_filtering_on(ctx: &Context<'_>, j: &mut Journal, bridge: &str) -> Result<()> {
    let index = ctx.index(Side::Host, bridge).await?;
    let undo = Undo::VlanFilteringOff { index, name: bridge.to_string() };
    j.attempt(undo, ctx.host.set_vlan_filtering(index, true)).await
}

/// The host end an untagged member of VLAN `vid`, a tagged one of the trunk's, and
/// of VLAN 1 only when kept (it goes with the veth: no undo).
pub async fn port_vlan(
    ctx: &Context<'_>,
    port: &str,
    vid: Option<u16>,
    vlans: &crate::model::PortVlans,
) -> Result<()> {
    let index = ctx.index(Side::Host, port).await?;
    if let Some(vid) = vid {
        ctx.host.add_port_pvid(index, vid).await?;
    }
    if !vlans.trunk.is_empty() {
        ctx.host.add_port_tagged(index, vlans.trunk.ranges()).await?;
    }
    if crate::plan::drops_default_vlan(vid, vlans) {
        ctx.host.del_port_vlan(index, crate::netlink::DEFAULT_PVID).await?;
    }
    Ok(())
}
