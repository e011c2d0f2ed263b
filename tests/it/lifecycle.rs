//! `del` and `ls` end to end: every `del` leaves host and guest exactly as they were
//! before the attach (`ip -j` snapshots), and never removes what pipework did not make.

use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::docker::Container;
use crate::ovs::Ovs;
use crate::util::{assert_same, hold_bridge_lock, unique, Netns, Run};

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {run:?}"))
}

/// A host namespace with a bridge of its own, made before any snapshot. The bridge
/// ("aside when it pre-existed") gets a MAC of its own and a port that stays: a
/// bridge whose last port goes loses its carrier and its MAC (00:00:00:00:00:00),
/// which is the kernel's doing, not ours.
fn host_with_bridge(bridge: &str) -> Netns {
    let host = Netns::new();
    host.sh("ip", &["link", "add", bridge, "address", "02:00:00:00:00:01", "up", "type", "bridge"]);
    host.sh("ip", &["link", "add", "keep0", "master", bridge, "up", "type", "veth", "peer", "name", "keep1"]);
    host.sh("ip", &["link", "set", "keep1", "up"]);
    host
}

/// This guest's attachments, as `ls --json` lists them.
fn listed(host: &Netns, guest: &str) -> Vec<Value> {
    let v = json(&host.pipework(&["ls", "--json"]).ok());
    v["attachments"].as_array().unwrap().iter().filter(|a| a["guest"] == guest).cloned().collect()
}

#[test]
fn del_of_a_bridge_attachment_leaves_host_and_guest_as_before() {
    let host = host_with_bridge("br1");
    let guest = Netns::new();
    let (h, g) = (host.snapshot(), guest.snapshot());
    host.pipework(&["br1", &guest.guest(), "10.0.0.2/24@10.0.0.1"]).ok();
    let end = format!("veth1pl{}", guest.pid());
    let alias = host.link(&end).unwrap()["ifalias"].as_str().unwrap().to_string();
    assert!(alias.starts_with(&format!("pipework:v1 guest=pid:{} ns=", guest.pid())), "{alias}");
    let run = host.pipework(&["del", &guest.guest(), "--json"]).ok();
    let v = json(&run);
    assert_eq!(
        (v["removed"].as_bool(), v["host_end"].as_str(), v["kind"].as_str()),
        (Some(true), Some(end.as_str()), Some("bridge"))
    );
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
}

/// Regression: `del --prune-bridge` of the last port of a bridge waited 10 s for the bridge
/// lock another run held, then removed the bridge without it. The attachment is
/// removed; its bridge stays, with a warning.
#[test]
fn del_leaves_the_bridge_when_another_run_holds_the_bridge_lock() {
    let host = Netns::new();
    let guest = Netns::new();
    host.pipework(&["brdl", &guest.guest(), "10.0.0.2/24"]).ok();
    let held = hold_bridge_lock(&host);
    let run = host.pipework(&["del", "--prune-bridge", &guest.guest()]).ok();
    drop(held);
    assert!(
        run.stderr.contains("pipework: warning: bridge brdl: another run held the bridge lock"),
        "{run:?}"
    );
    assert!(host.link("brdl").is_some(), "brdl was removed without the lock");
    assert!(host.link(&format!("veth1pl{}", guest.pid())).is_none(), "the attachment stays");
    assert!(guest.link("eth1").is_none());
}

#[test]
fn del_twice_second_has_nothing_to_remove() {
    let host = host_with_bridge("br1");
    let guest = Netns::new();
    host.pipework(&["br1", "-i", "eth2", &guest.guest(), "10.0.0.2/24"]).ok();
    host.pipework(&["del", "br1", &guest.guest(), "-i", "eth2"]).ok();
    let again = host.pipework(&["del", "br1", &guest.guest(), "-i", "eth2"]).ok();
    assert!(again.stderr.contains("nothing to remove: no eth2 in"), "{again:?}");
    let v = json(&host.pipework(&["del", &guest.guest(), "-i", "eth2", "--json"]).ok());
    assert_eq!(v["removed"], false, "{v}");
}

#[test]
fn del_refuses_an_interface_pipework_did_not_make() {
    let host = host_with_bridge("br1");
    let guest = Netns::new();
    let netns = guest.path();
    host.sh("ip", &["link", "add", "theirs", "type", "veth", "peer", "name", "eth1", "netns", &netns]);
    let (h, g) = (host.snapshot(), guest.snapshot());
    let line = host.pipework(&["del", &guest.guest()]).failed();
    assert!(line.contains("eth1 in pid:") && line.contains("not made by pipework"), "{line}");
    let run = host.pipework(&["del", &guest.guest(), "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(json(&run)["error"].as_str().unwrap().contains("not deleting it"), "{run:?}");
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
}

#[test]
fn del_dry_run_prints_the_removals_and_changes_nothing() {
    let host = Netns::new();
    host.sh("ip", &["link", "add", "br9", "up", "type", "bridge"]);
    let guest = Netns::new();
    host.pipework(&["br9", &guest.guest(), "10.0.0.2/24"]).ok();
    let (h, g) = (host.snapshot(), guest.snapshot());
    let run = host.pipework(&["del", &guest.guest(), "--dry-run", "--prune-bridge"]).ok();
    let end = format!("veth1pl{}", guest.pid());
    assert_eq!(run.stdout, format!("ip link del {end}\nip link del br9 (it has no ports)\n"));
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
    host.pipework(&["del", &guest.guest(), "--prune-bridge"]).ok();
    assert!(host.link("br9").is_none(), "the emptied bridge goes with --prune-bridge");
}

#[test]
fn del_of_a_macvlan_attachment() {
    let host = Netns::new();
    host.sh("ip", &["link", "add", "eth2", "up", "type", "veth", "peer", "name", "eth2p"]);
    host.sh("ip", &["link", "set", "eth2p", "up"]);
    let guest = Netns::new();
    let (h, g) = (host.snapshot(), guest.snapshot());
    host.pipework(&["eth2", &guest.guest(), "10.0.0.2/24"]).ok();
    let mark = guest.link("eth1").unwrap()["ifalias"].as_str().unwrap().to_string();
    assert!(mark.ends_with("if=eth1 host=eth2 mode=macvlan"), "{mark}");
    // Found without GUEST too, in the guest's namespace (one dump of each).
    let all = listed(&host, &guest.guest());
    assert_eq!(all.len(), 1, "{all:?}");
    let e = &all[0];
    let got = (e["kind"].as_str(), e["host_if"].as_str(), e["host_end"].as_str(), e["stale"].as_bool());
    assert_eq!(got, (Some("macvlan"), Some("eth2"), None, Some(false)), "{e}");
    assert_eq!(e["addresses"][0], "10.0.0.2/24", "{e}");
    let mine = json(&host.pipework(&["ls", &guest.guest(), "--json"]).ok());
    assert_eq!(mine["attachments"][0]["kind"], "macvlan", "{mine}");
    host.pipework(&["del", "eth2", &guest.guest()]).ok();
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
}

#[test]
fn del_of_an_ovs_attachment_removes_its_port() {
    let host = Netns::new();
    let ovs = Ovs::start(&host);
    ovs.bridge("ovsbr0");
    let guest = Netns::new();
    let (h, g) = (host.snapshot(), guest.snapshot());
    ovs.pipework(&host, &["ovsbr0", &guest.guest(), "192.168.1.2/24", "@10"]).ok();
    let port = format!("veth1pl{}", guest.pid());
    assert!(ovs.vsctl_ok(&["list-ports", "ovsbr0"]).contains(&port));
    let v = json(&ovs.pipework(&host, &["del", &guest.guest(), "--json"]).ok());
    assert_eq!(v["steps"][0], format!("ovs-vsctl --if-exists del-port ovsbr0 {port}"), "{v}");
    assert_eq!(ovs.vsctl_ok(&["list-ports", "ovsbr0"]), "", "the port record is gone");
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
}

/// `ip -j` of a namespace given by path (a container's), for before/after.
pub(crate) fn snapshot_at(netns: &str) -> String {
    let mut parts = Vec::new();
    for args in [&["link", "show"][..], &["addr", "show"][..], &["route", "show", "table", "all"][..]] {
        let out = Command::new("nsenter")
            .arg(format!("--net={netns}"))
            .arg("ip")
            .arg("-j")
            .args(args)
            .output()
            .unwrap();
        let mut v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if let Value::Array(items) = &mut v {
            items.iter_mut().for_each(|i| drop(i.as_object_mut().map(|o| o.remove("operstate"))));
        }
        parts.push(v.to_string());
    }
    parts.join("\n")
}

#[test]
fn docker_container_attached_then_deleted() {
    let host = host_with_bridge("br1");
    let c = Container::run();
    let netns = format!("/proc/{}/ns/net", c.pid());
    let (h, g) = (host.snapshot(), snapshot_at(&netns));
    host.pipework(&["br1", &c.name, "10.0.0.5/24@10.0.0.1"]).ok();
    let id = String::from_utf8(
        Command::new("docker").args(["inspect", "-f", "{{.Id}}", &c.name]).output().unwrap().stdout,
    )
    .unwrap();
    let id = id.trim();
    let end = format!("veth1pl{}", c.pid());
    let alias = host.link(&end).unwrap()["ifalias"].as_str().unwrap().to_string();
    assert!(alias.contains(&format!("guest=docker:{id} ")), "the full id: {alias}");
    let all = listed(&host, id);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(
        (all[0]["container_name"].as_str(), all[0]["addresses"][0].as_str()),
        (Some(c.name.as_str()), Some("10.0.0.5/24"))
    );
    host.pipework(&["del", &c.name]).ok();
    assert_same("host", &h, &host.snapshot());
    assert_same("container", &g, &snapshot_at(&netns));
}

/// Holds a namespace open after its first process is gone.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ls_lists_attachments_and_shows_a_gone_guest_as_stale() {
    let bridge = unique("br");
    let host = host_with_bridge(&bridge);
    let (a, mut b) = (Netns::new(), Netns::new());
    host.pipework(&[&bridge, &a.guest(), "10.0.0.2/24@10.0.0.1"]).ok();
    host.pipework(&[&bridge, &b.guest(), "10.0.0.3/24"]).ok();
    let hold = Holder(
        Command::new("nsenter")
            .arg(format!("--net={}", b.path()))
            .args(["sleep", "600"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(std::time::Duration::from_millis(100));
    let la = listed(&host, &a.guest());
    assert_eq!(la.len(), 1, "{la:?}");
    assert_eq!(la[0]["addresses"][0], "10.0.0.2/24");
    assert_eq!((la[0]["host_if"].as_str(), la[0]["stale"].as_bool()), (Some(bridge.as_str()), Some(false)));
    let human = host.pipework(&["ls"]).ok().stdout;
    assert!(human.starts_with("GUEST ") && human.contains(&b.guest()), "{human}");
    let gone = b.guest();
    b.end();
    let lb = listed(&host, &gone);
    assert_eq!((lb.len(), lb[0]["stale"].as_bool()), (1, Some(true)), "{lb:?}");
    assert!(host.pipework(&["ls"]).ok().stdout.lines().any(|l| l.starts_with(&gone) && l.ends_with("stale")));
    drop(hold);
}

#[test]
fn attach_json_says_changed_then_unchanged() {
    let host = host_with_bridge("br1");
    let guest = Netns::new();
    let args = ["br1", &guest.guest(), "10.0.0.2/24@10.0.0.1", "--json"];
    let first = json(&host.pipework(&args).ok());
    assert_eq!(first["changed"], true, "{first}");
    assert_eq!(first["interfaces"][1]["name"], "eth1");
    assert_eq!(first["interfaces"][1]["sandbox"], guest.path());
    assert_eq!(
        first["ips"],
        serde_json::json!([{"address": "10.0.0.2/24", "gateway": "10.0.0.1", "interface": 1}])
    );
    assert_eq!(first["routes"], serde_json::json!([{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}]));
    let again = json(&host.pipework(&args).ok());
    assert_eq!(again["changed"], false, "{again}");
    assert_eq!(again["interfaces"], first["interfaces"]);
    let run = host.pipework(&["br1", &guest.guest(), "10.0.0.9/24", "--json", "-i", "eth1", "-l", "x"]);
    assert_eq!(run.code, 1, "{run:?}");
    let e = json(&run);
    assert!(e["error"].as_str().unwrap().contains("eth1 already exists"), "{e}");
    assert_eq!(e["rollback_errors"], serde_json::json!([]));
}

/// The record file of GUEST's CONTAINER_IF under HOST's run directory.
fn record_path(host: &Netns, guest: &Netns, cif: &str) -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt;
    let ns = std::fs::metadata(guest.path()).unwrap().ino();
    host.run_dir().join("attachments").join(format!("{ns}-{cif}.json"))
}

#[test]
fn check_of_a_fresh_attachment_passes_then_names_each_difference() {
    let host = host_with_bridge("br1");
    let guest = Netns::new();
    host.pipework(&["br1", &guest.guest(), "10.0.0.2/24@10.0.0.1"]).ok();
    let rec: Value =
        serde_json::from_slice(&std::fs::read(record_path(&host, &guest, "eth1")).unwrap()).unwrap();
    assert_eq!(
        (rec["addresses"][0].as_str(), rec["gateways"][0].as_str()),
        (Some("10.0.0.2/24"), Some("10.0.0.1"))
    );
    let ok = host.pipework(&["check", &guest.guest()]).ok();
    assert!(ok.stderr.contains("eth1 in pid:") && ok.stderr.contains("is as attached to br1"), "{ok:?}");
    let v = json(&host.pipework(&["check", &guest.guest(), "--json"]).ok());
    assert_eq!((v["ok"].as_bool(), v["kind"].as_str()), (Some(true), Some("bridge")), "{v}");
    assert_eq!(
        (v["differences"].clone(), v["not_compared"].clone()),
        (serde_json::json!([]), serde_json::json!([]))
    );

    guest.sh("ip", &["addr", "del", "10.0.0.2/24", "dev", "eth1"]);
    let run = host.pipework(&["check", &guest.guest()]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(&format!("pipework: eth1 in {}: address 10.0.0.2/24 is gone\n", guest.guest())),
        "{run:?}"
    );
    let run = host.pipework(&["check", &guest.guest(), "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let v = json(&run);
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["differences"].as_array().unwrap().iter().any(|d| d == "address 10.0.0.2/24 is gone"), "{v}");

    let other = Netns::new();
    host.pipework(&["br1", &other.guest(), "10.0.0.3/24"]).ok();
    host.pipework(&["check", &other.guest()]).ok();
    let end = format!("veth1pl{}", other.pid());
    host.sh("ip", &["link", "set", &end, "down"]);
    let run = host.pipework(&["check", &other.guest()]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stderr,
        format!("pipework: eth1 in {}: host end {end} is down\n", other.guest()),
        "{run:?}"
    );
    other.sh("ip", &["link", "set", "eth1", "down"]);
    let v = json(&host.pipework(&["check", &other.guest(), "--json"]));
    assert_eq!(
        v["differences"],
        serde_json::json!([format!("host end {end} is down"), "eth1 is down"]),
        "{v}"
    );
}

#[test]
fn check_without_its_record_checks_what_the_kernel_says_and_del_still_works() {
    let host = host_with_bridge("br1");
    let guest = Netns::new();
    let (h, g) = (host.snapshot(), guest.snapshot());
    host.pipework(&["br1", &guest.guest(), "10.0.0.2/24@10.0.0.1"]).ok();
    assert!(record_path(&host, &guest, "eth1").exists());
    std::fs::remove_dir_all(host.run_dir()).unwrap();
    let run = host.pipework(&["check", &guest.guest()]).ok();
    assert!(
        run.stderr.contains("no record of the attach") && run.stderr.contains("cannot be compared"),
        "{run:?}"
    );
    let v = json(&host.pipework(&["check", &guest.guest(), "--json"]).ok());
    assert_eq!((v["ok"].as_bool(), v["not_compared"].as_array().map(Vec::len)), (Some(true), Some(1)), "{v}");
    let end = format!("veth1pl{}", guest.pid());
    host.sh("ip", &["link", "set", &end, "nomaster"]);
    let v = json(&host.pipework(&["check", &guest.guest(), "--json"]));
    assert_eq!(
        v["differences"],
        serde_json::json!([format!("host end {end} is not a port of bridge br1")]),
        "{v}"
    );
    host.sh("ip", &["link", "set", &end, "master", "br1"]);
    assert_eq!(listed(&host, &guest.guest()).len(), 1, "ls needs no record");
    host.pipework(&["del", &guest.guest()]).ok();
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
}

#[test]
fn check_of_what_is_not_there_or_not_ours_fails() {
    let host = host_with_bridge("br1");
    let guest = Netns::new();
    let v = json(&host.pipework(&["check", &guest.guest(), "--json"]));
    assert_eq!(v["differences"], serde_json::json!(["not there"]), "{v}");
    let netns = guest.path();
    host.sh("ip", &["link", "add", "theirs", "type", "veth", "peer", "name", "eth1", "netns", &netns]);
    let run = host.pipework(&["check", &guest.guest()]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("was not made by pipework") && !run.stderr.contains("deleting"), "{run:?}");
}

#[test]
fn del_removes_the_record() {
    let host = host_with_bridge("br1");
    let guest = Netns::new();
    host.pipework(&["br1", &guest.guest(), "10.0.0.2/24"]).ok();
    let path = record_path(&host, &guest, "eth1");
    assert!(path.exists());
    host.pipework(&["del", &guest.guest(), "--dry-run"]).ok();
    assert!(path.exists(), "--dry-run keeps it");
    host.pipework(&["del", &guest.guest()]).ok();
    assert!(!path.exists(), "del removes it");
}

/// Wait (at most 5 s) until `name` is gone from `host`: a namespace's veth goes
/// with it, asynchronously.
fn until_gone(host: &Netns, name: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while host.link(name).is_some() {
        assert!(std::time::Instant::now() < deadline, "{name} is still there");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn gc_removes_the_records_of_guests_that_are_gone_and_dry_run_changes_nothing() {
    let bridge = unique("br");
    let host = host_with_bridge(&bridge);
    let (a, mut b) = (Netns::new(), Netns::new());
    host.pipework(&[&bridge, &a.guest(), "10.0.0.2/24"]).ok();
    host.pipework(&[&bridge, &b.guest(), "10.0.0.3/24"]).ok();
    let (ra, rb) = (record_path(&host, &a, "eth1"), record_path(&host, &b, "eth1"));
    assert!(ra.exists() && rb.exists());
    let v = json(&host.pipework(&["gc", "--json"]).ok());
    assert_eq!(v["removed"], serde_json::json!([]), "nothing is gone yet: {v}");
    let gone = b.guest();
    // Held open, the dead guest's namespace keeps its number: a namespace number is
    // reused at once when freed, and another test's new namespace under it would make
    // the guest look alive (gc keeps what it cannot prove gone). Its veth stays too.
    let held = std::fs::File::open(b.path()).unwrap();
    b.end();
    let end = format!("veth1pl{}", gone.trim_start_matches("pid:"));
    let snap = host.snapshot();
    let dry = host.pipework(&["gc", "--dry-run"]).ok();
    assert_eq!(
        dry.stdout,
        format!(
            "would remove host end {end} (guest {gone} is gone)\nwould remove record {} (guest {gone} is gone)\n",
            rb.display()
        ),
        "{dry:?}"
    );
    assert!(ra.exists() && rb.exists(), "--dry-run removes nothing");
    assert_same("host", &snap, &host.snapshot());
    let v = json(&host.pipework(&["gc", "--json"]).ok());
    let record = serde_json::json!({"kind": "record", "name": rb.display().to_string(), "reason": format!("guest {gone} is gone")});
    assert_eq!(v["dry_run"], Value::Bool(false), "{v}");
    assert!(v["removed"].as_array().unwrap().contains(&record), "{v}");
    drop(held);
    assert!(ra.exists() && !rb.exists());
    let again = host.pipework(&["gc"]).ok();
    assert_eq!(again.stderr, "pipework: nothing left behind\n", "{again:?}");
    host.pipework(&["check", &a.guest()]).ok();
}

#[test]
fn gc_removes_a_host_end_whose_namespace_no_process_is_in() {
    let host = host_with_bridge("br1");
    let mut guest = Netns::new();
    host.pipework(&["br1", &guest.guest(), "10.0.0.2/24"]).ok();
    let end = format!("veth1pl{}", guest.pid());
    let (gone, rec) = (guest.guest(), record_path(&host, &guest, "eth1"));
    // The namespace outlives its process while this fd is open.
    let held = std::fs::File::open(guest.path()).unwrap();
    guest.end();
    assert!(host.link(&end).is_some(), "the held namespace keeps its veth");
    let v = json(&host.pipework(&["gc", "--json", "--dry-run"]).ok());
    assert_eq!(v["removed"].as_array().unwrap().len(), 2, "{v}");
    assert!(host.link(&end).is_some() && rec.exists(), "--dry-run removes nothing");
    let run = host.pipework(&["gc"]).ok();
    let want = format!(
        "pipework: removed host end {end} (guest {gone} is gone)\npipework: removed record {} (guest {gone} is gone)\n",
        rec.display()
    );
    assert_eq!(run.stderr, want, "{run:?}");
    assert!(host.link(&end).is_none() && !rec.exists());
    assert!(host.link("keep0").is_some(), "what is not pipework's stays");
    drop(held);
}

#[test]
fn gc_removes_an_ovs_port_whose_guest_is_gone() {
    let host = Netns::new();
    let ovs = Ovs::start(&host);
    ovs.bridge("ovsbr0");
    let (mut gone, stays) = (Netns::new(), Netns::new());
    ovs.pipework(&host, &["ovsbr0", &gone.guest(), "192.168.1.2/24"]).ok();
    ovs.pipework(&host, &["ovsbr0", &stays.guest(), "192.168.1.3/24"]).ok();
    let (port, kept) = (format!("veth1pl{}", gone.pid()), format!("veth1pl{}", stays.pid()));
    gone.end();
    until_gone(&host, &port);
    assert!(ovs.vsctl_ok(&["list-ports", "ovsbr0"]).contains(&port), "OVS keeps the port record");
    let v = json(&ovs.pipework(&host, &["gc", "--json", "--dry-run"]).ok());
    assert_eq!(
        v["removed"][0],
        serde_json::json!({"kind": "ovs_port", "name": port, "reason": "its interface is gone"}),
        "{v}"
    );
    assert!(ovs.vsctl_ok(&["list-ports", "ovsbr0"]).contains(&port), "--dry-run removes nothing");
    let v = json(&ovs.pipework(&host, &["gc", "--json"]).ok());
    // The port, and the guest's record unless another test's new namespace has taken
    // the freed namespace number meanwhile (gc keeps what it cannot prove gone; the
    // record case is pinned, with the number held, by the test above).
    let removed = v["removed"].as_array().unwrap();
    assert!(removed.iter().any(|r| r["kind"] == "ovs_port" && r["name"] == port.as_str()), "{v}");
    assert_eq!(ovs.vsctl_ok(&["list-ports", "ovsbr0"]).trim(), kept, "only the live guest's port is left");
    ovs.pipework(&host, &["check", &stays.guest()]).ok();
}

#[test]
fn del_puts_back_the_default_route_the_attach_replaced() {
    let host = host_with_bridge("br1");
    let guest = crate::util::guest_with_default_route();
    // Its maker comes back with it (one of another metric the attach leaves alone).
    let args = "route replace default via 172.31.0.1 dev up0 proto dhcp";
    guest.sh("ip", &args.split(' ').collect::<Vec<_>>());
    let (h, g) = (host.snapshot(), guest.snapshot());
    host.pipework(&["br1", &guest.guest(), "10.0.0.2/24@10.0.0.1"]).ok();
    let routes = guest.sh("ip", &["route", "show", "default"]);
    assert_eq!(routes.trim(), "default via 10.0.0.1 dev eth1", "the attach replaced it");
    let rec: Value =
        serde_json::from_slice(&std::fs::read(record_path(&host, &guest, "eth1")).unwrap()).unwrap();
    assert_eq!(
        rec["replaced_routes"],
        serde_json::json!([{"dst": "0.0.0.0/0", "gateway": "172.31.0.1", "dev": "up0", "metric": null, "protocol": 16}])
    );
    let dry = host.pipework(&["del", &guest.guest(), "--dry-run"]).ok();
    let shown = "guest: ip route add default via 172.31.0.1 dev up0 proto 16\n";
    assert!(dry.stdout.ends_with(shown), "{dry:?}");
    let run = host.pipework(&["del", &guest.guest()]).ok();
    assert!(
        run.stderr.ends_with(
            "pipework: put back the default route via 172.31.0.1 dev up0
"
        ),
        "{run:?}"
    );
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
}

#[test]
fn del_leaves_the_replaced_route_away_when_its_gateway_is_unreachable_or_without_a_record() {
    let host = host_with_bridge("br1");
    let guest = crate::util::guest_with_default_route();
    host.pipework(&["br1", &guest.guest(), "10.0.0.2/24@10.0.0.1"]).ok();
    guest.sh("ip", &["addr", "del", "172.31.0.2/24", "dev", "up0"]);
    let run = host.pipework(&["del", &guest.guest(), "--json"]).ok();
    assert_eq!(json(&run)["routes_put_back"], serde_json::json!([]), "{run:?}");
    let why =
        "172.31.0.1 dev up0 that the attach replaced is not put back: 172.31.0.1 is not reachable any more";
    assert!(run.stderr.contains(why), "{run:?}");
    assert_eq!(guest.sh("ip", &["route", "show", "default"]), "");
    let other = crate::util::guest_with_default_route();
    host.pipework(&["br1", &other.guest(), "10.0.0.3/24@10.0.0.1"]).ok();
    std::fs::remove_dir_all(host.run_dir()).unwrap();
    host.pipework(&["del", &other.guest()]).ok();
    assert_eq!(other.sh("ip", &["route", "show", "default"]), "", "no record, nothing to put back");
}

#[test]
fn check_and_gc_are_host_interfaces_when_bridges_have_those_names() {
    let host = Netns::new();
    let (a, b) = (Netns::new(), Netns::new());
    for word in ["check", "gc"] {
        host.sh("ip", &["link", "add", word, "up", "type", "bridge"]);
    }
    host.pipework(&["check", &a.guest(), "10.0.0.2/24"]).ok();
    host.pipework(&["gc", &b.guest(), "10.0.0.3/24"]).ok();
    for (guest, bridge) in [(&a, "check"), (&b, "gc")] {
        let end = host.link(&format!("veth1pl{}", guest.pid())).unwrap();
        assert_eq!(end["master"], bridge, "{end}");
    }
}

/// pipework killed (SIGKILL, by strace) at its K-th netlink request.
fn killed_at_sendto(host: &Netns, args: &[&str], k: u32) -> Run {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", host.path()))
        .args(["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=sendto"])
        .arg(format!("-einject=sendto:signal=KILL:when={k}"))
        .arg(crate::util::BIN)
        .args(args)
        .envs(host.env())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run::from(out)
}

/// Killed right after it made the veth (which the kernel makes without the mark):
/// `ls` shows the attach `interrupted`, `check` says it was cut short, and the same
/// command again undoes it and attaches whole, saying so. (Before intents, the
/// re-run failed `Link veth1plN exists and is up` and `del` refused the veth.)
#[test]
fn an_attach_killed_after_its_veth_shows_as_interrupted_and_a_rerun_makes_it_whole() {
    let host = host_with_bridge("br1");
    for k in 1..40 {
        let guest = Netns::new();
        let end = format!("veth1pl{}", guest.pid());
        let args = ["br1", &guest.guest(), "10.0.0.2/24@10.0.0.1"];
        killed_at_sendto(&host, &args, k);
        let Some(link) = host.link(&end) else { continue };
        assert!(link["ifalias"].is_null(), "the first kill point with the veth has no mark yet: {link}");
        let mine = listed(&host, &guest.guest());
        assert!(mine.iter().any(|a| a["intent"] == "interrupted" && a["container_if"] == "eth1"), "{mine:?}");
        let check = host.pipework(&["check", &guest.guest()]);
        assert!(check.code == 1 && check.stderr.contains("was cut short: run it again, or del"), "{check:?}");
        let again = host.pipework(&args).ok();
        assert!(again.stderr.contains("undid an attach of eth1"), "{again:?}");
        host.pipework(&["check", &guest.guest()]).ok();
        assert!(guest.addrs("eth1").contains(&"10.0.0.2/24".to_string()));
        host.pipework(&["del", &guest.guest()]).ok();
        assert!(host.link(&end).is_none());
        return;
    }
    panic!("no kill point left the veth");
}

/// A Docker container as Docker makes it (IPv6 off inside), an IPv6 attach killed
/// at each of its netlink requests in turn: `del` gives the container back as it
/// was each time (its IPv6 off again), and the same command then attaches whole.
#[test]
fn a_docker_containers_ipv6_attach_killed_anywhere_is_undone_by_del_and_made_by_a_rerun() {
    let host = host_with_bridge("br1");
    let c = Container::run();
    let netns = format!("/proc/{}/ns/net", c.pid());
    let args = ["br1", &c.name, "fd00:77::5/64@fd00:77::1"];
    let (h, g) = (host.snapshot(), snapshot_at(&netns));
    let trace = std::env::temp_dir().join(unique("pwt-trace-"));
    let out = Command::new("nsenter")
        .arg(format!("--net={}", host.path()))
        .args(["strace", "-f", "-qq", "-e", "trace=sendto", "-o"])
        .arg(&trace)
        .arg(crate::util::BIN)
        .args(args)
        .envs(host.env())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sends = std::fs::read_to_string(&trace).unwrap().lines().filter(|l| l.contains("sendto(")).count();
    let _ = std::fs::remove_file(&trace);
    host.pipework(&["del", &c.name]).ok();
    let mut bad = Vec::new();
    for k in 1..=sends as u32 {
        let killed = killed_at_sendto(&host, &args, k);
        let del = host.pipework(&["del", &c.name]);
        if del.code != 0 || host.snapshot() != h || snapshot_at(&netns) != g {
            bad.push(format!(
                "killed at sendto {k} ({}): del {del:?} did not give back the state",
                killed.code
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    killed_at_sendto(&host, &args, sends as u32 / 2);
    host.pipework(&args).ok();
    assert_eq!(c.ipv6_disabled("eth1"), "0");
    assert!(c.sh(&["ip", "-6", "addr", "show", "dev", "eth1"]).contains("fd00:77::5/64"));
    host.pipework(&["del", &c.name]).ok();
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &snapshot_at(&netns));
}

/// The netlink requests (sendto/sendmsg on a NETLINK socket, as `strace -yy` names
/// it) of `pipework ARGS` in `host`'s namespace, which must succeed.
fn netlink_requests(host: &Netns, args: &[&str]) -> (usize, Run) {
    let trace = std::env::temp_dir().join(unique("pwt-requests-"));
    let out = Command::new("nsenter")
        .arg(format!("--net={}", host.path()))
        .args(["strace", "-f", "-yy", "-qq", "-e", "trace=sendto,sendmsg", "-o"])
        .arg(&trace)
        .arg(crate::util::BIN)
        .args(args)
        .envs(host.env())
        .stdin(Stdio::null())
        .output()
        .expect("strace (Debian package strace; scripts/test.sh installs it)");
    let run = Run::from(out).ok();
    let text = std::fs::read_to_string(&trace).unwrap();
    let _ = std::fs::remove_file(&trace);
    let sends = text
        .lines()
        .filter(|l| l.contains("<NETLINK:") && (l.contains("sendto(") || l.contains("sendmsg(")))
        .count();
    (sends, run)
}

/// The requests a static IPv4 attach to an existing bridge needs: the three lookups
/// of the facts (bridge, host end, CONTAINER_IF) and the guest's IPv4 routes, the
/// veth, its mark, the address, the link up, the route, the host end's port state and
/// the announcement: 11. The record and `--json` come from what the run made (the
/// kernel's echo of the veth), not from reading it back (16 requests before), and are
/// what a read-back gives: the same command again, which finds it all done and its
/// record gone, reads them back.
#[test]
fn a_static_attach_to_a_bridge_sends_at_most_11_netlink_requests_and_records_what_a_read_back_gives() {
    const BOUND: usize = 11;
    let host = host_with_bridge("br1");
    let guest = Netns::new();
    let args = ["br1", &guest.guest(), "10.0.0.2/24@10.0.0.1"];
    let (sends, _) = netlink_requests(&host, &args);
    assert!(sends <= BOUND, "{sends} netlink requests, more than {BOUND}");
    let path = record_path(&host, &guest, "eth1");
    let mut made: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(made["run"].is_object(), "{made}");
    std::fs::remove_file(&path).unwrap();
    host.pipework(&args).ok();
    let read: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    made["run"] = Value::Null;
    assert_eq!(made, read, "the record of the run against the one read back");
    host.pipework(&["check", &guest.guest()]).ok();

    let other = Netns::new();
    let args = ["br1", &other.guest(), "10.0.0.3/24@10.0.0.1", "--json"];
    let (sends, run) = netlink_requests(&host, &args);
    assert!(sends <= BOUND, "--json: {sends} netlink requests, more than {BOUND}");
    let mut first = json(&run);
    let again = json(&host.pipework(&args).ok());
    assert_eq!(first["changed"], true, "{first}");
    first["changed"] = Value::Bool(false);
    assert_eq!(first, again, "the result of the run against the one read back");
}
