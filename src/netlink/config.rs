//! A link's own layer-3 configuration, saved before a move between namespaces
//! (which drops every address and route of the link) and put back after it.
//!
//! "Own" means what somebody configured: the kernel makes the rest again by itself
//! when the link returns (IPv6 link-local addresses, prefix and local routes,
//! routes learnt from router advertisements), and adding those twice would fail.

use std::net::IpAddr;

use anyhow::{anyhow, Result};
use futures::TryStreamExt;
use nix::errno::Errno;
use rtnetlink::packet_route::address::{AddressMessage, AddressScope};
use rtnetlink::packet_route::route::{RouteAttribute, RouteFlags, RouteMessage, RouteProtocol};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::RouteMessageBuilder;

use super::{errno_of, kernel, Netlink, Route};

/// The addresses and routes of one link, as the kernel described them.
#[derive(Clone, Debug, Default)]
pub struct LinkConfig {
    addresses: Vec<AddressMessage>,
    routes: Vec<RouteMessage>,
}

impl Netlink {
    /// Save link `index`'s own addresses and routes (every table, both families).
    pub async fn link_config(&self, index: u32) -> Result<LinkConfig> {
        let addresses = self.address_messages(index).await?.into_iter().filter(is_own_address).collect();
        let mut routes = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut query = RouteMessageBuilder::<IpAddr>::new().build();
            query.header.address_family = family;
            let msgs: Vec<RouteMessage> =
                self.handle.route().get(query).execute().try_collect().await.map_err(kernel)?;
            routes.extend(msgs.into_iter().filter(|m| is_own_route(m, index)));
        }
        Ok(LinkConfig { addresses, routes })
    }

    /// Put `config` back on link `index` (which may be another index than when it was
    /// saved): addresses first, since routes may need them to reach their gateway.
    /// Goes on past a failure; returns one error per thing not restored.
    pub async fn restore_link_config(&self, index: u32, config: &LinkConfig) -> Vec<anyhow::Error> {
        let mut errors = Vec::new();
        for saved in &config.addresses {
            let mut msg = saved.clone();
            msg.header.index = index;
            let mut req = self.handle.address().add(index, IpAddr::from([0u8; 4]), 0);
            *req.message_mut() = msg;
            if let Err(e) = already_there_is_fine(req.execute().await.map_err(kernel)) {
                errors.push(anyhow!("cannot restore address {}: {e:#}", describe_address(saved)));
            }
        }
        for saved in &config.routes {
            let mut msg = saved.clone();
            for attr in &mut msg.attributes {
                if let RouteAttribute::Oif(oif) = attr {
                    *oif = index;
                }
            }
            // Kernel-kept state, refused in a request (a route shows `linkdown` while
            // the link has no carrier).
            msg.header.flags &= RouteFlags::Onlink;
            msg.attributes.retain(|a| !matches!(a, RouteAttribute::CacheInfo(_)));
            let req = self.handle.route().add(msg);
            if let Err(e) = already_there_is_fine(req.execute().await.map_err(kernel)) {
                errors.push(anyhow!("cannot restore route {}: {e:#}", describe_route(saved)));
            }
        }
        errors
    }
}

/// Every IPv4 address, and the IPv6 ones that are not link-local (the kernel makes
/// that one again when the link comes up).
fn is_own_address(msg: &AddressMessage) -> bool {
    match msg.header.family {
        AddressFamily::Inet => true,
        AddressFamily::Inet6 => msg.header.scope != AddressScope::Link,
        _ => false,
    }
}

/// A route through link `index` alone that the kernel does not make by itself.
fn is_own_route(msg: &RouteMessage, index: u32) -> bool {
    let through = msg.attributes.iter().any(|a| matches!(a, RouteAttribute::Oif(i) if *i == index));
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
