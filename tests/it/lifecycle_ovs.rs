//! `ls`, `del` and `gc` on Open vSwitch ports, with their own ovsdb/vswitchd: the
//! mark's `vlan=` (the port's tag) shown by `ls`, a port that the original pipework
//! made (its `pipework.*` external ids, no alias) deleted by `del`, and a port whose
//! guest is gone listed as stale by `ls` until `gc` removes it.

use serde_json::Value;

use crate::ovs::Ovs;
use crate::util::{assert_same, Netns};

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn ls(ovs: &Ovs, host: &Netns) -> Vec<Value> {
    json(&ovs.pipework(host, &["ls", "--json"]).ok().stdout)["attachments"].as_array().unwrap().clone()
}

#[test]
fn the_mark_holds_the_tag_and_ls_shows_it_until_gc_takes_the_port_of_a_gone_guest() {
    let host = Netns::new();
    let ovs = Ovs::start(&host);
    ovs.bridge("ovsbr0");
    let mut guest = Netns::new();
    ovs.pipework(&host, &["ovsbr0", &guest.guest(), "192.168.1.2/24", "@10"]).ok();
    let port = format!("veth1pl{}", guest.pid());
    let alias = host.link(&port).unwrap()["ifalias"].as_str().unwrap().to_string();
    assert!(alias.ends_with(" host=ovsbr0 mode=ovs vlan=10"), "{alias}");
    // Other tests' guests with marks inside may be listed too: this one's by its port.
    let listed: Vec<Value> = ls(&ovs, &host).into_iter().filter(|e| e["host_end"] == port.as_str()).collect();
    assert_eq!(
        (listed.len(), listed[0]["vlan"].as_u64(), listed[0]["stale"].as_bool()),
        (1, Some(10), Some(false))
    );
    let human = ovs.pipework(&host, &["ls"]).ok().stdout;
    assert!(human.lines().any(|l| l.contains(&port) && l.contains(" ovs ")), "{human}");
    let gone = guest.guest();
    guest.end();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while host.link(&port).is_some() {
        assert!(std::time::Instant::now() < deadline, "{port} outlived its namespace");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The port stays in the OVS database: listed as stale, from its external ids.
    let listed = ls(&ovs, &host);
    let want = (Some(gone.as_str()), Some(port.as_str()), Some(10), Some(true), Some(""));
    let e = listed.iter().find(|e| e["host_end"] == port.as_str()).unwrap_or_else(|| panic!("{listed:?}"));
    let got = (
        e["guest"].as_str(),
        e["host_end"].as_str(),
        e["vlan"].as_u64(),
        e["stale"].as_bool(),
        e["container_if"].as_str(),
    );
    assert_eq!(got, want, "{e}");
    ovs.pipework(&host, &["gc"]).ok();
    assert_eq!(ovs.vsctl_ok(&["list-ports", "ovsbr0"]), "");
    assert!(ls(&ovs, &host).iter().all(|e| e["host_end"] != port.as_str()));
}

#[test]
fn del_removes_a_port_that_the_original_pipework_made_found_by_its_external_ids() {
    let host = Netns::new();
    let ovs = Ovs::start(&host);
    ovs.bridge("ovsbr0");
    let guest = Netns::new();
    let (h, g) = (host.snapshot(), guest.snapshot());
    // As the original script attaches: a veth, the peer in the guest as eth1, the
    // host end a tagged port with its ids; no alias.
    let end = format!("veth1pl{}", guest.pid());
    let netns = guest.path();
    host.sh("ip", &["link", "add", &end, "type", "veth", "peer", "name", "eth1", "netns", &netns]);
    host.sh("ip", &["link", "set", &end, "up"]);
    let pid = guest.pid().to_string();
    let ids = [
        format!("external-ids:pipework.interface={end}"),
        "external-ids:pipework.bridge=ovsbr0".into(),
        format!("external-ids:pipework.nspid={pid}"),
        "external-ids:pipework.vlan=20".into(),
    ];
    let mut args = vec!["add-port", "ovsbr0", &end, "tag=20", "--", "set", "Interface", &end];
    args.extend(ids.iter().map(String::as_str));
    ovs.vsctl_ok(&args);
    // ls finds it by its ids too, with its tag.
    let listed: Vec<Value> = ls(&ovs, &host).into_iter().filter(|e| e["host_end"] == end.as_str()).collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let e = &listed[0];
    let got = (e["guest"].as_str(), e["container_if"].as_str(), e["vlan"].as_u64(), e["stale"].as_bool());
    assert_eq!(got, (Some(guest.guest().as_str()), Some("eth1"), Some(20), Some(false)), "{e}");
    let v = json(&ovs.pipework(&host, &["del", &guest.guest(), "--json"]).ok().stdout);
    assert_eq!(
        (v["host_if"].as_str(), v["host_end"].as_str(), v["kind"].as_str()),
        (Some("ovsbr0"), Some(end.as_str()), Some("ovs")),
        "{v}"
    );
    assert_eq!(ovs.vsctl_ok(&["list-ports", "ovsbr0"]), "", "the port record is gone");
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
    // Another guest's port is refused.
    let other = Netns::new();
    let netns = other.path();
    host.sh("ip", &["link", "add", &end, "type", "veth", "peer", "name", "eth1", "netns", &netns]);
    ovs.vsctl_ok(&args);
    let line = ovs.pipework(&host, &["del", &other.guest()]).failed();
    assert!(line.contains("not made by pipework"), "{line}");
    assert!(ovs.vsctl_ok(&["list-ports", "ovsbr0"]).contains(&end));
    ovs.vsctl_ok(&["del-port", "ovsbr0", &end]);
}
