//! The intent (`crate::intent`) an attach writes before its first change: every
//! object its steps may create or move, read off the plan, and a `--direct-phys`
//! NIC as it is on the host now (after a kill, nothing else remembers it).

use anyhow::{Context as _, Result};

use super::recorded;
use crate::intent::{HostRoute, IntendedShim, Intent, MovedNic, Run, VERSION};
use crate::netlink::Netlink;
use crate::netns::disable_ipv6_path;
use crate::plan::remove::SavedNic;
use crate::plan::{GuestId, Step};

/// The intent of applying `steps` to CONTAINER_IF of `id`.
pub async fn intent(
    host: &Netlink,
    guest: &Netlink,
    id: &GuestId,
    (host_if, container_if): (&str, &str),
    owner: Option<&str>,
    steps: &[Step],
) -> Result<Intent> {
    let mut intent = Intent {
        version: VERSION,
        run: Run::current()?,
        guest: id.reference.to_string(),
        ns: id.ns_inode,
        container_if: container_if.to_string(),
        host_if: host_if.to_string(),
        owner: owner.map(String::from),
        host_links: Vec::new(),
        set_up: Vec::new(),
        bridges: Vec::new(),
        ovs_bridges: Vec::new(),
        ovs_ports: Vec::new(),
        guest_links: Vec::new(),
        nic: None,
        replaced_routes: recorded::replaced_routes(guest, steps).await?,
        dhcp: Vec::new(),
        shim: None,
        host_routes: Vec::new(),
    };
    for step in steps {
        match step {
            Step::CreateBridge { name } => intent.bridges.push(name.clone()),
            Step::CreateOvsBridge { name, .. } => intent.ovs_bridges.push(name.clone()),
            // The guest end goes with it, wherever it is.
            Step::CreateVeth(veth) => intent.host_links.push(veth.host.clone()),
            Step::AddOvsPort(port) if !port.existing => {
                intent.ovs_ports.push((port.bridge.clone(), port.port.clone()))
            }
            Step::CreateVlan { name, .. } => intent.host_links.push(name.clone()),
            Step::SetHostUp { name } => intent.set_up.push(name.clone()),
            Step::CreateShim { .. } | Step::AddHostRoute { .. } => name_shim(&mut intent, step),
            Step::CreateGuestLink(link) => intent.guest_links.extend([link.temp.clone(), link.name.clone()]),
            Step::MoveIntoGuest { name, new_name, mac } => {
                let saved = nic_as_it_is(host, name).await?;
                intent.nic =
                    Some(MovedNic { saved, new_name: new_name.clone(), new_mac: mac.map(|m| m.to_string()) });
            }
            // The rest changes what these make (and goes with it), or is put back
            // as it was (`replaced_routes`), or cannot be undone (a stale veth
            // deleted).
            _ => {}
        }
    }
    Ok(intent)
}

/// What a `--host-shim` step makes, named in `intent`: the shim (with its mark, which
/// says what moves from the parent) or a host route to the guest. Also for the
/// steps planned once a CNI IPAM plugin has given the guest's addresses.
pub fn name_shim(intent: &mut Intent, step: &Step) {
    match step {
        Step::CreateShim { name, mark, .. } => {
            intent.shim = Some(IntendedShim { name: name.clone(), mark: mark.clone() })
        }
        Step::AddHostRoute { dst, dev } => intent.host_routes.push(HostRoute { dst: *dst, dev: dev.clone() }),
        _ => {}
    }
}

/// A host link as `del` gives it back (see `SavedNic`): `guest_index` is its index
/// here, which a move keeps where the guest has it free.
async fn nic_as_it_is(host: &Netlink, name: &str) -> Result<SavedNic> {
    let nic = host.link_by_name(name).await?.with_context(|| format!("{name} has disappeared"))?;
    let config = host.link_config(nic.index).await?;
    let master = match nic.master {
        Some(i) => host.link_by_index(i).await?.map(|l| l.name),
        None => None,
    };
    Ok(SavedNic {
        name: nic.name.clone(),
        mac: nic.mac.map(|m| m.to_string()),
        alias: nic.alias.clone(),
        master,
        up: nic.up,
        // Our thread is in the host's namespace; a kernel without IPv6 has none.
        disable_ipv6: crate::netns::read_sysctl(&disable_ipv6_path(name)).ok(),
        config,
        guest_index: nic.index,
        kind: nic.kind.clone(),
    })
}
