//! The veth modes: a veth pair whose guest end is born in the guest under
//! CONTAINER_IF and whose host end goes on a switch: a Linux bridge (enslaved; the
//! bridge created for a `br*` name that does not exist) or an Open vSwitch bridge
//! (a port, tagged for `@VLAN`; the bridge created for an `ovs*` name).

use anyhow::{bail, Result};

use super::alias::Kind;
use super::{
    addressing, missing_name, Class, GuestFacts, GuestId, HostFacts, OvsPort, Plan, Side, Step, Veth,
};
use crate::model::Attach;
use crate::netlink::Link;

/// A bridge made with no ports has the kernel's default MTU.
const NEW_BRIDGE_MTU: u32 = 1500;

/// Which switch the host end goes on; `create` when it does not exist yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    Linux { create: bool },
    Ovs { create: bool },
}

pub fn plan(
    req: &Attach,
    class: &Class,
    guest: &GuestId,
    switch: Switch,
    host: &HostFacts,
    facts: &GuestFacts,
) -> Result<Plan> {
    let cif = &class.container_if;
    let local = class.veth_host_end(req, guest)?;
    let bridge = match &host.host_if {
        Some(link) => link.name.clone(),
        None => missing_name(req)?.to_string(),
    };
    let tag = match (switch, &req.vlan) {
        // `BRIDGE@UPLINK @VID`: the VLAN is the uplink's 802.1Q device's, not the bridge's.
        (_, Some(_)) if host.uplink.is_some() => None,
        (Switch::Ovs { .. }, Some(v)) => Some(v.ovs_tag()?),
        (Switch::Linux { .. }, Some(v)) => Some(v.bridge_vid()?),
        _ => None,
    };
    if host.uplink.is_some() && !req.port_vlans.trunk.is_empty() {
        bail!("a VLAN trunk (vlanTrunk) is for a Linux bridge's port, not for {bridge}@UPLINK's");
    }
    let names = Names { local: &local, bridge: &bridge, cif: cif.as_str() };
    // Refused before anything, re-run or not: an uplink that is missing or taken.
    let uplink = uplink_steps(req, host, &bridge)?;
    if let Some(done) = rerun(req, switch, &names, guest, host, facts)? {
        return Ok(done);
    }
    let mut steps = Vec::new();
    match switch {
        Switch::Linux { create: true } => steps.push(Step::CreateBridge { name: bridge.clone() }),
        Switch::Ovs { create: true } => {
            steps.push(Step::CreateOvsBridge { name: bridge.clone(), datapath: host.ovs_datapath.clone() })
        }
        _ => {}
    }
    steps.extend(uplink);
    // First of all on an existing bridge: a kernel without the feature refuses it
    // before anything else changed.
    let filtering = host.host_if.as_ref().and_then(|l| l.vlan_filtering) == Some(true);
    let trunk = &req.port_vlans.trunk;
    if let (Switch::Linux { .. }, true, false) = (switch, tag.is_some() || !trunk.is_empty(), filtering) {
        // Turned off under ports of ours that use VLANs: turning it on again would undo
        // what another tool (or its operator) chose; that is theirs to decide.
        if !host.vlan_ports.is_empty() {
            bail!(
                "VLAN filtering of bridge {bridge} was turned off while pipework's ports use VLANs ({}); \
                 turn it on again (ip link set {bridge} type bridge vlan_filtering 1) or del those attachments",
                host.vlan_ports.join(", ")
            );
        }
        steps.push(Step::BridgeVlanFiltering { bridge: bridge.clone() });
    }
    if host.local_if.is_some() {
        steps.push(Step::DeleteStaleVeth { name: local.clone() });
    }
    let mtu = host.host_if.as_ref().map_or(NEW_BRIDGE_MTU, |l| l.mtu);
    let master = matches!(switch, Switch::Linux { .. }).then(|| bridge.clone());
    steps.push(Step::CreateVeth(Veth {
        host: local.clone(),
        peer: cif.to_string(),
        mtu,
        bridge: master,
        mac: req.mac,
    }));
    let kind = match switch {
        Switch::Linux { .. } => Kind::Bridge,
        Switch::Ovs { .. } => Kind::Ovs,
    };
    steps.push(Step::SetAlias {
        side: Side::Host,
        dev: local.clone(),
        alias: guest.alias_trunked(cif.as_str(), &bridge, kind, tag, trunk),
    });
    if req.isolated {
        steps.push(Step::IsolatePort { name: local.clone() });
    }
    if matches!(switch, Switch::Linux { .. }) && (tag.is_some() || !trunk.is_empty()) {
        steps.push(Step::BridgePortVlan { port: local.clone(), vid: tag, vlans: req.port_vlans.clone() });
    }
    if let Switch::Ovs { .. } = switch {
        let external_ids = external_ids(req, guest, &bridge, &local);
        let existing = host.ovs_ports.contains(&local);
        steps.push(Step::AddOvsPort(OvsPort { bridge, port: local, tag, external_ids, existing }));
    }
    steps.extend(addressing::steps(req, cif.as_str(), facts));
    Ok(Plan::Steps(steps))
}

/// `BRIDGE@UPLINK [@VID]`: the uplink (or its `UPLINK.VID`, made if missing) a port
/// of the bridge, set up. Refused: an uplink that does not exist, or that (or its
/// VLAN device) is a port of another bridge or a bond already.
fn uplink_steps(req: &Attach, host: &HostFacts, bridge: &str) -> Result<Vec<Step>> {
    let Some(uplink) = &host.uplink else {
        return Ok(Vec::new());
    };
    let Some(link) = &uplink.link else {
        bail!("the uplink {} of {bridge}@{} does not exist", uplink.name, uplink.name);
    };
    let mut steps = Vec::new();
    let port = match &req.vlan {
        None => {
            if !link.up {
                steps.push(Step::SetHostUp { name: link.name.clone() });
            }
            link.clone()
        }
        Some(vlan) => super::physical::vlan_device(vlan, link, uplink.vlan_if.as_ref(), &mut steps)?,
    };
    let on_bridge = host.host_if.as_ref().map(|b| b.index);
    match port.master {
        Some(m) if Some(m) == on_bridge => {}
        Some(_) => {
            bail!("{} is already enslaved to another bridge or bond; {bridge} cannot have it", port.name)
        }
        None => steps.push(Step::EnslaveUplink { port: port.name, bridge: bridge.to_string() }),
    }
    Ok(steps)
}

/// The names an attachment goes by: host end, bridge, CONTAINER_IF.
struct Names<'a> {
    local: &'a str,
    bridge: &'a str,
    cif: &'a str,
}

/// The re-run rules, as the original's: an up host end is the same attachment
/// (nothing to do) or refused; a down one must be a veth (deleted, then rebuilt);
/// CONTAINER_IF may be taken only by that stale veth's peer.
fn rerun(
    req: &Attach,
    switch: Switch,
    names: &Names<'_>,
    guest: &GuestId,
    host: &HostFacts,
    facts: &GuestFacts,
) -> Result<Option<Plan>> {
    let Names { local, bridge, cif } = names;
    if let Some(existing) = &host.local_if {
        if existing.up {
            if is_same_attachment(req, switch, existing, host, facts) {
                let what = format!("{local} on {bridge} with {cif} in {} is already as asked", guest.name);
                return Ok(Some(Plan::AlreadyDone(what)));
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
    Ok(None)
}

/// The original's `pipework.*` external ids on the port's Interface record, each
/// only when known, so that tools written against it still find their ports.
/// `pipework.interface` is the host end's name (`LOCAL_IF`), as the original writes it.
fn external_ids(req: &Attach, guest: &GuestId, bridge: &str, local: &str) -> Vec<(String, String)> {
    let mut ids = vec![("pipework.interface", local.to_string()), ("pipework.bridge", bridge.to_string())];
    if let Some((id, name)) = &guest.container {
        ids.push(("pipework.containerid", id.clone()));
        ids.push(("pipework.containername", name.clone()));
    }
    if let Some(pid) = guest.pid {
        ids.push(("pipework.nspid", pid.to_string()));
    }
    if let Some(v) = &req.vlan {
        ids.push(("pipework.vlan", v.as_str().to_string()));
    }
    ids.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// A re-run is harmless when the host end is our veth on this switch, its peer is
/// CONTAINER_IF in this guest, and the address, MAC and gateway are as asked.
fn is_same_attachment(
    req: &Attach,
    switch: Switch,
    local: &Link,
    host: &HostFacts,
    facts: &GuestFacts,
) -> bool {
    let (Some(bridge), Some(cif)) = (&host.host_if, &facts.container_if) else {
        return false;
    };
    let paired =
        local.is_veth() && cif.is_veth() && local.peer == Some(cif.index) && cif.peer == Some(local.index);
    let on_switch = match switch {
        Switch::Linux { .. } => bridge.is_bridge() && local.master == Some(bridge.index),
        Switch::Ovs { .. } => host.ovs_bridge && host.ovs_ports.contains(&local.name),
    };
    let mac_ok = req.mac.is_none() || req.mac == cif.mac;
    // A port made without `--isolated` is not what a re-run with it asks for.
    let isolated_ok = !req.isolated || local.isolated == Some(true);
    paired && on_switch && mac_ok && isolated_ok && addressing::is_configured(req, cif, facts)
}
