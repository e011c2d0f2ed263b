//! Integration tests: each builds its own throw-away namespaces (see `util`) and
//! runs the real binary inside them. Root is needed, as for pipework itself.

mod util;

mod announce;
mod batch;
mod bridge;
mod cli;
pub(crate) mod cni;
mod contrib;
mod cri;
mod dhcp;
pub(crate) mod dhcp6;
mod dhcp_dns;
mod dhcp_docker;
pub(crate) mod dhcp_identity;
mod dhcp_reboot;
mod dhcp_routes;
mod docker;
mod docker_reach;
mod dual_stack;
mod faults;
mod interrupt;
mod lifecycle;
mod lifecycle_dhcp;
mod lifecycle_ovs;
mod lifecycle_session;
mod lxc;
mod ovs;
mod passthrough;
mod physical;
mod rerun;
mod rollback;
mod slaac;
mod wait;
mod watch;
