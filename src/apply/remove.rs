//! Doing a `del`: each removal in order. Removals cannot be undone (a deleted veth
//! cannot be made again as it was), so there is no journal: each one is idempotent
//! instead ("already gone" is success), and a `del` cut short is finished by
//! running it again.

use anyhow::{bail, Context as _, Result};

use super::{BridgeLock, Context};
use crate::netlink::{Link, Route};
use crate::plan::remove::{Removal, SavedNic};
use crate::plan::shim::ShimMark;
use crate::plan::Side;

/// Run every removal; the first failure stops the rest and says what was done.
pub async fn remove(steps: &[Removal], ctx: &Context<'_>) -> Result<()> {
    for (n, step) in steps.iter().enumerate() {
        if let Err(e) = run(step, ctx).await {
            let done =
                if n == 0 { String::new() } else { "; what came before is done (run del again)".into() };
            return Err(e.context(format!("cannot {step}{done}")));
        }
    }
    Ok(())
}

async fn run(step: &Removal, ctx: &Context<'_>) -> Result<()> {
    match step {
        Removal::OvsDelPort { bridge, port } => {
            let _changing = crate::ovs::exclusive().await;
            crate::ovs::del_port(bridge, port).await
        }
        Removal::DeleteLink { side, name, index } => delete_link(ctx, *side, name, *index).await,
        Removal::GiveBack { dev, index, nic } => give_back(ctx, dev, *index, nic).await,
        Removal::SetDown { name, index } => match ctx.host.link_by_index(*index).await? {
            Some(l) if l.name == *name => ctx.host.set_down(*index).await,
            _ => Ok(()),
        },
        Removal::DeleteHostRoute { dst, dev } => match ctx.host.link_by_name(dev).await? {
            Some(l) => {
                crate::netlink::ignore_gone(ctx.host.del_route(&Route::new(*dst, None, l.index)?).await)
            }
            None => Ok(()),
        },
        Removal::RemoveShimIfUnused { name, mark } => {
            let _one_at_a_time = super::ShimLock::take().await?;
            let fallback = ShimMark::parse(mark).unwrap_or_default();
            super::shim::remove_if_unused(ctx.host, name, &fallback).await.map(drop)
        }
        Removal::DeleteBridgeIfUnused { name, ovs: true } => {
            let _changing = crate::ovs::exclusive().await;
            match crate::ovs::ports(name).await?.is_empty() {
                true => crate::ovs::del_bridge(name).await,
                false => Ok(()),
            }
        }
        Removal::DeleteBridgeIfUnused { name, ovs: false } => {
            // No attach is between its lookup of this bridge and its port while we look.
            let _exclusive = match BridgeLock::exclusive().await {
                Ok(held) => held,
                // The attachment is removed all the same; only its bridge stays.
                Err(e) => {
                    ctx.note(crate::report::warning(format!("bridge {name}: {e:#}")));
                    return Ok(());
                }
            };
            let Some(bridge) = ctx.host.link_by_name(name).await?.filter(|l| l.is_bridge()) else {
                return Ok(());
            };
            if ctx.host.links().await?.iter().any(|l| l.master == Some(bridge.index)) {
                return Ok(());
            }
            ctx.host.delete_link(bridge.index).await
        }
    }
}

/// Link `index`, if it is still `name`: an index freed meanwhile may be another's now.
async fn delete_link(ctx: &Context<'_>, side: Side, name: &str, index: u32) -> Result<()> {
    let nl = ctx.nl(side);
    match nl.link_by_index(index).await.with_context(|| format!("cannot look up {name}"))? {
        None => Ok(()),
        Some(l) if l.name == name => nl.delete_link(index).await,
        Some(l) => bail!("{name} is gone and its index is {} now", l.name),
    }
}

/// The `--direct-phys` NIC home, by the rollback's own code (`links::move_back`):
/// its bridge looked up by name (its index may have changed since).
async fn give_back(ctx: &Context<'_>, dev: &str, index: u32, nic: &SavedNic) -> Result<()> {
    match ctx.guest.link_by_index(index).await.with_context(|| format!("cannot look up {dev}"))? {
        Some(l) if l.name == dev => {}
        None => return Ok(()),
        Some(l) => bail!("{dev} is gone and its index is {} now", l.name),
    }
    let master = match &nic.master {
        Some(name) => match ctx.host.link_by_name(name).await? {
            Some(bridge) => Some(bridge.index),
            None => bail!("{} cannot go back onto bridge {name}: it is gone", nic.name),
        },
        None => None,
    };
    let mac = nic.mac.as_deref().map(str::parse).transpose()?;
    let link =
        Link { name: nic.name.clone(), mac, alias: nic.alias.clone(), master, up: nic.up, ..Link::default() };
    super::links::move_back(ctx, index, &link, &nic.config, nic.disable_ipv6.as_deref()).await
}
