//! Planner table tests for IPSPEC lists (issue 12): per family exactly the steps of
//! one address, one link up, each family's old default out, re-runs found done.

use super::tests::{attached, bridge, guest, plan, refused, req, steps};
use super::*;
use crate::model::Family;
use crate::netlink::Route;

fn route(dst: &str, gw: Option<&str>, oif: u32) -> Route {
    Route::new(dst.parse().unwrap(), gw.map(|g| g.parse().unwrap()), oif).unwrap()
}

#[test]
fn both_families_get_their_address_and_default_with_one_link_up() {
    let s = steps("br1 web1 10.0.0.2/24@10.0.0.1,fd00::2/64@fd00::1", &bridge(1500), &GuestFacts::default());
    assert_eq!(
        s[2..],
        [
            "guest: sysctl -w net.ipv6.conf.eth1.disable_ipv6=0",
            "guest: ip addr add 10.0.0.2/24 broadcast 10.0.0.255 dev eth1",
            "guest: ip addr add fd00::2/64 dev eth1",
            "guest: ip link set eth1 up",
            "guest: ip route replace default via 10.0.0.1 dev eth1",
            "guest: ip route replace default via fd00::1 dev eth1",
        ]
    );
    // The kernel's gratuitous ARP for the IPv4 address, as for one address.
    let p = plan(&req("br1 web1 fd00::2/64,10.0.0.2/24"), &guest(), &bridge(1500), &GuestFacts::default());
    let Ok(Plan::Steps(steps)) = p else { panic!("{p:?}") };
    assert!(steps.iter().any(|s| matches!(s, Step::LinkUp { arp_notify: true, .. })), "{steps:?}");
    assert_eq!(steps.iter().filter(|s| matches!(s, Step::LinkUp { .. })).count(), 1);
}

#[test]
fn each_family_loses_only_its_own_old_default() {
    let facts = GuestFacts {
        routes: vec![
            route("0.0.0.0/0", Some("172.17.0.1"), 2),
            route("::/0", Some("fe80::1"), 2),
            route("fd01::/64", None, 2),
        ],
        ..Default::default()
    };
    // IPv6 gateway reachable through fd01::/64 (no host route); IPv4 gateway off-link.
    let s = steps("br1 web1 10.0.0.2/24@10.9.0.1,fd00::2/64@fd01::1", &bridge(1500), &facts);
    assert_eq!(
        s[5..],
        [
            "guest: ip route del default via 172.17.0.1",
            "guest: ip route del default via fe80::1",
            "guest: ip link set eth1 up",
            "guest: ip route add 10.9.0.1/32 dev eth1",
            "guest: ip route replace default via 10.9.0.1 dev eth1",
            "guest: ip route replace default via fd01::1 dev eth1",
        ]
    );
    // An IPv4 gateway only: the IPv6 default stays.
    let s = steps("br1 web1 10.0.0.2/24@10.0.0.1,fd00::2/64", &bridge(1500), &facts);
    assert!(!s.iter().any(|l| l.contains("fe80::1")), "{s:?}");
    assert!(s.contains(&"guest: ip route del default via 172.17.0.1".to_string()), "{s:?}");
}

#[test]
fn several_addresses_of_one_family_and_a_gateway_on_any_of_them() {
    let s = steps("br1 web1 10.0.0.2/24,10.1.0.2/24@10.1.0.1", &bridge(1500), &GuestFacts::default());
    assert_eq!(
        s[2..],
        [
            "guest: ip addr add 10.0.0.2/24 broadcast 10.0.0.255 dev eth1",
            "guest: ip addr add 10.1.0.2/24 broadcast 10.1.0.255 dev eth1",
            "guest: ip link set eth1 up",
            "guest: ip route replace default via 10.1.0.1 dev eth1",
        ]
    );
    // No IPv6 for an IPv4 list.
    assert!(!s.iter().any(|l| l.contains("sysctl")), "{s:?}");
}

#[test]
fn static_ipv4_with_slaac_and_dhcp_with_static_ipv6() {
    let s = steps("br1 web1 10.0.0.2/24@10.0.0.1,slaac --timeout 9", &bridge(1500), &GuestFacts::default());
    assert_eq!(
        s[2..],
        [
            "guest: sysctl -w net.ipv6.conf.eth1.disable_ipv6=0",
            "guest: ip addr add 10.0.0.2/24 broadcast 10.0.0.255 dev eth1",
            "guest: ip link set eth1 up",
            "guest: ip route replace default via 10.0.0.1 dev eth1",
            "guest: sysctl -w net.ipv6.conf.eth1.accept_ra=1 net.ipv6.conf.eth1.ndisc_notify=1; \
             wait up to 9 s for a router's address and default route on eth1",
        ]
    );
    let p = plan(&req("br1 web1 fd00::2/64@fd00::1,dhcp4"), &guest(), &bridge(1500), &GuestFacts::default());
    let Ok(Plan::Steps(steps)) = p else { panic!("{p:?}") };
    let text: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        text[2..6],
        [
            "guest: sysctl -w net.ipv6.conf.eth1.disable_ipv6=0",
            "guest: ip addr add fd00::2/64 dev eth1",
            "guest: ip link set eth1 up",
            "guest: ip route replace default via fd00::1 dev eth1",
        ]
    );
    // The DHCP client runs last, once the link is up.
    assert!(matches!(steps.last(), Some(Step::Dhcp(d)) if d.client == crate::model::DhcpClient::Builtin));
    assert_eq!(steps.len(), 7);
}

#[test]
fn ipv6_off_in_the_kernel_refuses_a_list_naming_ipv6() {
    let off = GuestFacts { ipv6_off: true, ..Default::default() };
    assert!(refused("br1 web1 10.0.0.2/24,fd00::2/64", &bridge(1500), &off).contains("ipv6.disable=1"));
    assert!(refused("br1 web1 10.0.0.2/24,slaac", &bridge(1500), &off).contains("ipv6.disable=1"));
}

#[test]
fn rerun_of_the_same_dual_stack_attachment_changes_nothing() {
    let (host, mut facts) = attached(true);
    facts.container_addrs.push("fd00::2/64".parse().unwrap());
    facts.routes.push(route("::/0", Some("fd00::1"), 3));
    let p = plan(&req("br1 web1 10.0.0.2/24@10.0.0.1,fd00::2/64@fd00::1"), &guest(), &host, &facts).unwrap();
    assert!(matches!(p, Plan::AlreadyDone(_)), "{p:?}");
    // The second family not as asked: the original's refusal, as for one address.
    for line in [
        "br1 web1 10.0.0.2/24@10.0.0.1,fd00::3/64@fd00::1",
        "br1 web1 10.0.0.2/24@10.0.0.1,fd00::2/64@fd00::9",
        "br1 web1 10.0.0.2/24@10.0.0.1,slaac",
    ] {
        assert_eq!(refused(line, &host, &facts), "Link veth1pl4242 exists and is up", "{line}");
    }
}

#[test]
fn families_of_a_request() {
    assert_eq!(req("br1 web1 10.0.0.2/24").families(), [Family::V4]);
    assert_eq!(req("br1 -a 6 web1 0/0").families(), [Family::V6]);
    assert_eq!(req("br1 web1 fd00::2/64,10.0.0.2/24,fd01::2/64").families(), [Family::V6, Family::V4]);
    assert_eq!(req("br1 web1 dhcp4,slaac").families(), [Family::V4, Family::V6]);
}

#[test]
fn dhcpv6_forms_turn_ipv6_on_optimistically_and_run_after_the_link_is_up() {
    let s = steps("br1 web1 dhcp6-f", &bridge(1500), &GuestFacts::default());
    assert_eq!(
        s[2..],
        [
            "guest: sysctl -w net.ipv6.conf.eth1.optimistic_dad=1 net.ipv6.conf.eth1.disable_ipv6=0",
            "guest: ip link set eth1 up",
            "guest: sysctl -w net.ipv6.conf.eth1.accept_ra=1 net.ipv6.conf.eth1.ndisc_notify=1; \
             dhcp6-f (built-in) -i eth1",
        ]
    );
    // Beside a static IPv4 address, and beside DHCPv4: one DHCP step per family.
    let s = steps("br1 web1 10.0.0.2/24,dhcp6", &bridge(1500), &GuestFacts::default());
    assert_eq!(s[3], "guest: ip addr add 10.0.0.2/24 broadcast 10.0.0.255 dev eth1");
    assert!(s[5].ends_with("dhcp6 (built-in) -i eth1"), "{s:?}");
    let s = steps("br1 web1 dhcp4,dhclient6", &bridge(1500), &GuestFacts::default());
    assert_eq!(s[s.len() - 2], "guest: dhcp4 (built-in) -i eth1 -x hostname:web1");
    assert!(
        s[s.len() - 1].ends_with(
            "; dhclient -6 eth1 -pf /var/run/dhclient6.web1.pid -lf /etc/dhclient/dhclient6.web1.leases"
        ),
        "{s:?}"
    );
    // A kernel without IPv6 refuses it before any change, as for a static address.
    let facts = GuestFacts { ipv6_off: true, ..Default::default() };
    assert!(refused("br1 web1 dhcp6", &bridge(1500), &facts).contains("IPv6 is off in this kernel"));
}
