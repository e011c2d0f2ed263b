//! A `--direct-phys` NIC whose guest's namespace died: the kernel moves it back to
//! the host's namespace by itself (a physical device outlives a namespace), keeping
//! the name it had in the guest (or `devN` when that is taken) and its alias, which
//! the attach set to the NIC's old name, but not its addresses, routes or bridge.
//! `gc` finds it by that alias and its kind, and gives it back what the record saved.

use anyhow::{anyhow, bail, Result};

use crate::netlink::{Link, Netlink};
use crate::netns::{disable_ipv6_path, write_sysctl};
use crate::plan::remove::SavedNic;

/// The host link that is the saved NIC come home by itself, if it has.
pub async fn find(host: &Netlink, nic: &SavedNic) -> Result<Option<Link>> {
    let links = host.links().await?;
    Ok(links.into_iter().find(|l| l.alias.as_deref() == Some(nic.name.as_str()) && l.kind == nic.kind))
}

/// Its name, MAC, alias, bridge, IPv6 setting, up state, addresses and routes as the
/// record saved them. Refused before any change when its name is another's now.
pub async fn restore(host: &Netlink, link: &Link, nic: &SavedNic) -> Result<()> {
    if link.name != nic.name {
        if let Some(other) = host.link_by_name(&nic.name).await? {
            bail!("{} cannot take back its name {}: link {} has it", link.name, nic.name, other.index);
        }
    }
    let master = match &nic.master {
        Some(name) => match host.link_by_name(name).await? {
            Some(bridge) => Some(bridge.index),
            None => bail!("{} cannot go back onto bridge {name}: it is gone", nic.name),
        },
        None => None,
    };
    let index = link.index;
    host.set_down(index).await?;
    if link.name != nic.name {
        host.rename(index, &nic.name).await?;
    }
    host.set_alias(index, nic.alias.as_deref().unwrap_or("")).await?;
    if let Some(mac) = nic.mac.as_deref().map(str::parse).transpose()? {
        host.set_mac(index, mac).await?;
    }
    let mut errors = Vec::new();
    if let Some(value) = nic.disable_ipv6.as_deref() {
        if let Err(e) = write_sysctl(&disable_ipv6_path(&nic.name), value) {
            errors.push(e);
        }
    }
    if let Some(master) = master {
        host.set_master(index, master).await?;
    }
    if nic.up {
        host.set_up(index).await?;
    }
    errors.extend(host.restore_link_config(index, &nic.config).await);
    if errors.is_empty() {
        return Ok(());
    }
    Err(anyhow!(errors.iter().map(|e| format!("{e:#}")).collect::<Vec<_>>().join("; ")))
}
