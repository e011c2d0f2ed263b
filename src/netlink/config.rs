//! A link's own layer-3 configuration, saved before a move between namespaces
//! (which drops every address and route of the link) and put back after it.
//!
//! "Own" means what somebody configured: the kernel makes the rest again by itself
//! when the link returns (IPv6 link-local and privacy addresses, prefix and local
//! routes, routes learnt from router advertisements), and adding those twice would fail.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use nix::errno::Errno;
use rtnetlink::packet_core::{Emitable, Parseable, NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL};
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use rtnetlink::packet_route::route::{RouteAttribute, RouteMessage, RouteProtocol};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::RouteMessageBuilder;
use serde::{Deserialize, Serialize};

use super::{errno_of, Netlink, Route, CREATE};

/// How long a rollback waits for restored IPv6 addresses to leave duplicate address
/// detection, when routes need them.
const DAD_PATIENCE: Duration = Duration::from_secs(5);

/// The addresses and routes of one link, as the kernel described them. A record
/// (`crate::record`) keeps it as the kernel's own messages, hex-encoded, so that a
/// later `del` restores exactly what the rollback would have.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Wire", try_from = "Wire")]
pub struct LinkConfig {
    /// The link's index when saved, as the saved routes name it.
    index: u32,
    addresses: Vec<AddressMessage>,
    routes: Vec<RouteMessage>,
}

/// [`LinkConfig`] as JSON holds it.
#[derive(Serialize, Deserialize)]
struct Wire {
    index: u32,
    addresses: Vec<String>,
    routes: Vec<String>,
}

impl From<LinkConfig> for Wire {
    fn from(c: LinkConfig) -> Wire {
        Wire {
            index: c.index,
            addresses: c.addresses.iter().map(hex).collect(),
            routes: c.routes.iter().map(hex).collect(),
        }
    }
}

impl TryFrom<Wire> for LinkConfig {
    type Error = String;

    fn try_from(w: Wire) -> Result<LinkConfig, String> {
        Ok(LinkConfig {
            index: w.index,
            addresses: w.addresses.iter().map(|h| unhex(h)).collect::<Result<_, _>>()?,
            routes: w.routes.iter().map(|h| unhex(h)).collect::<Result<_, _>>()?,
        })
    }
}

fn hex(msg: &impl Emitable) -> String {
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.emit(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<M: Parseable<[u8]>>(text: &str) -> Result<M, String> {
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| text.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| format!("bad hex in a saved netlink message: {text}"))?;
    M::parse(&bytes).map_err(|e| format!("bad saved netlink message: {e}"))
}

impl Netlink {
    /// Save link `index`'s own addresses and routes (every table, both families).
    pub async fn link_config(&self, index: u32) -> Result<LinkConfig> {
        let addresses = self.address_messages(index).await?.into_iter().filter(is_own_address).collect();
        let mut routes = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut query = RouteMessageBuilder::<IpAddr>::new().build();
            query.header.address_family = family;
            let msgs = self.route_messages(query).await?;
            routes.extend(msgs.into_iter().filter(|m| is_own_route(m, index)));
        }
        Ok(LinkConfig { index, addresses, routes })
    }

    /// Put `config` back on link `index` (which may be another index than when it was
    /// saved): addresses first, then routes, in passes, since a route may need
    /// another to reach its gateway (a default route via a gateway that only a
    /// scope-link route reaches). Goes on past a failure; returns one error per thing
    /// not restored.
    pub async fn restore_link_config(&self, index: u32, config: &LinkConfig) -> Vec<anyhow::Error> {
        let mut errors = Vec::new();
        for saved in &config.addresses {
            if let Err(e) = self.restore_address(index, saved).await {
                errors.push(anyhow!("cannot restore address {}: {e:#}", describe_address(saved)));
            }
        }
        let mut left: Vec<&RouteMessage> = config.routes.iter().collect();
        let dad_ends = Instant::now() + DAD_PATIENCE;
        loop {
            let mut failed = Vec::new();
            for saved in left.iter().copied() {
                if let Err(e) = self.restore_route(config.index, index, saved).await {
                    failed.push((saved, e));
                }
            }
            let stuck = failed.len() == left.len();
            if failed.is_empty() || (stuck && !self.dad_pending(index, dad_ends).await) {
                for (saved, e) in failed {
                    errors.push(anyhow!("cannot restore route {}: {e:#}", describe_route(saved)));
                }
                return errors;
            }
            left = failed.into_iter().map(|(saved, _)| saved).collect();
        }
    }

    /// True, after a short pause, while a restored IPv6 address is still under
    /// duplicate address detection (until `until`): the kernel refuses routes with a
    /// tentative address as their source until it ends (~1-2 s).
    async fn dad_pending(&self, index: u32, until: Instant) -> bool {
        let tentative = |m: &AddressMessage| {
            m.attributes
                .iter()
                .any(|a| matches!(a, AddressAttribute::Flags(f) if f.contains(AddressFlags::Tentative)))
        };
        let pending = match self.address_messages(index).await {
            Ok(msgs) => msgs.iter().any(tentative),
            Err(_) => false,
        };
        if !pending || Instant::now() > until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        true
    }

    async fn restore_address(&self, index: u32, saved: &AddressMessage) -> Result<()> {
        let mut msg = saved.clone();
        msg.header.index = index;
        already_there_is_fine(self.change_with(RouteNetlinkMessage::NewAddress(msg), CREATE).await)
    }

    /// Put back `saved`, a route through link `old` (now `index`).
    async fn restore_route(&self, old: u32, index: u32, saved: &RouteMessage) -> Result<()> {
        let mut msg = super::route::restorable(saved);
        let ipv6 = msg.header.address_family == AddressFamily::Inet6;
        let mut append = false;
        for attr in &mut msg.attributes {
            match attr {
                RouteAttribute::Oif(oif) => *oif = index,
                RouteAttribute::NhId(id) => {
                    // The nexthop object went with the link, and is not ours to remake.
                    return Err(anyhow!("it used nexthop object {id}, which went with the link"));
                }
                RouteAttribute::MultiPath(hops) => {
                    // IPv4 drops a multipath route whole when one of its links leaves:
                    // it comes back whole. IPv6 drops only the legs through that link:
                    // those are appended to the legs still there.
                    if ipv6 {
                        hops.retain(|h| h.interface_index == old);
                        append = true;
                    }
                    for hop in hops.iter_mut() {
                        if hop.interface_index == old {
                            hop.interface_index = index;
                        }
                    }
                }
                _ => {}
            }
        }
        let flags = NLM_F_CREATE | if append { NLM_F_APPEND } else { NLM_F_EXCL };
        already_there_is_fine(self.new_route(msg, flags).await)
    }
}

/// Every IPv4 address, and the IPv6 ones that are neither link-local nor temporary
/// (privacy) addresses: the kernel makes those again when the link comes up.
fn is_own_address(msg: &AddressMessage) -> bool {
    let temporary = msg
        .attributes
        .iter()
        .any(|a| matches!(a, AddressAttribute::Flags(f) if f.contains(AddressFlags::Secondary)));
    match msg.header.family {
        AddressFamily::Inet => true,
        // IFA_F_TEMPORARY is IFA_F_SECONDARY's bit.
        AddressFamily::Inet6 => msg.header.scope != AddressScope::Link && !temporary,
        _ => false,
    }
}

/// A route through link `index` (alone, or as a leg of a multipath route) that the
/// kernel does not make by itself.
fn is_own_route(msg: &RouteMessage, index: u32) -> bool {
    let through = msg.attributes.iter().any(|a| match a {
        RouteAttribute::Oif(i) => *i == index,
        RouteAttribute::MultiPath(hops) => hops.iter().any(|h| h.interface_index == index),
        _ => false,
    });
    let made_by_kernel = matches!(msg.header.protocol, RouteProtocol::Kernel | RouteProtocol::Ra);
    through && !made_by_kernel
}

fn already_there_is_fine(r: Result<()>) -> Result<()> {
    match r {
        Err(e) if errno_of(&e) == Some(Errno::EEXIST) => Ok(()),
        r => r,
    }
}

fn describe_address(msg: &AddressMessage) -> String {
    super::addr::network_of(msg).map_or_else(|| "(unreadable)".to_string(), |n| n.to_string())
}

fn describe_route(msg: &RouteMessage) -> String {
    match Route::from_message(msg.clone()) {
        Some(Route { dst, gateway: Some(gw), .. }) => format!("{dst} via {gw}"),
        Some(Route { dst, .. }) => dst.to_string(),
        None => "(unreadable)".to_string(),
    }
}
