//! A DHCPv4 server's options as the built-in client takes them (issue 28): netmask,
//! MTU, classless static routes, name servers, search domains and domain name from
//! the input, and the same as a DHCPv6 server's name servers and domain list.
//! Every lease must give the checked lease (its routes' routers on its subnet, at
//! most 3 name servers, a resolv.conf of nothing but pipework's lines) or an error;
//! never a panic.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use mozim::{DhcpV4ClasslessRoute, DhcpV4Lease};

fn ip(b: &[u8]) -> Ipv4Addr {
    let mut o = [0u8; 4];
    for (d, s) in o.iter_mut().zip(b) {
        *d = *s;
    }
    Ipv4Addr::from(o)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 12 {
        return;
    }
    let mut l = DhcpV4Lease::default();
    l.yiaddr = ip(&data[0..4]);
    l.subnet_mask = ip(&data[4..8]);
    l.mtu = Some(u16::from_be_bytes([data[8], data[9]]));
    let (routes, rest) = data[12..].split_at((data[10] as usize * 9).min(data.len() - 12));
    l.classless_routes = (data[11] & 1 == 1).then(|| {
        routes
            .chunks(9)
            .map(|c| DhcpV4ClasslessRoute {
                prefix_length: c[0],
                destination: ip(&c[1..]),
                router: ip(c.get(5..).unwrap_or(&[])),
            })
            .collect()
    });
    l.gateways = Some(vec![ip(rest)]);
    l.dns_srvs = Some(rest.chunks(4).map(ip).collect());
    let text = String::from_utf8_lossy(rest);
    l.domain_search = Some(text.split(',').map(String::from).collect());
    l.domain_name = text.split(',').next_back().map(String::from);
    let max_mtu = (data[11] & 2 == 2).then_some(1500);
    let Ok((lease, _warnings)) = pipework::dhcp::builtin::from_mozim(&l, max_mtu) else { return };
    for r in &lease.routes {
        assert!(r.via.is_none_or(|gw| lease.addr.contains(gw)), "{r:?} off {}", lease.addr);
    }
    assert!(lease.mtu.is_none_or(|m| (576..=1500).contains(&m)));
    assert!(lease.dns.len() <= 3);
    assert!(lease.domain.as_ref().is_none_or(|d| !d.contains(char::is_whitespace)));
    // The same input as a DHCPv6 server's options 23 and 24, written with the v4 lease.
    let mut l6 = mozim::DhcpV6Lease::default();
    l6.dns_srvs = rest.chunks(16).map(|c| std::net::Ipv6Addr::from(u128::from(ip(c).to_bits()))).collect();
    l6.domain_list = text.split(',').map(String::from).collect();
    let (dns6, search6) = pipework::dhcp::builtin6::dns(&l6, &mut Vec::new());
    assert!(dns6.len() <= 3 && search6.len() <= 6);
    let v6 = pipework::plan::Lease6 {
        addr: "fd00::1/128".parse().unwrap(),
        server_id: Vec::new(),
        iaid: 0,
        t1: 1,
        t2: 2,
        preferred: 3,
        valid: 3,
        dns: dns6,
        search: search6,
    };
    let leases = [pipework::plan::Leased::V4(lease), pipework::plan::Leased::V6(v6)];
    let conf = pipework::apply::resolv::text("eth1", &leases);
    for line in conf.lines() {
        assert!(
            line.starts_with('#') || line.starts_with("nameserver ") || line.starts_with("search "),
            "{conf}"
        );
    }
    assert!(conf.lines().count() <= 5, "{conf}");
});
