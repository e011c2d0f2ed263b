//! The built-in DHCPv4 client's identity (issue 28): derived from a Docker container's
//! name (RFC 4361: IAID and DUID in option 61), so that the container restarted and
//! attached again with a new MAC gets its address back; dnsmasq holds one lease.

use std::process::{Command, Output, Stdio};

use crate::dhcp::Dnsmasq;
use crate::util::{unique, Netns};

pub(crate) fn docker(args: &[&str]) -> Output {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("docker (scripts/docker-up.sh)");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

pub(crate) struct Container(pub String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).stdout(Stdio::null()).status();
    }
}

pub(crate) fn eth1(c: &Container) -> (String, String) {
    let text =
        String::from_utf8_lossy(&docker(&["exec", &c.0, "ip", "addr", "show", "eth1"]).stdout).into_owned();
    let word_after =
        |w: &str| text.split_whitespace().skip_while(|x| *x != w).nth(1).unwrap_or_default().to_string();
    (word_after("inet"), word_after("link/ether"))
}

#[test]
fn a_restarted_container_with_a_new_mac_keeps_its_lease() {
    let host = Netns::new();
    let server = Dnsmasq::start(&host);
    let c = Container(unique("pwt-dhcp-id"));
    docker(&["run", "-d", "--init", "--name", &c.0, "busybox", "sleep", "600"]);
    let mut seen = Vec::new();
    for i in 0..4 {
        if i > 0 {
            docker(&["restart", "-t", "0", &c.0]);
        }
        let mac = format!("02:00:00:28:00:0{i}");
        host.pipework(&["br1", &c.0, "dhcp4-f", &mac]).ok();
        let (addr, got) = eth1(&c);
        assert_eq!(got, mac);
        eprintln!("attach {i}: eth1 {mac} leased {addr}");
        seen.push(addr);
    }
    assert!(seen.iter().all(|a| *a == seen[0] && a.starts_with("10.77.0.")), "{seen:?}");
    let leases = server.leases();
    eprintln!("dnsmasq's lease file:\n{leases}");
    assert_eq!(leases.lines().count(), 1, "{leases}");
    assert!(leases.contains("02:00:00:28:00:03"), "{leases}");
    host.pipework(&["del", &c.0]).ok();
}

/// A `dhcp4-f` keeper killed: `check` says `dhcp4:stopped` (exit 1); `del` still
/// removes the attachment. (A re-run brings it back:
/// `crate::dhcp_reboot`.)
#[test]
fn check_says_a_killed_keeper_stopped() {
    let host = Netns::new();
    let _server = Dnsmasq::start(&host);
    let guest = Netns::new();
    let args = ["br1", &guest.guest(), "dhcp4-f"].map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    host.pipework(&args).ok();
    crate::dhcp::leased(&guest);
    host.pipework(&["check", &guest.guest()]).ok();
    let keeper = crate::dhcp::others_in(&guest);
    assert_eq!(keeper.len(), 1, "{keeper:?}");
    let _ = Command::new("kill").args(["-KILL", &keeper[0].to_string()]).status();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !crate::dhcp::others_in(&guest).is_empty() || !crate::dhcp::is_gone(keeper[0]) {
        assert!(std::time::Instant::now() < deadline, "the keeper outlived SIGKILL");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let run = host.pipework(&["check", &guest.guest()]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("dhcp4:stopped"), "{run:?}");
    host.pipework(&["del", &guest.guest()]).ok();
}
