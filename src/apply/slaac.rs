//! `slaac` ([`Step::Slaac`]): the kernel's own IPv6 autoconfiguration turned on for
//! the new interface, and a wait until the network's router has given it an address
//! and a default route. Nothing to install, nothing left running: the kernel renews
//! what the router advertises.
//!
//! [`Step::Slaac`]: crate::plan::Step::Slaac

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::{Context, Journal, Undo};
use crate::netns::set_sysctl;
use crate::plan::Side;

/// `accept_ra` so that the kernel takes advertisements on DEV (and solicits one once
/// the link-local address has passed its duplicate address detection); `ndisc_notify`
/// so that it announces the addresses DEV gets, as for a static one. Each undone.
pub async fn take_router_advertisements(ctx: &Context<'_>, j: &mut Journal, dev: &str) -> Result<()> {
    for key in ["accept_ra", "ndisc_notify"] {
        let path = format!("/proc/sys/net/ipv6/conf/{dev}/{key}");
        if let Some(value) = set_sysctl(ctx.guest_ns, path.clone(), "1".to_string()).await? {
            j.push(Undo::RestoreSysctl { path, value });
        }
    }
    Ok(())
}

/// How often the interface is looked at while waiting (two dumps a look).
const POLL: Duration = Duration::from_millis(50);

pub async fn run(ctx: &Context<'_>, j: &mut Journal, dev: &str, timeout: Duration) -> Result<()> {
    take_router_advertisements(ctx, j, dev).await?;
    let index = ctx.index(Side::Guest, dev).await?;
    let deadline = Instant::now() + timeout;
    loop {
        if ctx.guest.autoconfigured(index).await? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "no router advertisement gave {dev} an address and a default route within {} s",
                timeout.as_secs_f64()
            );
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            signal = crate::interrupt::arrived() => return Err(signal.into()),
        }
    }
}
