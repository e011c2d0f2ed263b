//! The closing session of issue 13, on real Docker containers: three guests
//! attached (a Linux bridge with a `dhcp4-f` lease from dnsmasq, a macvlan, an Open
//! vSwitch port with a tag), `pipework ls`, one container stopped, `pipework gc`,
//! `pipework del` of the others (its host end and Open vSwitch port go, as its record
//! does); then the host's `ip -j`, `ovs-vsctl show` and the
//! remaining containers are as before the first attach, and no keeper is left.
//! pipework runs in the test's host namespace, the containers' host ends there too.
//! Run with `--nocapture` to see the session.

use std::process::Command;

use crate::dhcp::{is_gone, Dnsmasq};
use crate::docker::Container;
use crate::lifecycle::snapshot_at;
use crate::ovs::Ovs;
use crate::util::{assert_same, Netns};

/// Run pipework in `host` (with its own Open vSwitch) and show the session line.
fn session(ovs: &Ovs, host: &Netns, args: &[&str]) -> String {
    let run = ovs.pipework(host, args).ok();
    println!("$ pipework {}", args.join(" "));
    print!("{}{}", run.stdout, run.stderr);
    run.stdout + &run.stderr
}

#[test]
fn three_guests_ls_stop_one_gc_del_the_others_and_all_is_as_before() {
    let host = Netns::new();
    host.sh("ip", &["link", "add", "eth2", "up", "type", "veth", "peer", "name", "eth2p"]);
    host.sh("ip", &["link", "set", "eth2p", "up"]);
    let server = Dnsmasq::start(&host);
    let ovs = Ovs::start(&host);
    ovs.bridge("ovsbr0");
    let (a, b, c) = (Container::run(), Container::run(), Container::run());
    let (net_a, net_b) = (format!("/proc/{}/ns/net", a.pid()), format!("/proc/{}/ns/net", b.pid()));
    let (h, o) = (host.snapshot(), ovs.vsctl_ok(&["show"]));
    let (ga, gb) = (snapshot_at(&net_a), snapshot_at(&net_b));

    session(&ovs, &host, &["br1", &a.name, "dhcp4-f"]);
    session(&ovs, &host, &["eth2", &b.name, "10.9.0.2/24"]);
    session(&ovs, &host, &["ovsbr0", &c.name, "192.168.5.2/24", "@10"]);
    let v: serde_json::Value =
        serde_json::from_str(&ovs.pipework(&host, &["ls", a.name.as_str(), "--json"]).ok().stdout).unwrap();
    let keeper = v["attachments"][0]["dhcp"][0]["pids"][0].as_u64().unwrap_or_else(|| panic!("{v}")) as u32;
    let listed = ovs.pipework(&host, &["ls"]).ok().stdout;
    println!("$ pipework ls   (this test's containers)");
    let ours: Vec<&str> = listed
        .lines()
        .filter(|l| {
            l.starts_with("GUEST") || [&a.name, &b.name, &c.name].iter().any(|n| l.starts_with(n.as_str()))
        })
        .collect();
    println!("{}", ours.join("\n"));
    assert_eq!(ours.len(), 4, "{listed}");
    let row = |n: &str| ours.iter().find(|l| l.starts_with(n)).unwrap().to_string();
    assert!(
        row(&a.name).contains(" bridge ")
            && row(&a.name).contains(" dhcp4:running ")
            && row(&a.name).ends_with("ok")
    );
    assert!(row(&b.name).contains(" macvlan ") && row(&b.name).contains("10.9.0.2/24"));
    assert!(row(&c.name).contains(" ovs ") && row(&c.name).contains(" 10 "), "VLAN 10: {}", row(&c.name));

    // Held open, the stopped container's namespace keeps its number (and its veth):
    // another test's new namespace under a freed number would make the guest look
    // alive, and gc keeps what it cannot prove gone.
    let end_c = format!("veth1pl{}", c.pid());
    let held = std::fs::File::open(format!("/proc/{}/ns/net", c.pid())).unwrap();
    println!("$ docker stop {}", c.name);
    let stopped = Command::new("docker").args(["stop", "-t", "2", &c.name]).output().unwrap();
    assert!(stopped.status.success(), "{stopped:?}");
    let gc = session(&ovs, &host, &["gc"]);
    assert!(gc.contains(&format!("removed Open vSwitch port {end_c} (guest docker:")), "{gc}");
    assert!(
        gc.contains(&format!("removed host end {end_c} (guest docker:")) && gc.contains("removed record "),
        "{gc}"
    );
    drop(held);
    let del_a = session(&ovs, &host, &["del", &a.name]);
    assert!(del_a.contains(&format!("stopped the DHCP client dhcp4 (pid {keeper})")), "{del_a}");
    session(&ovs, &host, &["del", &b.name]);
    let after = ovs.pipework(&host, &["ls"]).ok().stdout;
    assert!(![&a.name, &b.name, &c.name].iter().any(|n| after.contains(n.as_str())), "{after}");
    assert!(is_gone(keeper), "the keeper outlived del");
    server.wait_for_log(" DHCPRELEASE(eth1) ");

    assert_same("host", &h, &host.snapshot());
    assert_same("ovs-vsctl show", &o, &ovs.vsctl_ok(&["show"]));
    assert_same("container a", &ga, &snapshot_at(&net_a));
    assert_same("container b", &gb, &snapshot_at(&net_b));
    println!("host ip -j, ovs-vsctl show and both containers' ip -j: as before the first attach");
}
