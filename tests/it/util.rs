//! Throw-away worlds for integration tests: a "host" network namespace that the
//! binary runs in, guests that are processes in their own netns, `ip -j` readers,
//! and snapshots to prove that a failed run left everything as it was. Everything
//! is held by a process we started, so dropping it (even on a panic) removes it all.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_pipework");

/// A process alone in a new network namespace (`unshare -n sleep`), killed on drop.
/// As a test's "host", it has a run directory of its own (`PIPEWORK_RUN_DIR`, where
/// the attachments' records go), removed on drop: no test sees another's records,
/// or the machine's.
pub struct Netns {
    child: Child,
    run_dir: PathBuf,
}

impl Netns {
    pub fn new() -> Netns {
        let mine = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
        let child = Command::new("unshare")
            .args(["-n", "sleep", "3600"])
            // A child holding our stdout would make `output()` callers hang.
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("unshare");
        let run_dir = std::env::temp_dir().join(unique("pwt-run-"));
        let ns = Netns { child, run_dir };
        // Right after spawning, /proc/PID/ns/net is still ours until unshare(2) has run.
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::metadata(ns.path()).map(|m| m.ino()).unwrap_or(mine) == mine {
            assert!(Instant::now() < deadline, "unshare never entered a new netns");
            std::thread::sleep(Duration::from_millis(2));
        }
        ns
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.pid())
    }

    /// `PIPEWORK_RUN_DIR` of the binary run here (created by the binary when needed).
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The environment of every run of the binary with this namespace as its host:
    /// its own run directory, and never the machine's Open vSwitch (a test with an
    /// Open vSwitch of its own sets `OVS_RUNDIR` after this). For the runs that
    /// build their own command line (under strace, from a shell).
    pub fn env(&self) -> [(&'static str, &Path); 2] {
        [("PIPEWORK_RUN_DIR", &self.run_dir), ("OVS_RUNDIR", &self.run_dir)]
    }

    /// `pid:N`, the guest form the binary understands.
    pub fn guest(&self) -> String {
        format!("pid:{}", self.pid())
    }

    /// Run a command inside this namespace; panics if it fails.
    pub fn sh(&self, cmd: &str, args: &[&str]) -> String {
        let out = self.run(cmd, args);
        assert!(out.status.success(), "{cmd} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn run(&self, cmd: &str, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net={}", self.path()))
            .arg(cmd)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }

    /// `ip -j ARGS` inside this namespace, parsed.
    pub fn ip_j(&self, args: &[&str]) -> Value {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        let out = self.sh("ip", &all);
        if out.trim().is_empty() {
            return Value::Array(vec![]);
        }
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j {args:?}: {e}: {out}"))
    }

    /// One link by name, or `None`.
    pub fn link(&self, name: &str) -> Option<Value> {
        let links = self.ip_j(&["-d", "link", "show"]);
        links.as_array().unwrap().iter().find(|l| l["ifname"] == name).cloned()
    }

    /// The addresses on `dev` as "ADDR/PREFIX" strings.
    pub fn addrs(&self, dev: &str) -> Vec<String> {
        let v = self.ip_j(&["addr", "show", "dev", dev]);
        v[0]["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
            .collect()
    }

    /// `net.ipv6.conf.DEV.disable_ipv6` as this namespace shows it (`DEV` may be
    /// `all` or `default`); /proc/sys/net is read by a process inside it.
    pub fn ipv6_disabled(&self, dev: &str) -> String {
        self.sh("cat", &[&format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6")]).trim().to_string()
    }

    /// Turn IPv6 off for new links here, as Docker does in every container that is
    /// not on an IPv6 network (`all` and `default`).
    pub fn ipv6_off_as_docker_does(&self) {
        self.sh(
            "sysctl",
            &["-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"],
        );
    }

    /// Everything a run could change here, read back with `ip -j`; comparable
    /// before and after. Counters and timers are left out.
    pub fn snapshot(&self) -> String {
        self.until_dad_settles();
        self.until_carrier_settles();
        let mut parts = Vec::new();
        for args in [
            &["link", "show"][..],
            &["addr", "show"][..],
            &["-4", "route", "show", "table", "all"][..],
            &["-6", "route", "show", "table", "all"][..],
        ] {
            let mut v = self.ip_j(args);
            strip_volatile(&mut v);
            // The kernel lists routes in the order they were (re)made: a link that
            // went and came back moves its routes to the end. The set is what counts.
            if let (true, Value::Array(routes)) = (args.contains(&"route"), &mut v) {
                routes.sort_by_key(|r| r.to_string());
            }
            parts.push(format!("{args:?}: {v}"));
        }
        parts.join("\n")
    }

    /// Wait (at most 2 s) until no link is both up with carrier and NO-CARRIER: a
    /// link set up a moment ago (a NIC given back by a rollback) shows both until the
    /// kernel's linkwatch work has run, asynchronously; that is no difference of ours.
    /// Likewise an up link with neither (a bridge whose last port just went, on a
    /// busy machine): NO-CARRIER comes when that work has run.
    pub fn until_carrier_settles(&self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            let links = self.ip_j(&["link", "show"]);
            let unsettled = links.as_array().into_iter().flatten().any(|l| {
                let flags = l["flags"].as_array().cloned().unwrap_or_default();
                let has = |f: &str| flags.iter().any(|x| x == f);
                (has("NO-CARRIER") && has("LOWER_UP"))
                    || (has("UP") && !has("LOWER_UP") && !has("NO-CARRIER"))
            });
            if !unsettled {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Wait (at most 5 s) until no IPv6 address here is under duplicate address
    /// detection: the kernel adds an address's local route only when DAD ends, so a
    /// snapshot taken during it would differ from one taken after for no fault of ours.
    pub fn until_dad_settles(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let out = self.run("ip", &["-6", "addr", "show", "tentative", "-dadfailed"]);
            if out.stdout.is_empty() && self.ipv6_local_routes_are_there() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Each IPv6 address has its `local` route: the kernel adds it with the address
    /// once DAD is done, but a snapshot taken in between (seen on a loaded machine
    /// for a NIC just back from a guest) lacks it.
    fn ipv6_local_routes_are_there(&self) -> bool {
        let addrs = self.ip_j(&["-6", "addr", "show"]);
        let locals = self.ip_j(&["-6", "route", "show", "table", "local", "type", "local"]);
        let has = |a: &str| locals.as_array().into_iter().flatten().any(|r| r["dst"] == a);
        addrs
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["operstate"] != "DOWN")
            .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a["local"].as_str().map(String::from))
            .all(|a| has(&a))
    }

    /// Ping `addr` once from here (traffic stays on our own bridge).
    pub fn ping(&self, addr: &str) -> bool {
        self.run("ping", &["-c", "1", "-W", "3", addr]).status.success()
    }

    /// Run the binary with its namespace set to this one (the test's "host").
    pub fn pipework(&self, args: &[&str]) -> Run {
        self.pipework_env(args, &[])
    }

    /// The binary with its namespace set to this one, not started yet (nsenter execs
    /// it: the child's pid is pipework's own).
    pub fn pipework_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.path())).arg(BIN).args(args);
        cmd.envs(self.env());
        cmd
    }

    /// The same, with extra environment variables.
    pub fn pipework_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out = self
            .pipework_command(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("run pipework");
        Run::from(out)
    }

    /// Start the binary here without waiting for it, in a process group of its own
    /// as a shell's job would be (the child's pid is pipework's own, and the group's id).
    pub fn spawn_pipework(&self, args: &[&str]) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        self.pipework_command(args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pipework")
    }
}

/// A guest that already has a default route through an interface of its own.
pub fn guest_with_default_route() -> Netns {
    let guest = Netns::new();
    guest.sh("ip", &["link", "add", "up0", "type", "veth", "peer", "name", "up0p"]);
    guest.sh("ip", &["link", "set", "up0", "up"]);
    guest.sh("ip", &["addr", "add", "172.31.0.2/24", "dev", "up0"]);
    guest.sh("ip", &["route", "add", "default", "via", "172.31.0.1"]);
    guest
}

impl Netns {
    /// End the namespace's process (the namespace goes with it, unless held).
    pub fn end(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// State that moves by itself after a change (a bridge's operstate going from
/// UNKNOWN to UP, IPv6 duplicate address detection finishing) is not ours to compare.
fn strip_volatile(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("operstate");
            map.remove("tentative");
            map.values_mut().for_each(strip_volatile);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_volatile),
        _ => {}
    }
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success, got {self:?}");
        self
    }

    /// Failed with exit 1 and exactly one line on stderr, which is returned.
    #[track_caller]
    pub fn failed(self) -> String {
        assert_eq!(self.code, 1, "expected exit 1, got {self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one line on stderr, got {self:?}");
        lines[0].to_string()
    }
}

/// Run the binary in the test's own namespace, for what touches no network.
pub fn pipework_here(args: &[&str]) -> Run {
    // Nothing here attaches; should it, no record reaches the machine's directory.
    let run_dir = std::env::temp_dir().join(unique("pwt-run-"));
    let out = Command::new(BIN).args(args).env("PIPEWORK_RUN_DIR", &run_dir).stdin(Stdio::null()).output();
    let _ = std::fs::remove_dir_all(&run_dir);
    Run::from(out.expect("run pipework"))
}

/// A name no other test (or earlier run) uses: tests run in parallel.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{:x}{n}", std::process::id() & 0xffff)
}

/// Assert two snapshots are equal, printing both when they are not.
#[track_caller]
pub fn assert_same(what: &str, before: &str, after: &str) {
    if before != after {
        panic!("{what} changed.\n--- before:\n{before}\n--- after:\n{after}");
    }
}

/// Run `args` twice: the second run must succeed and change nothing anywhere.
#[track_caller]
pub fn assert_rerun_changes_nothing(host: &Netns, guest: &Netns, args: &[&str]) {
    host.pipework(args).ok();
    let (h, g) = (host.snapshot(), guest.snapshot());
    host.pipework(args).ok();
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
}

/// The bridge lock of the runs with `host` as their host, held shared as an attach
/// between its lookup of a bridge and its port holds it, until dropped.
pub fn hold_bridge_lock(host: &Netns) -> nix::fcntl::Flock<std::fs::File> {
    std::fs::create_dir_all(host.run_dir()).unwrap();
    let path = host.run_dir().join("bridges.lock");
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).unwrap();
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockShared).map_err(|(_, e)| e).unwrap()
}
