//! IPv6 turned on for one interface in the guest ([`Step::EnableIpv6`]), and undone.
//!
//! [`Step::EnableIpv6`]: crate::plan::Step::EnableIpv6

use std::io::ErrorKind;

use anyhow::Result;

use super::{Context, Journal, Undo};
use crate::netns::{disable_ipv6_path, set_sysctl};

/// `sysctl -w net.ipv6.conf.DEV.disable_ipv6=0` in the guest; undone only when it was
/// not 0 already. `optimistic`: `optimistic_dad=1` first, where the kernel has it.
pub async fn enable_ipv6(ctx: &Context<'_>, j: &mut Journal, dev: &str, optimistic: bool) -> Result<()> {
    if optimistic {
        let path = format!("/proc/sys/net/ipv6/conf/{dev}/optimistic_dad");
        match set_sysctl(ctx.guest_ns, path.clone(), "1".to_string()).await {
            Ok(Some(value)) => j.push(Undo::RestoreSysctl { path, value }),
            Ok(None) => {}
            // Built without CONFIG_IPV6_OPTIMISTIC_DAD: the DHCPv6 client waits out DAD.
            Err(e) if is_gone(&e) => {}
            Err(e) => return Err(e),
        }
    }
    let was = set_sysctl(ctx.guest_ns, disable_ipv6_path(dev), "0".to_string()).await?;
    if let Some(value) = was {
        j.push(Undo::RestoreIpv6Off { dev: dev.to_string(), value });
    }
    Ok(())
}

/// The undo: `disable_ipv6` of DEV back to `value`. An interface that is gone has
/// nothing left to restore.
pub async fn restore(ctx: &Context<'_>, dev: &str, value: &str) -> Result<()> {
    restore_path(ctx, &disable_ipv6_path(dev), value).await
}

/// The undo of any guest sysctl we set: `path` back to `value`; gone is fine.
pub async fn restore_path(ctx: &Context<'_>, path: &str, value: &str) -> Result<()> {
    match set_sysctl(ctx.guest_ns, path.to_string(), value.to_string()).await {
        Err(e) if is_gone(&e) => Ok(()),
        r => r.map(drop),
    }
}

fn is_gone(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == ErrorKind::NotFound))
}
