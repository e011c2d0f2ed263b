//! Who reaches whom, with real Docker containers (Docker's defaults): `--isolated`
//! ports on one bridge, and `--host-shim` for a macvlan's host. Each test prints its
//! ping matrix (`cargo test --test it docker_reach -- --nocapture`).

use serde_json::Value;

use crate::docker::Container;
use crate::util::Netns;

/// A pinger and the addresses it tries.
pub(crate) trait Pinger {
    fn pings(&self, addr: &str) -> bool;
}

impl Pinger for Container {
    fn pings(&self, addr: &str) -> bool {
        self.exec(&["ping", "-c", "1", "-W", "2", addr]).status.success()
    }
}

/// The test's host namespace, as a pinger.
pub(crate) struct Host<'a>(pub &'a Netns);

impl Pinger for Host<'_> {
    fn pings(&self, addr: &str) -> bool {
        self.0.run("ping", &["-c", "1", "-W", "2", addr]).status.success()
    }
}

/// Each pinger against each target (`(label, address)`), printed as a table;
/// `true` where it reached.
pub(crate) fn matrix(title: &str, from: &[(&str, &dyn Pinger)], to: &[(&str, &str)]) -> Vec<Vec<bool>> {
    let mut out = Vec::new();
    let mut lines =
        vec![format!("{title}\n{:<12}{}", "from \\ to", cells(to.iter().map(|t| t.0.to_string())))];
    for (label, p) in from {
        let row: Vec<bool> = to.iter().map(|(l, addr)| l == label || p.pings(addr)).collect();
        let marks = to.iter().zip(&row).map(|((l, _), ok)| match (l == label, ok) {
            (true, _) => "-".to_string(),
            (false, true) => "yes".to_string(),
            (false, false) => "no".to_string(),
        });
        lines.push(format!("{label:<12}{}", cells(marks)));
        out.push(row);
    }
    println!("{}\n", lines.join("\n"));
    out
}

fn cells(c: impl Iterator<Item = String>) -> String {
    c.map(|c| format!("{c:<12}")).collect::<Vec<_>>().join("").trim_end().to_string()
}

#[test]
fn docker_isolated_ports_reach_the_others_and_the_bridge_but_not_each_other() {
    let host = Netns::new();
    let (a, b, c) = (Container::run(), Container::run(), Container::run());
    let dry = host.pipework(&["--dry-run", "--isolated", "br1", &a.name, "10.7.0.2/24"]).ok();
    assert!(dry.stdout.contains(&format!("bridge link set dev veth1pl{} isolated on", a.pid())), "{dry:?}");
    let json = host.pipework(&["--json", "--isolated", "br1", &a.name, "10.7.0.2/24"]).ok();
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["interfaces"][0]["isolated"], true, "{v}");
    host.pipework(&["--isolated", "br1", &b.name, "10.7.0.3/24"]).ok();
    host.pipework(&["br1", &c.name, "10.7.0.4/24"]).ok();
    host.sh("ip", &["addr", "add", "10.7.0.1/24", "dev", "br1"]);
    let port = host.ip_j(&["-d", "link", "show", "dev", &format!("veth1pl{}", a.pid())]);
    assert_eq!(port[0]["linkinfo"]["info_slave_data"]["isolated"], true, "{port}");

    let to = [("a (iso)", "10.7.0.2"), ("b (iso)", "10.7.0.3"), ("c", "10.7.0.4"), ("host br1", "10.7.0.1")];
    let from: [(&str, &dyn Pinger); 4] =
        [("a (iso)", &a), ("b (iso)", &b), ("c", &c), ("host br1", &Host(&host))];
    let m = matrix("--isolated: a and b isolated ports of br1, c not", &from, &to);
    assert_eq!(
        m,
        [
            [true, false, true, true],
            [false, true, true, true],
            [true, true, true, true],
            [true, true, true, true],
        ],
        "who reaches whom"
    );

    // `ls` and `check` show and compare it; `del` as usual.
    let ls = host.pipework(&["ls"]).ok();
    assert_eq!(ls.stdout.matches("bridge,isolated").count(), 2, "{ls:?}");
    let listed: Value = serde_json::from_str(&host.pipework(&["ls", "--json"]).ok().stdout).unwrap();
    let isolated = |name: &str| {
        let entries = listed["attachments"].as_array().unwrap();
        entries.iter().find(|e| e["container_name"] == name).map(|e| e["isolated"].clone())
    };
    assert_eq!((isolated(&a.name), isolated(&c.name)), (Some(true.into()), Some(false.into())));
    host.pipework(&["check", &a.name]).ok();
    host.sh(
        "ip",
        &["link", "set", "dev", &format!("veth1pl{}", a.pid()), "type", "bridge_slave", "isolated", "off"],
    );
    let e = host.pipework(&["check", &a.name]).failed();
    assert!(e.ends_with("is no longer an isolated port"), "{e}");
    for g in [&a, &b, &c] {
        host.pipework(&["del", &g.name]).ok();
    }
}

#[test]
fn docker_isolated_on_a_nic_is_refused_before_any_change() {
    let host = Netns::new();
    let c = Container::run();
    host.sh("ip", &["link", "add", "nic0", "type", "veth", "peer", "name", "nic0p"]);
    let before = host.snapshot();
    let e = host.pipework(&["--isolated", "nic0", &c.name, "10.7.1.2/24"]).failed();
    assert_eq!(
        e,
        "pipework: --isolated works on a Linux bridge attach only, not on nic0, a physical (macvlan) attach"
    );
    crate::util::assert_same("host", &before, &host.snapshot());
}

/// A host with a stand-in NIC `nic0` (10.8.N.1/24), a veth whose peer is in
/// `outside` (10.8.N.254/24), as the machine on the other end of the wire.
fn host_with_wire(n: u8) -> (Netns, Netns) {
    let (host, outside) = (Netns::new(), Netns::new());
    host.sh("ip", &["link", "add", "nic0", "type", "veth", "peer", "name", "wire0"]);
    host.sh("ip", &["link", "set", "wire0", "netns", &outside.pid().to_string()]);
    host.sh("ip", &["addr", "add", &format!("10.8.{n}.1/24"), "dev", "nic0"]);
    host.sh("ip", &["link", "set", "nic0", "up"]);
    outside.sh("ip", &["addr", "add", &format!("10.8.{n}.254/24"), "dev", "wire0"]);
    outside.sh("ip", &["link", "set", "wire0", "up"]);
    (host, outside)
}

/// The host's addresses and routes, as `ip -j` gives them (without lifetimes).
fn addresses_and_routes(host: &Netns) -> String {
    host.until_dad_settles();
    let mut parts = Vec::new();
    for args in [
        &["addr", "show"][..],
        &["route", "show", "table", "all"][..],
        &["-6", "route", "show", "table", "all"][..],
    ] {
        let mut v = host.ip_j(args);
        for a in v.as_array_mut().into_iter().flatten() {
            for info in a["addr_info"].as_array_mut().into_iter().flatten() {
                if let Some(o) = info.as_object_mut() {
                    o.remove("valid_life_time");
                    o.remove("preferred_life_time");
                }
            }
        }
        parts.push(format!("{args:?}: {v}"));
    }
    parts.join("\n")
}

#[test]
fn docker_macvlan_guests_reach_the_host_through_its_shim_and_del_puts_it_back() {
    let (host, outside) = host_with_wire(1);
    let (a, b) = (Container::run(), Container::run());
    let before = addresses_and_routes(&host);
    let to = [("a", "10.8.1.2"), ("b", "10.8.1.3"), ("host", "10.8.1.1"), ("outside", "10.8.1.254")];
    let from = |title: &str, a: &Container, b: &Container| -> Vec<Vec<bool>> {
        let h = Host(&host);
        let o = Host(&outside);
        let from: [(&str, &dyn Pinger); 4] = [("a", a), ("b", b), ("host", &h), ("outside", &o)];
        matrix(title, &from, &to)
    };

    host.pipework(&["nic0", &a.name, "10.8.1.2/24"]).ok();
    host.pipework(&["nic0", &b.name, "10.8.1.3/24"]).ok();
    let without = from("macvlan on nic0 (10.8.1.1 on nic0), no shim:", &a, &b);
    assert_eq!(
        without,
        [
            [true, true, false, true],
            [true, true, false, true],
            [false, false, true, true],
            [true, true, true, true],
        ],
        "the host and its macvlan guests do not reach each other"
    );
    host.pipework(&["del", &a.name]).ok();
    host.pipework(&["del", &b.name]).ok();
    crate::util::assert_same("host after the dels without a shim", &before, &addresses_and_routes(&host));

    let dry = host.pipework(&["--dry-run", "nic0", &a.name, "10.8.1.2/24", "--host-shim"]).ok().stdout;
    assert!(dry.contains("ip link add link nic0 name pwshim-nic0 up type macvlan mode bridge"), "{dry}");
    assert!(
        dry.contains("ip addr add 10.8.1.1/24 dev pwshim-nic0; ip addr del 10.8.1.1/24 dev nic0"),
        "{dry}"
    );
    assert!(dry.contains("ip route add 10.8.1.2/32 dev pwshim-nic0"), "{dry}");
    host.pipework(&["nic0", &a.name, "10.8.1.2/24", "--host-shim"]).ok();
    let json = host.pipework(&["--json", "nic0", &b.name, "10.8.1.3/24", "--host-shim"]).ok();
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["host_shim"], serde_json::json!({"name": "pwshim-nic0", "routes": ["10.8.1.3/32"]}), "{v}");
    let v4 = |dev: &str| host.addrs(dev).into_iter().filter(|a| a.contains('.')).collect::<Vec<_>>();
    assert_eq!(v4("pwshim-nic0"), ["10.8.1.1/24"], "the host's address moved to the shim");
    assert!(v4("nic0").is_empty());
    let with = from("macvlan on nic0, --host-shim (10.8.1.1 moved to pwshim-nic0):", &a, &b);
    assert_eq!(with, [[true; 4]; 4], "everyone reaches everyone");
    let ls = host.pipework(&["ls"]).ok().stdout;
    assert_eq!(ls.matches("macvlan,shim=pwshim-nic0").count(), 2, "{ls}");
    host.pipework(&["check", &a.name]).ok();
    host.pipework(&["--host-shim", "nic0", &a.name, "10.8.1.2/24"]).ok();

    // The shim stays with its last guest, and goes with it.
    host.pipework(&["del", &a.name]).ok();
    assert!(host.link("pwshim-nic0").is_some());
    assert!(Host(&host).pings("10.8.1.3") && !Host(&host).pings("10.8.1.2"));
    host.pipework(&["del", &b.name]).ok();
    assert!(host.link("pwshim-nic0").is_none());
    crate::util::assert_same("host after the dels", &before, &addresses_and_routes(&host));
}

#[test]
fn docker_host_shim_refusals_change_nothing() {
    let (host, _outside) = host_with_wire(2);
    let c = Container::run();
    host.sh("ip", &["link", "add", "hs0", "type", "veth", "peer", "name", "hs0p"]);
    let before = host.snapshot();
    let refused = |args: &[&str]| host.pipework(args).failed();
    assert_eq!(
        refused(&["--host-shim", "br1", &c.name, "10.8.2.2/24"]),
        "pipework: --host-shim works on a macvlan attach (a NIC as HOSTIF) only, not on br1, a bridge attach"
    );
    assert_eq!(
        refused(&["--host-shim", "--direct-phys", "nic0", &c.name, "10.8.2.2/24"]),
        "pipework: --host-shim works on a macvlan attach (a NIC as HOSTIF) only, not on a --direct-phys attach"
    );
    assert!(refused(&["--host-shim=hs0", "nic0", &c.name, "10.8.2.2/24"])
        .contains("hs0 exists and is not a shim pipework made"));
    assert_eq!(
        refused(&["--host-shim", "--host-shim-addr", "10.8.2.1/24", "nic0", &c.name, "10.8.2.2/24"]),
        "pipework: --host-shim-addr 10.8.2.1/24: 10.8.2.1 is already on nic0"
    );
    assert!(refused(&["--host-shim", "nic0", &c.name, "dhcp"]).contains("needs a static IPSPEC"));
    crate::util::assert_same("host", &before, &host.snapshot());
}

/// Two attaches with `--host-shim` on one parent at once make one shim, routed to
/// both; two `del`s at once remove it once, the address back on the parent. Pid
/// guests: six rounds, as races need.
#[test]
fn concurrent_host_shim_attaches_and_dels_share_one_shim() {
    let (host, _outside) = host_with_wire(3);
    let before = addresses_and_routes(&host);
    for round in 0..6 {
        let (g1, g2) = (Netns::new(), Netns::new());
        let spawn = |g: &Netns, ip: &str| host.spawn_pipework(&["--host-shim", "nic0", &g.guest(), ip]);
        let both = [spawn(&g1, "10.8.3.2/24"), spawn(&g2, "10.8.3.3/24")];
        for child in both {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let shims: Vec<String> = host
            .ip_j(&["link", "show", "type", "macvlan"])
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["ifname"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(shims, ["pwshim-nic0"], "round {round}: one shim");
        for ip in ["10.8.3.2", "10.8.3.3"] {
            let r = host.ip_j(&["route", "show", &format!("{ip}/32")]);
            assert_eq!(r[0]["dev"], "pwshim-nic0", "round {round}: {r}");
            assert!(host.ping(ip), "round {round}: the host reaches {ip}");
        }
        let dels = [&g1, &g2].map(|g| host.spawn_pipework(&["del", &g.guest()]));
        for child in dels {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
        }
        assert!(host.link("pwshim-nic0").is_none(), "round {round}: the shim went with its last guest");
        crate::util::assert_same("host after both dels", &before, &addresses_and_routes(&host));
    }
}

/// `check` says when a shimmed guest's host route is gone; `gc` removes what a gone
/// guest left through its shim (its route, and the shim with it, the address back).
#[test]
fn check_and_gc_of_a_shimmed_guest() {
    let (host, _outside) = host_with_wire(4);
    let before = addresses_and_routes(&host);
    let mut g = Netns::new();
    host.pipework(&["--host-shim", "nic0", &g.guest(), "10.8.4.2/24"]).ok();
    host.pipework(&["check", &g.guest()]).ok();
    host.sh("ip", &["route", "del", "10.8.4.2/32", "dev", "pwshim-nic0"]);
    let e = host.pipework(&["check", &g.guest()]).failed();
    assert!(e.ends_with("the host route to 10.8.4.2 via pwshim-nic0 is gone"), "{e}");
    host.sh("ip", &["route", "add", "10.8.4.2/32", "dev", "pwshim-nic0"]);
    g.end();
    let gc = host.pipework(&["gc"]).ok();
    assert!(gc.stderr.contains("removed host shim route ip route del 10.8.4.2/32 dev pwshim-nic0"), "{gc:?}");
    assert!(host.link("pwshim-nic0").is_none(), "the shim went with its last guest");
    crate::util::assert_same("host after gc", &before, &addresses_and_routes(&host));
}

/// A shimmed guest whose record is gone (lost, or never written): `del` finds its
/// host route by the shim's mark and the guest's address, and the shim goes with it.
#[test]
fn del_without_a_record_removes_the_guests_shim_route_and_the_shim() {
    let (host, _outside) = host_with_wire(5);
    let before = addresses_and_routes(&host);
    let g = Netns::new();
    host.pipework(&["--host-shim", "nic0", &g.guest(), "10.8.5.2/24"]).ok();
    let dir = host.run_dir().join("attachments");
    for f in std::fs::read_dir(&dir).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    host.pipework(&["del", &g.guest()]).ok();
    assert!(host.link("pwshim-nic0").is_none(), "the shim went with its last guest");
    crate::util::assert_same("host after del", &before, &addresses_and_routes(&host));
}

/// The parent's routes (the host's default route, a static one) would go with its
/// address, which the kernel flushes them with: they go through the shim while it
/// has the address, and are back on the parent after `del`, as they were.
#[test]
fn the_parents_routes_stay_through_the_shim_and_come_back() {
    let (host, _outside) = host_with_wire(6);
    host.sh("ip", &["route", "add", "default", "via", "10.8.6.254", "dev", "nic0"]);
    host.sh("ip", &["route", "add", "198.51.100.0/24", "via", "10.8.6.253", "metric", "50"]);
    let before = addresses_and_routes(&host);
    let g = Netns::new();
    host.pipework(&["--host-shim", "nic0", &g.guest(), "10.8.6.2/24"]).ok();
    let default = host.ip_j(&["route", "show", "default"]);
    assert_eq!(
        (&default[0]["dev"], &default[0]["gateway"]),
        (&"pwshim-nic0".into(), &"10.8.6.254".into()),
        "{default}"
    );
    let r = host.ip_j(&["route", "show", "198.51.100.0/24"]);
    assert_eq!((&r[0]["dev"], &r[0]["metric"]), (&"pwshim-nic0".into(), &50.into()), "{r}");
    host.pipework(&["del", &g.guest()]).ok();
    assert!(host.link("pwshim-nic0").is_none());
    crate::util::assert_same("host after del", &before, &addresses_and_routes(&host));
}
