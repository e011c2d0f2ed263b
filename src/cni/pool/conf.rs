//! `"ipam": {"type": "pipework-pool", ...}`: host-local's keys (`ranges` of range
//! sets of `subnet`/`rangeStart`/`rangeEnd`/`gateway`, or one range's keys at the
//! top, `routes`, `dataDir`), read strictly: a key host-local does not have, or a
//! range that does not parse, is refused (code 7, naming it) before anything
//! changes.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnetwork::IpNetwork;
use serde::Deserialize;
use serde_json::Value;

use crate::cni::error::{CniError, Code};
use crate::cni::result::RouteEntry;

/// host-local's default store.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";

/// One pool: its range sets (one address from each per attachment: several for
/// dual stack), the routes it hands out, and where its leases are.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    /// The network's name: the leases' directory under `data_dir`.
    pub network: String,
    pub sets: Vec<Vec<Range>>,
    pub routes: Vec<RouteEntry>,
    pub data_dir: PathBuf,
}

/// One range of a set, its bounds filled in as host-local fills them.
#[derive(Clone, Debug, PartialEq)]
pub struct Range {
    pub subnet: IpNetwork,
    pub start: IpAddr,
    pub end: IpAddr,
    pub gateway: IpAddr,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Raw {
    #[serde(rename = "type")]
    _kind: String,
    ranges: Option<Vec<Vec<RawRange>>>,
    subnet: Option<String>,
    range_start: Option<String>,
    range_end: Option<String>,
    gateway: Option<String>,
    #[serde(default)]
    routes: Vec<RawRoute>,
    data_dir: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRange {
    subnet: String,
    range_start: Option<String>,
    range_end: Option<String>,
    gateway: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    dst: String,
    gw: Option<String>,
}

fn bad(msg: String) -> CniError {
    CniError::new(Code::InvalidConfig, format!("bad ipam of type pipework-pool: {msg}"))
}

impl Pool {
    /// The pool of network `network` from its config's `ipam` object.
    pub fn parse(network: &str, ipam: &Value) -> Result<Pool, CniError> {
        let raw: Raw = serde_json::from_value(ipam.clone()).map_err(|e| bad(e.to_string()))?;
        let top = raw.subnet.map(|subnet| RawRange {
            subnet,
            range_start: raw.range_start,
            range_end: raw.range_end,
            gateway: raw.gateway,
        });
        let raw_sets = match (raw.ranges, top) {
            (Some(_), Some(_)) => {
                return Err(bad("\"subnet\" and \"ranges\" both given: one or the other".into()))
            }
            (Some(sets), None) => sets,
            (None, Some(one)) => vec![vec![one]],
            (None, None) => return Err(bad("no \"ranges\" (or \"subnet\")".into())),
        };
        let mut sets = Vec::new();
        for (i, set) in raw_sets.iter().enumerate() {
            if set.is_empty() {
                return Err(bad(format!("ranges[{i}] is empty")));
            }
            let ranges = set
                .iter()
                .enumerate()
                .map(|(j, r)| range(r, &format!("ranges[{i}][{j}]")))
                .collect::<Result<Vec<_>, _>>()?;
            if ranges.iter().any(|r| r.subnet.is_ipv4() != ranges[0].subnet.is_ipv4()) {
                return Err(bad(format!("ranges[{i}] mixes IPv4 and IPv6")));
            }
            for (a, ra) in ranges.iter().enumerate() {
                for rb in &ranges[a + 1..] {
                    if num(ra.start) <= num(rb.end) && num(rb.start) <= num(ra.end) {
                        return Err(bad(format!(
                            "ranges[{i}]: {} overlaps {}",
                            ra.describe(),
                            rb.describe()
                        )));
                    }
                }
            }
            sets.push(ranges);
        }
        let routes = raw
            .routes
            .iter()
            .map(|r| {
                let dst = r.dst.parse().map_err(|e| bad(format!("routes: dst {:?}: {e}", r.dst)))?;
                let gw =
                    r.gw.as_deref()
                        .map(|g| g.parse().map_err(|e| bad(format!("routes: gw {g:?}: {e}"))))
                        .transpose()?;
                Ok(RouteEntry { dst, gw })
            })
            .collect::<Result<_, CniError>>()?;
        let data_dir = raw.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        if network.is_empty() || network.contains('/') || network.starts_with('.') {
            return Err(bad(format!("the network name {network:?} cannot name a directory")));
        }
        Ok(Pool { network: network.to_string(), sets, routes, data_dir })
    }
}

/// One range with host-local's defaults: from the subnet's first address after
/// the network address to its last before the broadcast (IPv4) or its last (IPv6);
/// the gateway the first address.
fn range(r: &RawRange, at: &str) -> Result<Range, CniError> {
    let subnet: IpNetwork = r.subnet.parse().map_err(|e| bad(format!("{at}: subnet {:?}: {e}", r.subnet)))?;
    if subnet.ip() != subnet.network() {
        return Err(bad(format!(
            "{at}: subnet {subnet} has host bits set (the network is {}/{})",
            subnet.network(),
            subnet.prefix()
        )));
    }
    let size_bits = if subnet.is_ipv4() { 32 } else { 128 } - u32::from(subnet.prefix());
    if size_bits < 2 {
        return Err(bad(format!("{at}: subnet {subnet} is too small to allocate from")));
    }
    let net = num(subnet.network());
    let last = net + (1u128 << size_bits) - 1;
    let last_usable = if subnet.is_ipv4() { last - 1 } else { last };
    let addr = |key: &str, v: &Option<String>, default: u128| -> Result<u128, CniError> {
        let Some(text) = v else { return Ok(default) };
        let ip: IpAddr = text.parse().map_err(|e| bad(format!("{at}: {key} {text:?}: {e}")))?;
        if !subnet.contains(ip) {
            return Err(bad(format!("{at}: {key} {ip} is not in {subnet}")));
        }
        Ok(num(ip))
    };
    let start = addr("rangeStart", &r.range_start, net + 1)?;
    let end = addr("rangeEnd", &r.range_end, last_usable)?;
    let gateway = addr("gateway", &r.gateway, net + 1)?;
    if start > end {
        return Err(bad(format!("{at}: rangeStart is after rangeEnd")));
    }
    let ip = |n| ip_of(n, subnet.is_ipv4());
    Ok(Range { subnet, start: ip(start), end: ip(end), gateway: ip(gateway) })
}

/// An address as a number, for ranges and steps.
pub fn num(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

pub fn ip_of(n: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4((n as u32).into())
    } else {
        IpAddr::V6(n.into())
    }
}

impl Range {
    /// `START-END`, as host-local names a range.
    pub fn describe(&self) -> String {
        format!("{}-{}", self.start, self.end)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.subnet.is_ipv4() && num(self.start) <= num(ip) && num(ip) <= num(self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn host_locals_keys_and_defaults() {
        let p = Pool::parse("n", &json!({"type": "pipework-pool", "subnet": "10.1.0.0/24"})).unwrap();
        let r = &p.sets[0][0];
        assert_eq!((r.describe(), r.gateway.to_string()), ("10.1.0.1-10.1.0.254".into(), "10.1.0.1".into()));
        assert_eq!(p.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        let p = Pool::parse(
            "n",
            &json!({"type": "pipework-pool", "dataDir": "/d",
                "ranges": [[{"subnet": "10.2.0.0/16", "rangeStart": "10.2.1.10", "rangeEnd": "10.2.1.20", "gateway": "10.2.0.254"}],
                           [{"subnet": "fd00::/64"}]],
                "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.9.0.0/16", "gw": "10.2.0.9"}]}),
        )
        .unwrap();
        assert_eq!(p.sets[0][0].describe(), "10.2.1.10-10.2.1.20");
        assert_eq!(p.sets[0][0].gateway.to_string(), "10.2.0.254");
        assert_eq!(p.sets[1][0].describe(), "fd00::1-fd00::ffff:ffff:ffff:ffff");
        assert_eq!(p.routes.len(), 2);
    }

    #[test]
    fn refusals_are_code_7_and_name_the_key() {
        let refused = |ipam: Value| {
            let e = Pool::parse("n", &ipam).unwrap_err();
            assert_eq!(e.code, 7, "{}", e.msg);
            e.msg
        };
        let m = refused(json!({"type": "pipework-pool", "subnet": "10.1.0.0/24", "rangeStrat": "10.1.0.5"}));
        assert!(m.contains("rangeStrat"), "{m}");
        let m = refused(json!({"type": "pipework-pool", "ranges": [[{"subnet": "10.1.0.0/24", "gw": "x"}]]}));
        assert!(m.contains("`gw`"), "{m}");
        let m = refused(json!({"type": "pipework-pool", "ranges": [[{"subnet": "10.1.0.300/24"}]]}));
        assert!(m.contains("ranges[0][0]: subnet"), "{m}");
        let m = refused(json!({"type": "pipework-pool", "subnet": "10.1.0.5/24"}));
        assert!(m.contains("host bits"), "{m}");
        let m = refused(json!({"type": "pipework-pool", "subnet": "10.1.0.0/24", "rangeStart": "10.2.0.1"}));
        assert!(m.contains("rangeStart 10.2.0.1 is not in 10.1.0.0/24"), "{m}");
        let m = refused(
            json!({"type": "pipework-pool", "ranges": [[{"subnet": "10.1.0.0/24"}, {"subnet": "10.1.0.0/25"}]]}),
        );
        assert!(m.contains("overlaps"), "{m}");
        refused(json!({"type": "pipework-pool"}));
        refused(json!({"type": "pipework-pool", "subnet": "10.1.0.0/31"}));
    }
}
