//! The `dhcp` mode against the real Docker daemon: busybox udhcpc in a helper
//! container (the locally built `busybox` image) sharing a test container's network,
//! leasing from dnsmasq on the test's bridge.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::dhcp::Dnsmasq;
use crate::util::{assert_same, unique, Netns};

/// A container with no network of its own (`--init`, so that it stops at once), removed on drop.
struct Container {
    name: String,
}

impl Container {
    fn run() -> Container {
        let name = unique("pwt-dhcp");
        let out =
            docker(&["run", "-d", "--init", "--network", "none", "--name", &name, "busybox", "sleep", "600"]);
        assert!(out.status.success(), "docker run: {}", String::from_utf8_lossy(&out.stderr));
        Container { name }
    }

    /// eth1's IPv4 address and the default route, as the container sees them.
    fn lease(&self) -> (String, String) {
        let text = |o: Output| String::from_utf8_lossy(&o.stdout).into_owned();
        let addr = text(docker(&["exec", &self.name, "ip", "-4", "addr", "show", "eth1"]));
        let addr =
            addr.split_whitespace().skip_while(|w| *w != "inet").nth(1).unwrap_or_default().to_string();
        (addr, text(docker(&["exec", &self.name, "ip", "route", "show", "default"])))
    }

    /// The helper containers for this one, running or not.
    fn helpers(&self) -> String {
        let filter = format!("name=pipework-dhcp-{}-", self.name);
        let out = docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.name]).stdout(Stdio::null()).status();
    }
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).stdin(Stdio::null()).output().expect("docker (scripts/docker-up.sh)")
}

#[test]
fn dhcp_mode_leases_through_a_helper_that_is_then_gone() {
    let host = Netns::new();
    let _server = Dnsmasq::start(&host);
    let before = std::fs::read("/etc/resolv.conf").unwrap();
    let (a, b) = (Container::run(), Container::run());
    host.pipework(&["br1", &a.name, "dhcp"]).ok();
    host.pipework(&["br1", &b.name, "dhcp", "U:dhcp-test-b"]).ok();
    let (la, ra) = a.lease();
    let (lb, _) = b.lease();
    assert!(la.starts_with("10.77.0.") && lb.starts_with("10.77.0."), "{la} {lb}");
    assert_ne!(la, lb, "two containers, two leases");
    assert!(ra.contains("default via 10.77.0.1 dev eth1"), "{ra}");
    assert_eq!(a.helpers(), "", "the helper container is removed");
    assert_eq!(b.helpers(), "");
    assert_eq!(before, std::fs::read("/etc/resolv.conf").unwrap());
}

#[test]
fn dhcp_f_helper_renews_and_ends_with_its_container() {
    let host = Netns::new();
    let _server = Dnsmasq::start(&host);
    let c = Container::run();
    host.pipework(&["br1", &c.name, "dhcp:-f"]).ok();
    let (addr, route) = c.lease();
    assert!(addr.starts_with("10.77.0."), "{addr}");
    assert!(route.contains("default via 10.77.0.1"), "{route}");
    assert_eq!(c.helpers(), format!("pipework-dhcp-{}-eth1", c.name), "the renewing helper runs");
    let name = c.name.clone();
    let helper = c.helpers();
    drop(c);
    // Its PID namespace went with the container's first process, and --rm removed it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = docker(&["ps", "-a", "--filter", &format!("name={helper}"), "--format", "{{.Names}}"]);
        if String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "helper of {name} outlived it");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_helper_without_a_lease_is_stopped_at_the_timeout_and_nothing_is_left() {
    let host = Netns::new();
    // No DHCP server: the helper's udhcpc (no -n) would try for ever.
    let c = Container::run();
    let h = host.snapshot();
    let run = host.pipework(&["--timeout", "3", "br1", &c.name, "dhcp"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("the helper container got no lease on eth1 within 3 s"), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert_eq!(c.helpers(), "", "the helper container is removed");
    let eth1 = docker(&["exec", &c.name, "ip", "link", "show", "eth1"]);
    assert!(!eth1.status.success(), "eth1 is gone from the container");
    assert_same("host", &h, &host.snapshot());
}

#[test]
fn del_removes_the_dhcp_f_helper_container() {
    let host = Netns::new();
    let _server = Dnsmasq::start(&host);
    let c = Container::run();
    host.pipework(&["br1", &c.name, "dhcp:-f"]).ok();
    let helper = c.helpers();
    assert_eq!(helper, format!("pipework-dhcp-{}-eth1", c.name));
    let run = host.pipework(&["del", &c.name]).ok();
    assert!(run.stderr.contains(&format!("stopped the DHCP helper container {helper}")), "{run:?}");
    assert_eq!(c.helpers(), "", "the helper is gone with the attachment");
    assert_eq!(c.lease().0, "", "eth1 is gone");
}

/// A helper is known by its container id: the record of a container's earlier life
/// names a helper of the same name as its new life's, which gc must leave running.
#[test]
fn gc_leaves_the_helper_of_a_later_life_that_has_the_same_name() {
    let host = Netns::new();
    let _server = Dnsmasq::start(&host);
    let c = Container::run();
    host.pipework(&["br1", &c.name, "dhcp:-f"]).ok();
    let helper = c.helpers();
    // Held, so that the next life cannot get its namespace number (and record path).
    let pid = docker(&["inspect", "-f", "{{.State.Pid}}", &c.name]);
    let pid = String::from_utf8_lossy(&pid.stdout).trim().to_string();
    let first_life = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    let restart = docker(&["restart", "-t", "0", &c.name]);
    assert!(restart.status.success(), "{}", String::from_utf8_lossy(&restart.stderr));
    // The first helper ends with the container's PID namespace, and --rm removes it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !c.helpers().is_empty() {
        assert!(Instant::now() < deadline, "the first helper outlived its container's life");
        std::thread::sleep(Duration::from_millis(200));
    }
    host.pipework(&["br1", &c.name, "dhcp:-f"]).ok();
    assert_eq!(c.helpers(), helper, "a new helper under the same name");
    let run = host.pipework(&["gc"]).ok();
    assert!(run.stderr.contains("removed record"), "the first life's record goes: {run:?}");
    assert_eq!(c.helpers(), helper, "gc removed the new life's helper: {run:?}");
    drop(first_life);
    host.pipework(&["del", &c.name]).ok();
    assert_eq!(c.helpers(), "", "del removes it");
}

/// pipework's `dhcp:-f` attach killed at each rename of its state files (the
/// intent's: written first, then naming the helper before `docker run` makes it,
/// then again with the id Docker gave it): `del` removes the helper the intent
/// names, and no intent stays. Before the helper was named ahead of `docker run`, a
/// kill while Docker made it left a helper nothing knew of.
#[test]
fn a_dhcp_f_attach_killed_at_any_rename_leaves_no_helper_after_del() {
    let host = Netns::new();
    let _server = Dnsmasq::start(&host);
    let traced = |c: &Container, fault: Option<String>| {
        let trace = std::env::temp_dir().join(unique("pwt-trace-"));
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", host.path()))
            .args(["strace", "-qq", "-e", "trace=rename", "-o"])
            .arg(&trace);
        if let Some(fault) = fault {
            cmd.arg(format!("-einject=rename:{fault}"));
        }
        let out =
            cmd.arg(crate::util::BIN).args(["br1", &c.name, "dhcp:-f"]).envs(host.env()).output().unwrap();
        let renames = std::fs::read_to_string(&trace)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("rename("))
            .count();
        let _ = std::fs::remove_file(&trace);
        (out, renames)
    };
    let clean = Container::run();
    let (out, renames) = traced(&clean, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(renames >= 3, "only {renames} renames");
    host.pipework(&["del", &clean.name]).ok();
    let mut bad = Vec::new();
    for k in 1..=renames {
        let c = Container::run();
        traced(&c, Some(format!("signal=KILL:when={k}")));
        let del = host.pipework(&["del", &c.name]);
        let intents: Vec<_> = std::fs::read_dir(host.run_dir().join("intents"))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        // `--rm` removes a helper that quit by itself a moment later: wait for that.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !c.helpers().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        if del.code != 0 || !c.helpers().is_empty() || !intents.is_empty() {
            bad.push(format!(
                "killed at rename {k}: del {del:?}, helpers {:?}, intents {intents:?}",
                c.helpers()
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
