//! Routes of the main table: list them, add or replace one, delete one exactly.

use std::net::IpAddr;

use anyhow::Result;
use ipnetwork::IpNetwork;
use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteNextHopFlags, RouteProtocol,
    RouteScope, RouteType,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::RouteMessageBuilder;

use super::{ignore_gone, Netlink, CREATE};
use crate::model::Family;

/// One route of the main table, with the kernel's own message kept so that a
/// deleted route can be put back exactly as it was (metric, protocol, scope...).
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub dst: IpNetwork,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    pub message: RouteMessage,
}

impl Route {
    /// `DST [via GATEWAY] dev OIF`, as `ip route` would make it (proto boot; scope
    /// link for a route without a gateway).
    pub fn new(dst: IpNetwork, gateway: Option<IpAddr>, oif: u32) -> Result<Route> {
        let mut b = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(dst.ip(), dst.prefix())?
            .output_interface(oif)
            .protocol(RouteProtocol::Boot);
        b = match gateway {
            Some(gw) => b.gateway(gw)?,
            None => b.scope(RouteScope::Link),
        };
        Ok(Route { dst, gateway, oif: Some(oif), message: b.build() })
    }

    pub fn is_default(&self) -> bool {
        self.dst.prefix() == 0
    }

    /// Made by the kernel from a router advertisement (`proto ra`), as `slaac` waits for.
    pub fn is_from_router_advertisement(&self) -> bool {
        self.message.header.protocol == RouteProtocol::Ra
    }

    /// Its metric (RTA_PRIORITY), if it has one.
    pub fn metric(&self) -> Option<u32> {
        self.message.attributes.iter().find_map(|a| match a {
            RouteAttribute::Priority(m) => Some(*m),
            _ => None,
        })
    }

    /// Who made it (`proto`: 2 kernel, 3 boot, 4 static, 16 dhcp, ...).
    pub fn protocol(&self) -> u8 {
        self.message.header.protocol.into()
    }

    /// The same route with this metric and protocol (as it was when saved).
    pub fn with_metric_and_protocol(mut self, metric: Option<u32>, protocol: Option<u8>) -> Route {
        if let Some(m) = metric {
            self.message.attributes.retain(|a| !matches!(a, RouteAttribute::Priority(_)));
            self.message.attributes.push(RouteAttribute::Priority(m));
        }
        if let Some(p) = protocol {
            self.message.header.protocol = RouteProtocol::from(p);
        }
        self
    }

    /// This route as a request can carry it back, to put a deleted route back as
    /// it was (see [`restorable`]).
    pub fn restorable(&self) -> Route {
        Route { message: restorable(&self.message), ..self.clone() }
    }

    pub(super) fn from_message(msg: RouteMessage) -> Option<Route> {
        let mut dst_ip = None;
        let mut gateway = None;
        let mut oif = None;
        for attr in &msg.attributes {
            match attr {
                RouteAttribute::Destination(a) => dst_ip = ip_of(a),
                RouteAttribute::Gateway(a) => gateway = ip_of(a),
                RouteAttribute::Oif(i) => oif = Some(*i),
                _ => {}
            }
        }
        let dst_ip = dst_ip.or(match msg.header.address_family {
            AddressFamily::Inet => Some(IpAddr::from([0u8; 4])),
            AddressFamily::Inet6 => Some(IpAddr::from([0u16; 8])),
            _ => None,
        })?;
        let dst = IpNetwork::new(dst_ip, msg.header.destination_prefix_length).ok()?;
        Some(Route { dst, gateway, oif, message: msg })
    }
}

/// A dumped route without the read-only state it carries: cache info and expiry
/// counters, and flags such as `linkdown` and a multipath leg's `dead`, which the
/// kernel refuses in a request (EINVAL). What defines the route stays, so that adding
/// it again gives back the same route. The one rule for every route we put back.
pub(super) fn restorable(msg: &RouteMessage) -> RouteMessage {
    let mut m = msg.clone();
    m.header.flags &= RouteFlags::Onlink | RouteFlags::Pervasive;
    m.attributes.retain(|a| {
        matches!(
            a,
            RouteAttribute::Destination(_)
                | RouteAttribute::Source(_)
                | RouteAttribute::Gateway(_)
                | RouteAttribute::Oif(_)
                | RouteAttribute::Priority(_)
                | RouteAttribute::Table(_)
                | RouteAttribute::PrefSource(_)
                | RouteAttribute::Metrics(_)
                | RouteAttribute::MultiPath(_)
                | RouteAttribute::Preference(_)
                | RouteAttribute::Via(_)
                | RouteAttribute::Realm(_)
                | RouteAttribute::Mark(_)
                | RouteAttribute::Encap(_)
                | RouteAttribute::EncapType(_)
                | RouteAttribute::NhId(_)
        )
    });
    for attr in &mut m.attributes {
        if let RouteAttribute::MultiPath(hops) = attr {
            for hop in hops.iter_mut() {
                hop.flags &= RouteNextHopFlags::Onlink;
            }
        }
    }
    m
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn is_main_unicast(msg: &RouteMessage) -> bool {
    let table = msg
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(msg.header.table));
    table == u32::from(RouteHeader::RT_TABLE_MAIN) && msg.header.kind == RouteType::Unicast
}

impl Netlink {
    /// The unicast routes of the main table for one family.
    pub async fn routes(&self, family: Family) -> Result<Vec<Route>> {
        let mut query = RouteMessageBuilder::<IpAddr>::new().build();
        query.header.address_family = match family {
            Family::V4 => AddressFamily::Inet,
            Family::V6 => AddressFamily::Inet6,
        };
        let msgs = self.route_messages(query).await?;
        Ok(msgs.into_iter().filter(is_main_unicast).filter_map(Route::from_message).collect())
    }

    /// Every route of `query`'s family (a dump).
    pub(super) async fn route_messages(&self, query: RouteMessage) -> Result<Vec<RouteMessage>> {
        let answers = self.dump(RouteNetlinkMessage::GetRoute(query)).await?;
        Ok(answers
            .into_iter()
            .filter_map(|a| match a {
                RouteNetlinkMessage::NewRoute(m) => Some(m),
                _ => None,
            })
            .collect())
    }

    /// `ip route add|replace ROUTE`
    pub async fn add_route(&self, route: &Route, replace: bool) -> Result<()> {
        let flags = if replace { NLM_F_CREATE | NLM_F_REPLACE } else { CREATE };
        self.new_route(route.message.clone(), flags).await
    }

    /// RTM_NEWROUTE with these flags (appending a multipath leg takes APPEND, not EXCL).
    pub(super) async fn new_route(&self, msg: RouteMessage, flags: u16) -> Result<()> {
        self.change_with(RouteNetlinkMessage::NewRoute(msg), flags).await
    }

    /// `ip route del ROUTE`; a route already gone counts as deleted.
    pub async fn del_route(&self, route: &Route) -> Result<()> {
        ignore_gone(self.change_with(RouteNetlinkMessage::DelRoute(route.message.clone()), 0).await)
    }
}
