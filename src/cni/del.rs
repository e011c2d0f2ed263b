//! DEL: IPAM's DEL, then the attachment by `lifecycle::del` (which also stops what
//! keeps a lease). Repeatable, and a success when the namespace or the attachment
//! is gone already: runtimes call it after a failed ADD too.

use crate::lifecycle;
use crate::lifecycle::recover::{recover, Bridges};
use crate::model::{Del, RunOpts};
use crate::netlink::Netlink;
use crate::plan::alias::Alias;
use crate::record;
use crate::report::Failed;

use super::env::Command;
use super::error::{CniError, Code};
use super::{netns, state, Call};

pub async fn run(call: &Call) -> Result<(), CniError> {
    if let Some(ipam) = call.ipam() {
        ipam.call(Command::Del)?;
    }
    detach(call).await
}

/// The attachment and its records, whatever of them is left.
pub async fn detach(call: &Call) -> Result<(), CniError> {
    let (net, id, ifname) = (&call.conf.name, &call.env.container_id, &call.env.ifname);
    let saved = state::load(net, id, ifname).ok().flatten();
    // A path that now names another namespace (a pid reused) is a gone one too.
    let opened = (!call.env.netns.is_empty()).then(|| netns::open(&call.env.netns).ok()).flatten();
    let gone = match (&opened, &saved) {
        (None, _) => true,
        (Some(g), Some(a)) => g.ns_inode != a.ns,
        (Some(_), None) => false,
    };
    if gone {
        // The interface goes with its namespace (the host end a moment later); its
        // record stays, named by the inode, with the clients it names.
        if let Some(a) = &saved {
            host_end_of_gone(a).await?;
            forget_gone(a.ns, ifname).await?;
        }
        undo_interrupted(call).await?;
    } else {
        lifecycle_del(call).await?;
    }
    state::remove(net, id, ifname).map_err(|e| CniError::new(Code::Io, format!("{e:#}")))
}

/// An ADD of this container cut short (its intent, `crate::intent`), its namespace
/// gone or not given: what it made on the host goes (its guest side went with the
/// namespace). With the namespace there, `lifecycle::del` does it.
async fn undo_interrupted(call: &Call) -> Result<(), CniError> {
    let fail = |e: anyhow::Error| CniError::internal(&e);
    let owner = crate::intent::cni_owner(&call.conf.name, &call.env.container_id, &call.env.ifname);
    let host = Netlink::current().map_err(fail)?;
    for intent in crate::intent::interrupted().map_err(fail)? {
        if intent.owner.as_deref() != Some(owner.as_str()) {
            continue;
        }
        recover(&host, intent, None, Bridges::Keep, false).await.map_err(fail)?;
    }
    Ok(())
}

/// The host end of a veth whose namespace is gone lingers until the kernel has
/// destroyed the namespace: removed now if its mark still names that namespace.
async fn host_end_of_gone(a: &state::Attachment) -> Result<(), CniError> {
    let Some(end) = &a.host_end else { return Ok(()) };
    let fail = |e: anyhow::Error| CniError::internal(&e);
    let host = Netlink::current().map_err(fail)?;
    let Some(l) = host.link_by_name(end).await.map_err(fail)? else { return Ok(()) };
    // Read as the mark's own parser reads it: its words may come in any order.
    match l.alias.as_deref().and_then(Alias::parse) {
        Some(Ok(m)) if m.ns == a.ns && m.container_if == a.ifname => {
            host.delete_link(l.index).await.map_err(fail)
        }
        _ => Ok(()),
    }
}

/// `pipework del NETNS -i IFNAME`.
async fn lifecycle_del(call: &Call) -> Result<(), CniError> {
    let ifname = &call.env.ifname;
    let container_if = ifname
        .parse()
        .map_err(|e| CniError::new(Code::InvalidEnvironment, format!("bad CNI_IFNAME {ifname:?}: {e:#}")))?;
    let req = Del { host_if: None, guest: call.env.netns.clone(), container_if, prune_bridge: false };
    match lifecycle::del::del(&req, &RunOpts::default()).await {
        Err(Failed { error, .. }) => Err(CniError::internal(&error)),
        Ok(_) => Ok(()),
    }
}

/// The record of an attachment whose namespace is gone, and the DHCP clients it
/// names (a keeper of a bare netns file has no guest process to outlive).
async fn forget_gone(ns: u64, ifname: &str) -> Result<(), CniError> {
    let io = |e: anyhow::Error| CniError::new(Code::Io, format!("{e:#}"));
    // An unreadable record names nothing to stop: it goes all the same.
    if let Ok(Some(r)) = record::load(ns, ifname) {
        for client in &r.dhcp {
            client
                .stop()
                .await
                .map_err(|e| CniError::internal(&e.context(format!("cannot stop {}", client.describe()))))?;
        }
        // `hostShim`: the guest's host routes, and the shim with its last guest,
        // which outlive the namespace.
        let shim = lifecycle::del::shim_removals(&r);
        if !shim.is_empty() {
            let fail = |e: anyhow::Error| CniError::internal(&e);
            let host = Netlink::current().map_err(fail)?;
            let own = crate::netns::open_ours().map_err(fail)?;
            let ctx =
                crate::apply::Context::new(&host, &host, std::os::fd::AsFd::as_fd(&own), r.guest.clone());
            crate::apply::remove(&shim, &ctx).await.map_err(fail)?;
        }
    }
    record::remove_at(&record::path(ns, ifname)).map(drop).map_err(io)
}
