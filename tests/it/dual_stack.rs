//! IPSPEC lists (issue 12): both families in one attach, on a plain namespace guest
//! and a real Docker container; a failure in the second family undoes the first;
//! a static IPv4 address beside `slaac` from dnsmasq's router advertisements.

use serde_json::{json, Value};

use crate::dhcp::{leased, Dnsmasq};
use crate::docker::Container;
use crate::slaac::{autoconfigured, PREFIX};
use crate::util::{assert_rerun_changes_nothing, assert_same, guest_with_default_route, unique, Netns};

/// The default route of one family (`-4` or `-6`) in `ns`, as `ip -j` gives it.
fn default_of(ns: &Netns, family: &str) -> Value {
    let v = ns.ip_j(&[family, "route", "show", "default"]);
    assert_eq!(v.as_array().map(Vec::len), Some(1), "one {family} default: {v}");
    v[0].clone()
}

#[test]
fn a_guest_gets_both_families_with_their_defaults_and_pings_over_both() {
    let host = Netns::new();
    let br = unique("brds");
    // The gateway of both families: another guest on the same bridge.
    let router = Netns::new();
    host.pipework(&[&br, &router.guest(), "10.0.7.1/24,fd00:7::1/64"]).ok();
    // A guest with a default of its own already: the IPv4 one is replaced.
    let guest = guest_with_default_route();
    let args = [br.as_str(), &guest.guest(), "10.0.7.2/24@10.0.7.1,fd00:7::2/64@fd00:7::1", "--json"];
    let run = host.pipework(&args).ok();
    assert_eq!(run.stderr, "", "{run:?}");
    let doc: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"));
    assert_eq!(
        doc["ips"],
        json!([
            {"address": "10.0.7.2/24", "gateway": "10.0.7.1", "interface": 1},
            {"address": "fd00:7::2/64", "gateway": "fd00:7::1", "interface": 1},
        ]),
        "{doc}"
    );
    assert_eq!(
        doc["routes"],
        json!([{"dst": "0.0.0.0/0", "gw": "10.0.7.1"}, {"dst": "::/0", "gw": "fd00:7::1"}]),
        "{doc}"
    );
    let addrs = guest.addrs("eth1");
    assert!(addrs.contains(&"10.0.7.2/24".into()) && addrs.contains(&"fd00:7::2/64".into()), "{addrs:?}");
    let (v4, v6) = (default_of(&guest, "-4"), default_of(&guest, "-6"));
    assert_eq!((&v4["gateway"], &v4["dev"]), (&json!("10.0.7.1"), &json!("eth1")), "{v4}");
    assert_eq!((&v6["gateway"], &v6["dev"]), (&json!("fd00:7::1"), &json!("eth1")), "{v6}");
    guest.until_dad_settles();
    router.until_dad_settles();
    assert!(guest.ping("10.0.7.1"), "IPv4 ping to the gateway");
    assert!(guest.ping("fd00:7::1"), "IPv6 ping to the gateway");
}

#[test]
fn a_rerun_of_the_same_dual_stack_command_changes_nothing() {
    let host = Netns::new();
    let guest = Netns::new();
    let gs = guest.guest();
    let args = ["br1", gs.as_str(), "10.0.0.2/24@10.0.0.1,fd00::2/64@fd00::1"];
    assert_rerun_changes_nothing(&host, &guest, &args);
    let again = host.pipework(&[&args[..], &["--json"]].concat()).ok();
    assert!(again.stdout.contains("\"changed\":false"), "{again:?}");
}

/// A container as Docker leaves it: IPv6 off for `all` and `default`; eth1 gets it,
/// nothing else does, and both families carry traffic.
#[test]
fn a_docker_container_gets_both_families_with_ipv6_on_for_eth1_only() {
    let host = Netns::new();
    let br = unique("brdd");
    let peer = Netns::new();
    host.pipework(&[&br, &peer.guest(), "10.0.8.1/24,fd00:8::1/64"]).ok();
    let c = Container::run();
    assert_eq!((c.ipv6_disabled("all"), c.ipv6_disabled("default")), ("1".into(), "1".into()));
    let run = host.pipework(&[&br, &c.name, "10.0.8.2/24@10.0.8.1,fd00:8::2/64@fd00:8::1"]).ok();
    assert_eq!(run.stderr, "", "{run:?}");
    assert_eq!(c.ipv6_disabled("eth1"), "0");
    assert_eq!(["all", "default", "lo"].map(|d| c.ipv6_disabled(d)), ["1", "1", "1"], "only eth1 changes");
    let v4 = c.sh(&["ip", "-4", "addr", "show", "eth1"]);
    assert!(v4.contains("inet 10.0.8.2/24"), "{v4}");
    let v6 = c.sh(&["ip", "-6", "addr", "show", "eth1"]);
    assert!(v6.contains("inet6 fd00:8::2/64 scope global"), "{v6}");
    assert!(c.sh(&["ip", "-4", "route"]).contains("default via 10.0.8.1 dev eth1"));
    assert!(c.sh(&["ip", "-6", "route"]).contains("default via fd00:8::1 dev eth1"));
    c.until_dad_settles();
    peer.until_dad_settles();
    let ping = c.exec(&["ping", "-c", "1", "-W", "3", "10.0.8.1"]);
    assert!(ping.status.success(), "IPv4: {ping:?}");
    let ping = c.exec(&["ping", "-6", "-c", "1", "-W", "3", "fd00:8::1"]);
    assert!(ping.status.success(), "IPv6: {ping:?}");
}

/// The second family fails (the kernel takes `::1` on a loopback device only): the
/// IPv4 address already on eth1, IPv6 turned on for it, the veth and the bridge all go.
#[test]
fn a_failure_in_the_second_family_undoes_the_first() {
    let host = Netns::new();
    let guest = guest_with_default_route();
    guest.ipv6_off_as_docker_does();
    let (h, g) = (host.snapshot(), guest.snapshot());
    let line = host.pipework(&["br1", &guest.guest(), "10.0.0.2/24@10.0.0.1,::1/128"]).failed();
    assert!(line.starts_with("pipework: cannot add address ::1/128 to eth1 in guest pid:"), "{line}");
    assert!(line.ends_with(": Cannot assign requested address"), "{line}");
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
    assert!(host.link("br1").is_none());
}

#[test]
fn a_static_ipv4_address_beside_slaac() {
    let host = Netns::new();
    host.sh("ip", &["link", "add", "brds6", "type", "bridge"]);
    host.sh("ip", &["link", "set", "brds6", "up"]);
    let router = Dnsmasq::router(&host, "brds6");
    let guest = Netns::new();
    guest.ipv6_off_as_docker_does();
    host.pipework(&["brds6", &guest.guest(), "10.0.9.2/24@10.0.9.1,slaac"]).ok();
    assert!(guest.addrs("eth1").contains(&"10.0.9.2/24".into()));
    assert_eq!(default_of(&guest, "-4")["gateway"], "10.0.9.1");
    // When pipework returns, the router's address and default are there.
    let addrs = guest.sh("ip", &["-6", "-o", "addr", "show", "dev", "eth1", "scope", "global", "-tentative"]);
    assert!(autoconfigured(&addrs).is_some(), "no {PREFIX} address: {addrs}\n{}", router.log());
    let v6 = default_of(&guest, "-6");
    assert_eq!((&v6["dev"], &v6["protocol"]), (&json!("eth1"), &json!("ra")), "{v6}");
    assert_eq!(guest.ipv6_disabled("default"), "1");
}

/// A lease for IPv4 beside a static IPv6 address: the built-in client and an external
/// one (whose script must leave the IPv6 address alone), from dnsmasq.
#[test]
fn a_static_ipv6_address_beside_a_dhcp_lease() {
    let host = Netns::new();
    let server = Dnsmasq::start(&host);
    for (n, client) in [(2, "dhcp4"), (3, "udhcpc")] {
        let guest = Netns::new();
        let ipspec = format!("fd00:77::{n}/64@fd00:77::1,{client}");
        let run = host.pipework(&["br1", &guest.guest(), &ipspec]).ok();
        assert_eq!(run.stderr, "", "{ipspec}: {run:?}\n{}", server.log());
        leased(&guest);
        assert!(
            guest.addrs("eth1").contains(&format!("fd00:77::{n}/64")),
            "{ipspec}: {:?}",
            guest.addrs("eth1")
        );
        let v6 = default_of(&guest, "-6");
        assert_eq!((&v6["gateway"], &v6["dev"]), (&json!("fd00:77::1"), &json!("eth1")), "{ipspec}: {v6}");
    }
}
