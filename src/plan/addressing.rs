//! Static addressing inside the guest: IPv6 on for the interface when the family is
//! IPv6, the address (with its IPv4 broadcast), and with a gateway: drop the old
//! default of that family, add a host route to an off-link gateway, then replace the
//! default route. A lease the built-in DHCP client took is applied by the same steps.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{bail, Result};
use ipnetwork::{IpNetwork, Ipv4Network};

use super::dhcp::{Lease, LeaseRoute, Leased};
use super::{GuestFacts, GuestId, Step};
use crate::model::broadcast_of;
use crate::model::{is_link_local, Family};
use crate::model::{Attach, IpSpec};
use crate::netlink::{Link, Route};

/// In the original's order: address, old default out, link up, routes; IPv6 turned
/// on for the interface before anything of IPv6 is put on it. An IPSPEC list gets,
/// per family, the same steps: every address, then each family's old default out,
/// the one link up, each family's routes, and `slaac` last.
pub fn steps(req: &Attach, dev: &str, facts: &GuestFacts) -> Vec<Step> {
    let ipv6 =
        wants_ipv6(req).then(|| req.specs().any(|s| matches!(s, IpSpec::Dhcp { family: Family::V6, .. })));
    let specs: Vec<IpSpec> = req.specs().cloned().collect();
    let mut steps = static_steps(dev, &specs, ipv6, &facts.routes);
    if req.specs().any(|s| *s == IpSpec::Slaac) {
        let timeout = req.dhcp_timeout.unwrap_or(SLAAC_TIMEOUT);
        steps.push(Step::Slaac { dev: dev.to_string(), timeout });
    }
    steps
}

/// What a CNI IPAM plugin gave (`Step::Delegated`), on `dev`, which is up already:
/// the same steps as static addresses with their gateways (the link up again, now
/// with `arp_notify` for an IPv4 address). `routes` are the guest's main-table
/// routes of the gateways' families as they are now.
pub fn delegated_steps(dev: &str, specs: &[IpSpec], routes: &[Route]) -> Vec<Step> {
    let v6 = specs.iter().any(|s| s.family() == Some(Family::V6));
    static_steps(dev, specs, v6.then_some(false), routes)
}

/// The static elements of `specs` on `dev`: IPv6 turned on first when `ipv6` says
/// so (with `optimistic_dad` when it is `Some(true)`), every address, each family's
/// old default out, the link up, each family's routes. `routes` are the guest's.
fn static_steps(dev: &str, specs: &[IpSpec], ipv6: Option<bool>, routes: &[Route]) -> Vec<Step> {
    let addrs: Vec<IpNetwork> = specs
        .iter()
        .filter_map(|s| match s {
            IpSpec::Static { addr, .. } => *addr,
            _ => None,
        })
        .collect();
    let gateways = specs.iter().filter_map(|s| match s {
        IpSpec::Static { gateway, .. } => *gateway,
        _ => None,
    });
    // The kernel announces an IPv4 address when told to (see `announce`).
    let arp_notify = addrs.iter().any(|a| a.is_ipv4());
    let mut steps = Vec::new();
    if let Some(optimistic) = ipv6 {
        steps.push(Step::EnableIpv6 { dev: dev.to_string(), optimistic });
    }
    for addr in &addrs {
        steps.push(Step::AddAddress { dev: dev.to_string(), addr: *addr, broadcast: broadcast_of(addr) });
    }
    let mut new = Vec::new();
    for gw in gateways {
        let family = Family::of(&gw);
        let own: Vec<IpNetwork> = addrs.iter().filter(|a| Family::of(&a.ip()) == family).copied().collect();
        let routes: Vec<Route> =
            routes.iter().filter(|r| Family::of(&r.dst.ip()) == family).cloned().collect();
        let (old, routes) = default_route(dev, &gw, &own, &routes);
        steps.extend(old);
        new.extend(routes);
    }
    steps.push(Step::LinkUp { dev: dev.to_string(), arp_notify });
    steps.extend(new);
    steps
}

/// A lease that pipework applies itself (the built-in clients'), on `dev`, which is
/// up already: the same steps as a static address with its gateway. `routes` are the
/// guest's main-table routes of the lease's family as they are now.
///
/// A DHCPv6 address is added as a /128, as dhclient adds it: DHCPv6 says nothing of
/// prefixes or routers (RFC 8415 section 21.6 carries the address alone). Which
/// addresses are on-link, and the default router, are the router advertisement's to
/// say (RFC 4861, RFC 5942); the kernel takes them, with their lifetimes, once the
/// DHCP step has set `accept_ra` on the interface. Taking the advertised /64 for the
/// address instead would make a second on-link route beside the kernel's, one that
/// outlives the router's word.
pub fn lease_steps(dev: &str, lease: &Leased, routes: &[Route]) -> Vec<Step> {
    let lease = match lease {
        Leased::V4(lease) => lease,
        Leased::V6(lease) => {
            return vec![Step::AddAddress { dev: dev.to_string(), addr: lease.addr.into(), broadcast: None }];
        }
    };
    let addr = IpNetwork::V4(lease.addr);
    let broadcast = lease.broadcast.or_else(|| broadcast_of(&addr));
    let mut steps = vec![Step::AddAddress { dev: dev.to_string(), addr, broadcast }];
    steps.extend(lease.mtu.map(|mtu| Step::SetMtu { dev: dev.to_string(), mtu }));
    if let Some(router) = lease.router {
        let (old, new) = default_route(dev, &IpAddr::V4(router), &[addr], routes);
        steps.extend(old);
        steps.extend(new);
    }
    steps.extend(lease.routes.iter().map(|r| classless_route(dev, r)));
    steps
}

/// One classless static route of a lease (its router checked on-link already).
fn classless_route(dev: &str, r: &LeaseRoute) -> Step {
    Step::AddRoute { dst: r.dst.into(), gateway: r.via.map(IpAddr::V4), dev: dev.to_string(), replace: true }
}

/// A renewed lease with the same address whose routes or MTU changed: the routes it
/// no longer has out, its new ones in, its MTU set (an MTU it no longer gives stays
/// as it is). The default route (the router) is the address's: renewed with it.
pub fn renewal_steps(dev: &str, index: u32, old: &Lease, new: &Lease) -> Vec<Step> {
    let mut steps = Vec::new();
    for gone in old.routes.iter().filter(|r| !new.routes.contains(r)) {
        if let Ok(route) = Route::new(gone.dst.into(), gone.via.map(IpAddr::V4), index) {
            steps.push(Step::DeleteRoute { route, dev: Some(dev.to_string()) });
        }
    }
    steps.extend(new.routes.iter().filter(|r| !old.routes.contains(r)).map(|r| classless_route(dev, r)));
    if new.mtu.is_some() && new.mtu != old.mtu {
        steps.extend(new.mtu.map(|mtu| Step::SetMtu { dev: dev.to_string(), mtu }));
    }
    steps
}

/// The routes a lease brought on link `index` (its classless routes and the default
/// route through its router), for the keeper to remove with its address once the
/// lease is no longer the guest's.
pub fn withdrawn_routes(index: u32, lease: &Lease) -> Vec<Route> {
    let default = Ipv4Network::new(Ipv4Addr::UNSPECIFIED, 0).expect("prefix 0");
    let router = lease.router.map(|r| (default, Some(r)));
    let routes = lease.routes.iter().map(|r| (r.dst, r.via)).chain(router);
    routes.filter_map(|(dst, via)| Route::new(dst.into(), via.map(IpAddr::V4), index).ok()).collect()
}

/// The default route via `gw` on `dev`: the old default of the family out (the
/// original deletes one, `ip route delete default`), then a host route to an
/// off-link gateway and the new default. `addrs` and `routes` are of `gw`'s family.
fn default_route(dev: &str, gw: &IpAddr, addrs: &[IpNetwork], routes: &[Route]) -> (Option<Step>, Vec<Step>) {
    let old =
        routes.iter().find(|r| r.is_default()).map(|r| Step::DeleteRoute { route: r.clone(), dev: None });
    let mut new = Vec::new();
    if !reachable(gw, addrs, routes) {
        let host = IpNetwork::new(*gw, if gw.is_ipv4() { 32 } else { 128 }).expect("full-length prefix");
        new.push(Step::AddRoute { dst: host, gateway: None, dev: dev.to_string(), replace: false });
    }
    let default = IpNetwork::new(unspecified_like(gw), 0).expect("prefix 0");
    new.push(Step::AddRoute { dst: default, gateway: Some(*gw), dev: dev.to_string(), replace: true });
    (old, new)
}

/// A static IPv6 attachment (an address, a gateway, or `-a 6` alone, which leaves
/// IPv6 for the guest to configure on the new interface), `slaac`, a DHCPv6 form, or
/// a list with any of them. (`-a 6` with one of the original's DHCP forms is left as
/// the original leaves it.)
fn wants_ipv6(req: &Attach) -> bool {
    req.families().contains(&Family::V6)
        && req.specs().any(|s| {
            matches!(s, IpSpec::Static { .. } | IpSpec::Slaac | IpSpec::Dhcp { family: Family::V6, .. })
        })
}

/// How long `slaac` waits for a router (`--timeout` says otherwise): routers send
/// advertisements every few minutes, but answer the kernel's solicitation at once.
const SLAAC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A kernel booted with `ipv6.disable=1` has no IPv6 in any namespace, and no
/// `disable_ipv6` to turn: refused before any change, in one line.
pub fn refuse_ipv6_off(req: &Attach, dev: &str, guest: &GuestId, facts: &GuestFacts) -> Result<()> {
    if facts.ipv6_off && wants_ipv6(req) {
        bail!(
            "cannot configure IPv6 on {dev} in {}: IPv6 is off in this kernel (booted with ipv6.disable=1)",
            guest.name
        );
    }
    Ok(())
}

/// The original asks `ip route get GATEWAY` after the old default is gone: the
/// gateway is reachable through the new address's subnet or another non-default
/// route. An IPv6 link-local gateway is always on-link.
fn reachable(gw: &IpAddr, addrs: &[IpNetwork], routes: &[Route]) -> bool {
    if let IpAddr::V6(v6) = gw {
        if (v6.segments()[0] & 0xffc0) == 0xfe80 {
            return true;
        }
    }
    addrs.iter().any(|a| a.contains(*gw)) || routes.iter().any(|r| !r.is_default() && r.dst.contains(*gw))
}

fn unspecified_like(ip: &IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::from([0u8; 4]),
        IpAddr::V6(_) => IpAddr::from([0u16; 8]),
    }
}

/// True when `cif` already has what each IPSPEC element asks (for re-runs): a static
/// address and its default route; for a DHCP form, some address of its family (the
/// network chose which) and, for `-f`, its client still running; for `slaac`, a
/// global address and the router's default route.
pub fn is_configured(req: &Attach, cif: &Link, facts: &GuestFacts) -> bool {
    req.specs().all(|spec| match spec {
        IpSpec::Static { addr, gateway } => {
            let addr_ok = addr.is_none_or(|a| facts.container_addrs.contains(&a));
            addr_ok && gateway.is_none_or(|gw| has_default_via(facts, cif, |r| r.gateway == Some(gw)))
        }
        // A lease is in place when an address of its family is (the plain forms made
        // it permanent), and a `-f` form's client still runs by its record's word.
        // A built-in keeper that is gone but left its lease counts: the re-run starts
        // a new one from that lease (see `plan::resumed`).
        IpSpec::Dhcp { client, family, foreground, .. } => {
            let name = crate::plan::dhcp::client_name(*client, *family);
            let renewing = facts.renewing.contains(&name) || facts.stopped.iter().any(|(c, _)| *c == name);
            has_global(facts, *family) && (!foreground || renewing)
        }
        IpSpec::Slaac => {
            has_global(facts, Family::V6) && has_default_via(facts, cif, Route::is_from_router_advertisement)
        }
    })
}

/// CONTAINER_IF has an address of `family` other than IPv6's link-local one.
fn has_global(facts: &GuestFacts, family: Family) -> bool {
    facts.container_addrs.iter().any(|a| Family::of(&a.ip()) == family && !is_link_local(a))
}

/// A default route through CONTAINER_IF that `matches`.
fn has_default_via(facts: &GuestFacts, cif: &Link, matches: impl Fn(&Route) -> bool) -> bool {
    facts.routes.iter().any(|r| r.is_default() && r.oif == Some(cif.index) && matches(r))
}
