//! `slaac` end to end: Debian's dnsmasq as the router (`--enable-ra`, in a namespace
//! of its own on the test's bridge), and guests that autoconfigure from it: a plain
//! namespace guest and a real Docker container (IPv6 off inside, as Docker leaves it).

use crate::dhcp::Dnsmasq;
use crate::docker::Container;
use crate::util::{assert_same, Netns};

/// The prefix the router advertises.
pub(crate) const PREFIX: &str = "fd00:5a::";

impl Dnsmasq {
    /// dnsmasq sending router advertisements for PREFIX/64 on `bridge` in `host`.
    pub(crate) fn router(host: &Netns, bridge: &str) -> Dnsmasq {
        let ns = Netns::new();
        host.pipework(&[bridge, &ns.guest(), &format!("{PREFIX}1/64")]).ok();
        // An advertisement names a default router only with an explicit lifetime, and
        // only when dnsmasq's own namespace has a default route (measured).
        ns.sh("ip", &["-6", "route", "add", "default", "dev", "eth1"]);
        Dnsmasq::spawn(ns, "pwt-ra", "router advertisement enabled", |_| {
            let mut args: Vec<String> =
                vec!["--enable-ra".into(), format!("--dhcp-range={PREFIX},ra-only,64")];
            args.extend(["--ra-param=eth1,10,600", "--no-resolv", "--no-hosts"].map(String::from));
            args
        })
    }
}

/// The autoconfigured global address on eth1, from `ip -6 -o addr` output.
pub(crate) fn autoconfigured(ip_addr: &str) -> Option<String> {
    ip_addr
        .split_whitespace()
        .find(|w| w.starts_with(PREFIX))
        .map(|w| w.split('/').next().unwrap().to_string())
}

#[test]
fn a_guest_autoconfigures_from_the_routers_advertisement_and_gets_its_default_route() {
    let host = Netns::new();
    host.sh("ip", &["link", "add", "brra", "type", "bridge"]);
    host.sh("ip", &["link", "set", "brra", "up"]);
    let router = Dnsmasq::router(&host, "brra");
    let guest = Netns::new();
    guest.ipv6_off_as_docker_does();
    let dry = host.pipework(&["brra", &guest.guest(), "slaac", "--dry-run"]).ok();
    assert!(dry.stdout.contains("accept_ra=1") && dry.stdout.contains("disable_ipv6=0"), "{}", dry.stdout);
    host.pipework(&["brra", &guest.guest(), "slaac"]).ok();
    // When pipework returns, both are there already: that is what it waited for.
    let addrs = guest.sh("ip", &["-6", "-o", "addr", "show", "dev", "eth1", "scope", "global", "-tentative"]);
    let addr =
        autoconfigured(&addrs).unwrap_or_else(|| panic!("no {PREFIX} address: {addrs}\n{}", router.log()));
    let routes = guest.sh("ip", &["-6", "route", "show", "default"]);
    assert!(routes.contains("dev eth1") && routes.contains("proto ra"), "{routes}");
    // Only eth1 changed: the guest's own defaults stay off.
    assert_eq!(guest.sh("sysctl", &["-n", "net.ipv6.conf.default.disable_ipv6"]).trim(), "1");
    // The address works: the router reaches it.
    let ping = guest.run("ping", &["-6", "-c", "1", "-W", "2", &format!("{PREFIX}1")]);
    assert!(ping.status.success(), "ping from {addr}: {ping:?}");
    // Safe to re-run: the autoconfigured address and the router's route are in place.
    let again = host.pipework(&["--json", "brra", &guest.guest(), "slaac"]).ok().stdout;
    assert!(again.contains("\"changed\":false"), "{again}");
}

#[test]
fn without_a_router_slaac_times_out_and_everything_is_undone() {
    let host = Netns::new();
    let guest = Netns::new();
    let (h, g) = (host.snapshot(), guest.snapshot());
    let run = host.pipework(&["brnora", &guest.guest(), "slaac", "--timeout", "2"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("no router advertisement gave eth1 an address and a default route within 2 s"),
        "{run:?}"
    );
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
}

#[test]
fn a_docker_container_autoconfigures_with_ipv6_on_for_eth1_only() {
    let host = Netns::new();
    host.sh("ip", &["link", "add", "brrad", "type", "bridge"]);
    host.sh("ip", &["link", "set", "brrad", "up"]);
    let router = Dnsmasq::router(&host, "brrad");
    let c = Container::run();
    host.pipework(&["brrad", &c.name, "slaac"]).ok();
    let addrs = c.sh(&["ip", "-6", "-o", "addr", "show", "dev", "eth1"]);
    assert!(autoconfigured(&addrs).is_some(), "no {PREFIX} address: {addrs}\n{}", router.log());
    assert!(c.sh(&["ip", "-6", "route"]).contains("default via fe80:"), "no default route");
    assert_eq!(
        (c.ipv6_disabled("eth1"), c.ipv6_disabled("all"), c.ipv6_disabled("default")),
        ("0".into(), "1".into(), "1".into())
    );
}
