//! `--host-shim` on the host: the shim made with its mark, the parent's address
//! moved to it (or `--host-shim-addr` added), the guest's host route through it; and
//! the shim lock, which one run at a time holds while it looks at a shim and makes
//! or removes one, so that two attaches on one parent never both make it, and a
//! `del` never removes it under an attach about to route through it.

use std::fs::File;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use ipnetwork::IpNetwork;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::{Context, Journal, Undo};
use crate::model::MacvlanMode;
use crate::netlink::{errno_of, ChildKind, ChildRequest, Netlink, Route};
use crate::plan::shim::{Moved, MovedRoute, ShimMark};
use crate::plan::Side;

/// How long a run waits for another's hold on the shim lock (an attach holds it
/// from its look at the shim to its end).
const WAIT: Duration = Duration::from_secs(30);

/// A hold on `$PIPEWORK_RUN_DIR/shims.lock`, released when dropped (or when its
/// holder dies: a killed run never keeps it).
#[derive(Debug)]
pub struct ShimLock(#[allow(dead_code)] Flock<File>);

impl ShimLock {
    pub async fn take() -> Result<ShimLock> {
        let path = crate::record::run_dir().join("shims.lock");
        match tokio::time::timeout(WAIT, super::bridge_lock::take_at(&path, FlockArg::LockExclusiveNonblock))
            .await
        {
            Ok(held) => held.map(ShimLock),
            Err(_) => {
                Err(anyhow!("another run held the shim lock {} for {} s", path.display(), WAIT.as_secs()))
            }
        }
    }
}

/// The shim: made (up), its mark set, in the host.
pub async fn create(ctx: &Context<'_>, j: &mut Journal, name: &str, parent: &str, mark: &str) -> Result<()> {
    let parent = ctx.index(Side::Host, parent).await?;
    let req = ChildRequest {
        name,
        kind: ChildKind::Macvlan { parent, mode: MacvlanMode::Bridge },
        netns: None,
        mtu: None,
        mac: None,
    };
    j.attempt(Undo::DeleteHostLink { index: None, name: name.to_string() }, ctx.host.create_child(&req))
        .await?;
    let index = ctx.index(Side::Host, name).await?;
    ctx.host.set_alias(index, mark).await?;
    ctx.host.set_up(index).await
}

/// The parent's address onto the shim, then off the parent; undone by putting it
/// back on the parent (the shim's deletion takes its copy). The kernel flushes the
/// parent's routes with its last address of the family (the host's default route
/// among them): those go into the shim's mark first (what `del`, `gc` and a
/// recovery put back on the parent with the address), then, once flushed, are made
/// again through the shim, so that the host keeps them meanwhile.
pub async fn move_address(
    ctx: &Context<'_>,
    j: &mut Journal,
    moved: Moved,
    from: &str,
    to: &str,
) -> Result<()> {
    let (from_index, to_index) = (ctx.index(Side::Host, from).await?, ctx.index(Side::Host, to).await?);
    ctx.host.add_address_as_it_was(to_index, moved.addr, moved.broadcast).await?;
    let family = crate::model::Family::of(&moved.addr.ip());
    let routes = ctx.host.routes(family).await.context("cannot read the host's routes")?;
    // The kernel's own (the subnet's, which the shim has now) come back by themselves.
    let through: Vec<Route> =
        routes.into_iter().filter(|r| r.oif == Some(from_index) && r.protocol() != KERNEL).collect();
    let moving: Vec<MovedRoute> = through.iter().map(MovedRoute::of).collect();
    if !moving.is_empty() {
        remember_routes(ctx, to_index, from, &moving).await?;
    }
    // Undone after the address is back (a journal undoes in reverse).
    j.push(Undo::PutRoutesBack { dev: from.to_string(), routes: moving.clone() });
    let undo = Undo::PutAddressBack { dev: from.to_string(), moved };
    j.attempt(undo, ctx.host.del_address(from_index, moved.addr)).await?;
    let left = ctx.host.routes(family).await.context("cannot read the host's routes")?;
    let flushed = through.iter().zip(&moving).filter(|(r, _)| !left.iter().any(|l| same_route(l, r)));
    for (r, m) in flushed {
        let route = m.on(to_index)?;
        match ctx.host.add_route(&route, false).await {
            Err(e) if errno_of(&e) == Some(Errno::EEXIST) => {}
            other => {
                other.with_context(|| format!("cannot route {} through {to} in {from}'s place", r.dst))?;
                j.push(Undo::DeleteHostRoute(route));
            }
        }
    }
    Ok(())
}

/// RTPROT_KERNEL: a route the kernel makes for an address's subnet.
const KERNEL: u8 = 2;

fn same_route(a: &Route, b: &Route) -> bool {
    a.dst == b.dst && a.gateway == b.gateway && a.oif == b.oif && a.metric() == b.metric()
}

/// The parent's routes `through`, added to the shim's mark (its link alias).
async fn remember_routes(ctx: &Context<'_>, shim: u32, parent: &str, through: &[MovedRoute]) -> Result<()> {
    let link = ctx.host.link_by_index(shim).await?.ok_or_else(|| anyhow!("the shim is gone"))?;
    let mut mark =
        ShimMark::of(&link).unwrap_or_else(|| ShimMark { parent: parent.to_string(), ..ShimMark::default() });
    for moved in through {
        if !mark.routes.contains(moved) {
            mark.routes.push(moved.clone());
        }
    }
    let text = mark.to_string();
    if text.len() > crate::plan::alias::ALIAS_MAX {
        return Err(anyhow!(
            "{parent} has too many routes ({}) for its shim's mark to carry back with its address",
            through.len()
        ));
    }
    ctx.host.set_alias(shim, &text).await.context("cannot mark the shim with the parent's routes")
}

/// Routes a shim's parent had through it (see [`move_address`]): back on `parent`
/// (found by name), once its address is, in place of their copies through the shim
/// (the same destination and metric: replaced).
pub async fn put_routes_back(host: &Netlink, parent: &str, routes: &[MovedRoute]) -> Result<()> {
    let Some(link) = host.link_by_name(parent).await? else { return Ok(()) };
    for r in routes {
        host.add_route(&r.on(link.index)?, true)
            .await
            .with_context(|| format!("cannot put the route to {} back on {parent}", r.dst))?;
    }
    Ok(())
}

pub async fn add_address(ctx: &Context<'_>, dev: &str, addr: IpNetwork) -> Result<()> {
    let index = ctx.index(Side::Host, dev).await?;
    ctx.host.add_address(index, addr, crate::model::broadcast_of(&addr)).await
}

pub async fn add_route(ctx: &Context<'_>, j: &mut Journal, dst: IpNetwork, dev: &str) -> Result<()> {
    let route = Route::new(dst, None, ctx.index(Side::Host, dev).await?)?;
    j.attempt(Undo::DeleteHostRoute(route.clone()), ctx.host.add_route(&route, false)).await
}

/// Put an address moved to a shim back on its parent (found by name); there
/// already, or the parent gone, is done.
pub async fn put_back(host: &Netlink, parent: &str, moved: &Moved) -> Result<()> {
    let Some(link) = host.link_by_name(parent).await? else { return Ok(()) };
    match host.add_address_as_it_was(link.index, moved.addr, moved.broadcast).await {
        Err(e) if errno_of(&e) == Some(Errno::EEXIST) => Ok(()),
        other => other.with_context(|| format!("cannot put {} back on {parent}", moved.addr)),
    }
}

/// The host routes through link `index` to one address (`/32`, `/128`): a shim's
/// guests.
pub async fn guest_routes(host: &Netlink, index: u32) -> Result<Vec<Route>> {
    let mut out = Vec::new();
    for family in [crate::model::Family::V4, crate::model::Family::V6] {
        let full = if family == crate::model::Family::V4 { 32 } else { 128 };
        let routes = host.routes(family).await?;
        out.extend(routes.into_iter().filter(|r| r.oif == Some(index) && r.dst.prefix() == full));
    }
    Ok(out)
}

/// The shim `name` with its last guest route gone: deleted, and what its mark says
/// moved from the parent put back there (`fallback`: what the caller knows of it,
/// for a shim killed before its mark was set). Kept while a guest routes through
/// it; a link under the name that is no shim of ours is never touched.
pub async fn remove_if_unused(host: &Netlink, name: &str, fallback: &ShimMark) -> Result<bool> {
    let Some(link) = host.link_by_name(name).await? else { return Ok(false) };
    let mark = match (ShimMark::of(&link), link.alias.as_deref()) {
        (Some(mark), _) => mark,
        // Made, and killed before its mark: only a run's intent can say it is ours.
        (None, None) if link.kind.as_deref() == Some("macvlan") => fallback.clone(),
        _ => return Ok(false),
    };
    if !guest_routes(host, link.index).await?.is_empty() {
        return Ok(false);
    }
    // Back on the parent first: the host is never without its address.
    for moved in &mark.moved {
        put_back(host, &mark.parent, moved).await?;
    }
    put_routes_back(host, &mark.parent, &mark.routes).await?;
    host.delete_link(link.index).await?;
    Ok(true)
}
