//! Telling the neighbours about a new static address at once: a gratuitous ARP for
//! IPv4, an unsolicited neighbour advertisement for IPv6, both sent natively from
//! inside the guest's network namespace (no `arping` on the host, IPv6 covered too).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};

use anyhow::{anyhow, bail, Context as _, Result};
use nix::errno::Errno;
use nix::ifaddrs::getifaddrs;
use nix::libc;
use nix::net::if_::InterfaceFlags;
use nix::sys::socket::{
    bind, sendto, setsockopt, socket, sockopt, AddressFamily, LinkAddr, MsgFlags, SockFlag, SockProtocol,
    SockType, SockaddrIn6, SockaddrLike,
};

use crate::apply::{Context, Known};
use crate::netlink::{Netlink, IPV4_ARP_NOTIFY};
use crate::plan::{veth_host_end, Side, Step};

/// After a successful apply: announce every address the steps added in the guest.
/// Failing to announce is a warning: the address works, neighbours just learn it
/// later. Returns the warnings.
pub async fn after_apply(steps: &[Step], ctx: &Context<'_>) -> Vec<String> {
    let (netns, guest, host) = (ctx.guest_ns, ctx.guest, ctx.host);
    let added = steps.iter().filter_map(|s| match s {
        Step::AddAddress { dev, addr, .. } => Some((dev, addr)),
        _ => None,
    });
    let mut added = added.peekable();
    let mut warnings = Vec::new();
    if added.peek().is_none() {
        return warnings;
    }
    // Sent before the host end's port forwards, an announcement reaches nobody.
    if let Some(host_end) = veth_host_end(steps) {
        host.until_passes_frames(host_end).await;
    }
    for (dev, addr) in added {
        if addr.is_ipv4() && ipv4_by_kernel(steps, ctx, guest, dev).await.unwrap_or(false) {
            continue;
        }
        if let Err(e) = announce(netns, dev, addr.ip()) {
            warnings.push(crate::report::warning(format!("cannot announce {} on {dev}: {e:#}", addr.ip())));
        }
    }
    warnings
}

/// Have the kernel send the gratuitous ARP: with `arp_notify` set on the interface,
/// it announces each of the link's IPv4 addresses when the link's hardware address
/// is set (NETDEV_CHANGEADDR), even to the value it already has. Two requests on the
/// guest's netlink socket. Sending it ourselves takes a packet socket, and closing one
/// waits out an RCU grace period (packet_release calls synchronize_net: 8-20 ms here,
/// most of an attach). The kernel's other trigger, link up, comes too early for a
/// bridge: the host end's port learns of the carrier later (from the linkwatch work)
/// and drops the packet until then. `false` (or an error) where this does not apply:
/// a link that is down or not Ethernet, or a driver that refuses its own address
/// while up; the packet socket does it then.
async fn ipv4_by_kernel(steps: &[Step], ctx: &Context<'_>, guest: &Netlink, dev: &str) -> Result<bool> {
    // Brought up by this run with `arp_notify` set, under a MAC of its choosing: one
    // request (the usual veth case).
    let notified = steps.iter().any(|s| matches!(s, Step::LinkUp { dev: d, arp_notify: true } if d == dev));
    if let Some(Known { index, mac: Some(mac) }) = ctx.known(Side::Guest, dev).filter(|_| notified) {
        guest.set_mac(index, mac).await?;
        return Ok(true);
    }
    let Some(link) = guest.link_by_name(dev).await? else {
        return Ok(false);
    };
    let Some(mac) = link.mac.filter(|_| link.up && link.link_type == libc::ARPHRD_ETHER) else {
        return Ok(false);
    };
    guest.set_ipv4_conf(link.index, IPV4_ARP_NOTIFY, 1).await?;
    guest.set_mac(link.index, mac).await?;
    Ok(true)
}

/// Announce `addr` on `ifname` inside the namespace behind `netns`.
///
/// The work is synchronous: the thread enters the guest's namespace for it and comes
/// back (see `crate::netns`).
pub fn announce(netns: BorrowedFd<'_>, ifname: &str, addr: IpAddr) -> Result<()> {
    crate::netns::run_in(netns, || {
        let Some(link) = local_link(ifname)? else {
            return Ok(());
        };
        match addr {
            IpAddr::V4(a) => send_arp(&link, a),
            IpAddr::V6(a) => send_na(&link, ifname, a),
        }
    })
}

/// The interface as seen from the calling thread's namespace.
struct LocalLink {
    index: u32,
    mac: [u8; 6],
}

/// `None` for a link that does no neighbour discovery (`NOARP`, e.g. dummy): nobody
/// to tell. getifaddrs(3) reads over netlink, so it sees this thread's namespace.
fn local_link(ifname: &str) -> Result<Option<LocalLink>> {
    let entry = getifaddrs()
        .context("cannot list interfaces")?
        .find(|i| i.interface_name == ifname && i.address.as_ref().and_then(|a| a.as_link_addr()).is_some())
        .ok_or_else(|| anyhow!("no interface {ifname}"))?;
    if entry.flags.contains(InterfaceFlags::IFF_NOARP) {
        return Ok(None);
    }
    if !entry.flags.contains(InterfaceFlags::IFF_UP) {
        bail!("{ifname} is down");
    }
    let ll = entry.address.as_ref().and_then(|a| a.as_link_addr()).expect("checked above");
    if ll.halen() != 6 {
        bail!("{ifname} is not an Ethernet interface");
    }
    let mac = ll.addr().ok_or_else(|| anyhow!("{ifname} has no MAC address"))?;
    Ok(Some(LocalLink { index: ll.ifindex() as u32, mac }))
}

/// An ARP announcement (RFC 5227): a broadcast request with sender = target = `addr`.
fn send_arp(link: &LocalLink, addr: Ipv4Addr) -> Result<()> {
    // SOCK_DGRAM: the kernel writes the Ethernet header, with the link's own MAC as source.
    let fd = socket(AddressFamily::Packet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
        .context("cannot open a packet socket")?;
    let dest = broadcast_to(link.index, libc::ETH_P_ARP as u16)?;
    let packet = arp_announcement(link.mac, addr);
    sendto(fd.as_raw_fd(), &packet, &dest, MsgFlags::empty()).context("cannot send the ARP packet")?;
    Ok(())
}

/// `ff:ff:ff:ff:ff:ff` on interface `index`, carrying `ethertype`.
fn broadcast_to(index: u32, ethertype: u16) -> Result<LinkAddr> {
    let ll = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: ethertype.to_be(),
        sll_ifindex: index as i32,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 6,
        sll_addr: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0],
    };
    let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `ll` is a fully initialised sockaddr_ll that lives across the call,
    // and `len` is exactly its size; from_raw copies it.
    unsafe { LinkAddr::from_raw((&ll as *const libc::sockaddr_ll).cast(), Some(len)) }
        .ok_or_else(|| anyhow!("bad link-layer address"))
}

/// The 28-byte ARP payload: Ethernet/IPv4, request, sender = target = `addr`,
/// target hardware address zero (RFC 5227 section 2.3).
fn arp_announcement(mac: [u8; 6], addr: Ipv4Addr) -> [u8; 28] {
    let mut p = [0u8; 28];
    p[0..2].copy_from_slice(&1u16.to_be_bytes()); // hardware type: Ethernet
    p[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // protocol type: IPv4
    p[4] = 6; // hardware address length
    p[5] = 4; // protocol address length
    p[6..8].copy_from_slice(&1u16.to_be_bytes()); // operation: request
    p[8..14].copy_from_slice(&mac);
    p[14..18].copy_from_slice(&addr.octets());
    p[24..28].copy_from_slice(&addr.octets());
    p
}

/// An unsolicited neighbour advertisement (RFC 4861 section 7.2.6) to all nodes, from
/// `addr` itself. A fresh address is still under duplicate address detection (the
/// kernel refuses to bind to it, EADDRNOTAVAIL) and must not be advertised before that
/// ends (RFC 4862 section 5.4): were it a duplicate, the override flag would steal it
/// from its owner. Rather than hold the attach for the ~1-2 s DAD takes, hand the
/// announcement to the kernel: with `ndisc_notify` set on the interface, it sends this
/// very advertisement itself when DAD succeeds (and none when it fails).
fn send_na(link: &LocalLink, ifname: &str, addr: Ipv6Addr) -> Result<()> {
    let fd = socket(AddressFamily::Inet6, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::IcmpV6)
        .context("cannot open an ICMPv6 socket")?;
    let local = SockaddrIn6::from(SocketAddrV6::new(addr, 0, 0, link.index));
    if let Err(Errno::EADDRNOTAVAIL) = bind(fd.as_raw_fd(), &local) {
        notify_after_dad(ifname)?;
        // DAD may have ended between the two looks; then nobody else will send it.
        if bind(fd.as_raw_fd(), &local).is_err() {
            return Ok(());
        }
    }
    // Receivers drop neighbour discovery packets whose hop limit is not 255
    // (RFC 4861 section 7.1.2). The kernel fills in the ICMPv6 checksum itself.
    setsockopt(&fd, sockopt::Ipv6MulticastHops, &255).context("cannot set the hop limit")?;
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let dest = SockaddrIn6::from(SocketAddrV6::new(all_nodes, 0, 0, link.index));
    let packet = neighbour_advertisement(addr, link.mac);
    sendto(fd.as_raw_fd(), &packet, &dest, MsgFlags::empty())
        .context("cannot send the neighbour advertisement")?;
    Ok(())
}

/// `sysctl net.ipv6.conf.IF.ndisc_notify=1`, on the calling thread's namespace
/// (/proc/sys/net shows the namespace of the thread that opens it).
fn notify_after_dad(ifname: &str) -> Result<()> {
    let path = format!("/proc/sys/net/ipv6/conf/{ifname}/ndisc_notify");
    std::fs::write(&path, "1").with_context(|| format!("cannot write {path}"))
}

/// The 32-byte ICMPv6 message: type 136, flags = override, target = `addr`, and a
/// target link-layer address option carrying `mac`. Checksum left zero for the kernel.
fn neighbour_advertisement(addr: Ipv6Addr, mac: [u8; 6]) -> [u8; 32] {
    const OVERRIDE: u8 = 0x20;
    let mut p = [0u8; 32];
    p[0] = 136; // type: neighbour advertisement
    p[4] = OVERRIDE; // not a router, not solicited
    p[8..24].copy_from_slice(&addr.octets());
    p[24] = 2; // option: target link-layer address
    p[25] = 1; // its length, in units of 8 bytes
    p[26..32].copy_from_slice(&mac);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x72, 0x6c, 0xcd, 0x9b, 0x8d];

    #[test]
    fn arp_announcement_bytes() {
        let p = arp_announcement(MAC, Ipv4Addr::new(10, 0, 0, 2));
        let expected: [u8; 28] = [
            0, 1, 8, 0, 6, 4, 0, 1, // Ethernet, IPv4, lengths, request
            0x02, 0x72, 0x6c, 0xcd, 0x9b, 0x8d, 10, 0, 0, 2, // sender
            0, 0, 0, 0, 0, 0, 10, 0, 0, 2, // target
        ];
        assert_eq!(p, expected);
    }

    #[test]
    fn neighbour_advertisement_bytes() {
        let addr: Ipv6Addr = "fd00::2".parse().unwrap();
        let p = neighbour_advertisement(addr, MAC);
        assert_eq!(&p[0..8], &[136, 0, 0, 0, 0x20, 0, 0, 0]);
        assert_eq!(&p[8..24], &addr.octets());
        assert_eq!(&p[24..32], &[2, 1, 0x02, 0x72, 0x6c, 0xcd, 0x9b, 0x8d]);
    }

    #[test]
    fn broadcast_address() {
        let a = broadcast_to(7, 0x0806).unwrap();
        assert_eq!(a.ifindex(), 7);
        assert_eq!(a.addr(), Some([0xff; 6]));
        assert_eq!(a.protocol(), 0x0806u16.to_be());
    }
}
