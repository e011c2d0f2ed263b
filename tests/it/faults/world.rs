//! One fault-injection run: the six scenarios of issue 11, each a fresh world (a
//! host netns, its guests, whatever must exist beforehand), the binary run under
//! `strace -e inject=...`, and the verdict on what it left: the full attachment
//! with exit 0, or exit 1 with every `ip -j` snapshot as before, or a named breach.

use std::collections::BTreeSet;
use std::fmt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::check::{diff, flags, link_names, names_in_snapshot, netns_entries, wait_bounded};
use crate::util::{unique, Netns, Run, BIN};

/// The six scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    NewBridge,
    ExistingBridge,
    Ipv6,
    Macvlan,
    DirectPhys,
    Batch,
    /// An Open vSwitch bridge (a private OVS, userspace datapath) and a VLAN tag:
    /// in the kill sweep only (the fault sweep's injections would hit `ovs-vsctl`).
    OvsTag,
    /// `dhcp4-f` on an existing bridge with dnsmasq behind it: the built-in client
    /// and, once leased, its keeper (a process of its own, which outlives a killed
    /// run: del, gc and a re-run must stop it). In the kill sweep only.
    Dhcp4F,
    /// A macvlan with `--host-shim` on a NIC with the host's address, which moves to
    /// the shim: in the kill sweep only.
    HostShim,
}

impl Scenario {
    /// The kill sweep's scenarios.
    pub const CRASH: [Scenario; 9] = [
        Scenario::NewBridge,
        Scenario::ExistingBridge,
        Scenario::Ipv6,
        Scenario::Macvlan,
        Scenario::DirectPhys,
        Scenario::Batch,
        Scenario::OvsTag,
        Scenario::Dhcp4F,
        Scenario::HostShim,
    ];

    pub const ALL: [Scenario; 6] = [
        Scenario::NewBridge,
        Scenario::ExistingBridge,
        Scenario::Ipv6,
        Scenario::Macvlan,
        Scenario::DirectPhys,
        Scenario::Batch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::NewBridge => "new-bridge",
            Scenario::ExistingBridge => "existing-bridge",
            Scenario::Ipv6 => "ipv6",
            Scenario::Macvlan => "macvlan",
            Scenario::DirectPhys => "direct-phys",
            Scenario::Batch => "batch",
            Scenario::OvsTag => "ovs-tag",
            Scenario::Dhcp4F => "dhcp4-f",
            Scenario::HostShim => "host-shim",
        }
    }

    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::CRASH.into_iter().find(|s| s.name() == name)
    }
}

/// One injected fault: strace's `-e inject=SYSCALL:error=ERRNO:when=K`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub syscall: String,
    pub k: u32,
    pub errno: String,
}

impl Fault {
    /// The K-th SYSCALL kills the run (`signal=KILL`) instead of failing.
    pub fn kill(syscall: &str, k: u32) -> Fault {
        Fault { syscall: syscall.to_string(), k, errno: KILL.to_string() }
    }
}

/// The `errno` of a [`Fault::kill`].
const KILL: &str = "KILL";

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.errno.as_str() {
            KILL => write!(f, "{}:signal=KILL:when={}", self.syscall, self.k),
            errno => write!(f, "{}:error={errno}:when={}", self.syscall, self.k),
        }
    }
}

/// What a run left, in the terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Exit 0 and the full attachment.
    Attached,
    /// Exit 1 and every snapshot as before (in a batch: each failed line's guest as
    /// before, each ok line attached, and on the host only what the ok lines made).
    CleanFailure,
    /// Exit 0 (or a batch line said ok) but part of the attachment is missing.
    Partial,
    /// Exit 1 with something left behind (or something of before gone).
    Debris,
    /// Exit 101 or a Rust panic message.
    Panic,
    /// Any other status, a signal, or the timeout.
    OtherStatus,
    /// Something appeared under /var/run/netns.
    NetnsLeftover,
}

impl Verdict {
    pub const ALL: [Verdict; 7] = [
        Verdict::Attached,
        Verdict::CleanFailure,
        Verdict::Partial,
        Verdict::Debris,
        Verdict::Panic,
        Verdict::OtherStatus,
        Verdict::NetnsLeftover,
    ];

    pub fn is_ok(self) -> bool {
        matches!(self, Verdict::Attached | Verdict::CleanFailure)
    }

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Attached => "ok-attached",
            Verdict::CleanFailure => "ok-clean-exit-1",
            Verdict::Partial => "exit-0-partial",
            Verdict::Debris => "exit-1-debris",
            Verdict::Panic => "panic",
            Verdict::OtherStatus => "other-status",
            Verdict::NetnsLeftover => "netns-leftover",
        }
    }
}

/// One guest and what its attachment must look like.
struct Line {
    guest: Netns,
    /// Host-side bridge, if the attachment has one.
    bridge: Option<&'static str>,
    /// Host end's name (`None` for macvlan and direct-phys, which have none).
    host_end: Option<String>,
    container_if: &'static str,
    addr: &'static str,
    gateway: Option<&'static str>,
}

/// A fresh world for one scenario, removed on drop (every namespace is held by a
/// process of ours).
pub struct World {
    pub scenario: Scenario,
    pub host: Netns,
    lines: Vec<Line>,
    batch_file: Option<std::path::PathBuf>,
    /// Holds the far end of the stand-in NIC.
    _wire: Option<Netns>,
    /// The private Open vSwitch of `OvsTag`.
    ovs: Option<crate::ovs::Ovs>,
    /// The DHCP server of `Dhcp4F`.
    _dhcp: Option<crate::dhcp::Dnsmasq>,
}

/// The host has no IPv6 duplicate address detection: a NIC stand-in or bridge made
/// before the run would otherwise keep every "before" snapshot waiting 1-2 s for
/// DAD (snapshots wait for it to settle). Guests keep the kernel's default.
fn host_without_dad() -> Netns {
    let host = Netns::new();
    host.sh("sysctl", &["-qw", "net.ipv6.conf.all.dad_transmits=0", "net.ipv6.conf.default.dad_transmits=0"]);
    host
}

/// A stand-in NIC `eth2`: a veth whose peer, the "switch port", is up in a netns of
/// its own ("the wire"), so that eth2 has carrier once up. The peer stays out of the
/// host's snapshots: its carrier, link-local address and multicast route follow
/// eth2's state by the kernel's doing, which is no debris of ours.
fn add_nic(host: &Netns) -> Netns {
    let wire = Netns::new();
    let pid = wire.pid().to_string();
    host.sh("ip", &["link", "add", "eth2", "type", "veth", "peer", "name", "eth2p", "netns", &pid]);
    wire.sh("ip", &["link", "set", "eth2p", "up"]);
    wire
}

/// Wait (at most 5 s) until `dev` has carrier and its IPv6 link-local address: the
/// kernel reports carrier through its link-watch work, up to a second later, and a
/// "before" snapshot taken earlier would differ from any later one.
fn until_carrier(ns: &Netns, dev: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let v = ns.ip_j(&["addr", "show", "dev", dev]);
        let carrier = !v[0]["flags"].to_string().contains("NO-CARRIER");
        let link_local = v[0]["addr_info"].to_string().contains("\"fe80:");
        if carrier && link_local {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{dev} never got carrier and a link-local address");
}

/// dnsmasq (the suite's DHCPv4 server) behind the existing bridge `br1`, wired by
/// hand rather than by pipework: no record of its own in the host's run directory,
/// which the sweep requires empty.
fn dhcp_server(host: &Netns) -> crate::dhcp::Dnsmasq {
    let ns = Netns::new();
    host.sh("ip", &["link", "add", "br1", "type", "bridge"]);
    host.sh(
        "ip",
        &["link", "add", "srv0", "type", "veth", "peer", "name", "eth1", "netns", &ns.pid().to_string()],
    );
    host.sh("ip", &["link", "set", "srv0", "master", "br1", "up"]);
    host.sh("ip", &["link", "set", "br1", "up"]);
    ns.sh("ip", &["addr", "add", "10.77.0.1/24", "dev", "eth1"]);
    ns.sh("ip", &["link", "set", "eth1", "up"]);
    until_carrier(host, "br1");
    crate::dhcp::Dnsmasq::serve(ns)
}

fn line(
    guest: Netns,
    bridge: Option<&'static str>,
    ifs: (&'static str, Option<&str>),
    addr: &'static str,
    gateway: Option<&'static str>,
) -> Line {
    let host_end =
        bridge.map(|_| ifs.1.map(str::to_string).unwrap_or_else(|| format!("v{}pl{}", ifs.0, guest.pid())));
    Line { guest, bridge, host_end, container_if: ifs.0, addr, gateway }
}

impl World {
    pub fn new(scenario: Scenario) -> World {
        let host = host_without_dad();
        let mut batch_file = None;
        let mut wire = None;
        let mut ovs = None;
        let mut dhcp = None;
        let lines = match scenario {
            Scenario::Dhcp4F => {
                dhcp = Some(dhcp_server(&host));
                vec![line(Netns::new(), Some("br1"), ("eth1", None), "dhcp4-f", None)]
            }
            Scenario::OvsTag => {
                let o = crate::ovs::Ovs::start(&host);
                o.bridge("ovsbr0");
                ovs = Some(o);
                vec![line(Netns::new(), Some("ovsbr0"), ("eth1", None), "10.9.4.2/24", Some("10.9.4.1"))]
            }
            Scenario::NewBridge => {
                vec![line(Netns::new(), Some("br1"), ("eth1", None), "10.9.0.2/24", Some("10.9.0.1"))]
            }
            Scenario::ExistingBridge => {
                // Up, with a port of its own that must survive every failure.
                host.sh("ip", &["link", "add", "br1", "type", "bridge"]);
                host.sh("ip", &["link", "add", "port0", "type", "veth", "peer", "name", "port0p"]);
                host.sh("ip", &["link", "set", "port0", "master", "br1", "up"]);
                // Its peer up too, so that br1 has carrier (and its link-local address)
                // before: a new port must not be what brings them.
                host.sh("ip", &["link", "set", "port0p", "up"]);
                host.sh("ip", &["link", "set", "br1", "up"]);
                until_carrier(&host, "br1");
                vec![line(Netns::new(), Some("br1"), ("eth1", None), "10.9.0.2/24", Some("10.9.0.1"))]
            }
            Scenario::Ipv6 => {
                vec![line(
                    Netns::new(),
                    Some("br6"),
                    ("eth7", Some("vhost7")),
                    "fd00:9::2/64",
                    Some("fd00:9::1"),
                )]
            }
            Scenario::Macvlan => {
                wire = Some(add_nic(&host));
                // Down, but up once before, as a real NIC has been: the kernel gives a
                // device its default qdisc at the first up and keeps it after a down.
                host.sh("ip", &["link", "set", "eth2", "up"]);
                host.sh("ip", &["link", "set", "eth2", "down"]);
                vec![line(Netns::new(), None, ("eth1", None), "10.9.1.2/24", Some("10.9.1.1"))]
            }
            Scenario::HostShim => {
                // Up with the host's address in the guest's subnet: it moves to the
                // shim, and must be back on eth2 after every kill and del.
                wire = Some(add_nic(&host));
                host.sh("ip", &["link", "set", "eth2", "up"]);
                host.sh("ip", &["addr", "add", "10.9.6.1/24", "dev", "eth2"]);
                // The host's default route, which the kernel flushes with the address:
                // through the shim meanwhile, back on eth2 after every kill and del.
                host.sh("ip", &["route", "add", "default", "via", "10.9.6.254", "dev", "eth2"]);
                until_carrier(&host, "eth2");
                vec![line(Netns::new(), None, ("eth1", None), "10.9.6.2/24", None)]
            }
            Scenario::DirectPhys => {
                // Up with an address and a route: all of it must come back on failure.
                wire = Some(add_nic(&host));
                host.sh("ip", &["link", "set", "eth2", "up"]);
                host.sh("ip", &["addr", "add", "192.0.2.5/24", "dev", "eth2"]);
                host.sh("ip", &["route", "add", "198.51.100.0/24", "via", "192.0.2.1"]);
                until_carrier(&host, "eth2");
                vec![line(Netns::new(), None, ("eth1", None), "10.9.2.2/24", Some("10.9.2.1"))]
            }
            Scenario::Batch => {
                // Two lines on one new bridge (run one at a time), one on another
                // (concurrently), IPv6 among them.
                let lines = vec![
                    line(Netns::new(), Some("br1"), ("eth1", None), "10.9.3.2/24", Some("10.9.3.1")),
                    line(Netns::new(), Some("br1"), ("eth1", None), "10.9.3.3/24", None),
                    line(Netns::new(), Some("br9"), ("eth3", None), "fd00:3::3/64", Some("fd00:3::1")),
                ];
                let text: String = lines
                    .iter()
                    .map(|l| {
                        let ip = match l.gateway {
                            Some(gw) => format!("{}@{gw}", l.addr),
                            None => l.addr.to_string(),
                        };
                        format!("{} -i {} {} {ip}\n", l.bridge.unwrap(), l.container_if, l.guest.guest())
                    })
                    .collect();
                let path = std::env::temp_dir().join(unique("pipework-faults-"));
                std::fs::write(&path, text).unwrap();
                batch_file = Some(path);
                lines
            }
        };
        World { scenario, host, lines, batch_file, _wire: wire, ovs, _dhcp: dhcp }
    }

    /// The binary's arguments.
    pub fn args(&self) -> Vec<String> {
        if let Some(path) = &self.batch_file {
            return vec!["--batch".into(), path.to_str().unwrap().into(), "--json".into()];
        }
        let l = &self.lines[0];
        let ip = match l.gateway {
            Some(gw) => format!("{}@{gw}", l.addr),
            None => l.addr.to_string(),
        };
        let mut args: Vec<String> = match self.scenario {
            Scenario::Ipv6 => ["br6", "-i", "eth7", "-l", "vhost7"].map(String::from).to_vec(),
            Scenario::Macvlan => vec!["eth2".into()],
            Scenario::DirectPhys => vec!["--direct-phys".into(), "eth2".into()],
            Scenario::HostShim => vec!["--host-shim".into(), "eth2".into()],
            Scenario::OvsTag => vec!["ovsbr0".into()],
            _ => vec!["br1".into()],
        };
        args.push(l.guest.guest());
        args.push(ip);
        if self.scenario == Scenario::OvsTag {
            args.push("@10".into());
        }
        args
    }

    /// The arguments of the `del` of each attachment the run makes.
    pub fn del_args(&self) -> Vec<Vec<String>> {
        self.lines
            .iter()
            .map(|l| vec!["del".into(), l.guest.guest(), "-i".into(), l.container_if.into()])
            .collect()
    }

    /// The bridges the run creates (none existed before), which a `del` may leave.
    pub fn made_bridges(&self) -> Vec<&'static str> {
        let mut made: Vec<&'static str> = match self.scenario {
            Scenario::ExistingBridge | Scenario::OvsTag | Scenario::Dhcp4F => Vec::new(),
            _ => self.lines.iter().filter_map(|l| l.bridge).collect(),
        };
        made.dedup();
        made
    }

    /// What an attach and its `del` leave, uninterrupted, beyond the state from
    /// before, undone here: the bridges the run made (a `del` leaves them), a
    /// macvlan's NIC set up (a `del` leaves it up).
    pub fn undo_what_del_leaves(&self) {
        for bridge in self.made_bridges() {
            if self.host.link(bridge).is_some() {
                self.host.sh("ip", &["link", "del", bridge]);
            }
        }
        if self.scenario == Scenario::Macvlan {
            self.host.sh("ip", &["link", "set", "eth2", "down"]);
        }
    }

    /// Processes left running in the guests (a DHCP keeper or client), waiting up to
    /// 3 s for those told to stop (a keeper sends its release first).
    pub fn processes_left(&self) -> Vec<u32> {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let left: Vec<u32> = self.lines.iter().flat_map(|l| crate::dhcp::others_in(&l.guest)).collect();
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Some attachment's record is in the run directory.
    pub fn has_records(&self) -> bool {
        std::fs::read_dir(self.host.run_dir().join("attachments"))
            .is_ok_and(|d| d.flatten().any(|e| e.file_name().to_string_lossy().ends_with(".json")))
    }

    /// pipework run in the host namespace (with the world's Open vSwitch, if any).
    pub fn pipework(&self, args: &[&str]) -> Run {
        match &self.ovs {
            Some(ovs) => ovs.pipework(&self.host, args),
            None => self.host.pipework(args),
        }
    }

    /// Snapshots of the host and of every guest (and the Open vSwitch bridge's
    /// ports with their tags and ids, if any).
    pub fn snapshots(&self) -> Vec<String> {
        let mut all = vec![self.host.snapshot()];
        if let Some(ovs) = &self.ovs {
            all[0] += &format!("\novs ports: {}", ovs.ports_with_ids("ovsbr0"));
        }
        all.extend(self.lines.iter().map(|l| l.guest.snapshot()));
        all
    }

    /// Run the binary in the host netns under strace, injecting `fault` (or nothing:
    /// a clean traced run), at most `timeout` long. With `trace_to`, strace writes
    /// its trace there (for counting occurrences), else to /dev/null.
    pub fn run(
        &self,
        fault: Option<&Fault>,
        syscalls: &str,
        trace_to: Option<&str>,
        timeout: Duration,
    ) -> Run {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.host.path()))
            .args(["strace", "-f", "-qq", "-o", trace_to.unwrap_or("/dev/null")])
            .arg(format!("-etrace={syscalls}"));
        if self.scenario == Scenario::Dhcp4F {
            // Not into the keeper, which execs itself and outlives the run: strace
            // would wait for it (a kill in it is no kill of the attach).
            cmd.args(["-b", "execve"]);
        }
        if let Some(f) = fault {
            cmd.arg(format!("-einject={f}"));
        }
        cmd.arg(BIN).args(self.args());
        cmd.envs(self.host.env());
        if let Some(ovs) = &self.ovs {
            cmd.envs(ovs.env());
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nsenter strace pipework");
        wait_bounded(child, timeout)
    }

    /// Judge a finished run against the snapshots taken before it and the entries
    /// of /var/run/netns before it.
    pub fn verdict(
        &self,
        run: &Run,
        before: &[String],
        netns_before: &BTreeSet<String>,
    ) -> (Verdict, String) {
        if netns_entries().difference(netns_before).next().is_some() {
            return (Verdict::NetnsLeftover, format!("{:?}", netns_entries()));
        }
        if run.code == 101 || run.stderr.contains("panicked at") {
            return (Verdict::Panic, String::new());
        }
        match run.code {
            0 | 1 => {}
            _ => return (Verdict::OtherStatus, format!("status {}", run.code)),
        }
        if self.batch_file.is_some() {
            return self.batch_verdict(run, before);
        }
        if run.code == 0 {
            return match self.attached(&self.lines[0]) {
                Ok(()) => (Verdict::Attached, String::new()),
                Err(e) => (Verdict::Partial, e),
            };
        }
        // What the kernel finishes by itself after a rollback (a returning NIC's
        // link-local route comes with its carrier, through link-watch work) may lag
        // the exit: a difference must last 3 s to count.
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut after = self.snapshots();
        while after != before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            after = self.snapshots();
        }
        match before.iter().zip(&after).position(|(b, a)| b != a) {
            None => (Verdict::CleanFailure, String::new()),
            Some(i) => (Verdict::Debris, diff(if i == 0 { "host" } else { "guest" }, &before[i], &after[i])),
        }
    }

    /// A batch: per line as `--json` reported it, and the host holding exactly the
    /// links of before plus those of the lines that landed.
    fn batch_verdict(&self, run: &Run, before: &[String]) -> (Verdict, String) {
        let reported: Vec<bool> = match serde_json::from_str::<Value>(&run.stdout) {
            Ok(Value::Array(items)) if items.len() == self.lines.len() => {
                items.iter().map(|i| i["ok"] == true).collect()
            }
            // Nothing (or something else) on stdout: no line claims success.
            _ => vec![false; self.lines.len()],
        };
        if run.code == 0 && reported.contains(&false) {
            return (Verdict::Partial, format!("exit 0 but not every line ok: {}", run.stdout.trim()));
        }
        let mut debris = Vec::new();
        for (i, (l, ok)) in self.lines.iter().zip(&reported).enumerate() {
            if *ok {
                if let Err(e) = self.attached(l) {
                    return (Verdict::Partial, format!("line {} said ok: {e}", i + 1));
                }
            } else if before[i + 1] != l.guest.snapshot() {
                debris.push(diff(&format!("guest of line {}", i + 1), &before[i + 1], &l.guest.snapshot()));
            }
        }
        if reported.iter().all(|ok| !ok) {
            let after = self.host.snapshot();
            if before[0] != after {
                debris.push(diff("host", &before[0], &after));
            }
        } else {
            // What the host had before, plus the bridge and host end of each ok line.
            let mut expected = names_in_snapshot(&before[0]);
            for (l, _) in self.lines.iter().zip(&reported).filter(|(_, ok)| **ok) {
                expected.extend(l.bridge.map(String::from));
                expected.extend(l.host_end.clone());
            }
            let now = link_names(&self.host);
            if now != expected {
                let extra: Vec<_> = now.difference(&expected).collect();
                let gone: Vec<_> = expected.difference(&now).collect();
                debris.push(format!("host links: extra {extra:?}, missing {gone:?}"));
            }
        }
        match (debris.is_empty(), run.code) {
            (true, 0) => (Verdict::Attached, String::new()),
            (true, _) => (Verdict::CleanFailure, String::new()),
            (false, 0) => (Verdict::Partial, debris.join("; ")),
            (false, _) => (Verdict::Debris, debris.join("; ")),
        }
    }

    /// The full attachment of `l`: guest interface up with its address (and default
    /// route), host end up on its bridge, the NIC up or gone into the guest.
    fn attached(&self, l: &Line) -> Result<(), String> {
        let g = &l.guest;
        let link = g.link(l.container_if).ok_or(format!("no {} in the guest", l.container_if))?;
        if !flags(&link).contains(&"UP".to_string()) {
            return Err(format!("{} is down in the guest", l.container_if));
        }
        if self.scenario == Scenario::Dhcp4F {
            // The lease (dnsmasq's range, its router as the default route) and the
            // keeper that renews it.
            let v = g.ip_j(&["-4", "addr", "show", "dev", "eth1"]);
            if !v[0]["addr_info"][0]["local"].as_str().is_some_and(|a| a.starts_with("10.77.0.")) {
                return Err(format!("no lease on eth1: {v}"));
            }
            let def = g.ip_j(&["-4", "route", "show", "default"]);
            if def[0]["gateway"] != "10.77.0.1" || def[0]["dev"] != "eth1" {
                return Err(format!("default route is not the lease's: {def}"));
            }
            if crate::dhcp::others_in(g).is_empty() {
                return Err("no keeper in the guest".into());
            }
        } else if !g.addrs(l.container_if).contains(&l.addr.to_string()) {
            return Err(format!("{} lacks {}: {:?}", l.container_if, l.addr, g.addrs(l.container_if)));
        }
        if let Some(gw) = l.gateway {
            let fam = if gw.contains(':') { "-6" } else { "-4" };
            let def = g.ip_j(&[fam, "route", "show", "default"]);
            if def[0]["gateway"] != gw || def[0]["dev"] != l.container_if {
                return Err(format!("default route is not via {gw} dev {}: {def}", l.container_if));
            }
        }
        let kind = link["linkinfo"]["info_kind"].as_str().unwrap_or("").to_string();
        match self.scenario {
            Scenario::Macvlan | Scenario::HostShim if kind != "macvlan" => {
                return Err(format!("guest link is a {kind:?}"))
            }
            Scenario::HostShim => {
                let routes = self.host.ip_j(&["route", "show", "10.9.6.2/32"]);
                if routes[0]["dev"] != "pwshim-eth2"
                    || !self.host.addrs("pwshim-eth2").contains(&"10.9.6.1/24".into())
                {
                    return Err(format!(
                        "no shim with the host's address and a route to the guest: {routes}"
                    ));
                }
            }
            Scenario::DirectPhys if self.host.link("eth2").is_some() => {
                return Err("eth2 still on the host".into())
            }
            Scenario::Macvlan
                if !flags(&self.host.link("eth2").unwrap_or_default()).contains(&"UP".into()) =>
            {
                return Err("the NIC eth2 is not up".into())
            }
            _ => {}
        }
        if let (Some(ovs), Some(end)) = (&self.ovs, &l.host_end) {
            let ports = ovs.ports_with_ids("ovsbr0");
            if !ports.contains(&format!("{end} tag=10")) {
                return Err(format!("host end {end} is no port of ovsbr0 with tag 10: {ports}"));
            }
            return Ok(());
        }
        if let (Some(bridge), Some(end)) = (l.bridge, &l.host_end) {
            let br = self.host.link(bridge).ok_or(format!("no bridge {bridge}"))?;
            if !flags(&br).contains(&"UP".to_string()) {
                return Err(format!("bridge {bridge} is down"));
            }
            let end_link = self.host.link(end).ok_or(format!("no host end {end}"))?;
            if end_link["master"] != bridge || !flags(&end_link).contains(&"UP".to_string()) {
                return Err(format!("host end {end} not up on {bridge}: {end_link}"));
            }
        }
        Ok(())
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(path) = &self.batch_file {
            let _ = std::fs::remove_file(path);
        }
    }
}
