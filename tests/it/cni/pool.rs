//! The built-in pool IPAM (`"ipam": {"type": "pipework-pool"}`): host-local's keys
//! and store, so that a network switches between the two and keeps its leases;
//! leases given back on DEL, on a failed ADD and by GC; its refusals.

use serde_json::{json, Value};

use super::{bridge_conf, cni, files, leases, Container};
use crate::util::{assert_same, Netns};

/// `conf` with its IPAM made the pool (host-local's keys kept as they are).
fn pooled(conf: &Value) -> Value {
    let mut conf = conf.clone();
    conf["ipam"]["type"] = json!("pipework-pool");
    conf
}

fn lease_owner(host: &Netns, conf: &Value, ip: &str) -> String {
    let path = host.run_dir().join("ipam").join(conf["name"].as_str().unwrap()).join(ip);
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn a_network_switches_from_host_local_to_the_pool_and_back_keeping_its_leases() {
    let host = Netns::new();
    let guests: Vec<Netns> = (0..4).map(|_| Netns::new()).collect();
    let cs: Vec<Container> = guests.iter().map(|g| Container::of(g, "eth0")).collect();
    let local = bridge_conf(&host, "1.0.0", "cnibrsw", "10.90.0.0/24");
    let pool = pooled(&local);
    cs[0].call(&host, "ADD", &local).ok();
    cs[1].call(&host, "ADD", &local).ok();
    assert_eq!(leases(&host, &local), ["10.90.0.2", "10.90.0.3"]);
    // The pool goes on where host-local stopped (its last_reserved_ip.0), in the
    // same files, named the same way.
    let r = cs[2].call(&host, "ADD", &pool).ok();
    assert_eq!(r["ips"][0]["address"], "10.90.0.4/24", "{r}");
    assert_eq!(r["ips"][0]["gateway"], "10.90.0.1", "{r}");
    assert_eq!(guests[2].addrs("eth0")[0], "10.90.0.4/24");
    assert_eq!(lease_owner(&host, &pool, "10.90.0.4"), format!("{}\r\neth0", cs[2].id));
    assert_eq!(lease_owner(&host, &pool, "10.90.0.2"), format!("{}\r\neth0", cs[0].id));
    assert!(guests[2].ping("10.90.0.2"), "the pool's pod reaches host-local's");
    // The pool's DEL gives back a lease host-local gave.
    cs[0].call(&host, "DEL", &pool).ok();
    assert_eq!(leases(&host, &local), ["10.90.0.3", "10.90.0.4"]);
    // And host-local goes on after the pool's last.
    let r = cs[3].call(&host, "ADD", &local).ok();
    assert_eq!(r["ips"][0]["address"], "10.90.0.5/24", "{r}");
    for c in &cs[1..] {
        c.call(&host, "DEL", &pool).ok();
    }
    assert!(leases(&host, &local).is_empty());
}

#[test]
fn bad_pool_configs_are_refused_before_any_change_naming_the_key() {
    let host = Netns::new();
    let guest = Netns::new();
    let c = Container::of(&guest, "eth0");
    let conf = pooled(&bridge_conf(&host, "1.0.0", "cnibrbad", "10.91.0.0/24"));
    let before = (host.snapshot(), guest.snapshot());
    let mut unknown = conf.clone();
    unknown["ipam"]["rangeStrat"] = json!("10.91.0.9");
    let e = c.call(&host, "ADD", &unknown).error(7);
    assert!(e["msg"].as_str().unwrap().contains("rangeStrat"), "{e}");
    let mut bad_range = conf.clone();
    bad_range["ipam"]["subnet"] = json!("10.91.0.0/33");
    let e = c.call(&host, "ADD", &bad_range).error(7);
    assert!(e["msg"].as_str().unwrap().contains("subnet \"10.91.0.0/33\""), "{e}");
    assert_same("host", &before.0, &host.snapshot());
    assert_same("guest", &before.1, &guest.snapshot());
    assert!(files(&host, "ipam").is_empty(), "no store made");
}

#[test]
fn an_exhausted_range_fails_the_add_cleanly_and_names_the_range() {
    let host = Netns::new();
    let (a, b) = (Netns::new(), Netns::new());
    let (ca, cb) = (Container::of(&a, "eth0"), Container::of(&b, "eth0"));
    let mut conf = pooled(&bridge_conf(&host, "1.0.0", "cnibrfull", "10.92.0.0/24"));
    conf["ipam"]["rangeStart"] = json!("10.92.0.10");
    conf["ipam"]["rangeEnd"] = json!("10.92.0.10");
    ca.call(&host, "ADD", &conf).ok();
    let before = (host.snapshot(), b.snapshot());
    let e = cb.call(&host, "ADD", &conf).error(999);
    assert_eq!(e["msg"], "no IP addresses available in range set: 10.92.0.10-10.92.0.10", "{e}");
    assert_same("host", &before.0, &host.snapshot());
    assert_same("guest", &before.1, &b.snapshot());
    assert_eq!(leases(&host, &conf), ["10.92.0.10"]);
    cb.call(&host, "DEL", &conf).ok();
    assert_eq!(leases(&host, &conf), ["10.92.0.10"], "the failed pod's DEL takes no other's lease");
}

#[test]
fn two_adds_racing_for_the_last_address_one_wins_the_other_fails_cleanly() {
    let host = Netns::new();
    let guests: Vec<Netns> = (0..2).map(|_| Netns::new()).collect();
    let cs: Vec<Container> = guests.iter().map(|g| Container::of(g, "eth0")).collect();
    let mut conf = pooled(&bridge_conf(&host, "1.0.0", "cnibrrace", "10.93.0.0/24"));
    conf["ipam"]["rangeStart"] = json!("10.93.0.20");
    conf["ipam"]["rangeEnd"] = json!("10.93.0.20");
    // The bridge first, so that both ADDs find it.
    host.sh("ip", &["link", "add", "cnibrrace", "up", "type", "bridge"]);
    let answers: Vec<_> = std::thread::scope(|s| {
        let runs: Vec<_> = cs.iter().map(|c| s.spawn(|| c.call(&host, "ADD", &conf))).collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let won: Vec<usize> = (0..2).filter(|i| answers[*i].code == 0).collect();
    assert_eq!(won.len(), 1, "{answers:?}");
    let lost = 1 - won[0];
    assert!(answers[lost].out["msg"].as_str().unwrap().contains("10.93.0.20-10.93.0.20"), "{answers:?}");
    assert!(guests[lost].link("eth0").is_none(), "the loser has no interface");
    assert_eq!(host.ip_j(&["link", "show", "master", "cnibrrace"]).as_array().unwrap().len(), 1);
    assert_eq!(leases(&host, &conf), ["10.93.0.20"]);
    assert_eq!(lease_owner(&host, &conf, "10.93.0.20"), format!("{}\r\neth0", cs[won[0]].id));
}

#[test]
fn a_failed_add_and_gc_give_the_pools_leases_back() {
    let host = Netns::new();
    let guests: Vec<Netns> = (0..3).map(|_| Netns::new()).collect();
    let cs: Vec<Container> = guests.iter().map(|g| Container::of(g, "eth0")).collect();
    let conf = pooled(&bridge_conf(&host, "1.1.0", "cnibrpg", "10.94.0.0/24"));
    // A route the kernel refuses, after the attachment was made.
    let mut failing = conf.clone();
    failing["ipam"]["routes"] = json!([{"dst": "198.51.100.0/24", "gw": "203.0.113.1"}]);
    let e = cs[0].call(&host, "ADD", &failing).error(999);
    assert!(e["msg"].as_str().unwrap().contains("198.51.100.0/24"), "{e}");
    assert!(leases(&host, &conf).is_empty(), "the failed ADD gave its lease back");
    for c in &cs {
        c.call(&host, "ADD", &conf).ok();
    }
    assert_eq!(leases(&host, &conf).len(), 3);
    assert_eq!(cni(&host, "STATUS", &[], &conf).ok(), Value::Null);
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": cs[0].id, "ifname": "eth0"}]);
    cni(&host, "GC", &[], &gc).ok();
    assert_eq!(leases(&host, &conf).len(), 1, "GC gave the others' back");
    assert!(guests[1].link("eth0").is_none());
    // A lease no attachment has (an ADD killed before its state was written) goes too.
    let stray = host.run_dir().join("ipam").join(conf["name"].as_str().unwrap()).join("10.94.0.200");
    std::fs::write(&stray, "gone-ctr\r\neth0").unwrap();
    cni(&host, "GC", &[], &gc).ok();
    assert!(!stray.exists());
    cs[0].call(&host, "DEL", &conf).ok();
    assert!(leases(&host, &conf).is_empty());
}
