//! The built-in DHCPv4 client's routes and MTU (issue 28), against Debian's dnsmasq:
//! every classless static route of option 121 installed in the guest with the router
//! option ignored (RFC 3442), option 26 setting the interface MTU, a keeper's renewal
//! that changes them applying the change, `del` leaving the guest as it was; bad
//! options left out with one warning naming them, the rest of the lease used.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::dhcp::{Dnsmasq, PidFile};
use crate::util::{assert_same, unique, Netns};

/// dnsmasq's options file, removed on drop.
struct Opts(PathBuf);

impl Opts {
    fn new(text: &str) -> Opts {
        let path = std::env::temp_dir().join(unique("pwt-dhcp-opts"));
        std::fs::write(&path, text).unwrap();
        Opts(path)
    }

    fn set(&self, text: &str) {
        std::fs::write(&self.0, text).unwrap();
    }
}

impl Drop for Opts {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// eth1's IPv4 routes in `guest` as "DST via GW" or "DST" lines, sorted, but the
/// subnet's own.
fn routes(guest: &Netns) -> Vec<String> {
    let v = guest.ip_j(&["-4", "route", "show", "dev", "eth1"]);
    routes_of(&v)
}

fn routes_of(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["protocol"] != "kernel")
        .map(|r| match r["gateway"].as_str() {
            Some(gw) => format!("{} via {gw}", r["dst"].as_str().unwrap()),
            None => r["dst"].as_str().unwrap().to_string(),
        })
        .collect();
    out.sort();
    out
}

fn mtu(guest: &Netns) -> u64 {
    guest.link("eth1").unwrap()["mtu"].as_u64().unwrap()
}

/// Wait (at most 10 s) until `what` holds.
fn until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Option 121 (a route through another router, an on-link one, the default through
/// .1, one through a router off the subnet) with a router option (.254) it overrides,
/// and option 26: the guest gets every good route and the default via .1, the MTU;
/// one warning names the route left out. The keeper's renewal applies new routes and
/// MTU; `del` leaves the guest as it was.
#[test]
fn dhcp4_f_installs_classless_routes_and_mtu_and_renews_them() {
    let host = Netns::new();
    let opts = Opts::new(
        "3,10.77.0.254\n\
         121,10.88.0.0/16,10.77.0.2,10.66.5.0/24,0.0.0.0,0.0.0.0/0,10.77.0.1,10.99.0.0/24,192.168.5.1\n\
         26,1400\n",
    );
    let server = Dnsmasq::start_with_options(&host, &opts.0);
    let guest = Netns::new();
    let g = guest.snapshot();
    let run = host.pipework(&["br1", &guest.guest(), "dhcp4-f:renew=1"]).ok();
    let _keeper = PidFile(format!("/var/run/dhcp4.pid-{}.pid", guest.pid()).into());
    let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{run:?}");
    assert!(
        warnings[0].contains("option 121") && warnings[0].contains("10.99.0.0/24 via 192.168.5.1"),
        "{run:?}"
    );
    assert_eq!(routes(&guest), ["10.66.5.0/24", "10.88.0.0/16 via 10.77.0.2", "default via 10.77.0.1"]);
    assert_eq!(mtu(&guest), 1400);

    // The server's options change; the next renewal (T1 = 1 s) applies them.
    opts.set("121,10.89.0.0/16,10.77.0.3,0.0.0.0/0,10.77.0.1\n26,1300\n");
    server.reload();
    until("the renewal's routes and MTU", || {
        routes(&guest) == ["10.89.0.0/16 via 10.77.0.3", "default via 10.77.0.1"] && mtu(&guest) == 1300
    });

    host.pipework(&["del", &guest.guest()]).ok();
    assert_same("guest", &g, &guest.snapshot());
}

/// An MTU above the host side's (the bridge's 1500) or below 576, and a malformed
/// option 121 (a prefix of 33): the lease is used with the router option, the MTU
/// left as it was, one warning line for each option.
#[test]
fn bad_mtu_and_malformed_routes_are_left_out_with_a_warning() {
    for (mtu_opt, words) in [("26,9000", "above the host side's 1500"), ("26,500", "below 576")] {
        let host = Netns::new();
        let opts = Opts::new(&format!("3,10.77.0.1\n121,21:0a:00:00:00:0a:4d:00:02\n{mtu_opt}\n"));
        let _server = Dnsmasq::start_with_options(&host, &opts.0);
        let guest = Netns::new();
        let run = host.pipework(&["br1", &guest.guest(), "dhcp4"]).ok();
        let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.contains("warning")).collect();
        assert_eq!(warnings.len(), 2, "{run:?}");
        assert!(warnings.iter().any(|w| w.contains("option 121 is malformed")), "{run:?}");
        assert!(warnings.iter().any(|w| w.contains("option 26") && w.contains(words)), "{run:?}");
        assert_eq!(routes(&guest), ["default via 10.77.0.1"]);
        assert_eq!(mtu(&guest), 1500);
    }
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).stdin(Stdio::null()).output().expect("docker (scripts/docker-up.sh)")
}

/// A container with Docker's defaults (its bridge network, eth0 and Docker's default
/// route), removed on drop.
struct Container(String);

impl Container {
    fn run() -> Container {
        let name = unique("pwt-dhcp-routes");
        let out = docker(&["run", "-d", "--init", "--name", &name, "busybox", "sleep", "600"]);
        assert!(out.status.success(), "docker run: {}", String::from_utf8_lossy(&out.stderr));
        Container(name)
    }

    fn exec(&self, args: &[&str]) -> String {
        let out = docker(&[&["exec", self.0.as_str()], args].concat());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).stdout(Stdio::null()).status();
    }
}

/// A Docker container: option 121's default route replaces Docker's (RFC 3442: the
/// router option, .254, ignored), its other route and the MTU are on eth1; `del`
/// takes them away with eth1.
#[test]
fn docker_container_gets_classless_routes_and_mtu() {
    let host = Netns::new();
    let opts = Opts::new("3,10.77.0.254\n121,10.88.0.0/16,10.77.0.2,0.0.0.0/0,10.77.0.1\n26,1450\n");
    let _server = Dnsmasq::start_with_options(&host, &opts.0);
    let c = Container::run();
    host.pipework(&["br1", &c.0, "dhcp4"]).ok();
    let routes = c.exec(&["ip", "-4", "route", "show"]);
    assert!(routes.contains("default via 10.77.0.1 dev eth1"), "{routes}");
    assert!(routes.contains("10.88.0.0/16 via 10.77.0.2 dev eth1"), "{routes}");
    assert!(!routes.contains("10.77.0.254"), "{routes}");
    let link = c.exec(&["ip", "link", "show", "eth1"]);
    assert!(link.contains("mtu 1450"), "{link}");
    host.pipework(&["del", &c.0]).ok();
    let routes = c.exec(&["ip", "-4", "route", "show"]);
    assert!(!routes.contains("eth1"), "{routes}");
}
