//! `del` and `gc` stop the DHCP clients that `-f` attachments left running (their
//! records name them), against Debian's dnsmasq: the processes are gone (live ones
//! counted, zombies not), the DHCPRELEASE of the built-in keeper and of udhcpc
//! reached the server and its lease file dropped the lease, and host and guest are
//! as before the attach.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::dhcp::{leased, others_in, Dnsmasq};
use crate::util::{assert_same, Netns};

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The record's DHCP clients, as `ls --json` shows them for this guest.
fn clients(host: &Netns, guest: &Netns) -> Value {
    let v = json(&host.pipework(&["ls", "--json"]).ok().stdout);
    let mine = v["attachments"].as_array().unwrap().iter().find(|a| a["guest"] == guest.guest()).cloned();
    mine.unwrap_or_else(|| panic!("{} not listed: {v}", guest.guest()))["dhcp"].clone()
}

/// Wait (at most 5 s) until `what` holds.
fn until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ok() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Attach with `ipspec`, then `del`: its one client is stopped, and everything is
/// as before the attach. Returns the leased address and the server.
fn del_stops(ipspec: &str, client: &str) -> (String, Dnsmasq) {
    let host = Netns::new();
    let server = Dnsmasq::start(&host);
    let guest = Netns::new();
    let (h, g) = (host.snapshot(), guest.snapshot());
    host.pipework(&["br1", &guest.guest(), ipspec]).ok();
    let addr = leased(&guest);
    let running = others_in(&guest);
    assert_eq!(running.len(), 1, "{ipspec}: one client in the guest: {running:?}");
    let listed = clients(&host, &guest);
    assert_eq!(listed[0]["client"], client, "{listed}");
    assert_eq!(
        (listed[0]["pids"][0].as_u64(), listed[0]["running"].as_bool()),
        (Some(running[0] as u64), Some(true))
    );
    let v = json(&host.pipework(&["del", &guest.guest(), "--json"]).ok().stdout);
    assert_eq!(v["dhcp_stopped"][0], format!("the DHCP client {client} (pid {})", running[0]), "{v}");
    assert_eq!(others_in(&guest), Vec::<u32>::new(), "{ipspec}: the client outlived del");
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
    (addr, server)
}

#[test]
fn del_stops_the_dhcp4_keeper_which_releases_its_lease() {
    let (addr, server) = del_stops("dhcp4-f", "dhcp4");
    server.wait_for_log(&format!("DHCPRELEASE(eth1) {addr} "));
    until("dnsmasq dropped the lease", || !server.leases().contains(&addr));
}

#[test]
fn del_stops_udhcpc_f_which_releases_its_lease() {
    let (addr, server) = del_stops("udhcpc-f", "udhcpc");
    server.wait_for_log(&format!("DHCPRELEASE(eth1) {addr} "));
    until("dnsmasq dropped the lease", || !server.leases().contains(&addr));
}

/// dhclient leaves its pid file on SIGTERM: `del` removes it, as a plain `dhclient`
/// run does (`udhcpc` and the keeper remove theirs themselves).
#[test]
fn del_of_dhclient_f_leaves_no_pid_file_on_the_host() {
    let host = Netns::new();
    let _server = Dnsmasq::start(&host);
    let guest = Netns::new();
    let pid_file = std::path::PathBuf::from(format!("/var/run/dhclient.pid-{}.pid", guest.pid()));
    let lease_file = format!("/etc/dhclient/dhclient.pid-{}.leases", guest.pid());
    let _files = crate::dhcp::Leftovers(vec![pid_file.clone(), lease_file.into()]);
    host.pipework(&["br1", &guest.guest(), "dhclient-f"]).ok();
    let running = others_in(&guest);
    let named = std::fs::read_to_string(&pid_file).unwrap_or_default();
    assert_eq!(named.trim(), running[0].to_string(), "{} names the client", pid_file.display());
    host.pipework(&["del", &guest.guest()]).ok();
    assert_eq!(others_in(&guest), Vec::<u32>::new(), "the client outlived del");
    assert!(!pid_file.exists(), "{} left behind", pid_file.display());
}

/// A client that ended meanwhile is not said to be stopped.
#[test]
fn del_names_no_client_that_had_ended_already() {
    let host = Netns::new();
    let _server = Dnsmasq::start(&host);
    let guest = Netns::new();
    host.pipework(&["br1", &guest.guest(), "dhcp4-f"]).ok();
    let keeper = others_in(&guest)[0];
    // The keeper this test's pipework started, ended by its pid.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(keeper as i32), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    until("the keeper ended", || crate::dhcp::is_gone(keeper));
    let v = json(&host.pipework(&["del", &guest.guest(), "--json"]).ok().stdout);
    assert_eq!(v["dhcp_stopped"], serde_json::json!([]), "{v}");
    let pid_file = format!("/var/run/dhcp4.pid-{}.pid", guest.pid());
    assert!(!std::path::Path::new(&pid_file).exists(), "{pid_file} left behind");
}

#[test]
fn del_dry_run_names_the_client_it_would_stop() {
    let host = Netns::new();
    let _server = Dnsmasq::start(&host);
    let guest = Netns::new();
    host.pipework(&["br1", &guest.guest(), "dhcp4-f"]).ok();
    let pid = others_in(&guest)[0];
    let dry = host.pipework(&["del", &guest.guest(), "--dry-run"]).ok().stdout;
    assert!(dry.starts_with(&format!("stop the DHCP client dhcp4 (pid {pid})\n")), "{dry}");
    assert_eq!(others_in(&guest), vec![pid], "--dry-run stops nothing");
    host.pipework(&["del", &guest.guest()]).ok();
    assert_eq!(others_in(&guest), Vec::<u32>::new());
}

#[test]
fn gc_stops_the_client_of_a_gone_guest_and_its_veth_goes_with_it() {
    let host = Netns::new();
    let server = Dnsmasq::start(&host);
    let mut guest = Netns::new();
    host.pipework(&["br1", &guest.guest(), "udhcpc-f"]).ok();
    let addr = leased(&guest);
    let end = format!("veth1pl{}", guest.pid());
    let client = others_in(&guest)[0];
    let gone = guest.guest();
    guest.end();
    // udhcpc's socket keeps the dead guest's namespace, and so its veth, alive.
    std::thread::sleep(Duration::from_millis(200));
    assert!(host.link(&end).is_some() && std::path::Path::new(&format!("/proc/{client}")).exists());
    let run = host.pipework(&["gc"]).ok();
    // The client is stopped first; its namespace, and the veth, go with it (gc
    // removes the host end itself only if the kernel has not yet).
    let stopped = format!("pipework: stopped the DHCP client udhcpc (pid {client}) (guest {gone} is gone)");
    let other = |l: &&str| *l != format!("pipework: removed host end {end} (guest {gone} is gone)");
    let lines: Vec<&str> = run.stderr.lines().filter(other).collect();
    assert_eq!(lines.first(), Some(&stopped.as_str()), "{run:?}");
    assert!(lines.len() == 2 && lines[1].starts_with("pipework: removed record "), "{run:?}");
    until("udhcpc ended", || crate::dhcp::is_gone(client));
    until("the veth went with the namespace", || host.link(&end).is_none());
    // Stopped while its veth was still there, it could send its DHCPRELEASE.
    server.wait_for_log(&format!("DHCPRELEASE(eth1) {addr} "));
}

/// The DHCPv6 forms go the same way: `dhcp6-f`'s keeper sends a Release, a
/// `dhclient6-f` is stopped; both gone after `del`, host and guest as before.
#[test]
fn del_stops_the_dhcpv6_clients_too() {
    let host = Netns::new();
    host.sh("ip", &["link", "add", "br6", "type", "bridge"]);
    // The host's own bridge would take the server's advertisements (routes that come
    // whenever they come): not what is compared.
    host.sh("sysctl", &["-qw", "net.ipv6.conf.br6.accept_ra=0"]);
    host.sh("ip", &["link", "set", "br6", "up"]);
    let server = crate::dhcp::Dnsmasq::dhcp6(&host, "br6");
    for (ipspec, client) in [("dhcp6-f", "dhcp6"), ("dhclient6-f", "dhclient6")] {
        let guest = Netns::new();
        let _files =
            crate::dhcp::Leftovers(
                vec![format!("/etc/dhclient/dhclient6.pid-{}.leases", guest.pid()).into()],
            );
        let (h, g) = (host.snapshot(), guest.snapshot());
        host.pipework(&["br6", &guest.guest(), ipspec]).ok();
        let running = others_in(&guest);
        assert_eq!(running.len(), 1, "{ipspec}: one client in the guest: {running:?}");
        assert_eq!(clients(&host, &guest)[0]["client"], client);
        let v = json(&host.pipework(&["del", &guest.guest(), "--json"]).ok().stdout);
        assert_eq!(v["dhcp_stopped"][0], format!("the DHCP client {client} (pid {})", running[0]), "{v}");
        assert_eq!(others_in(&guest), Vec::<u32>::new(), "{ipspec}: the client outlived del");
        let pid_file = format!("/var/run/{client}.pid-{}.pid", guest.pid());
        assert!(!std::path::Path::new(&pid_file).exists(), "{pid_file} left behind");
        assert_same("host", &h, &host.snapshot());
        assert_same("guest", &g, &guest.snapshot());
    }
    until("dnsmasq saw dhcp6-f's Release", || server.log().contains("DHCPRELEASE(eth1)"));
}

/// pipework under strace (its main thread: the keeper and the clients are other
/// processes), `fault` injected into its calls of `syscall`; the number of them.
fn attach_under_strace(host: &Netns, args: &[&str], syscall: &str, fault: Option<String>) -> usize {
    let trace = std::env::temp_dir().join(crate::util::unique("pwt-trace-"));
    let mut cmd = std::process::Command::new("nsenter");
    cmd.arg(format!("--net={}", host.path())).args(["strace", "-qq", "-o"]).arg(&trace);
    cmd.args(["-e", &format!("trace={syscall}")]);
    if let Some(fault) = fault {
        cmd.arg(format!("-einject={syscall}:{fault}"));
    }
    let out = cmd.arg(crate::util::BIN).args(args).envs(host.env()).output().unwrap();
    let calls = std::fs::read_to_string(&trace)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(&format!("{syscall}(")))
        .count();
    let _ = std::fs::remove_file(&trace);
    assert!(out.status.code() != Some(101), "{}", String::from_utf8_lossy(&out.stderr));
    calls
}

/// Killed at any call of `syscall` of a `-f` attach (after its client started too):
/// `del` stops the client the run's intent names, and the guest is as before.
fn killed_dhcp_f_attach_is_undone_by_del(ipspec: &str, syscall: &str) {
    let host = Netns::new();
    let _server = Dnsmasq::start(&host);
    let clean = Netns::new();
    let calls = attach_under_strace(&host, &["br1", &clean.guest(), ipspec], syscall, None);
    leased(&clean);
    host.pipework(&["del", &clean.guest()]).ok();
    let mut bad = Vec::new();
    for k in 1..=calls {
        let guest = Netns::new();
        let g = guest.snapshot();
        let fault = Some(format!("signal=KILL:when={k}"));
        attach_under_strace(&host, &["br1", &guest.guest(), ipspec], syscall, fault);
        let intended: Vec<String> = std::fs::read_dir(host.run_dir().join("intents"))
            .map(|d| d.flatten().map(|e| std::fs::read_to_string(e.path()).unwrap_or_default()).collect())
            .unwrap_or_default();
        let del = host.pipework(&["del", &guest.guest()]);
        let intents: Vec<_> = std::fs::read_dir(host.run_dir().join("intents"))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        let procs: Vec<String> = others_in(&guest)
            .iter()
            .map(|p| {
                std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default().replace('\0', " ")
            })
            .collect();
        let left = (procs, guest.snapshot() != g, intents);
        if del.code != 0 || !left.0.is_empty() || left.1 || !left.2.is_empty() {
            bad.push(format!(
                "{ipspec} killed at {syscall} {k}: del {del:?}, left {left:?}; the intent: {intended:?}"
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn a_dhcp4_f_attach_killed_anywhere_leaves_no_keeper_after_del() {
    killed_dhcp_f_attach_is_undone_by_del("dhcp4-f", "sendto");
}

#[test]
fn a_udhcpc_f_attach_killed_anywhere_leaves_no_client_after_del() {
    killed_dhcp_f_attach_is_undone_by_del("udhcpc-f", "sendto");
}

/// Killed at the intent's rename that would name the client just started (and at
/// each other rename): the client waits at its gate until named, so none is left
/// that nothing names (one once stayed, renewing for the guest).
#[test]
fn a_udhcpc_f_attach_killed_at_any_rename_leaves_no_client_after_del() {
    killed_dhcp_f_attach_is_undone_by_del("udhcpc-f", "rename");
}
