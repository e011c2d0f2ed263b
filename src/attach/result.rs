//! What an attach came to ([`Attached`]), read back from the kernel once the run
//! is done (or found done): the interfaces (name, MAC, sandbox), addresses with
//! their gateway, the routes through CONTAINER_IF, and whether anything `changed`.
//! Shaped so that a CNI result (interfaces / ips / routes) is a thin mapping of it.

use std::net::IpAddr;

use anyhow::Result;
use ipnetwork::IpNetwork;
use serde::Serialize;

use crate::apply::Context;
use crate::guest::Guest;
use crate::model::{is_link_local, Family, Mac};
use crate::netlink::{Link, Netlink, Route};
use crate::plan::{Side, Step};

/// What the result names: the guest's interface, and the host end of a veth mode.
pub struct Names<'a> {
    pub container_if: &'a str,
    pub host_end: Option<&'a str>,
    /// A `BRIDGE@UPLINK`'s uplink, as HOSTIF names it.
    pub uplink: Option<&'a str>,
}

/// What the kernel holds of an attachment once the run is done, read once for both
/// its record and its `--json` result: CONTAINER_IF, the host end, CONTAINER_IF's
/// addresses and the guest's routes of both families.
pub struct Seen {
    pub cif: Link,
    pub end: Option<Link>,
    pub addresses: Vec<IpNetwork>,
    pub routes: Vec<Route>,
    /// A `BRIDGE@UPLINK`'s uplink (from the request: the bridge's ports do not say
    /// which of them is the uplink).
    pub uplink: Option<String>,
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
    Ok(Some(Seen { cif, end, addresses, routes, uplink: names.uplink.map(String::from) }))
}

/// What the run itself made, without a request: the same as [`seen`] would read for
/// what the record and the result hold (the kernel's own IPv6 link-local address and
/// prefix routes aside, which neither lists). Known where the run made CONTAINER_IF
/// (a veth's guest end, or a link born in the guest), so that nothing but its own
/// steps is on it: its index and the host end's from the kernel's echoes, the marks
/// the steps set, the addresses and routes the steps added (an IPAM plugin's too).
/// `None`, for [`seen`] to read, where the run cannot know it all: CONTAINER_IF was
/// there before or moved in with what it had, a DHCP client or router advertisements
/// configure it, a kernel that does not echo, or `with_macs` (`--json`) and a MAC the
/// kernel chose that no echo gave.
pub fn made(steps: &[Step], ctx: &Context<'_>, names: &Names<'_>, with_macs: bool) -> Option<Seen> {
    let cif_name = names.container_if;
    let made_here = steps.iter().any(|s| match s {
        Step::CreateVeth(v) => v.peer == cif_name && names.host_end == Some(v.host.as_str()),
        Step::CreateGuestLink(l) => l.name == cif_name && names.host_end.is_none(),
        _ => false,
    });
    let configured_elsewhere =
        steps.iter().any(|s| matches!(s, Step::Dhcp(_) | Step::Slaac { .. } | Step::MoveIntoGuest { .. }));
    if !made_here || configured_elsewhere {
        return None;
    }
    let alias = |side: Side, dev: &str| {
        steps.iter().rev().find_map(|s| match s {
            Step::SetAlias { side: sd, dev: d, alias } if *sd == side && d == dev => Some(alias.clone()),
            _ => None,
        })
    };
    let link = |side: Side, name: &str| {
        let known = ctx.known(side, name)?;
        if with_macs && known.mac.is_none() {
            return None;
        }
        let (index, mac) = (known.index, known.mac);
        Some(Link { index, name: name.to_string(), mac, alias: alias(side, name), ..Link::default() })
    };
    let cif = link(Side::Guest, cif_name)?;
    let end = match names.host_end {
        // A port this run made isolated (`--isolated`) says so, as a read would.
        Some(name) => Some(Link {
            isolated: Some(steps.iter().any(|s| matches!(s, Step::IsolatePort { name: n } if n == name))),
            ..link(Side::Host, name)?
        }),
        None => None,
    };
    let mut addresses = Vec::new();
    let mut routes = Vec::new();
    for step in steps {
        match step {
            Step::AddAddress { dev, addr, .. } if dev == cif_name => addresses.push(*addr),
            Step::AddRoute { dst, gateway, dev, .. } if dev == cif_name => {
                routes.push(Route::new(*dst, *gateway, cif.index).ok()?)
            }
            _ => {}
        }
    }
    Some(Seen { cif, end, addresses, routes, uplink: names.uplink.map(String::from) })
}

/// What an attach came to, as the kernel holds it once the run is done (or found
/// done). `--json` prints its serde form; CNI maps it to its result; watch logs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attached {
    /// Whether this run changed anything (`false`: found in place).
    pub changed: bool,
    /// The guest as it was named.
    pub guest: String,
    /// The host end of a veth mode (no `sandbox`), then CONTAINER_IF.
    pub interfaces: Vec<Interface>,
    /// CONTAINER_IF's addresses (not the kernel's IPv6 link-local one).
    pub ips: Vec<Address>,
    /// The routes through CONTAINER_IF, but for the addresses' own prefix routes.
    pub routes: Vec<RouteTo>,
    /// `--host-shim`: the shim the host reaches the guest through, and the host's
    /// routes to the guest through it (from the attachment's record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_shim: Option<ShimResult>,
    /// The name servers, search domains and domain name of the leases this run's
    /// built-in DHCP clients took: the CNI result's `dns`. `None` without such a lease.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<LeaseDns>,
    /// `BRIDGE@UPLINK`: the uplink (its VLAN device, with `@VLAN`, the bridge's port).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uplink: Option<String>,
}

/// What a lease says of DNS, in the CNI result's words.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LeaseDns {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<std::net::IpAddr>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

impl LeaseDns {
    /// The DNS of `leases` (a DHCPv4 lease's; a DHCPv6 one has none here), `None`
    /// when they say nothing of it.
    pub fn of(leases: &[crate::plan::Leased]) -> Option<LeaseDns> {
        let mut dns = LeaseDns::default();
        for lease in leases {
            if let crate::plan::Leased::V4(l) = lease {
                dns.nameservers.extend(l.dns.iter().map(|s| std::net::IpAddr::V4(*s)));
                dns.search.extend(l.search.iter().cloned());
                dns.domain = dns.domain.or(l.domain.clone());
            }
        }
        (dns != LeaseDns::default()).then_some(dns)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShimResult {
    pub name: String,
    pub routes: Vec<IpNetwork>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Interface {
    pub name: String,
    pub mac: Option<Mac>,
    /// The guest's namespace (`/proc/PID/ns/net`, or its file): CONTAINER_IF's only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// The host end is an isolated port of its bridge (`--isolated`); said only then.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub isolated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Address {
    pub address: IpNetwork,
    /// The family's default gateway through CONTAINER_IF.
    pub gateway: Option<IpAddr>,
    /// Its interface, an index in `interfaces`.
    pub interface: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteTo {
    pub dst: IpNetwork,
    pub gw: Option<IpAddr>,
}

impl Attached {
    /// CONTAINER_IF, the interface in the guest.
    pub fn container_if(&self) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.sandbox.is_some())
    }

    /// The host end of a veth mode.
    pub fn host_end(&self) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.sandbox.is_none())
    }

    /// The attachment as `seen`; an error when CONTAINER_IF was not there to see.
    pub fn of(guest: &Guest, names: &Names<'_>, seen: Option<&Seen>, changed: bool) -> Result<Attached> {
        let Some(Seen { cif, end, addresses, routes: all_routes, uplink }) = seen else {
            anyhow::bail!("{} is not in {} after all", names.container_if, guest.describe());
        };
        let sandbox = match guest.pid {
            Some(pid) => format!("/proc/{pid}/ns/net"),
            None => guest.name.clone(),
        };
        let mut interfaces = Vec::new();
        if let Some(name) = names.host_end {
            let mac = end.as_ref().and_then(|l| l.mac);
            let isolated = end.as_ref().and_then(|l| l.isolated).unwrap_or(false);
            interfaces.push(Interface { name: name.to_string(), mac, sandbox: None, isolated });
        }
        let at = interfaces.len();
        interfaces.push(Interface {
            name: cif.name.clone(),
            mac: cif.mac,
            sandbox: Some(sandbox),
            isolated: false,
        });
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
            ips.extend(own.iter().map(|a| Address { address: **a, gateway, interface: at }));
            // The kernel's own prefix routes are the addresses' business, not ours to
            // list: the link-local address's `fe80::/64` too.
            let prefix_of = |a: &IpNetwork| IpNetwork::new(a.network(), a.prefix()).ok();
            let own_prefix = |r: &Route| {
                addresses.iter().any(|a| Family::of(&a.ip()) == family && prefix_of(a) == Some(r.dst))
            };
            routes.extend(
                through.iter().filter(|r| !own_prefix(r)).map(|r| RouteTo { dst: r.dst, gw: r.gateway }),
            );
        }
        // A macvlan's only (no host end): the veth modes, CNI's bridge among them,
        // read no record for it.
        let shimmable = names.host_end.is_none();
        let host_shim = shimmable
            .then(|| crate::record::load(guest.ns_inode, names.container_if).ok())
            .flatten()
            .flatten()
            .and_then(|r| r.shim)
            .map(|s| ShimResult { name: s.name, routes: s.routes });
        let uplink = uplink.clone();
        Ok(Attached {
            changed,
            guest: guest.name.clone(),
            interfaces,
            ips,
            routes,
            host_shim,
            dns: None,
            uplink,
        })
    }
}
