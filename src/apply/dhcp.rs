//! The DHCP step: the executor takes the lease (`crate::dhcp`), and this records an
//! undo for each part of what it got, then applies a lease a built-in client took
//! by the same steps as a static address. For DHCPv6 the interface first takes
//! router advertisements (as for `slaac`), which give what DHCPv6 does not.

use std::os::unix::fs::MetadataExt as _;

use anyhow::Result;

use super::{Context, Journal, Undo};
use crate::dhcp::{self, Target};
use crate::model::DhcpClient;
use crate::model::Family;
use crate::plan::dhcp::BuiltinOptions;
use crate::plan::{addressing, DhcpRequest, HeldLease, Leased, Side};

pub async fn run(req: &DhcpRequest, ctx: &Context<'_>, journal: &mut Journal) -> Result<()> {
    ctx.notes.borrow_mut().extend(req.warnings());
    let index = ctx.index(Side::Guest, &req.dev).await?;
    // The MAC is the built-in client's chaddr: known where this run chose it, looked
    // up otherwise; the external clients read it themselves.
    // The built-in client also needs the interface's MTU as made (the host side's):
    // a lease's MTU may lower it, never raise it above that.
    let known = ctx.known(Side::Guest, &req.dev).and_then(|k| k.mac);
    let (mac, mtu) = match req.client {
        DhcpClient::Builtin => {
            let link = ctx.guest.link_by_index(index).await?;
            (known.or(link.as_ref().and_then(|l| l.mac)), link.map(|l| l.mtu))
        }
        _ => (known, None),
    };
    let started = |kept: &crate::dhcp::kept::Kept| ctx.client_started(kept);
    let target = Target { nl: ctx.guest, netns: ctx.guest_ns, index, mac, mtu, started: &started };
    if req.family == Family::V6 {
        // The on-link prefix and default route are the router advertisement's to give
        // (DHCPv6 has neither), and the new address is announced once past DAD.
        super::slaac::take_router_advertisements(ctx, journal, &req.dev).await?;
    }
    if let Some(held) = &req.resume {
        return resume(req, &target, held, ctx, journal);
    }
    let got = dhcp::acquire(req, &target).await?;
    ctx.notes.borrow_mut().extend(got.warnings);
    for addr in got.configured {
        journal.push(Undo::DeleteAddress { index, addr });
    }
    if let Some(running) = got.running {
        ctx.client_started(&running)?;
        journal.push(Undo::StopDhcp(running));
    }
    let Some(lease) = got.lease else {
        return Ok(());
    };
    ctx.leases.borrow_mut().push(lease.clone());
    let routes = ctx.guest.routes(lease.family()).await?;
    super::run_derived(&addressing::lease_steps(&req.dev, &lease, &routes), ctx, journal).await?;
    write_resolv_conf(req, &target, &lease, ctx, journal)?;
    if req.foreground {
        keep(req, &target, &lease, None, ctx, journal)?;
    }
    Ok(())
}

/// A `-f` form's keeper for `lease`, named in the run's intent before it goes on.
fn keep(
    req: &DhcpRequest,
    target: &Target<'_>,
    lease: &Leased,
    bound_at: Option<u64>,
    ctx: &Context<'_>,
    journal: &mut Journal,
) -> Result<()> {
    let (kept, mut gate) = dhcp::keep::start(req, target, lease, bound_at)?;
    let intended = ctx.client_started(&kept);
    journal.push(Undo::StopDhcp(kept));
    intended?;
    gate.open();
    Ok(())
}

/// A re-run of `dhcp4-f` whose keeper is gone: the address, its routes and the
/// guest's resolv.conf stay as they are, and a new keeper takes over the lease the
/// gone one held: it verifies it with INIT-REBOOT (a REQUEST for that address, no
/// DISCOVER), or, when the server refuses it (DHCPNAK) or it has run out, removes
/// the address and its routes and discovers again (RFC 2131 sections 3.2, 4.4.5).
fn resume(
    req: &DhcpRequest,
    target: &Target<'_>,
    held: &HeldLease,
    ctx: &Context<'_>,
    journal: &mut Journal,
) -> Result<()> {
    let now = dhcp::keep::now();
    let how = match held.expired(now) {
        true => "its lease has run out: it asks for a new one",
        false => "it asks the server to confirm it (INIT-REBOOT)",
    };
    ctx.notice(format!(
        "the {} keeper of {} was gone; a new one takes over the lease of {}: {how}",
        req.name(),
        req.dev,
        held.lease.addr()
    ));
    ctx.leases.borrow_mut().push(held.lease.clone());
    keep(req, target, &held.lease, Some(held.bound_at), ctx, journal)
}

/// `dhcp4:dns`, `dhcp6:dns`: the lease's name servers and search domains into the
/// guest's resolv.conf (`apply::resolv`), with those of the run's other lease that
/// asked for it (a DHCPv4 and a DHCPv6 one on the same interface), its original put
/// back on rollback. A guest with no process of its own (a netns file) has no
/// resolv.conf of its own: said, not done.
fn write_resolv_conf(
    req: &DhcpRequest,
    target: &Target<'_>,
    lease: &Leased,
    ctx: &Context<'_>,
    journal: &mut Journal,
) -> Result<()> {
    if !BuiltinOptions::parse(&req.options)?.dns {
        return Ok(());
    }
    let Some(pid) = req.pid else {
        let w = format!(
            "{} has no process, so no /etc/resolv.conf of its own: dns is not applied",
            ctx.guest_desc
        );
        ctx.notes.borrow_mut().push(crate::report::warning(w));
        return Ok(());
    };
    // A guest that shares pipework's mount namespace (`unshare -n`) has the host's
    // file: never touched.
    let mnt = |p: &str| std::fs::metadata(format!("/proc/{p}/ns/mnt")).map(|m| m.ino()).ok();
    if mnt(&pid.to_string()).is_none_or(|m| Some(m) == mnt("self")) {
        let w = format!("{} shares the host's /etc/resolv.conf: dns is not applied", ctx.guest_desc);
        ctx.notes.borrow_mut().push(crate::report::warning(w));
        return Ok(());
    }
    let none = match lease {
        Leased::V4(l) => l.dns.is_empty() && l.search.is_empty(),
        Leased::V6(l) => l.dns.is_empty() && l.search.is_empty(),
    };
    if none {
        let w = format!("the DHCP lease on {} has no name servers: /etc/resolv.conf is left alone", req.dev);
        ctx.notes.borrow_mut().push(crate::report::warning(w));
        return Ok(());
    }
    let ns = target.net_ns()?;
    let mut resolved = ctx.resolved.borrow_mut();
    resolved.push(lease.clone());
    let written = super::resolv::write(pid, ns, &req.dev, &super::resolv::text(&req.dev, &resolved));
    // Saved before written: its undo whatever came of the write.
    journal.push(Undo::RestoreResolvConf { pid, ns, container_if: req.dev.clone() });
    written
}
