//! `pipework del [HOSTIF] GUEST [-i CONTAINER_IF]`: read the facts, plan the removals
//! (`crate::plan::remove`), print them (`--dry-run`) or do them.

use anyhow::{Context as _, Result};

use crate::apply::{self, Context};
use crate::dhcp::kept::Kept;
use crate::guest;
use crate::intent;
use crate::lifecycle::recover::{recover, Bridges};
use crate::lifecycle::restore;
use crate::model::{Del, RunOpts};
use crate::netlink::Netlink;
use crate::plan::alias::{Alias, Kind};
use crate::plan::remove::{plan_del, DelFacts, DelPlan, Found, Removal, SavedNic};
use crate::plan::{GuestId, Side};
use crate::record;
use crate::report::{warning, Failed, Said, Verb};

/// What a `del` came to.
#[derive(Debug)]
pub enum Removed {
    /// Nothing of the attachment was there: why.
    Nothing(String),
    /// It was there, and is removed (with `--dry-run`, would be).
    Found(Box<Detached>),
}

/// An attachment removed: what it was, and what was done, in order.
#[derive(Debug)]
pub struct Detached {
    /// The guest as it was named.
    pub guest: String,
    pub found: Found,
    /// The DHCP clients stopped first, as `Kept::describe` says them.
    pub stopped: Vec<String>,
    /// Then the removals.
    pub steps: Vec<Removal>,
    /// Then the default routes the attach had replaced, made again.
    pub put_back: Vec<restore::PutBack>,
    /// `--dry-run`: nothing was done.
    pub dry_run: bool,
}

/// The verb: read the facts, plan the removals, and do them (not with `--dry-run`).
pub async fn del(req: &Del, opts: &RunOpts) -> Verb<Removed> {
    let mut notes = Vec::new();
    match removed(req, opts, &mut notes).await {
        Ok(value) => Ok(Said::new(value, notes)),
        Err(e) => Err(Failed::after(e, notes)),
    }
}

async fn removed(req: &Del, opts: &RunOpts, notes: &mut Vec<String>) -> Result<Removed> {
    let host = Netlink::current()?;
    let guest = guest::lookup(&req.guest).await.and_then(guest::not_the_host)?;
    let nl_guest = Netlink::in_netns(guest.netns())?;
    let id = GuestId::of(&guest);
    let cif = req.container_if.as_str();
    undo_interrupted(&host, &nl_guest, &guest, cif, opts.dry_run, notes).await?;
    let rec = load_record(id.ns_inode, cif, notes);
    let mut facts = read_facts(&host, &nl_guest, req).await?;
    facts.nic = rec.as_ref().and_then(|r| r.nic.clone());
    if let Some(nic) = &facts.nic {
        facts.nic_blocked = nic_blocked(&host, nic).await?;
    }
    let (found, mut steps) = match plan_del(req, &id, &facts)? {
        DelPlan::Nothing(why) => {
            // CONTAINER_IF is gone: so is the attachment its record describes, and
            // the clients it left are stopped, its host routes and shim removed.
            if facts.container_if.is_none() && !opts.dry_run {
                if let Some(r) = &rec {
                    stop_clients(r, notes).await;
                    let ctx = Context::new(&host, &nl_guest, guest.netns(), guest.describe());
                    apply::remove(&shim_removals(r), &ctx).await?;
                }
                restore_resolv_conf(&guest, cif, notes);
                if let Err(e) = forget(id.ns_inode, cif) {
                    notes.push(warning(format!("{e:#}")));
                }
            }
            return Ok(Removed::Nothing(why));
        }
        DelPlan::Steps { found, steps, notes: more } => {
            notes.extend(more);
            (found, steps)
        }
    };
    // The guest's link first (it goes whatever happens to the shim), then its routes.
    steps.extend(rec.iter().flat_map(shim_removals));
    if let (None, Kind::Macvlan, Some(cif)) = (&rec, found.alias.kind, &facts.container_if) {
        steps.extend(unrecorded_shim_removals(&host, &nl_guest, &found.alias.host_if, cif).await?);
    }
    // A VLAN device that an attach made goes with its last attachment: a macvlan's
    // parent (its HOSTIF), or a `BRIDGE@UPLINK`'s port of the bridge (HOSTIF).
    if matches!(found.alias.kind, Kind::Macvlan | Kind::Bridge) {
        let leaving = [record::path(id.ns_inode, cif)];
        let ends: Vec<&str> = rec.iter().filter_map(|r| r.host_end.as_deref()).collect();
        let unused = crate::lifecycle::vlan_devices::unused(&host, &leaving, &ends).await?;
        let bridge = host.link_by_name(&found.alias.host_if).await?.filter(|b| b.is_bridge());
        let ours = |l: &crate::netlink::Link| {
            l.name == found.alias.host_if || bridge.as_ref().is_some_and(|b| l.master == Some(b.index))
        };
        if let Some(v) = unused.into_iter().find(ours) {
            steps.push(Removal::DeleteLink { side: Side::Host, name: v.name, index: v.index });
        }
    }
    let saved = rec.as_ref().map_or(&[][..], |r| &r.replaced_routes[..]);
    let (put_back, not_put_back) = put_back(&nl_guest, &facts, saved).await?;
    notes.extend(not_put_back);
    // Those still running (a helper container: Docker is not asked), as gc says them;
    // every one is stopped all the same, which removes the files an ended one left.
    let stopped: Vec<String> = rec
        .iter()
        .flat_map(|r| &r.dhcp)
        .filter(|k| k.is_running() != Some(false))
        .map(Kept::describe)
        .collect();
    if !opts.dry_run {
        // The clients first: the keeper's DHCPRELEASE needs the interface.
        if let Some(r) = &rec {
            stop_clients(r, notes).await;
        }
        let ctx = Context::new(&host, &nl_guest, guest.netns(), guest.describe());
        let removed = apply::remove(&steps, &ctx).await;
        notes.append(&mut ctx.notes.borrow_mut());
        removed?;
        restore::apply(&nl_guest, &put_back).await.context("the attachment is removed, but")?;
        restore_resolv_conf(&guest, cif, notes);
        if let Err(e) = forget(id.ns_inode, cif) {
            notes.push(warning(format!("{e:#}")));
        }
    }
    Ok(Removed::Found(Box::new(Detached {
        guest: req.guest.clone(),
        found,
        stopped,
        steps,
        put_back,
        dry_run: opts.dry_run,
    })))
}

/// An attach of CONTAINER_IF cut short (its intent, `crate::intent`): undone first,
/// whatever it left (links without a mark, a NIC in the guest), and said. One of a
/// run still alive is left alone.
async fn undo_interrupted(
    host: &Netlink,
    nl_guest: &Netlink,
    guest: &guest::Guest,
    cif: &str,
    dry_run: bool,
    notes: &mut Vec<String>,
) -> Result<()> {
    let Some(intent) = intent::load(guest.ns_inode, cif)? else { return Ok(()) };
    if intent.run.is_alive() {
        notes.push(warning(format!("{} is under way: left alone", intent.describe())));
        return Ok(());
    }
    let undone = recover(host, intent, Some((nl_guest, guest.netns())), Bridges::Keep, dry_run).await?;
    notes.extend(undone.map(|done| done.describe(dry_run)));
    Ok(())
}

/// `--host-shim`: the guest's host routes, and its shim when they were its last.
pub fn shim_removals(rec: &record::Record) -> Vec<Removal> {
    let Some(shim) = &rec.shim else { return Vec::new() };
    let routes = shim.routes.iter().map(|dst| Removal::DeleteHostRoute { dst: *dst, dev: shim.name.clone() });
    let unused = Removal::RemoveShimIfUnused { name: shim.name.clone(), mark: shim.mark.clone() };
    routes.chain(std::iter::once(unused)).collect()
}

/// A `--host-shim` guest without its record (lost, or never written: a run whose
/// read-back failed): its host routes found by the shim pipework made on its parent
/// (the shim's mark names the parent) and the guest's addresses now, and the shim
/// removed with its last route, as with a record. The host-wide link dump this costs
/// is only paid by a macvlan's `del` without a record.
async fn unrecorded_shim_removals(
    host: &Netlink,
    nl_guest: &Netlink,
    parent: &str,
    cif: &crate::netlink::Link,
) -> Result<Vec<Removal>> {
    use crate::plan::shim::{host_route_of, ShimMark};
    let links = host.links().await.context("cannot read the host's links")?;
    let shim = links.iter().find_map(|l| ShimMark::of(l).filter(|m| m.parent == parent).map(|m| (l, m)));
    let Some((shim, mark)) = shim else { return Ok(Vec::new()) };
    let routes = apply::shim::guest_routes(host, shim.index).await?;
    let addresses = nl_guest.addresses(cif.index).await.context("cannot read the guest's addresses")?;
    let mut out: Vec<Removal> = addresses
        .iter()
        .map(host_route_of)
        .filter(|dst| routes.iter().any(|r| r.dst == *dst))
        .map(|dst| Removal::DeleteHostRoute { dst, dev: shim.name.clone() })
        .collect();
    if !out.is_empty() {
        out.push(Removal::RemoveShimIfUnused { name: shim.name.clone(), mark: mark.to_string() });
    }
    Ok(out)
}

/// The attachment's record; without one (an unreadable one is a warning) the
/// removal goes on, and puts back and stops nothing.
fn load_record(ns: u64, cif: &str, notes: &mut Vec<String>) -> Option<record::Record> {
    match record::load(ns, cif) {
        Ok(r) => r,
        Err(e) => {
            notes.push(warning(format!("{e:#}: no default route is put back, no DHCP client stopped")));
            None
        }
    }
}

/// Stop the DHCP clients the attach left running; one that cannot be stopped is a
/// warning (the attachment goes all the same).
async fn stop_clients(rec: &record::Record, notes: &mut Vec<String>) {
    for k in &rec.dhcp {
        if let Err(e) = k.stop().await {
            notes.push(warning(format!("cannot stop {}: {e:#}", k.describe())));
        }
    }
}

/// The default routes the attach replaced (`saved`, from its record), and why any
/// is not put back.
async fn put_back(
    nl_guest: &Netlink,
    facts: &DelFacts,
    saved: &[record::SavedRoute],
) -> Result<(Vec<restore::PutBack>, Vec<String>)> {
    if saved.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let going = facts.container_if.as_ref().map_or(0, |l| l.index);
    let links = nl_guest.links().await?;
    let routes = restore::routes_for(nl_guest, saved).await?;
    Ok(restore::plan(saved, &links, &routes, going))
}

/// The attachment's record goes with it (and what runs killed while writing one
/// left: see `record::remove_dead_temporaries`).
fn forget(ns: u64, cif: &str) -> Result<()> {
    record::remove_dead_temporaries(&record::dir());
    record::remove_dead_temporaries(&intent::dir());
    record::remove_at(&record::path(ns, cif)).map(drop)
}

/// CONTAINER_IF; the host link its veth peer index names; with `--prune-bridge`, the
/// ports of the bridge the mark names.
async fn read_facts(host: &Netlink, guest: &Netlink, req: &Del) -> Result<DelFacts> {
    let cif = req.container_if.as_str();
    let container_if = guest.link_by_name(cif).await.context("cannot read the guest's interfaces")?;
    let host_end = match container_if.as_ref().filter(|l| l.is_veth()).and_then(|l| l.peer) {
        Some(peer) => host.link_by_index(peer).await.context("cannot read the host end")?,
        None => None,
    };
    let mut facts =
        DelFacts { container_if, host_end, nic: None, nic_blocked: None, ovs_ids: None, bridge_ports: None };
    let mark = facts.host_end.as_ref().and_then(|h| h.alias.as_deref()).and_then(Alias::parse);
    if let (None, Some(end)) = (&mark, &facts.host_end) {
        facts.ovs_ids = ovs_ids(&end.name).await?;
    }
    if let (true, Some(Ok(alias))) = (req.prune_bridge, mark) {
        facts.bridge_ports = bridge_ports(host, &alias).await?;
    }
    Ok(facts)
}

/// Why a saved NIC cannot go back now: its name is another interface's on the host,
/// or the bridge it was a port of is gone.
async fn nic_blocked(host: &Netlink, nic: &SavedNic) -> Result<Option<String>> {
    if host.link_by_name(&nic.name).await?.is_some() {
        return Ok(Some(format!("the host has an interface {} now", nic.name)));
    }
    match &nic.master {
        Some(bridge) if host.link_by_name(bridge).await?.is_none() => {
            Ok(Some(format!("its bridge {bridge} is gone")))
        }
        _ => Ok(None),
    }
}

/// The `pipework.*` external ids of Open vSwitch's Interface record `name`, when
/// an Open vSwitch database runs here and it has such ids.
async fn ovs_ids(name: &str) -> Result<Option<Vec<(String, String)>>> {
    if crate::ovs::vsctl_path().is_none() || !crate::ovs::database_running() {
        return Ok(None);
    }
    let marked = crate::ovs::marked_interfaces().await.context("cannot read Open vSwitch's interfaces")?;
    Ok(marked.into_iter().find(|m| m.name == name).map(|m| m.ids))
}

async fn bridge_ports(host: &Netlink, alias: &Alias) -> Result<Option<Vec<String>>> {
    let name = &alias.host_if;
    if alias.kind == Kind::Ovs {
        if !crate::ovs::bridge_exists(name).await? {
            return Ok(None);
        }
        return crate::ovs::ports(name).await.map(Some);
    }
    let Some(bridge) = host.link_by_name(name).await?.filter(|l| l.is_bridge()) else {
        return Ok(None);
    };
    let links = host.links().await?;
    Ok(Some(links.into_iter().filter(|l| l.master == Some(bridge.index)).map(|l| l.name).collect()))
}

/// `dhcp4:dns` rewrote the guest's resolv.conf: its original back (`apply::resolv`).
fn restore_resolv_conf(guest: &guest::Guest, cif: &str, notes: &mut Vec<String>) {
    if let Err(e) = crate::apply::resolv::restore(guest.pid, guest.ns_inode, cif) {
        notes.push(warning(format!("{e:#}")));
    }
}
