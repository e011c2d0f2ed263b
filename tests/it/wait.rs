//! `pipework --wait`: run inside a guest (a netns process, and a real Docker
//! container with the static binary) while the host attaches the interface later.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::util::{unique, Netns, Run};

/// Long enough for the binary to have started and subscribed; no timing is asserted.
const SETTLE: Duration = Duration::from_millis(300);
/// A generous bound for "soon after": the latency itself belongs in a benchmark.
const SOON: Duration = Duration::from_secs(5);

/// `pipework --wait ARGS` running inside a namespace; killed on drop.
struct Waiting {
    child: Child,
}

impl Waiting {
    fn start(ns: &Netns, args: &[&str]) -> Waiting {
        let child = ns
            .pipework_command(&["--wait"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pipework --wait");
        std::thread::sleep(SETTLE);
        Waiting { child }
    }

    #[track_caller]
    fn assert_still_waiting(&mut self, when: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("--wait ended {when}: {status}, stderr {:?}", self.stderr());
        }
    }

    /// The exit status, once it comes; panics after [`SOON`].
    fn exit_soon(&mut self) -> ExitStatus {
        let deadline = Instant::now() + SOON;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "--wait still running {SOON:?} after the interface was ready");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&mut self) -> String {
        use std::io::Read;
        let mut s = String::new();
        if self.child.try_wait().ok().flatten().is_some() {
            let _ = self.child.stderr.take().map(|mut e| e.read_to_string(&mut s));
        }
        s
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn wait_returns_once_the_host_attaches_eth1() {
    let host = Netns::new();
    let guest = Netns::new();
    let mut waiting = Waiting::start(&guest, &[]);
    waiting.assert_still_waiting("before eth1 existed");
    host.pipework(&["br1", &guest.guest(), "10.0.0.2/24"]).ok();
    let status = waiting.exit_soon();
    assert!(status.success(), "{status}, stderr {:?}", waiting.stderr());
}

#[test]
fn an_interface_that_exists_but_is_down_or_without_carrier_does_not_end_the_wait() {
    let guest = Netns::new();
    // Both ends inside the guest: eth1 has carrier only once its peer is up too.
    guest.sh("ip", &["link", "add", "eth2", "type", "veth", "peer", "name", "eth2p"]);
    let mut waiting = Waiting::start(&guest, &["-i", "eth2"]);
    waiting.assert_still_waiting("while eth2 was down");
    guest.sh("ip", &["link", "set", "eth2", "up"]);
    std::thread::sleep(SETTLE);
    waiting.assert_still_waiting("while eth2 was up without carrier");
    guest.sh("ip", &["link", "set", "eth2p", "up"]);
    let status = waiting.exit_soon();
    assert!(status.success(), "{status}, stderr {:?}", waiting.stderr());
}

#[test]
fn timeout_exits_1_naming_what_is_still_missing() {
    let guest = Netns::new();
    let run = |args: &[&str]| {
        let mut cmd = guest.pipework_command(&["--wait"]);
        Run::from(cmd.args(args).stdin(Stdio::null()).output().unwrap())
    };
    let line = run(&["--timeout", "1"]).failed();
    assert_eq!(line, "pipework: timed out after 1 s waiting for eth1 to exist");
    guest.sh("ip", &["link", "add", "eth3", "type", "veth", "peer", "name", "eth3p"]);
    let line = run(&["-i", "eth3", "--timeout", "0.3"]).failed();
    assert_eq!(line, "pipework: timed out after 0.3 s waiting for eth3 to be up");
    guest.sh("ip", &["link", "set", "eth3", "up"]);
    let line = run(&["--timeout", "0.3", "-i", "eth3"]).failed();
    assert_eq!(line, "pipework: timed out after 0.3 s waiting for eth3 to have carrier");
}

/// The static build that scripts/test.sh makes before `cargo test`; it has to be
/// at least as new as the sources, or the container would run old code.
fn static_binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Where cargo builds: CARGO_TARGET_DIR when the caller set one (relative to the
    // working directory, as cargo takes it), else target/ beside the manifest.
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let bin = target.join("x86_64-unknown-linux-gnu/release/pipework");
    let how = "build it with: RUSTFLAGS='-C target-feature=+crt-static' cargo build --release \
               --target x86_64-unknown-linux-gnu (scripts/test.sh does)";
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("no static binary at {}; {how}", bin.display()));
    let newest = newest_mtime(&root.join("src"));
    assert!(built >= newest, "{} is older than the sources; {how}", bin.display());
    bin
}

fn newest_mtime(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let meta = entry.metadata().unwrap();
        let t = if meta.is_dir() { newest_mtime(&entry.path()) } else { meta.modified().unwrap() };
        newest = newest.max(t);
    }
    newest
}

/// A container running `/pipework --wait && touch /ready && sleep 600`; removed on drop.
struct WaitingContainer {
    name: String,
}

impl WaitingContainer {
    fn run(bin: &Path) -> WaitingContainer {
        let name = unique("pwt-w");
        let mount = format!("{}:/pipework:ro", bin.display());
        let out = Command::new("docker")
            .args(["run", "-d", "--init", "--network", "none", "--name", &name, "-v", &mount])
            .args(["busybox", "sh", "-c", "/pipework --wait && touch /ready && sleep 600"])
            .stdin(Stdio::null())
            .output()
            .expect("docker run (is scripts/docker-up.sh done?)");
        assert!(out.status.success(), "docker run: {}", String::from_utf8_lossy(&out.stderr));
        WaitingContainer { name }
    }

    fn ready(&self) -> bool {
        Command::new("docker")
            .args(["exec", &self.name, "test", "-e", "/ready"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    fn running(&self) -> bool {
        let out = Command::new("docker")
            .args(["inspect", "-f", "{{.State.Running}}", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "true"
    }

    fn logs(&self) -> String {
        let out = Command::new("docker").args(["logs", &self.name]).output().unwrap();
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }
}

impl Drop for WaitingContainer {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.name]).stdout(Stdio::null()).status();
    }
}

#[test]
fn docker_service_starts_only_after_the_host_attached_eth1() {
    let bin = static_binary();
    let host = Netns::new();
    let c = WaitingContainer::run(&bin);
    std::thread::sleep(SETTLE);
    assert!(c.running() && !c.ready(), "the service started before eth1 existed: {}", c.logs());
    host.pipework(&["br1", &c.name, "10.0.0.2/24"]).ok();
    let deadline = Instant::now() + SOON;
    while !c.ready() {
        assert!(Instant::now() < deadline, "no /ready {SOON:?} after the attach: {}", c.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
}
