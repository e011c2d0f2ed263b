//! A CNI result (interfaces, ips, routes, dns), read from an IPAM plugin or a
//! `prevResult` of any version we speak, and written in the shape of the version
//! the caller asked for: before 1.0.0 every IP says its `version` ("4" or "6").

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{CniError, Code};
use super::version::Version;
use crate::attach::Attached;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CniResult {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteEntry>,
    #[serde(skip_serializing_if = "dns_is_empty")]
    pub dns: Value,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IpConfig {
    pub address: IpNetwork,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// The index in `interfaces` of the interface that has the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteEntry {
    pub dst: IpNetwork,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

pub fn dns_is_empty(dns: &Value) -> bool {
    match dns {
        Value::Null => true,
        Value::Object(m) => m.values().all(|v| v.is_null() || v.as_array().is_some_and(Vec::is_empty)),
        _ => false,
    }
}

/// An attachment as CNI reports one: its interfaces, addresses and routes as they are.
impl From<&Attached> for CniResult {
    fn from(a: &Attached) -> CniResult {
        let interfaces = a.interfaces.iter().map(|i| Interface {
            name: i.name.clone(),
            mac: i.mac.map(|m| m.to_string()),
            sandbox: i.sandbox.clone(),
        });
        let ips = a.ips.iter().map(|ip| IpConfig {
            address: ip.address,
            gateway: ip.gateway,
            interface: Some(ip.interface),
        });
        let routes = a.routes.iter().map(|r| RouteEntry { dst: r.dst, gw: r.gw });
        CniResult {
            interfaces: interfaces.collect(),
            ips: ips.collect(),
            routes: routes.collect(),
            dns: Value::Null,
        }
    }
}

impl CniResult {
    /// A result another plugin printed (its `cniVersion` is the one we asked for).
    pub fn parse(doc: &Value, what: &str) -> Result<CniResult, CniError> {
        serde_json::from_value(doc.clone())
            .map_err(|e| CniError::new(Code::Decode, format!("cannot decode the result of {what}: {e}")))
    }

    /// The document for `version`.
    pub fn to_json(&self, version: Version) -> Value {
        let mut doc = serde_json::to_value(self).expect("a result serializes");
        doc["cniVersion"] = Value::from(version.to_string());
        if version < Version::V1_0_0 {
            for (ip, out) in self.ips.iter().zip(doc["ips"].as_array_mut().into_iter().flatten()) {
                out["version"] = Value::from(if ip.address.is_ipv4() { "4" } else { "6" });
            }
        }
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shaped_per_version() {
        let ipam = json!({"cniVersion": "0.3.1", "ips": [{"version": "4", "address": "10.1.0.5/24", "gateway": "10.1.0.1"}],
            "routes": [{"dst": "0.0.0.0/0"}], "dns": {}});
        let mut r = CniResult::parse(&ipam, "host-local").unwrap();
        r.ips[0].interface = Some(2);
        let old = r.to_json("0.4.0".parse().unwrap());
        assert_eq!(
            old,
            json!({"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.1.0.5/24",
            "gateway": "10.1.0.1", "interface": 2}], "routes": [{"dst": "0.0.0.0/0"}]})
        );
        let new = r.to_json("1.0.0".parse().unwrap());
        assert!(new["ips"][0].get("version").is_none());
        assert_eq!(CniResult::parse(&json!({"ips": [{"address": "nope"}]}), "x").unwrap_err().code, 6);
    }
}
