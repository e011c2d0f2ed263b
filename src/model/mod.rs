//! The request model, at the ground floor: the values every front end parses its
//! input into once (interface names, MACs, IPSPEC, VLAN, the attachment and the
//! other verbs' requests, the run options) and that every layer below reads. It
//! imports nothing of the crate.

pub mod addresses;
mod ipspec;
mod names;
mod request;

pub use ipspec::{broadcast_of, DhcpClient, IpSpec, MacVlan, PortVlans, Trunk, Vlan, IPSPEC_FORM};
pub use names::{is_link_local, Family, IfName, Mac, MacvlanMode, IFNAME_FORM, IFNAME_MAX};
pub use request::{dhcp_timeout, Attach, Check, Del, HostIf, HostShim, Ls, Passthrough, RunOpts, Tool};
