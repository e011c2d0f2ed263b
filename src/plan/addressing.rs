//! Static addressing inside the guest: IPv6 on for the interface when the family is
//! IPv6, the address (with its IPv4 broadcast), and with a gateway: drop the old
//! default of that family, add a host route to an off-link gateway, then replace the
//! default route.

use std::net::IpAddr;

use anyhow::{bail, Result};
use ipnetwork::IpNetwork;

use super::{GuestFacts, GuestId, Step};
use crate::cli::types::broadcast_of;
use crate::cli::{Attach, Family, IpSpec};
use crate::netlink::Link;

/// In the original's order: address, old default out, link up, routes; IPv6 turned
/// on for the interface before anything of IPv6 is put on it.
pub fn steps(req: &Attach, dev: &str, facts: &GuestFacts) -> Vec<Step> {
    let up = Step::LinkUp { dev: dev.to_string() };
    let IpSpec::Static { addr, gateway } = &req.ip else {
        return vec![up];
    };
    let mut steps = Vec::new();
    if wants_ipv6(req) {
        steps.push(Step::EnableIpv6 { dev: dev.to_string() });
    }
    if let Some(addr) = addr {
        steps.push(Step::AddAddress { dev: dev.to_string(), addr: *addr, broadcast: broadcast_of(addr) });
    }
    let Some(gw) = gateway else {
        steps.push(up);
        return steps;
    };
    // The original deletes one default route of the family (`ip route delete default`).
    let old_default = facts.routes.iter().find(|r| r.is_default());
    if let Some(route) = old_default {
        steps.push(Step::DeleteRoute { route: route.clone(), dev: None });
    }
    steps.push(up);
    if !reachable(gw, addr.as_ref(), facts) {
        let host = IpNetwork::new(*gw, if gw.is_ipv4() { 32 } else { 128 }).expect("full-length prefix");
        steps.push(Step::AddRoute { dst: host, gateway: None, dev: dev.to_string(), replace: false });
    }
    let default = IpNetwork::new(unspecified_like(gw), 0).expect("prefix 0");
    steps.push(Step::AddRoute { dst: default, gateway: Some(*gw), dev: dev.to_string(), replace: true });
    steps
}

/// A static IPv6 attachment (an address, a gateway, or `-a 6` alone, which leaves
/// IPv6 for the guest to configure on the new interface).
fn wants_ipv6(req: &Attach) -> bool {
    req.family == Family::V6 && matches!(req.ip, IpSpec::Static { .. })
}

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
fn reachable(gw: &IpAddr, addr: Option<&IpNetwork>, facts: &GuestFacts) -> bool {
    if let IpAddr::V6(v6) = gw {
        if (v6.segments()[0] & 0xffc0) == 0xfe80 {
            return true;
        }
    }
    addr.is_some_and(|a| a.contains(*gw))
        || facts.routes.iter().any(|r| !r.is_default() && r.dst.contains(*gw))
}

fn unspecified_like(ip: &IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::from([0u8; 4]),
        IpAddr::V6(_) => IpAddr::from([0u16; 8]),
    }
}

/// True when `cif` already has the asked address and default route (for re-runs).
pub fn is_configured(req: &Attach, cif: &Link, facts: &GuestFacts) -> bool {
    let IpSpec::Static { addr, gateway } = &req.ip else {
        return false;
    };
    let addr_ok = addr.is_none_or(|a| facts.container_addrs.contains(&a));
    let gw_ok = gateway.is_none_or(|gw| {
        facts.routes.iter().any(|r| r.is_default() && r.gateway == Some(gw) && r.oif == Some(cif.index))
    });
    addr_ok && gw_ok
}
