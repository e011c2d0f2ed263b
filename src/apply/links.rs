//! Steps that make or move whole links outside the bridge path: VLAN devices,
//! links born in the guest (macvlan, IPoIB, dummy) and `--direct-phys` moves.

use std::os::fd::AsFd;

use anyhow::{anyhow, Context as _, Result};

use nix::errno::Errno;

use super::{Context, Journal, Undo};
use crate::model::Mac;
use crate::netlink::{errno_of, unanswered, ChildKind, ChildRequest, Link, LinkConfig};
use crate::netns::disable_ipv6_path;
use crate::plan::{GuestLink, NewGuestLink, Side};

pub async fn create_vlan(
    ctx: &Context<'_>,
    j: &mut Journal,
    name: &str,
    parent: &str,
    id: u16,
    mtu: u32,
) -> Result<()> {
    let parent = ctx.index(Side::Host, parent).await?;
    let made = ctx.host.create_vlan(name, parent, id, mtu).await;
    let undo = |index| Undo::DeleteHostLink { index, name: name.to_string() };
    match super::record_host_link(ctx, j, made, name, undo).await {
        // Marked as ours, so that `del` and `gc` remove it with its last attachment
        // (the kernel ignores an alias in the request that creates a link).
        Ok(_) => {
            let index = ctx.index(Side::Host, name).await?;
            ctx.host.set_alias(index, crate::plan::alias::MADE_VLAN).await
        }
        // Another run made the same device meanwhile: use it; it is not ours to remove.
        Err(e) if errno_of(&e) == Some(Errno::EEXIST) => match ctx.host.link_by_name(name).await? {
            Some(l)
                if l.kind.as_deref() == Some("vlan") && l.vlan_id == Some(id) && l.peer == Some(parent) =>
            {
                Ok(())
            }
            _ => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// A `BRIDGE@UPLINK`'s uplink (or its VLAN device) a port of the bridge.
pub async fn enslave(ctx: &Context<'_>, j: &mut Journal, port: &str, bridge: &str) -> Result<()> {
    let link = ctx.host.link_by_name(port).await?.with_context(|| format!("{port} has disappeared"))?;
    let master = ctx.index(Side::Host, bridge).await?;
    // Another run over the same uplink enslaved it since we planned: not ours to release.
    if link.master == Some(master) {
        return Ok(());
    }
    let undo = Undo::Release { index: link.index, name: port.to_string() };
    j.attempt(undo, ctx.host.set_master(link.index, master)).await
}

pub async fn set_host_up(ctx: &Context<'_>, j: &mut Journal, name: &str) -> Result<()> {
    let link = ctx.host.link_by_name(name).await?.with_context(|| format!("{name} has disappeared"))?;
    // Another run may have set it up since we planned: then it is not ours to set down.
    if link.up {
        return Ok(());
    }
    let undo = Undo::SetHostDown { index: link.index, name: name.to_string() };
    j.attempt(undo, ctx.host.set_up(link.index)).await
}

pub async fn create_in_guest(ctx: &Context<'_>, j: &mut Journal, link: &NewGuestLink) -> Result<()> {
    let NewGuestLink { name, temp, kind, mtu, mac } = link;
    let (mtu, mac) = (*mtu, *mac);
    let kind = match kind {
        GuestLink::Macvlan { parent, mode } => {
            ChildKind::Macvlan { parent: ctx.index(Side::Host, parent).await?, mode: *mode }
        }
        GuestLink::Dummy => ChildKind::Dummy,
        GuestLink::Ipoib { parent, pkey } => {
            ChildKind::Ipoib { parent: ctx.index(Side::Host, parent).await?, pkey: *pkey }
        }
    };
    let req = ChildRequest { name: temp, kind, netns: Some(ctx.guest_ns), mtu, mac };
    // Made in another namespace, it is not echoed to us: found by its temporary name,
    // and recorded by that name until then (also when the answer was lost).
    let undo = Undo::DeleteGuestLink { index: None, name: temp.clone() };
    j.attempt(undo, ctx.host.create_child(&req)).await?;
    let index = ctx.index(Side::Guest, temp).await?;
    j.push(Undo::DeleteGuestLink { index: Some(index), name: name.to_string() });
    ctx.forget(Side::Guest, temp);
    ctx.guest.rename(index, name).await.with_context(|| format!("cannot rename {temp} to {name}"))?;
    ctx.learn(Side::Guest, name, index, mac);
    Ok(())
}

/// `--direct-phys`: move, rename, keep the old name in the alias (as the CNI
/// host-device plugin does, so the NIC can be recognised and given back).
pub async fn move_into_guest(
    ctx: &Context<'_>,
    j: &mut Journal,
    name: &str,
    new_name: &str,
    mac: Option<Mac>,
) -> Result<()> {
    let nic = ctx.host.link_by_name(name).await?.with_context(|| format!("{name} has disappeared"))?;
    // The move drops the NIC's addresses and routes: kept for an undo.
    let config = ctx.host.link_config(nic.index).await?;
    // And its own `disable_ipv6` (the NIC arrives with the guest's default, and would
    // come back with the host's). Read on our thread, which is in the host's namespace;
    // a kernel without IPv6 has none.
    let disable_ipv6 = crate::netns::read_sysctl(&disable_ipv6_path(name)).ok();
    let moved = ctx.host.move_to(nic.index, ctx.guest_ns).await;
    if let Err(e) = moved {
        // Its answer lost, the NIC may be in the guest all the same: give it back then.
        // Still on the host, it did not move (the guest's own `name` is not ours).
        let still_here = matches!(ctx.host.link_by_index(nic.index).await, Ok(Some(l)) if l.name == nic.name);
        if unanswered(&e) && !still_here {
            if let Ok(Some(there)) = ctx.guest.link_by_name(name).await {
                j.push(Undo::MoveBack { index: there.index, nic: Box::new((nic, config)), disable_ipv6 });
            }
        }
        return Err(e);
    }
    // Moving closes the device; it keeps its name, and its index where free.
    let index = ctx.index(Side::Guest, name).await?;
    j.push(Undo::MoveBack { index, nic: Box::new((nic, config)), disable_ipv6 });
    ctx.forget(Side::Guest, name);
    ctx.guest.rename(index, new_name).await?;
    ctx.learn(Side::Guest, new_name, index, mac);
    ctx.guest.set_alias(index, name).await?;
    if let Some(mac) = mac {
        ctx.guest.set_mac(index, mac).await?;
    }
    ctx.notice(format!("{name} moved into {} as {new_name}", ctx.guest_desc));
    Ok(())
}

/// Undo of [`move_into_guest`]: name, alias and MAC back, then home, then its own
/// `disable_ipv6` (before it comes up and makes IPv6 addresses or not), its
/// bridge (a move drops it from any), its up state (a move closes it), and the
/// addresses and routes it had there.
pub async fn move_back(
    ctx: &Context<'_>,
    index: u32,
    nic: &Link,
    config: &LinkConfig,
    disable_ipv6: Option<&str>,
) -> Result<()> {
    ctx.guest.set_down(index).await?;
    ctx.guest.rename(index, &nic.name).await?;
    ctx.guest.set_alias(index, nic.alias.as_deref().unwrap_or("")).await?;
    if let Some(mac) = nic.mac {
        ctx.guest.set_mac(index, mac).await?;
    }
    // Our own thread never leaves the host's namespace, so this is the host's.
    let host_ns = crate::netns::open_ours()?;
    ctx.guest.move_to(index, host_ns.as_fd()).await?;
    let home = ctx
        .host
        .link_by_name(&nic.name)
        .await?
        .ok_or_else(|| anyhow!("{} did not come back", nic.name))?
        .index;
    // Our own thread is in the host's namespace, as the file must be opened from.
    let mut errors = Vec::new();
    if let Some(value) = disable_ipv6 {
        if let Err(e) = crate::netns::write_sysctl(&disable_ipv6_path(&nic.name), value) {
            errors.push(e);
        }
    }
    if let Some(master) = nic.master {
        ctx.host.set_master(home, master).await?;
    }
    if nic.up {
        ctx.host.set_up(home).await?;
    }
    errors.extend(ctx.host.restore_link_config(home, config).await);
    if errors.is_empty() {
        return Ok(());
    }
    Err(anyhow!(errors.iter().map(|e| format!("{e:#}")).collect::<Vec<_>>().join("; ")))
}
