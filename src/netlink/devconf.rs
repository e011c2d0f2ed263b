//! Per-interface IPv4 settings (`net.ipv4.conf.IF.*`) over netlink rather than
//! /proc/sys: no thread has to enter the guest's namespace, and no path is looked up
//! among the same-named directories of every namespace (each guest has an `eth1`, and
//! the kernel compares them all).

use anyhow::Result;
use rtnetlink::packet_core::DefaultNla;
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::LinkUnspec;

use super::Netlink;

/// IPV4_DEVCONF_ARP_NOTIFY: announce the link's addresses when it comes up or its
/// hardware address is set.
pub const IPV4_ARP_NOTIFY: u16 = 22;

const NLA_F_NESTED: u16 = 0x8000;
const IFLA_AF_SPEC: u16 = 26;
const AF_INET: u16 = 2;
const IFLA_INET_CONF: u16 = 1;

impl Netlink {
    /// `sysctl net.ipv4.conf.IF.NAME=VALUE` for the link `index`: RTM_SETLINK with
    /// IFLA_AF_SPEC { AF_INET { IFLA_INET_CONF { id: value } } }, which sets this one
    /// value and leaves the others as they are.
    pub async fn set_ipv4_conf(&self, index: u32, id: u16, value: u32) -> Result<()> {
        let spec = af_spec_inet_conf(id, value);
        let msg = LinkUnspec::new_with_index(index).append_extra_attribute(spec).build();
        self.change_with(RouteNetlinkMessage::NewLink(msg), 0).await
    }
}

/// One netlink attribute: length, type, value, padded to 4 bytes.
fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
    let len = 4 + value.len();
    let mut out = Vec::with_capacity(len.next_multiple_of(4));
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(len.next_multiple_of(4), 0);
    out
}

/// The IFLA_AF_SPEC attribute setting one IPv4 devconf value (pure, for its test).
pub(super) fn af_spec_inet_conf(id: u16, value: u32) -> LinkAttribute {
    let conf = nla(IFLA_INET_CONF | NLA_F_NESTED, &nla(id, &value.to_ne_bytes()));
    let inet = nla(AF_INET | NLA_F_NESTED, &conf);
    LinkAttribute::Other(DefaultNla::new(IFLA_AF_SPEC | NLA_F_NESTED, inet))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_core::Emitable;

    #[test]
    fn arp_notify_encoding() {
        let attr = af_spec_inet_conf(IPV4_ARP_NOTIFY, 1);
        let mut buf = vec![0u8; attr.buffer_len()];
        attr.emit(&mut buf);
        let u16s = |b: &[u8]| u16::from_ne_bytes([b[0], b[1]]);
        // IFLA_AF_SPEC, 20 bytes > AF_INET, 16 > IFLA_INET_CONF, 12 > ARP_NOTIFY, 8 > 1.
        assert_eq!(buf.len(), 20);
        assert_eq!((u16s(&buf[0..]), u16s(&buf[2..])), (20, IFLA_AF_SPEC | NLA_F_NESTED));
        assert_eq!((u16s(&buf[4..]), u16s(&buf[6..])), (16, AF_INET | NLA_F_NESTED));
        assert_eq!((u16s(&buf[8..]), u16s(&buf[10..])), (12, IFLA_INET_CONF | NLA_F_NESTED));
        assert_eq!((u16s(&buf[12..]), u16s(&buf[14..])), (8, IPV4_ARP_NOTIFY));
        assert_eq!(u32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]), 1);
    }
}
