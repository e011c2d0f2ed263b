//! pipework as a CNI plugin, driven as a runtime drives it: `CNI_*` variables, the
//! network configuration on stdin, a namespace made by the test, and Debian's
//! reference plugins (`/usr/lib/cni`) for IPAM and chaining.

use std::io::Write as _;
use std::process::{Child, Command, Output, Stdio};

use serde_json::{json, Value};

use crate::util::{assert_same, unique, Netns};

mod podman;
mod pool;
mod shim;

pub const CNI_PATH: &str = "/usr/lib/cni";

/// What one call printed: the exit code, stdout parsed (`Null` when empty), stderr.
#[derive(Debug)]
pub struct Answer {
    pub code: i32,
    pub out: Value,
    pub stderr: String,
}

impl Answer {
    #[track_caller]
    pub fn ok(self) -> Value {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        self.out
    }

    /// Failed with this CNI error code; the error document.
    #[track_caller]
    pub fn error(self, code: u64) -> Value {
        assert_ne!(self.code, 0, "expected CNI error {code}: {self:?}");
        assert_eq!(self.out["code"], code, "{self:?}");
        assert!(self.out["msg"].is_string(), "{self:?}");
        self.out
    }
}

/// Run the binary as the plugin in `host`, as libcni does: the command, container,
/// namespace and interface in the environment, the config on stdin.
pub fn cni(host: &Netns, command: &str, env: &[(&str, &str)], conf: &Value) -> Answer {
    let child = start_plugin(host.pipework_command(&[]), command, env, conf);
    Answer::from(child.wait_with_output().unwrap())
}

/// Start `cmd` (the binary, or a tool that runs it) as a runtime starts a plugin:
/// `command`, `CNI_PATH` and `env` in its environment, `conf` on its stdin, stdout
/// and stderr piped.
fn start_plugin(mut cmd: Command, command: &str, env: &[(&str, &str)], conf: &Value) -> Child {
    let mut child = cmd
        .env("CNI_COMMAND", command)
        .env("CNI_PATH", CNI_PATH)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pipework as a CNI plugin");
    child.stdin.take().unwrap().write_all(conf.to_string().as_bytes()).unwrap();
    child
}

impl From<Output> for Answer {
    /// What a call printed: nothing but one JSON document (or nothing) on stdout.
    fn from(out: Output) -> Answer {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let parsed = match stdout.trim() {
            "" => Value::Null,
            text => serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {stdout}")),
        };
        Answer {
            code: out.status.code().unwrap_or(-1),
            out: parsed,
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }
}

/// One container's side of the calls.
pub struct Container<'a> {
    pub id: String,
    pub netns: String,
    pub ifname: &'a str,
}

impl Container<'_> {
    pub fn of<'a>(guest: &Netns, ifname: &'a str) -> Container<'a> {
        Container { id: unique("ctr"), netns: guest.path(), ifname }
    }

    pub fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("CNI_CONTAINERID", self.id.as_str()),
            ("CNI_NETNS", self.netns.as_str()),
            ("CNI_IFNAME", self.ifname),
        ]
    }

    pub fn call(&self, host: &Netns, command: &str, conf: &Value) -> Answer {
        cni(host, command, &self.env(), conf)
    }
}

/// A bridge network with host-local IPAM keeping its leases in the host's run dir.
pub fn bridge_conf(host: &Netns, version: &str, bridge: &str, subnet: &str) -> Value {
    json!({
        "cniVersion": version,
        "name": unique("net"),
        "type": "pipework",
        "bridge": bridge,
        "isDefaultGateway": true,
        "ipam": { "type": "host-local", "subnet": subnet, "dataDir": host.run_dir().join("ipam") },
    })
}

/// The addresses host-local holds for the network.
fn leases(host: &Netns, conf: &Value) -> Vec<String> {
    let dir = host.run_dir().join("ipam").join(conf["name"].as_str().unwrap());
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
        .collect();
    found.sort();
    found
}

fn default_gw(guest: &Netns) -> Option<String> {
    let routes = guest.ip_j(&["-4", "route", "show", "default"]);
    routes[0]["gateway"].as_str().map(String::from)
}

#[test]
fn version_lists_what_we_speak() {
    let host = Netns::new();
    let answer = cni(&host, "VERSION", &[], &json!({"cniVersion": "0.4.0"}));
    assert_eq!(answer.stderr, "");
    let out = answer.ok();
    assert_eq!(
        out,
        json!({"cniVersion": "0.4.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]})
    );
}

#[test]
fn add_check_del_on_a_bridge_with_host_local() {
    let host = Netns::new();
    let (g1, g2) = (Netns::new(), Netns::new());
    let br = unique("cnibr");
    let conf = bridge_conf(&host, "1.0.0", &br, "10.77.0.0/24");
    let (c1, c2) = (Container::of(&g1, "eth0"), Container::of(&g2, "eth0"));
    let r1 = c1.call(&host, "ADD", &conf).ok();
    let r2 = c2.call(&host, "ADD", &conf).ok();
    // The bridge plugin's shape: bridge, host end, container interface.
    assert_eq!(r1["cniVersion"], "1.0.0");
    let ifs = r1["interfaces"].as_array().unwrap();
    assert_eq!(ifs.len(), 3, "{r1}");
    assert_eq!(ifs[0]["name"], br.as_str());
    assert!(ifs[1]["name"].as_str().unwrap().starts_with("veth"), "{r1}");
    assert_eq!(
        ifs[2],
        json!({"name": "eth0", "mac": g1.link("eth0").unwrap()["address"], "sandbox": c1.netns})
    );
    assert_eq!(r1["ips"], json!([{"address": "10.77.0.2/24", "gateway": "10.77.0.1", "interface": 2}]));
    assert!(r1["ips"][0].get("version").is_none(), "1.0.0 has no ip version");
    assert_eq!(r1["routes"], json!([{"dst": "0.0.0.0/0", "gw": "10.77.0.1"}]));
    assert_eq!(g1.addrs("eth0")[0], "10.77.0.2/24");
    assert_eq!(default_gw(&g1).as_deref(), Some("10.77.0.1"));
    assert!(
        host.addrs(&br).contains(&"10.77.0.1/24".to_string()),
        "isDefaultGateway puts the gateway on the bridge"
    );
    assert!(g1.ping(r2["ips"][0]["address"].as_str().unwrap().split('/').next().unwrap()));
    assert!(g2.ping("10.77.0.1"));

    // The command line sees what the plugin made.
    let ls = host.pipework(&["ls", "--json"]).ok().stdout;
    assert!(ls.contains(&format!("\"{}\"", ifs[1]["name"].as_str().unwrap())) && ls.contains(&br), "{ls}");
    // CHECK with the ADD's result, as libcni passes it.
    let mut checked = conf.clone();
    checked["prevResult"] = r1.clone();
    assert_eq!(c1.call(&host, "CHECK", &checked).ok(), Value::Null);
    // An address taken off behind our back: CHECK says so.
    g1.sh("ip", &["addr", "del", "10.77.0.2/24", "dev", "eth0"]);
    let e = c1.call(&host, "CHECK", &checked).error(999);
    assert!(e["msg"].as_str().unwrap().contains("10.77.0.2"), "{e}");

    // ADD again: the interface exists, and no second lease is taken.
    let e = c2.call(&host, "ADD", &conf).error(999);
    assert!(e["msg"].as_str().unwrap().contains("already exists"), "{e}");
    assert_eq!(leases(&host, &conf), ["10.77.0.2", "10.77.0.3"]);

    assert_eq!(c1.call(&host, "DEL", &conf).ok(), Value::Null);
    assert!(g1.link("eth0").is_none());
    assert_eq!(leases(&host, &conf), ["10.77.0.3"], "IPAM's DEL released the lease");
    // CHECK after DEL: no such attachment (code 3).
    let mut stale = checked.clone();
    stale.as_object_mut().unwrap().remove("ipam");
    c1.call(&host, "CHECK", &stale).error(3);
    // DEL again, and DEL of a container whose namespace is gone: both fine.
    c1.call(&host, "DEL", &conf).ok();
    drop(g2);
    c2.call(&host, "DEL", &conf).ok();
    assert!(leases(&host, &conf).is_empty());
    let left = std::fs::read_dir(host.run_dir().join("attachments")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "no attachment record is left");
    assert_eq!(host.ip_j(&["link", "show", "master", &br]), json!([]), "no port is left on the bridge");
}

#[test]
fn results_in_the_shape_of_each_version() {
    let host = Netns::new();
    for (n, version) in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"].into_iter().enumerate() {
        let guest = Netns::new();
        let c = Container::of(&guest, "net1");
        let mut conf = bridge_conf(&host, version, "cnibrv", "10.78.0.0/24");
        conf["ipam"] = json!({"type": "static", "addresses": [{"address": format!("10.78.0.{}/24", n + 10), "gateway": "10.78.0.1"}],
            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.0.2.0/24", "gw": "10.78.0.254"}]});
        let r = c.call(&host, "ADD", &conf).ok();
        assert_eq!(r["cniVersion"], version);
        let ip = &r["ips"][0];
        assert_eq!(ip["address"], format!("10.78.0.{}/24", n + 10));
        assert_eq!(ip.get("version").is_some(), version.starts_with('0'), "{version}: {r}");
        if version.starts_with('0') {
            assert_eq!(ip["version"], "4");
        }
        // IPAM's other route, through its own gateway.
        let extra = guest.ip_j(&["-4", "route", "show", "192.0.2.0/24"]);
        assert_eq!(extra[0]["gateway"], "10.78.0.254", "{extra}");
        if version < "0.4.0" {
            let mut checked = conf.clone();
            checked["prevResult"] = r.clone();
            c.call(&host, "CHECK", &checked).error(1);
        }
        c.call(&host, "DEL", &conf).ok();
    }
}

#[test]
fn bridge_plugin_keys_and_cni_args() {
    let host = Netns::new();
    let guest = Netns::new();
    let c = Container::of(&guest, "eth0");
    let mut conf = bridge_conf(&host, "0.4.0", "cnibrk", "10.79.0.0/24");
    conf["mtu"] = json!(1400);
    conf["hairpinMode"] = json!(true);
    conf["promiscMode"] = json!(true);
    conf["dns"] = json!({"nameservers": ["10.79.0.53"], "search": ["example"]});
    conf["ipMasq"] = json!(false);
    conf["runtimeConfig"] = json!({"mac": "02:00:00:79:00:09"});
    let mut env = c.env();
    // What Podman and Kubernetes send along: unknown keys, passed over.
    env.push(("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web;MAC=02:00:00:79:00:01"));
    let r = cni(&host, "ADD", &env, &conf).ok();
    assert_eq!(r["dns"], conf["dns"]);
    let eth0 = guest.link("eth0").unwrap();
    assert_eq!((eth0["mtu"].as_u64(), eth0["address"].as_str()), (Some(1400), Some("02:00:00:79:00:09")));
    let end = host.link(r["interfaces"][1]["name"].as_str().unwrap()).unwrap();
    assert_eq!(end["mtu"], 1400);
    assert_eq!(end["linkinfo"]["info_slave_data"]["hairpin"], true, "{end}");
    let br = host.link("cnibrk").unwrap();
    assert_eq!((br["mtu"].as_u64(), br["promiscuity"].as_u64()), (Some(1400), Some(1)));
    cni(&host, "DEL", &env, &conf).ok();

    // CNI_ARGS's MAC when the config has none, and its IP for host-local.
    conf.as_object_mut().unwrap().remove("runtimeConfig");
    let mut env = c.env();
    env.push(("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web;MAC=02:00:00:79:00:01;IP=10.79.0.77"));
    cni(&host, "ADD", &env, &conf).ok();
    assert_eq!(guest.link("eth0").unwrap()["address"], "02:00:00:79:00:01");
    assert_eq!(guest.addrs("eth0")[0], "10.79.0.77/24");
    cni(&host, "DEL", &env, &conf).ok();
    // Without IgnoreUnknown, an unknown key is an error (code 4), and nothing is made.
    let before = (host.snapshot(), guest.snapshot());
    let mut strict = c.env();
    // (K8S_POD_NAME and K8S_POD_NAMESPACE are ours now, read for `ls`; K8S_POD_UID is not.)
    strict.push(("CNI_ARGS", "K8S_POD_UID=0b1e"));
    let e = cni(&host, "ADD", &strict, &conf).error(4);
    assert!(e["msg"].as_str().unwrap().contains("K8S_POD_UID"), "{e}");
    assert_same("host", &before.0, &host.snapshot());
    assert_same("guest", &before.1, &guest.snapshot());
}

#[test]
fn errors_have_the_well_known_codes_and_change_nothing() {
    let host = Netns::new();
    let guest = Netns::new();
    let c = Container::of(&guest, "eth0");
    let conf = bridge_conf(&host, "1.0.0", "cnibre", "10.80.0.0/24");
    let before = (host.snapshot(), guest.snapshot());
    for key in ["ipMasq", "macspoofchk"] {
        let mut refused = conf.clone();
        refused[key] = json!(true);
        let e = c.call(&host, "ADD", &refused).error(2);
        assert!(e["msg"].as_str().unwrap().starts_with(key), "{e}");
        assert_eq!(e["cniVersion"], "1.0.0");
    }
    let mut old = conf.clone();
    old["cniVersion"] = json!("0.2.0");
    c.call(&host, "ADD", &old).error(1);
    let e = cni(&host, "ADD", &c.env(), &json!("{not json"));
    assert_eq!(e.error(6)["cniVersion"], "1.1.0");
    let mut nameless = conf.clone();
    nameless.as_object_mut().unwrap().remove("name");
    c.call(&host, "ADD", &nameless).error(7);
    // VLAN keys the bridge plugin refuses, refused the same before any change.
    for (key, value) in [
        ("vlan", json!(4095)),
        ("vlanTrunk", json!([{"minID": 20, "maxID": 10}])),
        ("vlanTrunk", json!([{"id": 0}])),
    ] {
        let mut vlan = conf.clone();
        vlan[key] = value;
        let e = c.call(&host, "ADD", &vlan).error(7);
        assert!(e["msg"].as_str().unwrap().to_lowercase().contains("vlan"), "{e}");
    }
    cni(&host, "ADD", &c.env()[..2], &conf).error(4);
    cni(&host, "FROB", &c.env(), &conf).error(4);
    let gone = Container { id: "x".into(), netns: "/proc/999999999/ns/net".into(), ifname: "eth0" };
    gone.call(&host, "ADD", &conf).error(3);
    let not_a_netns = Container { id: "y".into(), netns: "/etc/hostname".into(), ifname: "eth0" };
    not_a_netns.call(&host, "ADD", &conf).error(4);
    assert_same("host", &before.0, &host.snapshot());
    assert_same("guest", &before.1, &guest.snapshot());
    assert!(leases(&host, &conf).is_empty());
}

#[test]
fn a_failed_add_gives_the_lease_back() {
    let host = Netns::new();
    let guest = Netns::new();
    let c = Container::of(&guest, "eth0");
    let mut conf = bridge_conf(&host, "1.0.0", "cnibrf", "10.81.0.0/24");
    // A route the kernel refuses (its gateway is not on any link): after the
    // attachment was made, so that all of it has to be undone.
    conf["ipam"]["routes"] = json!([{"dst": "198.51.100.0/24", "gw": "203.0.113.1"}]);
    let before = guest.snapshot();
    let e = c.call(&host, "ADD", &conf).error(999);
    assert!(e["msg"].as_str().unwrap().contains("198.51.100.0/24"), "{e}");
    assert!(leases(&host, &conf).is_empty(), "IPAM's DEL ran after the failed ADD");
    assert_same("guest", &before, &guest.snapshot());
    assert!(host.link("cnibrf").is_none(), "the bridge this ADD made is gone again");
    // The runtime's DEL after a failed ADD is fine.
    c.call(&host, "DEL", &conf).ok();
}

#[test]
fn ipam_runs_while_the_links_are_made_and_what_it_refuses_undoes_them() {
    let host = Netns::new();
    let guest = Netns::new();
    let c = Container::of(&guest, "eth0");
    let (h, g) = (host.snapshot(), guest.snapshot());
    let mut conf = bridge_conf(&host, "1.0.0", "cnibrp", "10.83.0.0/24");
    // The plugin's own failure, which comes while the bridge and veth are being
    // made: they go again, and its error is the answer.
    static_ip(&mut conf, "10.83.0.5");
    let e = c.call(&host, "ADD", &conf).error(999);
    assert!(e["msg"].as_str().unwrap().contains("CIDR"), "{e}");
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
    // An answer no attach can take (the gateway is the address itself): refused as
    // the command line refuses it, after the links were made; nothing stays.
    conf["ipam"]["addresses"] = json!([{"address": "10.83.0.1/24", "gateway": "10.83.0.1"}]);
    let e = c.call(&host, "ADD", &conf).error(7);
    assert!(e["msg"].as_str().unwrap().contains("own address"), "{e}");
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
    assert!(files(&host, "attachments").is_empty());
    // And a good one lands in full: address, default route, record.
    conf["ipam"]["addresses"] = json!([{"address": "10.83.0.5/24", "gateway": "10.83.0.1"}]);
    conf["ipam"]["routes"] = json!([{"dst": "0.0.0.0/0"}]);
    let r = c.call(&host, "ADD", &conf).ok();
    assert_eq!(r["ips"][0]["address"], "10.83.0.5/24", "{r}");
    assert_eq!(default_gw(&guest).as_deref(), Some("10.83.0.1"));
    let addrs = guest.ip_j(&["-4", "addr", "show", "dev", "eth0"]);
    assert_eq!(addrs[0]["addr_info"][0]["local"], "10.83.0.5", "{addrs}");
    assert_eq!(files(&host, "attachments").len(), 1);
    c.call(&host, "DEL", &conf).ok();
}

/// An ADD of `c` under strace, its `k`-th `sendto` (a netlink request of the main
/// thread: the IPAM plugin's thread sends none) failing with EIO; `None`: no fault,
/// and the count of them.
fn add_with_failed_send(host: &Netns, c: &Container, conf: &Value, k: Option<u32>) -> (Answer, usize) {
    add_under_strace(host, c, conf, "sendto", k.map(|k| format!("error=EIO:when={k}")))
}

/// An ADD under strace (every thread of pipework; not the IPAM plugin it execs),
/// its calls of `syscall` counted (the most of any one thread: strace counts
/// `when=K` per thread), `fault` injected into them (`error=EIO:when=K`,
/// `signal=KILL:when=K`).
fn add_under_strace(
    host: &Netns,
    c: &Container,
    conf: &Value,
    syscall: &str,
    fault: Option<String>,
) -> (Answer, usize) {
    let trace = std::env::temp_dir().join(format!("pwt-trace-{}", c.id));
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={}", host.path())).args(["strace", "-f", "-b", "execve", "-qq", "-o"]).arg(&trace);
    cmd.args(["-e", &format!("trace={syscall}")]);
    if let Some(fault) = fault {
        cmd.args(["-e", &format!("inject={syscall}:{fault}")]);
    }
    cmd.arg(crate::util::BIN).envs(host.env());
    let answer = Answer::from(start_plugin(cmd, "ADD", &c.env(), conf).wait_with_output().unwrap());
    let mut per_thread = std::collections::BTreeMap::<String, usize>::new();
    for line in std::fs::read_to_string(&trace).unwrap_or_default().lines() {
        if let Some((pid, rest)) = line.split_once(' ') {
            if rest.trim_start().starts_with(&format!("{syscall}(")) {
                *per_thread.entry(pid.to_string()).or_default() += 1;
            }
        }
    }
    let _ = std::fs::remove_file(&trace);
    (answer, per_thread.into_values().max().unwrap_or(0))
}

/// `ns` comes back to `snapshot` within 10 s: a bridge whose last port went keeps its
/// carrier until the kernel's linkwatch work runs, asynchronously, and later on a
/// loaded machine (a leftover never goes by itself).
fn settles_to(ns: &Netns, snapshot: &str) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ns.snapshot() != snapshot {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    true
}

/// Every netlink request of an ADD whose IPAM plugin runs while the links are made
/// failing in turn: the ADD succeeds whole, or fails with nothing left. (A failed
/// read-back of the attachment, after it stood, once failed the ADD and left it.)
#[test]
fn an_add_whose_netlink_request_fails_anywhere_is_all_or_nothing() {
    let host = Netns::new();
    // A bridge there already, its MAC set (else it takes its first port's, and keeps
    // it after the port has gone: the kernel's, not a leftover).
    host.sh("ip", &["link", "add", "cnibrq", "address", "02:00:00:84:00:01", "up", "type", "bridge"]);
    let mut conf = bridge_conf(&host, "1.0.0", "cnibrq", "10.84.0.0/24");
    conf["ipam"] = json!({"type": "static", "addresses": [{"address": "10.84.0.5/24", "gateway": "10.84.0.1"}],
        "routes": [{"dst": "0.0.0.0/0"}]});
    let clean = Netns::new();
    let c = Container::of(&clean, "eth0");
    let (answer, sends) = add_with_failed_send(&host, &c, &conf, None);
    assert_eq!(answer.code, 0, "{answer:?}");
    assert!(sends > 10, "only {sends} netlink requests counted");
    c.call(&host, "DEL", &conf).ok();
    let mut bad = Vec::new();
    for k in 1..=sends as u32 {
        let guest = Netns::new();
        let c = Container::of(&guest, "eth0");
        // The last iteration's port gone, the bridge loses its carrier when the
        // kernel's link-watch work runs: after that, or "before" would be stale.
        until_no_carrier(&host, "cnibrq");
        let (h, g) = (host.snapshot(), guest.snapshot());
        let (answer, _) = add_with_failed_send(&host, &c, &conf, Some(k));
        if answer.code == 0 {
            let addrs = guest.ip_j(&["-4", "addr", "show", "dev", "eth0"]);
            if addrs[0]["addr_info"][0]["local"] != "10.84.0.5" {
                bad.push(format!("sendto {k}: success without the address: {addrs}"));
            }
            c.call(&host, "DEL", &conf).ok();
            continue;
        }
        let left =
            (!settles_to(&host, &h), guest.snapshot() != g, files(&host, "attachments"), files(&host, "cni"));
        if left.0
            || left.1
            || !left.2.is_empty()
            || !left.3.iter().all(|net| files(&host, &format!("cni/{net}")).is_empty())
        {
            let host_diff = if left.0 { similar(&h, &host.snapshot()) } else { String::new() };
            bad.push(format!("sendto {k}: failed ({}) and left {left:?} {host_diff}", answer.out));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// An ADD killed at each of its netlink requests in turn (as a runtime's timeout or
/// the OOM killer may): the runtime's DEL leaves the host and the guest as before
/// and host-local's store empty, and the next ADD succeeds (a killed ADD once left
/// `eth0` unmarked: DEL answered `not made by pipework`, and every later ADD
/// `interface eth0 already exists`).
#[test]
fn an_add_killed_at_any_netlink_request_is_undone_by_del_and_made_again_by_add() {
    killed_adds_are_undone_by_del("sendto", 10);
}

/// The same at each rename and unlink (intents, records, CNI state, host-local's
/// leases: the IPAM plugin is a child strace does not follow).
#[test]
fn an_add_killed_at_any_state_file_rename_or_unlink_is_undone_by_del() {
    killed_adds_are_undone_by_del("rename", 1);
    killed_adds_are_undone_by_del("unlink", 1);
}

fn killed_adds_are_undone_by_del(syscall: &str, at_least: usize) {
    let (points, bad) = killed_adds(syscall);
    assert!(points >= at_least, "only {points} calls of {syscall} counted");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// An ADD with host-local killed at each call of `syscall` in turn (issue 23's (d)):
/// the runtime's DEL leaves the host and the guest as before, host-local's store
/// and the intents empty, and the next ADD succeeds. The number of kill points and
/// those that broke a promise. `scripts/crash-sweep.sh` runs it for every syscall.
pub fn killed_adds(syscall: &str) -> (usize, Vec<String>) {
    let host = Netns::new();
    host.sh("ip", &["link", "add", "cnibrk", "address", "02:00:00:85:00:01", "up", "type", "bridge"]);
    let conf = bridge_conf(&host, "1.0.0", "cnibrk", "10.85.0.0/24");
    // Counted at the second ADD: the first also puts the gateway's address on the
    // bridge, which stays.
    let mut calls = 0;
    for _ in 0..2 {
        let clean = Netns::new();
        let c = Container::of(&clean, "eth0");
        let (answer, n) = add_under_strace(&host, &c, &conf, syscall, None);
        assert_eq!(answer.code, 0, "{answer:?}");
        c.call(&host, "DEL", &conf);
        calls = n;
    }
    let mut bad = Vec::new();
    for k in 1..=calls as u32 {
        let guest = Netns::new();
        let c = Container::of(&guest, "eth0");
        until_no_carrier(&host, "cnibrk");
        let (h, g) = (host.snapshot(), guest.snapshot());
        let (killed, _) = add_under_strace(&host, &c, &conf, syscall, Some(format!("signal=KILL:when={k}")));
        if !matches!(killed.code, -1 | 137) {
            bad.push(format!("killed at {syscall} {k}: the ADD was not killed: {killed:?}"));
            continue;
        }
        let del = c.call(&host, "DEL", &conf);
        let left =
            (!settles_to(&host, &h), guest.snapshot() != g, leases(&host, &conf), files(&host, "intents"));
        if del.code != 0 || left.0 || left.1 || !left.2.is_empty() || !left.3.is_empty() {
            bad.push(format!("killed at {syscall} {k}: DEL {del:?}, left {left:?}"));
            continue;
        }
        let again = c.call(&host, "ADD", &conf);
        if again.code != 0 {
            bad.push(format!("killed at {syscall} {k}: the next ADD failed: {again:?}"));
        }
        c.call(&host, "DEL", &conf);
    }
    (calls, bad)
}

/// Wait (at most 5 s) until the bridge without ports shows NO-CARRIER.
fn until_no_carrier(ns: &Netns, bridge: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !ns.link(bridge).is_some_and(|l| l["flags"].to_string().contains("NO-CARRIER")) {
        if std::time::Instant::now() > deadline {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The lines of `after` that are not in `before`, and the other way round.
fn similar(before: &str, after: &str) -> String {
    let gone: Vec<&str> = before.lines().filter(|l| !after.contains(l)).collect();
    let new: Vec<&str> = after.lines().filter(|l| !before.contains(l)).collect();
    format!("host before: {gone:?}; now: {new:?}")
}

/// Files in a directory under the host's run dir (records, CNI state, leases).
fn files(host: &Netns, sub: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(host.run_dir().join(sub)) else { return Vec::new() };
    entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
}

#[test]
fn a_chained_add_keeps_the_previous_result_first() {
    let host = Netns::new();
    let guest = Netns::new();
    let c = Container::of(&guest, "eth0");
    let mut conf = bridge_conf(&host, "1.0.0", "cnibrp", "10.82.0.0/24");
    let prev = json!({"cniVersion": "1.0.0", "interfaces": [{"name": "net0", "sandbox": c.netns}],
        "ips": [{"address": "192.0.2.9/24", "interface": 0}], "dns": {"nameservers": ["192.0.2.53"]}});
    conf["prevResult"] = prev.clone();
    let r = c.call(&host, "ADD", &conf).ok();
    assert_eq!(r["interfaces"][0], prev["interfaces"][0]);
    assert_eq!(r["interfaces"][3]["name"], "eth0");
    assert_eq!(r["ips"][0], prev["ips"][0]);
    assert_eq!(r["ips"][1]["interface"], 3, "ours point past the previous interfaces: {r}");
    assert_eq!(r["dns"], prev["dns"]);
    c.call(&host, "DEL", &conf).ok();
}

#[test]
fn status_says_whether_an_add_could_work() {
    let host = Netns::new();
    let conf = bridge_conf(&host, "1.1.0", "cnibrs", "10.83.0.0/24");
    let status = |conf: &Value| cni(&host, "STATUS", &[], conf);
    assert_eq!(status(&conf).ok(), Value::Null, "a bridge ADD makes is fine");
    let mut old = conf.clone();
    old["cniVersion"] = json!("1.0.0");
    status(&old).error(1);
    let mut nic = conf.clone();
    nic["pipework"] = json!({"hostInterface": "nic-absent0"});
    let e = status(&nic).error(50);
    assert!(e["msg"].as_str().unwrap().contains("nic-absent0"), "{e}");
}

#[test]
fn gc_removes_what_is_not_in_valid_attachments() {
    let host = Netns::new();
    let guests: Vec<Netns> = (0..3).map(|_| Netns::new()).collect();
    let conf = bridge_conf(&host, "1.1.0", "cnibrg", "10.84.0.0/24");
    let cs: Vec<Container> = guests.iter().map(|g| Container::of(g, "eth0")).collect();
    for c in &cs {
        c.call(&host, "ADD", &conf).ok();
    }
    assert_eq!(leases(&host, &conf).len(), 3);
    // Without the list, nothing is taken for stale.
    cni(&host, "GC", &[], &conf).error(7);
    assert!(guests[1].link("eth0").is_some());
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": cs[0].id, "ifname": "eth0"}]);
    assert_eq!(cni(&host, "GC", &[], &gc).ok(), Value::Null);
    assert!(guests[0].link("eth0").is_some(), "a valid attachment stays");
    assert!(guests[1].link("eth0").is_none() && guests[2].link("eth0").is_none());
    assert_eq!(leases(&host, &conf), ["10.84.0.2"], "IPAM's DEL released the others' leases");
    assert_eq!(files(&host, &format!("cni/{}", conf["name"].as_str().unwrap())).len(), 1);
    assert_eq!(files(&host, "attachments").len(), 1);
    // GC again changes nothing; then the runtime's DEL of the last one.
    cni(&host, "GC", &[], &gc).ok();
    assert!(guests[0].link("eth0").is_some());
    cs[0].call(&host, "DEL", &conf).ok();
    assert!(leases(&host, &conf).is_empty());
}

/// A static address for `conf`, without host-local.
fn static_ip(conf: &mut Value, address: &str) {
    conf["ipam"] = json!({"type": "static", "addresses": [{"address": address}]});
}

#[test]
fn an_ovs_bridge_with_vlan_as_the_tag() {
    let host = Netns::new();
    let ovs = crate::ovs::Ovs::start(&host);
    ovs.bridge("ovsbr0");
    let env = ovs.env();
    let base: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let guests: Vec<Netns> = (0..3).map(|_| Netns::new()).collect();
    let cs: Vec<Container> = guests.iter().map(|g| Container::of(g, "eth0")).collect();
    let mut results = Vec::new();
    for (n, (c, tag)) in cs.iter().zip([10, 10, 20]).enumerate() {
        let mut conf = json!({"cniVersion": "1.0.0", "name": "ovsnet", "type": "pipework", "bridge": "ovsbr0", "vlan": tag});
        static_ip(&mut conf, &format!("192.168.10.{}/24", n + 2));
        let mut env = c.env();
        env.extend(base.iter().copied());
        results.push((cni(&host, "ADD", &env, &conf).ok(), conf, env));
    }
    let end = |n: usize| results[n].0["interfaces"][1]["name"].as_str().unwrap().to_string();
    assert_eq!(results[0].0["interfaces"][0]["name"], "ovsbr0");
    assert_eq!(ovs.vsctl_ok(&["get", "Port", &end(0), "tag"]), "10");
    assert_eq!(ovs.vsctl_ok(&["get", "Port", &end(2), "tag"]), "20");
    assert!(guests[0].ping("192.168.10.3"), "same tag must connect");
    assert!(!guests[2].ping("192.168.10.2"), "tag 20 must not reach tag 10");
    for (_, conf, env) in &results {
        cni(&host, "DEL", env, conf).ok();
    }
    assert_eq!(ovs.vsctl_ok(&["list-ports", "ovsbr0"]), "", "DEL took the ports off the bridge");
}

#[test]
fn a_nic_as_macvlan_with_its_mode_and_moved_in_whole() {
    let host = Netns::new();
    for nic in ["eth2", "eth3"] {
        host.sh("ip", &["link", "add", nic, "type", "veth", "peer", "name", &format!("{nic}p")]);
        host.sh("ip", &["link", "set", &format!("{nic}p"), "up"]);
    }
    let (a, b) = (Netns::new(), Netns::new());
    let (ca, cb) = (Container::of(&a, "eth0"), Container::of(&b, "net1"));
    let mut mac = json!({"cniVersion": "0.4.0", "name": "nicnet", "type": "pipework",
        "pipework": {"hostInterface": "eth2", "macvlanMode": "private"}});
    static_ip(&mut mac, "50.19.169.157/24");
    let r = ca.call(&host, "ADD", &mac).ok();
    let eth0 = a.link("eth0").unwrap();
    assert_eq!(eth0["linkinfo"]["info_kind"], "macvlan");
    assert_eq!(eth0["linkinfo"]["info_data"]["mode"], "private");
    assert_eq!(r["interfaces"].as_array().unwrap().len(), 1, "no host end: {r}");
    assert_eq!(r["ips"][0], json!({"version": "4", "address": "50.19.169.157/24", "interface": 0}));
    let mut checked = mac.clone();
    checked["prevResult"] = r.clone();
    assert_eq!(ca.call(&host, "CHECK", &checked).ok(), Value::Null);
    let mut phys = json!({"cniVersion": "1.0.0", "name": "physnet", "type": "pipework",
        "pipework": {"hostInterface": "eth3", "directPhys": true}});
    static_ip(&mut phys, "50.19.170.2/24");
    cb.call(&host, "ADD", &phys).ok();
    assert!(host.link("eth3").is_none(), "the NIC moved");
    assert_eq!(b.addrs("net1")[0], "50.19.170.2/24");
    ca.call(&host, "DEL", &mac).ok();
    assert!(a.link("eth0").is_none());
    cb.call(&host, "DEL", &phys).ok();
    assert!(host.link("eth3").is_some(), "DEL gave the NIC back to the host");
    assert!(b.link("net1").is_none());
}

/// A network whose IPAM is the built-in DHCP client, from dnsmasq on `br1`.
fn dhcp_conf() -> Value {
    json!({"cniVersion": "1.0.0", "name": "dhcpnet", "type": "pipework", "bridge": "br1",
        "ipam": {"type": "pipework-dhcp4", "timeout": 20}})
}

#[test]
fn builtin_dhcp_ipam_leases_with_a_keeper_and_no_daemon() {
    let host = Netns::new();
    let server = crate::dhcp::Dnsmasq::start(&host);
    let guest = Netns::new();
    let c = Container::of(&guest, "eth0");
    let r = c.call(&host, "ADD", &dhcp_conf()).ok();
    let ip = &r["ips"][0];
    let addr = ip["address"].as_str().unwrap().split('/').next().unwrap().to_string();
    assert!(addr.starts_with("10.77.0."), "{r}");
    assert_eq!((ip["gateway"].as_str(), ip["interface"].as_u64()), (Some("10.77.0.1"), Some(2)), "{r}");
    assert_eq!(r["routes"], json!([{"dst": "0.0.0.0/0", "gw": "10.77.0.1"}]));
    assert!(server.log().contains(&format!("DHCPACK(eth1) {addr} ")), "{}", server.log());
    let keepers = crate::dhcp::others_in(&guest);
    assert_eq!(keepers.len(), 1, "one keeper renews the lease: {keepers:?}");
    c.call(&host, "DEL", &dhcp_conf()).ok();
    assert!(guest.link("eth0").is_none());
}

/// The built-in DHCP IPAM's result always carries the lease's DNS (options 6, 119
/// and 15) as `dns`, for the runtime to apply; the guest's files are not touched.
#[test]
fn builtin_dhcp_ipam_result_carries_the_leases_dns() {
    let host = Netns::new();
    let opts = std::env::temp_dir().join(crate::util::unique("pwt-cni-dhcp-dns"));
    std::fs::write(
        &opts,
        "3,10.77.0.1\n6,10.77.0.53,10.77.0.54\n15,example.test\n119,a.example.test,b.example.test\n",
    )
    .unwrap();
    let _server = crate::dhcp::Dnsmasq::start_with_options(&host, &opts);
    let _ = std::fs::remove_file(&opts);
    let guest = Netns::new();
    let c = Container::of(&guest, "eth0");
    let before = std::fs::read("/etc/resolv.conf").unwrap();
    let r = c.call(&host, "ADD", &dhcp_conf()).ok();
    eprintln!("ADD result dns: {}", r["dns"]);
    assert_eq!(
        r["dns"],
        json!({"nameservers": ["10.77.0.53", "10.77.0.54"], "search": ["a.example.test", "b.example.test"],
            "domain": "example.test"}),
        "{r}"
    );
    assert_eq!(std::fs::read("/etc/resolv.conf").unwrap(), before, "resolv.conf touched");
    c.call(&host, "DEL", &dhcp_conf()).ok();
}

/// Under Kubernetes (`K8S_POD_NAMESPACE`, `K8S_POD_NAME` in `CNI_ARGS`) the built-in
/// DHCP client's identity is the pod's: a new sandbox of the same pod (another
/// netns, container id and MAC) gets the address back, and the old sandbox's DEL
/// sends no DHCPRELEASE (it might come after the new ADD); another pod gets another.
#[test]
fn builtin_dhcp_ipam_gives_a_recreated_pod_its_address_back() {
    let host = Netns::new();
    let server = crate::dhcp::Dnsmasq::start(&host);
    let add = |guest: &Netns, pod: &str| {
        let c = Container::of(guest, "eth0");
        let args = format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME={pod};K8S_POD_UID=u1");
        let mut env = c.env();
        env.push(("CNI_ARGS", &args));
        let r = cni(&host, "ADD", &env, &dhcp_conf()).ok();
        let addr = r["ips"][0]["address"].as_str().unwrap().to_string();
        let mac = r["interfaces"].as_array().unwrap().last().unwrap()["mac"].as_str().unwrap().to_string();
        (c, addr, mac)
    };
    let first = Netns::new();
    let (c1, addr1, mac1) = add(&first, "web");
    c1.call(&host, "DEL", &dhcp_conf()).ok();
    assert!(!server.log().contains("DHCPRELEASE"), "the DEL released the pod's lease:\n{}", server.log());
    let second = Netns::new();
    let (c2, addr2, mac2) = add(&second, "web");
    eprintln!("pod ns1/web: sandbox 1 {mac1} {addr1}, sandbox 2 {mac2} {addr2}");
    assert_ne!(mac1, mac2);
    assert_eq!(addr1, addr2, "a new sandbox of the pod got another address");
    assert_eq!(server.leases().lines().count(), 1, "{}", server.leases());
    let other = Netns::new();
    let (c3, addr3, _) = add(&other, "db");
    assert_ne!(addr3, addr1, "another pod got the same address");
    c2.call(&host, "DEL", &dhcp_conf()).ok();
    c3.call(&host, "DEL", &dhcp_conf()).ok();
}

/// The built-in DHCP IPAM applies the lease's classless static routes (option 121, its
/// default route in place of the router option) and MTU (option 26), and its result
/// carries the routes.
#[test]
fn builtin_dhcp_ipam_result_carries_the_classless_routes() {
    let host = Netns::new();
    let opts = std::env::temp_dir().join(crate::util::unique("pwt-cni-dhcp-opts"));
    std::fs::write(&opts, "3,10.77.0.254\n121,10.88.0.0/16,10.77.0.2,0.0.0.0/0,10.77.0.1\n26,1400\n")
        .unwrap();
    let server = crate::dhcp::Dnsmasq::start_with_options(&host, &opts);
    let guest = Netns::new();
    let c = Container::of(&guest, "eth0");
    let r = c.call(&host, "ADD", &dhcp_conf()).ok();
    let _ = std::fs::remove_file(&opts);
    let mut routes: Vec<String> = r["routes"].as_array().unwrap().iter().map(|r| r.to_string()).collect();
    routes.sort();
    assert_eq!(
        routes,
        [r#"{"dst":"0.0.0.0/0","gw":"10.77.0.1"}"#, r#"{"dst":"10.88.0.0/16","gw":"10.77.0.2"}"#],
        "{r}"
    );
    assert_eq!(r["ips"][0]["gateway"], "10.77.0.1", "{r}");
    assert_eq!(guest.link("eth0").unwrap()["mtu"], 1400);
    c.call(&host, "DEL", &dhcp_conf()).ok();
    assert!(guest.link("eth0").is_none());
    drop(server);
}

/// Needs `lifecycle::del` to stop what an attach left running (issue 13's `del`).
#[test]
fn builtin_dhcp_keeper_stops_on_del() {
    let host = Netns::new();
    let _server = crate::dhcp::Dnsmasq::start(&host);
    let guest = Netns::new();
    let c = Container::of(&guest, "eth0");
    c.call(&host, "ADD", &dhcp_conf()).ok();
    assert_eq!(crate::dhcp::others_in(&guest).len(), 1);
    c.call(&host, "DEL", &dhcp_conf()).ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !crate::dhcp::others_in(&guest).is_empty() {
        assert!(std::time::Instant::now() < deadline, "the keeper outlived DEL");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn parallel_adds_share_the_bridge_the_first_one_makes() {
    let host = Netns::new();
    let guests: Vec<Netns> = (0..4).map(|_| Netns::new()).collect();
    let conf = bridge_conf(&host, "1.0.0", "cnibrpar", "10.85.0.0/24");
    let cs: Vec<Container> = guests.iter().map(|g| Container::of(g, "eth0")).collect();
    std::thread::scope(|s| {
        let runs: Vec<_> = cs.iter().map(|c| s.spawn(|| c.call(&host, "ADD", &conf))).collect();
        for r in runs {
            r.join().unwrap().ok();
        }
    });
    assert_eq!(host.ip_j(&["link", "show", "master", "cnibrpar"]).as_array().unwrap().len(), 4);
    assert_eq!(leases(&host, &conf).len(), 4);
    let own = guests[0].addrs("eth0")[0].split('/').next().unwrap().to_string();
    let other = leases(&host, &conf).into_iter().find(|a| *a != own).unwrap();
    assert!(guests[0].ping(&other), "{own} cannot reach {other}");
}

#[test]
fn dual_stack_from_host_local_ranges() {
    let host = Netns::new();
    let guest = Netns::new();
    // As Docker leaves a container: IPv6 off for new links.
    guest.ipv6_off_as_docker_does();
    let c = Container::of(&guest, "eth0");
    let mut conf = bridge_conf(&host, "1.0.0", "cnibr46", "unused");
    conf["ipam"] = json!({"type": "host-local", "dataDir": host.run_dir().join("ipam"),
        "ranges": [[{"subnet": "10.86.0.0/24"}], [{"subnet": "fd86::/64"}]]});
    let r = c.call(&host, "ADD", &conf).ok();
    let ips: Vec<&str> =
        r["ips"].as_array().unwrap().iter().map(|i| i["address"].as_str().unwrap()).collect();
    assert_eq!(ips, ["10.86.0.2/24", "fd86::2/64"], "{r}");
    assert_eq!(
        r["routes"],
        json!([{"dst": "0.0.0.0/0", "gw": "10.86.0.1"}, {"dst": "::/0", "gw": "fd86::1"}])
    );
    let addrs = guest.addrs("eth0");
    assert!(addrs.contains(&"10.86.0.2/24".into()) && addrs.contains(&"fd86::2/64".into()), "{addrs:?}");
    let v6 = guest.ip_j(&["-6", "route", "show", "default"]);
    assert_eq!(v6[0]["gateway"], "fd86::1", "{v6}");
    let bridge = host.addrs("cnibr46");
    assert!(bridge.contains(&"10.86.0.1/24".into()) && bridge.contains(&"fd86::1/64".into()), "{bridge:?}");
    c.call(&host, "DEL", &conf).ok();
    assert!(leases(&host, &conf).is_empty());
}

/// A named namespace (`ip netns add`), as Podman makes them: a bare netns file that
/// no process is in; deleted on drop.
struct NamedNetns(String);

impl NamedNetns {
    fn new() -> NamedNetns {
        let name = unique("pwtcni-");
        let made = Command::new("ip").args(["netns", "add", &name]).status().unwrap();
        assert!(made.success(), "ip netns add {name}");
        NamedNetns(name)
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }

    fn remove(&self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

impl Drop for NamedNetns {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Live processes whose network namespace has inode `ino`.
fn processes_in(ino: u64) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let pids = std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok());
    pids.filter(|p: &u32| std::fs::metadata(format!("/proc/{p}/ns/net")).is_ok_and(|m| m.ino() == ino))
        .filter(|p| !std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| s.contains(") Z")))
        .collect()
}

#[test]
fn del_after_the_namespace_went_stops_the_keeper_its_record_names() {
    use std::os::unix::fs::MetadataExt;
    let host = Netns::new();
    let _server = crate::dhcp::Dnsmasq::start(&host);
    let ns = NamedNetns::new();
    let ino = std::fs::metadata(ns.path()).unwrap().ino();
    let c = Container { id: unique("ctr"), netns: ns.path(), ifname: "eth0" };
    c.call(&host, "ADD", &dhcp_conf()).ok();
    let keepers = processes_in(ino);
    assert_eq!(keepers.len(), 1, "{keepers:?}");
    // The runtime lost the namespace file; the keeper holds the namespace itself.
    ns.remove();
    assert_eq!(processes_in(ino), keepers);
    c.call(&host, "DEL", &dhcp_conf()).ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !processes_in(ino).is_empty() {
        assert!(std::time::Instant::now() < deadline, "the keeper outlived DEL");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // dnsmasq's own attachment (eth1) stays.
    let records = files(&host, "attachments");
    assert!(!records.contains(&format!("{ino}-eth0.json")), "{records:?}");
}

#[test]
fn sigterm_during_an_add_undoes_it_and_says_so() {
    let host = Netns::new();
    let guest = Netns::new();
    let (h, g) = (host.snapshot(), guest.snapshot());
    let c = Container::of(&guest, "eth0");
    // No DHCP server: the built-in client waits for its whole timeout.
    let conf = json!({"cniVersion": "1.0.0", "name": "sigterm", "type": "pipework", "bridge": "cnibrsig",
        "ipam": {"type": "pipework-dhcp4", "timeout": 30}});
    let child = start_plugin(host.pipework_command(&[]), "ADD", &c.env(), &conf);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while guest.link("eth0").is_none() {
        assert!(std::time::Instant::now() < deadline, "the ADD never got to wait for its lease");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).expect("an error document");
    assert_eq!(out.status.code(), Some(1), "{doc}");
    assert!(doc["msg"].as_str().unwrap().contains("interrupted by SIGTERM"), "{doc}");
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
}

/// Regression: state files were named `{id}-{ifname}` as given, so container `X-b`
/// with `c` and container `X` with `b-c` shared one: the second ADD's overwrote the
/// first's, which GC then never saw. And a container ID the spec does not allow is
/// error 4, as libcni gives it.
#[test]
fn ids_and_ifnames_with_hyphens_keep_state_of_their_own() {
    let host = Netns::new();
    let (g1, g2) = (Netns::new(), Netns::new());
    let conf = bridge_conf(&host, "1.1.0", "cnibrh", "10.86.0.0/24");
    let id = unique("ctr");
    let c1 = Container { id: format!("{id}-b"), netns: g1.path(), ifname: "c" };
    let c2 = Container { id: id.clone(), netns: g2.path(), ifname: "b-c" };
    c1.call(&host, "ADD", &conf).ok();
    c2.call(&host, "ADD", &conf).ok();
    let net = format!("cni/{}", conf["name"].as_str().unwrap());
    assert_eq!(files(&host, &net).len(), 2, "{:?}", files(&host, &net));
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": c2.id, "ifname": "b-c"}]);
    cni(&host, "GC", &[], &gc).ok();
    assert!(g1.link("c").is_none(), "GC removed the stale attachment");
    assert!(g2.link("b-c").is_some(), "and kept the valid one");
    c2.call(&host, "DEL", &conf).ok();
    assert!(files(&host, &net).is_empty(), "{:?}", files(&host, &net));
    assert!(leases(&host, &conf).is_empty());
    let bad = Container { id: "-b".into(), netns: g1.path(), ifname: "eth0" };
    let e = bad.call(&host, "ADD", &conf).error(4);
    assert!(e["msg"].as_str().unwrap().starts_with("bad CNI_CONTAINERID"), "{e}");
}

/// The state an earlier version wrote under the unescaped name is still DEL's: with
/// `CNI_NETNS` empty (containerd's DEL once the namespace is closed) only it says
/// what to remove.
#[test]
fn del_reads_the_state_an_earlier_version_named_unescaped() {
    let host = Netns::new();
    let guest = Netns::new();
    let conf = bridge_conf(&host, "1.0.0", "cnibrl", "10.87.0.0/24");
    let c = Container { id: format!("{}-x", unique("ctr")), netns: guest.path(), ifname: "eth0" };
    c.call(&host, "ADD", &conf).ok();
    let dir = host.run_dir().join("cni").join(conf["name"].as_str().unwrap());
    let old = dir.join(format!("{}-eth0.json", c.id));
    std::fs::rename(dir.join(format!("{}-eth0.json", c.id.replace('-', "%2D"))), &old).unwrap();
    let ports = host.ip_j(&["link", "show", "master", "cnibrl"]);
    let host_end = ports[0]["ifname"].as_str().unwrap().to_string();
    let closed = Container { id: c.id.clone(), netns: String::new(), ifname: "eth0" };
    closed.call(&host, "DEL", &conf).ok();
    assert!(!old.exists(), "the old state file stays");
    assert!(host.link(&host_end).is_none(), "the host end its state named stays");
    assert!(files(&host, "attachments").is_empty(), "the record its state named stays");
}

/// Regression: DEL of an attachment whose namespace is closed found the host end's
/// mark by the substring ` ns=N if=IF `, though the mark's words may come in any
/// order (`plan/alias.rs`): a mark written in another order kept its host end.
#[test]
fn del_with_the_namespace_closed_reads_the_mark_in_any_order() {
    let host = Netns::new();
    let guest = Netns::new();
    let conf = bridge_conf(&host, "1.0.0", "cnibro", "10.88.0.0/24");
    let c = Container::of(&guest, "eth0");
    c.call(&host, "ADD", &conf).ok();
    let ports = host.ip_j(&["link", "show", "master", "cnibro"]);
    let end = ports[0]["ifname"].as_str().unwrap().to_string();
    let mark = host.link(&end).unwrap()["ifalias"].as_str().unwrap().to_string();
    // The same words, last first: `pipework:v1 mode=bridge host=... if=eth0 ns=N guest=...`.
    let (version, words) = mark.split_once(' ').unwrap();
    let reordered: Vec<&str> = words.split(' ').rev().collect();
    host.sh("ip", &["link", "set", &end, "alias", &format!("{version} {}", reordered.join(" "))]);
    let closed = Container { id: c.id.clone(), netns: String::new(), ifname: "eth0" };
    closed.call(&host, "DEL", &conf).ok();
    assert!(host.link(&end).is_none(), "the host end stays");
}

/// The bridge an ADD makes keeps its MAC when the pod behind its lowest port goes:
/// the other pods' ARP entries for the gateway stay right.
#[test]
fn the_bridge_an_add_makes_keeps_its_mac_when_its_lowest_port_goes() {
    use crate::bridge::{mac_of, ports_by_mac};
    let host = Netns::new();
    let guests: Vec<Netns> = (0..2).map(|_| Netns::new()).collect();
    let conf = bridge_conf(&host, "1.0.0", "cnibrmac", "10.86.0.0/24");
    let cs: Vec<Container> = guests.iter().map(|g| Container::of(g, "eth0")).collect();
    let ends: Vec<String> = cs
        .iter()
        .map(|c| c.call(&host, "ADD", &conf).ok()["interfaces"][1]["name"].as_str().unwrap().to_string())
        .collect();
    let pinned = mac_of(&host, "cnibrmac");
    let ports = ports_by_mac(&host, "cnibrmac");
    assert!(ports.iter().all(|(mac, _)| *mac != pinned), "the bridge took a port's MAC: {pinned} {ports:?}");
    let lowest = ends.iter().position(|e| *e == ports[0].1).expect("the lowest port's pod");
    cs[lowest].call(&host, "DEL", &conf).ok();
    assert_eq!(ports_by_mac(&host, "cnibrmac").len(), 1);
    assert_eq!(mac_of(&host, "cnibrmac"), pinned, "the gateway's MAC changed when a pod went");
}

/// A Kubernetes runtime's `CNI_ARGS` name the pod: `ls` shows it as `NAMESPACE/NAME`
/// beside the container id, and the attachment's record keeps both.
#[test]
fn ls_names_a_pod_from_its_k8s_cni_args() {
    let host = Netns::new();
    let guest = Netns::new();
    let conf = bridge_conf(&host, "1.0.0", "cnibrpod", "10.87.0.0/24");
    let c = Container::of(&guest, "eth0");
    let mut env = c.env();
    let args = format!(
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID=0b1e",
        c.id
    );
    env.push(("CNI_ARGS", &args));
    cni(&host, "ADD", &env, &conf).ok();
    let v: Value = serde_json::from_str(&host.pipework(&["ls", "--json"]).ok().stdout).unwrap();
    let entry = &v["attachments"][0];
    assert_eq!((&entry["pod"], &entry["container_id"]), (&json!("shop/web-0"), &json!(c.id)), "{v}");
    let human = host.pipework(&["ls"]).ok().stdout;
    let row = human.lines().nth(1).unwrap_or_default();
    assert!(row.starts_with(&format!("shop/web-0 ({})", &c.id[..12.min(c.id.len())])), "{human}");
    let records = files(&host, "attachments");
    assert_eq!(records.len(), 1, "{records:?}");
    let rec: Value =
        serde_json::from_slice(&std::fs::read(host.run_dir().join("attachments").join(&records[0])).unwrap())
            .unwrap();
    assert_eq!(rec["cni"], json!({"network": conf["name"], "container_id": c.id, "pod": "shop/web-0"}));
    cni(&host, "DEL", &env, &conf).ok();
    assert!(files(&host, "attachments").is_empty());
}
