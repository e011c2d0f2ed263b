//! Re-running: harmless when the state already matches; the original's refusal
//! otherwise; a down veth left behind is rebuilt; racing runs share a new bridge.

use std::process::{Child, Command, Stdio};

use crate::util::{assert_rerun_changes_nothing, assert_same, Netns, Run, BIN};

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

/// `pipework ARGS` in `host`'s namespace under strace, the `when`-th sendto(2) held
/// back by `delay_ms` before it enters the kernel.
fn pipework_with_a_delayed_send(host: &Netns, args: &[&str], when: u32, delay_ms: u32) -> Child {
    let inject = format!("inject=sendto:delay_enter={}:when={when}", delay_ms * 1000);
    Command::new("nsenter")
        .arg(format!("--net={}", host.path()))
        .args(["strace", "-f", "-o", "/dev/null", "-e", "trace=sendto", "-e", &inject, BIN])
        .args(args)
        .envs(host.env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("strace")
}

/// Regression (issue 11): a run that creates a bridge and then fails removes the
/// bridge if it has no ports; a second run that had looked the bridge up meanwhile
/// and was about to plug in failed (Invalid argument). Forced with strace: run B makes
/// `brwin` and its veth, then its address request (the kernel refuses ::1 there) is
/// held back 700 ms; run A starts 250 ms in, finds `brwin`, and its veth request (its
/// fifth send) is held back 1200 ms, so B's rollback comes in between. A must succeed
/// and `brwin` stay, with A's port.
#[test]
fn a_failing_run_never_removes_a_bridge_another_run_is_about_to_plug_into() {
    if Command::new("strace").arg("-V").stdout(Stdio::null()).status().is_err() {
        panic!("strace is needed (Debian package strace; scripts/test.sh installs it)");
    }
    let host = Netns::new();
    let (a, b) = (Netns::new(), Netns::new());
    let fails = pipework_with_a_delayed_send(&host, &["brwin", &b.guest(), "::1/128"], 7, 700);
    std::thread::sleep(std::time::Duration::from_millis(250));
    let good = pipework_with_a_delayed_send(&host, &["brwin", &a.guest(), "10.0.0.2/24"], 5, 1200);
    let (fails, good) =
        (Run::from(fails.wait_with_output().unwrap()), Run::from(good.wait_with_output().unwrap()));
    assert_eq!(fails.code, 1, "run B was meant to fail: {fails:?}");
    assert!(fails.stderr.contains("cannot add address ::1/128"), "{fails:?}");
    assert_eq!(good.code, 0, "run A: {good:?} (run B: {fails:?})");
    let veth = host.link(&format!("veth1pl{}", a.pid())).expect("run A's veth");
    assert_eq!(veth["master"], "brwin");
    assert!(a.addrs("eth1").contains(&"10.0.0.2/24".to_string()));
}
