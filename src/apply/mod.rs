//! Doing it: run each planned step through netlink, record its undo, and on the
//! first error undo the completed steps in reverse before reporting.

mod journal;
mod links;
mod ovs;
mod sysctl;

use std::os::fd::BorrowedFd;

use anyhow::{anyhow, bail, Context as _, Result};
use nix::errno::Errno;

pub use journal::{Journal, Undo};

use crate::netlink::{errno_of, Netlink, Route, VethRequest};
use crate::plan::{veth_host_end, GuestLink, Step};

/// The handles a run needs: one netlink socket per namespace, opened up front.
pub struct Context<'a> {
    pub host: &'a Netlink,
    pub guest: &'a Netlink,
    pub guest_ns: BorrowedFd<'a>,
    /// "container web1 (pid 123)", for messages.
    pub guest_desc: String,
}

/// A failed run: what failed, plus a line for every undo that failed too.
#[derive(Debug)]
pub struct Failure {
    pub error: anyhow::Error,
    pub rollback_errors: Vec<String>,
}

/// Apply all steps or none.
pub async fn apply(steps: &[Step], ctx: &Context<'_>) -> Result<(), Failure> {
    // A DHCP client that is not installed is refused before any change, as the original does.
    crate::dhcp::preflight(steps).map_err(|error| Failure { error, rollback_errors: Vec::new() })?;
    let mut journal = Journal::default();
    for step in steps {
        // A signal stops the run between steps (long steps watch for it themselves),
        // and the done ones are undone like after any failure.
        if let Err(error) = crate::interrupt::check() {
            let rollback_errors = journal.rollback(ctx).await;
            return Err(Failure { error, rollback_errors });
        }
        if let (Step::Dhcp(_), Some(host_end)) = (step, veth_host_end(steps)) {
            // A DISCOVER sent before the host end's port forwards is lost, and the
            // client's first retry comes seconds later.
            ctx.host.until_passes_frames(host_end).await;
        }
        if let Err(e) = run(step, ctx, &mut journal).await {
            let error = missing_kernel_feature(step, e).context(what(step, ctx));
            let rollback_errors = journal.rollback(ctx).await;
            return Err(Failure { error, rollback_errors });
        }
    }
    journal.commit();
    Ok(())
}

/// The human phrase for a failed step: "cannot ... ".
fn what(step: &Step, ctx: &Context<'_>) -> String {
    let g = &ctx.guest_desc;
    match step {
        Step::CreateBridge { name } => format!("cannot create bridge {name}"),
        Step::DeleteStaleVeth { name } => format!("cannot delete the stale {name}"),
        Step::CreateVeth { host, peer, bridge: Some(bridge), .. } => {
            format!("cannot create veth pair {host} on {bridge} with {peer} in {g}")
        }
        Step::CreateVeth { host, peer, bridge: None, .. } => {
            format!("cannot create veth pair {host} with {peer} in {g}")
        }
        Step::CreateOvsBridge { name, .. } => format!("cannot create Open vSwitch bridge {name}"),
        Step::AddOvsPort { bridge, port, .. } => format!("cannot add {port} to Open vSwitch bridge {bridge}"),
        Step::EnableIpv6 { dev } => format!("cannot enable IPv6 on {dev} in {g}"),
        Step::AddAddress { dev, addr, .. } => format!("cannot add address {addr} to {dev} in {g}"),
        Step::LinkUp { dev } => format!("cannot set {dev} up in {g}"),
        Step::CreateVlan { name, .. } => format!("cannot create VLAN device {name}"),
        Step::SetHostUp { name } => format!("cannot set {name} up"),
        Step::CreateGuestLink { name, kind, .. } => {
            format!("cannot create {} {name} in {g}", kind_name(kind))
        }
        Step::MoveIntoGuest { name, new_name, .. } => format!("cannot move {name} into {g} as {new_name}"),
        Step::DeleteRoute { .. } => format!("cannot delete the default route in {g}"),
        Step::AddRoute { dst, gateway: Some(gw), dev, .. } if dst.prefix() == 0 => {
            format!("cannot set the default route via {gw} on {dev} in {g}")
        }
        Step::AddRoute { dst, dev, .. } => format!("cannot add the route to {dst} on {dev} in {g}"),
        Step::Dhcp(req) => format!("cannot get a DHCP lease with {} on {} in {g}", req.client, req.dev),
    }
}

/// A kernel built without a link kind answers EOPNOTSUPP: say which feature is missing.
fn missing_kernel_feature(step: &Step, e: anyhow::Error) -> anyhow::Error {
    let feature = match step {
        Step::CreateVlan { .. } => "802.1Q VLAN",
        Step::CreateGuestLink { kind: GuestLink::Dummy, .. } => "dummy interface",
        Step::CreateGuestLink { kind: GuestLink::Ipoib { .. }, .. } => "IPoIB",
        Step::CreateGuestLink { kind: GuestLink::Macvlan { .. }, .. } => "macvlan",
        _ => return e,
    };
    if errno_of(&e) == Some(Errno::EOPNOTSUPP) {
        return anyhow!("{e}; this kernel has no {feature} support");
    }
    e
}

fn kind_name(kind: &GuestLink) -> String {
    match kind {
        GuestLink::Macvlan { parent, .. } => format!("macvlan on {parent} as"),
        GuestLink::Dummy => "dummy interface".to_string(),
        GuestLink::Ipoib { parent, .. } => format!("IPoIB child of {parent} as"),
    }
}

async fn run(step: &Step, ctx: &Context<'_>, journal: &mut Journal) -> Result<()> {
    match step {
        Step::CreateVlan { name, parent, id, mtu } => {
            links::create_vlan(ctx, journal, name, parent, *id, *mtu).await
        }
        Step::SetHostUp { name } => links::set_host_up(ctx, journal, name).await,
        Step::CreateGuestLink { name, kind, mtu, mac } => {
            links::create_in_guest(ctx, journal, name, kind, *mtu, *mac).await
        }
        Step::MoveIntoGuest { name, new_name, mac } => {
            links::move_into_guest(ctx, journal, name, new_name, *mac).await
        }
        Step::CreateBridge { name } => create_bridge(ctx.host, name, journal).await,
        Step::DeleteStaleVeth { name } => {
            // Irreversible by nature (the original does the same); planned after every check.
            let link = ctx.host.link_by_name(name).await?;
            match link {
                Some(l) => ctx.host.delete_link(l.index).await,
                None => Ok(()),
            }
        }
        Step::CreateOvsBridge { name, datapath } => {
            ovs::create_bridge(ctx, journal, name, datapath.as_deref()).await
        }
        Step::AddOvsPort { bridge, port, tag, external_ids, existing } => {
            ovs::add_port(journal, bridge, port, *tag, external_ids, *existing).await
        }
        Step::CreateVeth { host, peer, mtu, bridge, mac } => {
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
        Step::EnableIpv6 { dev } => sysctl::enable_ipv6(ctx, journal, dev).await,
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
        Step::Dhcp(req) => crate::dhcp::run(req, ctx, journal).await,
    }
}

/// Create a bridge; losing a race to another run that creates the same bridge is
/// fine (we use theirs, and it is not ours to remove on rollback).
async fn create_bridge(host: &Netlink, name: &str, journal: &mut Journal) -> Result<()> {
    match host.create_bridge(name).await {
        Ok(()) => {
            let index = index_of(host, name).await?;
            journal.push(Undo::DeleteBridgeIfUnused { index, name: name.to_string() });
            Ok(())
        }
        Err(e) if errno_of(&e) == Some(Errno::EEXIST) => match host.link_by_name(name).await? {
            Some(l) if l.is_bridge() => Ok(()),
            _ => bail!("{name} exists and is not a bridge"),
        },
        Err(e) => Err(e),
    }
}

pub(crate) async fn index_of(nl: &Netlink, name: &str) -> Result<u32> {
    nl.link_by_name(name)
        .await
        .with_context(|| format!("cannot look up {name}"))?
        .map(|l| l.index)
        .ok_or_else(|| anyhow!("{name} has disappeared"))
}
