//! DHCP executor tests without root: the built-in client's lease through mozim and
//! its renewal timing, and the original's words for a missing client.

use super::*;
use super::{builtin, builtin6};
use crate::plan::{Lease, Lease6};

pub(crate) fn lease() -> Lease {
    Lease {
        addr: "10.9.0.60/24".parse().unwrap(),
        broadcast: Some("10.9.0.255".parse().unwrap()),
        router: Some("10.9.0.1".parse().unwrap()),
        server: "10.9.0.1".parse().unwrap(),
        t1: 60,
        t2: 105,
        secs: 120,
        routes: Vec::new(),
        mtu: None,
        dns: Vec::new(),
        search: Vec::new(),
        domain: None,
    }
}

#[test]
fn lease_round_trips_through_mozim() {
    let m = builtin::to_mozim(&lease());
    assert_eq!(builtin::from_mozim(&m, Some(1500)).unwrap().0, lease());
}

#[test]
fn renewal_brought_forward_only_when_sooner() {
    let m = builtin::to_mozim(&lease());
    let short = builtin::shorten(m.clone(), Some(2));
    assert_eq!((short.t1_sec, short.t2_sec, short.lease_time_sec), (2, 105, 120));
    assert_eq!(builtin::shorten(m.clone(), Some(90)).t1_sec, 60);
    assert_eq!(builtin::shorten(m, None).t1_sec, 60);
}

/// The renewal state machine: a client handed a bound lease with T1 brought forward
/// is done (bound), and its next step is renewing once T1 has passed.
#[tokio::test]
async fn bound_client_goes_renewing_at_t1() {
    let iface = Interface {
        dev: "eth1".into(),
        index: 2,
        mac: [2, 0, 0, 0, 0, 1],
        hostname: "web1".into(),
        max_mtu: Some(1500),
        client_id: None,
    };
    let mut client = mozim::DhcpV4Client::init(builtin::config(&iface, 0).unwrap(), None).await.unwrap();
    client.done(builtin::shorten(builtin::to_mozim(&lease()), Some(1))).unwrap();
    let started = std::time::Instant::now();
    let state = client.run().await.unwrap();
    assert_eq!(state, mozim::DhcpV4State::Renewing);
    assert!(started.elapsed() >= std::time::Duration::from_millis(900), "{:?}", started.elapsed());
}

#[test]
fn a_missing_client_is_named_as_the_original_does() {
    let e = find_client("no-such-dhcp-client").unwrap_err().to_string();
    assert_eq!(e, "You asked for DHCP client no-such-dhcp-client, but I can't find it.");
}

fn lease6() -> Lease6 {
    Lease6 {
        addr: "fd00:77::1a3/128".parse().unwrap(),
        // dnsmasq's DUID-LLT: type 1, Ethernet, a time, its MAC.
        server_id: vec![0, 1, 0, 1, 0x2e, 0x9c, 0x11, 0x22, 2, 0x42, 0xac, 0x11, 0, 2],
        iaid: 0,
        t1: 60,
        t2: 105,
        preferred: 120,
        valid: 120,
        dns: Vec::new(),
        search: Vec::new(),
    }
}

#[test]
fn lease6_goes_to_mozim_with_the_servers_duid_as_sent() {
    let m = builtin6::to_mozim(&lease6());
    assert_eq!(m.address, "fd00:77::1a3".parse::<std::net::Ipv6Addr>().unwrap());
    assert_eq!(m.srv_duid, mozim::DhcpV6Duid::Raw(lease6().server_id));
    assert_eq!((m.t1_sec, m.t2_sec, m.preferred_time_sec, m.valid_time_sec), (60, 105, 120, 120));
    assert_eq!(builtin6::shorten(m.clone(), Some(2)).t1_sec, 2);
    assert_eq!(builtin6::shorten(m, Some(90)).t1_sec, 60);
}

/// A DHCPv6 client handed a bound lease with T1 brought forward renews once T1 has
/// passed (it sends nothing before; the Renew itself needs a network).
#[tokio::test]
async fn bound_dhcpv6_client_goes_renewing_at_t1() {
    let iface = Interface {
        dev: "eth1".into(),
        index: 2,
        mac: [2, 0, 0, 0, 0, 1],
        hostname: "web1".into(),
        max_mtu: Some(1500),
        client_id: None,
    };
    let config = builtin6::config(&iface, "fe80::1".parse().unwrap());
    let mut client = mozim::DhcpV6Client::init(config, None).await.unwrap();
    client.done(builtin6::shorten(builtin6::to_mozim(&lease6()), Some(1))).unwrap();
    let started = std::time::Instant::now();
    let state = client.run().await.unwrap();
    assert_eq!(state, mozim::DhcpV6State::Renew);
    assert!(started.elapsed() >= std::time::Duration::from_millis(900), "{:?}", started.elapsed());
}

fn classless(dst: &str, prefix: u8, router: &str) -> mozim::DhcpV4ClasslessRoute {
    mozim::DhcpV4ClasslessRoute {
        destination: dst.parse().unwrap(),
        prefix_length: prefix,
        router: router.parse().unwrap(),
    }
}

/// RFC 3442: with classless routes the router option is ignored, their default gives
/// the router; every other route is kept (on-link ones without a router), host bits
/// of a destination cleared; one through a router off the subnet is left out with one
/// warning naming the option.
#[test]
fn classless_routes_replace_the_router_option() {
    let mut m = builtin::to_mozim(&lease());
    m.gateways = Some(vec!["10.9.0.254".parse().unwrap()]);
    m.classless_routes = Some(vec![
        classless("10.20.0.0", 16, "10.9.0.2"),
        classless("0.0.0.0", 0, "10.9.0.3"),
        classless("10.30.1.7", 24, "0.0.0.0"),
        classless("10.40.0.0", 16, "192.168.1.1"),
        classless("10.50.0.0", 16, "172.16.0.1"),
    ]);
    let (l, warnings) = builtin::from_mozim(&m, Some(1500)).unwrap();
    assert_eq!(l.router, Some("10.9.0.3".parse().unwrap()));
    let routes: Vec<(String, Option<String>)> =
        l.routes.iter().map(|r| (r.dst.to_string(), r.via.map(|v| v.to_string()))).collect();
    assert_eq!(
        routes,
        [("10.20.0.0/16".to_string(), Some("10.9.0.2".to_string())), ("10.30.1.0/24".to_string(), None)]
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("option 121"), "{warnings:?}");
    assert!(
        warnings[0].contains("10.40.0.0/16 via 192.168.1.1, 10.50.0.0/16 via 172.16.0.1"),
        "{warnings:?}"
    );
}

/// Without classless routes the router option gives the router, as before.
#[test]
fn router_option_without_classless_routes() {
    let (l, warnings) = builtin::from_mozim(&builtin::to_mozim(&lease()), None).unwrap();
    assert_eq!((l.router, l.routes.len(), warnings.len()), (Some("10.9.0.1".parse().unwrap()), 0, 0));
}

/// Option 26 is applied between 576 and the host side's MTU; outside, left out with
/// one warning; without a known host side, never.
#[test]
fn mtu_bounded_by_576_and_the_host_side() {
    let with = |mtu: u16, max: Option<u32>| {
        let mut m = builtin::to_mozim(&lease());
        m.mtu = Some(mtu);
        builtin::from_mozim(&m, max).unwrap()
    };
    assert_eq!(with(1400, Some(1500)), (Lease { mtu: Some(1400), ..lease() }, vec![]));
    assert_eq!(with(1500, Some(1500)).0.mtu, Some(1500));
    for (mtu, words) in [(575, "below 576"), (9000, "above the host side's 1500")] {
        let (l, w) = with(mtu, Some(1500));
        assert_eq!(l.mtu, None);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("option 26") && w[0].contains(words), "{w:?}");
    }
    assert_eq!(with(1400, None), (lease(), vec![]));
}

/// An option mozim dropped as malformed (it says so only to `log`) is named in one
/// warning, once however many packets carried it.
#[test]
fn malformed_option_that_mozim_dropped_is_named() {
    super::options4::capture();
    for _ in 0..2 {
        log::info!(target: "mozim::dhcpv4::option", "Ignore DHCPv4 option 121 due to parsing error: Invalid");
    }
    let (l, warnings) = builtin::from_mozim(&builtin::to_mozim(&lease()), None).unwrap();
    assert_eq!(l.router, Some("10.9.0.1".parse().unwrap()));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("option 121 is malformed"), "{warnings:?}");
}

/// 100 name servers and a 10 kB search list (with a name that would start a line of
/// its own in resolv.conf): bounded, one warning for each option.
#[test]
fn dns_lists_are_bounded_and_checked() {
    let mut m = builtin::to_mozim(&lease());
    m.dns_srvs = Some((0..100u32).map(|i| std::net::Ipv4Addr::from(0x0a00_0000 + i + 1)).collect());
    let mut names: Vec<String> = vec!["evil.test\nnameserver 6.6.6.6".to_string()];
    names.extend((0..500).map(|i| format!("domain{i:04}.example.test")));
    assert!(names.iter().map(String::len).sum::<usize>() > 10_000);
    m.domain_search = Some(names);
    let (l, warnings) = builtin::from_mozim(&m, None).unwrap();
    assert_eq!(l.dns.len(), 3);
    assert_eq!(l.search.len(), 6);
    assert_eq!(l.search[0], "domain0000.example.test");
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("option 6 has 100") && warnings[1].contains("option 119 has 501"),
        "{warnings:?}"
    );
    let text = crate::apply::resolv::text("eth1", &[crate::plan::Leased::V4(l)]);
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(!text.contains("6.6.6.6"));
}

/// DHCPv6's options 23 and 24, 100 servers and a 10 kB list: bounded as DHCPv4's,
/// one warning naming each option; with a DHCPv4 lease, one resolv.conf for both.
#[test]
fn dhcpv6_dns_lists_are_bounded_and_join_the_dhcpv4_ones() {
    let mut m = builtin6::to_mozim(&lease6());
    m.dns_srvs = (1..=100u16).map(|i| std::net::Ipv6Addr::new(0xfd00, 0x77, 0, 0, 0, 0, 0, i)).collect();
    m.domain_list = (0..500).map(|i| format!("domain{i:04}.example.test")).collect();
    let mut warnings = Vec::new();
    let (dns, search) = builtin6::dns(&m, &mut warnings);
    assert_eq!((dns.len(), search.len()), (3, 6));
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("option 23 has 100") && warnings[1].contains("option 24 has 500"),
        "{warnings:?}"
    );
    let v4 = Lease { dns: vec!["10.9.0.53".parse().unwrap()], search: vec!["v4.test".into()], ..lease() };
    let v6 = Lease6 { dns: dns[..1].to_vec(), search: vec!["v6.test".into(), "v4.test".into()], ..lease6() };
    let text =
        crate::apply::resolv::text("eth1", &[crate::plan::Leased::V4(v4), crate::plan::Leased::V6(v6)]);
    assert_eq!(
        text,
        "# written by pipework from the DHCP lease on eth1\nnameserver 10.9.0.53\nnameserver fd00:77::1\n\
         search v4.test v6.test\n"
    );
}

/// The DHCPv6 DUID of a guest's stable name is the DHCPv4 client identifier's DUID
/// (RFC 4361 section 6.1), with its IAID.
#[test]
fn dhcpv6_duid_is_the_dhcpv4_client_ids() {
    let id: Vec<u8> = [0xa, 0xb, 0xc, 0xd, 0, 4].into_iter().chain(1..=16).collect();
    let iface = Interface {
        dev: "eth1".into(),
        index: 3,
        mac: [2, 0, 0, 0, 0, 1],
        hostname: "web1".into(),
        max_mtu: None,
        client_id: Some(id.clone()),
    };
    let c = builtin6::config(&iface, "fe80::1".parse().unwrap());
    assert_eq!(c.iaid, 0x0a0b_0c0d);
    let uuid = u128::from_be_bytes(id[6..].try_into().unwrap());
    assert_eq!(c.duid, mozim::DhcpV6Duid::UUID(mozim::DhcpV6DuidUuid::new(uuid)));
    let mac_only = builtin6::config(&Interface { client_id: None, ..iface }, "fe80::1".parse().unwrap());
    let ll = mozim::DhcpV6DuidLinkLayerAddr::new(1, &[2, 0, 0, 0, 0, 1]);
    assert_eq!(mac_only.duid, mozim::DhcpV6Duid::LinkLayerAddress(ll), "DUID-LL of the MAC");
}
