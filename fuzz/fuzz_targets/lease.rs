//! A DHCPv4 server's options as the built-in client takes them (issue 28): netmask,
//! MTU, classless static routes, name servers and search domains from the input.
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
    let max_mtu = (data[11] & 2 == 2).then_some(1500);
    let Ok((lease, _warnings)) = pipework::dhcp::builtin::from_mozim(&l, max_mtu) else { return };
    for r in &lease.routes {
        assert!(r.via.is_none_or(|gw| lease.addr.contains(gw)), "{r:?} off {}", lease.addr);
    }
    assert!(lease.mtu.is_none_or(|m| (576..=1500).contains(&m)));
    assert!(lease.dns.len() <= 3);
    let conf = pipework::apply::resolv::text("eth1", &lease);
    for line in conf.lines() {
        assert!(
            line.starts_with('#') || line.starts_with("nameserver ") || line.starts_with("search "),
            "{conf}"
        );
    }
    assert!(conf.lines().count() <= 5, "{conf}");
});
