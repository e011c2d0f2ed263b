//! Doing it: run each planned step through netlink, record its undo, and on the
//! first error undo the completed steps in reverse before reporting.

mod addressing;
mod bridge;
mod bridge_lock;
mod context;
mod delegated;
mod dhcp;
mod journal;
mod links;
mod ovs;
mod remove;
pub mod resolv;
mod rollback;
pub mod shim;
mod slaac;
mod sysctl;

use anyhow::{anyhow, Result};
use nix::errno::Errno;

pub use bridge_lock::BridgeLock;
pub use context::{Context, Known};
pub use delegated::Delegated;
pub use journal::{Journal, Undo};
pub use remove::remove;
pub use shim::ShimLock;

use crate::netlink::{errno_of, Link};
use crate::plan::{veth_host_end, Side, Step};

/// A failed run: what failed, plus a line for every undo that failed too.
#[derive(Debug)]
pub struct Failure {
    pub error: anyhow::Error,
    pub rollback_errors: Vec<String>,
}

/// What a successful run leaves that its record must hold (see `crate::record`).
#[derive(Debug, Default)]
pub struct Applied {
    /// The DHCP clients left running (`-f` forms), for `del` and `gc` to stop.
    pub running: Vec<crate::dhcp::Kept>,
    /// A `--direct-phys` NIC moved in, as it was on the host, for `del` to give back.
    pub moved: Option<Moved>,
    /// The steps that applied a CNI IPAM plugin's answer (`Step::Delegated`): the
    /// run's own from here on, for the announcement, the record and `--verbose`.
    pub delegated_steps: Vec<Step>,
}

/// A NIC moved into the guest: its index there, and what the rollback would restore.
#[derive(Debug)]
pub struct Moved {
    pub index: u32,
    pub nic: Link,
    pub config: crate::netlink::LinkConfig,
    pub disable_ipv6: Option<String>,
}

/// Apply all steps or none. `answer`: what a `Step::Delegated` awaits (the CNI IPAM
/// plugin's answer, given by the caller of the attach).
pub async fn apply(steps: &[Step], ctx: &Context<'_>, answer: Option<Delegated>) -> Result<Applied, Failure> {
    // A DHCP client that is not installed is refused before any change, as the original does.
    let clients = steps.iter().filter_map(|s| match s {
        Step::Dhcp(req) => Some(req),
        _ => None,
    });
    crate::dhcp::preflight(clients).map_err(|error| Failure { error, rollback_errors: Vec::new() })?;
    let mut journal = Journal::default();
    let mut delegation = delegated::Delegation { answer, applied: Vec::new() };
    for step in steps {
        // A signal stops the run between steps (long steps watch for it themselves),
        // and the done ones are undone like after any failure.
        if let Err(error) = crate::interrupt::check() {
            ctx.release_bridge_lock();
            let rollback_errors = rollback::rollback(journal, ctx).await;
            return Err(Failure { error, rollback_errors });
        }
        if let (Step::Dhcp(_), Some(host_end)) = (step, veth_host_end(steps)) {
            // A DISCOVER sent before the host end's port forwards is lost, and the
            // client's first retry comes seconds later.
            ctx.host.until_passes_frames(host_end).await;
        }
        if let Err(e) = run(step, ctx, &mut journal, &mut delegation).await {
            let error = missing_kernel_feature(step, e).context(step.failure(&ctx.guest_desc));
            ctx.release_bridge_lock();
            let rollback_errors = rollback::rollback(journal, ctx).await;
            return Err(Failure { error, rollback_errors });
        }
    }
    // The last check before keeping it all.
    if let Err(error) = ctx.guest_is_there() {
        ctx.release_bridge_lock();
        let rollback_errors = rollback::rollback(journal, ctx).await;
        return Err(Failure { error, rollback_errors });
    }
    Ok(Applied { delegated_steps: delegation.applied, ..journal.commit() })
}

/// Run one step, recording its undo. Each kind's apply and undo live in its own file.
async fn run(
    step: &Step,
    ctx: &Context<'_>,
    journal: &mut Journal,
    delegation: &mut delegated::Delegation,
) -> Result<()> {
    match step {
        Step::CreateBridge { name } => bridge::create_bridge(ctx, journal, name).await,
        Step::DeleteStaleVeth { name } => bridge::delete_stale_veth(ctx, name).await,
        Step::CreateVeth(veth) => bridge::create_veth(ctx, journal, veth).await,
        Step::CreateOvsBridge { name, datapath } => {
            ovs::create_bridge(ctx, journal, name, datapath.as_deref()).await
        }
        Step::AddOvsPort(port) => ovs::add_port(journal, port).await,
        // On the veth this run has just made: its undo (deleting the pair) takes it along.
        Step::IsolatePort { name } => {
            ctx.host.set_port_isolated(ctx.index(Side::Host, name).await?, true).await
        }
        Step::CreateVlan { name, parent, id, mtu } => {
            links::create_vlan(ctx, journal, name, parent, *id, *mtu).await
        }
        Step::SetHostUp { name } => links::set_host_up(ctx, journal, name).await,
        Step::EnslaveUplink { port, bridge } => links::enslave(ctx, journal, port, bridge).await,
        Step::CreateShim { name, parent, mark } => shim::create(ctx, journal, name, parent, mark).await,
        Step::MoveAddress { moved, from, to } => shim::move_address(ctx, journal, *moved, from, to).await,
        Step::AddHostAddress { dev, addr } => shim::add_address(ctx, dev, *addr).await,
        Step::AddHostRoute { dst, dev } => shim::add_route(ctx, journal, *dst, dev).await,
        Step::BridgeVlanFiltering { bridge } => bridge::vlan_filtering_on(ctx, journal, bridge).await,
        Step::BridgePortVlan { port, vid, vlans } => bridge::port_vlan(ctx, port, *vid, vlans).await,
        // On a link this run made: its undo (deleting the link) takes the alias along.
        Step::SetAlias { side, dev, alias } => {
            ctx.nl(*side).set_alias(ctx.index(*side, dev).await?, alias).await
        }
        Step::CreateGuestLink(link) => links::create_in_guest(ctx, journal, link).await,
        Step::MoveIntoGuest { name, new_name, mac } => {
            links::move_into_guest(ctx, journal, name, new_name, *mac).await
        }
        Step::AddAddress { dev, addr, broadcast } => {
            addressing::add_address(ctx, journal, dev, *addr, *broadcast).await
        }
        Step::LinkUp { dev, arp_notify } => addressing::link_up(ctx, dev, *arp_notify).await,
        Step::DeleteRoute { route, .. } => addressing::delete_route(ctx, journal, route).await,
        Step::AddRoute { dst, gateway, dev, replace } => {
            addressing::add_route(ctx, journal, *dst, *gateway, dev, *replace).await
        }
        Step::EnableIpv6 { dev, optimistic } => sysctl::enable_ipv6(ctx, journal, dev, *optimistic).await,
        Step::Slaac { dev, timeout } => slaac::run(ctx, journal, dev, *timeout).await,
        Step::SetMtu { dev, mtu } => addressing::set_mtu(ctx, journal, dev, *mtu).await,
        Step::Dhcp(req) => dhcp::run(req, ctx, journal).await,
        Step::Delegated { dev, plugin, shim } => {
            delegated::run(ctx, journal, (dev, plugin), shim.as_deref(), delegation).await
        }
    }
}

/// The steps a step makes of what it got (a lease, an IPAM plugin's answer), applied
/// as any step is, each failure said in its own words. (Boxed: `run` is what calls
/// the steps that call this.)
async fn run_derived(steps: &[Step], ctx: &Context<'_>, journal: &mut Journal) -> Result<()> {
    for step in steps {
        let mut none = delegated::Delegation::default();
        Box::pin(run(step, ctx, journal, &mut none))
            .await
            .map_err(|e| e.context(step.failure(&ctx.guest_desc)))?;
    }
    Ok(())
}

/// A kernel built without a link kind answers EOPNOTSUPP: say which feature is missing.
fn missing_kernel_feature(step: &Step, e: anyhow::Error) -> anyhow::Error {
    match step.kernel_feature() {
        Some(feature) if errno_of(&e) == Some(Errno::EOPNOTSUPP) => {
            anyhow!("{e}; this kernel has no {feature} support")
        }
        _ => e,
    }
}

/// A host link this run asked the kernel to make (`made`, the answer): its undo,
/// `undo(index)`, is recorded at once, by name (`None`) when the kernel does not echo
/// the index or the answer was lost; and its index becomes known. The error, if
/// any, is passed on for the caller to judge (EEXIST: a racing run's).
async fn record_host_link(
    ctx: &Context<'_>,
    journal: &mut Journal,
    made: Result<Option<Link>>,
    name: &str,
    undo: impl Fn(Option<u32>) -> Undo,
) -> Result<Option<Link>> {
    match made {
        Ok(echo) => {
            let index = match &echo {
                Some(l) => l.index,
                // No echo (a kernel before 6.3): looked up, and by name should that fail.
                None => match ctx.index(Side::Host, name).await {
                    Ok(i) => i,
                    Err(e) => {
                        journal.push(undo(None));
                        return Err(e);
                    }
                },
            };
            journal.push(undo(Some(index)));
            ctx.learn(Side::Host, name, index, echo.as_ref().and_then(|l| l.mac));
            Ok(echo)
        }
        Err(e) => {
            if crate::netlink::unanswered(&e) {
                journal.push(undo(None));
            }
            Err(e)
        }
    }
}
