//! The record (`crate::record`) a successful attach leaves: what the kernel holds of
//! it once it is done, with what only the run knows (the routes it replaced, the
//! DHCP clients it left running, a NIC as it was on the host).

use anyhow::Result;

use super::result::Seen;
use crate::apply::{Applied, Moved};
use crate::dhcp::Kept;
use crate::model::is_link_local;
use crate::netlink::{Link, Netlink};
use crate::plan::alias::{Alias, Kind};
use crate::plan::remove::SavedNic;
use crate::plan::{GuestId, Step};
use crate::record::{Record, RecordedShim, SavedRoute, VERSION};

/// The record of what a successful attach made, as the kernel holds it (`seen`)
/// (`None` for an attachment without a mark that moved no NIC). `steps` are those
/// applied (their default-route deletions are what it replaced), `applied` what
/// they left that the kernel cannot say.
pub async fn record(
    host: &Netlink,
    guest: &Netlink,
    id: &GuestId,
    seen: &Seen,
    steps: &[Step],
    applied: &Applied,
) -> Result<Option<Record>> {
    let Seen { cif, end, .. } = seen;
    let container_if = cif.name.as_str();
    let mark = [end.as_ref(), Some(cif)].into_iter().flatten().find_map(|l| ours(l, container_if));
    let alias = match (mark, &applied.moved) {
        (Some(alias), _) => alias,
        // A NIC moved in keeps its old name as its alias, as before: no mark.
        (None, Some(moved)) => Alias {
            guest: id.reference.clone(),
            ns: id.ns_inode,
            container_if: container_if.to_string(),
            host_if: moved.nic.name.clone(),
            kind: Kind::DirectPhys,
            vlan: None,
            trunk: Default::default(),
        },
        (None, None) => return Ok(None),
    };
    let addresses = seen.addresses.iter().filter(|a| !is_link_local(a)).copied().collect();
    let gateways = seen
        .routes
        .iter()
        .filter(|r| r.is_default() && r.oif == Some(cif.index))
        .filter_map(|r| r.gateway)
        .collect();
    let nic = match &applied.moved {
        Some(moved) => Some(saved_nic(host, moved).await?),
        None => None,
    };
    Ok(Some(Record {
        version: VERSION,
        guest: alias.guest.to_string(),
        ns: alias.ns,
        container_if: alias.container_if,
        host_if: alias.host_if,
        kind: alias.kind.as_str().to_string(),
        host_end: end.as_ref().map(|l| l.name.clone()),
        addresses,
        gateways,
        replaced_routes: replaced_routes(guest, steps).await?,
        dhcp: applied.running.iter().map(Kept::refreshed).collect(),
        nic,
        // The caller's to say (the run whose intent this record completes).
        run: None,
        cni: None,
        isolated: end.as_ref().and_then(|l| l.isolated).unwrap_or(false),
        shim: shim(host, steps).await?,
        uplink: seen.uplink.clone(),
    }))
}

/// The default routes among the applied steps' deletions, their devices by name.
pub(super) async fn replaced_routes(guest: &Netlink, steps: &[Step]) -> Result<Vec<SavedRoute>> {
    let mut replaced = Vec::new();
    for step in steps {
        if let Step::DeleteRoute { route, .. } = step {
            if !route.is_default() {
                continue;
            }
            let dev = match route.oif {
                Some(i) => guest.link_by_index(i).await?.map(|l| l.name),
                None => None,
            };
            let (metric, protocol) = (route.metric(), Some(route.protocol()));
            replaced.push(SavedRoute { dst: route.dst, gateway: route.gateway, dev, metric, protocol });
        }
    }
    Ok(replaced)
}

/// The shim the steps routed the guest through, with its mark as it is now.
async fn shim(host: &Netlink, steps: &[Step]) -> Result<Option<RecordedShim>> {
    let mut routes = Vec::new();
    let mut name = None;
    for step in steps {
        if let Step::AddHostRoute { dst, dev } = step {
            routes.push(*dst);
            name = Some(dev.clone());
        }
    }
    let Some(name) = name else { return Ok(None) };
    let mark = host.link_by_name(&name).await?.and_then(|l| l.alias).unwrap_or_default();
    Ok(Some(RecordedShim { name, routes, mark }))
}

/// The moved NIC as the record keeps it: its bridge by name.
async fn saved_nic(host: &Netlink, moved: &Moved) -> Result<SavedNic> {
    let master = match moved.nic.master {
        Some(i) => host.link_by_index(i).await?.map(|l| l.name),
        None => None,
    };
    Ok(SavedNic {
        name: moved.nic.name.clone(),
        mac: moved.nic.mac.map(|m| m.to_string()),
        alias: moved.nic.alias.clone(),
        master,
        up: moved.nic.up,
        disable_ipv6: moved.disable_ipv6.clone(),
        config: moved.config.clone(),
        guest_index: moved.index,
        kind: moved.nic.kind.clone(),
    })
}

/// The link's mark, if it is an attachment's of CONTAINER_IF.
fn ours(link: &Link, container_if: &str) -> Option<Alias> {
    match link.alias.as_deref().and_then(Alias::parse) {
        Some(Ok(a)) if a.container_if == container_if => Some(a),
        _ => None,
    }
}
