//! Addresses: list the ones on a link, add one (with its IPv4 broadcast), delete one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::Result;
use ipnetwork::IpNetwork;
use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressMessage, AddressProtocol, AddressScope, CacheInfo,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::AddressMessageBuilder;

use super::{ignore_gone, Netlink, CREATE};
use crate::model::Family;

impl Netlink {
    /// The kernel's address messages for link `index` (both families).
    pub(super) async fn address_messages(&self, index: u32) -> Result<Vec<AddressMessage>> {
        let mut query = AddressMessage::default();
        query.header.index = index;
        let answers = self.dump(RouteNetlinkMessage::GetAddress(query)).await?;
        Ok(answers
            .into_iter()
            .filter_map(|a| match a {
                RouteNetlinkMessage::NewAddress(m) if m.header.index == index => Some(m),
                _ => None,
            })
            .collect())
    }

    /// The addresses on link `index` (both families).
    pub async fn addresses(&self, index: u32) -> Result<Vec<IpNetwork>> {
        let msgs = self.address_messages(index).await?;
        Ok(msgs.iter().filter_map(network_of).collect())
    }

    /// The addresses on link `index` with their IPv4 broadcast (IFA_BROADCAST), as
    /// `ip addr add` would make them again.
    pub async fn addresses_with_broadcast(&self, index: u32) -> Result<Vec<(IpNetwork, Option<Ipv4Addr>)>> {
        let msgs = self.address_messages(index).await?;
        Ok(msgs
            .iter()
            .filter_map(|m| {
                let broadcast = m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Broadcast(b) => Some(*b),
                    _ => None,
                });
                network_of(m).map(|n| (n, broadcast))
            })
            .collect())
    }

    /// `ip addr add NET [broadcast B] dev INDEX` with that broadcast or none, as an
    /// address was (the builder gives every IPv4 address its subnet's broadcast).
    pub async fn add_address_as_it_was(
        &self,
        index: u32,
        net: IpNetwork,
        broadcast: Option<Ipv4Addr>,
    ) -> Result<()> {
        let mut msg = address_message(index, net);
        msg.attributes.retain(|a| !matches!(a, AddressAttribute::Broadcast(_)));
        msg.attributes.extend(broadcast.map(AddressAttribute::Broadcast));
        self.change_with(RouteNetlinkMessage::NewAddress(msg), CREATE).await
    }

    /// `ip addr add NET [broadcast B] dev INDEX`
    pub async fn add_address(&self, index: u32, net: IpNetwork, broadcast: Option<Ipv4Addr>) -> Result<()> {
        let mut msg = address_message(index, net);
        if let Some(b) = broadcast {
            msg.attributes.push(AddressAttribute::Broadcast(b));
        }
        self.change_with(RouteNetlinkMessage::NewAddress(msg), CREATE).await
    }

    /// `ip addr del NET dev INDEX`; an address (or link) already gone counts as deleted.
    pub async fn del_address(&self, index: u32, net: IpNetwork) -> Result<()> {
        let msg = address_message(index, net);
        ignore_gone(self.change_with(RouteNetlinkMessage::DelAddress(msg), 0).await)
    }

    /// The addresses of `family` on link `index` that a DHCP client put there: the
    /// kernel's own (link-local, loopback, and SLAAC from router advertisements,
    /// told apart by IFA_PROTO) are not.
    pub async fn client_addresses(&self, index: u32, family: Family) -> Result<Vec<IpNetwork>> {
        let msgs = self.address_messages(index).await?;
        Ok(msgs.iter().filter(|m| by_client(m, family)).filter_map(network_of).collect())
    }

    /// `ip addr change ADDR dev INDEX valid_lft forever preferred_lft forever` for
    /// every address a DHCP client put on the link (see [`Self::client_addresses`])
    /// whose lifetime is finite, once nobody renews it; the address keeps its flags
    /// (dhcpcd's `noprefixroute`).
    pub async fn make_permanent(&self, index: u32, family: Family) -> Result<()> {
        const FOREVER: u32 = u32::MAX;
        let msgs = self.address_messages(index).await?;
        for msg in msgs.into_iter().filter(|m| by_client(m, family)) {
            let finite = msg
                .attributes
                .iter()
                .any(|a| matches!(a, AddressAttribute::CacheInfo(c) if c.ifa_valid != FOREVER));
            if !finite || network_of(&msg).is_none() {
                continue;
            }
            let mut change = msg.clone();
            change.attributes.retain(|a| !matches!(a, AddressAttribute::CacheInfo(_)));
            let mut forever = CacheInfo::default();
            (forever.ifa_preferred, forever.ifa_valid) = (FOREVER, FOREVER);
            change.attributes.push(AddressAttribute::CacheInfo(forever));
            self.change_with(RouteNetlinkMessage::NewAddress(change), NLM_F_CREATE | NLM_F_REPLACE).await?;
        }
        Ok(())
    }

    /// The state of link `index`'s IPv6 link-local address, the source of DHCPv6.
    pub async fn link_local(&self, index: u32) -> Result<LinkLocal> {
        let msgs = self.address_messages(index).await?;
        let mut state = LinkLocal::Absent;
        for m in msgs.iter().filter(|m| m.header.family == AddressFamily::Inet6) {
            let Some(IpNetwork::V6(net)) = network_of(m).filter(|_| m.header.scope == AddressScope::Link)
            else {
                continue;
            };
            let flags = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Flags(f) => Some(*f),
                _ => None,
            });
            let flags = flags.unwrap_or(AddressFlags::empty());
            state = if flags.contains(AddressFlags::Dadfailed) {
                LinkLocal::Duplicate(net.ip())
            } else if flags.contains(AddressFlags::Tentative) && !flags.contains(AddressFlags::Optimistic) {
                LinkLocal::Tentative
            } else {
                return Ok(LinkLocal::Usable(net.ip()));
            };
        }
        Ok(state)
    }
}

/// A link's IPv6 link-local address: none yet (IPv6 off, the link down or without
/// carrier), under duplicate address detection, found a duplicate, or usable (past
/// DAD, or optimistic as RFC 4429 lets it be: a socket may bind to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkLocal {
    Absent,
    Tentative,
    Duplicate(Ipv6Addr),
    Usable(Ipv6Addr),
}

/// An address of `family` that no kernel mechanism made: IPv4 ones all; IPv6 ones of
/// global scope without a kernel IFA_PROTO (IFAPROT_KERNEL_RA is a SLAAC address).
fn by_client(m: &AddressMessage, family: Family) -> bool {
    match family {
        Family::V4 => m.header.family == AddressFamily::Inet,
        Family::V6 => {
            m.header.family == AddressFamily::Inet6
                && m.header.scope == AddressScope::Universe
                && !m.attributes.iter().any(|a| {
                    matches!(
                        a,
                        AddressAttribute::Protocol(
                            AddressProtocol::RouterAnnouncement
                                | AddressProtocol::LinkLocal
                                | AddressProtocol::Loopback
                        )
                    )
                })
        }
    }
}

/// `NET` on link `index`, as `ip addr` writes it (IFA_LOCAL and IFA_ADDRESS).
fn address_message(index: u32, net: IpNetwork) -> AddressMessage {
    match net.ip() {
        IpAddr::V4(ip) => {
            AddressMessageBuilder::<Ipv4Addr>::new().index(index).address(ip, net.prefix()).build()
        }
        IpAddr::V6(ip) => {
            AddressMessageBuilder::<Ipv6Addr>::new().index(index).address(ip, net.prefix()).build()
        }
    }
}

impl Netlink {
    /// Link `index` has a global IPv6 address that is usable (past duplicate address
    /// detection), and the namespace a default IPv6 route through it: what a router
    /// advertisement gives an interface that autoconfigures (SLAAC).
    pub async fn autoconfigured(&self, index: u32) -> Result<bool> {
        let usable = self.address_messages(index).await?.iter().any(|m| {
            m.header.family == AddressFamily::Inet6
                && m.header.scope == AddressScope::Universe
                && !m.attributes.iter().any(|a| {
                    matches!(a, AddressAttribute::Flags(f)
                        if f.contains(AddressFlags::Tentative) || f.contains(AddressFlags::Dadfailed))
                })
        });
        if !usable {
            return Ok(false);
        }
        let routes = self.routes(crate::model::Family::V6).await?;
        Ok(routes.iter().any(|r| r.is_default() && r.oif == Some(index)))
    }
}

pub(super) fn network_of(msg: &AddressMessage) -> Option<IpNetwork> {
    // IFA_LOCAL is the address itself; IFA_ADDRESS is the peer on point-to-point links.
    let ip: IpAddr = msg
        .attributes
        .iter()
        .find_map(|a| match a {
            AddressAttribute::Local(ip) => Some(*ip),
            _ => None,
        })
        .or_else(|| {
            msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            })
        })?;
    IpNetwork::new(ip, msg.header.prefix_len).ok()
}
