//! Planner table tests: no root, no kernel; facts are built by hand.

use super::*;
use crate::cli::{self, Invocation};
use crate::netlink::Route;

pub(super) fn req(line: &str) -> Attach {
    match cli::parse(line.split_whitespace()) {
        Ok(Invocation::Attach(a)) => a.req,
        other => panic!("{line}: {other:?}"),
    }
}

pub(super) fn guest() -> GuestId {
    GuestId {
        name: "web1".into(),
        tag: "4242".into(),
        pid: Some(4242),
        container: None,
        reference: alias::GuestRef::Pid(4242),
        ns_inode: 4026532001,
    }
}

pub(super) fn link(index: u32, name: &str, kind: Option<&str>) -> Link {
    Link {
        index,
        name: name.into(),
        kind: kind.map(str::to_string),
        link_type: 1,
        mtu: 1500,
        up: true,
        carrier: true,
        master: None,
        peer: None,
        mac: None,
        vlan_id: None,
        vlan_filtering: None,
        alias: None,
        oper_up: true,
        port_enabled: None,
        isolated: None,
    }
}

/// Classify, then plan, as an attach does.
pub(super) fn plan(req: &Attach, guest: &GuestId, host: &HostFacts, facts: &GuestFacts) -> Result<Plan> {
    super::plan(req, &Terms::default(), &Class::of(req, host)?, guest, host, facts)
}

pub(super) fn bridge(mtu: u32) -> HostFacts {
    HostFacts { host_if: Some(Link { mtu, ..link(7, "br1", Some("bridge")) }), ..Default::default() }
}

pub(super) fn steps(line: &str, host: &HostFacts, facts: &GuestFacts) -> Vec<String> {
    match plan(&req(line), &guest(), host, facts) {
        Ok(Plan::Steps(s)) => s.iter().map(|s| s.to_string()).collect(),
        other => panic!("{line}: {other:?}"),
    }
}

pub(super) fn refused(line: &str, host: &HostFacts, facts: &GuestFacts) -> String {
    match plan(&req(line), &guest(), host, facts) {
        Err(e) => e.to_string(),
        Ok(p) => panic!("{line} should be refused, got {p:?}"),
    }
}

#[test]
fn new_bridge_gets_created_with_default_mtu() {
    let s = steps("br1 web1 192.168.1.10/24@192.168.1.1", &HostFacts::default(), &GuestFacts::default());
    assert_eq!(
        s,
        [
            "ip link add br1 up type bridge",
            "ip link add veth1pl4242 mtu 1500 master br1 up type veth peer name eth1 netns GUEST mtu 1500",
            "ip link set veth1pl4242 alias 'pipework:v1 guest=pid:4242 ns=4026532001 if=eth1 host=br1 mode=bridge'",
            "guest: ip addr add 192.168.1.10/24 broadcast 192.168.1.255 dev eth1",
            "guest: ip link set eth1 up",
            "guest: ip route replace default via 192.168.1.1 dev eth1",
        ]
    );
}

#[test]
fn existing_bridge_mtu_names_and_mac() {
    let s = steps(
        "br1 -i eth2 -l hostside web1 10.0.0.2/24 U:myhost.foo.com",
        &bridge(9000),
        &GuestFacts::default(),
    );
    assert_eq!(
        s,
        [
            "ip link add hostside mtu 9000 master br1 up type veth peer name eth2 netns GUEST mtu 9000 address 02:72:6c:cd:9b:8d",
            "ip link set hostside alias 'pipework:v1 guest=pid:4242 ns=4026532001 if=eth2 host=br1 mode=bridge'",
            "guest: ip addr add 10.0.0.2/24 broadcast 10.0.0.255 dev eth2",
            "guest: ip link set eth2 up",
        ]
    );
}

#[test]
fn zero_address_configures_nothing() {
    let s = steps("br1 web1 0/0", &bridge(1500), &GuestFacts::default());
    assert_eq!(s.len(), 3);
    assert_eq!(s[2], "guest: ip link set eth1 up");
}

#[test]
fn off_link_gateway_gets_a_host_route_and_old_default_goes() {
    let old = Route::new("0.0.0.0/0".parse().unwrap(), Some("172.17.0.1".parse().unwrap()), 2).unwrap();
    let facts = GuestFacts { routes: vec![old], ..Default::default() };
    let s = steps("br1 web1 10.0.0.2/24@10.9.0.1", &bridge(1500), &facts);
    assert_eq!(
        &s[3..],
        [
            "guest: ip route del default via 172.17.0.1",
            "guest: ip link set eth1 up",
            "guest: ip route add 10.9.0.1/32 dev eth1",
            "guest: ip route replace default via 10.9.0.1 dev eth1",
        ]
    );
}

#[test]
fn gateway_reachable_through_another_route_needs_no_host_route() {
    let r = Route::new("10.9.0.0/16".parse().unwrap(), None, 2).unwrap();
    let facts = GuestFacts { routes: vec![r], ..Default::default() };
    let s = steps("br1 web1 10.0.0.2/24@10.9.0.1", &bridge(1500), &facts);
    assert!(!s.iter().any(|l| l.contains("/32")), "{s:?}");
}

#[test]
fn ipv6_host_route_is_128_and_link_local_needs_none() {
    let s = steps("br1 web1 fd00::2/64@fd01::1", &bridge(1500), &GuestFacts::default());
    assert!(s.contains(&"guest: ip route add fd01::1/128 dev eth1".to_string()), "{s:?}");
    assert!(s.contains(&"guest: ip addr add fd00::2/64 dev eth1".to_string()), "{s:?}");
    let s = steps("br1 web1 fd00::2/64@fe80::1", &bridge(1500), &GuestFacts::default());
    assert!(!s.iter().any(|l| l.contains("/128")), "{s:?}");
    assert_eq!(s.last().unwrap(), "guest: ip route replace default via fe80::1 dev eth1");
}

#[test]
fn ipv6_is_turned_on_for_the_new_interface_before_its_address() {
    // A Docker container's new links are born with IPv6 off (issue 12).
    let s = steps("br1 web1 fd00::2/64@fd00::1", &bridge(1500), &GuestFacts::default());
    assert_eq!(
        &s[2..],
        [
            "guest: sysctl -w net.ipv6.conf.eth1.disable_ipv6=0",
            "guest: ip addr add fd00::2/64 dev eth1",
            "guest: ip link set eth1 up",
            "guest: ip route replace default via fd00::1 dev eth1",
        ]
    );
    // `-a 6` with no address: IPv6 on, for the guest to configure.
    let s = steps("br1 -a 6 web1 0/0", &bridge(1500), &GuestFacts::default());
    assert_eq!(&s[2..], ["guest: sysctl -w net.ipv6.conf.eth1.disable_ipv6=0", "guest: ip link set eth1 up"]);
    // sysctl(8) spells a `.` in an interface name as `/`.
    let s = steps("br1 -i eth1.5 web1 fd00::2/64", &bridge(1500), &GuestFacts::default());
    assert_eq!(s[2], "guest: sysctl -w net.ipv6.conf.eth1/5.disable_ipv6=0");
    // The same for a macvlan and a NIC moved in, once the link has its final name.
    let s = steps("eth2 web1 fd00::2/64", &nic(true, 1500), &GuestFacts::default());
    assert_eq!(
        &s[2..4],
        ["guest: sysctl -w net.ipv6.conf.eth1.disable_ipv6=0", "guest: ip addr add fd00::2/64 dev eth1"]
    );
    let s = steps("--direct-phys eth2 -i c0 web1 fd00::2/64", &nic(true, 1500), &GuestFacts::default());
    assert_eq!(
        s,
        [
            "ip link set eth2 netns GUEST name c0 alias eth2",
            "guest: sysctl -w net.ipv6.conf.c0.disable_ipv6=0",
            "guest: ip addr add fd00::2/64 dev c0",
            "guest: ip link set c0 up",
        ]
    );
    // IPv4 and DHCP leave IPv6 alone.
    for line in ["br1 web1 10.0.0.2/24@10.0.0.1", "br1 web1 0/0", "br1 web1 udhcpc"] {
        let s = steps(line, &bridge(1500), &GuestFacts::default());
        assert!(!s.iter().any(|l| l.contains("sysctl")), "{line}: {s:?}");
    }
}

#[test]
fn ipv6_in_a_kernel_without_it_is_one_line_before_any_change() {
    let off = GuestFacts { ipv6_off: true, ..Default::default() };
    let want =
        "cannot configure IPv6 on eth1 in web1: IPv6 is off in this kernel (booted with ipv6.disable=1)";
    assert_eq!(refused("br1 web1 fd00::2/64@fd00::1", &HostFacts::default(), &off), want);
    assert_eq!(refused("br1 -a 6 web1 0/0", &bridge(1500), &off), want);
    assert!(refused("--direct-phys eth2 web1 fd00::2/64", &nic(true, 1500), &off).contains("ipv6.disable=1"));
    let s = steps("br1 web1 10.0.0.2/24", &bridge(1500), &off);
    assert!(!s.iter().any(|l| l.contains("sysctl")), "{s:?}");
}

#[test]
fn refusals() {
    let none = GuestFacts::default();
    // The original refuses every `@VLAN` on a Linux bridge; we refuse what no
    // bridge can carry.
    for vid in ["0", "4095"] {
        assert_eq!(
            refused(&format!("br1 web1 10.0.0.2/24 @{vid}"), &bridge(1500), &none),
            format!("invalid VLAN id \"{vid}\" (expected a number from 1 to 4094 for a Linux bridge)")
        );
    }
    assert_eq!(
        refused("foo1 web1 10.0.0.2/24", &HostFacts::default(), &none),
        "I do not know how to setup interface foo1."
    );
    assert_eq!(
        refused("mac:02:00:00:00:00:01 web1 10.0.0.2/24", &HostFacts::default(), &none),
        "Mac address 02:00:00:00:00:01 specified for interface but no host interface matched."
    );
    let long = GuestId {
        name: "x".into(),
        tag: "n123456789".into(),
        pid: None,
        container: None,
        reference: alias::GuestRef::Pid(1),
        ns_inode: 1,
    };
    let e = plan(&req("br1 web1 10.0.0.2/24"), &long, &bridge(1500), &none).unwrap_err().to_string();
    assert!(e.contains("longer than 15 bytes") && e.contains("-l"), "{e}");
    let taken = GuestFacts { container_if: Some(link(3, "eth1", None)), ..Default::default() };
    assert_eq!(
        refused("br1 web1 10.0.0.2/24", &bridge(1500), &taken),
        "interface eth1 already exists in web1"
    );
}

#[test]
fn modes_in_the_originals_order() {
    let none = HostFacts::default();
    let with = |l: Link| HostFacts { host_if: Some(l), ..Default::default() };
    assert_eq!(mode(&req("br9 web1 0/0"), &none).unwrap(), Mode::Bridge { create: true });
    let with_ovs = HostFacts { ovs_installed: true, ..Default::default() };
    assert_eq!(mode(&req("ovs9 web1 0/0"), &with_ovs).unwrap(), Mode::Ovs);
    assert_eq!(
        mode(&req("ovs9 web1 0/0"), &none).unwrap_err().to_string(),
        "Need OVS installed on the system to create an ovs bridge"
    );
    assert_eq!(mode(&req("dummy0 web1 0/0"), &none).unwrap(), Mode::Dummy);
    assert_eq!(mode(&req("brx web1 0/0"), &with(link(2, "brx", Some("veth")))).unwrap(), Mode::Physical);
    assert_eq!(
        mode(
            &req("ovsbr0 web1 0/0"),
            &HostFacts { ovs_bridge: true, ..with(link(2, "ovsbr0", Some("tun"))) }
        )
        .unwrap(),
        Mode::Ovs
    );
    // A tap device that ovs-vsctl does not know is just an interface.
    assert_eq!(mode(&req("tap0 web1 0/0"), &with(link(2, "tap0", Some("tun")))).unwrap(), Mode::Physical);
    let ib = Link { link_type: 32, ..link(2, "ib0", None) };
    assert_eq!(mode(&req("ib0 web1 0/0"), &with(ib)).unwrap(), Mode::Ipoib);
    assert_eq!(
        mode(&req("--direct-phys eth1 web1 0/0"), &with(link(2, "eth1", None))).unwrap(),
        Mode::Physical
    );
}

/// Host end `veth1pl4242` (index 20) paired with `eth1` (index 3) in the guest.
pub(super) fn attached(up: bool) -> (HostFacts, GuestFacts) {
    let local = Link { up, master: Some(7), peer: Some(3), ..link(20, "veth1pl4242", Some("veth")) };
    let cif = Link { peer: Some(20), ..link(3, "eth1", Some("veth")) };
    let default = Route::new("0.0.0.0/0".parse().unwrap(), Some("10.0.0.1".parse().unwrap()), 3).unwrap();
    let host = HostFacts { local_if: Some(local), ..bridge(1500) };
    let guest = GuestFacts {
        container_if: Some(cif),
        container_addrs: vec!["10.0.0.2/24".parse().unwrap()],
        routes: vec![default],
        ipv6_off: false,
        renewing: Vec::new(),
        stopped: Vec::new(),
    };
    (host, guest)
}

#[test]
fn rerun_of_a_dhcp_form_in_place_changes_nothing_while_its_client_runs() {
    let (host, facts) = attached(true);
    let done = |facts: &GuestFacts, spec: &str| {
        let p = plan(&req(&format!("br1 web1 {spec}")), &guest(), &host, facts);
        matches!(p, Ok(Plan::AlreadyDone(_)))
    };
    assert!(done(&facts, "dhcp4"), "a plain form: the leased address is there");
    assert!(!done(&facts, "dhcp4-f"), "no record of a keeper");
    let renewing = GuestFacts { renewing: vec!["dhcp4".into()], ..facts.clone() };
    assert!(done(&renewing, "dhcp4-f"));
    assert!(!done(&renewing, "udhcpc-f"), "another client's record");
    assert!(!done(&facts, "dhcp6"), "no IPv6 address but the link-local one");
}

/// A re-run of `dhcp4-f` whose keeper is gone, its lease left: one step, a new
/// keeper from that lease (INIT-REBOOT); nothing else is made again.
#[test]
fn rerun_of_dhcp4_f_whose_keeper_is_gone_starts_a_keeper_from_its_lease() {
    let (host, facts) = attached(true);
    let lease = crate::plan::Lease {
        addr: "10.0.0.2/24".parse().unwrap(),
        broadcast: None,
        router: Some("10.0.0.1".parse().unwrap()),
        server: "10.0.0.1".parse().unwrap(),
        t1: 60,
        t2: 105,
        secs: 120,
        routes: Vec::new(),
        mtu: None,
        dns: Vec::new(),
        search: Vec::new(),
        domain: None,
    };
    let held = crate::plan::HeldLease { lease: crate::plan::Leased::V4(lease), bound_at: 1000 };
    let stopped = GuestFacts { stopped: vec![("dhcp4".into(), held.clone())], ..facts };
    let p = plan(&req("br1 web1 dhcp4-f"), &guest(), &host, &stopped).unwrap();
    let Plan::Steps(steps) = p else { panic!("{p:?}") };
    assert_eq!(steps.len(), 1, "{steps:?}");
    let Step::Dhcp(d) = &steps[0] else { panic!("{steps:?}") };
    assert_eq!(d.resume.as_ref(), Some(&held));
    assert!(d.to_string().ends_with("(INIT-REBOOT from 10.0.0.2/24)"), "{d}");
    assert!(!held.expired(1119) && held.expired(1120));
    // Another client's keeper gone is no lease of dhcp4's.
    let p = plan(&req("br1 web1 udhcpc-f"), &guest(), &host, &stopped);
    assert!(!matches!(p, Ok(Plan::AlreadyDone(_))), "{p:?}");
}

#[test]
fn rerun_of_the_same_attachment_changes_nothing() {
    let (host, facts) = attached(true);
    let p = plan(&req("br1 web1 10.0.0.2/24@10.0.0.1"), &guest(), &host, &facts).unwrap();
    assert!(matches!(p, Plan::AlreadyDone(_)), "{p:?}");
}

#[test]
fn rerun_with_something_else_is_refused_like_the_original() {
    let (host, facts) = attached(true);
    for line in [
        "br1 web1 10.0.0.3/24@10.0.0.1",
        "br1 web1 10.0.0.2/24@10.0.0.254",
        "br1 web1 10.0.0.2/24 02:00:00:00:00:09",
    ] {
        assert_eq!(refused(line, &host, &facts), "Link veth1pl4242 exists and is up", "{line}");
    }
}

#[test]
fn down_veth_is_deleted_then_rebuilt_after_the_checks() {
    let (host, facts) = attached(false);
    let s = steps("br1 web1 10.0.0.2/24", &host, &facts);
    assert_eq!(s[0], "ip link del veth1pl4242");
    assert!(s[1].starts_with("ip link add veth1pl4242"));
    let mut not_veth = host.clone();
    not_veth.local_if.as_mut().unwrap().kind = Some("bridge".into());
    assert!(refused("br1 web1 10.0.0.2/24", &not_veth, &facts).contains("not a veth"));
}

fn nic(up: bool, mtu: u32) -> HostFacts {
    HostFacts { host_if: Some(Link { up, mtu, ..link(4, "eth2", None) }), ..Default::default() }
}

#[test]
fn macvlan_on_a_nic_gets_its_mtu_and_sets_it_up() {
    let s = steps("eth2 web1 50.19.169.157/24", &nic(false, 1400), &GuestFacts::default());
    assert_eq!(
        s,
        [
            "ip link set eth2 up",
            "ip link add link eth2 name eth1 netns GUEST mtu 1400 type macvlan mode bridge",
            "guest: ip link set eth1 alias 'pipework:v1 guest=pid:4242 ns=4026532001 if=eth1 host=eth2 mode=macvlan'",
            "guest: ip addr add 50.19.169.157/24 broadcast 50.19.169.255 dev eth1",
            "guest: ip link set eth1 up",
        ]
    );
    let s = steps(
        "--macvlan-mode private eth2 web1 0/0 26:2e:71:98:60:8f",
        &nic(true, 1500),
        &GuestFacts::default(),
    );
    assert_eq!(s[0], "ip link add link eth2 name eth1 netns GUEST mtu 1500 address 26:2e:71:98:60:8f type macvlan mode private");
}

#[test]
fn vlan_planner_and_request_not_end_to_end() {
    let s = steps("eth2 web1 10.5.0.2/24 @10", &nic(true, 9000), &GuestFacts::default());
    assert_eq!(
        &s[..3],
        [
            "ip link add link eth2 name eth2.10 mtu 9000 type vlan id 10",
            "ip link set eth2.10 up",
            "ip link add link eth2.10 name eth1 netns GUEST mtu 9000 type macvlan mode bridge",
        ]
    );
    // An existing VLAN device of the right id is used as it is.
    let mut host = nic(true, 1500);
    host.vlan_if = Some(Link { vlan_id: Some(10), peer: Some(4), ..link(9, "eth2.10", Some("vlan")) });
    let s = steps("eth2 web1 10.5.0.2/24 @10", &host, &GuestFacts::default());
    assert!(s[0].starts_with("ip link add link eth2.10 name eth1"), "{s:?}");
    // Another id, or not a VLAN device: refused (the original's check never fires).
    host.vlan_if.as_mut().unwrap().vlan_id = Some(11);
    assert_eq!(
        refused("eth2 web1 10.5.0.2/24 @10", &host, &GuestFacts::default()),
        "eth2.10 already exists but is not a VLAN device for tag 10"
    );
    assert!(refused("eth2 web1 10.5.0.2/24 @4095", &nic(true, 1500), &GuestFacts::default())
        .contains("invalid VLAN id"));
}

#[test]
fn direct_phys_moves_the_nic_itself() {
    let s = steps("--direct-phys eth2 -i container0 web1 0/0", &nic(true, 1500), &GuestFacts::default());
    assert_eq!(
        s,
        ["ip link set eth2 netns GUEST name container0 alias eth2", "guest: ip link set container0 up"]
    );
    // With @VLAN, the VLAN device moves in (made first if missing).
    let s = steps("--direct-phys eth2 -i c0 web1 0/0 @10", &nic(true, 1500), &GuestFacts::default());
    assert_eq!(
        s,
        [
            "ip link add link eth2 name eth2.10 mtu 1500 type vlan id 10",
            "ip link set eth2.10 up",
            "ip link set eth2.10 netns GUEST name c0 alias eth2.10",
            "guest: ip link set c0 up",
        ]
    );
}

#[test]
fn ipoib_planner_and_request_not_end_to_end() {
    let ib =
        HostFacts { host_if: Some(Link { link_type: 32, ..link(5, "ib0", None) }), ..Default::default() };
    let s = steps("ib0 web1 10.10.10.10/24 @8001", &ib, &GuestFacts::default());
    assert_eq!(s[0], "ip link add link ib0 name ib0 netns GUEST type ipoib pkey 0x8001");
    assert_eq!(s.last().unwrap(), "guest: ip link set ib0 up");
    assert_eq!(
        refused("ib0 web1 10.10.10.10/24 02:00:00:00:00:01", &ib, &GuestFacts::default()),
        "MACADDR configuration unsupported for IPoIB interfaces."
    );
}

#[test]
fn dummy_planner_not_end_to_end() {
    let s = steps("dummy web1 192.168.21.101/24@192.168.21.1", &HostFacts::default(), &GuestFacts::default());
    assert_eq!(s[0], "ip link add name eth1 netns GUEST type dummy");
    assert_eq!(s.last().unwrap(), "guest: ip route replace default via 192.168.21.1 dev eth1");
}

fn ovs_bridge(ports: &[&str]) -> HostFacts {
    HostFacts {
        host_if: Some(link(8, "ovsbr0", Some("tun"))),
        ovs_bridge: true,
        ovs_ports: ports.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn ovs_port_with_tag_and_the_originals_external_ids() {
    let g = GuestId {
        name: "web1".into(),
        tag: "4242".into(),
        pid: Some(4242),
        container: Some(("c0ffee".into(), "/web1".into())),
        reference: alias::GuestRef::Docker("c0ffee".into()),
        ns_inode: 4026532001,
    };
    let p =
        plan(&req("ovsbr0 web1 192.168.10.2/24 @10"), &g, &ovs_bridge(&[]), &GuestFacts::default()).unwrap();
    let Plan::Steps(steps) = p else { panic!("{p:?}") };
    let s: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
    assert_eq!(s[0], "ip link add veth1pl4242 mtu 1500 up type veth peer name eth1 netns GUEST mtu 1500");
    assert_eq!(
        s[1],
        "ip link set veth1pl4242 alias 'pipework:v1 guest=docker:c0ffee ns=4026532001 if=eth1 host=ovsbr0 mode=ovs vlan=10'",
        "the full container id, so that del and ls find the container again"
    );
    assert_eq!(
        s[2],
        "ovs-vsctl --may-exist add-port ovsbr0 veth1pl4242 tag=10 -- set Interface veth1pl4242 \
         external-ids:pipework.interface=veth1pl4242 external-ids:pipework.bridge=ovsbr0 \
         external-ids:pipework.containerid=c0ffee external-ids:pipework.containername=/web1 \
         external-ids:pipework.nspid=4242 external-ids:pipework.vlan=10"
    );
}

#[test]
fn ovs_bridge_created_for_an_ovs_name_with_the_chosen_datapath() {
    let host = HostFacts { ovs_installed: true, ovs_datapath: Some("netdev".into()), ..Default::default() };
    let s = steps("ovs-new web1 192.168.1.3/24", &host, &GuestFacts::default());
    assert_eq!(s[0], "ovs-vsctl add-br ovs-new -- set bridge ovs-new datapath_type=netdev");
    assert!(s[1].starts_with("ip link add veth1pl4242 mtu 1500 up type veth"), "{s:?}");
    assert!(s[2].starts_with("ip link set veth1pl4242 alias 'pipework:v1 "), "{s:?}");
    assert!(s[3].starts_with("ovs-vsctl --may-exist add-port ovs-new veth1pl4242 -- set"), "{s:?}");
}

#[test]
fn ovs_rerun_of_the_same_port_changes_nothing() {
    let (mut host, facts) = attached(true);
    let ovs = ovs_bridge(&["veth1pl4242"]);
    host.host_if = ovs.host_if;
    host.ovs_bridge = true;
    host.ovs_ports = ovs.ovs_ports;
    host.local_if.as_mut().unwrap().master = None;
    let p = plan(&req("ovsbr0 web1 10.0.0.2/24@10.0.0.1"), &guest(), &host, &facts).unwrap();
    assert!(matches!(p, Plan::AlreadyDone(_)), "{p:?}");
    host.ovs_ports.clear();
    assert_eq!(
        refused("ovsbr0 web1 10.0.0.2/24@10.0.0.1", &host, &facts),
        "Link veth1pl4242 exists and is up"
    );
}

#[test]
fn one_classification_names_the_container_interface_and_host_end() {
    let ib =
        HostFacts { host_if: Some(Link { link_type: 32, ..link(2, "ib0", None) }), ..Default::default() };
    let class = Class::of(&req("ib0 web1 0/0"), &ib).unwrap();
    assert_eq!((class.mode, class.container_if.as_str()), (Some(Mode::Ipoib), "ib0"));
    assert!(class.host_end(&req("ib0 web1 0/0"), &guest()).is_none());
    let class = Class::of(&req("br1 -i eth2 web1 0/0"), &bridge(1500)).unwrap();
    assert_eq!(class.host_end(&req("br1 -i eth2 web1 0/0"), &guest()).unwrap().unwrap(), "veth2pl4242");
    // A --direct-phys NIC missing from the host may be in the guest already: no mode yet.
    let class = Class::of(&req("--direct-phys eth9 web1 0/0"), &HostFacts::default()).unwrap();
    assert_eq!((class.mode, class.container_if.as_str()), (None, "eth1"));
    assert_eq!(
        Class::of(&req("br1 web1 0/0 @0"), &bridge(1500)).unwrap_err().to_string(),
        "invalid VLAN id \"0\" (expected a number from 1 to 4094 for a Linux bridge)"
    );
}

#[test]
fn a_vlan_on_a_linux_bridge_turns_filtering_on_first_and_makes_the_port_untagged_in_it() {
    let s = steps("br1 web1 10.0.0.2/24 @10", &bridge(1500), &GuestFacts::default());
    assert_eq!(s[0], "ip link set br1 type bridge vlan_filtering 1", "{s:?}");
    let port = "bridge vlan add dev veth1pl4242 vid 10 pvid untagged; bridge vlan del dev veth1pl4242 vid 1";
    assert!(s.iter().any(|l| l == port), "{s:?}");
    // Already on: left as it is.
    let mut on = bridge(1500);
    on.host_if.as_mut().unwrap().vlan_filtering = Some(true);
    let s = steps("br1 web1 10.0.0.2/24 @10", &on, &GuestFacts::default());
    assert!(!s.iter().any(|l| l.contains("vlan_filtering")), "{s:?}");
}

#[test]
fn a_vlan_on_a_bridge_whose_filtering_was_turned_off_under_our_vlan_ports_is_refused() {
    let mut off = bridge(1500);
    off.host_if.as_mut().unwrap().vlan_filtering = Some(false);
    off.vlan_ports = vec!["veth1pl17 @10".into(), "veth1pl18 trunk=20-22".into()];
    let err = plan(&req("br1 web1 10.0.0.2/24 @10"), &guest(), &off, &GuestFacts::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "VLAN filtering of bridge br1 was turned off while pipework's ports use VLANs \
         (veth1pl17 @10, veth1pl18 trunk=20-22); turn it on again \
         (ip link set br1 type bridge vlan_filtering 1) or del those attachments"
    );
    // No port of ours with a VLAN: filtering is turned on as on any bridge.
    off.vlan_ports.clear();
    let s = steps("br1 web1 10.0.0.2/24 @10", &off, &GuestFacts::default());
    assert_eq!(s[0], "ip link set br1 type bridge vlan_filtering 1", "{s:?}");
}

#[test]
fn cni_port_vlans_a_trunk_and_the_default_vlan_kept_or_dropped() {
    let with = |line: &str, trunk: &str, keep_default: bool| {
        let mut r = req(line);
        r.port_vlans = crate::model::PortVlans { trunk: trunk.parse().unwrap_or_default(), keep_default };
        match plan(&r, &guest(), &bridge(1500), &GuestFacts::default()) {
            Ok(Plan::Steps(s)) => s.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            other => panic!("{line}: {other:?}"),
        }
    };
    let port = |s: &[String]| s.iter().find(|l| l.starts_with("bridge vlan")).cloned().unwrap_or_default();
    // `vlan` with preserveDefaultVlan (true, the default): VLAN 1 stays.
    let s = with("br1 web1 10.0.0.2/24 @10", "", true);
    assert_eq!(s[0], "ip link set br1 type bridge vlan_filtering 1", "{s:?}");
    assert_eq!(port(&s), "bridge vlan add dev veth1pl4242 vid 10 pvid untagged");
    // A trunk: filtering on, the ids tagged, VLAN 1 kept or dropped.
    let s = with("br1 web1 10.0.0.2/24", "10-20,30", true);
    assert_eq!(s[0], "ip link set br1 type bridge vlan_filtering 1", "{s:?}");
    assert_eq!(port(&s), "bridge vlan add dev veth1pl4242 vid 10-20; bridge vlan add dev veth1pl4242 vid 30");
    assert!(s.iter().any(|l| l.contains(" mode=bridge trunk=10-20,30'")), "{s:?}");
    let s = with("br1 web1 10.0.0.2/24", "30", false);
    assert_eq!(port(&s), "bridge vlan add dev veth1pl4242 vid 30; bridge vlan del dev veth1pl4242 vid 1");
    // VLAN 1 asked for in the trunk is not dropped.
    let s = with("br1 web1 10.0.0.2/24", "1-3", false);
    assert_eq!(port(&s), "bridge vlan add dev veth1pl4242 vid 1-3");
    // preserveDefaultVlan alone changes nothing.
    let s = with("br1 web1 10.0.0.2/24", "", false);
    assert!(!s.iter().any(|l| l.contains("vlan")), "{s:?}");
    // A trunk anywhere else is refused before any change.
    let mut r = req("ovsbr0 web1 10.0.0.2/24");
    r.port_vlans.trunk = "5".parse().unwrap();
    let e = plan(&r, &guest(), &ovs_bridge(&[]), &GuestFacts::default()).unwrap_err().to_string();
    assert!(
        e.starts_with("a VLAN trunk (vlanTrunk) is for a Linux bridge's port only, not for ovsbr0"),
        "{e}"
    );
}

#[test]
fn the_loopback_interface_is_refused_before_any_change() {
    let lo =
        HostFacts { host_if: Some(Link { link_type: 772, ..link(1, "lo", None) }), ..Default::default() };
    for line in ["lo web1 10.0.0.2/24", "--direct-phys lo web1 10.0.0.2/24"] {
        let e = Class::of(&req(line), &lo).unwrap_err().to_string();
        assert_eq!(e, "lo is the loopback interface: nothing can be attached to it", "{line}");
    }
}

#[test]
fn vlan_4095_goes_to_open_vswitch_as_the_original_passes_it() {
    let p = plan(&req("ovsbr0 web1 10.0.0.2/24 @4095"), &guest(), &ovs_bridge(&[]), &GuestFacts::default())
        .unwrap();
    let Plan::Steps(steps) = p else { panic!("{p:?}") };
    assert!(
        steps.iter().any(|s| matches!(s, Step::AddOvsPort(OvsPort { tag: Some(4095), .. }))),
        "{steps:?}"
    );
}

#[test]
fn slaac_turns_ipv6_and_router_advertisements_on_for_the_new_interface_alone() {
    let s = steps("br1 web1 slaac --timeout 7", &bridge(1500), &GuestFacts::default());
    assert!(s[1].contains("alias 'pipework:v1"), "{s:?}");
    assert_eq!(
        s[2..],
        [
            "guest: sysctl -w net.ipv6.conf.eth1.disable_ipv6=0",
            "guest: ip link set eth1 up",
            "guest: sysctl -w net.ipv6.conf.eth1.accept_ra=1 net.ipv6.conf.eth1.ndisc_notify=1; \
             wait up to 7 s for a router's address and default route on eth1",
        ]
    );
    assert_eq!(req("br1 web1 slaac").family, crate::model::Family::V6);
}
