//! One change to make, in the words of the `ip` command it replaces: `--dry-run`,
//! `--verbose` and error messages all come from this `Display`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnetwork::IpNetwork;

use crate::cli::{Mac, MacvlanMode};
use crate::dhcp::DhcpRequest;
use crate::netlink::Route;

/// Which namespace a step acts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Host,
    Guest,
}

/// The kinds of link [`Step::CreateGuestLink`] makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuestLink {
    Macvlan { parent: String, mode: MacvlanMode },
    Dummy,
    Ipoib { parent: String, pkey: Option<u16> },
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
    /// `bridge` is the Linux bridge to enslave the host end to (`None` for OVS,
    /// whose port is added by [`Step::AddOvsPort`]).
    CreateVeth {
        host: String,
        peer: String,
        mtu: u32,
        bridge: Option<String>,
        mac: Option<Mac>,
    },
    /// `ovs-vsctl add-br NAME [-- set bridge NAME datapath_type=DP]`; a device must appear.
    CreateOvsBridge {
        name: String,
        datapath: Option<String>,
    },
    /// The host end as a port of an OVS bridge, with the original's external ids.
    AddOvsPort {
        bridge: String,
        port: String,
        tag: Option<u16>,
        external_ids: Vec<(String, String)>,
        /// The port record exists already (a veth rebuilt after a down one): keep it on undo.
        existing: bool,
    },
    /// An 802.1Q device `PARENT.VID` on the host.
    CreateVlan {
        name: String,
        parent: String,
        id: u16,
        mtu: u32,
    },
    /// `ip link set NAME up` on the host, for an interface that was down.
    SetHostUp {
        name: String,
    },
    /// A link born inside the guest (under a temporary name, then renamed: the
    /// kernel builds a macvlan on the host side first, where the final name may be taken).
    CreateGuestLink {
        name: String,
        kind: GuestLink,
        mtu: Option<u32>,
        mac: Option<Mac>,
    },
    /// `--direct-phys`: the host interface itself goes into the guest, renamed, with
    /// its old name kept in its alias.
    MoveIntoGuest {
        name: String,
        new_name: String,
        mac: Option<Mac>,
    },
    /// IPv6 on for this one interface, before its IPv6 address: a guest whose
    /// `default.disable_ipv6` is 1 (every Docker container not on an IPv6 network)
    /// has its new links born with IPv6 off, and the kernel refuses their IPv6
    /// addresses (EACCES). Nothing else in the guest changes, as the CNI plugins do.
    EnableIpv6 {
        dev: String,
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
    /// A DHCP client for CONTAINER_IF, after it is up; shown as the client's command line.
    Dhcp(DhcpRequest),
}

impl Step {
    pub fn side(&self) -> Side {
        match self {
            Step::CreateBridge { .. }
            | Step::DeleteStaleVeth { .. }
            | Step::CreateVeth { .. }
            | Step::CreateOvsBridge { .. }
            | Step::AddOvsPort { .. }
            | Step::CreateVlan { .. }
            | Step::SetHostUp { .. }
            | Step::CreateGuestLink { .. }
            | Step::MoveIntoGuest { .. } => Side::Host,
            Step::EnableIpv6 { .. }
            | Step::AddAddress { .. }
            | Step::LinkUp { .. }
            | Step::DeleteRoute { .. }
            | Step::AddRoute { .. }
            | Step::Dhcp(_) => Side::Guest,
        }
    }
}

/// The host end of the veth pair the steps create, if they create one: what the
/// guest's first packets cross.
pub fn veth_host_end(steps: &[Step]) -> Option<&str> {
    steps.iter().find_map(|s| match s {
        Step::CreateVeth { host, .. } => Some(host.as_str()),
        _ => None,
    })
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
                write!(f, "ip link add {host} mtu {mtu}")?;
                if let Some(bridge) = bridge {
                    write!(f, " master {bridge}")?;
                }
                write!(f, " up type veth peer name {peer} netns GUEST mtu {mtu}")?;
                if let Some(mac) = mac {
                    write!(f, " address {mac}")?;
                }
                Ok(())
            }
            Step::LinkUp { dev } => write!(f, "ip link set {dev} up"),
            Step::CreateVlan { name, parent, id, mtu } => {
                write!(f, "ip link add link {parent} name {name} mtu {mtu} type vlan id {id}")
            }
            Step::SetHostUp { name } => write!(f, "ip link set {name} up"),
            Step::CreateOvsBridge { name, datapath } => {
                write!(f, "ovs-vsctl add-br {name}")?;
                match datapath {
                    Some(dp) => write!(f, " -- set bridge {name} datapath_type={dp}"),
                    None => Ok(()),
                }
            }
            Step::AddOvsPort { bridge, port, tag, external_ids, .. } => {
                write!(f, "ovs-vsctl --may-exist add-port {bridge} {port}")?;
                if let Some(t) = tag {
                    write!(f, " tag={t}")?;
                }
                if !external_ids.is_empty() {
                    write!(f, " -- set Interface {port}")?;
                    for (k, v) in external_ids {
                        write!(f, " external-ids:{k}={v}")?;
                    }
                }
                Ok(())
            }
            Step::CreateGuestLink { name, kind, mtu, mac } => {
                f.write_str("ip link add ")?;
                match kind {
                    GuestLink::Macvlan { parent, .. } | GuestLink::Ipoib { parent, .. } => {
                        write!(f, "link {parent} ")?
                    }
                    GuestLink::Dummy => {}
                }
                write!(f, "name {name} netns GUEST")?;
                if let Some(mtu) = mtu {
                    write!(f, " mtu {mtu}")?;
                }
                if let Some(mac) = mac {
                    write!(f, " address {mac}")?;
                }
                match kind {
                    GuestLink::Macvlan { mode, .. } => write!(f, " type macvlan mode {mode}"),
                    GuestLink::Dummy => write!(f, " type dummy"),
                    GuestLink::Ipoib { pkey: Some(p), .. } => write!(f, " type ipoib pkey {p:#06x}"),
                    GuestLink::Ipoib { pkey: None, .. } => write!(f, " type ipoib"),
                }
            }
            Step::MoveIntoGuest { name, new_name, mac } => {
                write!(f, "ip link set {name} netns GUEST name {new_name} alias {name}")?;
                match mac {
                    Some(mac) => write!(f, " address {mac}"),
                    None => Ok(()),
                }
            }
            // sysctl(8) writes a `.` inside an interface name as `/`.
            Step::EnableIpv6 { dev } => {
                write!(f, "sysctl -w net.ipv6.conf.{}.disable_ipv6=0", dev.replace('.', "/"))
            }
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
            Step::Dhcp(req) => write!(f, "{req}"),
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
