//! Re-running: harmless when the state already matches; the original's refusal
//! otherwise; a down veth left behind is rebuilt; racing runs share a new bridge.

use crate::util::{assert_rerun_changes_nothing, assert_same, Netns};

#[test]
fn the_same_command_twice_changes_nothing_the_second_time() {
    let host = Netns::new();
    let guest = Netns::new();
    let args = ["br1", &guest.guest(), "10.0.0.2/24@10.0.0.1", "U:web1"];
    assert_rerun_changes_nothing(&host, &guest, &args);
}

#[test]
fn an_existing_up_host_end_for_something_else_is_refused() {
    let host = Netns::new();
    let guest = Netns::new();
    host.pipework(&["br1", &guest.guest(), "10.0.0.2/24"]).ok();
    let (h, g) = (host.snapshot(), guest.snapshot());
    let local = format!("veth1pl{}", guest.pid());
    for other in [
        vec!["br1", &guest.guest(), "10.0.0.3/24"],
        vec!["br1", &guest.guest(), "10.0.0.2/24", "02:00:00:00:00:07"],
        // Another bridge: refused before that bridge is created.
        vec!["br2", &guest.guest(), "10.0.0.2/24"],
    ] {
        let line = host.pipework(&other).failed();
        assert_eq!(line, format!("pipework: Link {local} exists and is up"), "{other:?}");
    }
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
    assert!(host.link("br2").is_none());
}

#[test]
fn a_down_host_end_is_deleted_and_built_again() {
    let host = Netns::new();
    let guest = Netns::new();
    host.pipework(&["br1", &guest.guest(), "10.0.0.2/24"]).ok();
    let local = format!("veth1pl{}", guest.pid());
    let before = host.link(&local).unwrap()["ifindex"].clone();
    host.sh("ip", &["link", "set", &local, "down"]);
    host.pipework(&["br1", &guest.guest(), "10.0.0.2/24"]).ok();
    let after = host.link(&local).expect("rebuilt");
    assert_ne!(after["ifindex"], before, "the veth should be a new one");
    assert_eq!(after["master"], "br1");
    assert!(guest.addrs("eth1").contains(&"10.0.0.2/24".to_string()));
}

#[test]
fn a_down_host_end_that_is_not_a_veth_is_refused() {
    let host = Netns::new();
    let guest = Netns::new();
    let local = format!("veth1pl{}", guest.pid());
    host.sh("ip", &["link", "add", &local, "type", "bridge"]);
    let line = host.pipework(&["br1", &guest.guest(), "10.0.0.2/24"]).failed();
    assert!(line.contains("is not a veth"), "{line}");
    assert!(host.link("br1").is_none());
}

#[test]
fn two_runs_racing_to_create_the_same_bridge_both_succeed() {
    for _ in 0..5 {
        let host = Netns::new();
        let (a, b) = (Netns::new(), Netns::new());
        let (ga, gb) = (a.guest(), b.guest());
        std::thread::scope(|s| {
            let ra = s.spawn(|| host.pipework(&["brrace", &ga, "10.0.0.2/24"]));
            let rb = s.spawn(|| host.pipework(&["brrace", &gb, "10.0.0.3/24"]));
            ra.join().unwrap().ok();
            rb.join().unwrap().ok();
        });
        assert!(a.ping("10.0.0.3"));
    }
}
