//! IPoIB children and dummy interfaces, both born in the guest. Neither gets the
//! host MTU (the original sets none on them).

use anyhow::{bail, Result};

use super::alias::Kind;
use super::{
    addressing, refuse_taken, GuestFacts, GuestId, GuestLink, HostFacts, Mode, NewGuestLink, Plan, Side, Step,
};
use crate::model::{Attach, IfName};

/// An `ipoib` child of HOSTIF, with `pkey 0xPKEY` for `@PKEY`; CONTAINER_IF defaults to `ib0`.
pub fn ipoib(
    req: &Attach,
    cif: &IfName,
    guest: &GuestId,
    host: &HostFacts,
    facts: &GuestFacts,
) -> Result<Plan> {
    let Some(nic) = &host.host_if else {
        bail!("{} mode needs an existing host interface", Mode::Ipoib);
    };
    if let Some(done) = already_done(req, "ipoib", cif, guest, facts) {
        return Ok(done);
    }
    refuse_taken(cif, guest, facts)?;
    let pkey = req.vlan.as_ref().map(|v| v.pkey()).transpose()?;
    let mut steps = Vec::new();
    if !nic.up {
        steps.push(Step::SetHostUp { name: nic.name.clone() });
    }
    steps.push(Step::CreateGuestLink(NewGuestLink {
        name: cif.to_string(),
        temp: guest.temporary_name(cif.as_str()),
        kind: GuestLink::Ipoib { parent: nic.name.clone(), pkey },
        mtu: None,
        mac: None,
    }));
    let alias = guest.alias(cif.as_str(), &nic.name, Kind::Ipoib);
    steps.push(Step::SetAlias { side: Side::Guest, dev: cif.to_string(), alias });
    steps.extend(addressing::steps(req, cif.as_str(), facts));
    Ok(Plan::Steps(steps))
}

/// A `dummy` interface (for a `dummy*` HOSTIF that does not exist).
pub fn dummy(req: &Attach, cif: &IfName, guest: &GuestId, facts: &GuestFacts) -> Result<Plan> {
    if let Some(done) = already_done(req, "dummy", cif, guest, facts) {
        return Ok(done);
    }
    refuse_taken(cif, guest, facts)?;
    let mut steps = vec![Step::CreateGuestLink(NewGuestLink {
        name: cif.to_string(),
        temp: guest.temporary_name(cif.as_str()),
        kind: GuestLink::Dummy,
        mtu: None,
        mac: req.mac,
    })];
    let alias = guest.alias(cif.as_str(), &req.host_if.to_string(), Kind::Dummy);
    steps.push(Step::SetAlias { side: Side::Guest, dev: cif.to_string(), alias });
    steps.extend(addressing::steps(req, cif.as_str(), facts));
    Ok(Plan::Steps(steps))
}

/// A re-run: CONTAINER_IF is already a link of this kind, configured as asked.
fn already_done(req: &Attach, kind: &str, cif: &IfName, guest: &GuestId, facts: &GuestFacts) -> Option<Plan> {
    let existing = facts.container_if.as_ref()?;
    let same = existing.kind.as_deref() == Some(kind)
        && (req.mac.is_none() || req.mac == existing.mac)
        && addressing::is_configured(req, existing, facts);
    same.then(|| Plan::AlreadyDone(format!("{cif} in {} is already a {kind} interface as asked", guest.name)))
}
