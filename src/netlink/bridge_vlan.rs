//! VLANs on a Linux bridge (802.1Q filtering, `CONFIG_BRIDGE_VLAN_FILTERING`):
//! `ip link set BR type bridge vlan_filtering 1|0` and
//! `bridge vlan add|del dev PORT vid VID [pvid untagged]`, the latter as AF_BRIDGE
//! RTM_SETLINK / RTM_DELLINK requests carrying IFLA_AF_SPEC / IFLA_BRIDGE_VLAN_INFO.

use anyhow::Result;
use rtnetlink::packet_route::link::{
    BridgeVlanInfoFlags, InfoBridge, InfoData, InfoKind, LinkAttribute, LinkInfo,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::{LinkBridgeVlan, LinkUnspec};

use super::Netlink;

/// The VLAN a bridge port is in before any is asked for: the bridge's default PVID.
pub const DEFAULT_PVID: u16 = 1;

impl Netlink {
    /// `ip link set BRIDGE type bridge vlan_filtering 1|0`
    pub async fn set_vlan_filtering(&self, bridge: u32, on: bool) -> Result<()> {
        let info = vec![
            LinkInfo::Kind(InfoKind::Bridge),
            LinkInfo::Data(InfoData::Bridge(vec![InfoBridge::VlanFiltering(on)])),
        ];
        let b = LinkUnspec::new_with_index(bridge).append_extra_attribute(LinkAttribute::LinkInfo(info));
        self.change_with(RouteNetlinkMessage::NewLink(b.build()), 0).await
    }

    /// `bridge vlan add dev PORT vid VID pvid untagged`: the port's frames in and
    /// out untagged, in VLAN `vid` on the bridge.
    pub async fn add_port_pvid(&self, port: u32, vid: u16) -> Result<()> {
        let flags = BridgeVlanInfoFlags::Pvid | BridgeVlanInfoFlags::Untagged;
        let msg = LinkBridgeVlan::new(port).vlan(vid, flags).build();
        self.change_with(RouteNetlinkMessage::SetLink(msg), 0).await
    }

    /// `bridge vlan add dev PORT vid A-B ...`: the port a tagged member of each
    /// range's VLANs (one request, a range as its begin and end entries).
    pub async fn add_port_tagged(&self, port: u32, ranges: &[(u16, u16)]) -> Result<()> {
        let none = BridgeVlanInfoFlags::empty();
        let mut msg = LinkBridgeVlan::new(port);
        for &(lo, hi) in ranges {
            msg = match lo == hi {
                true => msg.vlan(lo, none),
                false => msg.vlan_range_start(lo, none).vlan_range_end(hi, none),
            };
        }
        self.change_with(RouteNetlinkMessage::SetLink(msg.build()), 0).await
    }

    /// `bridge vlan del dev PORT vid VID`
    pub async fn del_port_vlan(&self, port: u32, vid: u16) -> Result<()> {
        let msg = LinkBridgeVlan::new(port).vlan(vid, BridgeVlanInfoFlags::empty()).build();
        self.change_with(RouteNetlinkMessage::DelLink(msg), 0).await
    }
}
