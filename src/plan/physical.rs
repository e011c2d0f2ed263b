//! Physical mode: a macvlan on HOSTIF (or on `HOSTIF.VID`, made if missing), born
//! in the guest; or with `--direct-phys`, HOSTIF itself moved into the guest.

use anyhow::{bail, Result};

use super::alias::Kind;
use super::{
    addressing, refuse_taken, GuestFacts, GuestId, GuestLink, HostFacts, Mode, NewGuestLink, Plan, Side, Step,
};
use crate::model::{Attach, HostIf, IfName, Vlan};
use crate::netlink::Link;

pub fn plan(
    req: &Attach,
    cif: &IfName,
    guest: &GuestId,
    host: &HostFacts,
    facts: &GuestFacts,
    delegated: bool,
) -> Result<Plan> {
    let Some(nic) = &host.host_if else {
        bail!("{} mode needs an existing host interface", Mode::Physical);
    };
    if let Some(done) = already_done(req, nic, host, facts, cif, guest) {
        return Ok(done);
    }
    refuse_taken(cif, guest, facts)?;
    let mut steps = Vec::new();
    let mut shim_parent = None;
    if req.direct_phys {
        // With @VLAN it is the VLAN device `HOSTIF.VID` (made if missing) that moves in.
        let moved = match &req.vlan {
            None => nic.name.clone(),
            Some(_) => parent(req, nic, host, &mut steps)?.name,
        };
        steps.push(Step::MoveIntoGuest { name: moved, new_name: cif.to_string(), mac: req.mac });
    } else {
        let parent = parent(req, nic, host, &mut steps)?;
        steps.push(Step::CreateGuestLink(NewGuestLink {
            name: cif.to_string(),
            temp: guest.temporary_name(cif.as_str()),
            kind: GuestLink::Macvlan { parent: parent.name.clone(), mode: req.macvlan_mode },
            mtu: Some(parent.mtu),
            mac: req.mac,
        }));
        let alias = guest.alias(cif.as_str(), &parent.name, Kind::Macvlan);
        steps.push(Step::SetAlias { side: Side::Guest, dev: cif.to_string(), alias });
        shim_parent = Some(parent.name);
    }
    steps.extend(addressing::steps(req, cif.as_str(), facts));
    // With the addresses an IPAM plugin gives, the shim comes after them (see
    // `Step::Delegated`).
    if let Some(parent) = shim_parent.filter(|_| !delegated) {
        steps.extend(super::shim::steps(req, &parent, host)?);
    }
    Ok(Plan::Steps(steps))
}

/// The link the macvlan goes on: HOSTIF, or `HOSTIF.VID` (created with HOSTIF's MTU
/// if missing; refused if that name is something else). Both are set up, as the
/// original does.
fn parent(req: &Attach, nic: &Link, host: &HostFacts, steps: &mut Vec<Step>) -> Result<Link> {
    let Some(vlan) = &req.vlan else {
        up_if_down(nic, steps);
        return Ok(nic.clone());
    };
    vlan_device(vlan, nic, host.vlan_if.as_ref(), steps)
}

/// `NIC.VID` (`existing`, as read): used if it is the VLAN device for that tag on
/// NIC, refused if that name is something else, else made with NIC's MTU. NIC and
/// the device are set up, as the original does.
pub(super) fn vlan_device(
    vlan: &Vlan,
    nic: &Link,
    existing: Option<&Link>,
    steps: &mut Vec<Step>,
) -> Result<Link> {
    let id = vlan.id()?;
    let name = format!("{}.{}", nic.name, vlan.as_str());
    if name.parse::<IfName>().is_err() {
        bail!("the VLAN device name {name} would be longer than 15 bytes");
    }
    match existing {
        Some(v)
            if v.kind.as_deref() == Some("vlan") && v.vlan_id == Some(id) && v.peer == Some(nic.index) =>
        {
            up_if_down(nic, steps);
            up_if_down(v, steps);
            Ok(v.clone())
        }
        // The original means to refuse this too, but its check never fires.
        Some(_) => bail!("{name} already exists but is not a VLAN device for tag {id}"),
        None => {
            steps.push(Step::CreateVlan { name: name.clone(), parent: nic.name.clone(), id, mtu: nic.mtu });
            up_if_down(nic, steps);
            steps.push(Step::SetHostUp { name: name.clone() });
            Ok(Link { name, mtu: nic.mtu, master: None, ..nic.clone() })
        }
    }
}

fn up_if_down(link: &Link, steps: &mut Vec<Step>) {
    if !link.up {
        steps.push(Step::SetHostUp { name: link.name.clone() });
    }
}

/// A `--direct-phys` re-run: the moved device (HOSTIF, or `HOSTIF.VID`) is gone from
/// the host and CONTAINER_IF in the guest carries its name in its alias, configured
/// as asked.
pub fn moved_already(req: &Attach, host: &HostFacts, facts: &GuestFacts, guest: &GuestId) -> Option<Plan> {
    let (HostIf::Name(name), None, Some(cif)) = (&req.host_if, &host.host_if, &facts.container_if) else {
        return None;
    };
    let moved = match &req.vlan {
        Some(v) => format!("{name}.{}", v.as_str()),
        None => name.to_string(),
    };
    let same = req.direct_phys
        && cif.alias.as_deref() == Some(moved.as_str())
        && (req.mac.is_none() || req.mac == cif.mac)
        && addressing::is_configured(req, cif, facts);
    same.then(|| Plan::AlreadyDone(format!("{name} is already in {} as {}", guest.name, cif.name)))
}

/// A re-run: CONTAINER_IF is a macvlan of the right parent, configured as asked
/// (and with `--host-shim`, the shim and the guest's host routes are there).
fn already_done(
    req: &Attach,
    nic: &Link,
    host: &HostFacts,
    facts: &GuestFacts,
    cif: &IfName,
    guest: &GuestId,
) -> Option<Plan> {
    let existing = facts.container_if.as_ref()?;
    let parent = if req.vlan.is_some() { host.vlan_if.as_ref()? } else { nic };
    let shimmed = match super::shim::steps(req, &parent.name, host) {
        Ok(steps) => steps.is_empty(),
        Err(_) => false,
    };
    let same = !req.direct_phys
        && shimmed
        && existing.kind.as_deref() == Some("macvlan")
        && existing.peer == Some(parent.index)
        && (req.mac.is_none() || req.mac == existing.mac)
        && addressing::is_configured(req, existing, facts);
    same.then(|| {
        Plan::AlreadyDone(format!("{cif} in {} is already a macvlan of {} as asked", guest.name, parent.name))
    })
}
