//! The DHCP step: the executor takes the lease (`crate::dhcp`), and this records an
//! undo for each part of what it got, then applies a lease a built-in client took
//! by the same steps as a static address. For DHCPv6 the interface first takes
//! router advertisements (as for `slaac`), which give what DHCPv6 does not.

use anyhow::Result;

use super::{Context, Journal, Undo};
use crate::dhcp::{self, Target};
use crate::model::DhcpClient;
use crate::model::Family;
use crate::plan::{addressing, DhcpRequest, Side};

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
    let routes = ctx.guest.routes(lease.family()).await?;
    super::run_derived(&addressing::lease_steps(&req.dev, &lease, &routes), ctx, journal).await?;
    if req.foreground {
        let (kept, mut gate) = dhcp::keep::start(req, &target, &lease)?;
        let intended = ctx.client_started(&kept);
        journal.push(Undo::StopDhcp(kept));
        intended?;
        gate.open();
    }
    Ok(())
}
