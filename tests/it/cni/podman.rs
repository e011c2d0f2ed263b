//! Podman 4.3 as the runtime, end to end: its CNI backend, its own state under a
//! temporary root, its network configs private to the test, `pipework` in its
//! plugin directory as installed.

use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

use super::{files, processes_in, CNI_PATH};
use crate::util::{unique, Netns};

/// Podman 4.3 with the CNI backend, all of its state under a temporary directory,
/// its network configs private to it, run with the test's host namespace as its own
/// (by `nsenter --net`: `ip netns exec` would remount /sys, and runc needs the
/// cgroup mounts). The plugin directory holds `pipework` as a symlink, as installed.
pub struct Podman<'a> {
    host: &'a Netns,
    dir: std::path::PathBuf,
    /// The environment of Podman and of the plugins it runs (the host's run
    /// directory, an Open vSwitch of the test's).
    env: Vec<(String, String)>,
}

pub const POD_IMAGE: &str = "localhost/pipework-busybox";

impl<'a> Podman<'a> {
    pub fn new(host: &'a Netns, conflist: &Value) -> Podman<'a> {
        Podman::with(host, &[conflist], &[])
    }

    /// Several networks, and `more` environment over the host's.
    pub fn with(host: &'a Netns, conflists: &[&Value], more: &[(&str, String)]) -> Podman<'a> {
        let dir = std::env::temp_dir().join(unique("pwt-podman-"));
        let mut env: Vec<(String, String)> = host
            .env()
            .iter()
            .filter(|(k, _)| !more.iter().any(|(m, _)| m == k))
            .map(|(k, v)| (k.to_string(), v.display().to_string()))
            .collect();
        env.extend(more.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let pod = Podman { host, dir, env };
        for sub in ["bin", "net"] {
            std::fs::create_dir_all(pod.dir.join(sub)).unwrap();
        }
        std::os::unix::fs::symlink(crate::util::BIN, pod.dir.join("bin/pipework")).unwrap();
        let d = pod.dir.display();
        // The DEL of `podman stop` comes from a cleanup process that conmon starts
        // with an environment of its own: the run directory reaches it from here.
        let env: Vec<String> = pod.env.iter().map(|(k, v)| format!("\"{k}={v}\"")).collect();
        let env = env.join(", ");
        // runc fails with EPERM setting rlimits above these machines' hard limits.
        let conf = format!(
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nenv = [{env}]\n\
             [network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [\"{d}/bin\", \"{CNI_PATH}\"]\n\
             network_config_dir = \"{d}/net\"\n"
        );
        std::fs::write(pod.dir.join("containers.conf"), conf).unwrap();
        for conflist in conflists {
            let name = conflist["name"].as_str().unwrap();
            std::fs::write(pod.dir.join(format!("net/{name}.conflist")), conflist.to_string()).unwrap();
        }
        pod.import_busybox();
        pod
    }

    /// Docker's busybox image (built from Debian's busybox-static by
    /// scripts/docker-up.sh), exported and imported into this Podman.
    fn import_busybox(&self) {
        let name = unique("pwtcni-export-");
        let created =
            Command::new("docker").args(["create", "--name", &name, "busybox:latest"]).output().unwrap();
        assert!(created.status.success(), "docker create: {}", String::from_utf8_lossy(&created.stderr));
        let tar = self.dir.join("busybox.tar");
        let exported = Command::new("docker").args(["export", "-o"]).arg(&tar).arg(&name).status().unwrap();
        let _ = Command::new("docker").args(["rm", &name]).stdout(Stdio::null()).status();
        assert!(exported.success(), "docker export failed");
        self.ok(&["import", tar.to_str().unwrap(), POD_IMAGE]);
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let d = &self.dir;
        Command::new("nsenter")
            .arg(format!("--net={}", self.host.path()))
            .arg("podman")
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .expect("podman")
    }

    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let say = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        assert!(out.status.success(), "podman {args:?}: {}{}", say(&out.stdout), say(&out.stderr));
        say(&out.stdout)
    }

    /// A container sleeping on `network`.
    pub fn start(&self, name: &str, network: &str) {
        self.ok(&["run", "-d", "--name", name, "--network", network, POD_IMAGE, "sleep", "600"]);
    }

    /// CONTAINER's IPv4 address on eth0.
    pub fn ipv4(&self, name: &str) -> String {
        let out = self.ok(&["exec", name, "ip", "-4", "-o", "addr", "show", "eth0"]);
        let word = out.split_whitespace().skip_while(|w| *w != "inet").nth(1).expect("an address");
        word.split('/').next().unwrap().to_string()
    }
}

impl Drop for Podman<'_> {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-af", "-t0"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn podman_containers_ping_each_other_and_leave_nothing_behind() {
    let host = Netns::new();
    let net = unique("pwpod");
    let conflist = json!({"cniVersion": "1.0.0", "name": net, "plugins": [{
        "type": "pipework", "bridge": "brpod", "isGateway": true, "capabilities": {"mac": true},
        "ipam": {"type": "host-local", "subnet": "10.88.7.0/24", "dataDir": host.run_dir().join("ipam")}}]});
    let pod = Podman::new(&host, &conflist);
    let (a, b) = (unique("pwa"), unique("pwb"));
    // `--mac-address` reaches the plugin as runtimeConfig.mac.
    pod.ok(&[
        "run",
        "-d",
        "--name",
        &a,
        "--network",
        &net,
        "--mac-address",
        "02:00:00:88:07:0a",
        POD_IMAGE,
        "sleep",
        "600",
    ]);
    let mac = pod.ok(&["exec", &a, "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(mac.trim(), "02:00:00:88:07:0a");
    pod.start(&b, &net);
    let ip_b = pod.ipv4(&b);
    assert!(ip_b.starts_with("10.88.7."), "{ip_b}");
    pod.ok(&["exec", &a, "ping", "-c", "1", "-W", "3", &ip_b]);
    assert_eq!(host.ip_j(&["link", "show", "master", "brpod"]).as_array().unwrap().len(), 2);
    assert_eq!(files(&host, "attachments").len(), 2, "one record per container");
    assert_eq!(files(&host, &format!("ipam/{net}")).iter().filter(|f| f.starts_with("10.")).count(), 2);

    pod.ok(&["stop", "-t0", &a]);
    assert_eq!(
        host.ip_j(&["link", "show", "master", "brpod"]).as_array().unwrap().len(),
        1,
        "stop took a's port"
    );
    pod.ok(&["rm", "-f", "-t0", &a, &b]);
    assert_eq!(host.ip_j(&["link", "show", "master", "brpod"]), json!([]), "no port is left");
    assert_eq!(files(&host, "attachments"), Vec::<String>::new(), "no record is left");
    assert_eq!(files(&host, &format!("cni/{net}")), Vec::<String>::new(), "no CNI state is left");
    assert_eq!(files(&host, &format!("ipam/{net}")).iter().filter(|f| f.starts_with("10.")).count(), 0);
}

#[test]
fn podman_chains_tuning_and_bandwidth_after_pipework() {
    let host = Netns::new();
    let net = unique("pwchain");
    let conflist = json!({"cniVersion": "1.0.0", "name": net, "plugins": [
        {"type": "pipework", "bridge": "brchain", "isGateway": true,
         "ipam": {"type": "host-local", "subnet": "10.88.9.0/24", "dataDir": host.run_dir().join("ipam")}},
        {"type": "tuning", "mtu": 1300, "sysctl": {"net.ipv4.conf.eth0.arp_filter": "1"}},
        {"type": "bandwidth", "ingressRate": 8_000_000, "ingressBurst": 100_000,
         "egressRate": 8_000_000, "egressBurst": 100_000}]});
    let pod = Podman::new(&host, &conflist);
    let (a, b) = (unique("pwa"), unique("pwb"));
    pod.start(&a, &net);
    pod.start(&b, &net);
    // tuning found eth0 through pipework's result, in the container's namespace.
    let mtu = pod.ok(&["exec", &a, "cat", "/sys/class/net/eth0/mtu"]);
    assert_eq!(mtu.trim(), "1300");
    let arp = pod.ok(&["exec", &a, "cat", "/proc/sys/net/ipv4/conf/eth0/arp_filter"]);
    assert_eq!(arp.trim(), "1");
    // bandwidth found the host end in it: a token bucket there, and an ifb for egress.
    let ports = host.ip_j(&["link", "show", "master", "brchain"]);
    let end = ports[0]["ifname"].as_str().unwrap().to_string();
    let qdisc = host.sh("tc", &["qdisc", "show", "dev", &end]);
    assert!(qdisc.contains("tbf"), "{qdisc}");
    assert_eq!(
        host.ip_j(&["link", "show", "type", "ifb"]).as_array().unwrap().len(),
        2,
        "one ifb per container"
    );
    pod.ok(&["exec", &a, "ping", "-c", "1", "-W", "3", &pod.ipv4(&b)]);

    pod.ok(&["rm", "-f", "-t0", &a, &b]);
    assert_eq!(host.ip_j(&["link", "show", "master", "brchain"]), json!([]));
    assert_eq!(host.ip_j(&["link", "show", "type", "ifb"]), json!([]), "bandwidth's DEL ran too");
    assert_eq!(files(&host, "attachments"), Vec::<String>::new());
}

#[test]
fn podman_on_a_macvlan_network_and_an_ovs_network_with_a_tag() {
    let host = Netns::new();
    host.sh("ip", &["link", "add", "eth2", "type", "veth", "peer", "name", "eth2p"]);
    host.sh("ip", &["link", "set", "eth2p", "up"]);
    let ovs = crate::ovs::Ovs::start(&host);
    ovs.bridge("ovsbr0");
    let ipam = |subnet: &str| json!({"type": "host-local", "subnet": subnet, "dataDir": host.run_dir().join("ipam")});
    let mac = json!({"cniVersion": "1.0.0", "name": unique("pwmac"), "plugins": [{"type": "pipework",
        "pipework": {"hostInterface": "eth2", "macvlanMode": "bridge"}, "ipam": ipam("10.89.1.0/24")}]});
    let tagged = json!({"cniVersion": "1.0.0", "name": unique("pwovs"), "plugins": [{"type": "pipework",
        "bridge": "ovsbr0", "vlan": 42, "ipam": ipam("10.89.2.0/24")}]});
    let more: Vec<(&str, String)> = ovs.env().into_iter().collect();
    let pod = Podman::with(&host, &[&mac, &tagged], &more);
    let names: Vec<String> = (0..4).map(|n| unique(&format!("pw{n}"))).collect();
    for (n, name) in names.iter().enumerate() {
        pod.start(name, if n < 2 { mac["name"].as_str().unwrap() } else { tagged["name"].as_str().unwrap() });
    }
    let sandbox = pod.ok(&["inspect", "-f", "{{.NetworkSettings.SandboxKey}}", &names[0]]);
    let out = Command::new("nsenter")
        .arg(format!("--net={}", sandbox.trim()))
        .args(["ip", "-j", "-d", "link", "show", "eth0"])
        .output()
        .unwrap();
    let link: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(link[0]["linkinfo"]["info_kind"], "macvlan", "{link}");
    assert_eq!(link[0]["linkinfo"]["info_data"]["mode"], "bridge", "{link}");
    pod.ok(&["exec", &names[0], "ping", "-c", "1", "-W", "3", &pod.ipv4(&names[1])]);
    let ports = ovs.vsctl_ok(&["list-ports", "ovsbr0"]);
    let ports: Vec<&str> = ports.lines().collect();
    assert_eq!(ports.len(), 2, "{ports:?}");
    assert_eq!(ovs.vsctl_ok(&["get", "Port", ports[0], "tag"]), "42");
    pod.ok(&["exec", &names[2], "ping", "-c", "1", "-W", "3", &pod.ipv4(&names[3])]);
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    pod.ok(&[&["rm", "-f", "-t0"][..], &all].concat());
    assert_eq!(ovs.vsctl_ok(&["list-ports", "ovsbr0"]), "", "no port is left");
    assert_eq!(files(&host, "attachments"), Vec::<String>::new(), "no record is left");
}

#[test]
fn podman_with_the_builtin_dhcp_client_and_no_daemon() {
    let host = Netns::new();
    let server = crate::dhcp::Dnsmasq::start(&host);
    let net = unique("pwdhcp");
    let conflist = json!({"cniVersion": "1.0.0", "name": net, "plugins": [{
        "type": "pipework", "bridge": "br1", "ipam": {"type": "pipework-dhcp4", "timeout": 20}}]});
    let pod = Podman::new(&host, &conflist);
    let a = unique("pwa");
    pod.start(&a, &net);
    let addr = pod.ipv4(&a);
    assert!(server.log().contains(&format!("DHCPACK(eth1) {addr} ")), "{addr}: {}", server.log());
    let sandbox = pod.ok(&["inspect", "-f", "{{.NetworkSettings.SandboxKey}}", &a]);
    let ino = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(sandbox.trim()).unwrap().ino()
    };
    let pid = pod.ok(&["inspect", "-f", "{{.State.Pid}}", &a]).trim().parse::<u32>().unwrap();
    let keepers: Vec<u32> = processes_in(ino).into_iter().filter(|p| *p != pid).collect();
    assert_eq!(keepers.len(), 1, "one keeper beside the container: {keepers:?}");
    pod.ok(&["rm", "-f", "-t0", &a]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while keepers
        .iter()
        .any(|k| std::path::Path::new(&format!("/proc/{k}")).exists() && processes_in(ino).contains(k))
    {
        assert!(std::time::Instant::now() < deadline, "the keeper outlived podman rm");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
