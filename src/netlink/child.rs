//! Links made on top of another (macvlan, 802.1Q VLAN, IPoIB child) or alone
//! (dummy), and the small changes made to existing links: rename, move to
//! another namespace, alias, MAC, down.

use std::os::fd::{AsRawFd, BorrowedFd};

use anyhow::Result;
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage, MacVlanMode};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::{LinkDummy, LinkIpoib, LinkMacVlan, LinkMessageBuilder, LinkUnspec, LinkVlan};

use super::{Link, Netlink, CREATE};
use crate::model::{Mac, MacvlanMode};

/// What kind of link to create for a guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildKind {
    Macvlan {
        parent: u32,
        mode: MacvlanMode,
    },
    Dummy,
    /// `pkey` as the original passes it (`pkey 0xPKEY`); `None` for the default partition.
    Ipoib {
        parent: u32,
        pkey: Option<u16>,
    },
}

/// `ip link add [link PARENT] name NAME [netns NS] [mtu M] [address MAC] type KIND ...`
pub struct ChildRequest<'a> {
    pub name: &'a str,
    pub kind: ChildKind,
    /// Create it straight inside this namespace (no later move).
    pub netns: Option<BorrowedFd<'a>>,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
}

fn finish<T>(mut b: LinkMessageBuilder<T>, req: &ChildRequest<'_>) -> LinkMessage {
    if let Some(ns) = req.netns {
        b = b.setns_by_fd(ns.as_raw_fd());
    }
    if let Some(mtu) = req.mtu {
        b = b.mtu(mtu);
    }
    if let Some(mac) = req.mac {
        b = b.address(mac.0.to_vec());
    }
    b.build()
}

fn macvlan_mode(m: MacvlanMode) -> MacVlanMode {
    match m {
        MacvlanMode::Bridge => MacVlanMode::Bridge,
        MacvlanMode::Private => MacVlanMode::Private,
        MacvlanMode::Vepa => MacVlanMode::Vepa,
        MacvlanMode::Passthru => MacVlanMode::Passthrough,
    }
}

/// The RTM_NEWLINK message for a child link (pure, so the encoding is unit-tested
/// for kinds this kernel lacks).
pub fn child_message(req: &ChildRequest<'_>) -> LinkMessage {
    match req.kind {
        ChildKind::Macvlan { parent, mode } => {
            finish(LinkMacVlan::new(req.name, parent, macvlan_mode(mode)), req)
        }
        ChildKind::Dummy => finish(LinkDummy::new(req.name), req),
        ChildKind::Ipoib { parent, pkey } => {
            let mut b = LinkIpoib::new(req.name).link(parent);
            if let Some(p) = pkey {
                b = b.pkey(p);
            }
            finish(b, req)
        }
    }
}

/// `ip link add link PARENT name NAME mtu M type vlan id ID`
pub fn vlan_message(name: &str, parent: u32, id: u16, mtu: u32) -> LinkMessage {
    LinkVlan::new(name, parent, id).mtu(mtu).build()
}

impl Netlink {
    pub async fn create_child(&self, req: &ChildRequest<'_>) -> Result<()> {
        self.change_with(RouteNetlinkMessage::NewLink(child_message(req)), CREATE).await
    }

    /// The VLAN device, as the kernel echoes it, if it does.
    pub async fn create_vlan(&self, name: &str, parent: u32, id: u16, mtu: u32) -> Result<Option<Link>> {
        self.create_echoed(vlan_message(name, parent, id, mtu)).await
    }

    async fn change(&self, b: LinkMessageBuilder<LinkUnspec>) -> Result<()> {
        self.change_with(RouteNetlinkMessage::NewLink(b.build()), 0).await
    }

    pub async fn set_down(&self, index: u32) -> Result<()> {
        self.change(LinkUnspec::new_with_index(index).down()).await
    }

    /// `ip link set INDEX name NAME` (the kernel wants the link down for this).
    pub async fn rename(&self, index: u32, name: &str) -> Result<()> {
        self.change(LinkUnspec::new_with_index(index).name(name.to_string())).await
    }

    /// `ip link set INDEX netns NS`
    pub async fn move_to(&self, index: u32, netns: BorrowedFd<'_>) -> Result<()> {
        self.change(LinkUnspec::new_with_index(index).setns_by_fd(netns.as_raw_fd())).await
    }

    /// `ip link set INDEX alias TEXT` (an empty text clears it).
    pub async fn set_alias(&self, index: u32, alias: &str) -> Result<()> {
        let b =
            LinkUnspec::new_with_index(index).append_extra_attribute(LinkAttribute::IfAlias(alias.into()));
        self.change(b).await
    }

    /// `ip link set INDEX master MASTER`
    pub async fn set_master(&self, index: u32, master: u32) -> Result<()> {
        self.change(LinkUnspec::new_with_index(index).controller(master)).await
    }

    /// `ip link set INDEX nomaster`
    pub async fn set_nomaster(&self, index: u32) -> Result<()> {
        self.change(LinkUnspec::new_with_index(index).controller(0)).await
    }

    pub async fn set_mac(&self, index: u32, mac: Mac) -> Result<()> {
        self.change(LinkUnspec::new_with_index(index).address(mac.0.to_vec())).await
    }
}

#[cfg(test)]
mod tests {
    //! Request encoding for kinds this kernel lacks (802.1Q, dummy, IPoIB): what we
    //! would send, not an end-to-end proof.
    use super::*;
    use rtnetlink::packet_route::link::{InfoData, InfoIpoib, InfoKind, InfoVlan, LinkInfo};

    fn infos(msg: &LinkMessage) -> Vec<LinkInfo> {
        msg.attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::LinkInfo(i) => Some(i.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    #[test]
    fn vlan_request_encoding_not_end_to_end() {
        let msg = vlan_message("eth2.10", 4, 10, 9000);
        assert!(msg.attributes.contains(&LinkAttribute::IfName("eth2.10".into())));
        assert!(msg.attributes.contains(&LinkAttribute::Link(4)));
        assert!(msg.attributes.contains(&LinkAttribute::Mtu(9000)));
        let i = infos(&msg);
        assert!(i.contains(&LinkInfo::Kind(InfoKind::Vlan)), "{i:?}");
        assert!(i.contains(&LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(10)]))), "{i:?}");
    }

    #[test]
    fn ipoib_request_encoding_not_end_to_end() {
        let req = ChildRequest {
            name: "pwtemp",
            kind: ChildKind::Ipoib { parent: 5, pkey: Some(0x8001) },
            netns: None,
            mtu: None,
            mac: None,
        };
        let msg = child_message(&req);
        assert!(msg.attributes.contains(&LinkAttribute::Link(5)));
        assert!(!msg.attributes.iter().any(|a| matches!(a, LinkAttribute::Mtu(_))), "no MTU on IPoIB");
        let i = infos(&msg);
        assert!(i.contains(&LinkInfo::Kind(InfoKind::Ipoib)));
        assert!(i.contains(&LinkInfo::Data(InfoData::Ipoib(vec![InfoIpoib::Pkey(0x8001)]))), "{i:?}");
    }

    #[test]
    fn dummy_request_encoding_not_end_to_end() {
        let mac = Mac([2, 0, 0, 0, 0, 9]);
        let req =
            ChildRequest { name: "pwtemp", kind: ChildKind::Dummy, netns: None, mtu: None, mac: Some(mac) };
        let msg = child_message(&req);
        assert!(msg.attributes.contains(&LinkAttribute::Address(mac.0.to_vec())));
        assert!(infos(&msg).contains(&LinkInfo::Kind(InfoKind::Dummy)));
    }
}
