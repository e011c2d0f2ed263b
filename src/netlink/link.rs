//! Links: read one by name or index, create bridges and veth pairs, set up, delete.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use anyhow::Result;
use nix::errno::Errno;
use rtnetlink::packet_route::link::{
    BridgePortState, InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoVeth, InfoVlan, LinkAttribute,
    LinkExtentMask, LinkFlags, LinkInfo, LinkMessage, State,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec};

use super::{ignore_gone, Netlink};
use crate::model::Mac;

/// What we need to know about one interface, read over netlink (never sysfs:
/// sysfs shows the namespace it was mounted in, not the one we ask about).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `bridge`, `veth`, `macvlan`, ... (`IFLA_INFO_KIND`); `None` for plain NICs.
    pub kind: Option<String>,
    /// ARPHRD_* (1 Ethernet, 32 InfiniBand).
    pub link_type: u16,
    pub mtu: u32,
    pub up: bool,
    pub carrier: bool,
    /// The bridge (or other controller) this link is a port of.
    pub master: Option<u32>,
    /// IFLA_LINK: for a veth, the peer's index (in the peer's namespace); for a
    /// macvlan or VLAN device, its parent's.
    pub peer: Option<u32>,
    pub mac: Option<Mac>,
    /// The 802.1Q id, for a VLAN device.
    pub vlan_id: Option<u16>,
    /// A bridge's `vlan_filtering` (802.1Q filtering on its ports).
    pub vlan_filtering: Option<bool>,
    /// IFLA_IFALIAS, where set.
    pub alias: Option<String>,
    /// IFLA_OPERSTATE is `up`. Unlike `carrier`, set only once the kernel's linkwatch
    /// work has handled the carrier change, asynchronously, which is also when a bridge
    /// enables the port.
    pub oper_up: bool,
    /// For a port of a Linux bridge: the port is not `disabled` (IFLA_BRPORT_STATE).
    /// `None` for a link that is no bridge port.
    pub port_enabled: Option<bool>,
    /// For a port of a Linux bridge: it is an isolated port (IFLA_BRPORT_ISOLATED).
    pub isolated: Option<bool>,
}

impl Link {
    pub fn is_bridge(&self) -> bool {
        self.kind.as_deref() == Some("bridge")
    }
    pub fn is_veth(&self) -> bool {
        self.kind.as_deref() == Some("veth")
    }

    pub(super) fn from_message(msg: &LinkMessage) -> Link {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            kind: None,
            link_type: u16::from(msg.header.link_layer_type),
            mtu: 0,
            up: msg.header.flags.contains(LinkFlags::Up),
            carrier: msg.header.flags.contains(LinkFlags::LowerUp),
            master: None,
            peer: None,
            mac: None,
            vlan_id: None,
            vlan_filtering: None,
            alias: None,
            oper_up: false,
            port_enabled: None,
            isolated: None,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::Mtu(m) => link.mtu = *m,
                LinkAttribute::Controller(m) => link.master = Some(*m),
                LinkAttribute::Link(p) => link.peer = Some(*p),
                LinkAttribute::IfAlias(a) if !a.is_empty() => link.alias = Some(a.clone()),
                LinkAttribute::OperState(state) => link.oper_up = *state == State::Up,
                LinkAttribute::Address(a) if a.len() == 6 => {
                    link.mac = Some(Mac([a[0], a[1], a[2], a[3], a[4], a[5]]))
                }
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        match info {
                            LinkInfo::Kind(k) => link.kind = Some(k.to_string()),
                            LinkInfo::Data(InfoData::Vlan(v)) => {
                                link.vlan_id = v.iter().find_map(|i| match i {
                                    InfoVlan::Id(id) => Some(*id),
                                    _ => None,
                                })
                            }
                            LinkInfo::Data(InfoData::Bridge(b)) => {
                                link.vlan_filtering = b.iter().find_map(|i| match i {
                                    rtnetlink::packet_route::link::InfoBridge::VlanFiltering(on) => Some(*on),
                                    _ => None,
                                })
                            }
                            LinkInfo::PortData(InfoPortData::BridgePort(port)) => {
                                link.port_enabled = port.iter().find_map(|i| match i {
                                    InfoBridgePort::State(s) => Some(*s != BridgePortState::Disabled),
                                    _ => None,
                                });
                                link.isolated = port.iter().find_map(|i| match i {
                                    InfoBridgePort::Isolated(on) => Some(*on),
                                    _ => None,
                                });
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

/// The link attributes [`Link::from_message`] reads: IFLA_ADDRESS, IFLA_IFNAME,
/// IFLA_MTU, IFLA_LINK, IFLA_MASTER, IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_IFALIAS.
/// A field read from another attribute must be added here.
const READ: [u16; 8] = [1, 3, 4, 5, 10, 16, 18, 20];

/// An RTM_NEWLINK answer (`msg`, header included) with only the attributes
/// [`Link`] reads, for the full parse to see: the rest (IPv4 and IPv6 devconf in
/// IFLA_AF_SPEC, queue and XDP attributes, ...) was half of the instructions of `ls`
/// at 1000 guests, parsed into values nothing read. `None`: not such a message, or
/// one that does not walk cleanly (parsed whole, as before).
pub(super) fn lean(msg: &[u8]) -> Option<Vec<u8>> {
    use rtnetlink::packet_core::NlasIterator;
    // nlmsghdr (16 bytes: length, type, ...), then ifinfomsg (16), then attributes.
    const RTM_NEWLINK: u16 = 16;
    const HEAD: usize = 32;
    let kind = u16::from_ne_bytes([*msg.get(4)?, *msg.get(5)?]);
    if kind != RTM_NEWLINK || msg.len() < HEAD {
        return None;
    }
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&msg[..HEAD]);
    for nla in NlasIterator::new(&msg[HEAD..]) {
        let nla = nla.ok()?;
        if READ.contains(&nla.kind()) {
            let bytes = nla.into_inner();
            let len = (usize::from(u16::from_ne_bytes([bytes[0], bytes[1]])) + 3) & !3;
            out.extend_from_slice(&bytes[..len.min(bytes.len())]);
            // Attributes start 4-aligned (a last one may lack its padding).
            out.resize((out.len() + 3) & !3, 0);
        }
    }
    let len = u32::try_from(out.len()).ok()?;
    out[..4].copy_from_slice(&len.to_ne_bytes());
    Some(out)
}

/// IFLA_EXT_MASK with RTEXT_FILTER_SKIP_STATS: the kernel leaves out the link's
/// counters and its IPv6 statistics, which [`Link`] never reads. They are most of
/// each answer (a veth's: ~1.5 KiB) and of the kernel's work to fill it, once per
/// link of a dump (`perf` of `ls` at 1000 guests: `veth_get_stats64`,
/// `__snmp6_fill_stats64`). A kernel without the bit ignores it.
fn without_stats() -> LinkAttribute {
    LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats])
}

/// `ip link add NAME mtu M [master BR] up type veth peer name PEER netns NS mtu M [address MAC]`:
/// the guest end is born inside the guest, so nothing is moved between namespaces.
/// (It cannot be set up in the same request: veth_open() answers ENOTCONN while the
/// pair is still being linked.)
pub struct VethRequest<'a> {
    pub name: &'a str,
    pub mtu: u32,
    pub master: Option<u32>,
    pub peer_name: &'a str,
    pub peer_netns: BorrowedFd<'a>,
    pub peer_mac: Option<Mac>,
}

impl Netlink {
    /// One link by name; `None` if there is none. A single GETLINK, not a dump.
    pub async fn link_by_name(&self, name: &str) -> Result<Option<Link>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.one_link(msg).await
    }

    pub async fn link_by_index(&self, index: u32) -> Result<Option<Link>> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.one_link(msg).await
    }

    async fn one_link(&self, mut msg: LinkMessage) -> Result<Option<Link>> {
        msg.attributes.push(without_stats());
        match self.get_one_unless(RouteNetlinkMessage::GetLink(msg), Errno::ENODEV).await? {
            Some(RouteNetlinkMessage::NewLink(m)) => Ok(Some(Link::from_message(&m))),
            _ => Ok(None),
        }
    }

    /// Every link in the namespace (used to find a bridge's ports, or a MAC).
    pub async fn links(&self) -> Result<Vec<Link>> {
        let mut query = LinkMessage::default();
        query.attributes.push(without_stats());
        let answers = self.dump(RouteNetlinkMessage::GetLink(query)).await?;
        Ok(answers
            .iter()
            .filter_map(|a| match a {
                RouteNetlinkMessage::NewLink(m) => Some(Link::from_message(m)),
                _ => None,
            })
            .collect())
    }

    /// `ip link add NAME address MAC type bridge` + `up`, in one request; the new
    /// link, if the kernel echoes it. The MAC is pinned (random, locally
    /// administered, as the reference bridge plugin does): a bridge left to the
    /// kernel takes its lowest port's MAC and changes it as ports come and go, and
    /// a guest's ARP entry for its gateway then points at a MAC that no longer
    /// answers until it ages (52 s seen under containerd).
    pub async fn create_bridge(&self, name: &str) -> Result<Option<Link>> {
        let mac = Mac::random_local()?;
        let mut msg = LinkBridge::new(name).up().build();
        msg.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
        self.create_echoed(msg).await
    }

    /// The pair; the host end as the kernel echoes it (its `peer` is the guest end's
    /// index in the guest), if it does.
    pub async fn create_veth(&self, req: &VethRequest<'_>) -> Result<Option<Link>> {
        let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(req.peer_name.to_string())
            .mtu(req.mtu)
            .setns_by_fd(req.peer_netns.as_raw_fd());
        if let Some(mac) = req.peer_mac {
            peer = peer.address(mac.0.to_vec());
        }
        let mut host = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
            .name(req.name.to_string())
            .mtu(req.mtu)
            .up()
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())));
        if let Some(master) = req.master {
            host = host.controller(master);
        }
        self.create_echoed(host.build()).await
    }

    /// `ip link set dev INDEX up`
    pub async fn set_up(&self, index: u32) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index).up().build();
        self.change_with(RouteNetlinkMessage::NewLink(msg), 0).await
    }

    /// `ip link set dev INDEX up` and `sysctl net.ipv4.conf.DEV.arp_notify=1` in one
    /// request. The kernel applies the flags before the per-family settings, so the
    /// link comes up without announcing (too early for a bridge port to pass it), and
    /// announces when its MAC is set later (see `crate::announce`).
    pub async fn set_up_with_arp_notify(&self, index: u32) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index)
            .up()
            .append_extra_attribute(super::devconf::af_spec_inet_conf(super::IPV4_ARP_NOTIFY, 1))
            .build();
        self.change_with(RouteNetlinkMessage::NewLink(msg), 0).await
    }

    /// Wait until `name` passes frames: a Linux bridge drops what arrives on a port
    /// until the kernel's linkwatch work has seen the port's carrier come on and
    /// enabled it. For a veth that work runs at once, but asynchronously: the guest
    /// end has carrier before the host end's port forwards. Other links may wait for
    /// it up to a second, so we give it two, and go on regardless after that: no worse
    /// than not waiting. "Enabled" is any state but `disabled`: a port that STP keeps
    /// listening for 30 s is not waited for. Mostly true at the first look.
    pub async fn until_passes_frames(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut pause = Duration::from_micros(200);
        loop {
            match self.link_by_name(name).await {
                Ok(Some(link)) if link.oper_up && link.port_enabled != Some(false) => return,
                // A bridge that is down keeps its ports disabled for good.
                Ok(Some(link)) if link.oper_up && !self.master_is_up(&link).await => return,
                Ok(Some(_)) if Instant::now() < deadline => {}
                _ => return,
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    async fn master_is_up(&self, link: &Link) -> bool {
        let Some(master) = link.master else {
            return false;
        };
        matches!(self.link_by_index(master).await, Ok(Some(m)) if m.up)
    }

    /// `ip link del INDEX`; a link that is already gone counts as deleted.
    pub async fn delete_link(&self, index: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        ignore_gone(self.change_with(RouteNetlinkMessage::DelLink(msg), 0).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload};

    fn wire(msg: LinkMessage) -> Vec<u8> {
        let mut m = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::from(RouteNetlinkMessage::NewLink(msg)),
        );
        m.finalize();
        let mut buf = vec![0u8; m.buffer_len()];
        m.serialize(&mut buf);
        buf
    }

    fn parsed(buf: &[u8]) -> Link {
        match NetlinkMessage::<RouteNetlinkMessage>::deserialize(buf).unwrap().payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)) => Link::from_message(&m),
            other => panic!("{other:?}"),
        }
    }

    /// The lean answer gives the same `Link` as the whole one, with what `Link`
    /// does not read (here the queue length, the group, an odd-length name's padding)
    /// left out.
    #[test]
    fn a_lean_link_answer_reads_as_the_whole_one() {
        let mut msg = LinkMessage::default();
        msg.header.index = 7;
        msg.header.flags = LinkFlags::Up;
        msg.attributes = vec![
            LinkAttribute::IfName("veth1pl42".into()),
            LinkAttribute::TxQueueLen(1000),
            LinkAttribute::Mtu(1500),
            LinkAttribute::Group(3),
            LinkAttribute::Controller(4),
            LinkAttribute::Link(9),
            LinkAttribute::IfAlias("pipework:guest=pid:42".into()),
            LinkAttribute::Address(vec![2, 0, 0, 0, 0, 1]),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
            LinkAttribute::OperState(State::Up),
        ];
        let whole = wire(msg);
        let lean = lean(&whole).expect("a NEWLINK answer");
        assert!(lean.len() < whole.len());
        let link = parsed(&lean);
        assert_eq!(link, parsed(&whole));
        assert_eq!(
            (link.name.as_str(), link.mtu, link.master, link.peer),
            ("veth1pl42", 1500, Some(4), Some(9))
        );
        assert!(link.is_veth() && link.oper_up && link.alias.is_some() && link.mac.is_some());
    }
}
