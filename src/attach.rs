//! One attachment, end to end: resolve the guest, read the facts, plan, then
//! print the plan (`--dry-run`) or apply it all-or-nothing.

use std::os::unix::fs::MetadataExt;

use anyhow::Result;

use crate::apply::{self, BridgeLock, Context, Failure};
use crate::cli::Attach;
use crate::guest::{self, Guest};
use crate::netlink::{Link, Netlink};
use crate::plan::alias::GuestRef;
use crate::plan::{self, Class, GuestId, Mode, Plan, Side};
use crate::report::Outcome;
use crate::{announce, blocking, facts, interrupt};

/// One attachment from the command line, with SIGINT, SIGTERM and SIGHUP turned into
/// a failure that undoes it (see `crate::interrupt`).
pub async fn run(req: &Attach) -> Outcome {
    if let Err(e) = interrupt::install() {
        return Outcome::failed(e.context("cannot catch signals"));
    }
    let outcome = match Netlink::current() {
        Ok(host) => run_on(req, &host).await,
        Err(e) => Outcome::failed(e),
    };
    match (outcome, interrupt::received()) {
        // Whatever failed during an interruption failed because of it (a client that
        // the terminal's Ctrl-C reached as well, say).
        (failed @ Outcome::Failed { .. }, Some(signal)) => Outcome::Interrupted(signal, Box::new(failed)),
        (outcome, _) => outcome,
    }
}

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
}

/// [`run`] with the host's netlink handle given: a batch shares one among its lines.
pub async fn run_on(req: &Attach, host: &Netlink) -> Outcome {
    // Nothing changes before apply: a signal until then just ends the run (a Docker
    // daemon that is slow to answer must not hold it).
    let prepared = tokio::select! {
        p = prepare(req, host) => p,
        signal = interrupt::arrived() => Err(signal.into()),
    };
    let Prepared { guest, nl_guest, plan, host_if, bridge_lock } = match prepared {
        Ok(p) => p,
        Err(e) => return Outcome::failed(e),
    };
    let mut lines = req.warnings.clone();
    let steps = match plan {
        Plan::AlreadyDone(what) => {
            if req.verbose || req.dry_run {
                lines.push(format!("nothing to do: {what}"));
            }
            return Outcome::Done(lines);
        }
        Plan::Steps(steps) if req.dry_run => {
            return Outcome::Printed { lines: steps.iter().map(|s| s.to_string()).collect(), notes: lines };
        }
        Plan::Steps(steps) => steps,
    };
    let ctx = Context::new(host, &nl_guest, guest.netns(), guest.describe())
        .with_guest_process(guest.pid, guest.ns_inode);
    ctx.hold_bridge_lock(bridge_lock);
    if let Some(link) = &host_if {
        ctx.learn(Side::Host, &link.name, link.index, None);
    }
    if let Err(Failure { error, rollback_errors }) = apply::apply(&steps, &ctx).await {
        lines.append(&mut ctx.notes.borrow_mut());
        return Outcome::Failed { error, rollback_errors, notes: lines };
    }
    if req.verbose {
        lines.extend(steps.iter().map(|s| s.to_string()));
    }
    lines.append(&mut ctx.notes.borrow_mut());
    // Neighbours learn the new address now (a warning if that fails).
    lines.extend(announce::after_apply(&steps, &ctx).await);
    Outcome::Done(lines)
}

/// In the original's order: what HOSTIF is (and what it refuses) first, then the
/// guest, then the facts the classification names, then the plan.
async fn prepare(req: &Attach, host: &Netlink) -> Result<Prepared> {
    // Before HOSTIF is looked up: a bridge found is not removed under our feet.
    let mut bridge_lock = BridgeLock::shared().await;
    let mut host_facts = facts::host_kind(host, req).await?;
    let class = Class::of(req, &host_facts)?;
    if !matches!(class.mode, Some(Mode::Bridge { .. })) {
        bridge_lock = None;
    }
    let guest = resolve(&req.guest).await.and_then(not_the_host)?;
    let nl_guest = Netlink::in_netns(guest.netns())?;
    let container = match &guest.source {
        guest::Source::Docker { id, name } => Some((id.clone(), name.clone())),
        _ => None,
    };
    let reference = match (&container, guest.pid) {
        (Some((id, _)), _) => GuestRef::Docker(id.clone()),
        (None, Some(pid)) => GuestRef::Pid(pid),
        (None, None) => GuestRef::Netns(guest.name.clone()),
    };
    let id = GuestId {
        name: guest.name.clone(),
        tag: guest.name_tag(),
        pid: guest.pid,
        container,
        reference,
        ns_inode: guest.ns_inode,
    };
    facts::host_end(host, req, &class, &id, &mut host_facts).await?;
    let guest_facts = facts::guest(&nl_guest, req, &class).await?;
    let plan = plan::plan(req, &class, &id, &host_facts, &guest_facts)?;
    Ok(Prepared { guest, nl_guest, plan, host_if: host_facts.host_if, bridge_lock })
}

/// A Docker name is resolved over the daemon's socket (blocking I/O, ~2.5 ms): on a
/// thread of the runtime's blocking pool, so that a batch's other lines go on meanwhile.
/// `pid:N` and netns paths are one `open`, done in place.
async fn resolve(spec: &str) -> Result<Guest> {
    if spec.starts_with("pid:") || guest::is_netns_path(spec) {
        return guest::resolve(spec);
    }
    let spec = spec.to_string();
    blocking::run("guest resolution", move || guest::resolve(&spec)).await
}

/// A guest in the host's own network namespace (a `--net=host` container, `pid:1`)
/// would have the host itself configured as the guest: its default route
/// replaced, an `eth1` added beside its own. The original does that; we refuse.
fn not_the_host(guest: Guest) -> Result<Guest> {
    let ours = std::fs::metadata("/proc/self/ns/net").map(|m| m.ino());
    if ours.is_ok_and(|ino| ino == guest.ns_inode) {
        anyhow::bail!("{} is in the host's own network namespace: nothing to attach it to", guest.describe());
    }
    Ok(guest)
}
