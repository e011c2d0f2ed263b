//! The command line an ADD amounts to (`HOSTIF NETNS IPSPEC [MAC][@VLAN] -i
//! CNI_IFNAME -l HOST_END` and the options of `"pipework"`), parsed as the command
//! line is: the config reaches what the command line reaches, chosen the same way.

use std::net::IpAddr;

use crate::cli::{self, Attach, Invocation, IpSpec};
use crate::types::Mac;

use super::error::{CniError, Code};
use super::result::{CniResult, IpConfig};
use super::{bridge, Call};

/// The default route of `ip`'s family, with its gateway: the IPSPEC's `@GATEWAY`.
fn default_gateway(leased: &CniResult, ip: &IpConfig) -> Option<IpAddr> {
    let route =
        leased.routes.iter().find(|r| r.dst.prefix() == 0 && r.dst.is_ipv4() == ip.address.is_ipv4())?;
    route.gw.or(ip.gateway)
}

/// The command line this ADD amounts to, parsed as the command line is. With an IPAM
/// plugin to delegate to, IPSPEC is `0/0` and the plugin's addresses come later (see
/// `Step::Delegated`); with the built-in DHCP client, `dhcp4-f`.
pub fn request(call: &Call, mac: Option<Mac>) -> Result<Attach, CniError> {
    let own = &call.conf.pipework;
    let mut argv: Vec<String> = vec!["--json".into(), "-i".into(), call.env.ifname.clone()];
    argv.extend(["-l".into(), bridge::host_end(&call.env.container_id, &call.env.ifname)]);
    if own.direct_phys {
        argv.push("--direct-phys".into());
    }
    if let Some(mode) = &own.macvlan_mode {
        argv.extend(["--macvlan-mode".into(), mode.clone()]);
    }
    let dhcp = call.conf.ipam.as_ref().filter(|i| i.is_builtin());
    if let Some(t) = dhcp.and_then(|i| i.timeout) {
        argv.extend(["--timeout".into(), t.to_string()]);
    }
    // The positionals after `--`: a name from the config is never read as a flag.
    argv.extend(["--".into(), call.conf.host_if().to_string(), call.env.netns.clone()]);
    argv.push(if dhcp.is_some() { "dhcp4-f".into() } else { "0/0".into() });
    let vlan = call.conf.vlan.map(|v| format!("@{v}")).unwrap_or_default();
    let macvlan = format!("{}{vlan}", mac.map(|m| m.to_string()).unwrap_or_default());
    if !macvlan.is_empty() {
        argv.push(macvlan);
    }
    match cli::parse_without_passthrough(argv) {
        // DEL stops the keeper (through the record, or after the namespace went).
        Ok(Invocation::Attach(a)) => {
            let delegated = call.ipam().map(|i| i.kind.to_string());
            Ok(Attach { keeper_until_del: true, delegated, ..a })
        }
        Ok(_) | Err(cli::CliError::Syntax) => Err(CniError::new(Code::InvalidConfig, "not an attachment")),
        Err(cli::CliError::Clap(e)) => {
            Err(CniError::new(Code::InvalidConfig, e.to_string().trim().to_string()))
        }
        Err(cli::CliError::Invalid(e)) => Err(CniError::new(Code::InvalidConfig, format!("{e:#}"))),
    }
}

/// IPAM's addresses as the elements of an IPSPEC list, checked as the command line
/// checks one (`0/0` for none).
pub fn specs(leased: &CniResult) -> Result<Vec<IpSpec>, CniError> {
    let text = ipspec(leased);
    cli::ipspec_list(&text).map_err(|e| CniError::new(Code::InvalidConfig, format!("{e:#}")))
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
    use crate::cli::{HostIf, IpSpec};
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
        let a = request(&c, None).unwrap();
        assert_eq!(a.host_if, HostIf::Name("br7".parse().unwrap()));
        assert_eq!((a.guest.as_str(), a.container_if.unwrap().as_str()), ("/run/netns/n1", "eth0"));
        assert_eq!(a.local_if.unwrap().to_string(), bridge::host_end("c1", "eth0"));
        // The links alone: IPAM's addresses come while they are made.
        assert_eq!((a.ip, a.more, a.delegated.as_deref()), ("0/0".parse().unwrap(), vec![], Some("static")));
        assert!(a.json);
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
        let a = request(&c, Some("02:00:00:00:00:07".parse().unwrap())).unwrap();
        assert_eq!(a.host_if, HostIf::Name("eth2".parse().unwrap()));
        assert_eq!(a.macvlan_mode.to_string(), "private");
        assert_eq!(a.vlan.unwrap().as_str(), "7");
        assert_eq!(a.mac.unwrap().to_string(), "02:00:00:00:00:07");
        assert_eq!(a.ip, "0/0".parse::<IpSpec>().unwrap());
        let c =
            call(r#"{"cniVersion":"1.0.0","name":"n","type":"pipework","pipework":{"hostInterface":"-v"}}"#);
        let a = request(&c, None).unwrap();
        assert_eq!((a.host_if.to_string().as_str(), a.verbose), ("-v", false), "a name, never a flag");
    }

    #[test]
    fn builtin_dhcp_is_dhcp4_f_with_its_timeout() {
        let c = call(
            r#"{"cniVersion":"1.0.0","name":"n","type":"pipework","ipam":{"type":"pipework-dhcp4","timeout":9}}"#,
        );
        let a = request(&c, None).unwrap();
        assert!(matches!(a.ip, IpSpec::Dhcp { foreground: true, .. }), "{:?}", a.ip);
        assert_eq!(a.dhcp_timeout, Some(std::time::Duration::from_secs(9)));
    }
}
