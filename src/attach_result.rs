//! The `--json` result of an attach, read back from the kernel once the run is done
//! (or found done): the interfaces (name, MAC, sandbox), addresses with their
//! gateway, the routes through CONTAINER_IF, and whether anything `changed`. Shaped
//! so that a CNI result (interfaces / ips / routes) is a thin mapping of it.

use anyhow::Result;
use ipnetwork::IpNetwork;
use serde_json::{json, Value};

use crate::guest::Guest;
use crate::netlink::{Link, Netlink, Route};
use crate::types::{is_link_local, Family};

/// What the result names: the guest's interface, and the host end of a veth mode.
pub struct Names<'a> {
    pub container_if: &'a str,
    pub host_end: Option<&'a str>,
}

/// What the kernel holds of an attachment once the run is done, read once for both
/// its record and its `--json` result: CONTAINER_IF, the host end, CONTAINER_IF's
/// addresses and the guest's routes of both families.
pub struct Seen {
    pub cif: Link,
    pub end: Option<Link>,
    pub addresses: Vec<IpNetwork>,
    pub routes: Vec<Route>,
}

/// `None`: CONTAINER_IF is not (or no longer) in the guest.
pub async fn seen(host: &Netlink, nl_guest: &Netlink, names: &Names<'_>) -> Result<Option<Seen>> {
    let Some(cif) = nl_guest.link_by_name(names.container_if).await? else { return Ok(None) };
    let end = match names.host_end {
        Some(name) => host.link_by_name(name).await?,
        None => None,
    };
    let addresses = nl_guest.addresses(cif.index).await?;
    let mut routes = nl_guest.routes(Family::V4).await?;
    routes.extend(nl_guest.routes(Family::V6).await?);
    Ok(Some(Seen { cif, end, addresses, routes }))
}

pub fn document(guest: &Guest, names: &Names<'_>, seen: Option<&Seen>, changed: bool) -> Result<Value> {
    let sandbox = match guest.pid {
        Some(pid) => format!("/proc/{pid}/ns/net"),
        None => guest.name.clone(),
    };
    let mut interfaces = Vec::new();
    let Some(Seen { cif, end, addresses, routes: all_routes }) = seen else {
        anyhow::bail!("{} is not in {} after all", names.container_if, guest.describe());
    };
    if let Some(name) = names.host_end {
        let mac = end.as_ref().and_then(|l| l.mac).map(|m| m.to_string());
        interfaces.push(json!({ "name": name, "mac": mac }));
    }
    let at = interfaces.len();
    interfaces.push(json!({ "name": cif.name, "mac": cif.mac.map(|m| m.to_string()), "sandbox": sandbox }));
    let mut ips = Vec::new();
    let mut routes = Vec::new();
    for family in [Family::V4, Family::V6] {
        // An IPv6 link-local address is the kernel's, on every link: not a result.
        let own: Vec<&IpNetwork> =
            addresses.iter().filter(|a| Family::of(&a.ip()) == family && !is_link_local(a)).collect();
        if own.is_empty() {
            continue;
        }
        let through: Vec<_> = all_routes
            .iter()
            .filter(|r| r.oif == Some(cif.index) && Family::of(&r.dst.ip()) == family)
            .collect();
        let gateway = through.iter().find(|r| r.is_default()).and_then(|r| r.gateway);
        for a in &own {
            ips.push(json!({ "address": a.to_string(), "gateway": gateway, "interface": at }));
        }
        // The kernel's own prefix routes are the addresses' business, not ours to list:
        // the link-local address's `fe80::/64` too.
        let prefix_of = |a: &IpNetwork| IpNetwork::new(a.network(), a.prefix()).ok();
        for r in through.iter().filter(|r| {
            !addresses.iter().any(|a| Family::of(&a.ip()) == family && prefix_of(a) == Some(r.dst))
        }) {
            routes.push(json!({ "dst": r.dst.to_string(), "gw": r.gateway }));
        }
    }
    Ok(json!({
        "changed": changed,
        "guest": guest.name,
        "interfaces": interfaces,
        "ips": ips,
        "routes": routes,
    }))
}
