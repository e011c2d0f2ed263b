//! A `dhcp4-f` keeper that dies (SIGKILL, as the OOM killer sends it) is brought back
//! by a re-run of the same command (issue 28): the new keeper starts from the lease
//! the gone one held with INIT-REBOOT (RFC 2131 section 4.3.2: a REQUEST for that
//! address, no server identifier, no DISCOVER), and the address stays in the guest
//! meanwhile. When the server refuses it (DHCPNAK) or it has run out, the address
//! goes and discovery starts again. Against Debian's dnsmasq (`--log-dhcp`), whose
//! log says what the client sent.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::dhcp::{is_gone, leased, others_in, Dnsmasq};
use crate::dhcp_identity::{docker, eth1, Container};
use crate::util::{unique, Netns, Run};

/// Wait (at most `secs`) until `what` holds.
fn until(secs: u64, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The keeper's pid from its pid file, SIGKILLed; returns once it has ended.
fn kill_keeper(pid_file: &str) -> u32 {
    let text = std::fs::read_to_string(pid_file).unwrap_or_else(|e| panic!("{pid_file}: {e}"));
    let pid: u32 = text.trim().parse().unwrap();
    let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    until(5, "the keeper ended on SIGKILL", || is_gone(pid));
    pid
}

/// How often dnsmasq logged `what` (`DHCPDISCOVER(eth1)`, ...).
fn count(server: &Dnsmasq, what: &str) -> usize {
    server.log().matches(what).count()
}

/// The `dhcp` cell of this guest's row in `ls`.
fn ls_row(host: &Netns, guest: &str) -> String {
    let out = host.pipework(&["ls"]).ok().stdout;
    out.lines().find(|l| l.contains(guest)).unwrap_or_else(|| panic!("{guest} not in ls:\n{out}")).to_string()
}

/// `pipework br1 GUEST dhcp4-f` for a namespace guest, which must succeed.
fn attach(host: &Netns, guest: &Netns) -> Run {
    host.pipework(&["br1", &guest.guest(), "dhcp4-f"]).ok()
}

/// A namespace guest attached `dhcp4-f` (a server on br1 already), leased, and then its
/// keeper killed: the guest, the keeper's files (removed on drop), its pid file and the
/// address it held.
fn orphaned_by_its_keeper(host: &Netns) -> (Netns, KeeperFiles, String, String) {
    let guest = Netns::new();
    let pid_file = format!("/var/run/dhcp4.pid-{}.pid", guest.pid());
    let files = KeeperFiles(pid_file.clone().into());
    attach(host, &guest);
    let addr = leased(&guest);
    kill_keeper(&pid_file);
    (guest, files, pid_file, addr)
}

/// The files a killed keeper leaves beside its pid file (a re-run's keeper takes them
/// over, `del` removes them): removed on drop whatever the test came to.
struct KeeperFiles(PathBuf);

impl Drop for KeeperFiles {
    fn drop(&mut self) {
        for ext in ["pid", "lease", "lease.json"] {
            let _ = std::fs::remove_file(self.0.with_extension(ext));
        }
    }
}

/// A real Docker container (`--network none`, Docker's defaults): its keeper killed,
/// `check` says so, the re-run brings a new one, which asks for the same address with
/// a REQUEST and no DISCOVER; the address never left eth1.
#[test]
fn a_killed_keeper_of_a_docker_container_comes_back_with_the_same_address() {
    let host = Netns::new();
    let server = Dnsmasq::start(&host);
    let c = Container(unique("pwt-reboot"));
    docker(&["run", "-d", "--init", "--network", "none", "--name", &c.0, "busybox", "sleep", "600"]);
    let pid_file = format!("/var/run/dhcp4.{}.pid", c.0);
    let _files = KeeperFiles(pid_file.clone().into());
    let args = ["br1", c.0.as_str(), "dhcp4-f"];
    host.pipework(&args).ok();
    let (addr, _) = eth1(&c);
    eprintln!("$ pipework br1 {} dhcp4-f\neth1: {addr}", c.0);
    let old = kill_keeper(&pid_file);
    eprintln!("$ kill -KILL {old}");
    let check = host.pipework(&["check", &c.0]);
    eprintln!("$ pipework check {}\n{}(exit {})", c.0, check.stderr, check.code);
    assert_eq!(check.code, 1, "{check:?}");
    assert!(check.stderr.contains("dhcp4:stopped"), "{check:?}");
    let (discovers, requests) = (count(&server, "DHCPDISCOVER(eth1)"), count(&server, "DHCPREQUEST(eth1)"));
    let rerun = host.pipework(&args).ok();
    eprintln!("$ pipework br1 {} dhcp4-f\n{}", c.0, rerun.stderr);
    assert!(rerun.stderr.contains("INIT-REBOOT"), "{rerun:?}");
    // The address stays in place while the new keeper asks.
    assert_eq!(eth1(&c).0, addr, "the address left eth1");
    let ip = addr.split('/').next().unwrap().to_string();
    until(10, "dnsmasq acked the INIT-REBOOT", || {
        count(&server, "DHCPREQUEST(eth1)") > requests && count(&server, &format!("DHCPACK(eth1) {ip} ")) >= 2
    });
    let log = server.log();
    let tail: Vec<&str> = log.lines().filter(|l| l.contains("(eth1)")).collect();
    eprintln!("dnsmasq:\n{}", tail[tail.len().saturating_sub(2)..].join("\n"));
    assert_eq!(count(&server, "DHCPDISCOVER(eth1)"), discovers, "the new keeper sent a DISCOVER:\n{log}");
    let new: u32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert_ne!(new, old);
    assert!(!is_gone(new), "the new keeper is not running");
    assert_eq!(eth1(&c).0, addr);
    let check = host.pipework(&["check", &c.0]);
    eprintln!("$ pipework check {}\n{}(exit {})", c.0, check.stderr, check.code);
    assert_eq!(check.code, 0, "{check:?}");
    until(5, "ls says the keeper is bound", || ls_row(&host, &c.0).contains(" dhcp4:running "));
    eprintln!("$ pipework ls\n{}", ls_row(&host, &c.0));
    assert_eq!(server.leases().lines().count(), 1, "{}", server.leases());
    host.pipework(&["del", &c.0]).ok();
    assert!(is_gone(new), "del left the new keeper running");
}

/// The server refuses the gone keeper's lease (dnsmasq restarted, authoritative, with
/// a range without it): the new keeper removes the address and its default route as
/// RFC 2131 says, discovers again and applies the new lease.
#[test]
fn a_lease_refused_with_a_nak_is_removed_and_discovery_starts_again() {
    let host = Netns::new();
    let first = Dnsmasq::start(&host);
    let (guest, _files, _, old_addr) = orphaned_by_its_keeper(&host);
    drop(first);
    let ns = Netns::new();
    host.pipework(&["br1", &ns.guest(), "0/0"]).ok();
    ns.sh("ip", &["addr", "add", "10.77.0.1/24", "dev", "eth1"]);
    let server = Dnsmasq::spawn(ns, "pwt-dnsmasq", "DHCP, sockets bound", |dir| {
        let mut a: Vec<String> =
            ["--no-ping", "--dhcp-authoritative", "--dhcp-range=10.77.0.160,10.77.0.200,255.255.255.0,2m"]
                .map(String::from)
                .into();
        a.extend(["--dhcp-option=3,10.77.0.1", "--log-dhcp"].map(String::from));
        a.push(format!("--dhcp-leasefile={}", dir.join("leases").display()));
        a
    });
    let rerun = attach(&host, &guest);
    assert!(rerun.stderr.contains("INIT-REBOOT"), "{rerun:?}");
    until(10, "dnsmasq refused the old lease", || server.log().contains("DHCPNAK(eth1)"));
    until(20, "a new lease in the new range", || leased_or_none(&guest).is_some_and(|a| a != old_addr));
    let new_addr = leased(&guest);
    eprintln!("old lease {old_addr}, refused (DHCPNAK); new lease {new_addr}");
    let in_new_range = new_addr
        .strip_prefix("10.77.0.")
        .and_then(|host| host.parse::<u8>().ok())
        .is_some_and(|host| (160..=200).contains(&host));
    assert!(in_new_range, "{new_addr} is not in the new range 10.77.0.160-200");
    assert_eq!(guest.addrs("eth1").iter().filter(|a| a.starts_with("10.77.")).count(), 1, "the old stays");
    assert!(count(&server, "DHCPDISCOVER(eth1)") >= 1, "{}", server.log());
    until(5, "ls says the keeper is bound", || ls_row(&host, &guest.guest()).contains(" dhcp4:running "));
    // The record has the refused lease's address; check compares the one held now.
    let check = host.pipework(&["check", &guest.guest()]);
    eprintln!("$ pipework check {}\n{}(exit {})", guest.guest(), check.stderr, check.code);
    assert_eq!(check.code, 0, "{check:?}");
    host.pipework(&["del", &guest.guest()]).ok();
    assert!(others_in(&guest).is_empty(), "del left the keeper running");
}

/// A gone keeper's lease that has run out meanwhile (its written time moved back, as
/// if the re-run came late): it is not asked for again; the address goes and the new
/// keeper starts from DISCOVER.
#[test]
fn a_lease_run_out_before_the_rerun_starts_from_discover() {
    let host = Netns::new();
    let server = Dnsmasq::start(&host);
    let (guest, _files, pid_file, _) = orphaned_by_its_keeper(&host);
    let held = PathBuf::from(&pid_file).with_extension("lease.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&held).unwrap()).unwrap();
    v["bound_at"] = 1000.into();
    std::fs::write(&held, v.to_string()).unwrap();
    let discovers = count(&server, "DHCPDISCOVER(eth1)");
    let rerun = attach(&host, &guest);
    assert!(rerun.stderr.contains("has run out"), "{rerun:?}");
    until(15, "a DISCOVER, then a lease again", || {
        count(&server, "DHCPDISCOVER(eth1)") > discovers && leased_or_none(&guest).is_some()
    });
    leased(&guest);
    let check = host.pipework(&["check", &guest.guest()]);
    assert_eq!(check.code, 0, "{check:?}");
    host.pipework(&["del", &guest.guest()]).ok();
}

/// eth1's IPv4 address in 10.77.0.0/24 with its default route, if it has them now.
fn leased_or_none(guest: &Netns) -> Option<String> {
    let v = guest.ip_j(&["-4", "addr", "show", "dev", "eth1"]);
    let addr = v[0]["addr_info"][0]["local"].as_str()?.to_string();
    let def = guest.ip_j(&["-4", "route", "show", "default"]);
    (def[0]["gateway"] == "10.77.0.1").then_some(addr)
}
