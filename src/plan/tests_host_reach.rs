//! Planner tests of `--isolated` (bridge) and `--host-shim` (macvlan): no root.

use super::tests::{bridge, guest, link, plan, refused, req, steps};
use super::*;
use crate::netlink::Route;

fn nic() -> HostFacts {
    HostFacts { host_if: Some(link(4, "eth2", None)), ..Default::default() }
}

#[test]
fn isolated_makes_the_host_end_an_isolated_port_after_the_veth() {
    let s = steps("--isolated br1 web1 10.0.0.2/24", &bridge(1500), &GuestFacts::default());
    assert_eq!(
        s[0],
        "ip link add veth1pl4242 mtu 1500 master br1 up type veth peer name eth1 netns GUEST mtu 1500"
    );
    assert_eq!(s[2], "bridge link set dev veth1pl4242 isolated on");
    assert!(s[3].starts_with("guest: ip addr add"), "{s:?}");
    let plain = steps("br1 web1 10.0.0.2/24", &bridge(1500), &GuestFacts::default());
    assert!(!plain.iter().any(|s| s.contains("isolated")), "{plain:?}");
}

#[test]
fn isolated_off_a_linux_bridge_is_refused_in_one_line() {
    let none = GuestFacts::default();
    assert_eq!(
        refused("--isolated eth2 web1 10.0.0.2/24", &nic(), &none),
        "--isolated works on a Linux bridge attach only, not on eth2, a physical (macvlan) attach"
    );
    assert_eq!(
        refused("--isolated --direct-phys eth2 web1 10.0.0.2/24", &nic(), &none),
        "--isolated works on a Linux bridge attach only, not on a --direct-phys attach"
    );
    // A `--direct-phys` NIC not on the host (maybe in the guest already) too.
    let e = Class::of(&req("--isolated --direct-phys eth9 web1 10.0.0.2/24"), &HostFacts::default());
    assert_eq!(
        e.unwrap_err().to_string(),
        "--isolated works on a Linux bridge attach only, not on a --direct-phys attach"
    );
}

#[test]
fn a_rerun_with_isolated_of_a_port_made_without_is_not_already_done() {
    let (host, facts) = super::tests::attached(true);
    let r = req("--isolated br1 web1 10.0.0.2/24@10.0.0.1");
    assert!(plan(&r, &guest(), &host, &facts).is_err());
    let isolated = HostFacts {
        local_if: host.local_if.clone().map(|l| Link { isolated: Some(true), ..l }),
        ..host.clone()
    };
    assert!(matches!(plan(&r, &guest(), &isolated, &facts), Ok(Plan::AlreadyDone(_))));
}

use super::shim::{default_name, Moved, MovedRoute, ShimFacts, ShimMark};

/// `eth2` with 10.0.0.1/24 (and an address elsewhere), no shim yet.
fn nic_with_address() -> HostFacts {
    let moved =
        Moved { addr: "10.0.0.1/24".parse().unwrap(), broadcast: Some("10.0.0.255".parse().unwrap()) };
    let other = Moved { addr: "192.168.9.1/24".parse().unwrap(), broadcast: None };
    let shim = ShimFacts {
        parent_addrs: vec![moved, other],
        host_addrs: vec![
            ("eth2".into(), moved.addr),
            ("eth2".into(), other.addr),
            ("lo".into(), "127.0.0.1/8".parse().unwrap()),
        ],
        ..Default::default()
    };
    HostFacts { shim: Some(shim), ..nic() }
}

#[test]
fn a_new_shim_takes_the_parents_address_in_the_guests_subnet_and_routes_to_the_guest() {
    let s = steps("--host-shim eth2 web1 10.0.0.2/24", &nic_with_address(), &GuestFacts::default());
    assert_eq!(
        &s[s.len() - 3..],
        [
            "ip link add link eth2 name pwshim-eth2 up type macvlan mode bridge; \
             ip link set pwshim-eth2 alias 'pipework-shim parent=eth2 moved=10.0.0.1/24~10.0.0.255'",
            "ip addr add 10.0.0.1/24 broadcast 10.0.0.255 dev pwshim-eth2; ip addr del 10.0.0.1/24 dev eth2",
            "ip route add 10.0.0.2/32 dev pwshim-eth2",
        ]
    );
    let given = steps(
        "--host-shim=hs0 --host-shim-addr 10.0.0.9/24 eth2 web1 10.0.0.2/24",
        &nic_with_address(),
        &GuestFacts::default(),
    );
    assert_eq!(
        &given[given.len() - 3..],
        [
            "ip link add link eth2 name hs0 up type macvlan mode bridge; ip link set hs0 alias 'pipework-shim parent=eth2'",
            "ip addr add 10.0.0.9/24 dev hs0",
            "ip route add 10.0.0.2/32 dev hs0",
        ],
        "the parent keeps its address"
    );
}

#[test]
fn an_existing_shim_of_ours_is_shared_and_anything_else_refused() {
    let mark = ShimMark { parent: "eth2".into(), ..ShimMark::default() }.to_string();
    let with = |alias: Option<&str>, kind: &str| {
        let link = Link { alias: alias.map(String::from), ..link(9, "pwshim-eth2", Some(kind)) };
        let mut host = nic_with_address();
        host.shim.as_mut().unwrap().link = Some(link);
        host
    };
    let s = steps("--host-shim eth2 web1 10.0.0.3/24", &with(Some(&mark), "macvlan"), &GuestFacts::default());
    assert_eq!(s.last().unwrap(), "ip route add 10.0.0.3/32 dev pwshim-eth2");
    assert!(!s.iter().any(|s| s.contains("ip link add link eth2 name pwshim")), "{s:?}");
    let none = GuestFacts::default();
    let e = refused("--host-shim eth2 web1 10.0.0.3/24", &with(None, "macvlan"), &none);
    assert!(e.starts_with("pwshim-eth2 exists and is not a shim pipework made"), "{e}");
    let e = refused("--host-shim eth2 web1 10.0.0.3/24", &with(Some(&mark), "veth"), &none);
    assert!(e.starts_with("pwshim-eth2 exists and is not a shim pipework made"), "{e}");
    let other = ShimMark { parent: "eth3".into(), ..ShimMark::default() }.to_string();
    let e = refused("--host-shim eth2 web1 10.0.0.3/24", &with(Some(&other), "macvlan"), &none);
    assert!(e.starts_with("pwshim-eth2 is pipework's shim of eth3, not of eth2"), "{e}");
}

#[test]
fn host_shim_refusals_before_any_change() {
    let none = GuestFacts::default();
    let host = nic_with_address();
    assert_eq!(
        refused("--host-shim --host-shim-addr 10.0.0.1/24 eth2 web1 10.0.0.2/24", &host, &none),
        "--host-shim-addr 10.0.0.1/24: 10.0.0.1 is already on eth2"
    );
    assert_eq!(
        refused("--host-shim --host-shim-addr 10.0.0.2/24 eth2 web1 10.0.0.2/24", &host, &none),
        "--host-shim-addr 10.0.0.2/24: 10.0.0.2 is the guest's own address"
    );
    assert!(refused("--host-shim eth2 web1 dhcp4", &host, &none).contains("needs a static IPSPEC"));
    assert!(refused("--host-shim eth2 web1 0/0", &host, &none).contains("needs an address"));
    assert!(refused("--host-shim --macvlan-mode private eth2 web1 10.0.0.2/24", &host, &none)
        .starts_with("--host-shim needs --macvlan-mode bridge"));
    assert_eq!(
        refused("--host-shim br1 web1 10.0.0.2/24", &bridge(1500), &none),
        "--host-shim works on a macvlan attach (a NIC as HOSTIF) only, not on br1, a bridge attach"
    );
    let routed = Route::new("10.0.0.2/32".parse().unwrap(), None, 4).unwrap();
    let mut taken = nic_with_address();
    taken.shim.as_mut().unwrap().routes.push(routed);
    assert!(refused("--host-shim eth2 web1 10.0.0.2/24", &taken, &none)
        .contains("has a route to 10.0.0.2 already"));
}

#[test]
fn shim_names_fit_the_kernel_and_marks_read_back() {
    assert_eq!(default_name("eth2"), "pwshim-eth2");
    assert_eq!(default_name("eth2.10"), "pwshim-eth2.10");
    assert_eq!(default_name("enp0s31f6"), default_name("enp0s31f6"), "the same for every guest");
    assert_eq!(default_name("enp0s31f6").len(), 15);
    assert_ne!(default_name("enp0s31f6"), default_name("enp0s31f7"));
    let mark = ShimMark {
        parent: "eth2.10".into(),
        moved: vec![
            Moved { addr: "10.0.0.1/24".parse().unwrap(), broadcast: Some("10.0.0.255".parse().unwrap()) },
            Moved { addr: "fd00::1/64".parse().unwrap(), broadcast: None },
        ],
        routes: Vec::new(),
    };
    assert_eq!(mark.to_string(), "pipework-shim parent=eth2.10 moved=10.0.0.1/24~10.0.0.255,fd00::1/64");
    assert_eq!(ShimMark::parse(&mark.to_string()), Some(mark.clone()));
    // With the parent's routes the move took along.
    let routes = ShimMark {
        routes: vec![
            MovedRoute {
                dst: "0.0.0.0/0".parse().unwrap(),
                gateway: Some("10.0.0.254".parse().unwrap()),
                metric: None,
                protocol: 3,
            },
            MovedRoute { dst: "10.9.0.0/16".parse().unwrap(), gateway: None, metric: Some(100), protocol: 4 },
        ],
        ..mark
    };
    let text = routes.to_string();
    assert!(text.ends_with(" route=0.0.0.0/0>10.0.0.254>>3 route=10.9.0.0/16>>100>4"), "{text}");
    assert_eq!(ShimMark::parse(&text), Some(routes));
    assert_eq!(ShimMark::parse("pipework-shim"), None);
    assert_eq!(ShimMark::parse("pipework:v1 guest=pid:1"), None);
}

#[test]
fn a_vlan_parent_gets_its_shim_on_the_vlan_device() {
    let s = steps("--host-shim eth2 web1 10.0.0.2/24 @10", &nic_with_address(), &GuestFacts::default());
    assert!(
        s.iter().any(|s| s.starts_with("ip link add link eth2.10 name pwshim-eth2.10 up type macvlan")),
        "{s:?}"
    );
    assert_eq!(s.last().unwrap(), "ip route add 10.0.0.2/32 dev pwshim-eth2.10");
}

/// A CNI ADD whose IPAM plugin gives the address (`0/0` as IPSPEC).
fn delegated(line: &str, host: &HostFacts) -> Result<Vec<Step>> {
    let r = req(line);
    let terms = Terms { ipam_plugin: Some("host-local".into()), ..Terms::default() };
    match super::plan(&r, &terms, &Class::of(&r, host)?, &guest(), host, &GuestFacts::default())? {
        Plan::Steps(s) => Ok(s),
        other => panic!("{line}: {other:?}"),
    }
}

#[test]
fn with_an_ipam_plugin_the_shim_is_planned_from_its_address_once_it_comes() {
    let s = delegated("--host-shim eth2 web1 0/0", &nic_with_address()).unwrap();
    let Some(Step::Delegated { shim: Some(shim), .. }) = s.last() else { panic!("{s:?}") };
    assert!(!s.iter().any(|s| matches!(s, Step::CreateShim { .. } | Step::AddHostRoute { .. })), "{s:?}");
    assert_eq!((shim.name.as_str(), shim.parent.as_str()), ("pwshim-eth2", "eth2"));
    assert!(s
        .last()
        .unwrap()
        .to_string()
        .ends_with("; the host shim pwshim-eth2 on eth2 and ip route add ... dev pwshim-eth2"));
    let addr: IpNetwork = "10.0.0.7/24".parse().unwrap();
    let then: Vec<String> =
        shim::planned(shim, &[addr], &[]).unwrap().iter().map(ToString::to_string).collect();
    assert_eq!(
        then,
        [
            "ip link add link eth2 name pwshim-eth2 up type macvlan mode bridge; \
             ip link set pwshim-eth2 alias 'pipework-shim parent=eth2 moved=10.0.0.1/24~10.0.0.255'",
            "ip addr add 10.0.0.1/24 broadcast 10.0.0.255 dev pwshim-eth2; ip addr del 10.0.0.1/24 dev eth2",
            "ip route add 10.0.0.7/32 dev pwshim-eth2",
        ]
    );
    // A route of the host's own to that address, and no address at all: refused.
    let taken = Route::new("10.0.0.7/32".parse().unwrap(), None, 4).unwrap();
    let e = shim::planned(shim, &[addr], &[taken]).unwrap_err().to_string();
    assert_eq!(e, "the host has a route to 10.0.0.7 already; --host-shim would shadow it");
    assert!(shim::planned(shim, &[], &[]).unwrap_err().to_string().contains("needs an address"));
    // Without --host-shim, none; what can be refused before the address is.
    let plain = delegated("eth2 web1 0/0", &nic_with_address()).unwrap();
    assert!(matches!(plain.last(), Some(Step::Delegated { shim: None, .. })), "{plain:?}");
    let e = delegated("--host-shim --macvlan-mode private eth2 web1 0/0", &nic_with_address()).unwrap_err();
    assert!(e.to_string().starts_with("--host-shim needs --macvlan-mode bridge"), "{e}");
    let e = delegated("--host-shim --host-shim-addr 10.0.0.1/24 eth2 web1 0/0", &nic_with_address());
    assert_eq!(e.unwrap_err().to_string(), "--host-shim-addr 10.0.0.1/24: 10.0.0.1 is already on eth2");
}
