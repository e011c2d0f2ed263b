//! `pipework-pool`: IPAM built in, with host-local's config and store (see [`conf`],
//! [`store`]), so that no IPAM program starts on an ADD's critical path (a Go
//! plugin's start is 3 ms of an ADD's ~10). Addresses are given as host-local
//! gives them: from each range set, round robin after `last_reserved_ip.N`, the
//! gateway skipped; all under the store's lock, so that racing ADDs each get their
//! own address, or a clean refusal when none is left.

mod conf;
mod store;

use std::net::IpAddr;

use ipnetwork::IpNetwork;

pub use conf::Pool;
use conf::{ip_of, num, Range};
use store::Store;

use super::error::{CniError, Code};
use super::result::{CniResult, IpConfig};

/// `ipam.type` of the built-in pool.
pub const KIND: &str = "pipework-pool";

fn io(e: anyhow::Error) -> CniError {
    CniError::new(Code::Io, format!("{e:#}"))
}

/// ADD: one address from each range set for `container_id`/`ifname`, or none at all.
pub fn add(pool: &Pool, container_id: &str, ifname: &str) -> Result<CniResult, CniError> {
    let store = Store::open(&pool.data_dir, &pool.network).map_err(io)?;
    let leases = store.leases().map_err(io)?;
    let mut given: Vec<(IpAddr, &Range)> = Vec::new();
    for (n, set) in pool.sets.iter().enumerate() {
        // As host-local: one address per attachment and range set.
        if let Some(l) =
            leases.iter().find(|l| l.is_of(container_id, ifname) && set.iter().any(|r| r.contains(l.ip)))
        {
            let msg =
                format!("{} has been allocated to {container_id}, duplicate allocation is not allowed", l.ip);
            return Err(undo(&store, &given, CniError::new(Code::Internal, msg)));
        }
        match pick(&store, set, n, container_id, ifname) {
            Ok(Some(got)) => given.push(got),
            Ok(None) => {
                let ranges: Vec<String> = set.iter().map(Range::describe).collect();
                let msg = format!("no IP addresses available in range set: {}", ranges.join(","));
                return Err(undo(&store, &given, CniError::new(Code::Internal, msg)));
            }
            Err(e) => return Err(undo(&store, &given, io(e))),
        }
    }
    let ips = given
        .iter()
        .map(|(ip, r)| IpConfig {
            address: IpNetwork::new(*ip, r.subnet.prefix()).expect("an address of the subnet, its prefix"),
            gateway: Some(r.gateway),
            interface: None,
        })
        .collect();
    Ok(CniResult { ips, routes: pool.routes.clone(), ..CniResult::default() })
}

/// What this ADD took, given back: `e` then.
fn undo(store: &Store, given: &[(IpAddr, &Range)], e: CniError) -> CniError {
    for (ip, _) in given {
        if let Err(undo) = store.release(*ip) {
            return e.and_then_failed(&io(undo));
        }
    }
    e
}

/// The next free address of range set `n` after the last one it gave (host-local's
/// round robin), reserved now; `None` when every one is taken.
fn pick<'a>(
    store: &Store,
    set: &'a [Range],
    n: usize,
    container_id: &str,
    ifname: &str,
) -> anyhow::Result<Option<(IpAddr, &'a Range)>> {
    let sizes: Vec<u128> = set.iter().map(|r| num(r.end) - num(r.start) + 1).collect();
    let total: u128 = sizes.iter().sum();
    let at = |mut pos: u128| -> Option<(IpAddr, &'a Range)> {
        for (r, size) in set.iter().zip(&sizes) {
            if pos < *size {
                return Some((ip_of(num(r.start) + pos, r.subnet.is_ipv4()), r));
            }
            pos -= size;
        }
        None
    };
    let position = |ip: IpAddr| -> Option<u128> {
        let mut before = 0;
        for (r, size) in set.iter().zip(&sizes) {
            if r.contains(ip) {
                return Some(before + num(ip) - num(r.start));
            }
            before += size;
        }
        None
    };
    // After the last one given; from the first when there is none (or it left the set).
    let first = store.last_reserved(n).and_then(position).map_or(0, |p| (p + 1) % total);
    for k in 0..total {
        let Some((ip, range)) = at((first + k) % total) else { break };
        if ip == range.gateway {
            continue;
        }
        if store.reserve(ip, container_id, ifname, n)? {
            return Ok(Some((ip, range)));
        }
    }
    Ok(None)
}

/// DEL: every address of `container_id`/`ifname` given back (none is a success).
pub fn del(pool: &Pool, container_id: &str, ifname: &str) -> Result<(), CniError> {
    let store = Store::open(&pool.data_dir, &pool.network).map_err(io)?;
    for lease in store.leases().map_err(io)?.iter().filter(|l| l.is_of(container_id, ifname)) {
        store.release(lease.ip).map_err(io)?;
    }
    Ok(())
}

/// CHECK: the attachment holds an address of every range set.
pub fn check(pool: &Pool, container_id: &str, ifname: &str) -> Result<(), CniError> {
    let store = Store::open(&pool.data_dir, &pool.network).map_err(io)?;
    let leases = store.leases().map_err(io)?;
    for set in &pool.sets {
        if !leases.iter().any(|l| l.is_of(container_id, ifname) && set.iter().any(|r| r.contains(l.ip))) {
            let ranges: Vec<String> = set.iter().map(Range::describe).collect();
            return Err(CniError::new(
                Code::Internal,
                format!("{container_id}/{ifname} holds no address of range set {}", ranges.join(",")),
            ));
        }
    }
    Ok(())
}

/// GC: the leases of attachments not in `valid` (container id, ifname) given back.
pub fn gc(pool: &Pool, valid: &[(&str, &str)]) -> Result<(), CniError> {
    let store = Store::open(&pool.data_dir, &pool.network).map_err(io)?;
    for lease in store.leases().map_err(io)? {
        if !valid.iter().any(|(id, ifname)| lease.is_of(id, ifname)) {
            store.release(lease.ip).map_err(io)?;
        }
    }
    Ok(())
}

/// STATUS: the store can be opened (and locked).
pub fn status(pool: &Pool) -> Result<(), CniError> {
    Store::open(&pool.data_dir, &pool.network)
        .map(drop)
        .map_err(|e| CniError::new(Code::PluginNotAvailable, format!("{e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pool(dir: &std::path::Path, ipam: serde_json::Value) -> Pool {
        let mut ipam = ipam;
        ipam["type"] = json!(KIND);
        ipam["dataDir"] = json!(dir);
        Pool::parse("net", &ipam).unwrap()
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("pipework-pool-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn addr(r: &CniResult) -> String {
        r.ips[0].address.ip().to_string()
    }

    #[test]
    fn round_robin_after_the_last_reserved_skipping_the_gateway_as_host_local() {
        let d = tmp("rr");
        let p = pool(&d, json!({"ranges": [[{"subnet": "10.9.0.0/29"}]]}));
        let a = add(&p, "a", "eth0").unwrap();
        assert_eq!((addr(&a), a.ips[0].gateway.unwrap().to_string()), ("10.9.0.2".into(), "10.9.0.1".into()));
        assert_eq!(std::fs::read_to_string(d.join("net/10.9.0.2")).unwrap(), "a\r\neth0");
        assert_eq!(std::fs::read_to_string(d.join("net/last_reserved_ip.0")).unwrap(), "10.9.0.2");
        assert_eq!(addr(&add(&p, "b", "eth0").unwrap()), "10.9.0.3");
        del(&p, "a", "eth0").unwrap();
        // Not .2 again: after the last given, round robin.
        assert_eq!(addr(&add(&p, "c", "eth0").unwrap()), "10.9.0.4");
        for id in ["d", "e"] {
            add(&p, id, "eth0").unwrap();
        }
        // .6 was the last: round again, past the gateway, .2 is free.
        assert_eq!(addr(&add(&p, "g", "eth0").unwrap()), "10.9.0.2");
        let e = add(&p, "h", "eth0").unwrap_err();
        assert_eq!(e.msg, "no IP addresses available in range set: 10.9.0.1-10.9.0.6");
        let e = add(&p, "b", "eth0").unwrap_err();
        assert!(e.msg.contains("duplicate allocation"), "{}", e.msg);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn dual_stack_takes_one_of_each_or_none() {
        let d = tmp("dual");
        let p = pool(&d, json!({"ranges": [[{"subnet": "10.8.0.0/30"}], [{"subnet": "fd00:8::/126"}]]}));
        let a = add(&p, "a", "eth0").unwrap();
        let got: Vec<String> = a.ips.iter().map(|i| i.address.to_string()).collect();
        assert_eq!(got, ["10.8.0.2/30", "fd00:8::2/126"]);
        // The IPv4 set is full: the IPv6 address is not kept either.
        let e = add(&p, "b", "eth0").unwrap_err();
        assert!(e.msg.contains("10.8.0.1-10.8.0.2"), "{}", e.msg);
        let left: Vec<String> = std::fs::read_dir(d.join("net"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.parse::<IpAddr>().is_ok())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        gc(&p, &[]).unwrap();
        assert!(add(&p, "b", "eth0").is_ok(), "GC gave a's back");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn an_older_host_locals_lease_names_its_container_alone() {
        let d = tmp("old");
        let p = pool(&d, json!({"subnet": "10.7.0.0/29"}));
        std::fs::create_dir_all(d.join("net")).unwrap();
        std::fs::write(d.join("net/10.7.0.2"), "old").unwrap();
        assert_eq!(addr(&add(&p, "new", "eth0").unwrap()), "10.7.0.3");
        assert!(check(&p, "old", "eth0").is_ok());
        del(&p, "old", "eth1").unwrap();
        assert!(!d.join("net/10.7.0.2").exists());
        let _ = std::fs::remove_dir_all(&d);
    }
}
