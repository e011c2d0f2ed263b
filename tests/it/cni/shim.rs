//! `"hostShim"` on a macvlan config (issue 26): the host reaches its macvlan guests
//! through a shim made from the address IPAM gives (host-local here); DEL puts the
//! host back as it was, CHECK says what went missing, and a bridge config refuses it.

use serde_json::{json, Value};

use super::{files, leases, Container};
use crate::util::{assert_same, unique, Netns};

/// A host whose "NIC" is one end of a veth (its peer up beside it), with the host's
/// address in the guests' subnet.
fn host_with_nic() -> Netns {
    let host = Netns::new();
    host.sh("ip", &["link", "add", "nic0", "type", "veth", "peer", "name", "nic0p"]);
    host.sh("ip", &["link", "set", "nic0p", "up"]);
    host.sh("ip", &["link", "set", "nic0", "up"]);
    host.sh("ip", &["addr", "add", "10.79.1.1/24", "dev", "nic0"]);
    host
}

/// A macvlan network on nic0, host-local handing out 10.79.1.10 on.
fn macvlan_conf(host: &Netns, shim: Value) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": unique("shimnet"),
        "type": "pipework",
        "pipework": {"hostInterface": "nic0", "hostShim": shim},
        "ipam": {"type": "host-local", "subnet": "10.79.1.0/24", "rangeStart": "10.79.1.10",
                 "dataDir": host.run_dir().join("ipam")},
    })
}

fn v4(host: &Netns, dev: &str) -> Vec<String> {
    host.addrs(dev).into_iter().filter(|a| a.contains('.')).collect()
}

#[test]
fn cni_host_shim_lets_the_host_reach_its_macvlan_guest_and_del_puts_the_host_back() {
    let host = host_with_nic();
    let guest = Netns::new();
    let c = Container::of(&guest, "eth0");
    let before = host.snapshot();

    // Without the shim the kernel passes nothing between nic0 and its macvlan.
    let plain = macvlan_conf(&host, json!(false));
    let r = c.call(&host, "ADD", &plain).ok();
    assert_eq!(r["ips"][0]["address"], "10.79.1.10/24", "{r}");
    assert!(!host.ping("10.79.1.10"), "the host reached its macvlan guest without a shim");
    c.call(&host, "DEL", &plain).ok();
    assert_same("host after the DEL without a shim", &before, &host.snapshot());

    let conf = macvlan_conf(&host, json!(true));
    let r = c.call(&host, "ADD", &conf).ok();
    let ip = r["ips"][0]["address"].as_str().unwrap().split('/').next().unwrap().to_string();
    assert_eq!(guest.link("eth0").unwrap()["linkinfo"]["info_kind"], "macvlan");
    let shim = host.link("pwshim-nic0").expect("the shim is made");
    assert_eq!(shim["linkinfo"]["info_kind"], "macvlan", "{shim}");
    assert_eq!(v4(&host, "pwshim-nic0"), ["10.79.1.1/24"], "the host's address moved to the shim");
    assert!(v4(&host, "nic0").is_empty());
    let route = host.ip_j(&["-4", "route", "show", &format!("{ip}/32")]);
    assert_eq!(route[0]["dev"], "pwshim-nic0", "{route}");
    assert!(host.ping(&ip), "the host reaches its guest through the shim");
    assert!(guest.ping("10.79.1.1"), "the guest reaches the host");
    // The record holds the shim and its route; no intent is left.
    let records = files(&host, "attachments");
    assert_eq!(records.len(), 1, "{records:?}");
    let record = std::fs::read_to_string(host.run_dir().join("attachments").join(&records[0])).unwrap();
    let record: Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["shim"]["name"], "pwshim-nic0", "{record}");
    assert_eq!(record["shim"]["routes"], json!([format!("{ip}/32")]), "{record}");
    assert!(files(&host, "intents").is_empty());
    let ls = host.pipework(&["ls"]).ok().stdout;
    assert!(ls.contains("macvlan,shim=pwshim-nic0"), "{ls}");

    // CHECK with the ADD's result; then with the host route gone behind our back.
    let mut checked = conf.clone();
    checked["prevResult"] = r.clone();
    assert_eq!(c.call(&host, "CHECK", &checked).ok(), Value::Null);
    host.sh("ip", &["route", "del", &format!("{ip}/32"), "dev", "pwshim-nic0"]);
    let e = c.call(&host, "CHECK", &checked).error(999);
    assert!(
        e["msg"].as_str().unwrap().contains(&format!("the host route to {ip} via pwshim-nic0 is gone")),
        "{e}"
    );
    host.sh("ip", &["route", "add", &format!("{ip}/32"), "dev", "pwshim-nic0"]);

    // DEL: the route and the shim (its last guest) go, the address back on nic0.
    assert_eq!(c.call(&host, "DEL", &conf).ok(), Value::Null);
    assert!(host.link("pwshim-nic0").is_none());
    assert_eq!(v4(&host, "nic0"), ["10.79.1.1/24"]);
    assert_same("host after the DEL with the shim", &before, &host.snapshot());
    assert!(files(&host, "attachments").is_empty() && files(&host, "intents").is_empty());
    assert!(leases(&host, &conf).is_empty());
    // Repeatable, as DEL must be.
    assert_eq!(c.call(&host, "DEL", &conf).ok(), Value::Null);
}

/// Two guests share one shim (named in the config, at an address of its own); it
/// goes with the last of them, also when the runtime's DEL comes with the
/// namespace gone. Their addresses from the built-in pool this time.
#[test]
fn cni_named_shim_with_its_own_address_is_shared_and_goes_with_its_last_guest() {
    let host = host_with_nic();
    let (g1, g2) = (Netns::new(), Netns::new());
    let (c1, c2) = (Container::of(&g1, "eth0"), Container::of(&g2, "net1"));
    let before = host.snapshot();
    let mut conf = macvlan_conf(&host, json!("hs7"));
    conf["pipework"]["hostShimAddr"] = json!("10.79.1.250/24");
    conf["ipam"]["type"] = json!("pipework-pool");
    let ip = |r: &Value| r["ips"][0]["address"].as_str().unwrap().split('/').next().unwrap().to_string();
    let (a, b) = (ip(&c1.call(&host, "ADD", &conf).ok()), ip(&c2.call(&host, "ADD", &conf).ok()));
    assert_eq!(v4(&host, "hs7"), ["10.79.1.250/24"]);
    assert_eq!(v4(&host, "nic0"), ["10.79.1.1/24"], "nothing moves with hostShimAddr");
    assert!(host.ping(&a) && host.ping(&b));
    c1.call(&host, "DEL", &conf).ok();
    assert!(host.link("hs7").is_some(), "the shim stays with its other guest");
    assert!(host.ping(&b) && !host.ping(&a));
    // The runtime closed the namespace before its DEL (containerd does).
    let gone = [("CNI_CONTAINERID", c2.id.as_str()), ("CNI_NETNS", ""), ("CNI_IFNAME", "net1")];
    super::cni(&host, "DEL", &gone, &conf).ok();
    assert!(host.link("hs7").is_none(), "the shim went with its last guest");
    let route = host.ip_j(&["-4", "route", "show", &format!("{b}/32")]);
    assert_eq!(route, json!([]), "the guest's host route went");
    drop((g1, g2));
    assert_same("host after the DELs", &before, &host.snapshot());
    assert!(leases(&host, &conf).is_empty(), "the pool's leases given back");
}

/// `hostShim` on a bridge config: refused before any change (no bridge made, no
/// lease taken), in the command line's words.
#[test]
fn cni_host_shim_on_a_bridge_config_is_refused_before_any_change() {
    let host = Netns::new();
    let guest = Netns::new();
    let c = Container::of(&guest, "eth0");
    let br = unique("cnibr");
    let mut conf = super::bridge_conf(&host, "1.0.0", &br, "10.79.2.0/24");
    conf["pipework"] = json!({"hostShim": true});
    let (h, g) = (host.snapshot(), guest.snapshot());
    let e = c.call(&host, "ADD", &conf).error(7);
    assert_eq!(
        e["msg"],
        format!("--host-shim works on a macvlan attach (a NIC as HOSTIF) only, not on {br}, a bridge attach"),
        "{e}"
    );
    assert_same("host after the refusal", &h, &host.snapshot());
    assert_same("guest after the refusal", &g, &guest.snapshot());
    let store = host.run_dir().join("ipam").join(conf["name"].as_str().unwrap());
    assert!(!store.exists(), "IPAM ran: {}", store.display());
    // The same with the bridge there already.
    host.sh("ip", &["link", "add", &br, "type", "bridge"]);
    let e = c.call(&host, "ADD", &conf).error(7);
    assert!(e["msg"].as_str().unwrap().contains("a bridge attach"), "{e}");
}

/// An ADD with `hostShim` killed at each of its netlink requests in turn: the
/// intent names the shim and its route before they are made (they come after the
/// IPAM plugin's answer), so the runtime's DEL puts the host back as it was (the
/// address back on nic0, no shim, no route) with no lease, record or intent left.
#[test]
fn cni_host_shim_add_killed_at_any_netlink_request_is_undone_by_del() {
    killed_shim_adds_are_undone_by_del("sendto", 10);
}

/// The same at each rename (the intent written again as it names the shim, the
/// record, the CNI state).
#[test]
fn cni_host_shim_add_killed_at_any_state_file_rename_is_undone_by_del() {
    killed_shim_adds_are_undone_by_del("rename", 3);
}

fn killed_shim_adds_are_undone_by_del(syscall: &str, at_least: usize) {
    let host = host_with_nic();
    let conf = macvlan_conf(&host, json!(true));
    let clean = Netns::new();
    let c = Container::of(&clean, "eth0");
    let (answer, sends) = super::add_under_strace(&host, &c, &conf, syscall, None);
    assert_eq!(answer.code, 0, "{answer:?}");
    assert!(host.link("pwshim-nic0").is_some());
    c.call(&host, "DEL", &conf).ok();
    assert!(sends >= at_least, "only {sends} calls of {syscall} counted");
    let mut bad = Vec::new();
    for k in 1..=sends as u32 {
        let guest = Netns::new();
        let c = Container::of(&guest, "eth0");
        let h = host.snapshot();
        let kill = Some(format!("signal=KILL:when={k}"));
        let (killed, _) = super::add_under_strace(&host, &c, &conf, syscall, kill);
        if !matches!(killed.code, -1 | 137) {
            bad.push(format!("{syscall} {k}: the ADD was not killed: {killed:?}"));
            continue;
        }
        let del = c.call(&host, "DEL", &conf);
        let left = (
            !super::settles_to(&host, &h),
            leases(&host, &conf),
            files(&host, "intents"),
            files(&host, "attachments"),
        );
        if del.code != 0 || left.0 || !left.1.is_empty() || !left.2.is_empty() || !left.3.is_empty() {
            let diff = if left.0 { super::similar(&h, &host.snapshot()) } else { String::new() };
            bad.push(format!("{syscall} {k}: DEL {del:?}, left {left:?} {diff}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// An ADD with `hostShim` whose netlink requests fail in turn (EIO): it succeeds
/// whole, the host reaching its guest, or fails with the host as before (the
/// journal undoes the shim, its address move and route, made after IPAM's answer)
/// and no lease, record or intent left.
#[test]
fn cni_host_shim_add_whose_netlink_request_fails_anywhere_is_all_or_nothing() {
    let host = host_with_nic();
    let conf = macvlan_conf(&host, json!(true));
    let clean = Netns::new();
    let c = Container::of(&clean, "eth0");
    let (answer, sends) = super::add_with_failed_send(&host, &c, &conf, None);
    assert_eq!(answer.code, 0, "{answer:?}");
    c.call(&host, "DEL", &conf).ok();
    let mut bad = Vec::new();
    for k in 1..=sends as u32 {
        let guest = Netns::new();
        let c = Container::of(&guest, "eth0");
        let (h, g) = (host.snapshot(), guest.snapshot());
        let (answer, _) = super::add_with_failed_send(&host, &c, &conf, Some(k));
        if answer.code == 0 {
            let ip =
                answer.out["ips"][0]["address"].as_str().unwrap_or("").split('/').next().unwrap().to_string();
            if host.link("pwshim-nic0").is_none() || !host.ping(&ip) {
                bad.push(format!("sendto {k}: success without the shim: {}", answer.out));
            }
            c.call(&host, "DEL", &conf).ok();
            continue;
        }
        let left = (
            !super::settles_to(&host, &h),
            guest.snapshot() != g,
            leases(&host, &conf),
            files(&host, "intents"),
            files(&host, "attachments"),
        );
        if left.0 || left.1 || !left.2.is_empty() || !left.3.is_empty() || !left.4.is_empty() {
            let diff = if left.0 { super::similar(&h, &host.snapshot()) } else { String::new() };
            bad.push(format!("sendto {k}: failed ({}) and left {left:?} {diff}", answer.out));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
