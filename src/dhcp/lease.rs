//! A lease that an external client configured on the guest's interface: read it, and
//! keep it once nobody renews it. (The built-in clients' leases are applied by the
//! planner's steps, as a static address is.)

use anyhow::{Context as _, Result};
use ipnetwork::IpNetwork;

use crate::model::Family;
use crate::netlink::Netlink;

/// The addresses of `family` a client put on link `index` (for IPv6 not the kernel's
/// link-local or SLAAC ones).
pub async fn addresses(nl: &Netlink, index: u32, family: Family) -> Result<Vec<IpNetwork>> {
    nl.client_addresses(index, family).await.context("cannot read the leased address")
}

/// Keep the leased address once nobody renews it.
pub async fn make_permanent(nl: &Netlink, index: u32, family: Family) -> Result<()> {
    nl.make_permanent(index, family).await.context("cannot make the leased address permanent")
}
