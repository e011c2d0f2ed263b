//! One change to make, in the words of the `ip` command it replaces: `--dry-run`,
//! `--verbose` and error messages all come from this `Display`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnetwork::IpNetwork;

use super::dhcp::DhcpRequest;
use crate::model::{Mac, MacvlanMode};
use crate::netlink::Route;

/// Which namespace a step acts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

/// [`Step::CreateVeth`]: `bridge` is the Linux bridge to enslave the host end to
/// (`None` for OVS, whose port is added by [`Step::AddOvsPort`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Veth {
    pub host: String,
    pub peer: String,
    pub mtu: u32,
    pub bridge: Option<String>,
    pub mac: Option<Mac>,
}

pub use super::shim_facts::Moved;

/// [`Step::AddOvsPort`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OvsPort {
    pub bridge: String,
    pub port: String,
    pub tag: Option<u16>,
    pub external_ids: Vec<(String, String)>,
    /// The port record exists already (a veth rebuilt after a down one): keep it on undo.
    pub existing: bool,
}

/// [`Step::CreateGuestLink`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewGuestLink {
    pub name: String,
    /// Its name until it is in the guest and renamed (see [`GuestId::temporary_name`]);
    /// the run's intent names it, so that a run killed in between leaves nothing unnamed.
    ///
    /// [`GuestId::temporary_name`]: super::GuestId::temporary_name
    pub temp: String,
    pub kind: GuestLink,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
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
    CreateVeth(Veth),
    /// `ovs-vsctl add-br NAME [-- set bridge NAME datapath_type=DP]`; a device must appear.
    CreateOvsBridge {
        name: String,
        datapath: Option<String>,
    },
    /// The host end as a port of an OVS bridge, with the original's external ids.
    AddOvsPort(OvsPort),
    /// `--isolated`: `bridge link set dev NAME isolated on`, on the host end this run
    /// has just made (its guest end still down: nothing has crossed it yet). Its
    /// undo is the veth's.
    IsolatePort {
        name: String,
    },
    /// An 802.1Q device `PARENT.VID` on the host.
    CreateVlan {
        name: String,
        parent: String,
        id: u16,
        mtu: u32,
    },
    /// `--host-shim`: the shim, a macvlan in bridge mode on the host's PARENT, made
    /// up, with its mark (see `plan::shim`), in one step: made under the shim lock,
    /// so no other run sees it without its mark.
    CreateShim {
        name: String,
        parent: String,
        mark: String,
    },
    /// `ip addr add ADDR dev TO; ip addr del ADDR dev FROM`: the parent's address in
    /// the guest's subnet moves to the shim (added first: the host never lacks it).
    MoveAddress {
        moved: Moved,
        from: String,
        to: String,
    },
    /// `ip addr add ADDR dev DEV` on the host (`--host-shim-addr`).
    AddHostAddress {
        dev: String,
        addr: IpNetwork,
    },
    /// `ip route add DST dev DEV` on the host: to a shimmed guest, through its shim.
    AddHostRoute {
        dst: IpNetwork,
        dev: String,
    },
    /// `ip link set BRIDGE type bridge vlan_filtering 1`, for `@VLAN` on a Linux
    /// bridge whose filtering is off. The ports it has keep what they carry: the
    /// kernel gave each the bridge's default PVID (1, untagged) when it joined.
    BridgeVlanFiltering {
        bridge: String,
    },
    /// `bridge vlan add dev PORT vid VID pvid untagged; bridge vlan add dev PORT vid
    /// A-B; bridge vlan del dev PORT vid 1`: the host end an untagged member of VLAN
    /// `vid`, a tagged member of the trunk's, and of VLAN 1 only when it is kept.
    BridgePortVlan {
        port: String,
        vid: Option<u16>,
        vlans: crate::model::PortVlans,
    },
    /// `ip link set PORT master BRIDGE`: a `BRIDGE@UPLINK`'s uplink (or its VLAN
    /// device) a port of the bridge; undone by `nomaster`.
    EnslaveUplink {
        port: String,
        bridge: String,
    },
    /// `ip link set NAME up` on the host, for an interface that was down.
    SetHostUp {
        name: String,
    },
    /// A link born inside the guest (under a temporary name, then renamed: the
    /// kernel builds a macvlan on the host side first, where the final name may be taken).
    CreateGuestLink(NewGuestLink),
    /// `ip link set DEV alias TEXT`: the attachment's mark (see `plan::alias`), on a
    /// link this run has just made. A separate request: the kernel ignores
    /// IFLA_IFALIAS in the RTM_NEWLINK that creates a link (only a change sets it).
    SetAlias {
        side: Side,
        dev: String,
        alias: String,
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
    ///
    /// `optimistic` (for DHCPv6): also `optimistic_dad`, set while the link is still
    /// down, so that the link-local address the kernel makes when it comes up is
    /// usable at once (RFC 4429) and the DHCPv6 client need not wait out DAD (1-2 s)
    /// to bind to it. A kernel built without it has no such file: the client waits.
    EnableIpv6 {
        dev: String,
        optimistic: bool,
    },
    /// `slaac`: the kernel takes router advertisements on DEV (`accept_ra`) and
    /// announces what it configures (`ndisc_notify`); the step ends once DEV has an
    /// autoconfigured global address and a default route, or fails after `timeout`.
    Slaac {
        dev: String,
        timeout: std::time::Duration,
    },
    AddAddress {
        dev: String,
        addr: IpNetwork,
        broadcast: Option<Ipv4Addr>,
    },
    /// `ip link set DEV up` in the guest. `arp_notify`: also set the interface's
    /// `arp_notify`, in the same request, for the IPv4 announcement (see `announce`).
    LinkUp {
        dev: String,
        arp_notify: bool,
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
    /// `ip link set DEV mtu M` in the guest: a lease's interface MTU (option 26).
    SetMtu {
        dev: String,
        mtu: u32,
    },
    /// A DHCP client for CONTAINER_IF, after it is up; shown as the client's command line.
    Dhcp(DhcpRequest),
    /// The addresses and routes a CNI IPAM plugin gives DEV, once it is up: the plugin
    /// runs while the links are made, and its answer is awaited here, then applied by
    /// the same steps as static addresses (see `apply::delegated`).
    Delegated {
        dev: String,
        plugin: String,
        /// `--host-shim` (CNI `hostShim`): the shim, planned once the plugin has given
        /// the guest's addresses, its host routes made from them (see `plan::shim`).
        shim: Option<Box<super::shim_facts::PendingShim>>,
    },
}

impl Step {
    pub fn side(&self) -> Side {
        match self {
            Step::SetAlias { side, .. } => *side,
            Step::CreateBridge { .. }
            | Step::DeleteStaleVeth { .. }
            | Step::CreateVeth(_)
            | Step::CreateOvsBridge { .. }
            | Step::AddOvsPort(_)
            | Step::IsolatePort { .. }
            | Step::CreateShim { .. }
            | Step::MoveAddress { .. }
            | Step::AddHostAddress { .. }
            | Step::AddHostRoute { .. }
            | Step::CreateVlan { .. }
            | Step::SetHostUp { .. }
            | Step::EnslaveUplink { .. }
            | Step::BridgeVlanFiltering { .. }
            | Step::BridgePortVlan { .. }
            | Step::CreateGuestLink(_)
            | Step::MoveIntoGuest { .. } => Side::Host,
            Step::EnableIpv6 { .. }
            | Step::Slaac { .. }
            | Step::AddAddress { .. }
            | Step::LinkUp { .. }
            | Step::DeleteRoute { .. }
            | Step::AddRoute { .. }
            | Step::SetMtu { .. }
            | Step::Dhcp(_)
            | Step::Delegated { .. } => Side::Guest,
        }
    }
}

/// The host end of the veth pair the steps create, if they create one: what the
/// guest's first packets cross.
pub fn veth_host_end(steps: &[Step]) -> Option<&str> {
    steps.iter().find_map(|s| match s {
        Step::CreateVeth(v) => Some(v.host.as_str()),
        _ => None,
    })
}

impl Step {
    /// The human phrase for this step failing: "cannot ...". `guest` describes the
    /// guest ("container web1 (pid 123)").
    pub fn failure(&self, guest: &str) -> String {
        let g = guest;
        match self {
            Step::CreateBridge { name } => format!("cannot create bridge {name}"),
            Step::DeleteStaleVeth { name } => format!("cannot delete the stale {name}"),
            Step::CreateVeth(Veth { host, peer, bridge: Some(bridge), .. }) => {
                format!("cannot create veth pair {host} on {bridge} with {peer} in {g}")
            }
            Step::CreateVeth(Veth { host, peer, bridge: None, .. }) => {
                format!("cannot create veth pair {host} with {peer} in {g}")
            }
            Step::CreateOvsBridge { name, .. } => format!("cannot create Open vSwitch bridge {name}"),
            Step::AddOvsPort(OvsPort { bridge, port, .. }) => {
                format!("cannot add {port} to Open vSwitch bridge {bridge}")
            }
            Step::IsolatePort { name } => format!("cannot make {name} an isolated port"),
            Step::CreateShim { name, parent, .. } => {
                format!("cannot create the host shim {name} on {parent}")
            }
            Step::MoveAddress { moved, from, to } => {
                format!("cannot move {} from {from} to {to}", moved.addr)
            }
            Step::AddHostAddress { dev, addr } => format!("cannot add address {addr} to {dev}"),
            Step::AddHostRoute { dst, dev } => format!("cannot add the host route to {} via {dev}", dst.ip()),
            Step::EnableIpv6 { dev, .. } => format!("cannot enable IPv6 on {dev} in {g}"),
            Step::Slaac { dev, .. } => format!("cannot autoconfigure {dev} (slaac) in {g}"),
            Step::AddAddress { dev, addr, .. } => format!("cannot add address {addr} to {dev} in {g}"),
            Step::LinkUp { dev, .. } => format!("cannot set {dev} up in {g}"),
            Step::CreateVlan { name, .. } => format!("cannot create VLAN device {name}"),
            Step::SetHostUp { name } => format!("cannot set {name} up"),
            Step::EnslaveUplink { port, bridge } => format!("cannot make {port} a port of {bridge}"),
            Step::BridgeVlanFiltering { bridge } => {
                format!("cannot turn VLAN filtering on for bridge {bridge}")
            }
            Step::BridgePortVlan { port, vid: Some(vid), .. } => format!("cannot put {port} in VLAN {vid}"),
            Step::BridgePortVlan { port, vlans, .. } => {
                format!("cannot put {port} in the VLANs {}", vlans.trunk)
            }
            Step::SetAlias { side: Side::Host, dev, .. } => format!("cannot set the alias of {dev}"),
            Step::SetAlias { side: Side::Guest, dev, .. } => format!("cannot set the alias of {dev} in {g}"),
            Step::CreateGuestLink(NewGuestLink { name, kind, .. }) => {
                format!("cannot create {} {name} in {g}", kind.described())
            }
            Step::MoveIntoGuest { name, new_name, .. } => {
                format!("cannot move {name} into {g} as {new_name}")
            }
            Step::DeleteRoute { .. } => format!("cannot delete the default route in {g}"),
            Step::AddRoute { dst, gateway: Some(gw), dev, .. } if dst.prefix() == 0 => {
                format!("cannot set the default route via {gw} on {dev} in {g}")
            }
            Step::AddRoute { dst, dev, .. } => format!("cannot add the route to {dst} on {dev} in {g}"),
            Step::SetMtu { dev, mtu } => format!("cannot set the MTU of {dev} to {mtu} in {g}"),
            Step::Dhcp(req) => format!("cannot get a DHCP lease with {} on {} in {g}", req.name(), req.dev),
            Step::Delegated { dev, plugin, .. } => {
                format!("cannot configure {dev} in {g} as the IPAM plugin {plugin} says")
            }
        }
    }

    /// The kernel feature a link-making step needs: a kernel built without it answers
    /// EOPNOTSUPP, and the error says which.
    pub fn kernel_feature(&self) -> Option<&'static str> {
        match self {
            Step::CreateVlan { .. } => Some("802.1Q VLAN"),
            Step::CreateShim { .. } => Some("macvlan"),
            Step::BridgeVlanFiltering { .. } => Some("bridge VLAN filtering"),
            Step::CreateGuestLink(link) => Some(match link.kind {
                GuestLink::Dummy => "dummy interface",
                GuestLink::Ipoib { .. } => "IPoIB",
                GuestLink::Macvlan { .. } => "macvlan",
            }),
            _ => None,
        }
    }
}

impl GuestLink {
    fn described(&self) -> String {
        match self {
            GuestLink::Macvlan { parent, .. } => format!("macvlan on {parent} as"),
            GuestLink::Dummy => "dummy interface".to_string(),
            GuestLink::Ipoib { parent, .. } => format!("IPoIB child of {parent} as"),
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
            Step::CreateVeth(veth) => veth.fmt(f),
            Step::LinkUp { dev, .. } => write!(f, "ip link set {dev} up"),
            Step::CreateVlan { name, parent, id, mtu } => {
                write!(f, "ip link add link {parent} name {name} mtu {mtu} type vlan id {id}")
            }
            Step::SetHostUp { name } => write!(f, "ip link set {name} up"),
            Step::EnslaveUplink { port, bridge } => write!(f, "ip link set {port} master {bridge}"),
            Step::BridgeVlanFiltering { bridge } => {
                write!(f, "ip link set {bridge} type bridge vlan_filtering 1")
            }
            Step::BridgePortVlan { port, vid, vlans } => {
                let mut cmds = Vec::new();
                if let Some(vid) = vid {
                    cmds.push(format!("bridge vlan add dev {port} vid {vid} pvid untagged"));
                }
                for (lo, hi) in vlans.trunk.ranges() {
                    let ids = if lo == hi { lo.to_string() } else { format!("{lo}-{hi}") };
                    cmds.push(format!("bridge vlan add dev {port} vid {ids}"));
                }
                if drops_default_vlan(*vid, vlans) {
                    cmds.push(format!("bridge vlan del dev {port} vid {}", crate::netlink::DEFAULT_PVID));
                }
                f.write_str(&cmds.join("; "))
            }
            Step::SetAlias { dev, alias, .. } => write!(f, "ip link set {dev} alias '{alias}'"),
            Step::CreateOvsBridge { name, datapath } => {
                write!(f, "ovs-vsctl add-br {name}")?;
                match datapath {
                    Some(dp) => write!(f, " -- set bridge {name} datapath_type={dp}"),
                    None => Ok(()),
                }
            }
            Step::AddOvsPort(port) => port.fmt(f),
            Step::IsolatePort { name } => write!(f, "bridge link set dev {name} isolated on"),
            Step::CreateShim { name, parent, mark } => write!(
                f,
                "ip link add link {parent} name {name} up type macvlan mode bridge; ip link set {name} alias '{mark}'"
            ),
            Step::MoveAddress { moved, from, to } => {
                let brd = moved.broadcast.map(|b| format!(" broadcast {b}")).unwrap_or_default();
                write!(f, "ip addr add {}{brd} dev {to}; ip addr del {} dev {from}", moved.addr, moved.addr)
            }
            Step::AddHostAddress { dev, addr } => write!(f, "ip addr add {addr} dev {dev}"),
            Step::AddHostRoute { dst, dev } => write!(f, "ip route add {dst} dev {dev}"),
            Step::CreateGuestLink(link) => link.fmt(f),
            Step::MoveIntoGuest { name, new_name, mac } => {
                write!(f, "ip link set {name} netns GUEST name {new_name} alias {name}")?;
                match mac {
                    Some(mac) => write!(f, " address {mac}"),
                    None => Ok(()),
                }
            }
            Step::EnableIpv6 { dev, optimistic } => fmt_enable_ipv6(f, dev, *optimistic),
            Step::Slaac { dev, timeout } => fmt_slaac(f, dev, *timeout),
            Step::AddAddress { dev, addr, broadcast } => {
                write!(f, "ip addr add {addr}")?;
                if let Some(b) = broadcast {
                    write!(f, " broadcast {b}")?;
                }
                write!(f, " dev {dev}")
            }
            Step::DeleteRoute { route, dev } => fmt_route(f, "del", route.dst, route.gateway, dev.as_deref()),
            Step::AddRoute { dst, gateway, dev, replace } => {
                fmt_route(f, if *replace { "replace" } else { "add" }, *dst, *gateway, Some(dev))
            }
            Step::SetMtu { dev, mtu } => write!(f, "ip link set {dev} mtu {mtu}"),
            Step::Dhcp(req) if req.family == crate::model::Family::V6 => {
                // What the DHCP step does first for DHCPv6 (see `apply::dhcp`).
                let key = req.dev.replace('.', "/");
                write!(
                    f,
                    "sysctl -w net.ipv6.conf.{key}.accept_ra=1 net.ipv6.conf.{key}.ndisc_notify=1; {req}"
                )
            }
            Step::Dhcp(req) => write!(f, "{req}"),
            Step::Delegated { dev, plugin, shim } => {
                write!(f, "ip addr add ... dev {dev}; ip route ...: what the IPAM plugin {plugin} gives")?;
                match shim {
                    Some(s) => write!(f, "; the host shim {} on {} and ip route add ... dev {}", s.name, s.parent, s.name),
                    None => Ok(()),
                }
            }
        }
    }
}

/// The sysctls of [`Step::EnableIpv6`], as `sysctl -w` would set them. sysctl(8)
/// writes a `.` inside an interface name as `/`.
fn fmt_enable_ipv6(f: &mut fmt::Formatter<'_>, dev: &str, optimistic: bool) -> fmt::Result {
    let key = dev.replace('.', "/");
    if optimistic {
        write!(f, "sysctl -w net.ipv6.conf.{key}.optimistic_dad=1 net.ipv6.conf.{key}.disable_ipv6=0")
    } else {
        write!(f, "sysctl -w net.ipv6.conf.{key}.disable_ipv6=0")
    }
}

fn fmt_slaac(f: &mut fmt::Formatter<'_>, dev: &str, timeout: std::time::Duration) -> fmt::Result {
    let key = dev.replace('.', "/");
    write!(f, "sysctl -w net.ipv6.conf.{key}.accept_ra=1 net.ipv6.conf.{key}.ndisc_notify=1")?;
    write!(f, "; wait up to {} s for a router's address and default route on {dev}", timeout.as_secs())
}

impl fmt::Display for Veth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Veth { host, peer, mtu, bridge, mac } = self;
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
}

impl fmt::Display for OvsPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let OvsPort { bridge, port, tag, external_ids, .. } = self;
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
}

impl fmt::Display for NewGuestLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let NewGuestLink { name, kind, mtu, mac, .. } = self;
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
}

fn fmt_route(
    f: &mut fmt::Formatter<'_>,
    verb: &str,
    dst: IpNetwork,
    gateway: Option<IpAddr>,
    dev: Option<&str>,
) -> fmt::Result {
    write!(f, "ip route {verb} {}", show_dst(&dst))?;
    if let Some(gw) = gateway {
        write!(f, " via {gw}")?;
    }
    match dev {
        Some(dev) => write!(f, " dev {dev}"),
        None => Ok(()),
    }
}

fn show_dst(dst: &IpNetwork) -> String {
    if dst.prefix() == 0 {
        "default".to_string()
    } else {
        dst.to_string()
    }
}

impl std::fmt::Display for Moved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.addr)?;
        match self.broadcast {
            Some(b) => write!(f, "~{b}"),
            None => Ok(()),
        }
    }
}

/// Whether a port's default VLAN (1) goes: unless kept, or asked for as its own
/// PVID or among its tagged ones.
pub fn drops_default_vlan(vid: Option<u16>, vlans: &crate::model::PortVlans) -> bool {
    let default = crate::netlink::DEFAULT_PVID;
    !vlans.keep_default && vid != Some(default) && !vlans.trunk.contains(default)
}
