//! containerd 1.6's CRI as the runtime, driven over gRPC as kubelet drives it
//! (RunPodSandbox, PodSandboxStatus, StopPodSandbox, RemovePodSandbox): a private
//! containerd in the test's host namespace, with its own root, state, sockets, CNI
//! directories (`pipework` linked in beside Debian's plugins) and the conflist
//! `contrib/kubernetes/` ships, and a pause image built here from busybox-static.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ListPodSandboxRequest, PodSandboxConfig, PodSandboxMetadata, PodSandboxStatusRequest,
    RemovePodSandboxRequest, RunPodSandboxRequest, StopPodSandboxRequest, VersionRequest,
};
use serde_json::{json, Value};
use tonic::transport::{Channel, Endpoint, Uri};

use crate::cni::{cni, CNI_PATH};
use crate::util::{unique, Netns, BIN};

/// The sandbox image's name, as `sandbox_image` names it.
const PAUSE: &str = "localhost/pipework-pause:1";

/// The conflist a node gets (contrib/kubernetes/), as the test reads it.
pub fn shipped_conflist() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/kubernetes/10-pipework.conflist");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// One private containerd, started in `host` and stopped (by its pid) on drop.
pub struct Containerd<'a> {
    host: &'a Netns,
    dir: PathBuf,
    child: Child,
    rt: tokio::runtime::Runtime,
    client: RuntimeServiceClient<Channel>,
}

/// One pod as PodSandboxStatus tells it.
#[derive(Debug)]
pub struct Pod {
    pub id: String,
    pub ip: String,
    /// The sandbox's process (the pause), whose namespace is the pod's.
    pub pid: u32,
    /// The pod's namespace file, in containerd's mount namespace.
    pub netns: String,
}

impl<'a> Containerd<'a> {
    /// containerd with `conflist` as its only network, its CNI plugins found in a
    /// directory of its own: `pipework` (a link to the binary under test) and
    /// Debian's reference plugins.
    pub fn start(host: &'a Netns, conflist: &Value) -> Containerd<'a> {
        Containerd::with_env(host, conflist, &[])
    }

    /// The same, with `more` environment over the host's (an Open vSwitch of the
    /// test's): containerd's environment is its plugins'.
    pub fn with_env(host: &'a Netns, conflist: &Value, more: &[(&str, String)]) -> Containerd<'a> {
        let dir = std::env::temp_dir().join(unique("pwt-cri-"));
        for sub in ["bin", "net.d", "netns", "image/layer/bin", "logs"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::os::unix::fs::symlink(BIN, dir.join("bin/pipework")).unwrap();
        for plugin in std::fs::read_dir(CNI_PATH).unwrap().flatten() {
            std::os::unix::fs::symlink(plugin.path(), dir.join("bin").join(plugin.file_name())).unwrap();
        }
        std::fs::write(dir.join("net.d/10-pipework.conflist"), conflist.to_string()).unwrap();
        std::fs::write(dir.join("config.toml"), config(&dir)).unwrap();
        // The CRI's stream server listens on 127.0.0.1 of this namespace.
        host.sh("ip", &["link", "set", "lo", "up"]);
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        // Its own mount namespace, where a fresh sysfs shows this network namespace's
        // links (as `ip netns exec` makes it) with the cgroup mounts bound back over
        // it (runc needs them); the pods' namespace files are mounted there too.
        let script = format!(
            "set -e; d={d}; mkdir -p $d/cgroup; mount --rbind /sys/fs/cgroup $d/cgroup; \
             mount -t sysfs sysfs /sys; mount --rbind $d/cgroup /sys/fs/cgroup; \
             exec containerd --config $d/config.toml",
            d = dir.display()
        );
        let child = Command::new("nsenter")
            .arg(format!("--net={}", host.path()))
            .args(["unshare", "-m", "--propagation", "private", "sh", "-c", &script])
            .envs(host.env())
            .envs(more.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let sock = dir.join("containerd.sock");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            if let Ok(mut c) = rt.block_on(connect(&sock)) {
                if rt.block_on(c.version(VersionRequest { version: "v1".into() })).is_ok() {
                    break c;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "containerd's CRI never answered: {}",
                    std::fs::read_to_string(dir.join("containerd.log")).unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let cri = Containerd { host, dir, child, rt, client };
        cri.import_pause();
        cri
    }

    /// The pause image: busybox-static asleep, as a `docker save` archive that
    /// `ctr images import` takes, unpacked for the CRI's snapshotter.
    fn import_pause(&self) {
        let d = &self.dir;
        std::fs::copy("/usr/bin/busybox", d.join("image/layer/bin/busybox")).unwrap();
        let image = d.join("image");
        sh(Command::new("tar")
            .arg("-C")
            .arg(image.join("layer"))
            .arg("-cf")
            .arg(image.join("layer.tar"))
            .arg("."));
        let sum = sh(Command::new("sha256sum").arg(image.join("layer.tar")));
        let digest = sum.split_whitespace().next().unwrap();
        let config = json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Entrypoint": ["/bin/busybox", "sleep", "2147483647"]},
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{digest}")]},
        });
        std::fs::write(image.join("config.json"), config.to_string()).unwrap();
        let manifest = json!([{"Config": "config.json", "RepoTags": [PAUSE], "Layers": ["layer.tar"]}]);
        std::fs::write(image.join("manifest.json"), manifest.to_string()).unwrap();
        sh(Command::new("tar").arg("-C").arg(&image).arg("-cf").arg(d.join("pause.tar")).args([
            "manifest.json",
            "config.json",
            "layer.tar",
        ]));
        sh(Command::new("ctr")
            .arg("--address")
            .arg(d.join("containerd.sock"))
            .args(["-n", "k8s.io", "images", "import", "--snapshotter", "native"])
            .arg(d.join("pause.tar")));
    }

    fn call<T>(&self, what: &str, f: impl std::future::Future<Output = Result<T, tonic::Status>>) -> T {
        self.rt.block_on(f).unwrap_or_else(|e| panic!("{what}: {e}\n{}", self.log_tail()))
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// RunPodSandbox of pod `namespace/name` with `annotations`, then its status.
    pub fn run_pod(&self, namespace: &str, name: &str, annotations: &[(&str, &str)]) -> Pod {
        let id = self
            .try_run_pod(namespace, name, annotations)
            .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", self.log_tail()));
        self.status(&id)
    }

    /// RunPodSandbox: the sandbox's id, or what the CRI said.
    pub fn try_run_pod(
        &self,
        namespace: &str,
        name: &str,
        annotations: &[(&str, &str)],
    ) -> Result<String, tonic::Status> {
        let config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid: unique("uid"),
                namespace: namespace.into(),
                attempt: 0,
            }),
            hostname: name.into(),
            log_directory: self.dir.join("logs").join(name).display().to_string(),
            annotations: annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        };
        let mut c = self.client.clone();
        let req = RunPodSandboxRequest { config: Some(config), runtime_handler: String::new() };
        self.rt.block_on(c.run_pod_sandbox(req)).map(|r| r.into_inner().pod_sandbox_id)
    }

    /// PodSandboxStatus, verbose (the sandbox's pid and namespace are in its info).
    pub fn status(&self, id: &str) -> Pod {
        let mut c = self.client.clone();
        let req = PodSandboxStatusRequest { pod_sandbox_id: id.into(), verbose: true };
        let answer = self.call("PodSandboxStatus", c.pod_sandbox_status(req)).into_inner();
        let ip = answer.status.and_then(|s| s.network).map(|n| n.ip).unwrap_or_default();
        let info: Value = serde_json::from_str(answer.info.get("info").map_or("{}", |s| s.as_str())).unwrap();
        let netns = info["runtimeSpec"]["linux"]["namespaces"]
            .as_array()
            .and_then(|n| n.iter().find(|n| n["type"] == "network"))
            .and_then(|n| n["path"].as_str())
            .unwrap_or_default()
            .to_string();
        Pod { id: id.into(), ip, pid: info["pid"].as_u64().unwrap_or(0) as u32, netns }
    }

    /// Whether containerd says the sandbox is ready (its process alive, as far as
    /// containerd has handled its exit).
    pub fn ready(&self, id: &str) -> bool {
        let mut c = self.client.clone();
        let req = PodSandboxStatusRequest { pod_sandbox_id: id.into(), verbose: false };
        let answer = self.call("PodSandboxStatus", c.pod_sandbox_status(req)).into_inner();
        answer.status.is_some_and(|s| s.state == 0)
    }

    pub fn stop(&self, id: &str) {
        let mut c = self.client.clone();
        self.call("StopPodSandbox", c.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: id.into() }));
    }

    pub fn remove(&self, id: &str) {
        let mut c = self.client.clone();
        self.call(
            "RemovePodSandbox",
            c.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id.into() }),
        );
    }

    /// The binary in containerd's namespaces (mount and network), as on the node.
    pub fn pipework(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.child.id().to_string(), "-m", "-n"])
            .arg(BIN)
            .args(args)
            .envs(self.host.env())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// A command in containerd's mount namespace (where the pods' namespace files are).
    pub fn in_mounts(&self, cmd: &str, args: &[&str]) -> String {
        sh(Command::new("nsenter").args(["-t", &self.child.id().to_string(), "-m", cmd]).args(args))
    }
}

impl Drop for Containerd<'_> {
    /// The pods left (a failed test's) stopped and removed, then containerd ended
    /// by its pid; the shims it started exit with their pods.
    fn drop(&mut self) {
        let mut c = self.client.clone();
        if let Ok(list) = self.rt.block_on(c.list_pod_sandbox(ListPodSandboxRequest { filter: None })) {
            for pod in list.into_inner().items {
                let _ = self
                    .rt
                    .block_on(c.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: pod.id.clone() }));
                let _ = self
                    .rt
                    .block_on(c.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: pod.id }));
            }
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The CRI's gRPC over containerd's Unix socket.
async fn connect(sock: &Path) -> Result<RuntimeServiceClient<Channel>, tonic::transport::Error> {
    let sock = sock.to_path_buf();
    let channel = Endpoint::try_from("http://[::]:0")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let sock = sock.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(sock).await?,
                ))
            }
        }))
        .await?;
    Ok(RuntimeServiceClient::new(channel))
}

/// containerd's config.toml: everything of its own under `d` (the namespaces'
/// files too, never /var/run/netns), the CRI with one network config, runc's
/// state of its own, and the OOM score left alone (root here lacks CAP_SYS_RESOURCE).
fn config(d: &Path) -> String {
    let d = d.display();
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE}"
  restrict_oom_score_adj = true
  netns_mounts_under = "{d}/netns"
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/bin"
    conf_dir = "{d}/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "{d}/runc"
"#
    )
}

/// Run `cmd`; its stdout, or a panic with its stderr.
fn sh(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The shipped conflist with its leases kept in the host's run directory, and the
/// bridge named for the test.
fn conflist_for(host: &Netns, bridge: &str) -> Value {
    let mut conf = shipped_conflist();
    conf["plugins"][0]["bridge"] = json!(bridge);
    conf["plugins"][0]["ipam"]["dataDir"] = json!(host.run_dir().join("ipam"));
    conf
}

/// The addresses host-local holds for `network`.
fn leases(host: &Netns, network: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(host.run_dir().join("ipam").join(network)) else { return Vec::new() };
    let mut found: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
        .collect();
    found.sort();
    found
}

/// Files under the host's run dir `sub` (records, intents, CNI state).
fn files(host: &Netns, sub: &str) -> Vec<String> {
    walk(&host.run_dir().join(sub)).unwrap_or_default()
}

fn walk(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)?.flatten() {
        if e.file_type()?.is_dir() {
            out.extend(walk(&e.path())?);
        } else {
            out.push(e.path().display().to_string());
        }
    }
    Ok(out)
}

/// Ping `addr` once from inside the pod's namespace (its pause's).
fn ping_from(pod: &Pod, addr: &str) -> bool {
    let out = Command::new("nsenter")
        .args(["-t", &pod.pid.to_string(), "-n", "ping", "-c", "1", "-W", "3", addr])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    out.status.success()
}

/// What a pod left on the host: nothing of pipework's, no lease, no port.
fn assert_nothing_left(host: &Netns, network: &str, bridge: &str) {
    let ports = host.ip_j(&["link", "show", "master", bridge]);
    assert_eq!(ports, json!([]), "ports left on {bridge}");
    let links: Vec<String> = host
        .ip_j(&["link", "show"])
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .collect();
    assert!(links.iter().all(|l| l == "lo" || l == bridge || l.starts_with("eth")), "links left: {links:?}");
    for sub in ["attachments", "intents", "cni"] {
        assert_eq!(files(host, sub), Vec::<String>::new(), "{sub} left");
    }
    assert_eq!(leases(host, network), Vec::<String>::new(), "leases left");
}

#[test]
fn two_pods_on_a_pipework_bridge_ping_and_go_without_a_trace() {
    let host = Netns::new();
    let conf = conflist_for(&host, "cni0");
    let network = conf["name"].as_str().unwrap().to_string();
    let cri = Containerd::start(&host, &conf);
    let a = cri.run_pod("shop", "web-0", &[]);
    let b = cri.run_pod("shop", "web-1", &[]);
    eprintln!("cri: pod shop/web-0 {} ip {} pid {}", a.id, a.ip, a.pid);
    eprintln!("cri: pod shop/web-1 {} ip {} pid {}", b.id, b.ip, b.pid);
    // The addresses PodSandboxStatus reports are those pipework put on (host-local's).
    let mut given = vec![a.ip.clone(), b.ip.clone()];
    given.sort();
    assert_eq!(leases(&host, &network), given);
    for pod in [&a, &b] {
        let inside = Command::new("nsenter")
            .args(["-t", &pod.pid.to_string(), "-n", "ip", "-j", "addr", "show", "dev", "eth0"])
            .output()
            .unwrap();
        let inside: Value = serde_json::from_slice(&inside.stdout).unwrap();
        assert_eq!(inside[0]["addr_info"][0]["local"], json!(pod.ip), "{inside}");
    }
    assert!(ping_from(&a, &b.ip), "{} cannot reach {}", a.ip, b.ip);
    assert!(ping_from(&b, &a.ip), "{} cannot reach {}", b.ip, a.ip);
    eprintln!("cri: ping {} -> {} ok, {} -> {} ok", a.ip, b.ip, b.ip, a.ip);
    let ls = cri.pipework(&["ls"]);
    let listing = String::from_utf8_lossy(&ls.stdout).into_owned();
    eprintln!("cri: pipework ls\n{listing}");
    assert!(ls.status.success(), "{}", String::from_utf8_lossy(&ls.stderr));
    for (pod, name) in [(&a, "shop/web-0"), (&b, "shop/web-1")] {
        let row = format!("{name} ({})", &pod.id[..12]);
        assert!(
            listing.lines().any(|l| l.starts_with(&row) && l.trim_end().ends_with("ok")),
            "{row}: {listing}"
        );
    }
    // The bridge keeps its MAC when a pod goes: the other's gateway stays right.
    let gw_mac = host.link("cni0").unwrap()["address"].clone();
    cri.stop(&a.id);
    cri.remove(&a.id);
    eprintln!("cri: stop + remove {} ok", a.id);
    assert_eq!(host.link("cni0").unwrap()["address"], gw_mac);
    let gw =
        conf["plugins"][0]["ipam"]["ranges"][0][0]["subnet"].as_str().unwrap().replace(".0.0/16", ".0.1");
    assert!(ping_from(&b, &gw), "{} lost its gateway {gw}", b.ip);
    cri.stop(&b.id);
    cri.remove(&b.id);
    assert_nothing_left(&host, &network, "cni0");
    // containerd's later DELs come with CNI_NETNS empty and no prevResult: each a success.
    let plugin = {
        let mut p = conf["plugins"][0].clone();
        p["cniVersion"] = conf["cniVersion"].clone();
        p["name"] = conf["name"].clone();
        p
    };
    for pod in [&a, &b] {
        for _ in 0..2 {
            let env = [("CNI_CONTAINERID", pod.id.as_str()), ("CNI_NETNS", ""), ("CNI_IFNAME", "eth0")];
            assert_eq!(cni(&host, "DEL", &env, &plugin).ok(), Value::Null);
        }
    }
    assert_nothing_left(&host, &network, "cni0");
}

#[test]
fn stop_after_the_pods_namespace_went_still_gives_its_lease_back() {
    let host = Netns::new();
    // With the built-in pool, which leases in host-local's store.
    let mut conf = conflist_for(&host, "cni1");
    conf["plugins"][0]["ipam"]["type"] = json!("pipework-pool");
    let network = conf["name"].as_str().unwrap().to_string();
    let cri = Containerd::start(&host, &conf);
    let pod = cri.run_pod("shop", "gone-0", &[]);
    assert_eq!(leases(&host, &network), std::slice::from_ref(&pod.ip));
    assert!(!pod.netns.is_empty(), "{pod:?}");
    // The namespace goes: its pause killed, its file unmounted and removed.
    let _ =
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pod.pid as i32), nix::sys::signal::Signal::SIGKILL);
    cri.in_mounts("umount", &[&pod.netns]);
    cri.in_mounts("rm", &["-f", &pod.netns]);
    // As kubelet does, Stop once the runtime has seen the sandbox exit: a Stop while
    // containerd's shim still handles the exit fails in containerd ("ttrpc: closed"),
    // before any CNI DEL.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while cri.ready(&pod.id) {
        assert!(std::time::Instant::now() < deadline, "the sandbox stays ready after its process was killed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    cri.stop(&pod.id);
    cri.remove(&pod.id);
    assert_nothing_left(&host, &network, "cni1");
}

#[test]
fn a_pod_on_a_macvlan_network() {
    let host = Netns::new();
    host.sh("ip", &["link", "add", "eth2", "type", "veth", "peer", "name", "eth2p"]);
    host.sh("ip", &["link", "set", "eth2p", "up"]);
    let conf = json!({
        "cniVersion": "1.0.0", "name": unique("flat"),
        "plugins": [{"type": "pipework", "pipework": {"hostInterface": "eth2", "macvlanMode": "bridge"},
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "192.168.77.0/24"}]],
                "dataDir": host.run_dir().join("ipam")}}],
    });
    let network = conf["name"].as_str().unwrap().to_string();
    let cri = Containerd::start(&host, &conf);
    let (a, b) = (cri.run_pod("flat", "m-0", &[]), cri.run_pod("flat", "m-1", &[]));
    eprintln!("cri: macvlan pods {} {}", a.ip, b.ip);
    for pod in [&a, &b] {
        let out = Command::new("nsenter")
            .args(["-t", &pod.pid.to_string(), "-n", "ip", "-j", "-d", "addr", "show", "dev", "eth0"])
            .output()
            .unwrap();
        let link: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(link[0]["linkinfo"]["info_kind"], "macvlan", "{link}");
        assert_eq!(link[0]["addr_info"][0]["local"], json!(pod.ip), "{link}");
    }
    assert!(ping_from(&a, &b.ip), "macvlan pods cannot reach each other");
    for pod in [&a, &b] {
        cri.stop(&pod.id);
        cri.remove(&pod.id);
    }
    assert!(host.link("eth2").is_some(), "the NIC stays");
    assert_eq!(leases(&host, &network), Vec::<String>::new());
    for sub in ["attachments", "intents", "cni"] {
        assert_eq!(files(&host, sub), Vec::<String>::new(), "{sub} left");
    }
}

#[test]
fn the_bandwidth_plugin_chained_after_pipework_limits_the_pod() {
    let host = Netns::new();
    let conf = conflist_for(&host, "cni2");
    let cri = Containerd::start(&host, &conf);
    let pod = cri.run_pod("shop", "slow-0", &[("kubernetes.io/ingress-bandwidth", "1M")]);
    // The bandwidth plugin shapes the pod's ingress on its host end (tbf).
    let end = host.ip_j(&["link", "show", "master", "cni2"]);
    let end = end[0]["ifname"].as_str().unwrap().to_string();
    let qdisc = host.sh("tc", &["qdisc", "show", "dev", &end]);
    eprintln!("cri: tc qdisc show dev {end}: {qdisc}");
    assert!(qdisc.contains("tbf") && qdisc.contains("rate 1Mbit"), "{qdisc}");
    cri.stop(&pod.id);
    cri.remove(&pod.id);
    assert_nothing_left(&host, conf["name"].as_str().unwrap(), "cni2");
}

#[test]
fn pods_on_an_open_vswitch_bridge_with_a_vlan_tag() {
    let host = Netns::new();
    let ovs = crate::ovs::Ovs::start(&host);
    ovs.bridge("ovsbr0");
    let conf = json!({
        "cniVersion": "1.0.0", "name": unique("ovsnet"),
        "plugins": [{"type": "pipework", "bridge": "ovsbr0", "vlan": 10,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "192.168.78.0/24"}]],
                "dataDir": host.run_dir().join("ipam")}}],
    });
    let network = conf["name"].as_str().unwrap().to_string();
    let cri = Containerd::with_env(&host, &conf, &ovs.env());
    let (a, b) = (cri.run_pod("ovs", "o-0", &[]), cri.run_pod("ovs", "o-1", &[]));
    eprintln!("cri: ovs pods {} {}", a.ip, b.ip);
    let ports = ovs.vsctl_ok(&["list-ports", "ovsbr0"]);
    let ports: Vec<&str> = ports.lines().collect();
    assert_eq!(ports.len(), 2, "{ports:?}");
    for port in &ports {
        assert_eq!(ovs.vsctl_ok(&["get", "Port", port, "tag"]), "10");
    }
    assert!(ping_from(&a, &b.ip), "pods with the same tag cannot reach each other");
    for pod in [&a, &b] {
        cri.stop(&pod.id);
        cri.remove(&pod.id);
    }
    assert_eq!(ovs.vsctl_ok(&["list-ports", "ovsbr0"]), "", "Stop took the ports off the bridge");
    assert_eq!(leases(&host, &network), Vec::<String>::new());
    for sub in ["attachments", "intents", "cni"] {
        assert_eq!(files(&host, sub), Vec::<String>::new(), "{sub} left");
    }
}

/// A pod whose ADD fails (its pool is exhausted): RunPodSandbox fails with
/// pipework's message, containerd's DEL right after it succeeds, and nothing of it
/// is left; the pod that holds the address is untouched.
#[test]
fn a_pod_whose_add_fails_leaves_nothing_and_the_other_pod_stays() {
    let host = Netns::new();
    let mut conf = conflist_for(&host, "cni3");
    conf["plugins"][0]["ipam"] = json!({"type": "pipework-pool",
        "ranges": [[{"subnet": "10.89.0.0/24", "rangeStart": "10.89.0.10", "rangeEnd": "10.89.0.10"}]],
        "dataDir": host.run_dir().join("ipam")});
    let network = conf["name"].as_str().unwrap().to_string();
    let cri = Containerd::start(&host, &conf);
    let a = cri.run_pod("shop", "first", &[]);
    assert_eq!(a.ip, "10.89.0.10");
    let ports = host.ip_j(&["link", "show", "master", "cni3"]);
    let e = cri.try_run_pod("shop", "second", &[]).expect_err("no address left");
    eprintln!("cri: RunPodSandbox of the second pod: {}", e.message());
    assert!(e.message().contains("no IP addresses available in range set: 10.89.0.10-10.89.0.10"), "{e}");
    assert_eq!(host.ip_j(&["link", "show", "master", "cni3"]), ports, "the failed pod left a port");
    assert_eq!(leases(&host, &network), ["10.89.0.10"]);
    assert_eq!(files(&host, "attachments").len(), 1);
    assert!(ping_from(&a, "10.89.0.1"), "the first pod lost its gateway");
    cri.stop(&a.id);
    cri.remove(&a.id);
    assert_nothing_left(&host, &network, "cni3");
}
