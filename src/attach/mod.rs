//! One attachment, end to end: resolve the guest, read the facts, plan, then
//! give the plan (`--dry-run`) or apply it all-or-nothing: the verb [`attach`],
//! which the command line (`crate::run`), `--batch`, CNI and `watch` call.

mod intended;
mod recorded;
pub mod result;

use anyhow::Result;

use crate::apply::{self, Applied, BridgeLock, Context, Failure, ShimLock};
use crate::guest::{self, Guest};
use crate::lifecycle::recover::{self, Bridges};
use crate::model::{Attach, RunOpts};
use crate::netlink::{Link, Netlink};
use crate::plan::{self, Class, GuestId, Mode, Plan, Side, Terms};
use crate::report::{warning, Failed, Said, Verb};
use crate::{announce, facts, intent, interrupt, record};
pub use result::Attached;

/// Everything read and decided before anything changes.
struct Prepared {
    guest: Guest,
    /// The guest's netlink socket.
    nl_guest: Netlink,
    plan: Plan,
    /// HOSTIF as the facts found it (the steps then need not look it up again).
    host_if: Option<Link>,
    /// Held from before HOSTIF was looked up (see `apply::BridgeLock`).
    bridge_lock: Option<BridgeLock>,
    /// `--host-shim`: held from before the shim was looked at to the run's end.
    shim_lock: Option<ShimLock>,
    /// CONTAINER_IF, and the veth modes' host end, for the `--json` result.
    container_if: String,
    host_end: Option<String>,
    /// A `BRIDGE@UPLINK`'s uplink, for the result and the record.
    uplink: Option<String>,
}

/// What a CNI ADD has at hand before its attach: the guest it opened, with a
/// netlink socket in it; what its runtime promises (`Terms`); and, for a request
/// whose addresses an IPAM plugin gives (`Terms::ipam_plugin`), the plugin's answer
/// to come (see `apply::Delegated`). The command line gives none of it.
#[derive(Default)]
pub struct Given {
    pub guest: Option<(Guest, Netlink)>,
    pub terms: Terms,
    pub answer: Option<apply::Delegated>,
    /// Who asks, for the run's intent (see `intent::Intent::owner`).
    pub owner: Option<String>,
    /// The CNI attachment it is, for its record (see `record::CniOwner`).
    pub cni: Option<record::CniOwner>,
}

/// What an attach came to.
// One value per attach, moved a few times: its size costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Attachment {
    /// `--dry-run`, with something to do: the steps it would take.
    Planned(Vec<plan::Step>),
    /// Made now, or found made. What the kernel holds of it is read back for
    /// `--json` (the command line's text says nothing of it, and a re-run that
    /// finds its record need not read it).
    Done(Option<Attached>),
}

/// The verb: one attachment, all or nothing, with what the caller has at hand.
pub async fn attach(req: &Attach, opts: &RunOpts, host: &Netlink, given: Given) -> Verb<Attachment> {
    let Given { guest: given_guest, terms, answer, owner, cni } = given;
    let mut notes = Vec::new();
    if !opts.dry_run {
        if let Err(e) = undo_interrupted(req, host, given_guest.as_ref(), &mut notes).await {
            return Err(Failed::after(e, notes));
        }
    }
    // Nothing changes before apply: a signal until then just ends the run (a Docker
    // daemon that is slow to answer must not hold it).
    let prepared = tokio::select! {
        p = prepare(req, &terms, host, given_guest) => p,
        signal = interrupt::arrived() => Err(signal.into()),
    };
    let Prepared { guest, nl_guest, plan, host_if, bridge_lock, shim_lock, container_if, host_end, uplink } =
        match prepared {
            Ok(p) => p,
            Err(e) => return Err(Failed::after(e, notes)),
        };
    // Dropped when the run ends, however it ends (or before a shim is removed).
    let held_shim_lock = shim_lock;
    let names = result::Names {
        container_if: &container_if,
        host_end: host_end.as_deref(),
        uplink: uplink.as_deref(),
    };
    let steps = match plan {
        Plan::AlreadyDone(what) => {
            if opts.verbose || opts.dry_run {
                notes.push(format!("nothing to do: {what}"));
            }
            // What stands is read back only where it is needed: for a result, or for a
            // record that is missing (wiped with /run, or never written).
            let has_record =
                !opts.dry_run && matches!(record::load(guest.ns_inode, &container_if), Ok(Some(_)));
            if !opts.json && (opts.dry_run || has_record) {
                return Ok(Said::new(Attachment::Done(None), notes));
            }
            let seen = result::seen(host, &nl_guest, &names).await;
            if !opts.dry_run {
                notes.extend(
                    save_record(
                        host,
                        &nl_guest,
                        &guest,
                        &seen,
                        &[],
                        &Applied::default(),
                        (None, cni.as_ref()),
                    )
                    .await,
                );
            }
            return done(opts, &guest, &names, &seen, (false, &[]), notes);
        }
        Plan::Steps(steps) if opts.dry_run => return Ok(Said::new(Attachment::Planned(steps), notes)),
        Plan::Steps(steps) => steps,
    };
    // Before the first change: what a run killed from here on leaves is found by it.
    let ifs = (req.host_if.to_string(), container_if.as_str());
    let intent = match intended::intent(
        host,
        &nl_guest,
        &GuestId::of(&guest),
        (&ifs.0, ifs.1),
        owner.as_deref(),
        &steps,
    )
    .await
    {
        Ok(i) => i,
        Err(e) => return Err(Failed::after(e, notes)),
    };
    if let Err(e) = intent.save() {
        return Err(Failed::after(e, notes));
    }
    // A DHCP client is named in the intent as it starts: killed from then on, the
    // run leaves a client that a re-run, `del` or `gc` stops. The `-f` keeper waits
    // until it is named (`dhcp::keep::Gate`); an external client killed between its
    // start and this write is left unnamed (a few system calls wide).
    let intended = std::cell::RefCell::new(intent.clone());
    let name_client = |kept: &crate::dhcp::kept::Kept| {
        let mut intent = intended.borrow_mut();
        // Named again once it has its lease (`-f`): the newer word holds.
        intent.dhcp.retain(|k| !k.is_the_same_client(kept));
        intent.dhcp.push(kept.clone());
        intent.save().map(drop)
    };
    // Likewise the shim and host routes planned once an IPAM plugin has given the
    // guest's addresses (CNI `hostShim`): named before they are made.
    let name_shim = |derived: &[plan::Step]| {
        let mut intent = intended.borrow_mut();
        derived.iter().for_each(|s| intended::name_shim(&mut intent, s));
        intent.save().map(drop)
    };
    let ctx = Context::new(host, &nl_guest, guest.netns(), guest.describe())
        .with_guest_process(guest.pid, guest.ns_inode)
        .on_client_started(Box::new(name_client))
        .on_steps_derived(Box::new(name_shim));
    ctx.hold_bridge_lock(bridge_lock);
    if let Some(link) = &host_if {
        ctx.learn(Side::Host, &link.name, link.index, None);
    }
    let mut applied = match apply::apply(&steps, &ctx, answer).await {
        Ok(applied) => applied,
        Err(Failure { error, rollback_errors }) => {
            notes.append(&mut ctx.notes.borrow_mut());
            // Undone: the intent goes. Not wholly undone: it stays, for `del`, `gc` or
            // a re-run to finish.
            if rollback_errors.is_empty() {
                notes.extend(intent.remove().err().map(|e| warning(format!("{e:#}"))));
            }
            return Err(Failed { error, rollback_errors, notes });
        }
    };
    // What the steps said (a DHCP client's warnings) before the steps themselves.
    notes.append(&mut ctx.notes.borrow_mut());
    // Those that applied an IPAM plugin's answer count as the run's own from here on.
    let steps: Vec<plan::Step> =
        steps.into_iter().chain(std::mem::take(&mut applied.delegated_steps)).collect();
    if opts.verbose {
        notes.extend(steps.iter().map(|s| s.to_string()));
    }
    // Neighbours learn the new address now (a warning if that fails).
    notes.extend(announce::after_apply(&steps, &ctx).await);
    // Known from the run where it made CONTAINER_IF; else read once, for the record
    // and the result both.
    let seen = match result::made(&steps, &ctx, &names, opts.json) {
        Some(made) => Ok(Some(made)),
        None => result::seen(host, &nl_guest, &names).await,
    };
    if seen.is_err() && cni.is_some() {
        drop(held_shim_lock);
        notes.extend(unroute(&steps, &ctx).await);
    }
    notes.extend(
        save_record(host, &nl_guest, &guest, &seen, &steps, &applied, (Some(&intent.run), cni.as_ref()))
            .await,
    );
    // Its record written, the run is whole (see `Intent::completed`).
    notes.extend(intent.remove().err().map(|e| warning(format!("{e:#}"))));
    // Its notices (a NIC moved in) only now that it has succeeded.
    let leases = ctx.leases.take();
    done(opts, &guest, &names, &seen, (true, &leases), notes)
        .map(|said| said.with_notices(ctx.notices.take()))
}

/// A CNI ADD whose attachment stood but could not be read back fails, with no
/// record: its undo (a DEL) finds the guest's link by its mark, but not the host
/// routes and the shim (`hostShim`) the steps made, which go now (the shim with
/// its last guest, the parent's address back). A warning if that fails too.
async fn unroute(steps: &[plan::Step], ctx: &Context<'_>) -> Option<String> {
    use crate::plan::remove::Removal;
    let mut removals = Vec::new();
    let mut shim = None;
    for step in steps {
        match step {
            plan::Step::CreateShim { name, mark, .. } => shim = Some((name.clone(), mark.clone())),
            plan::Step::AddHostRoute { dst, dev } => {
                removals.push(Removal::DeleteHostRoute { dst: *dst, dev: dev.clone() });
                shim = shim.or_else(|| Some((dev.clone(), String::new())));
            }
            _ => {}
        }
    }
    let (name, mark) = shim?;
    removals.push(Removal::RemoveShimIfUnused { name, mark });
    let removed = apply::remove(&removals, ctx).await;
    removed.err().map(|e| warning(format!("{e:#}")))
}

/// Undo what runs cut short left in this guest (their intents), before anything
/// is read: their links would make this run refuse (`exists`), a NIC they moved
/// would not be found on the host. Without such intents (nearly always) this costs
/// one `readdir`; the guest is looked up only when there are some, and a guest
/// that cannot be found here is left to the run's own look-up to refuse.
async fn undo_interrupted(
    req: &Attach,
    host: &Netlink,
    given: Option<&(Guest, Netlink)>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let left = intent::interrupted()?;
    if left.is_empty() {
        return Ok(());
    }
    let looked_up;
    let (guest, nl_guest) = match given {
        Some((g, nl)) => (g, nl),
        None => {
            let Ok(guest) = guest::lookup(&req.guest).await.and_then(guest::not_the_host) else {
                return Ok(());
            };
            let nl = Netlink::in_netns(guest.netns())?;
            looked_up = (guest, nl);
            (&looked_up.0, &looked_up.1)
        }
    };
    for intent in left.into_iter().filter(|i| i.ns == guest.ns_inode) {
        let undone = recover::recover(host, intent, Some((nl_guest, guest.netns())), Bridges::Keep, false);
        notes.extend(undone.await?.map(|done| done.describe(false)));
    }
    Ok(())
}

/// Done; with `--json`, what was read back, with the DNS of the `leases` the run
/// took. A failure to read it is the run's error (its changes stay: they were
/// made, and a re-run finds them in place).
fn done(
    opts: &RunOpts,
    guest: &Guest,
    names: &result::Names<'_>,
    seen: &Result<Option<result::Seen>>,
    (changed, leases): (bool, &[plan::Leased]),
    notes: Vec<String>,
) -> Verb<Attachment> {
    if !opts.json {
        return Ok(Said::new(Attachment::Done(None), notes));
    }
    let attached = match seen {
        Ok(seen) => Attached::of(guest, names, seen.as_ref(), changed)
            .map(|a| Attached { dns: result::LeaseDns::of(leases), ..a }),
        Err(e) => Err(anyhow::anyhow!("{e:#}")),
    };
    match attached {
        Ok(a) => Ok(Said::new(Attachment::Done(Some(a)), notes)),
        Err(e) => Err(Failed::after(e.context("cannot read the result back"), notes)),
    }
}

/// Write the attachment's record (see `crate::record`). A re-run that found it all
/// done (`steps` empty) keeps a record already there: the route the first run
/// replaced is only in it. A failure is a warning: the attachment stands, and
/// `check` and `del` work without a record. `run`: the run whose intent the record
/// completes (see `Intent::completed`); `cni`: the CNI attachment it is.
async fn save_record(
    host: &Netlink,
    nl_guest: &Netlink,
    guest: &Guest,
    seen: &Result<Option<result::Seen>>,
    steps: &[plan::Step],
    applied: &Applied,
    (run, cni): (Option<&crate::process::Run>, Option<&record::CniOwner>),
) -> Option<String> {
    let saved = async {
        let seen = match seen {
            Ok(Some(seen)) => seen,
            Ok(None) => return Ok(()),
            Err(e) => anyhow::bail!("{e:#}"),
        };
        let old = record::load(guest.ns_inode, &seen.cif.name)?;
        if steps.is_empty() && old.is_some() {
            return Ok(());
        }
        // A re-run that only started new keepers for gone ones: the record stands (the
        // route the first run replaced is only in it), its clients those new ones.
        let resumed = |s: &plan::Step| matches!(s, plan::Step::Dhcp(d) if d.resume.is_some());
        if let Some(mut r) = old.filter(|_| steps.iter().all(resumed)) {
            r.dhcp.retain(|k| !applied.running.iter().any(|new| new.client == k.client));
            r.dhcp.extend(applied.running.iter().map(crate::dhcp::Kept::refreshed));
            r.run = run.cloned().or(r.run);
            record::save(&r)?;
            return Ok(());
        }
        if let Some(mut r) =
            recorded::record(host, nl_guest, &GuestId::of(guest), seen, steps, applied).await?
        {
            r.run = run.cloned();
            r.cni = cni.cloned();
            record::save(&r)?;
        }
        anyhow::Ok(())
    };
    match saved.await {
        Ok(()) => None,
        Err(e) => Some(warning(format!("the attachment stands, but its record was not written: {e:#}"))),
    }
}

/// In the original's order: what HOSTIF is (and what it refuses) first, then the
/// guest, then the facts the classification names, then the plan.
async fn prepare(
    req: &Attach,
    terms: &Terms,
    host: &Netlink,
    given: Option<(Guest, Netlink)>,
) -> Result<Prepared> {
    // Before HOSTIF is looked up: a bridge found is not removed under our feet.
    let mut bridge_lock = BridgeLock::shared().await;
    let mut host_facts = facts::host_kind(host, req).await?;
    let class = Class::of(req, &host_facts)?;
    if !matches!(class.mode, Some(Mode::Bridge { .. })) {
        bridge_lock = None;
    }
    // One run at a time looks at a shim and makes it (or removes it, in `del`).
    let shim_lock = match (&req.host_shim, class.mode) {
        (Some(_), Some(Mode::Physical)) => {
            let held = ShimLock::take().await?;
            facts::shim(host, req, &mut host_facts).await?;
            Some(held)
        }
        _ => None,
    };
    let (guest, nl_guest) = match given {
        Some(opened) => opened,
        None => {
            let guest = guest::lookup(&req.guest).await.and_then(guest::not_the_host)?;
            let nl_guest = Netlink::in_netns(guest.netns())?;
            (guest, nl_guest)
        }
    };
    let id = GuestId::of(&guest);
    facts::host_end(host, req, &class, &id, &mut host_facts).await?;
    let guest_facts = facts::guest(&nl_guest, req, &class, id.ns_inode).await?;
    let plan = plan::plan(req, terms, &class, &id, &host_facts, &guest_facts)?;
    let container_if = class.container_if.to_string();
    let host_end = class.host_end(req, &id).and_then(Result::ok);
    Ok(Prepared {
        guest,
        nl_guest,
        plan,
        uplink: host_facts.uplink.map(|u| u.name),
        host_if: host_facts.host_if,
        bridge_lock,
        shim_lock,
        container_if,
        host_end,
    })
}
