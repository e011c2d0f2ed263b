//! The undo journal: each applied step records its inverse; on failure the
//! inverses run in reverse order, best effort, and every undo error is reported.

use anyhow::Result;
use ipnetwork::IpNetwork;

use super::Context;
use crate::netlink::{Link, LinkConfig, Netlink, Route};

/// The inverse of one applied step.
#[derive(Debug)]
pub enum Undo {
    /// A bridge we created; kept if someone else has plugged a port into it since.
    /// `index: None`: made, but its index was never read (found by name then).
    DeleteBridgeIfUnused {
        index: Option<u32>,
        name: String,
    },
    /// A host link we created (deleting a veth end deletes the pair); `index` as above.
    DeleteHostLink {
        index: Option<u32>,
        name: String,
    },
    /// An Open vSwitch bridge we created; kept if it has ports (another run's).
    OvsDeleteBridgeIfUnused {
        name: String,
    },
    /// A port we added to an Open vSwitch bridge.
    OvsDeletePort {
        bridge: String,
        port: String,
    },
    /// A host link we set up that was down.
    SetHostDown {
        index: u32,
        name: String,
    },
    /// A link we created inside the guest; `index` as above.
    DeleteGuestLink {
        index: Option<u32>,
        name: String,
    },
    /// A host link we moved into the guest (`--direct-phys`), with what it had:
    /// the link as it was, and its addresses and routes; and its own
    /// `disable_ipv6` on the host, which a move resets to the namespace's default.
    MoveBack {
        index: u32,
        nic: Box<(Link, LinkConfig)>,
        disable_ipv6: Option<String>,
    },
    /// A guest interface's `disable_ipv6` we set to 0: back to `value`.
    /// A guest sysctl file we changed (`/proc/sys/net/ipv6/conf/DEV/KEY`): back to `value`.
    RestoreSysctl {
        path: String,
        value: String,
    },
    RestoreIpv6Off {
        dev: String,
        value: String,
    },
    DeleteAddress {
        index: u32,
        addr: IpNetwork,
    },
    /// A guest route we deleted: put back as it was.
    RestoreRoute(Route),
    DeleteRoute(Route),
    /// A DHCP client left running to renew its lease (`-f` forms).
    StopDhcp(crate::dhcp::Running),
}

/// Applied steps' inverses, newest last. Async undo cannot run in `Drop`, so the
/// caller must end every journal with [`Journal::commit`] or [`Journal::rollback`];
/// `apply` is the one place that does.
#[derive(Debug, Default)]
#[must_use]
pub struct Journal {
    undos: Vec<Undo>,
}

impl Journal {
    pub fn push(&mut self, undo: Undo) {
        self.undos.push(undo);
    }

    /// Make a change with its undo recorded first: the undo stays when the change
    /// succeeded, and when its outcome is unknown (the kernel's answer was lost, so
    /// the change may be made); it goes when the change surely failed. Every undo
    /// tolerates finding its change not made.
    pub async fn attempt(
        &mut self,
        undo: Undo,
        change: impl std::future::Future<Output = Result<()>>,
    ) -> Result<()> {
        self.undos.push(undo);
        let result = change.await;
        if let Err(e) = &result {
            if !crate::netlink::unanswered(e) {
                self.undos.pop();
            }
        }
        result
    }

    /// Keep everything; hand back what a later `del` must know and the kernel
    /// cannot say (the DHCP clients left running, a NIC's saved configuration).
    pub fn commit(mut self) -> super::Applied {
        let mut applied = super::Applied::default();
        for undo in self.undos.drain(..) {
            match undo {
                Undo::StopDhcp(running) => applied.running.push(running),
                Undo::MoveBack { index, nic, disable_ipv6 } => {
                    let (nic, config) = *nic;
                    applied.moved = Some(super::Moved { index, nic, config, disable_ipv6 });
                }
                _ => {}
            }
        }
        applied
    }

    /// Undo everything in reverse; return a line per undo that failed.
    pub async fn rollback(mut self, ctx: &Context<'_>) -> Vec<String> {
        let mut errors = Vec::new();
        while let Some(undo) = self.undos.pop() {
            if let Err(e) = undo_one(&undo, ctx).await {
                errors.push(format!("rollback: {}: {e:#}", describe(&undo)));
            }
        }
        errors
    }
}

async fn undo_one(undo: &Undo, ctx: &Context<'_>) -> Result<()> {
    match undo {
        Undo::DeleteBridgeIfUnused { index, name } => {
            // No run is between its lookup of this bridge and its port while we look.
            let _exclusive = super::BridgeLock::exclusive().await?;
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
            super::links::move_back(ctx, *index, &nic.0, &nic.1, disable_ipv6.as_deref()).await
        }
        Undo::RestoreIpv6Off { dev, value } => super::sysctl::restore(ctx, dev, value).await,
        Undo::RestoreSysctl { path, value } => super::sysctl::restore_path(ctx, path, value).await,
        Undo::DeleteAddress { index, addr } => ctx.guest.del_address(*index, *addr).await,
        // Not deleted after all (its answer was lost): nothing to put back.
        Undo::RestoreRoute(route) => already_there(ctx.guest.add_route(&route.restorable(), false).await),
        Undo::DeleteRoute(route) => ctx.guest.del_route(route).await,
        Undo::StopDhcp(running) => running.stop().await,
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
        Undo::StopDhcp(running) => format!("cannot stop {running}"),
    }
}
