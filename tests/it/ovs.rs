//! Open vSwitch end to end on a real OVS: Debian's ovsdb-server and ovs-vswitchd
//! started per test inside the test's own host namespace, with a private run
//! directory, and bridges on the userspace datapath (this kernel has no OVS one).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{unique, Netns, Run};

/// One private Open vSwitch (database + switch) inside `host`; stopped on drop.
pub(crate) struct Ovs {
    dir: PathBuf,
    daemons: Vec<Child>,
}

impl Ovs {
    pub(crate) fn start(host: &Netns) -> Ovs {
        let dir = std::env::temp_dir().join(unique("pwt-ovs-"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ovs = Ovs { dir, daemons: Vec::new() };
        let db = ovs.path("conf.db");
        let schema = "/usr/share/openvswitch/vswitch.ovsschema";
        let made = Command::new("ovsdb-tool").args(["create", &db, schema]).status().expect("ovsdb-tool");
        assert!(made.success(), "ovsdb-tool create");
        let sock = format!("punix:{}", ovs.path("db.sock"));
        let log = format!("--log-file={}", ovs.path("ovsdb-server.log"));
        ovs.spawn(host, "ovsdb-server", &[&db, &format!("--remote={sock}"), &log, "--no-chdir"]);
        ovs.wait_for(|o| o.vsctl(&["--no-wait", "init"]).status.success(), "ovsdb-server");
        let db_sock = format!("unix:{}", ovs.path("db.sock"));
        let log = format!("--log-file={}", ovs.path("ovs-vswitchd.log"));
        ovs.spawn(host, "ovs-vswitchd", &[&db_sock, &log, "--no-chdir"]);
        ovs
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        let d = self.dir.to_string_lossy().into_owned();
        ["OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"]
            .into_iter()
            .map(|k| (k, d.clone()))
            .collect()
    }

    fn spawn(&mut self, host: &Netns, daemon: &str, args: &[&str]) {
        let child = Command::new("nsenter")
            .arg(format!("--net={}", host.path()))
            .arg(daemon)
            .args(args)
            .envs(self.env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{daemon}: {e} (Debian package openvswitch-switch)"));
        self.daemons.push(child);
    }

    fn wait_for(&self, ready: impl Fn(&Ovs) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready(self) {
            assert!(Instant::now() < deadline, "{what} did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn vsctl(&self, args: &[&str]) -> std::process::Output {
        Command::new("ovs-vsctl").arg("--timeout=10").args(args).envs(self.env()).output().expect("ovs-vsctl")
    }

    pub(crate) fn vsctl_ok(&self, args: &[&str]) -> String {
        let out = self.vsctl(args);
        assert!(out.status.success(), "ovs-vsctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A bridge on the userspace datapath, made the way an operator would.
    pub(crate) fn bridge(&self, name: &str) {
        self.vsctl_ok(&["add-br", name, "--", "set", "bridge", name, "datapath_type=netdev"]);
    }

    /// Each port of `bridge` as `NAME tag=T ids=...` (sorted), for snapshots.
    pub(crate) fn ports_with_ids(&self, bridge: &str) -> String {
        let ports = self.vsctl_ok(&["list-ports", bridge]);
        let mut all: Vec<String> = ports
            .lines()
            .map(|p| {
                let tag = self.vsctl_ok(&["get", "port", p, "tag"]);
                let ids = self.vsctl_ok(&["get", "interface", p, "external-ids"]);
                format!("{p} tag={tag} ids={ids}")
            })
            .collect();
        all.sort();
        all.join("; ")
    }

    pub(crate) fn pipework(&self, host: &Netns, args: &[&str]) -> Run {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        host.pipework_env(args, &env)
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        for d in self.daemons.iter_mut().rev() {
            let _ = d.kill();
            let _ = d.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn attach_to_an_existing_ovs_bridge_and_ping() {
    let host = Netns::new();
    let ovs = Ovs::start(&host);
    ovs.bridge("ovsbr0");
    let (a, b) = (Netns::new(), Netns::new());
    ovs.pipework(&host, &["ovsbr0", &a.guest(), "192.168.1.2/24"]).ok();
    ovs.pipework(&host, &["ovsbr0", &b.guest(), "192.168.1.3/24"]).ok();
    let ports = ovs.vsctl_ok(&["list-ports", "ovsbr0"]);
    assert!(ports.contains(&format!("veth1pl{}", a.pid())), "{ports}");
    assert!(a.ping("192.168.1.3"), "a cannot reach b over OVS");
}

#[test]
fn vlan_tags_separate_guests() {
    let host = Netns::new();
    let ovs = Ovs::start(&host);
    ovs.bridge("ovsbr0");
    let (a, b, c) = (Netns::new(), Netns::new(), Netns::new());
    ovs.pipework(&host, &["ovsbr0", &a.guest(), "192.168.10.2/24", "@10"]).ok();
    ovs.pipework(&host, &["ovsbr0", &b.guest(), "192.168.10.3/24", "@10"]).ok();
    ovs.pipework(&host, &["ovsbr0", &c.guest(), "192.168.10.4/24", "@20"]).ok();
    assert_eq!(ovs.vsctl_ok(&["get", "Port", &format!("veth1pl{}", a.pid()), "tag"]), "10");
    assert_eq!(ovs.vsctl_ok(&["get", "Port", &format!("veth1pl{}", c.pid()), "tag"]), "20");
    assert!(a.ping("192.168.10.3"), "same tag must connect");
    assert!(!c.ping("192.168.10.2"), "tag 20 must not reach tag 10");
    assert!(!c.ping("192.168.10.3"), "tag 20 must not reach tag 10");
}

#[test]
fn external_ids_are_the_originals() {
    let host = Netns::new();
    let ovs = Ovs::start(&host);
    ovs.bridge("ovsbr0");
    let g = Netns::new();
    ovs.pipework(&host, &["ovsbr0", "-i", "eth3", &g.guest(), "10.1.0.2/24", "@7"]).ok();
    let port = format!("veth3pl{}", g.pid());
    let get = |k: &str| ovs.vsctl_ok(&["get", "Interface", &port, &format!("external_ids:pipework.{k}")]);
    // The host end's name (LOCAL_IF), as the original writes it.
    assert_eq!(get("interface"), port);
    assert_eq!(get("bridge"), "ovsbr0");
    assert_eq!(get("nspid"), format!("\"{}\"", g.pid()));
    assert_eq!(get("vlan"), "\"7\"");
    let all = ovs.vsctl_ok(&["get", "Interface", &port, "external_ids"]);
    assert!(!all.contains("containerid"), "no container id for a pid: guest: {all}");
}

#[test]
fn rerun_does_not_add_the_port_twice() {
    let host = Netns::new();
    let ovs = Ovs::start(&host);
    ovs.bridge("ovsbr0");
    let g = Netns::new();
    let args = ["ovsbr0", &g.guest(), "10.2.0.2/24@10.2.0.1"];
    ovs.pipework(&host, &args).ok();
    let (h, gs) = (host.snapshot(), g.snapshot());
    let before = ovs.vsctl_ok(&["show"]);
    ovs.pipework(&host, &args).ok();
    assert_eq!(ovs.vsctl_ok(&["list-ports", "ovsbr0"]).lines().count(), 1);
    assert_eq!(before, ovs.vsctl_ok(&["show"]));
    assert_eq!(h, host.snapshot());
    assert_eq!(gs, g.snapshot());
}

#[test]
fn an_ovs_name_creates_the_bridge_on_the_chosen_datapath() {
    let host = Netns::new();
    let ovs = Ovs::start(&host);
    let (a, b) = (Netns::new(), Netns::new());
    let mut env: Vec<(&str, String)> = ovs.env();
    env.push(("PIPEWORK_OVS_DATAPATH", "netdev".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    host.pipework_env(&["ovs-new", &a.guest(), "192.168.1.3/24"], &env).ok();
    host.pipework_env(&["ovs-new", &b.guest(), "192.168.1.4/24"], &env).ok();
    assert_eq!(ovs.vsctl_ok(&["get", "bridge", "ovs-new", "datapath_type"]), "netdev");
    assert!(a.ping("192.168.1.4"));
}

#[test]
fn a_bridge_with_no_datapath_fails_cleanly_and_leaves_nothing() {
    let host = Netns::new();
    let ovs = Ovs::start(&host);
    let g = Netns::new();
    let (h, gs) = (host.snapshot(), g.snapshot());
    // The default (kernel) datapath: this kernel has none, so no device appears.
    let line = ovs.pipework(&host, &["ovs-kdp", &g.guest(), "10.3.0.2/24"]).failed();
    assert!(line.contains("no network device appeared"), "{line}");
    assert_eq!(ovs.vsctl_ok(&["list-br"]), "", "the bridge record must be gone");
    assert_eq!(h, host.snapshot());
    assert_eq!(gs, g.snapshot());
}

#[test]
fn a_docker_container_gets_its_id_and_slashed_name_in_external_ids() {
    let host = Netns::new();
    let ovs = Ovs::start(&host);
    ovs.bridge("ovsbr0");
    let c = crate::docker::Container::run();
    ovs.pipework(&host, &["ovsbr0", &c.name, "10.4.0.2/24"]).ok();
    let port = format!("veth1pl{}", c.pid());
    let get = |k: &str| ovs.vsctl_ok(&["get", "Interface", &port, &format!("external_ids:pipework.{k}")]);
    // Docker's own name for it, with the leading '/', as the original stores it.
    assert_eq!(get("containername"), format!("\"/{}\"", c.name));
    let id = get("containerid");
    assert_eq!(id.trim_matches('"').len(), 64, "{id}");
}
