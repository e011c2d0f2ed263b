//! The attachment an ADD amounts to (`HOSTIF NETNS IPSPEC [MAC][@VLAN] -i
//! CNI_IFNAME -l HOST_END` and the options of `"pipework"`), built as typed values
//! from the config, each checked by the same `FromStr` the command line uses: the
//! config reaches what the command line reaches, and is refused in the same words.

use std::net::IpAddr;

use anyhow::Context as _;

use crate::model::{self, addresses, Attach, HostIf, IpSpec, Mac, MacVlan};
use crate::plan::Terms;

use super::error::{CniError, Code};
use super::result::{CniResult, IpConfig};
use super::{bridge, Call};

/// The default route of `ip`'s family, with its gateway: the IPSPEC's `@GATEWAY`.
fn default_gateway(leased: &CniResult, ip: &IpConfig) -> Option<IpAddr> {
    let route =
        leased.routes.iter().find(|r| r.dst.prefix() == 0 && r.dst.is_ipv4() == ip.address.is_ipv4())?;
    route.gw.or(ip.gateway)
}

/// The attachment this ADD amounts to, and what its runtime promises. With an IPAM
/// plugin to delegate to, IPSPEC is `0/0` and the plugin's addresses come later (see
/// `Step::Delegated`); with the built-in DHCP client, `dhcp4-f`.
pub fn request(call: &Call, mac: Option<Mac>) -> Result<(Attach, Terms), CniError> {
    let invalid = |e: anyhow::Error| CniError::new(Code::InvalidConfig, format!("{e:#}"));
    let own = &call.conf.pipework;
    let dhcp = call.conf.ipam.as_ref().filter(|i| i.is_builtin());
    let (ip, more, family) =
        addresses::parse(if dhcp.is_some() { "dhcp4-f" } else { "0/0" }, None).map_err(invalid)?;
    let timeout = dhcp.and_then(|i| i.timeout);
    let dhcp_timeout = model::dhcp_timeout(timeout, std::iter::once(&ip)).map_err(invalid)?;
    // `vlan` is the command line's `@VLAN`, read by the same `FromStr`.
    let vlan = match call.conf.vlan_id() {
        Some(v) => format!("@{v}").parse::<MacVlan>().map_err(invalid)?.vlan,
        None => None,
    };
    let host_end = bridge::host_end(&call.env.container_id, &call.env.ifname);
    let req = Attach {
        host_if: call.conf.host_if().parse::<HostIf>().map_err(invalid)?,
        direct_phys: own.direct_phys,
        macvlan_mode: own.macvlan_mode.as_deref().unwrap_or("bridge").parse().map_err(invalid)?,
        container_if: Some(
            call.env
                .ifname
                .parse()
                .with_context(|| format!("bad -i '{}'", call.env.ifname))
                .map_err(invalid)?,
        ),
        local_if: Some(host_end.parse().with_context(|| format!("bad -l '{host_end}'")).map_err(invalid)?),
        family,
        guest: call.env.netns.clone(),
        ip,
        more,
        mac,
        vlan,
        port_vlans: call.conf.port_vlans(),
        dhcp_timeout,
        isolated: call.conf.port_isolation,
        host_shim: own.host_shim().map_err(invalid)?,
    };
    // DEL stops the keeper (through the record, or after the namespace went).
    let terms = Terms {
        ipam_plugin: call.ipam().map(|i| i.kind.to_string()),
        del_follows: true,
        pod: call.env.args.pod(),
    };
    Ok((req, terms))
}

/// IPAM's addresses as the elements of an IPSPEC list, checked as the command line
/// checks one (`0/0` for none).
pub fn specs(leased: &CniResult) -> Result<Vec<IpSpec>, CniError> {
    let text = ipspec(leased);
    addresses::list(&text).map_err(|e| CniError::new(Code::InvalidConfig, format!("{e:#}")))
}

/// IPAM's addresses as an IPSPEC list; `0/0` for none.
fn ipspec(leased: &CniResult) -> String {
    let mut seen = Vec::new();
    let specs: Vec<String> = leased
        .ips
        .iter()
        .map(|ip| {
            // One default route per family: on the family's first address.
            let gw = default_gateway(leased, ip).filter(|_| !seen.contains(&ip.address.is_ipv4()));
            seen.push(ip.address.is_ipv4());
            gw.map_or(ip.address.to_string(), |g| format!("{}@{g}", ip.address))
        })
        .collect();
    if specs.is_empty() {
        return "0/0".into();
    }
    specs.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni::env::{Command, Env};

    fn call(conf: &str) -> Call {
        let env = Env {
            container_id: "c1".into(),
            netns: "/run/netns/n1".into(),
            ifname: "eth0".into(),
            ..Default::default()
        };
        Call { command: Command::Add, env, conf: conf.parse().unwrap(), stdin: Vec::new() }
    }

    fn leased(doc: serde_json::Value) -> CniResult {
        CniResult::parse(&doc, "test").unwrap()
    }

    #[test]
    fn a_bridge_with_ipam_addresses_and_a_default_route() {
        let c = call(
            r#"{"cniVersion":"1.0.0","name":"n","type":"pipework","bridge":"br7","ipam":{"type":"static"}}"#,
        );
        let (a, terms) = request(&c, None).unwrap();
        assert_eq!(a.host_if, HostIf::Name("br7".parse().unwrap()));
        assert_eq!((a.guest.as_str(), a.container_if.unwrap().as_str()), ("/run/netns/n1", "eth0"));
        assert_eq!(a.local_if.unwrap().to_string(), bridge::host_end("c1", "eth0"));
        // The links alone: IPAM's addresses come while they are made.
        assert_eq!(
            (a.ip, a.more, terms.ipam_plugin.as_deref()),
            ("0/0".parse().unwrap(), vec![], Some("static"))
        );
        assert!(terms.del_follows);
        let l = leased(serde_json::json!({"ips": [{"address": "10.1.0.5/24", "gateway": "10.1.0.1"},
            {"address": "fd00::5/64", "gateway": "fd00::1"}], "routes": [{"dst": "0.0.0.0/0"}]}));
        // A gateway only where IPAM routes the family's default through it.
        let want: Vec<IpSpec> =
            ["10.1.0.5/24@10.1.0.1", "fd00::5/64"].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(specs(&l).unwrap(), want);
        assert_eq!(specs(&CniResult::default()).unwrap(), vec!["0/0".parse().unwrap()]);
    }

    #[test]
    fn ipam_addresses_no_attach_can_take_are_an_invalid_config() {
        let l = leased(serde_json::json!({"ips": [{"address": "10.1.0.5/24", "gateway": "10.1.0.1"},
            {"address": "10.1.0.5/24"}], "routes": [{"dst": "0.0.0.0/0"}]}));
        assert_eq!(specs(&l).unwrap_err().code, Code::InvalidConfig as u32);
    }

    #[test]
    fn pipework_keys_mac_vlan_and_no_address() {
        let c = call(
            r#"{"cniVersion":"1.0.0","name":"n","type":"pipework","vlan":7,
                "pipework":{"hostInterface":"eth2","macvlanMode":"private"}}"#,
        );
        let (a, _) = request(&c, Some("02:00:00:00:00:07".parse().unwrap())).unwrap();
        assert_eq!(a.host_if, HostIf::Name("eth2".parse().unwrap()));
        assert_eq!(a.macvlan_mode.to_string(), "private");
        assert_eq!(a.vlan.unwrap().as_str(), "7");
        assert_eq!(a.mac.unwrap().to_string(), "02:00:00:00:00:07");
        assert_eq!(a.ip, "0/0".parse::<IpSpec>().unwrap());
        let c =
            call(r#"{"cniVersion":"1.0.0","name":"n","type":"pipework","pipework":{"hostInterface":"-v"}}"#);
        let (a, _) = request(&c, None).unwrap();
        assert_eq!(a.host_if.to_string(), "-v", "a name, never a flag");
    }

    #[test]
    fn vlan_keys_on_a_linux_bridge_are_the_attachs_typed_vlan() {
        let c = call(r#"{"cniVersion":"1.0.0","name":"n","type":"pipework","bridge":"br1","vlan":10}"#);
        let (a, _) = request(&c, None).unwrap();
        // The same `@VLAN` value the command line's `br1 GUEST IP @10` gives.
        let cli = "@10".parse::<MacVlan>().unwrap().vlan;
        assert_eq!((a.vlan, a.port_vlans.keep_default), (cli, true));
        let c = call(
            r#"{"cniVersion":"1.0.0","name":"n","type":"pipework","bridge":"br1","vlan":0,
                "vlanTrunk":[{"minID":100,"maxID":102},{"id":7}],"preserveDefaultVlan":false}"#,
        );
        let (a, _) = request(&c, None).unwrap();
        assert_eq!(a.vlan, None, "vlan 0 is none");
        assert_eq!((a.port_vlans.trunk.to_string(), a.port_vlans.keep_default), ("7,100-102".into(), false));
    }

    #[test]
    fn builtin_dhcp_is_dhcp4_f_with_its_timeout() {
        let c = call(
            r#"{"cniVersion":"1.0.0","name":"n","type":"pipework","ipam":{"type":"pipework-dhcp4","timeout":9}}"#,
        );
        let (a, _) = request(&c, None).unwrap();
        assert!(matches!(a.ip, IpSpec::Dhcp { foreground: true, .. }), "{:?}", a.ip);
        assert_eq!(a.dhcp_timeout, Some(std::time::Duration::from_secs(9)));
    }

    #[test]
    fn port_isolation_and_host_shim_keys() {
        let c = call(r#"{"cniVersion":"1.0.0","name":"n","type":"pipework","portIsolation":true}"#);
        let (a, _) = request(&c, None).unwrap();
        assert!(a.isolated && a.host_shim.is_none());
        let c = call(
            r#"{"cniVersion":"1.0.0","name":"n","type":"pipework",
                "pipework":{"hostInterface":"eth2","hostShim":true,"hostShimAddr":"10.0.0.9/24"}}"#,
        );
        let (a, _) = request(&c, None).unwrap();
        let shim = a.host_shim.unwrap();
        assert_eq!((shim.name, shim.addr), (None, Some("10.0.0.9/24".parse().unwrap())));
        let c = call(
            r#"{"cniVersion":"1.0.0","name":"n","type":"pipework","pipework":{"hostInterface":"eth2","hostShim":"hs0"}}"#,
        );
        assert_eq!(request(&c, None).unwrap().0.host_shim.unwrap().name.unwrap().as_str(), "hs0");
        let c = call(
            r#"{"cniVersion":"1.0.0","name":"n","type":"pipework","pipework":{"hostInterface":"eth2","hostShim":false}}"#,
        );
        assert!(request(&c, None).unwrap().0.host_shim.is_none());
    }
}
