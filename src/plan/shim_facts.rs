//! What `--host-shim`'s planner works from: the host as read for it, the shim
//! planned before an IPAM plugin's addresses come, the addresses it moves. Apart
//! from `shim` so that `step` (whose `Step::Delegated` carries a pending shim) and
//! `shim` (which makes steps) do not need each other.

use std::net::Ipv4Addr;

use ipnetwork::IpNetwork;

use crate::netlink::{Link, Route};

/// An address moved from the parent to the shim, as the parent had it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moved {
    pub addr: IpNetwork,
    pub broadcast: Option<Ipv4Addr>,
}

/// What was read on the host for `--host-shim`, under the shim lock.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShimFacts {
    /// The link under the shim's name, if any, and its addresses.
    pub link: Option<Link>,
    pub addrs: Vec<IpNetwork>,
    /// The parent's addresses, with their IPv4 broadcast.
    pub parent_addrs: Vec<Moved>,
    /// Every address on the host, by link name.
    pub host_addrs: Vec<(String, IpNetwork)>,
    /// The host's routes to the guest's addresses (`/32`, `/128`), wherever they go.
    pub routes: Vec<Route>,
}

/// A shim planned as far as it can be before the guest's addresses are known (a CNI
/// IPAM plugin gives them, see `Step::Delegated`): its name, parent and
/// `--host-shim-addr`, with what was read of it under the shim lock. What it
/// refuses of those it refuses now, before any change; `shim::planned` does the rest
/// once the addresses have come.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingShim {
    pub name: String,
    pub parent: String,
    pub addr: Option<IpNetwork>,
    pub facts: ShimFacts,
}
