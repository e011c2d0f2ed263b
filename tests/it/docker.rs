//! Real Docker containers, resolved through the Engine API socket (the daemon is
//! started by scripts/docker-up.sh with the locally built `busybox` image).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{unique, Netns};

/// A container we started (`--init --network none`), removed on drop.
pub(crate) struct Container {
    pub(crate) name: String,
}

impl Container {
    pub(crate) fn run() -> Container {
        let name = unique("pwt-c");
        let out = Command::new("docker")
            .args(["run", "-d", "--init", "--network", "none", "--name", &name, "busybox", "sleep", "600"])
            .stdin(Stdio::null())
            .output()
            .expect("docker run (is scripts/docker-up.sh done?)");
        assert!(out.status.success(), "docker run: {}", String::from_utf8_lossy(&out.stderr));
        Container { name }
    }

    pub(crate) fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker").arg("exec").arg(&self.name).args(args).stdin(Stdio::null()).output().unwrap()
    }

    /// `docker exec` that must succeed; its stdout.
    pub(crate) fn sh(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        assert!(out.status.success(), "docker exec {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `net.ipv6.conf.DEV.disable_ipv6` inside the container (DEV may be `all`, `default`).
    pub(crate) fn ipv6_disabled(&self, dev: &str) -> String {
        self.sh(&["cat", &format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6")]).trim().to_string()
    }

    /// Wait (at most 5 s) until no IPv6 address in the container is under duplicate
    /// address detection: a tentative address cannot be used to send from.
    pub(crate) fn until_dad_settles(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            // The host's iproute2 in the container's netns: busybox's ip has no such filter.
            let out = Command::new("nsenter")
                .arg(format!("--net=/proc/{}/ns/net", self.pid()))
                .args(["ip", "-6", "addr", "show", "tentative"])
                .output()
                .unwrap();
            if out.status.success() && out.stdout.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn pid(&self) -> String {
        let out =
            Command::new("docker").args(["inspect", "-f", "{{.State.Pid}}", &self.name]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.name]).stdout(Stdio::null()).status();
    }
}

#[test]
fn docker_containers_by_name_get_eth1_and_ping_each_other() {
    let host = Netns::new();
    let (a, b) = (Container::run(), Container::run());
    host.pipework(&["br1", &a.name, "192.168.1.10/24@192.168.1.1"]).ok();
    host.pipework(&["br1", &b.name, "192.168.1.11/24"]).ok();
    assert!(host.link(&format!("veth1pl{}", a.pid())).is_some(), "host end named after the container's pid");
    let addr = a.exec(&["ip", "-4", "addr", "show", "eth1"]);
    assert!(String::from_utf8_lossy(&addr.stdout).contains("192.168.1.10/24"), "{addr:?}");
    let route = a.exec(&["ip", "route"]);
    assert!(String::from_utf8_lossy(&route.stdout).contains("default via 192.168.1.1 dev eth1"), "{route:?}");
    let ping = a.exec(&["ping", "-c", "1", "-W", "3", "192.168.1.11"]);
    assert!(ping.status.success(), "{ping:?}");
}

#[test]
fn docker_container_by_id_prefix() {
    let host = Netns::new();
    let c = Container::run();
    let out = Command::new("docker").args(["inspect", "-f", "{{.Id}}", &c.name]).output().unwrap();
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    host.pipework(&["br1", &id[..12], "10.0.0.2/24"]).ok();
    assert!(host.link(&format!("veth1pl{}", c.pid())).is_some());
}

#[test]
fn docker_container_by_its_slashed_name_as_docker_prints_it() {
    let host = Netns::new();
    let c = Container::run();
    let out = Command::new("docker").args(["inspect", "-f", "{{.Name}}", &c.name]).output().unwrap();
    let slashed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(slashed, format!("/{}", c.name));
    host.pipework(&["br1", &slashed, "10.0.0.2/24"]).ok();
    assert!(host.link(&format!("veth1pl{}", c.pid())).is_some());
}

#[test]
fn unknown_and_stopped_containers_are_one_clear_line() {
    let host = Netns::new();
    let bogus = unique("pwt-none");
    let line = host.pipework(&["br1", &bogus, "10.0.0.2/24"]).failed();
    assert_eq!(line, format!("pipework: no such container: {bogus}"));
    let c = Container::run();
    let stop =
        Command::new("docker").args(["stop", "-t", "1", &c.name]).stdout(Stdio::null()).status().unwrap();
    assert!(stop.success());
    let line = host.pipework(&["br1", &c.name, "10.0.0.2/24"]).failed();
    assert!(line.contains("is not running"), "{line}");
    assert!(host.link("br1").is_none());
}

/// Issue 12: Docker sets `disable_ipv6=1` for `all` and `default` in every container
/// not on an IPv6 network, so eth1 is born with IPv6 off and the address was refused
/// ("Permission denied"). IPv6 is turned on for eth1 alone.
#[test]
fn docker_container_gets_a_static_ipv6_address_with_ipv6_on_for_eth1_only() {
    let host = Netns::new();
    let c = Container::run();
    assert_eq!(
        (c.ipv6_disabled("all"), c.ipv6_disabled("default")),
        ("1".into(), "1".into()),
        "as Docker sets them"
    );
    let args = ["br1", c.name.as_str(), "fd00::2/64@fd00::1"];
    let dry = host.pipework(&[&["--dry-run"][..], &args].concat()).ok().stdout;
    let lines: Vec<&str> = dry.lines().collect();
    let sysctl = lines.iter().position(|l| *l == "guest: sysctl -w net.ipv6.conf.eth1.disable_ipv6=0");
    let addr = lines.iter().position(|l| *l == "guest: ip addr add fd00::2/64 dev eth1");
    assert!(matches!((sysctl, addr), (Some(s), Some(a)) if s < a), "sysctl step before the address: {dry}");
    assert!(host.link("br1").is_none(), "--dry-run changed nothing");
    let run = host.pipework(&args).ok();
    assert_eq!(run.stderr, "", "{run:?}");
    assert_eq!(c.ipv6_disabled("eth1"), "0");
    let others = ["all", "default", "lo"].map(|d| c.ipv6_disabled(d));
    assert_eq!(others, ["1", "1", "1"], "nothing else in the container changes");
    let addrs = c.sh(&["ip", "-6", "addr", "show", "eth1"]);
    assert!(addrs.contains("inet6 fd00::2/64 scope global"), "{addrs}");
    let routes = c.sh(&["ip", "-6", "route"]);
    assert!(routes.contains("default via fd00::1 dev eth1"), "{routes}");
}

#[test]
fn two_docker_containers_on_one_bridge_ping_each_other_over_ipv6() {
    let host = Netns::new();
    let (a, b) = (Container::run(), Container::run());
    let br = unique("br6");
    host.pipework(&[&br, &a.name, "fd00:6::10/64"]).ok();
    host.pipework(&[&br, &b.name, "fd00:6::11/64"]).ok();
    a.until_dad_settles();
    b.until_dad_settles();
    let ping = a.exec(&["ping", "-6", "-c", "1", "-W", "3", "fd00:6::11"]);
    assert!(ping.status.success(), "{ping:?}");
    let ping = b.exec(&["ping", "-6", "-c", "1", "-W", "3", "fd00:6::10"]);
    assert!(ping.status.success(), "{ping:?}");
}
