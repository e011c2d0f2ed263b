//! The network configuration on stdin: the reference `bridge` plugin's keys, so
//! that `"type": "bridge"` can become `"type": "pipework"` with the rest kept, and
//! pipework's own under `"pipework"`. Keys we do not know are ignored, as the spec
//! asks; keys that need what pipework does not do are refused (code 2).

use std::str::FromStr;

use serde::Deserialize;
use serde_json::Value;

use crate::model::Mac;

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
    pub vlan: Option<u16>,
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
