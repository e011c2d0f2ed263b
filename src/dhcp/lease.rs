//! A DHCPv4 lease that an external client configured on the guest's interface: read
//! it, and keep it once nobody renews it. (The built-in client's lease is applied by
//! the planner's steps, as a static address is.)

use anyhow::{Context as _, Result};
use ipnetwork::IpNetwork;

use crate::netlink::Netlink;

/// The IPv4 addresses on link `index`.
pub async fn ipv4_addresses(nl: &Netlink, index: u32) -> Result<Vec<IpNetwork>> {
    let all = nl.addresses(index).await.context("cannot read the leased address")?;
    Ok(all.into_iter().filter(|a| a.is_ipv4()).collect())
}

/// Keep the leased address once nobody renews it.
pub async fn make_permanent(nl: &Netlink, index: u32) -> Result<()> {
    nl.make_ipv4_permanent(index).await.context("cannot make the leased address permanent")
}
