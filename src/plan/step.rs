//! One change to make, in the words of the `ip` command it replaces: `--dry-run`,
//! `--verbose` and error messages all come from this `Display`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnetwork::IpNetwork;

use crate::cli::Mac;
use crate::netlink::Route;

/// Which namespace a step acts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Host,
    Guest,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// `ip link add NAME type bridge; ip link set NAME up`
    CreateBridge {
        name: String,
    },
    /// A down veth left by an earlier run, as the original deletes it. The one step
    /// that cannot be undone, so the planner puts it after every check.
    DeleteStaleVeth {
        name: String,
    },
    /// The veth pair, host end on the bridge, guest end born in the guest.
    CreateVeth {
        host: String,
        peer: String,
        mtu: u32,
        bridge: String,
        mac: Option<Mac>,
    },
    AddAddress {
        dev: String,
        addr: IpNetwork,
        broadcast: Option<Ipv4Addr>,
    },
    /// `ip link set DEV up` in the guest.
    LinkUp {
        dev: String,
    },
    DeleteRoute {
        route: Route,
        dev: Option<String>,
    },
    AddRoute {
        dst: IpNetwork,
        gateway: Option<IpAddr>,
        dev: String,
        replace: bool,
    },
}

impl Step {
    pub fn side(&self) -> Side {
        match self {
            Step::CreateBridge { .. } | Step::DeleteStaleVeth { .. } | Step::CreateVeth { .. } => Side::Host,
            Step::AddAddress { .. }
            | Step::LinkUp { .. }
            | Step::DeleteRoute { .. }
            | Step::AddRoute { .. } => Side::Guest,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.side() == Side::Guest {
            f.write_str("guest: ")?;
        }
        match self {
            Step::CreateBridge { name } => write!(f, "ip link add {name} up type bridge"),
            Step::DeleteStaleVeth { name } => write!(f, "ip link del {name}"),
            Step::CreateVeth { host, peer, mtu, bridge, mac } => {
                write!(f, "ip link add {host} mtu {mtu} master {bridge} up type veth peer name {peer} netns GUEST mtu {mtu}")?;
                if let Some(mac) = mac {
                    write!(f, " address {mac}")?;
                }
                Ok(())
            }
            Step::LinkUp { dev } => write!(f, "ip link set {dev} up"),
            Step::AddAddress { dev, addr, broadcast } => {
                write!(f, "ip addr add {addr}")?;
                if let Some(b) = broadcast {
                    write!(f, " broadcast {b}")?;
                }
                write!(f, " dev {dev}")
            }
            Step::DeleteRoute { route, dev } => {
                write!(f, "ip route del {}", show_dst(&route.dst))?;
                if let Some(gw) = route.gateway {
                    write!(f, " via {gw}")?;
                }
                if let Some(dev) = dev {
                    write!(f, " dev {dev}")?;
                }
                Ok(())
            }
            Step::AddRoute { dst, gateway, dev, replace } => {
                let verb = if *replace { "replace" } else { "add" };
                write!(f, "ip route {verb} {}", show_dst(dst))?;
                if let Some(gw) = gateway {
                    write!(f, " via {gw}")?;
                }
                write!(f, " dev {dev}")
            }
        }
    }
}

fn show_dst(dst: &IpNetwork) -> String {
    if dst.prefix() == 0 {
        "default".to_string()
    } else {
        dst.to_string()
    }
}
