//! Physical mode end to end, with a veth end standing in for the NIC inside the
//! test's own host namespace: macvlan, `--macvlan-mode`, `--direct-phys`, `mac:`;
//! and VLAN/dummy, which this kernel lacks: end to end where the kernel has the
//! kind, else the clean refusal.

use crate::util::{assert_rerun_changes_nothing, assert_same, Netns};

/// A host namespace with a stand-in NIC `eth2`: a veth whose peer is up on the
/// host, so that eth2 has carrier as a cabled NIC would (macvlans need it).
fn host_with_nic(mtu: &str) -> Netns {
    let host = Netns::new();
    host.sh("ip", &["link", "add", "eth2", "mtu", mtu, "type", "veth", "peer", "name", "eth2p"]);
    host.sh("ip", &["link", "set", "eth2p", "up"]);
    host
}

fn kind_of(ns: &Netns, dev: &str) -> String {
    ns.link(dev).map(|l| l["linkinfo"]["info_kind"].as_str().unwrap_or("").to_string()).unwrap_or_default()
}

#[test]
fn two_guests_on_macvlans_of_one_nic_ping_each_other() {
    let host = host_with_nic("1400");
    let (a, b) = (Netns::new(), Netns::new());
    host.pipework(&["eth2", &a.guest(), "50.19.169.157/24"]).ok();
    host.pipework(&["eth2", &b.guest(), "50.19.169.158/24", "26:2E:71:98:60:8f"]).ok();
    let eth1 = a.link("eth1").expect("eth1 in a");
    assert_eq!(eth1["linkinfo"]["info_kind"], "macvlan");
    assert_eq!(eth1["linkinfo"]["info_data"]["mode"], "bridge");
    assert_eq!(eth1["mtu"], 1400, "the NIC's MTU");
    assert_eq!(b.link("eth1").unwrap()["address"], "26:2e:71:98:60:8f");
    assert!(host.link("eth2").unwrap()["flags"].to_string().contains("\"UP\""), "NIC set up");
    assert!(a.ping("50.19.169.158"), "a cannot reach b");
}

#[test]
fn private_macvlans_cannot_reach_each_other() {
    let host = host_with_nic("1500");
    let (a, b) = (Netns::new(), Netns::new());
    for (g, ip) in [(&a, "10.6.0.2/24"), (&b, "10.6.0.3/24")] {
        host.pipework(&["--macvlan-mode", "private", "eth2", &g.guest(), ip]).ok();
    }
    assert_eq!(a.link("eth1").unwrap()["linkinfo"]["info_data"]["mode"], "private");
    assert!(!a.ping("10.6.0.3"), "private mode must isolate macvlans of one NIC");
}

#[test]
fn rerun_of_a_macvlan_attachment_changes_nothing() {
    let host = host_with_nic("1500");
    let guest = Netns::new();
    let args = ["eth2", &guest.guest(), "10.7.0.2/24@10.7.0.1"];
    assert_rerun_changes_nothing(&host, &guest, &args);
}

#[test]
fn direct_phys_by_mac_moves_the_nic_in_under_its_new_name() {
    let host = host_with_nic("1500");
    host.sh("ip", &["link", "set", "eth2", "address", "00:f3:15:4a:42:c8"]);
    let guest = Netns::new();
    let r = host
        .pipework(&["--direct-phys", "mac:00:F3:15:4A:42:C8", "-i", "container0", &guest.guest(), "0/0"])
        .ok();
    assert!(r.stderr.contains("eth2 moved into"), "says where it went: {r:?}");
    assert!(host.link("eth2").is_none(), "the NIC left the host");
    let moved = guest.link("container0").expect("container0 in the guest");
    assert_eq!(moved["ifalias"], "eth2", "{moved}");
    assert_eq!(moved["address"], "00:f3:15:4a:42:c8");
    assert!(moved["flags"].to_string().contains("\"UP\""));
}

/// `--direct-phys` with a `br*` name that does not exist: the original takes the
/// bridge path (`--direct-phys` only changes physical mode): the bridge is made and
/// a veth goes on it. (This panicked: "a veth mode", exit 101.)
#[test]
fn direct_phys_with_a_missing_bridge_name_makes_the_bridge_as_the_original() {
    let host = Netns::new();
    let guest = Netns::new();
    host.pipework(&["--direct-phys", "br1", &guest.guest(), "10.50.0.2/24"]).ok();
    assert_eq!(kind_of(&host, "br1"), "bridge", "the bridge was made");
    let local = format!("veth1pl{}", guest.pid());
    assert_eq!(host.link(&local).expect("the host end")["master"], "br1");
    assert_eq!(kind_of(&guest, "eth1"), "veth");
    assert!(guest.addrs("eth1").contains(&"10.50.0.2/24".to_string()), "{:?}", guest.addrs("eth1"));
}

#[test]
fn direct_phys_failure_gives_the_nic_back_as_it_was() {
    let host = host_with_nic("1500");
    // Up and on a bridge: a move drops both, so the undo must put both back.
    host.sh("ip", &["link", "add", "brn", "type", "bridge"]);
    host.sh("ip", &["link", "set", "eth2", "master", "brn", "up"]);
    // IPv6 off on this NIC alone: a move gives it the namespace's default (here on),
    // so the undo must turn it off again (else it would come back with a link-local
    // address, which the snapshot shows).
    host.sh("sysctl", &["-qw", "net.ipv6.conf.eth2.disable_ipv6=1"]);
    direct_phys_fails_and_changes_nothing(&host);
    assert_eq!(host.ipv6_disabled("eth2"), "1");
}

#[test]
fn direct_phys_failure_gives_the_nic_back_with_its_addresses_and_routes() {
    let host = host_with_configured_nic();
    direct_phys_fails_and_changes_nothing(&host);
}

/// `del` of a `--direct-phys` NIC gives it back as it was (its record saved it):
/// name, MAC, alias, bridge, up state, addresses and routes; the guest as before.
#[test]
fn del_gives_a_direct_phys_nic_back_as_it_was() {
    let host = host_with_configured_nic();
    ip(
        &host,
        &[
            "link add br7 type bridge",
            "link set br7 up",
            "link set eth3 master br7",
            "link set eth3 alias uplink",
        ],
    );
    let guest = Netns::new();
    for nic in ["eth2", "eth3"] {
        if nic == "eth3" {
            // Its leg of this multipath route comes back last, as after eth2's round:
            // the order of equal-cost legs means nothing, but the snapshot sees it.
            ip(&host, &["-6 route del fd05::/64"]);
        }
        let (h, g) = (host.snapshot(), guest.snapshot());
        host.pipework(&[
            "--direct-phys",
            nic,
            "-i",
            "container0",
            &guest.guest(),
            "10.8.0.2/24@10.8.0.1",
            "02:aa:bb:cc:dd:ee",
        ])
        .ok();
        assert!(host.link(nic).is_none() && guest.link("container0").is_some());
        host.pipework(&["check", &guest.guest(), "-i", "container0"]).ok();
        let v: serde_json::Value =
            serde_json::from_str(&host.pipework(&["ls", "--json"]).ok().stdout).unwrap();
        let mine: Vec<_> =
            v["attachments"].as_array().unwrap().iter().filter(|e| e["guest"] == guest.guest()).collect();
        assert_eq!(mine.len(), 1, "ls finds the NIC by its record: {v}");
        assert_eq!(
            (mine[0]["kind"].as_str(), mine[0]["host_if"].as_str()),
            (Some("direct-phys"), Some(nic)),
            "{v}"
        );
        let dry = host.pipework(&["del", &guest.guest(), "-i", "container0", "--dry-run"]).ok().stdout;
        assert!(dry.starts_with(&format!("guest: ip link set container0 netns <host> name {nic} ")), "{dry}");
        let run = host.pipework(&["del", &guest.guest(), "-i", "container0"]).ok();
        assert!(
            run.stderr.contains(&format!("removed container0 of {} from {nic}", guest.guest())),
            "{run:?}"
        );
        host.until_dad_settles();
        assert_same("host", &h, &host.snapshot());
        assert_same("guest", &g, &guest.snapshot());
        let again = host.pipework(&["del", &guest.guest(), "-i", "container0"]).ok();
        assert!(again.stderr.contains("nothing to remove"), "{again:?}");
    }
}

/// The stand-in NIC eth2 (and a second one, eth3) with all an operator may have
/// configured on it: the move drops all of it.
fn host_with_configured_nic() -> Netns {
    let host = host_with_nic("1500");
    // A second NIC, for multipath routes with a leg through each.
    host.sh("ip", &["link", "add", "eth3", "type", "veth", "peer", "name", "eth3p"]);
    // What an operator configured on the NIC: the move drops all of it.
    ip(
        &host,
        &[
            "link set eth2 up",
            "link set eth2p up",
            "link set eth3 up",
            "link set eth3p up",
            "addr add 192.0.2.5/24 dev eth2",
            "addr add 192.0.2.6/24 dev eth2 label eth2:1",
            "addr add 198.51.100.5/32 peer 198.51.100.1 dev eth2",
            "-6 addr add fd02::5/64 dev eth2",
            "addr add 192.0.3.5/24 dev eth3",
            "-6 addr add fd03::5/64 dev eth3 nodad",
            "route add default via 192.0.2.1 dev eth2 metric 50",
            "route add 203.0.113.0/24 via 192.0.2.2 dev eth2 table 100",
            "route add 10.99.0.0/16 dev eth2 proto static scope link",
            // A gateway reached only through another route of the NIC, which the
            // kernel lists after it: restored in passes.
            "route add 172.31.1.1 dev eth2 scope link table 200",
            "route add default via 172.31.1.1 dev eth2 table 200",
            // IPv4 drops a multipath route whole when one of its links leaves.
            "route add 10.200.0.0/16 nexthop via 192.0.2.1 dev eth2 nexthop via 192.0.3.1 dev eth3",
        ],
    );
    // DAD over, so that a source route can be made (it is restored only after the
    // returning address's own DAD).
    host.until_dad_settles();
    ip(
        &host,
        &[
            "-6 route add fd03:1::/64 via fd02::1 dev eth2",
            "-6 route add fd04::/64 via fd02::1 dev eth2 src fd02::5",
            // IPv6 drops only the leg through the leaving link; the kernel appends it
            // again at the end (the order of equal-cost legs means nothing).
            "-6 route add fd05::/64 nexthop via fd03::1 dev eth3 nexthop via fd02::1 dev eth2",
        ],
    );
    host
}

/// `ip ARGS` for each line, in `ns`.
fn ip(ns: &Netns, lines: &[&str]) {
    for line in lines {
        ns.sh("ip", &line.split_whitespace().collect::<Vec<_>>());
    }
}

/// A `--direct-phys eth2` attach that fails once the NIC is in the guest (in a guest
/// with IPv6 off as Docker makes it, the NIC gets IPv6 turned on; then the kernel
/// refuses the loopback address on it) leaves host and guest as they were.
fn direct_phys_fails_and_changes_nothing(host: &Netns) {
    let guest = Netns::new();
    guest.ipv6_off_as_docker_does();
    let (h, g) = (host.snapshot(), guest.snapshot());
    // One line: the failure (it said `eth2 moved into ...` first, of a move undone).
    let line =
        host.pipework(&["--direct-phys", "eth2", "-i", "container0", &guest.guest(), "::1/128"]).failed();
    assert!(line.contains("cannot add address ::1/128 to container0"), "{line}");
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
}

/// In a Docker container (IPv6 off for new links, issue 12), a macvlan and a NIC moved
/// in both get their IPv6 address, IPv6 on for that interface alone.
#[test]
fn macvlan_and_direct_phys_get_ipv6_in_a_docker_container() {
    let host = host_with_nic("1500");
    host.sh("ip", &["link", "add", "eth3", "type", "veth", "peer", "name", "eth3p"]);
    let c = crate::docker::Container::run();
    host.pipework(&["eth2", &c.name, "fd00:7::2/64@fd00:7::1"]).ok();
    host.pipework(&["--direct-phys", "eth3", "-i", "nic0", &c.name, "fd00:8::2/64"]).ok();
    for (dev, addr) in [("eth1", "fd00:7::2/64"), ("nic0", "fd00:8::2/64")] {
        assert_eq!(c.ipv6_disabled(dev), "0", "{dev}");
        let addrs = c.sh(&["ip", "-6", "addr", "show", dev]);
        assert!(addrs.contains(&format!("inet6 {addr} scope global")), "{dev}: {addrs}");
    }
    assert_eq!((c.ipv6_disabled("all"), c.ipv6_disabled("default")), ("1".into(), "1".into()));
    assert!(c.sh(&["ip", "-6", "route"]).contains("default via fd00:7::1 dev eth1"));
}

#[test]
fn rerun_of_direct_phys_changes_nothing() {
    let host = host_with_nic("1500");
    let guest = Netns::new();
    let args = ["--direct-phys", "eth2", "-i", "container0", &guest.guest(), "10.8.0.2/24"];
    assert_rerun_changes_nothing(&host, &guest, &args);
}

#[test]
fn existing_vlan_name_of_another_kind_is_refused() {
    let host = host_with_nic("1500");
    host.sh("ip", &["link", "add", "eth2.10", "type", "veth", "peer", "name", "x10"]);
    let guest = Netns::new();
    let h = host.snapshot();
    let line = host.pipework(&["eth2", &guest.guest(), "10.5.0.2/24", "@10"]).failed();
    assert_eq!(line, "pipework: eth2.10 already exists but is not a VLAN device for tag 10");
    assert_same("host", &h, &host.snapshot());
}

/// Whether this kernel can make links of `kind` (asked in a scratch namespace).
fn kernel_has(kind: &str) -> bool {
    let scratch = Netns::new();
    if kind == "vlan" {
        scratch.sh("ip", &["link", "add", "base0", "type", "veth", "peer", "name", "base1"]);
        let probe = ["link", "add", "link", "base0", "name", "base0.5", "type", "vlan", "id", "5"];
        return scratch.run("ip", &probe).status.success();
    }
    scratch.run("ip", &["link", "add", "probe0", "type", kind]).status.success()
}

#[test]
fn vlan_end_to_end_or_clean_refusal_where_the_kernel_lacks_8021q() {
    let host = host_with_nic("1500");
    let guest = Netns::new();
    let (h, g) = (host.snapshot(), guest.snapshot());
    let r = host.pipework(&["eth2", &guest.guest(), "10.5.0.2/24", "@10"]);
    if kernel_has("vlan") {
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(kind_of(&host, "eth2.10"), "vlan");
        assert_eq!(kind_of(&guest, "eth1"), "macvlan");
    } else {
        let line = r.failed();
        assert_eq!(line, "pipework: cannot create VLAN device eth2.10: Operation not supported on transport endpoint; this kernel has no 802.1Q VLAN support");
        assert_same("host", &h, &host.snapshot());
        assert_same("guest", &g, &guest.snapshot());
    }
}

#[test]
fn dummy_end_to_end_or_clean_refusal_where_the_kernel_lacks_it() {
    let host = Netns::new();
    let guest = Netns::new();
    let (h, g) = (host.snapshot(), guest.snapshot());
    let r = host.pipework(&["dummy", &guest.guest(), "192.168.21.101/24@192.168.21.1"]);
    if kernel_has("dummy") {
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(kind_of(&guest, "eth1"), "dummy");
    } else {
        let line = r.failed();
        assert!(line.starts_with("pipework: cannot create dummy interface eth1 in guest pid:"), "{line}");
        assert!(line.ends_with("this kernel has no dummy interface support"), "{line}");
        assert_same("host", &h, &host.snapshot());
        assert_same("guest", &g, &guest.snapshot());
    }
}

/// A NIC whose name the host gave to another interface meanwhile cannot go back:
/// `del` refuses before changing anything, and works once the name is free again.
#[test]
fn del_of_a_direct_phys_nic_whose_name_is_taken_refuses_and_changes_nothing() {
    let host = host_with_nic("1500");
    // Up from the start: the stand-in's peer makes its link-local address once eth2
    // has been up, which is the kernel's doing on the peer, not ours.
    host.sh("ip", &["link", "set", "eth2", "up"]);
    host.until_dad_settles();
    let guest = Netns::new();
    let (h, g) = (host.snapshot(), guest.snapshot());
    host.pipework(&["--direct-phys", "eth2", &guest.guest(), "10.8.0.2/24"]).ok();
    host.sh("ip", &["link", "add", "eth2", "type", "veth", "peer", "name", "eth2x"]);
    let (h2, g2) = (host.snapshot(), guest.snapshot());
    let line = host.pipework(&["del", &guest.guest()]).failed();
    assert!(
        line.ends_with(
            "cannot go back to the host as eth2: the host has an interface eth2 now; nothing removed"
        ),
        "{line}"
    );
    assert_same("host", &h2, &host.snapshot());
    assert_same("guest", &g2, &guest.snapshot());
    host.sh("ip", &["link", "del", "eth2"]);
    host.pipework(&["del", &guest.guest()]).ok();
    host.until_dad_settles();
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
}
