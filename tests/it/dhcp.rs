//! DHCP end to end: Debian's dnsmasq serving leases in a namespace of its own on the
//! test's bridge, and the real clients (udhcpc, dhclient, dhcpcd) and the built-in one
//! taking them for guests in their own namespaces. Each test checks the lease, the
//! default route, the host's resolv.conf untouched, and which client processes remain.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{assert_same, unique, Netns};

/// The subnet dnsmasq serves; every test has its own bridge, so they never meet.
const SERVER: &str = "10.77.0.1";

/// A test's dnsmasq, in a namespace of its own on the test's bridge; killed and
/// cleaned on drop. `start` serves DHCPv4 on `br1`; `crate::dhcp6` and
/// `crate::slaac` make the DHCPv6 server and the router with `spawn`.
pub struct Dnsmasq {
    _ns: Netns,
    child: Child,
    dir: PathBuf,
}

impl Dnsmasq {
    /// DHCPv4 from 10.77.0.50-150 (2-minute leases, router and name server) on `br1`.
    pub fn start(host: &Netns) -> Dnsmasq {
        let ns = Netns::new();
        host.pipework(&["br1", &ns.guest(), "0/0"]).ok();
        ns.sh("ip", &["addr", "add", &format!("{SERVER}/24"), "dev", "eth1"]);
        Dnsmasq::serve(ns)
    }

    /// The same server in `ns`, whose `eth1` is already up on the bridge with
    /// 10.77.0.1/24.
    pub fn serve(ns: Netns) -> Dnsmasq {
        Dnsmasq::spawn(ns, "pwt-dnsmasq", "DHCP, sockets bound", |dir| {
            let mut args: Vec<String> = ["--no-ping", "--dhcp-range=10.77.0.50,10.77.0.150,255.255.255.0,2m"]
                .map(String::from)
                .into();
            // A name server in the lease, so that the clients' scripts do write resolv.conf.
            args.extend(
                ["--dhcp-option=3,10.77.0.1", "--dhcp-option=6,10.77.0.53", "--log-dhcp"].map(String::from),
            );
            args.push(format!("--dhcp-leasefile={}", dir.join("leases").display()));
            args
        })
    }

    /// DHCPv4 from 10.77.0.50-150 on `br1` (2-minute leases), its other options read
    /// from `optsfile` (dnsmasq's `--dhcp-optsfile`, read again on SIGHUP: see
    /// [`Dnsmasq::reload`]).
    pub fn start_with_options(host: &Netns, optsfile: &Path) -> Dnsmasq {
        let ns = Netns::new();
        host.pipework(&["br1", &ns.guest(), "0/0"]).ok();
        ns.sh("ip", &["addr", "add", &format!("{SERVER}/24"), "dev", "eth1"]);
        let optsfile = optsfile.display().to_string();
        Dnsmasq::spawn(ns, "pwt-dnsmasq", "DHCP, sockets bound", |dir| {
            vec![
                "--no-ping".to_string(),
                "--dhcp-range=10.77.0.50,10.77.0.150,255.255.255.0,2m".to_string(),
                "--log-dhcp".to_string(),
                format!("--dhcp-optsfile={optsfile}"),
                format!("--dhcp-leasefile={}", dir.join("leases").display()),
            ]
        })
    }

    /// Read the options file again (SIGHUP), and wait until dnsmasq says it has.
    pub fn reload(&self) {
        let before = self.log().matches("read ").count();
        let _ = Command::new("kill").args(["-HUP", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.log().matches("read ").count() <= before {
            assert!(Instant::now() < deadline, "dnsmasq never read its files again:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// dnsmasq on eth1 of `ns`, in the foreground, its pid file and log in a
    /// temporary directory of its own (named after `label`), with `args(dir)` after
    /// the common ones; returns once its log has `ready`.
    pub(crate) fn spawn(
        ns: Netns,
        label: &str,
        ready: &str,
        args: impl FnOnce(&Path) -> Vec<String>,
    ) -> Dnsmasq {
        let dir = std::env::temp_dir().join(unique(label));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net={}", ns.path()))
            .args(["dnsmasq", "--no-daemon", "--port=0", "--bind-interfaces", "--interface=eth1"])
            .args(args(&dir))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .arg(format!("--log-facility={}", dir.join("log").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (Debian's dnsmasq-base)");
        let server = Dnsmasq { _ns: ns, child, dir };
        server.wait_for_log(ready);
        server
    }

    /// Its lease file (one line per lease it holds).
    pub fn leases(&self) -> String {
        std::fs::read_to_string(self.dir.join("leases")).unwrap_or_default()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Wait (bounded) until dnsmasq's log has `text`.
    pub fn wait_for_log(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.log().contains(text) {
            assert!(Instant::now() < deadline, "dnsmasq never logged {text:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The leased IPv4 address of eth1 in `guest`, after checking the default route.
pub fn leased(guest: &Netns) -> String {
    let v = guest.ip_j(&["-4", "addr", "show", "dev", "eth1"]);
    let addr = v[0]["addr_info"][0]["local"].as_str().unwrap_or_else(|| panic!("no IPv4 on eth1: {v}"));
    assert!(addr.starts_with("10.77.0.") && addr != SERVER, "{addr}");
    let def = guest.ip_j(&["-4", "route", "show", "default"]);
    assert_eq!(def[0]["gateway"], SERVER, "default route: {def}");
    assert_eq!(def[0]["dev"], "eth1", "default route: {def}");
    addr.to_string()
}

/// Processes living in `guest`'s network namespace, other than the guest's own.
pub fn others_in(guest: &Netns) -> Vec<u32> {
    let ino = std::fs::metadata(guest.path()).unwrap().ino();
    let pids = std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok());
    pids.filter(|p: &u32| *p != guest.pid())
        .filter(|p| std::fs::metadata(format!("/proc/{p}/ns/net")).is_ok_and(|m| m.ino() == ino))
        .collect()
}

/// A client left running on purpose (`-f`), found by its pid file; killed on drop.
pub struct PidFile(pub PathBuf);

impl PidFile {
    pub fn pid(&self) -> u32 {
        let text = std::fs::read_to_string(&self.0).unwrap_or_else(|e| panic!("{}: {e}", self.0.display()));
        text.trim().parse().unwrap()
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string(&self.0) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
        }
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Files a client leaves on the host on purpose (dhclient's lease files), removed on drop.
pub struct Leftovers(pub Vec<PathBuf>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// Two guests that took `ipspec` from one server, with all they live in.
struct World {
    a: Netns,
    b: Netns,
    _leftovers: Leftovers,
    _server: Dnsmasq,
    _host: Netns,
}

/// Two guests take `ipspec` from one server: both leased, different addresses,
/// resolv.conf on the host byte-identical.
fn two_guests_lease(ipspec: &str) -> World {
    let host = Netns::new();
    let server = Dnsmasq::start(&host);
    let before = std::fs::read("/etc/resolv.conf").unwrap();
    let (a, b) = (Netns::new(), Netns::new());
    let lease_file = |g: &Netns| PathBuf::from(format!("/etc/dhclient/dhclient.pid-{}.leases", g.pid()));
    let leftovers = Leftovers(vec![lease_file(&a), lease_file(&b)]);
    host.pipework(&["br1", &a.guest(), ipspec]).ok();
    host.pipework(&["br1", &b.guest(), ipspec]).ok();
    assert_ne!(leased(&a), leased(&b), "two guests, two leases");
    assert_eq!(before, std::fs::read("/etc/resolv.conf").unwrap(), "the host's resolv.conf changed");
    World { a, b, _leftovers: leftovers, _server: server, _host: host }
}

fn leaves_no_client(ipspec: &str) {
    let w = two_guests_lease(ipspec);
    for g in [&w.a, &w.b] {
        assert_eq!(others_in(g), Vec::<u32>::new(), "{ipspec}: processes left in {}", g.guest());
        let perm = g.ip_j(&["-4", "addr", "show", "dev", "eth1"]);
        assert_eq!(
            perm[0]["addr_info"][0]["valid_life_time"], 4294967295u64,
            "{ipspec}: not permanent: {perm}"
        );
    }
}

#[test]
fn udhcpc_leases_and_quits() {
    leaves_no_client("udhcpc");
}

#[test]
fn udhcpc_with_options() {
    leaves_no_client("udhcpc:-t 5 -T 1");
}

#[test]
fn dhclient_leases_and_is_stopped() {
    leaves_no_client("dhclient");
}

#[test]
fn dhcpcd_leases_and_leaves_no_daemon() {
    leaves_no_client("dhcpcd");
}

#[test]
fn builtin_client_leases() {
    leaves_no_client("dhcp4");
}

/// `-f`: the client stays, renewing, findable by its pid file, inside the guest.
fn keeps_renewing(ipspec: &str, name: &str) {
    let w = two_guests_lease(ipspec);
    for g in [&w.a, &w.b] {
        let file = PidFile(format!("/var/run/{name}.pid-{}.pid", g.pid()).into());
        let pid = file.pid();
        assert_eq!(others_in(g), vec![pid], "{ipspec}: the pid file names the one client in {}", g.guest());
    }
}

#[test]
fn udhcpc_f_stays_renewing() {
    keeps_renewing("udhcpc-f", "udhcpc");
}

#[test]
fn dhclient_f_stays_renewing() {
    keeps_renewing("dhclient-f", "dhclient");
}

#[test]
fn builtin_f_renews_and_ends_with_the_guest() {
    let host = Netns::new();
    let server = Dnsmasq::start(&host);
    let guest = Netns::new();
    host.pipework(&["br1", &guest.guest(), "dhcp4-f:renew=1", "U:dhcp4-test"]).ok();
    let addr = leased(&guest);
    // The MAC asked for, and the guest's name as hostname.
    let ack = format!("DHCPACK(eth1) {addr} 02:2f:85:a0:7e:15 pid-{}", guest.pid());
    assert!(server.log().contains(&ack), "{ack:?} not in:\n{}", server.log());
    let file = PidFile(format!("/var/run/dhcp4.pid-{}.pid", guest.pid()).into());
    let keeper = file.pid();
    assert_eq!(others_in(&guest), vec![keeper]);
    // dnsmasq acknowledges the first request, then a renewal (unicast, from the address).
    let status = file.0.with_extension("lease");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&status).unwrap_or_default().contains("renewals=1") {
        assert!(Instant::now() < deadline, "no renewal: {:?}", std::fs::read_to_string(&status));
        std::thread::sleep(Duration::from_millis(50));
    }
    let acks = server.log().matches(&format!("DHCPACK(eth1) {addr} ")).count();
    assert!(acks >= 2, "dnsmasq saw {acks} acks:\n{}", server.log());
    // The guest goes: the keeper ends by itself, and takes its files with it.
    drop(guest);
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{keeper}")).exists() && !is_zombie(keeper) {
        assert!(Instant::now() < deadline, "the keeper outlived its guest");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!file.0.exists() && !status.exists());
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z"))
}

/// The process has ended (a zombie has).
pub fn is_gone(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid)
}

#[test]
fn builtin_without_server_times_out_and_undoes_everything() {
    let guest = Netns::new();
    let line = fails_and_leaves_nothing(&guest, &["br1", &guest.guest(), "dhcp4:timeout=1"]);
    assert_eq!(
        line,
        format!(
            "pipework: cannot get a DHCP lease with dhcp4 on eth1 in guest {}: no DHCP server answered on eth1 within 1 s",
            guest.guest()
        )
    );
}

#[test]
fn external_client_without_a_lease_fails_and_undoes_everything() {
    let guest = Netns::new();
    // No server, and -n: udhcpc gives up after one discover and a one-second wait.
    let line = fails_and_leaves_nothing(&guest, &["br1", &guest.guest(), "udhcpc:-n -t 1 -T 1"]);
    let head = format!("pipework: cannot get a DHCP lease with udhcpc on eth1 in guest {}: ", guest.guest());
    assert!(line.starts_with(&head) && line.contains("udhcpc failed (exit status: 1)"), "{line}");
}

#[test]
fn timeout_stops_a_client_that_would_try_for_ever_and_undoes_everything() {
    let guest = Netns::new();
    // No server, and no -n: udhcpc alone would never give up.
    let line = fails_and_leaves_nothing(&guest, &["--timeout", "2", "br1", &guest.guest(), "udhcpc"]);
    assert!(line.ends_with("udhcpc got no lease on eth1 within 2 s"), "{line}");
}

/// Run `args` from a fresh host namespace against `guest` (no DHCP server anywhere):
/// it fails with one line, which is returned, and host and guest are as they were,
/// with no client left running in the guest.
fn fails_and_leaves_nothing(guest: &Netns, args: &[&str]) -> String {
    let host = Netns::new();
    let (h, g) = (host.snapshot(), guest.snapshot());
    let line = host.pipework(args).failed();
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
    assert_eq!(others_in(guest), Vec::<u32>::new());
    // The killed client could not remove its pid file itself.
    let pid_file = format!("/var/run/udhcpc.pid-{}.pid", guest.pid());
    assert!(!std::path::Path::new(&pid_file).exists(), "{pid_file} left behind");
    line
}

#[test]
fn dry_run_shows_the_client_command_line() {
    let host = Netns::new();
    let guest = Netns::new();
    let out = host.pipework(&["--dry-run", "br1", &guest.guest(), "udhcpc:-t 5"]).ok().stdout;
    let p = guest.pid();
    let want = format!("guest: udhcpc -qi eth1 -x hostname:pid-{p} -p /var/run/udhcpc.pid-{p}.pid -t 5");
    assert_eq!(out.lines().last(), Some(want.as_str()), "{out}");
    assert!(host.link("br1").is_none(), "nothing made");
}

#[test]
fn docker_mode_refused_for_a_guest_that_is_no_container() {
    let host = Netns::new();
    let guest = Netns::new();
    let line = host.pipework(&["br1", &guest.guest(), "dhcp"]).failed();
    assert!(line.contains("is not a Docker container"), "{line}");
    assert!(host.link("br1").is_none(), "nothing made");
}

/// Safe to re-run: a DHCP attachment in place is left alone (exit 0, nothing changes,
/// `"changed": false`, no second client), for the plain and the `-f` forms alike.
#[test]
fn a_rerun_of_a_dhcp_attachment_in_place_changes_nothing() {
    let host = Netns::new();
    let _server = Dnsmasq::start(&host);
    let (plain, kept) = (Netns::new(), Netns::new());
    crate::util::assert_rerun_changes_nothing(&host, &plain, &["br1", &plain.guest(), "dhcp4"]);
    assert_eq!(others_in(&plain), Vec::<u32>::new());
    let args = ["br1", &kept.guest(), "dhcp4-f"];
    host.pipework(&args).ok();
    let file = PidFile(format!("/var/run/dhcp4.pid-{}.pid", kept.pid()).into());
    let keeper = file.pid();
    let (h, g) = (host.snapshot(), kept.snapshot());
    let again = host.pipework(&["--json", args[0], args[1], args[2]]).ok().stdout;
    let doc: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(doc["changed"], false, "{again}");
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &kept.snapshot());
    assert_eq!(others_in(&kept), vec![keeper], "the same keeper, and no second one");
}

/// A `-f` attachment whose client has ended, leaving no lease to start again from,
/// is not "in place": the re-run is refused as the original refuses every re-run,
/// and nothing changes.
#[test]
fn a_rerun_of_dhcp4_f_whose_keeper_ended_without_its_lease_is_refused() {
    let host = Netns::new();
    let _server = Dnsmasq::start(&host);
    let guest = Netns::new();
    let args = ["br1", &guest.guest(), "dhcp4-f"];
    host.pipework(&args).ok();
    let file = PidFile(format!("/var/run/dhcp4.pid-{}.pid", guest.pid()).into());
    let keeper = file.pid();
    // The keeper this test's attach started, ended by its pid.
    let _ = Command::new("kill").args(["-KILL", &keeper.to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_gone(keeper) {
        assert!(Instant::now() < deadline, "the keeper did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Without the lease it held (`crate::dhcp_reboot` has the re-run that takes it
    // over), there is nothing to start a keeper from.
    let _ = std::fs::remove_file(file.0.with_extension("lease.json"));
    let _ = std::fs::remove_file(file.0.with_extension("lease"));
    let (h, g) = (host.snapshot(), guest.snapshot());
    let line = host.pipework(&args).failed();
    assert!(line.contains("exists and is up"), "{line}");
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
}
