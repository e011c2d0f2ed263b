//! Undoing a failed run: the journal's inverses (`super::journal`) run newest first,
//! best effort, and every undo that fails is reported in a line of its own.

use anyhow::Result;

use super::{links, sysctl, BridgeLock, Context, Journal, Undo};
use crate::netlink::Netlink;

/// Undo everything in reverse; return a line per undo that failed.
pub async fn rollback(mut journal: Journal, ctx: &Context<'_>) -> Vec<String> {
    let mut errors = Vec::new();
    while let Some(undo) = journal.pop() {
        if let Err(e) = undo_one(&undo, ctx).await {
            errors.push(format!("rollback: {}: {e:#}", describe(&undo)));
        }
    }
    errors
}

async fn undo_one(undo: &Undo, ctx: &Context<'_>) -> Result<()> {
    match undo {
        Undo::DeleteBridgeIfUnused { index, name } => {
            // No run is between its lookup of this bridge and its port while we look.
            let _exclusive = BridgeLock::exclusive().await?;
            let Some(index) = resolve(ctx.host, *index, name).await? else {
                return Ok(());
            };
            if has_ports(ctx.host, index).await? {
                return Ok(());
            }
            ctx.host.delete_link(index).await
        }
        Undo::DeleteHostLink { index, name } => match resolve(ctx.host, *index, name).await? {
            Some(index) => ctx.host.delete_link(index).await,
            None => Ok(()),
        },
        Undo::SetHostDown { index, .. } => ctx.host.set_down(*index).await,
        Undo::Release { index, .. } => ctx.host.set_nomaster(*index).await,
        Undo::VlanFilteringOff { index, .. } => ctx.host.set_vlan_filtering(*index, false).await,
        Undo::OvsDeleteBridgeIfUnused { name } => {
            let _changing = crate::ovs::exclusive().await;
            match crate::ovs::ports(name).await?.is_empty() {
                true => crate::ovs::del_bridge(name).await,
                false => Ok(()),
            }
        }
        Undo::OvsDeletePort { bridge, port } => crate::ovs::del_port(bridge, port).await,
        Undo::DeleteGuestLink { index, name } => match resolve(ctx.guest, *index, name).await? {
            Some(index) => ctx.guest.delete_link(index).await,
            None => Ok(()),
        },
        Undo::MoveBack { index, nic, disable_ipv6 } => {
            links::move_back(ctx, *index, &nic.0, &nic.1, disable_ipv6.as_deref()).await
        }
        Undo::RestoreIpv6Off { dev, value } => sysctl::restore(ctx, dev, value).await,
        Undo::RestoreSysctl { path, value } => sysctl::restore_path(ctx, path, value).await,
        Undo::DeleteAddress { index, addr } => ctx.guest.del_address(*index, *addr).await,
        // Not deleted after all (its answer was lost): nothing to put back.
        Undo::RestoreRoute(route) => already_there(ctx.guest.add_route(&route.restorable(), false).await),
        Undo::DeleteRoute(route) => ctx.guest.del_route(route).await,
        Undo::SetGuestMtu { index, mtu } => ctx.guest.set_mtu(*index, *mtu).await,
        Undo::RestoreResolvConf { pid, ns, container_if } => {
            super::resolv::restore(Some(*pid), *ns, container_if).map(drop)
        }
        Undo::StopDhcp(kept) => kept.stop().await,
        Undo::PutAddressBack { dev, moved } => super::shim::put_back(ctx.host, dev, moved).await,
        Undo::PutRoutesBack { dev, routes } => super::shim::put_routes_back(ctx.host, dev, routes).await,
        Undo::DeleteHostRoute(route) => ctx.host.del_route(route).await,
    }
}

/// The link to undo: by its index, or (never read) by its name; `None` once gone.
async fn resolve(nl: &Netlink, index: Option<u32>, name: &str) -> Result<Option<u32>> {
    match index {
        Some(i) => Ok(Some(i)),
        None => Ok(nl.link_by_name(name).await?.map(|l| l.index)),
    }
}

fn already_there(r: Result<()>) -> Result<()> {
    match r {
        Err(e) if crate::netlink::errno_of(&e) == Some(nix::errno::Errno::EEXIST) => Ok(()),
        other => other,
    }
}

/// A bridge that another run plugged a port into meanwhile is not ours to remove.
async fn has_ports(host: &Netlink, bridge: u32) -> Result<bool> {
    Ok(host.links().await?.iter().any(|l| l.master == Some(bridge)))
}

fn describe(undo: &Undo) -> String {
    match undo {
        Undo::DeleteBridgeIfUnused { name, .. } => format!("cannot delete bridge {name}"),
        Undo::DeleteHostLink { name, .. } => format!("cannot delete {name}"),
        Undo::SetHostDown { name, .. } => format!("cannot set {name} down again"),
        Undo::Release { name, .. } => format!("cannot take {name} off its bridge again"),
        Undo::VlanFilteringOff { name, .. } => format!("cannot turn VLAN filtering off again on {name}"),
        Undo::OvsDeleteBridgeIfUnused { name } => format!("cannot delete Open vSwitch bridge {name}"),
        Undo::OvsDeletePort { port, .. } => format!("cannot remove port {port} from Open vSwitch"),
        Undo::DeleteGuestLink { name, .. } => format!("cannot delete {name} in the guest"),
        Undo::MoveBack { nic, .. } => format!("cannot give {} back to the host as it was", nic.0.name),
        Undo::RestoreSysctl { path, value } => format!("cannot set {path} back to {value} in the guest"),
        Undo::RestoreIpv6Off { dev, value } => {
            format!("cannot set net.ipv6.conf.{dev}.disable_ipv6 back to {value} in the guest")
        }
        Undo::DeleteAddress { addr, .. } => format!("cannot delete address {addr} in the guest"),
        Undo::RestoreRoute(r) => format!("cannot restore route {} in the guest", r.dst),
        Undo::DeleteRoute(r) => format!("cannot delete route {} in the guest", r.dst),
        Undo::SetGuestMtu { mtu, .. } => format!("cannot set the guest link's MTU back to {mtu}"),
        Undo::RestoreResolvConf { .. } => "cannot put the guest's /etc/resolv.conf back".to_string(),
        Undo::StopDhcp(kept) => format!("cannot stop {}", kept.describe()),
        Undo::PutAddressBack { dev, moved } => format!("cannot put address {} back on {dev}", moved.addr),
        Undo::PutRoutesBack { dev, .. } => format!("cannot put the routes of {dev} back"),
        Undo::DeleteHostRoute(r) => format!("cannot delete the host route to {}", r.dst),
    }
}
