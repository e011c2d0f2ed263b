//! `pipework watch` against the real Docker daemon: containers that declare
//! attachments (labels, the dreamcat4/pipework image's environment variables) are
//! attached when they start, again after `docker restart`, cleaned up when they die;
//! a burst of 30; bad declarations; shell metacharacters; what an image declares,
//! applied only with `--trust-images`; a daemon restarted under the watcher (a
//! dockerd of the test's own, never the shared one). Every watcher runs in a test
//! host namespace with a key of its own, so that it serves only its test's
//! containers (the daemon is shared with the other tests).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use crate::util::{unique, Netns};

/// `pipework watch --json --key KEY` in `host`; its stderr, one JSON object a line,
/// collected by a thread. Stopped with SIGTERM on drop.
struct Watcher {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
    key: String,
}

impl Watcher {
    fn start(host: &Netns, env: &[(&str, &str)]) -> Watcher {
        Self::start_as(host, env, &unique("key"))
    }

    /// Another watcher with the key of a first one.
    fn start_with_key(host: &Netns, key: &str) -> Watcher {
        Self::start_as(host, &[], key)
    }

    fn start_as(host: &Netns, env: &[(&str, &str)], key: &str) -> Watcher {
        let w = Self::spawn(host, env, key);
        w.wait_for("the first reconcile", 20, |l| l["action"] == "reconcile");
        w
    }

    /// Started, not waited for.
    fn spawn(host: &Netns, env: &[(&str, &str)], key: &str) -> Watcher {
        Self::spawn_with(host, env, &["--json", "--key", key])
    }

    /// `pipework watch ARGS`; a line that is not JSON is kept as `{"not_json": LINE}`.
    fn spawn_with(host: &Netns, env: &[(&str, &str)], args: &[&str]) -> Watcher {
        let key = args.iter().skip_while(|a| **a != "--key").nth(1).unwrap_or(&"").to_string();
        let mut cmd = host.pipework_command(&[&["watch"][..], args].concat());
        cmd.envs(env.iter().copied());
        Self::spawn_command(cmd, &key)
    }

    /// `cmd`, a watcher's command line (under strace, say), started.
    fn spawn_command(mut cmd: Command, key: &str) -> Watcher {
        use std::os::unix::process::CommandExt;
        let key = key.to_string();
        let mut child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pipework watch");
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // A line that is not JSON is a defect the JSON tests see as such.
                let v = serde_json::from_str(&line).unwrap_or_else(|_| json!({ "not_json": line }));
                sink.lock().unwrap().push(v);
            }
        });
        Watcher { child, lines, key }
    }

    /// What the watcher's open descriptors are (`readlink /proc/PID/fd/*`).
    fn open_files(&self) -> Vec<String> {
        let dir = format!("/proc/{}/fd", self.child.id());
        let fds = std::fs::read_dir(dir).into_iter().flatten().flatten();
        fds.filter_map(|e| std::fs::read_link(e.path()).ok()).map(|p| p.display().to_string()).collect()
    }

    fn lines(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    /// The first line that `pred` accepts, waited for at most `secs`.
    #[track_caller]
    fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_n(what, secs, 1, pred).remove(0)
    }

    #[track_caller]
    fn wait_for_n(&self, what: &str, secs: u64, n: usize, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let found: Vec<Value> = self.lines().into_iter().filter(|l| pred(l)).collect();
            if found.len() >= n {
                return found;
            }
            if Instant::now() > deadline {
                panic!("{what}: {} of {n} after {secs} s; the log:\n{}", found.len(), self.dump());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn about(&self, name: &str) -> Vec<Value> {
        self.lines().into_iter().filter(|l| l["container"] == name).collect()
    }

    fn dump(&self) -> String {
        self.lines().iter().map(Value::to_string).collect::<Vec<_>>().join("\n")
    }

    /// SIGTERM; the exit status (None: it had to be killed).
    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// `attach` lines about `name` that succeeded.
fn attached(l: &Value, name: &str) -> bool {
    l["container"] == name && l["action"] == "attach" && l["ok"] == true
}

/// `docker`, at the shared daemon or at `host` (`unix://...`).
fn docker(host: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new("docker");
    if let Some(h) = host {
        cmd.args(["-H", h]);
    }
    cmd.args(args).stdin(Stdio::null()).output().expect("docker (scripts/docker-up.sh)")
}

/// A container of ours (`--init --network none`), removed on drop.
struct Declared {
    name: String,
    daemon: Option<String>,
}

impl Declared {
    /// `extra`: more `docker run` options (`-l`, `-e`, `--restart`).
    fn run(name: &str, key: &str, extra: &[&str]) -> Declared {
        Self::run_at(None, name, key, extra)
    }

    fn run_at(daemon: Option<&str>, name: &str, key: &str, extra: &[&str]) -> Declared {
        Self::run_image(daemon, "busybox", name, key, extra)
    }

    /// From `image` (one of ours, made by [`Image::commit`], or busybox).
    fn run_image(daemon: Option<&str>, image: &str, name: &str, key: &str, extra: &[&str]) -> Declared {
        let c = Declared { name: name.to_string(), daemon: daemon.map(str::to_string) };
        let key = format!("pipework_key={key}");
        let mut args = vec!["run", "-d", "--init", "--network", "none", "--name", name, "-e", &key];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[image, "sleep", "600"]);
        let out = docker(daemon, &args);
        assert!(out.status.success(), "docker run: {}", String::from_utf8_lossy(&out.stderr));
        c
    }

    fn docker(&self, args: &[&str]) -> Output {
        docker(self.daemon.as_deref(), args)
    }

    fn pid(&self) -> String {
        let out = self.docker(&["inspect", "-f", "{{.State.Pid}}", &self.name]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn running(&self) -> bool {
        let out = self.docker(&["inspect", "-f", "{{.State.Running}}", &self.name]);
        String::from_utf8_lossy(&out.stdout).trim() == "true"
    }

    /// `ip -4 addr show DEV` and `ip route` inside, from busybox.
    fn inside(&self, args: &[&str]) -> String {
        let mut all = vec!["exec", self.name.as_str()];
        all.extend_from_slice(args);
        String::from_utf8_lossy(&self.docker(&all).stdout).into_owned()
    }
}

impl Drop for Declared {
    fn drop(&mut self) {
        let _ = self.docker(&["rm", "-f", &self.name]);
    }
}

/// An image of ours: busybox with `docker commit --change` (`LABEL ...`, `ENV ...`), as
/// one pulled from a registry could come; removed on drop (after its containers).
struct Image(String);

impl Image {
    fn commit(changes: &[String]) -> Image {
        let image = Image(format!("{}:1", unique("pww-img")));
        let base = unique("pww-base");
        let out = docker(None, &["create", "--name", &base, "busybox", "true"]);
        assert!(out.status.success(), "docker create: {}", String::from_utf8_lossy(&out.stderr));
        let mut args = vec!["commit"];
        for c in changes {
            args.extend(["--change", c.as_str()]);
        }
        args.extend([base.as_str(), image.0.as_str()]);
        let out = docker(None, &args);
        let _ = docker(None, &["rm", "-f", &base]);
        assert!(out.status.success(), "docker commit: {}", String::from_utf8_lossy(&out.stderr));
        image
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = docker(None, &["rmi", "-f", &self.0]);
    }
}

/// The records of Docker containers' attachments in `host`'s run directory.
fn records(host: &Netns) -> Vec<PathBuf> {
    let dir = host.run_dir().join("attachments");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("\"docker:")))
        .collect();
    found.sort();
    found
}

/// The host's links that are ports of `bridge`.
fn ports(host: &Netns, bridge: &str) -> Vec<String> {
    let links = host.ip_j(&["link", "show", "master", bridge]);
    links.as_array().into_iter().flatten().filter_map(|l| l["ifname"].as_str().map(String::from)).collect()
}

/// Live `pipework __dhcp-keep` processes started from `host`'s watcher (their
/// environment has its run directory).
fn keepers(host: &Netns) -> Vec<u32> {
    let mark = format!("PIPEWORK_RUN_DIR={}", host.run_dir().display());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat.rsplit(')').next().is_some_and(|s| s.trim_start().starts_with('Z'));
        let has = |hay: &[u8], needle: &[u8]| hay.split(|&b| b == 0).any(|w| w == needle);
        if !zombie && has(&cmdline, b"__dhcp-keep") && has(&environ, mark.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

/// `parent`'s children that ended and were not reaped.
fn zombies_of(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
        if fields.first() == Some(&"Z") && fields.get(1) == Some(&parent.to_string().as_str()) {
            found.push(pid);
        }
    }
    found
}

#[track_caller]
fn until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not after {secs} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn watch_attaches_on_start_again_after_restart_and_cleans_up_on_stop() {
    let host = Netns::new();
    let w = Watcher::start(&host, &[]);
    let br = unique("brw");
    assert!(host.link(&br).is_none(), "a bridge that does not exist yet");
    let name = format!("{}-7", unique("pww"));
    let label = format!("pipework.1={br} 10.31.0.2/24@10.31.0.1");
    let env = format!("pipework_cmd_b=pipework {br} -i eth2 @CONTAINER_NAME@ 10.32.0.@INSTANCE@/24");
    let c = Declared::run(&name, &w.key, &["-l", &label, "-e", &env]);
    let first = w.wait_for_n("both declarations attached", 20, 2, |l| attached(l, &name));
    let pid = c.pid();
    assert_eq!(first[0]["declaration"], "label pipework.1");
    assert_eq!(first[0]["host_end"], format!("veth1pl{pid}"));
    assert_eq!(first[0]["addresses"], json!(["10.31.0.2/24"]));
    assert_eq!(first[1]["declaration"], "env pipework_cmd_b");
    assert_eq!(first[1]["addresses"], json!(["10.32.0.7/24"]), "@INSTANCE@ is the name's last number");
    assert!(host.link(&br).is_some(), "the bridge was created, as on the command line");
    assert_eq!(ports(&host, &br), [format!("veth1pl{pid}"), format!("veth2pl{pid}")]);
    assert!(c.inside(&["ip", "-4", "addr", "show", "eth1"]).contains("10.31.0.2/24"));
    assert!(c.inside(&["ip", "route"]).contains("default via 10.31.0.1 dev eth1"));
    assert_eq!(records(&host).len(), 2);

    // A restart: a new process, a new namespace; the old host ends go with the old
    // one, and the attachments come back.
    assert!(c.docker(&["restart", "-t", "1", &name]).status.success());
    let again = w.wait_for_n("attached again after the restart", 30, 4, |l| attached(l, &name));
    let new_pid = c.pid();
    assert_ne!(new_pid, pid);
    assert_eq!(again[2]["host_end"], format!("veth1pl{new_pid}"));
    assert_eq!(again[2]["changed"], true);
    assert!(c.inside(&["ip", "-4", "addr", "show", "eth1"]).contains("10.31.0.2/24"));
    assert!(c.inside(&["ip", "-4", "addr", "show", "eth2"]).contains("10.32.0.7/24"));
    // The first life's host ends went with its namespace (or gc took them from
    // Docker's bind mount of it: then a cleanup line says so). The kernel may give the
    // new namespace the old one's number: then its records are the new life's, and
    // nothing is left to say.
    until("only the new life's ports", 10, || {
        ports(&host, &br) == [format!("veth1pl{new_pid}"), format!("veth2pl{new_pid}")]
    });
    assert_eq!(records(&host).len(), 2, "the new life's records only");

    // Stop and remove: nothing left.
    let cleanup = |l: &Value| l["container"] == name && l["action"] == "cleanup";
    let before = w.lines().iter().filter(|l| cleanup(l)).count();
    assert!(c.docker(&["stop", "-t", "1", &name]).status.success());
    let done = w.wait_for_n("cleaned up after the stop", 30, before + 1, cleanup);
    let done = done.last().unwrap();
    assert_eq!(done["ok"], true, "{done}");
    let removed = done["message"].as_str().unwrap();
    assert!(
        removed.starts_with(&format!("died: removed eth1 on {br} (host end veth1pl{new_pid}), eth2 on {br}")),
        "{removed}"
    );
    assert_eq!(ports(&host, &br), Vec::<String>::new(), "no host end");
    assert_eq!(records(&host), Vec::<PathBuf>::new(), "no record");
    drop(c);
    let failures: Vec<Value> = w.about(&name).into_iter().filter(|l| l["ok"] != true).collect();
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn watch_the_dhcp4_keeper_ends_with_its_container_and_nothing_is_left() {
    let host = Netns::new();
    let _server = crate::dhcp::Dnsmasq::start(&host);
    let w = Watcher::start(&host, &[]);
    let name = unique("pww-dhcp");
    let c = Declared::run(&name, &w.key, &["-l", "pipework.1=br1 dhcp4-f"]);
    let line = w.wait_for("leased", 30, |l| attached(l, &name));
    assert!(line["addresses"][0].as_str().unwrap().starts_with("10.77.0."), "{line}");
    assert_eq!(keepers(&host).len(), 1, "the keeper renews the lease");
    drop(c);
    w.wait_for("cleaned up", 30, |l| l["container"] == name && l["action"] == "cleanup" && l["ok"] == true);
    until("no keeper", 10, || keepers(&host).is_empty());
    until("no zombie of it in the watcher", 10, || zombies_of(w.child.id()).is_empty());
    assert_eq!(records(&host), Vec::<PathBuf>::new());
    let ends: Vec<String> = ports(&host, "br1").into_iter().filter(|p| p.starts_with("veth1pl")).collect();
    assert_eq!(ends.len(), 1, "only dnsmasq's own port: {ends:?}");
}

/// A container's `dhcp4-f` keeper killed while no watcher runs: the next watcher's
/// reconcile runs the attach again, which starts a new keeper from the lease the
/// gone one held (INIT-REBOOT): the same address, a REQUEST and no new DISCOVER.
#[test]
fn watch_gives_a_container_whose_keeper_died_a_new_one_on_reconcile() {
    let host = Netns::new();
    let server = crate::dhcp::Dnsmasq::start(&host);
    let mut w = Watcher::start(&host, &[]);
    let name = unique("pww-reboot");
    let _c = Declared::run(&name, &w.key, &["-l", "pipework.1=br1 dhcp4-f"]);
    let line = w.wait_for("leased", 30, |l| attached(l, &name));
    let addr = line["addresses"][0].as_str().unwrap().to_string();
    w.stop();
    let old = keepers(&host);
    assert_eq!(old.len(), 1, "{old:?}");
    let _ = kill(Pid::from_raw(old[0] as i32), Signal::SIGKILL);
    until("the keeper ended", 10, || keepers(&host).is_empty());
    let discovers = server.log().matches("DHCPDISCOVER(eth1)").count();
    let w2 = Watcher::start_with_key(&host, &w.key);
    let line = w2.wait_for("attached again", 30, |l| attached(l, &name));
    assert_eq!(line["addresses"][0].as_str(), Some(addr.as_str()), "{line}");
    until("a new keeper", 10, || keepers(&host).len() == 1 && keepers(&host) != old);
    let ip = addr.split('/').next().unwrap().to_string();
    until("dnsmasq acked it again", 10, || {
        server.log().matches(&format!("DHCPACK(eth1) {ip} ")).count() >= 2
    });
    assert_eq!(server.log().matches("DHCPDISCOVER(eth1)").count(), discovers, "{}", server.log());
}

#[test]
fn watch_attaches_a_burst_of_30_containers_started_together() {
    const N: usize = 30;
    let host = Netns::new();
    let w = Watcher::start(&host, &[]);
    let br = unique("brw");
    let prefix = unique("pwwb");
    let names: Vec<String> = (0..N).map(|i| format!("{prefix}-{i}")).collect();
    let key = w.key.clone();
    let containers: Vec<Declared> = std::thread::scope(|s| {
        let started: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let (br, key) = (&br, &key);
                s.spawn(move || {
                    let label = format!("pipework.1={br} 10.40.{}.{}/16", i / 200, 10 + i % 200);
                    Declared::run(name, key, &["-l", &label])
                })
            })
            .collect();
        started.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let done = w.wait_for_n("all 30 attached", 120, N, |l| {
        l["action"] == "attach"
            && l["ok"] == true
            && l["container"].as_str().is_some_and(|n| n.starts_with(&prefix))
    });
    let starts: Vec<f64> = done.iter().filter_map(|l| l["event_time"].as_f64()).collect();
    assert_eq!(starts.len(), N, "each attach names its start event's time");
    let first_start = starts.iter().copied().fold(f64::MAX, f64::min);
    let last_start = starts.iter().copied().fold(0.0, f64::max);
    let last = done.iter().filter_map(|l| l["time"].as_f64()).fold(0.0, f64::max);
    let slowest = done.iter().map(|l| l["time"].as_f64().unwrap() - l["event_time"].as_f64().unwrap());
    let slowest = slowest.fold(0.0, f64::max);
    println!(
        "watch burst: {N} containers; first start event to last attachment {:.3} s; start events \
         spread over {:.3} s; last attachment {:.3} s after the last start event; slowest start \
         to attached {slowest:.3} s",
        last - first_start,
        last_start - first_start,
        last - last_start,
    );
    assert_eq!(ports(&host, &br).len(), N);
    let failures: Vec<Value> = w.lines().into_iter().filter(|l| l["ok"] == false).collect();
    assert!(failures.is_empty(), "{failures:?}");
    std::thread::scope(|s| {
        for c in containers {
            s.spawn(move || drop(c));
        }
    });
    until("every record gone", 60, || records(&host).is_empty());
    until("every host end gone", 30, || ports(&host, &br).is_empty());
}

#[test]
fn watch_reports_a_bad_declaration_in_one_line_and_applies_the_others() {
    let host = Netns::new();
    let w = Watcher::start(&host, &[]);
    let br = unique("brw");
    let name = unique("pww-bad");
    let bad = format!("pipework.1={br} 10.33.0.300/24");
    let good = format!("pipework.2={br} -i eth2 10.33.0.2/24");
    let c = Declared::run(&name, &w.key, &["-l", &bad, "-l", &good]);
    w.wait_for("the good one", 20, |l| attached(l, &name));
    let about = w.about(&name);
    assert_eq!(about.len(), 2, "one line per declaration: {about:?}");
    let failed = &about[0];
    assert_eq!(
        (failed["ok"].as_bool(), failed["declaration"].as_str()),
        (Some(false), Some("label pipework.1"))
    );
    let message = failed["message"].as_str().unwrap();
    assert!(message.starts_with("label pipework.1: ") && message.contains("10.33.0.300/24"), "{message}");
    assert!(!message.contains('\n'));
    assert!(c.running(), "the container goes on");
    assert!(!c.inside(&["ip", "link"]).contains("eth1"), "nothing of the bad declaration");
    assert!(c.inside(&["ip", "-4", "addr", "show", "eth2"]).contains("10.33.0.2/24"));
}

#[test]
fn watch_never_runs_a_shell_on_what_labels_say() {
    let host = Netns::new();
    let w = Watcher::start(&host, &[]);
    let br = unique("brw");
    let dir = std::env::temp_dir().join(unique("pww-marks"));
    std::fs::create_dir_all(&dir).unwrap();
    let mark = |n: u32| dir.join(format!("m{n}")).display().to_string();
    let labels = [
        format!("pipework.1={br} 10.34.0.2/24;touch {}", mark(1)),
        format!("pipework.2={br} -i eth2 10.34.0.3/24 $(touch {})", mark(2)),
        format!("pipework.3={br} -i eth3 `touch {}` 10.34.0.4/24", mark(3)),
        format!("pipework.4={br} -i eth4 10.34.0.5/24 && touch {}", mark(4)),
        format!("pipework.5={br} -i 'eth5|touch {}' 10.34.0.6/24", mark(5)),
        // Harmless where it stands: the text a MAC is derived from.
        format!("pipework.6={br} -i eth6 10.34.0.7/24 'U:$(touch {})'", mark(6)),
    ];
    let mut args = Vec::new();
    for l in &labels {
        args.extend(["-l", l.as_str()]);
    }
    let name = unique("pww-sh");
    let c = Declared::run(&name, &w.key, &args);
    w.wait_for_n("every declaration said", 20, labels.len(), |l| {
        l["container"] == name && l["action"] == "attach"
    });
    let about = w.about(&name);
    let oks: Vec<bool> = about.iter().map(|l| l["ok"] == true).collect();
    assert_eq!(oks, [false, false, false, false, false, true], "{about:?}");
    for n in 1..=6 {
        assert!(!std::path::Path::new(&mark(n)).exists(), "mark {n} made: a shell ran");
    }
    assert!(c.inside(&["ip", "-4", "addr", "show", "eth6"]).contains("10.34.0.7/24"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A dockerd of the test's own (its socket, data, exec root and containerd), told
/// to leave the host's network alone as scripts/docker-up.sh does; stopped by PID.
struct OwnDockerd {
    dir: PathBuf,
    child: Option<Child>,
}

impl OwnDockerd {
    fn new() -> OwnDockerd {
        let dir = std::env::temp_dir().join(unique("pww-dockerd"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut d = OwnDockerd { dir, child: None };
        d.start();
        // The image, from the shared daemon.
        let save = Command::new("docker").args(["save", "busybox:latest"]).output().unwrap();
        assert!(save.status.success());
        let mut load = Command::new("docker")
            .args(["-H", &d.host(), "load"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::io::Write::write_all(load.stdin.as_mut().unwrap(), &save.stdout).unwrap();
        drop(load.stdin.take());
        assert!(load.wait().unwrap().success(), "docker load");
        d
    }

    fn host(&self) -> String {
        format!("unix://{}/docker.sock", self.dir.display())
    }

    fn start(&mut self) {
        let path = |p: &str| self.dir.join(p).display().to_string();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(path("log")).unwrap();
        let child = Command::new("dockerd")
            .args(["--host", &self.host(), "--data-root", &path("data"), "--exec-root", &path("exec")])
            .args(["--pidfile", &path("pid"), "--bridge=none", "--iptables=false", "--ip6tables=false"])
            .args(["--ip-forward=false"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd");
        self.child = Some(child);
        until("our dockerd answers", 60, || docker(Some(&self.host()), &["version"]).status.success());
    }

    /// SIGTERM to our dockerd (its containers stop with it), and wait for it.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnDockerd {
    fn drop(&mut self) {
        // Its containers stop with it (no live restore).
        self.stop();
        // What a dockerd that was killed may have left mounted under its directories.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut ours: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| m.starts_with(self.dir.to_str().unwrap()))
            .collect();
        ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in ours {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn watch_reconnects_when_dockerd_restarts_and_catches_up() {
    let mut daemon = OwnDockerd::new();
    let dh = daemon.host();
    let host = Netns::new();
    let w = Watcher::start(&host, &[("DOCKER_HOST", &dh)]);
    let br = unique("brw");
    let name = unique("pww-re");
    let label = format!("pipework.1={br} 10.35.0.2/24");
    let c = Declared::run_at(Some(&dh), &name, &w.key, &["--restart", "always", "-l", &label]);
    w.wait_for("attached", 20, |l| attached(l, &name));
    let pid = c.pid();
    daemon.stop();
    w.wait_for("the stream's end seen", 20, |l| l["action"] == "disconnect");
    daemon.start();
    let t0 = Instant::now();
    let again = w.wait_for_n("attached again", 60, 2, |l| attached(l, &name));
    println!(
        "watch reconnect: attached again {:.1} s after our dockerd answered",
        t0.elapsed().as_secs_f64()
    );
    let new_pid = c.pid();
    assert_ne!(pid, new_pid, "the restart policy started it anew");
    assert_eq!(again[1]["host_end"], format!("veth1pl{new_pid}"));
    assert!(w.lines().iter().filter(|l| l["action"] == "connect").count() >= 2, "{}", w.dump());
    assert_eq!(ports(&host, &br), [format!("veth1pl{new_pid}")]);
    println!("watch reconnect, the log:\n{}", w.dump());
    drop(c);
    until("its records gone", 30, || records(&host).is_empty());
}

#[test]
fn watch_ends_cleanly_on_sigterm_and_leaves_the_attachments() {
    let host = Netns::new();
    let mut w = Watcher::start(&host, &[]);
    let br = unique("brw");
    let name = unique("pww-term");
    let label = format!("pipework.1={br} 10.36.0.2/24");
    let c = Declared::run(&name, &w.key, &["-l", &label]);
    w.wait_for("attached", 20, |l| attached(l, &name));
    // Waiting for events, it holds no namespace and no lock.
    std::thread::sleep(Duration::from_millis(300));
    let open = w.open_files();
    assert!(!open.iter().any(|f| f.starts_with("net:") || f.ends_with(".lock")), "{open:?}");
    let status = w.stop().expect("it ends on SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    let last = w.lines().last().cloned().unwrap();
    assert_eq!((last["action"].as_str(), last["ok"].as_bool()), (Some("stop"), Some(true)), "{last}");
    assert_eq!(ports(&host, &br), [format!("veth1pl{}", c.pid())], "the attachment stays");
    assert_eq!(records(&host).len(), 1);
    // A watcher started again finds it in place and leaves it alone.
    let w2 = Watcher::start_with_key(&host, &w.key);
    let line = w2.wait_for("reconciled", 20, |l| l["container"] == name);
    assert_eq!((line["ok"].as_bool(), line["changed"].as_bool()), (Some(true), Some(false)), "{line}");
}

#[test]
fn watch_skips_a_container_gone_before_its_turn_without_a_word() {
    let host = Netns::new();
    let w = Watcher::start(&host, &[]);
    let br = unique("brw");
    let name = unique("pww-gone");
    let label = format!("pipework.1={br} 10.37.0.2/24");
    let key = format!("pipework_key={}", w.key);
    // It ends at once: its start event comes, but the container is gone by then.
    let out = docker(
        None,
        &[
            "run",
            "-d",
            "--init",
            "--network",
            "none",
            "--name",
            &name,
            "-e",
            &key,
            "-l",
            &label,
            "busybox",
            "true",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let _c = Declared { name: name.clone(), daemon: None };
    until("it exited", 10, || {
        docker(None, &["inspect", "-f", "{{.State.Status}}", &name]).stdout.starts_with(b"exited")
    });
    // A later container's line: by then the watcher has seen the first one's events.
    let later = unique("pww-later");
    let label = format!("pipework.1={br} 10.37.0.3/24");
    let _d = Declared::run(&later, &w.key, &["-l", &label]);
    w.wait_for("the later one attached", 20, |l| attached(l, &later));
    let failed: Vec<Value> = w.about(&name).into_iter().filter(|l| l["ok"] != true).collect();
    assert!(failed.is_empty(), "{failed:?}");
}

#[test]
fn watch_retries_a_daemon_that_is_not_there_with_a_growing_pause() {
    let host = Netns::new();
    let dir = std::env::temp_dir().join(unique("pww-nodaemon"));
    let sock = format!("unix://{}/docker.sock", dir.display());
    let mut w = Watcher::spawn(&host, &[("DOCKER_HOST", &sock)], "k");
    let tries = w.wait_for_n("three tries", 10, 3, |l| l["action"] == "disconnect");
    let said: Vec<&str> = tries.iter().map(|l| l["message"].as_str().unwrap()).collect();
    assert!(said[0].starts_with("cannot follow Docker's events: cannot connect to Docker at "), "{said:?}");
    assert!(said[0].ends_with("; again in 250ms") && said[1].ends_with("; again in 500ms"), "{said:?}");
    assert!(said[2].ends_with("; again in 1s"), "{said:?}");
    assert!(w.stop().expect("it ends on SIGTERM").success());
}

#[test]
fn watch_refuses_a_daemon_it_cannot_reach_over_a_socket() {
    let host = Netns::new();
    let run = host.pipework_env(&["watch"], &[("DOCKER_HOST", "tcp://127.0.0.1:2375")]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stderr.trim(),
        "pipework: pipework watch talks to the Docker Engine API socket: DOCKER_HOST must be unset or unix://PATH"
    );
}

#[test]
fn watch_removes_the_open_vswitch_port_of_a_container_that_is_gone() {
    let host = Netns::new();
    let ovs = crate::ovs::Ovs::start(&host);
    ovs.bridge("ovsbr0");
    let env = ovs.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let w = Watcher::start(&host, &env);
    let name = unique("pww-ovs");
    let c = Declared::run(&name, &w.key, &["-l", "pipework.1=ovsbr0 10.38.0.2/24"]);
    let line = w.wait_for("attached", 20, |l| attached(l, &name));
    let end = format!("veth1pl{}", c.pid());
    assert_eq!(line["host_end"], end);
    assert_eq!(ovs.vsctl_ok(&["list-ports", "ovsbr0"]), end);
    drop(c);
    let done = w.wait_for("cleaned up", 30, |l| l["container"] == name && l["action"] == "cleanup");
    assert_eq!(done["ok"], true, "{done}");
    assert_eq!(ovs.vsctl_ok(&["list-ports", "ovsbr0"]), "", "no Open vSwitch port");
    assert_eq!(records(&host), Vec::<PathBuf>::new(), "no record");
    assert!(host.link(&end).is_none(), "no host end");
}

#[test]
fn watch_says_one_line_per_action_in_words_without_json() {
    let host = Netns::new();
    let key = unique("key");
    let w = Watcher::spawn_with(&host, &[], &["--key", &key]);
    w.wait_for("the first reconcile", 20, |l| {
        l["not_json"].as_str().is_some_and(|t| t.contains("reconciling"))
    });
    let br = unique("brw");
    let name = unique("pww-words");
    let (good, bad) =
        (format!("pipework.1={br} 10.39.0.2/24"), format!("pipework.2={br} -i eth2 10.39.0.300/24"));
    let c = Declared::run(&name, &key, &["-l", &good, "-l", &bad]);
    let said =
        w.wait_for_n("both said", 20, 2, |l| l["not_json"].as_str().is_some_and(|t| t.contains(&name)));
    let said: Vec<&str> = said.iter().map(|l| l["not_json"].as_str().unwrap()).collect();
    let pid = c.pid();
    assert_eq!(
        said[0],
        format!("pipework: watch: {name}: label pipework.1: attached eth1 to {br} (10.39.0.2/24; host end veth1pl{pid})")
    );
    assert_eq!(
        said[1],
        format!(
            "pipework: watch: {name}: failed: label pipework.2: bad IPSPEC '10.39.0.300/24': expected \
             ADDR/PREFIX[@GATEWAY], 0/0, or a DHCP client (ADDR '10.39.0.300' is not an IP address)"
        )
    );
}

/// `skip` lines about `name`.
fn skipped(l: &Value, name: &str) -> bool {
    l["container"] == name && l["action"] == "skip"
}

#[test]
fn watch_applies_what_an_image_declares_only_when_it_trusts_images() {
    let host = Netns::new();
    let (key, br) = (unique("key"), unique("brw"));
    let image = Image::commit(&[
        format!("LABEL pipework.1=\"{br} 10.41.0.2/24\""),
        format!("ENV pipework_cmd=\"{br} -i eth2 @CONTAINER_NAME@ 10.41.0.3/24\""),
    ]);
    // A container that only inherits them: nothing applied, and the words say why.
    let w = Watcher::spawn_with(&host, &[], &["--key", &key]);
    w.wait_for("the first reconcile", 20, |l| {
        l["not_json"].as_str().is_some_and(|t| t.contains("reconciling"))
    });
    let a_name = unique("pww-img-a");
    let a = Declared::run_image(None, &image.0, &a_name, &key, &[]);
    let said =
        w.wait_for_n("both said", 20, 2, |l| l["not_json"].as_str().is_some_and(|t| t.contains(&a_name)));
    let said: Vec<&str> = said.iter().map(|l| l["not_json"].as_str().unwrap()).collect();
    let why = |source: &str| {
        format!(
            "pipework: watch: {a_name}: {source}: not applied: declared by the image {}, not by the \
             container (pipework watch --trust-images applies what images declare; or set it with \
             docker run -l/-e)",
            image.0
        )
    };
    assert_eq!(said, [why("label pipework.1"), why("env pipework_cmd")]);
    drop(w);

    // The same in JSON, at a reconcile; and a container that sets its own label.
    let w = Watcher::start_with_key(&host, &key);
    let lines = w.wait_for_n("a's two skipped", 20, 2, |l| skipped(l, &a_name));
    assert_eq!(
        (lines[0]["declaration"].as_str(), lines[0]["ok"].as_bool()),
        (Some("label pipework.1"), Some(true))
    );
    assert_eq!(
        (lines[1]["declaration"].as_str(), lines[1]["from_image"].as_bool()),
        (Some("env pipework_cmd"), Some(true))
    );
    assert_eq!(lines[0]["image"], image.0.as_str());
    assert!(lines[0]["image_id"].as_str().is_some_and(|i| i.starts_with("sha256:")), "{}", lines[0]);
    assert!(!a.inside(&["ip", "link"]).contains("eth1"), "nothing attached");
    assert!(host.link(&br).is_none(), "nothing made on the host");
    let b_name = unique("pww-img-b");
    let own = format!("pipework.1={br} 10.41.0.4/24");
    let b = Declared::run_image(None, &image.0, &b_name, &key, &["-l", &own]);
    let line = w.wait_for("b's own label attached", 20, |l| attached(l, &b_name));
    assert_eq!(
        (line["declaration"].as_str(), &line["addresses"]),
        (Some("label pipework.1"), &json!(["10.41.0.4/24"]))
    );
    let line = w.wait_for("b's inherited variable skipped", 20, |l| skipped(l, &b_name));
    assert_eq!(line["declaration"], "env pipework_cmd");
    assert!(b.inside(&["ip", "-4", "addr", "show", "eth1"]).contains("10.41.0.4/24"));
    assert!(!b.inside(&["ip", "link"]).contains("eth2"));
    drop(w);

    // --trust-images: what the images declare is applied too.
    let w = Watcher::spawn_with(&host, &[], &["--json", "--key", &key, "--trust-images"]);
    let done = w.wait_for_n("a's two attached", 20, 2, |l| attached(l, &a_name));
    let addresses: Vec<&Value> = done.iter().map(|l| &l["addresses"][0]).collect();
    assert_eq!(addresses, [&json!("10.41.0.2/24"), &json!("10.41.0.3/24")]);
    let done = w.wait_for_n("b's label in place, its variable attached", 20, 2, |l| attached(l, &b_name));
    assert_eq!((done[0]["changed"].as_bool(), done[1]["changed"].as_bool()), (Some(false), Some(true)));
    assert!(a.inside(&["ip", "-4", "addr", "show", "eth2"]).contains("10.41.0.3/24"));
    assert_eq!(ports(&host, &br).len(), 4);
    assert!(!w.lines().iter().any(|l| skipped(l, &a_name) || skipped(l, &b_name)), "{}", w.dump());
}

#[test]
fn watch_applies_nothing_of_a_container_whose_image_cannot_be_inspected() {
    let host = Netns::new();
    let w = Watcher::start(&host, &[]);
    let br = unique("brw");
    let image = Image::commit(&[format!("LABEL pipework.1=\"{br} 10.42.0.2/24\"")]);
    let name = unique("pww-img-gone");
    let (key, own) = (format!("pipework_key={}", w.key), format!("pipework.2={br} -i eth2 10.42.0.3/24"));
    let mut args: Vec<&str> = "create --init --network none".split(' ').collect();
    args.extend(["--name", &name, "-e", &key, "-l", &own, &image.0, "sleep", "600"]);
    let out = docker(None, &args);
    assert!(out.status.success(), "{out:?}");
    let c = Declared { name: name.clone(), daemon: None };
    // Docker deletes an image that only stopped containers use, and starts them still.
    assert!(docker(None, &["rmi", "-f", &image.0]).status.success());
    assert!(docker(None, &["start", &name]).status.success());
    let lines = w.wait_for_n("both skipped", 20, 2, |l| skipped(l, &name));
    let sources: Vec<&str> = lines.iter().map(|l| l["declaration"].as_str().unwrap()).collect();
    assert_eq!(sources, ["label pipework.1", "label pipework.2"], "its own label too: who can tell");
    let message = lines[0]["message"].as_str().unwrap();
    let said =
        format!("label pipework.1: not applied: cannot tell whether the image {} declares it", image.0);
    assert!(message.starts_with(&format!("{said} (no such image sha256:")), "{message}");
    assert!(message.ends_with("); pipework watch --trust-images applies it"), "{message}");
    assert_eq!(lines[0]["ok"], false);
    assert!(!c.inside(&["ip", "link"]).contains("eth"), "nothing attached");
    assert!(host.link(&br).is_none());
}

/// Regression: every attach ran on the watcher's one thread, where its blocking
/// calls (a netlink request, whose lost answer waits up to 10 s; the guest's sysctl)
/// block it: one job waiting on the kernel stalled every other job and the event
/// stream. Here the slow container's attach is held 8 s in one: strace delays the
/// opening of the sysctl file of its interface (`-i slow0`: a path no other job
/// opens, which strace can be told to watch); a container started meanwhile is
/// attached first.
#[test]
fn watch_serves_other_containers_while_one_attach_waits_on_the_kernel() {
    let host = Netns::new();
    let key = unique("key");
    // Bridges of their own: the attachments of one bridge go one at a time until one
    // succeeded (see `Anchors`), which is by design.
    let (br_slow, br_fast) = (unique("brw"), unique("brw"));
    let label = format!("pipework.1={br_slow} -i slow0 fd00:41::2/64");
    let slow = Declared::run(&unique("pwslow"), &key, &["-l", &label]);
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={}", host.path()))
        .args(["strace", "-f", "-qq", "-o", "/dev/null", "-P", "/proc/sys/net/ipv6/conf/slow0/disable_ipv6"])
        .args(["-e", "trace=openat", "-e", "inject=openat:delay_enter=8000000:when=1"])
        .arg(crate::util::BIN)
        .args(["watch", "--json", "--key", &key])
        .envs(host.env());
    let w = Watcher::spawn_command(cmd, &key);
    w.wait_for("the first reconcile", 30, |l| l["action"] == "reconcile");
    let fast = Declared::run(&unique("pwfast"), &key, &["-l", &format!("pipework.1={br_fast} 10.41.0.3/24")]);
    let both = w.wait_for_n("both attached", 60, 2, |l| attached(l, &slow.name) || attached(l, &fast.name));
    assert_eq!(both[0]["container"], fast.name.as_str(), "the other container waited:\n{}", w.dump());
    assert_eq!((ports(&host, &br_slow).len(), ports(&host, &br_fast).len()), (1, 1));
}
