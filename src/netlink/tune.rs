//! Settings of a link made already, for a CNI config's keys (`mtu`, `promiscMode`,
//! `hairpinMode`): `ip link set DEV mtu M`, `ip link set DEV promisc on`,
//! `bridge link set dev PORT hairpin on`.

use anyhow::Result;
use rtnetlink::packet_core::DefaultNla;
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage, LinkProtoInfoBridge};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::LinkUnspec;

use super::Netlink;

/// `IFLA_BRPORT_MODE`: hairpin (reflective relay) on a bridge port.
const IFLA_BRPORT_MODE: u16 = 4;

impl Netlink {
    /// `ip link set INDEX mtu MTU`
    pub async fn set_mtu(&self, index: u32, mtu: u32) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index).mtu(mtu).build();
        self.change_with(RouteNetlinkMessage::NewLink(msg), 0).await
    }

    /// `ip link set INDEX promisc on|off`
    pub async fn set_promisc(&self, index: u32, on: bool) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index).promiscuous(on).build();
        self.change_with(RouteNetlinkMessage::NewLink(msg), 0).await
    }

    /// `bridge link set dev INDEX hairpin on|off`: an AF_BRIDGE SETLINK with the
    /// port's nested IFLA_PROTINFO (the kernel reads an un-nested one as an STP state).
    pub async fn set_hairpin(&self, index: u32, on: bool) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.interface_family = AddressFamily::Bridge;
        let mode = DefaultNla::new(IFLA_BRPORT_MODE, vec![u8::from(on)]);
        msg.attributes.push(LinkAttribute::ProtoInfoBridge(vec![LinkProtoInfoBridge::Other(mode)]));
        self.change_with(RouteNetlinkMessage::SetLink(msg), 0).await
    }
}
