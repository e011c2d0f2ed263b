//! DHCPv6 end to end: Debian's dnsmasq with a stateful range and router
//! advertisements (`--enable-ra`), in a namespace of its own on the test's bridge;
//! the built-in client (`dhcp6`, `dhcp6-f`) and the external ones (`dhclient6`,
//! `dhcpcd6`) take addresses from it for namespace guests and a real Docker container.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::dhcp::{others_in, Dnsmasq, Leftovers, PidFile};
use crate::docker::Container;
use crate::util::{assert_same, Netns};

/// The prefix dnsmasq serves; every test has its own host namespace and bridge.
const PREFIX: &str = "fd00:66::";

impl Dnsmasq {
    /// dnsmasq on `bridge` in `host`: DHCPv6 from PREFIX100-PREFIX1ff (2-minute leases,
    /// dnsmasq's shortest), advertisements with the managed flag and PREFIX/64 on-link.
    pub(crate) fn dhcp6(host: &Netns, bridge: &str) -> Dnsmasq {
        Dnsmasq::dhcp6_with(host, bridge, &[])
    }

    /// [`Dnsmasq::dhcp6`] with `more` arguments (DHCPv6 options).
    pub(crate) fn dhcp6_with(host: &Netns, bridge: &str, more: &[&str]) -> Dnsmasq {
        let ns = Netns::new();
        host.pipework(&[bridge, &ns.guest(), &format!("{PREFIX}1/64")]).ok();
        // An advertisement names a default router only with an explicit lifetime, and
        // only when dnsmasq's own namespace has a default route (measured).
        ns.sh("ip", &["-6", "route", "add", "default", "dev", "eth1"]);
        ns.until_dad_settles();
        Dnsmasq::spawn(ns, "pwt-dhcp6", "router advertisement on", |dir| {
            let mut args: Vec<String> = [
                "--no-ping",
                "--enable-ra",
                "--ra-param=eth1,10,600",
                "--log-dhcp",
                "--no-resolv",
                "--no-hosts",
            ]
            .map(String::from)
            .into();
            args.push(format!("--dhcp-range={PREFIX}100,{PREFIX}1ff,64,2m"));
            args.push(format!("--dhcp-leasefile={}", dir.join("leases").display()));
            args.extend(more.iter().map(|a| a.to_string()));
            args
        })
    }
}

/// A host namespace with bridge `br` up and the server on it.
fn world(br: &str) -> (Netns, Dnsmasq) {
    let host = Netns::new();
    host.sh("ip", &["link", "add", br, "type", "bridge"]);
    host.sh("ip", &["link", "set", br, "up"]);
    let server = Dnsmasq::dhcp6(&host, br);
    (host, server)
}

/// The global addresses of eth1 in an `ip -j -6 addr` answer, as (address, prefix).
fn globals(v: &Value) -> Vec<(String, u64)> {
    let infos = v[0]["addr_info"].as_array().cloned().unwrap_or_default();
    infos
        .iter()
        .filter(|a| a["scope"] == "global")
        .map(|a| (a["local"].as_str().unwrap_or_default().to_string(), a["prefixlen"].as_u64().unwrap_or(0)))
        .collect()
}

/// The one leased address of `guest`'s eth1, checked to be from the range, a /128.
fn leased6(guest: &Netns, server: &Dnsmasq) -> String {
    let got = globals(&guest.ip_j(&["-6", "addr", "show", "dev", "eth1"]));
    assert_eq!(got.len(), 1, "one global address: {got:?}\n{}", server.log());
    let (addr, prefix) = &got[0];
    assert!(addr.starts_with(&format!("{PREFIX}1")) && addr != &format!("{PREFIX}1"), "{addr}");
    assert_eq!(*prefix, 128, "{addr}/{prefix}");
    addr.clone()
}

/// eth1's one global address, if it has exactly one now.
fn leased6_or_none(guest: &Netns) -> Option<String> {
    match &globals(&guest.ip_j(&["-6", "addr", "show", "dev", "eth1"]))[..] {
        [(addr, 128)] => Some(addr.clone()),
        _ => None,
    }
}

/// Wait (at most 15 s) until `guest` has the router's default route and on-link
/// prefix from its advertisements: they are the kernel's, and come when they come.
fn until_router_advertised(guest: &Netns) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let routes = guest.sh("ip", &["-6", "route"]);
        // The on-link prefix shows as `proto kernel ... expires`: the kernel made it from the RA.
        if routes.contains("default via fe80:") && routes.contains(&format!("{PREFIX}/64 dev eth1")) {
            return;
        }
        assert!(Instant::now() < deadline, "no route from the router's advertisement: {routes}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_builtin_client_takes_an_address_and_two_guests_ping_each_other() {
    let (host, server) = world("br6a");
    let (a, b) = (Netns::new(), Netns::new());
    a.ipv6_off_as_docker_does();
    let mut addrs = Vec::new();
    for g in [&a, &b] {
        let run = host.pipework(&["br6a", &g.guest(), "dhcp6"]).ok();
        assert_eq!(run.stderr, "", "{run:?}\n{}", server.log());
        addrs.push(leased6(g, &server));
        // Nothing stays: the plain form's client ends with the exchange.
        assert_eq!(others_in(g), Vec::<u32>::new());
    }
    assert_ne!(addrs[0], addrs[1]);
    assert!(server.log().contains(&format!("DHCPREPLY(eth1) {}", addrs[0])), "{}", server.log());
    // Only eth1 changed in the guest with IPv6 off as Docker leaves it.
    assert_eq!((a.ipv6_disabled("eth1"), a.ipv6_disabled("default")), ("0".into(), "1".into()));
    for g in [&a, &b] {
        until_router_advertised(g);
        g.until_dad_settles();
    }
    let ping = a.run("ping", &["-6", "-c", "1", "-W", "3", &addrs[1]]);
    assert!(ping.status.success(), "ping6 {} -> {}: {ping:?}", addrs[0], addrs[1]);
}

/// `dhcp6-f`: a keeper renews the lease (T1 brought forward to 2 s), and ends with
/// the guest.
#[test]
fn the_builtin_f_client_renews_and_ends_with_the_guest() {
    let (host, server) = world("br6f");
    let guest = Netns::new();
    host.pipework(&["br6f", &guest.guest(), "dhcp6-f:renew=2"]).ok();
    let addr = leased6(&guest, &server);
    let file = PidFile(format!("/var/run/dhcp6.pid-{}.pid", guest.pid()).into());
    let keeper = file.pid();
    assert_eq!(others_in(&guest), vec![keeper]);
    let status = file.0.with_extension("lease");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !std::fs::read_to_string(&status).unwrap_or_default().contains("renewals=1") {
        assert!(
            Instant::now() < deadline,
            "no renewal: {:?}\n{}",
            std::fs::read_to_string(&status),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // dnsmasq answered the Request, then the Renew, for the same address.
    let log = server.log();
    assert!(log.contains("DHCPRENEW(eth1)"), "{log}");
    assert!(log.matches(&format!("DHCPREPLY(eth1) {addr}")).count() >= 2, "{log}");
    assert_eq!(leased6(&guest, &server), addr);
    drop(guest);
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{keeper}")).exists() && !is_zombie(keeper) {
        assert!(Instant::now() < deadline, "the keeper outlived its guest");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!file.0.exists() && !status.exists());
}

/// A `dhcp6-f` keeper killed: `check` says so, and a re-run starts a new one from
/// the lease the gone one held (written down), which the server grants again (the
/// same DUID); `check` then compares the lease held now.
#[test]
fn a_killed_dhcp6_keeper_comes_back_with_the_same_address() {
    let (host, server) = world("br6k");
    let guest = Netns::new();
    host.pipework(&["br6k", &guest.guest(), "dhcp6-f"]).ok();
    let addr = leased6(&guest, &server);
    let file = PidFile(format!("/var/run/dhcp6.pid-{}.pid", guest.pid()).into());
    let gone = file.pid();
    let _ = std::process::Command::new("kill").args(["-KILL", &gone.to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !crate::dhcp::is_gone(gone) {
        assert!(Instant::now() < deadline, "the keeper outlived SIGKILL");
        std::thread::sleep(Duration::from_millis(20));
    }
    let check = host.pipework(&["check", &guest.guest()]);
    assert!(check.code == 1 && check.stderr.contains("dhcp6:stopped"), "{check:?}");
    let reply = format!("DHCPREPLY(eth1) {addr}");
    let replies = server.log().matches(&reply).count();
    let rerun = host.pipework(&["br6k", &guest.guest(), "dhcp6-f"]).ok();
    assert!(rerun.stderr.contains("was gone"), "{rerun:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.log().matches(&reply).count() == replies || leased6_or_none(&guest).as_deref() != Some(&addr)
    {
        assert!(Instant::now() < deadline, "the new keeper never got {addr} again:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("dhcp6-f keeper {gone} killed; re-run: {}; {addr} granted again", rerun.stderr.trim());
    assert_ne!(file.pid(), gone);
    assert_eq!(leased6(&guest, &server), addr);
    let check = host.pipework(&["check", &guest.guest()]);
    assert_eq!(check.code, 0, "{check:?}");
    host.pipework(&["del", &guest.guest()]).ok();
    assert_eq!(others_in(&guest), Vec::<u32>::new());
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z"))
}

/// An external client's plain form: the address it configured stays (made
/// permanent), and none of its processes.
fn external_leases_and_leaves_no_client(ipspec: &str, br: &str) {
    let (host, server) = world(br);
    let guest = Netns::new();
    guest.ipv6_off_as_docker_does();
    let _files = Leftovers(vec![format!("/etc/dhclient/dhclient6.pid-{}.leases", guest.pid()).into()]);
    let run = host.pipework(&[br, &guest.guest(), ipspec]).ok();
    assert_eq!(run.stderr, "", "{ipspec}: {run:?}\n{}", server.log());
    let addr = leased6(&guest, &server);
    assert_eq!(others_in(&guest), Vec::<u32>::new(), "{ipspec}: no client left");
    let v = guest.ip_j(&["-6", "addr", "show", "dev", "eth1", "scope", "global"]);
    assert_eq!(v[0]["addr_info"][0]["valid_life_time"], 4294967295u32, "{ipspec}: {addr} kept: {v}");
    until_router_advertised(&guest);
}

#[test]
fn dhclient6_leases_and_is_stopped() {
    external_leases_and_leaves_no_client("dhclient6", "br6c");
}

#[test]
fn dhcpcd6_leases_and_leaves_no_daemon() {
    external_leases_and_leaves_no_client("dhcpcd6", "br6d");
}

#[test]
fn dhclient6_f_stays_renewing() {
    let (host, server) = world("br6e");
    let guest = Netns::new();
    let _files = Leftovers(vec![format!("/etc/dhclient/dhclient6.pid-{}.leases", guest.pid()).into()]);
    host.pipework(&["br6e", &guest.guest(), "dhclient6-f"]).ok();
    leased6(&guest, &server);
    let file = PidFile(format!("/var/run/dhclient6.pid-{}.pid", guest.pid()).into());
    assert_eq!(others_in(&guest), vec![file.pid()], "the pid file names the one client");
}

/// Real Docker containers, IPv6 off inside as Docker leaves it: one takes its
/// address with the built-in client, the other with `dhclient -6`; they ping.
#[test]
fn docker_containers_take_dhcpv6_addresses_and_ping_each_other() {
    let (host, server) = world("br6k");
    let (c1, c2) = (Container::run(), Container::run());
    let _files = Leftovers(vec![format!("/etc/dhclient/dhclient6.{}.leases", c2.name).into()]);
    host.pipework(&["br6k", &c1.name, "dhcp6"]).ok();
    host.pipework(&["br6k", &c2.name, "dhclient6"]).ok();
    let mut addrs = Vec::new();
    for c in [&c1, &c2] {
        assert_eq!(["eth1", "all", "default"].map(|d| c.ipv6_disabled(d)), ["0", "1", "1"], "only eth1");
        let shown = c.sh(&["ip", "-6", "addr", "show", "dev", "eth1"]);
        let addr = shown
            .split_whitespace()
            .find(|w| w.starts_with(&format!("{PREFIX}1")) && w.ends_with("/128"))
            .unwrap_or_else(|| panic!("no leased /128 in {shown}\n{}", server.log()))
            .trim_end_matches("/128")
            .to_string();
        addrs.push(addr);
    }
    for c in [&c1, &c2] {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !c.sh(&["ip", "-6", "route"]).contains(&format!("{PREFIX}/64 dev eth1")) {
            assert!(Instant::now() < deadline, "no on-link route from the advertisement");
            std::thread::sleep(Duration::from_millis(50));
        }
        c.until_dad_settles();
    }
    let ping = c1.exec(&["ping", "-6", "-c", "1", "-W", "3", &addrs[1]]);
    assert!(ping.status.success(), "ping6 {} -> {}: {ping:?}", addrs[0], addrs[1]);
}

/// A static IPv4 address and DHCPv6 in one attach.
#[test]
fn a_static_ipv4_address_beside_dhcp6() {
    let (host, server) = world("br6s");
    let guest = Netns::new();
    guest.ipv6_off_as_docker_does();
    host.pipework(&["br6s", &guest.guest(), "10.0.66.2/24@10.0.66.1,dhcp6"]).ok();
    assert!(guest.addrs("eth1").contains(&"10.0.66.2/24".into()));
    leased6(&guest, &server);
    assert!(guest.sh("ip", &["-4", "route"]).contains("default via 10.0.66.1 dev eth1"));
}

/// No server: the built-in client times out, and the static IPv4 address beside it,
/// IPv6 turned on for eth1, the veth and the bridge all go.
#[test]
fn without_a_server_dhcp6_times_out_and_everything_is_undone() {
    let host = Netns::new();
    let guest = Netns::new();
    guest.ipv6_off_as_docker_does();
    let (h, g) = (host.snapshot(), guest.snapshot());
    let started = Instant::now();
    let line = host.pipework(&["br6n", &guest.guest(), "10.0.66.2/24,dhcp6:timeout=3"]).failed();
    assert_eq!(
        line,
        format!(
            "pipework: cannot get a DHCP lease with dhcp6 on eth1 in guest {}: no DHCPv6 server answered on eth1 within 3 s",
            guest.guest()
        )
    );
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
    assert_eq!(others_in(&guest), Vec::<u32>::new());
}

#[test]
fn without_a_server_dhclient6_is_stopped_at_the_timeout_and_everything_is_undone() {
    let host = Netns::new();
    let guest = Netns::new();
    let _files = Leftovers(vec![format!("/etc/dhclient/dhclient6.pid-{}.leases", guest.pid()).into()]);
    let (h, g) = (host.snapshot(), guest.snapshot());
    let line = host.pipework(&["--timeout", "3", "br6m", &guest.guest(), "dhclient6"]).failed();
    assert!(line.ends_with("dhclient6 got no lease on eth1 within 3 s"), "{line}");
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
    assert_eq!(others_in(&guest), Vec::<u32>::new());
    let pid_file = format!("/var/run/dhclient6.pid-{}.pid", guest.pid());
    assert!(!std::path::Path::new(&pid_file).exists(), "{pid_file} left behind");
}

#[test]
fn dry_run_shows_the_router_advertisements_and_the_client() {
    let host = Netns::new();
    let guest = Netns::new();
    let p = guest.pid();
    let out = host.pipework(&["--dry-run", "br1", &guest.guest(), "dhclient6-f"]).ok().stdout;
    let want = format!(
        "guest: sysctl -w net.ipv6.conf.eth1.accept_ra=1 net.ipv6.conf.eth1.ndisc_notify=1; dhclient -6 eth1 \
         -pf /var/run/dhclient6.pid-{p}.pid -lf /etc/dhclient/dhclient6.pid-{p}.leases"
    );
    assert_eq!(out.lines().last(), Some(want.as_str()), "{out}");
    assert!(out.contains("disable_ipv6=0"), "{out}");
    let out = host.pipework(&["--dry-run", "br1", &guest.guest(), "dhcp6-f:renew=5"]).ok().stdout;
    assert!(out.ends_with("dhcp6-f (built-in) -i eth1 renew=5\n"), "{out}");
}

/// A measurement, run by hand (`cargo test --test it dhcp6::timing -- --ignored
/// --nocapture`): the wall time of `dhcp6` and `slaac` attaches against dnsmasq, each
/// on a fresh guest, printed side by side.
#[test]
#[ignore]
fn timing_of_dhcp6_and_slaac_attaches() {
    const RUNS: usize = 7;
    let (host, server) = world("br6t");
    host.sh("ip", &["link", "add", "br6r", "type", "bridge"]);
    host.sh("ip", &["link", "set", "br6r", "up"]);
    let _router = crate::dhcp::Dnsmasq::router(&host, "br6r");
    let mut times = Vec::new();
    for (br, ipspec) in [("br6t", "dhcp6"), ("br6r", "slaac"), ("br6t", "dhclient6"), ("br6t", "dhcpcd6")] {
        let mut ms: Vec<u128> = (0..RUNS)
            .map(|_| {
                let guest = Netns::new();
                let _files =
                    Leftovers(vec![format!("/etc/dhclient/dhclient6.pid-{}.leases", guest.pid()).into()]);
                let started = Instant::now();
                let run = host.pipework(&[br, &guest.guest(), ipspec]);
                let took = started.elapsed().as_millis();
                assert_eq!(run.code, 0, "{ipspec}: {run:?}\n{}", server.log());
                took
            })
            .collect();
        ms.sort();
        times.push(format!(
            "{ipspec:>9}: min {} ms, median {} ms, max {} ms ({RUNS} runs: {ms:?})",
            ms[0],
            ms[RUNS / 2],
            ms[RUNS - 1]
        ));
    }
    println!("{}", times.join("\n"));
}

/// The leased address is announced as a static one is: the kernel's unsolicited
/// neighbour advertisement once it is past DAD (`ndisc_notify`), seen by a peer.
#[test]
fn the_leased_address_is_announced_to_the_neighbours() {
    let (host, server) = world("br6u");
    let peer = Netns::new();
    host.pipework(&["br6u", "-i", "eth9", &peer.guest(), "0/0"]).ok();
    crate::announce::until_every_port_forwards(&host, "br6u");
    // Unsolicited advertisements (to all nodes) for a target in PREFIX.
    let filter = "icmp6 and ip6[40] == 136 and ip6 dst ff02::1 and ip6[48:4] == 0xfd000066";
    let dump = crate::announce::Tcpdump::start(&peer, "eth9", filter);
    let guest = Netns::new();
    host.pipework(&["br6u", &guest.guest(), "dhcp6", "02:00:00:0a:00:66"]).ok();
    let addr = leased6(&guest, &server);
    let packet = dump.packet();
    for part in ["02:00:00:0a:00:66 > 33:33:00:00:00:01", &format!("tgt is {addr}"), "Flags [override]"] {
        assert!(packet.contains(part), "expected {part:?} in:\n{packet}");
    }
}

/// Both families by DHCP in one attach, each from its own dnsmasq on the bridge.
#[test]
fn dhcp4_and_dhcp6_in_one_attach() {
    let host = Netns::new();
    let v4 = crate::dhcp::Dnsmasq::start(&host);
    let v6 = Dnsmasq::dhcp6(&host, "br1");
    let guest = Netns::new();
    guest.ipv6_off_as_docker_does();
    let run = host.pipework(&["br1", &guest.guest(), "dhcp4,dhcp6:timeout=10"]).ok();
    assert_eq!(run.stderr, "", "{run:?}\n{}\n{}", v4.log(), v6.log());
    crate::dhcp::leased(&guest);
    leased6(&guest, &v6);
}

/// The DHCPv4 lease taken, then no DHCPv6 server: the lease goes with the rest.
#[test]
fn a_dhcp4_lease_is_undone_when_dhcp6_then_fails() {
    let host = Netns::new();
    let v4 = crate::dhcp::Dnsmasq::start(&host);
    let guest = Netns::new();
    let (h, g) = (host.snapshot(), guest.snapshot());
    let line = host.pipework(&["br1", &guest.guest(), "dhcp4,dhcp6:timeout=2"]).failed();
    assert!(line.ends_with("no DHCPv6 server answered on eth1 within 2 s"), "{line}");
    assert!(v4.log().contains("DHCPACK(eth1)"), "the IPv4 lease was taken first:\n{}", v4.log());
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
    assert_eq!(others_in(&guest), Vec::<u32>::new());
}

/// The leased /128 in `c`'s eth1.
fn leased6_in(c: &Container, server: &Dnsmasq) -> String {
    let shown = c.sh(&["ip", "-6", "addr", "show", "dev", "eth1"]);
    let addr = shown.split_whitespace().find(|w| w.starts_with(&format!("{PREFIX}1")) && w.ends_with("/128"));
    let addr = addr.unwrap_or_else(|| panic!("no leased /128 in {shown}\n{}", server.log()));
    addr.trim_end_matches("/128").to_string()
}

/// `dhcp6:dns` writes the lease's name servers (option 23) and search domains (24)
/// into a Docker container's own resolv.conf, put back by `del`; and the DUID is the
/// container's name's (DUID-UUID, type 4, as its DHCPv4 client identifier), so the
/// container restarted and attached again with a new MAC gets the same address.
#[test]
fn dhcp6_dns_writes_the_containers_resolv_conf_and_its_duid_is_its_names() {
    let (host, server) = {
        let host = Netns::new();
        host.sh("ip", &["link", "add", "br6d", "type", "bridge"]);
        host.sh("ip", &["link", "set", "br6d", "up"]);
        let server_opt = format!("--dhcp-option=option6:dns-server,[{PREFIX}53]");
        let dns = [server_opt.as_str(), "--dhcp-option=option6:domain-search,v6.example.test"];
        let server = Dnsmasq::dhcp6_with(&host, "br6d", &dns);
        (host, server)
    };
    let c = Container::run();
    let original = c.sh(&["cat", "/etc/resolv.conf"]);
    host.pipework(&["br6d", &c.name, "dhcp6:dns", "02:00:00:28:06:01"]).ok();
    let first = leased6_in(&c, &server);
    let written = c.sh(&["cat", "/etc/resolv.conf"]);
    eprintln!("eth1 02:00:00:28:06:01 leased {first}; the container's resolv.conf:\n{written}");
    assert!(written.contains(&format!("nameserver {PREFIX}53\n")), "{written}");
    assert!(written.contains("search v6.example.test\n"), "{written}");
    host.pipework(&["del", &c.name]).ok();
    assert_eq!(c.sh(&["cat", "/etc/resolv.conf"]), original, "del did not put resolv.conf back");
    let leases = server.leases();
    assert!(leases.contains(" 00:04:"), "a DUID-UUID in dnsmasq's leases:\n{leases}");
    let out = std::process::Command::new("docker").args(["restart", "-t", "0", &c.name]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    host.pipework(&["br6d", &c.name, "dhcp6", "02:00:00:28:06:02"]).ok();
    let again = leased6_in(&c, &server);
    eprintln!("after docker restart, eth1 02:00:00:28:06:02 leased {again}");
    assert_eq!(again, first, "a new MAC got another address:\n{}", server.leases());
    host.pipework(&["del", &c.name]).ok();
}
