//! The network configuration on stdin: the reference `bridge` plugin's keys, so
//! that `"type": "bridge"` can become `"type": "pipework"` with the rest kept, and
//! pipework's own under `"pipework"`. Keys we do not know are ignored, as the spec
//! asks; keys that need what pipework does not do are refused (code 2).

use std::str::FromStr;

use serde::Deserialize;
use serde_json::Value;

use crate::model::{Mac, PortVlans, Trunk};

use super::error::{CniError, Code};
use super::version::Version;

/// The bridge plugin's default bridge name.
pub const DEFAULT_BRIDGE: &str = "cni0";

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NetConf {
    pub cni_version: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub bridge: Option<String>,
    pub is_gateway: bool,
    pub is_default_gateway: bool,
    pub force_address: bool,
    pub mtu: Option<u32>,
    pub hairpin_mode: bool,
    pub promisc_mode: bool,
    /// The bridge plugin's `portIsolation`: the host end is an isolated port.
    pub port_isolation: bool,
    /// `vlan`: on a Linux bridge the host end's PVID (untagged), on Open vSwitch the
    /// port's tag; 0 is none, as in the bridge plugin. Read as any number, refused
    /// outside 0..=4094 when parsed.
    pub vlan: Option<i64>,
    /// `vlanTrunk`: the host end's tagged VLANs on a Linux bridge.
    pub vlan_trunk: Option<Vec<TrunkItem>>,
    /// `preserveDefaultVlan`: the host end stays in VLAN 1 besides `vlan` or
    /// `vlanTrunk`'s (true when absent, as in the bridge plugin).
    pub preserve_default_vlan: Option<bool>,
    /// `vlanTrunk`'s ids, checked and merged when parsed.
    #[serde(skip)]
    pub trunk: Trunk,
    pub ipam: Option<Ipam>,
    pub dns: Option<Value>,
    pub args: Option<Value>,
    pub runtime_config: Option<Value>,
    pub prev_result: Option<Value>,
    pub ip_masq: bool,
    pub macspoofchk: bool,
    pub pipework: Own,
    /// GC: the attachments the runtime still has.
    #[serde(rename = "cni.dev/valid-attachments")]
    pub valid_attachments: Option<Vec<Valid>>,
    /// `ipam` read whole when it is the built-in pool (`pipework-pool`).
    #[serde(skip)]
    pub pool: Option<super::pool::Pool>,
}

/// `ipam`: only its `type` is ours to read; the plugin gets the whole config.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Ipam {
    #[serde(rename = "type")]
    pub kind: String,
    /// `pipework-dhcp4`: how long the first lease may take (seconds), as `--timeout`.
    pub timeout: Option<f64>,
}

/// The built-in DHCPv4 client as IPAM: `dhcp4-f` (the lease kept renewed by a
/// keeper process, which DEL stops), no daemon and no socket.
pub const BUILTIN_DHCP: &str = "pipework-dhcp4";

impl Ipam {
    pub fn is_builtin(&self) -> bool {
        self.kind == BUILTIN_DHCP
    }
}

/// One element of `vlanTrunk`: `{"id": N}`, `{"minID": A, "maxID": B}`, or both.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct TrunkItem {
    #[serde(rename = "minID", alias = "minId")]
    pub min_id: Option<i64>,
    #[serde(rename = "maxID", alias = "maxId")]
    pub max_id: Option<i64>,
    #[serde(alias = "ID")]
    pub id: Option<i64>,
}

/// `vlanTrunk`'s ids, checked as the bridge plugin checks them: each 1..=4094,
/// `minID` and `maxID` together and in order.
fn collect_trunk(items: &[TrunkItem]) -> Result<Trunk, CniError> {
    let invalid = |msg: String| CniError::new(Code::InvalidConfig, msg);
    let id = |key: &str, v: i64| match u16::try_from(v) {
        Ok(v) if (1..=4094).contains(&v) => Ok(v),
        _ => Err(invalid(format!("incorrect vlanTrunk {key} {v} (must be between 1 and 4094)"))),
    };
    let mut ranges = Vec::new();
    for item in items {
        match (item.min_id, item.max_id) {
            (Some(lo), Some(hi)) => {
                let (lo, hi) = (id("minID", lo)?, id("maxID", hi)?);
                if hi < lo {
                    return Err(invalid(format!("vlanTrunk minID {lo} is greater than maxID {hi}")));
                }
                ranges.push((lo, hi));
            }
            (None, Some(_)) => {
                return Err(invalid("vlanTrunk: minID and maxID go together, minID is missing".into()))
            }
            (Some(_), None) => {
                return Err(invalid("vlanTrunk: minID and maxID go together, maxID is missing".into()))
            }
            (None, None) => {}
        }
        if let Some(v) = item.id {
            let v = id("id", v)?;
            ranges.push((v, v));
        }
    }
    Ok(Trunk::from_ranges(ranges))
}

/// `"pipework": {...}`: what the command line reaches beyond a Linux bridge.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Own {
    /// HOSTIF as on the command line (a bridge, an Open vSwitch bridge, a NIC);
    /// `bridge` when absent.
    pub host_interface: Option<String>,
    /// `--macvlan-mode` for a NIC.
    pub macvlan_mode: Option<String>,
    /// `--direct-phys`: the NIC itself moves into the container.
    pub direct_phys: bool,
    /// `--host-shim`: `true` for the default name, or the shim's name.
    pub host_shim: Option<ShimKey>,
    /// `--host-shim-addr`.
    pub host_shim_addr: Option<ipnetwork::IpNetwork>,
}

/// `"hostShim": true` or `"hostShim": "NAME"`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ShimKey {
    On(bool),
    Named(String),
}

impl Own {
    /// `hostShim` (with `hostShimAddr`) as the command line's `--host-shim`.
    pub fn host_shim(&self) -> anyhow::Result<Option<Box<crate::model::HostShim>>> {
        use anyhow::Context as _;
        let name = match &self.host_shim {
            None | Some(ShimKey::On(false)) => return Ok(None),
            Some(ShimKey::On(true)) => None,
            Some(ShimKey::Named(n)) => Some(n.parse().with_context(|| format!("bad hostShim '{n}'"))?),
        };
        Ok(Some(Box::new(crate::model::HostShim { name, addr: self.host_shim_addr })))
    }
}

impl FromStr for NetConf {
    type Err = CniError;
    fn from_str(s: &str) -> Result<NetConf, CniError> {
        let mut conf: NetConf = serde_json::from_str(s).map_err(|e| {
            CniError::new(Code::Decode, format!("cannot decode the network configuration: {e}"))
        })?;
        conf.cni_version.parse::<Version>()?;
        for (key, missing) in [("name", conf.name.is_empty()), ("type", conf.kind.is_empty())] {
            if missing {
                return Err(CniError::new(
                    Code::InvalidConfig,
                    format!("the network configuration has no {key:?}"),
                ));
            }
        }
        if let Some(v) = conf.vlan.filter(|v| !(0..=4094).contains(v)) {
            return Err(CniError::new(
                Code::InvalidConfig,
                format!("invalid VLAN ID {v} (must be between 0 and 4094)"),
            ));
        }
        conf.trunk = collect_trunk(conf.vlan_trunk.as_deref().unwrap_or_default())?;
        if conf.vlan_id().is_some() && !conf.trunk.is_empty() {
            // The bridge plugin's ports are access (untagged) or trunk (tagged) ports.
            return Err(CniError::new(Code::InvalidConfig, "cannot set vlan and vlanTrunk at the same time"));
        }
        if conf.ipam.as_ref().is_some_and(|i| i.kind.is_empty()) {
            return Err(CniError::new(Code::InvalidConfig, "\"ipam\" has no \"type\""));
        }
        if conf.ipam.as_ref().is_some_and(|i| i.kind == super::pool::KIND) {
            // Read again, whole and strictly: only host-local's keys.
            let doc: Value = serde_json::from_str(s).expect("parsed once already");
            conf.pool = Some(super::pool::Pool::parse(&conf.name, &doc["ipam"])?);
        }
        Ok(conf)
    }
}

impl NetConf {
    pub fn version(&self) -> Version {
        self.cni_version.parse().expect("checked when parsed")
    }

    /// The keys whose work is a firewall's: refused unless false.
    pub fn refuse_unsupported(&self) -> Result<(), CniError> {
        for (key, on) in [("ipMasq", self.ip_masq), ("macspoofchk", self.macspoofchk)] {
            if on {
                return Err(CniError::new(
                    Code::UnsupportedField,
                    format!("{key} is not supported: pipework makes no firewall rules (leave it out or set it false)"),
                ));
            }
        }
        Ok(())
    }

    /// `vlan`, 0 being none (checked to be 0..=4094 when parsed).
    pub fn vlan_id(&self) -> Option<u16> {
        self.vlan.filter(|v| *v != 0).and_then(|v| u16::try_from(v).ok())
    }

    /// `vlanTrunk` and `preserveDefaultVlan` for the attach.
    pub fn port_vlans(&self) -> PortVlans {
        PortVlans { trunk: self.trunk.clone(), keep_default: self.preserve_default_vlan.unwrap_or(true) }
    }

    /// HOSTIF: `pipework.hostInterface`, else `bridge`, else `cni0`.
    pub fn host_if(&self) -> &str {
        self.pipework.host_interface.as_deref().or(self.bridge.as_deref()).unwrap_or(DEFAULT_BRIDGE)
    }

    /// A gateway on the bridge: `isDefaultGateway` implies `isGateway`, as in the
    /// bridge plugin.
    pub fn gateway_on_bridge(&self) -> bool {
        self.is_gateway || self.is_default_gateway
    }

    /// The container's MAC: `runtimeConfig.mac`, else `args.cni.mac`, else `CNI_ARGS`'s.
    pub fn mac(&self, from_env: Option<Mac>) -> Result<Option<Mac>, CniError> {
        let runtime = self.runtime_config.as_ref().and_then(|r| r.get("mac"));
        let args = self.args.as_ref().and_then(|a| a.pointer("/cni/mac"));
        match runtime.or(args).and_then(Value::as_str) {
            Some(m) => m.parse().map(Some).map_err(|_| {
                CniError::new(Code::InvalidConfig, format!("the MAC {m:?} of the configuration is not a MAC"))
            }),
            None => Ok(from_env),
        }
    }
}

/// `{"containerID", "ifname"}` of `cni.dev/valid-attachments`.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Valid {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_plugin_keys() {
        let c: NetConf =
            r#"{"cniVersion":"1.0.0","name":"n","type":"pipework","bridge":"br7","isDefaultGateway":true,
            "mtu":1400,"hairpinMode":true,"ipam":{"type":"host-local","subnet":"10.0.0.0/24"},"unknownKey":1,
            "runtimeConfig":{"mac":"02:00:00:00:00:09"},"args":{"cni":{"mac":"02:00:00:00:00:08"}}}"#
                .parse()
                .unwrap();
        assert_eq!(
            (c.host_if(), c.mtu, c.hairpin_mode, c.gateway_on_bridge()),
            ("br7", Some(1400), true, true)
        );
        assert_eq!(c.ipam.as_ref().unwrap().kind, "host-local");
        assert_eq!(c.mac(None).unwrap().unwrap().to_string(), "02:00:00:00:00:09");
    }

    fn conf(keys: &str) -> Result<NetConf, CniError> {
        format!(r#"{{"cniVersion":"1.0.0","name":"n","type":"pipework","bridge":"br1"{keys}}}"#).parse()
    }

    #[test]
    fn vlan_keys() {
        let c = conf(r#","vlan":10"#).unwrap();
        assert_eq!((c.vlan_id(), c.port_vlans().keep_default), (Some(10), true));
        assert!(c.port_vlans().trunk.is_empty());
        // 0 is no VLAN, as in the bridge plugin.
        assert_eq!(conf(r#","vlan":0"#).unwrap().vlan_id(), None);
        assert_eq!(conf("").unwrap().vlan_id(), None);
        assert_eq!(conf(r#","vlan":4094"#).unwrap().vlan_id(), Some(4094));
        let c = conf(r#","vlan":5,"preserveDefaultVlan":false"#).unwrap();
        assert!(!c.port_vlans().keep_default);
        let c = conf(
            r#","vlanTrunk":[{"id":30},{"minID":10,"maxID":20},{"id":21},{"minID":100,"maxID":100},{"id":15}]"#,
        )
        .unwrap();
        assert_eq!(c.port_vlans().trunk.to_string(), "10-21,30,100");
        assert_eq!(c.port_vlans().trunk.ranges(), &[(10, 21), (30, 30), (100, 100)]);
        assert_eq!(c.vlan_id(), None);
        // Both forms in one element, as the bridge plugin takes them; Go's keys are
        // matched without regard to case.
        let c = conf(r#","vlanTrunk":[{"minId":1,"maxId":2,"ID":4094}]"#).unwrap();
        assert_eq!(c.trunk.to_string(), "1-2,4094");
        // An element with neither adds nothing, and so goes with `vlan`.
        let c = conf(r#","vlan":7,"vlanTrunk":[{}]"#).unwrap();
        assert_eq!((c.vlan_id(), c.trunk.is_empty()), (Some(7), true));
    }

    #[test]
    fn vlan_keys_refused_with_one_error() {
        let refused = |keys: &str| {
            let e = conf(keys).unwrap_err();
            assert_eq!(e.code, Code::InvalidConfig as u32, "{keys}: {}", e.msg);
            e.msg
        };
        assert_eq!(refused(r#","vlan":4095"#), "invalid VLAN ID 4095 (must be between 0 and 4094)");
        assert_eq!(refused(r#","vlan":-1"#), "invalid VLAN ID -1 (must be between 0 and 4094)");
        assert_eq!(refused(r#","vlan":70000"#), "invalid VLAN ID 70000 (must be between 0 and 4094)");
        for (keys, want) in [
            (r#"[{"id":0}]"#, "incorrect vlanTrunk id 0 (must be between 1 and 4094)"),
            (r#"[{"id":4095}]"#, "incorrect vlanTrunk id 4095 (must be between 1 and 4094)"),
            (r#"[{"minID":0,"maxID":5}]"#, "incorrect vlanTrunk minID 0 (must be between 1 and 4094)"),
            (r#"[{"minID":5,"maxID":4095}]"#, "incorrect vlanTrunk maxID 4095 (must be between 1 and 4094)"),
            (r#"[{"minID":20,"maxID":10}]"#, "vlanTrunk minID 20 is greater than maxID 10"),
            (r#"[{"minID":20}]"#, "vlanTrunk: minID and maxID go together, maxID is missing"),
            (r#"[{"maxID":20}]"#, "vlanTrunk: minID and maxID go together, minID is missing"),
            (r#"[{"id":10},{"id":-3}]"#, "incorrect vlanTrunk id -3 (must be between 1 and 4094)"),
        ] {
            assert_eq!(refused(&format!(r#","vlanTrunk":{keys}"#)), want);
        }
        assert_eq!(
            refused(r#","vlan":10,"vlanTrunk":[{"id":11}]"#),
            "cannot set vlan and vlanTrunk at the same time"
        );
        // Not a number or a list at all: the document does not decode.
        assert_eq!(conf(r#","vlanTrunk":5"#).unwrap_err().code, Code::Decode as u32);
    }

    #[test]
    fn refusals_and_their_codes() {
        let parse = |s: &str| s.parse::<NetConf>();
        assert_eq!(parse("{").unwrap_err().code, 6);
        assert_eq!(parse(r#"{"cniVersion":"0.2.0","name":"n","type":"pipework"}"#).unwrap_err().code, 1);
        assert_eq!(parse(r#"{"cniVersion":"1.0.0","type":"pipework"}"#).unwrap_err().code, 7);
        let c = parse(r#"{"cniVersion":"1.0.0","name":"n","type":"pipework","ipMasq":true}"#).unwrap();
        let e = c.refuse_unsupported().unwrap_err();
        assert_eq!(e.code, 2);
        assert!(e.msg.starts_with("ipMasq"), "{}", e.msg);
        let c = parse(r#"{"cniVersion":"1.0.0","name":"n","type":"pipework","ipMasq":false}"#).unwrap();
        assert!(c.refuse_unsupported().is_ok());
        assert_eq!(c.host_if(), "cni0");
    }
}
