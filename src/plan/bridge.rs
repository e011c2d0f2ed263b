//! Bridge mode: a veth pair, host end enslaved to a Linux bridge (created for a
//! `br*` name that does not exist), guest end born in the guest under CONTAINER_IF.

use anyhow::{bail, Result};

use super::{addressing, container_if, derived_name, GuestFacts, GuestId, HostFacts, Mode, Plan, Step};
use crate::cli::{Attach, HostIf};
use crate::netlink::Link;

/// A bridge made with no ports has the kernel's default MTU.
const NEW_BRIDGE_MTU: u32 = 1500;

pub fn plan(
    req: &Attach,
    guest: &GuestId,
    create: bool,
    host: &HostFacts,
    facts: &GuestFacts,
) -> Result<Plan> {
    let cif = container_if(req, Mode::Bridge { create });
    let local = match &req.local_if {
        Some(l) => l.to_string(),
        None => derived_name(format!("v{cif}pl{}", guest.tag), "host-end", "-l LOCAL_IF")?,
    };
    let bridge = match (&req.host_if, &host.host_if) {
        (_, Some(link)) => link.name.clone(),
        (HostIf::Name(n), None) => n.to_string(),
        (HostIf::Mac(_), None) => unreachable!("mode() refuses an unmatched mac:"),
    };
    let mut steps = Vec::new();
    if let Some(existing) = &host.local_if {
        if existing.up {
            if is_same_attachment(req, existing, host, facts) {
                return Ok(Plan::AlreadyDone(format!(
                    "{local} on {bridge} with {cif} in {} is already as asked",
                    guest.name
                )));
            }
            bail!("Link {local} exists and is up");
        }
        if !existing.is_veth() {
            bail!("Link {local} exists, is down and is not a veth; not deleting it");
        }
    }
    let stale_peer =
        |l: &Link| host.local_if.as_ref().is_some_and(|h| h.peer == Some(l.index) && l.peer == Some(h.index));
    if let Some(taken) = &facts.container_if {
        if !stale_peer(taken) {
            bail!("interface {cif} already exists in {}", guest.name);
        }
    }
    if create {
        steps.push(Step::CreateBridge { name: bridge.clone() });
    }
    if host.local_if.is_some() {
        steps.push(Step::DeleteStaleVeth { name: local.clone() });
    }
    let mtu = host.host_if.as_ref().map_or(NEW_BRIDGE_MTU, |l| l.mtu);
    steps.push(Step::CreateVeth { host: local, peer: cif.to_string(), mtu, bridge, mac: req.mac });
    steps.extend(addressing::steps(req, cif.as_str(), facts));
    Ok(Plan::Steps(steps))
}

/// A re-run is harmless when the host end is our veth on this bridge, its peer is
/// CONTAINER_IF in this guest, and the address, MAC and gateway are as asked.
fn is_same_attachment(req: &Attach, local: &Link, host: &HostFacts, facts: &GuestFacts) -> bool {
    let (Some(bridge), Some(cif)) = (&host.host_if, &facts.container_if) else {
        return false;
    };
    let paired =
        local.is_veth() && cif.is_veth() && local.peer == Some(cif.index) && cif.peer == Some(local.index);
    let on_bridge = bridge.is_bridge() && local.master == Some(bridge.index);
    let mac_ok = req.mac.is_none() || req.mac == cif.mac;
    paired && on_bridge && mac_ok && addressing::is_configured(req, cif, facts)
}
