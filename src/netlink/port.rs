//! Settings of a Linux bridge's port: its isolation (`bridge link set dev X isolated on`).

use anyhow::Result;
use rtnetlink::packet_route::link::{InfoBridgePort, InfoPortData};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::{LinkMessageBuilder, LinkUnspec};

use super::Netlink;

impl Netlink {
    /// `ip link set dev INDEX type bridge_slave isolated on|off`: IFLA_BRPORT_ISOLATED
    /// in IFLA_INFO_SLAVE_DATA of an RTM_NEWLINK on the port, which the kernel hands
    /// to the port's bridge (its master) to apply. A separate request from the one
    /// that makes the port: the kernel reads a new link's slave data only on a change.
    pub async fn set_port_isolated(&self, index: u32, on: bool) -> Result<()> {
        let msg = LinkMessageBuilder::<LinkUnspec>::new()
            .index(index)
            .set_port_data(InfoPortData::BridgePort(vec![InfoBridgePort::Isolated(on)]))
            .build();
        self.change_with(RouteNetlinkMessage::NewLink(msg), 0).await
    }
}
