//! ADD: IPAM first (its DEL again if anything after it fails), then the attachment
//! itself by `attach::run_on` with the command line the config amounts to, then the
//! bridge plugin's extras (`mtu`, `hairpinMode`, `promiscMode`, IPAM's other
//! routes, the gateway address on the bridge), then the result.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde_json::Value;

use crate::attach;
use crate::cli::{self, Attach, Invocation};
use crate::guest::Guest;
use crate::netlink::{Link, Netlink, Route};
use crate::report::Outcome;

use super::error::{CniError, Code};
use super::result::{CniResult, IpConfig, RouteEntry};
use super::{bridge, del, state, Call};

pub async fn run(call: &Call) -> Result<Value, CniError> {
    call.conf.refuse_unsupported()?;
    let mac = call.conf.mac(call.env.args.mac)?;
    let guest = open_guest(&call.env.netns)?;
    let nl_guest = Netlink::in_netns(guest.netns()).map_err(|e| CniError::internal(&e))?;
    if nl_guest.link_by_name(&call.env.ifname).await.map_err(|e| CniError::internal(&e))?.is_some() {
        let msg = format!("interface {} already exists in {}", call.env.ifname, call.env.netns);
        return Err(CniError::new(Code::Internal, msg));
    }
    let mut leased = match call.ipam() {
        Some(ipam) => ipam.add()?,
        None => CniResult::default(),
    };
    let attached = attach_all(call, &guest, &nl_guest, mac, &mut leased).await;
    match attached {
        Ok(result) => Ok(result.to_json(call.conf.version())),
        Err(e) => Err(match call.ipam().map(|i| i.call(super::env::Command::Del)) {
            Some(Err(undo)) => e.and_then_failed(&undo),
            _ => e,
        }),
    }
}

/// The netns the runtime made: a path we can open that is not our own namespace.
pub fn open_guest(netns: &str) -> Result<Guest, CniError> {
    let bad =
        |e: anyhow::Error| CniError::new(Code::InvalidEnvironment, format!("bad CNI_NETNS {netns:?}: {e:#}"));
    if !crate::guest::is_netns_path(netns) {
        return Err(bad(anyhow::anyhow!("not an absolute path to a network namespace")));
    }
    crate::guest::resolve(netns).and_then(attach::not_the_host).map_err(bad)
}

/// Everything after IPAM: on failure nothing of it is left.
async fn attach_all(
    call: &Call,
    guest: &Guest,
    nl_guest: &Netlink,
    mac: Option<crate::types::Mac>,
    leased: &mut CniResult,
) -> Result<CniResult, CniError> {
    let host = Netlink::current().map_err(|e| CniError::internal(&e))?;
    gateways(call, leased);
    let made_bridge = bridge::ensure(&host, &call.conf).await?;
    let req = request(call, leased, mac)?;
    let doc = match attach::run_on(&req, &host).await {
        Outcome::Json { doc, .. } => doc,
        Outcome::Failed { error, rollback_errors, .. } => {
            let mut e = CniError::internal(&error);
            if !rollback_errors.is_empty() {
                e = e.with_details(format!("undoing it failed too: {}", rollback_errors.join("; ")));
            }
            return Err(bridge::undo(&host, made_bridge, e).await);
        }
        _ => {
            return Err(bridge::undo(
                &host,
                made_bridge,
                CniError::new(Code::Internal, "attach said nothing"),
            )
            .await)
        }
    };
    let finished = async {
        let mut result = result_of(call, &doc, leased)?;
        if result.interfaces.len() == 3 {
            result.interfaces[0].mac =
                link(&host, &result.interfaces[0].name).await?.mac.map(|m| m.to_string());
        }
        tune(call, &host, nl_guest, &result).await?;
        bridge::gateway_addresses(&host, &call.conf, leased).await?;
        save(call, guest, &result)?;
        after(call.conf.prev_result.as_ref(), result)
    };
    match finished.await {
        Ok(result) => Ok(result),
        Err(e) => {
            let e = match del::detach(call).await {
                Err(undo) => e.and_then_failed(&undo),
                Ok(()) => e,
            };
            Err(bridge::undo(&host, made_bridge, e).await)
        }
    }
}

/// With a gateway on the bridge, an IP that IPAM gave none gets the subnet's first
/// address, as the bridge plugin computes it; `isDefaultGateway` routes through it.
fn gateways(call: &Call, leased: &mut CniResult) {
    if !call.conf.gateway_on_bridge() {
        return;
    }
    for ip in &mut leased.ips {
        ip.gateway = ip.gateway.or_else(|| first_address(&ip.address));
    }
    if !call.conf.is_default_gateway {
        return;
    }
    for ip in leased.ips.clone() {
        let default = if ip.address.is_ipv4() { "0.0.0.0/0" } else { "::/0" };
        let dst: IpNetwork = default.parse().expect("a network");
        if !leased.routes.iter().any(|r| r.dst == dst) {
            leased.routes.push(RouteEntry { dst, gw: ip.gateway });
        }
    }
}

fn first_address(net: &IpNetwork) -> Option<IpAddr> {
    match net {
        IpNetwork::V4(n) => Some(IpAddr::V4((u32::from(n.network()) + 1).into())),
        IpNetwork::V6(n) => Some(IpAddr::V6((u128::from(n.network()) + 1).into())),
    }
}

/// The default route of `ip`'s family, with its gateway: the IPSPEC's `@GATEWAY`.
fn default_gateway(leased: &CniResult, ip: &IpConfig) -> Option<IpAddr> {
    let route =
        leased.routes.iter().find(|r| r.dst.prefix() == 0 && r.dst.is_ipv4() == ip.address.is_ipv4())?;
    route.gw.or(ip.gateway)
}

/// The command line this ADD amounts to, parsed as the command line is.
fn request(call: &Call, leased: &CniResult, mac: Option<crate::types::Mac>) -> Result<Attach, CniError> {
    let own = &call.conf.pipework;
    let mut argv: Vec<String> = vec!["--json".into(), "-i".into(), call.env.ifname.clone()];
    argv.extend(["-l".into(), bridge::host_end(&call.env.container_id, &call.env.ifname)]);
    if own.direct_phys {
        argv.push("--direct-phys".into());
    }
    if let Some(mode) = &own.macvlan_mode {
        argv.extend(["--macvlan-mode".into(), mode.clone()]);
    }
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
    let dhcp = call.conf.ipam.as_ref().filter(|i| i.is_builtin());
    if let Some(t) = dhcp.and_then(|i| i.timeout) {
        argv.extend(["--timeout".into(), t.to_string()]);
    }
    argv.extend([call.conf.host_if().to_string(), call.env.netns.clone()]);
    argv.push(match (dhcp, specs.is_empty()) {
        (Some(_), _) => "dhcp4-f".into(),
        (None, true) => "0/0".into(),
        (None, false) => specs.join(","),
    });
    let vlan = call.conf.vlan.map(|v| format!("@{v}")).unwrap_or_default();
    let macvlan = format!("{}{vlan}", mac.map(|m| m.to_string()).unwrap_or_default());
    if !macvlan.is_empty() {
        argv.push(macvlan);
    }
    match cli::parse_without_passthrough(argv) {
        Ok(Invocation::Attach(a)) => Ok(a),
        Ok(_) | Err(cli::CliError::Syntax) => Err(CniError::new(Code::InvalidConfig, "not an attachment")),
        Err(cli::CliError::Clap(e)) => {
            Err(CniError::new(Code::InvalidConfig, e.to_string().trim().to_string()))
        }
        Err(cli::CliError::Invalid(e)) => Err(CniError::new(Code::InvalidConfig, format!("{e:#}"))),
    }
}

/// The result: the bridge (for the veth modes), then the interfaces the attach
/// reports; IPAM's addresses on the container's interface; its routes; `dns` from
/// the config if it has any, else from IPAM.
fn result_of(call: &Call, doc: &Value, leased: &CniResult) -> Result<CniResult, CniError> {
    let mut result = CniResult::parse(doc, "the attachment")?;
    if result.interfaces.len() > 1 {
        let bridge = super::result::Interface { name: call.conf.host_if().to_string(), ..Default::default() };
        result.interfaces.insert(0, bridge);
    }
    for i in &mut result.interfaces {
        if i.sandbox.is_some() {
            i.sandbox = Some(call.env.netns.clone());
        }
    }
    // Every address and route of the attach's own (the built-in DHCP client's) is on
    // the container's interface, the last one.
    let at = result.interfaces.len() - 1;
    let builtin = call.conf.ipam.as_ref().is_some_and(|i| i.is_builtin());
    let ips = if builtin { &result.ips } else { &leased.ips };
    result.ips = ips.iter().map(|ip| IpConfig { interface: Some(at), ..ip.clone() }).collect();
    if !builtin {
        result.routes = leased.routes.clone();
    }
    let dns = call.conf.dns.clone().filter(|d| d.as_object().is_some_and(|m| !m.is_empty()));
    result.dns = dns.unwrap_or_else(|| leased.dns.clone());
    Ok(result)
}

/// A chained ADD's result (`prevResult` given): what the plugins before us reported, then ours (our
/// interface indices moved past theirs); their DNS unless we have some.
fn after(prev: Option<&Value>, ours: CniResult) -> Result<CniResult, CniError> {
    let Some(prev) = prev else { return Ok(ours) };
    let mut prev = CniResult::parse(prev, "prevResult")?;
    let shift = prev.interfaces.len();
    prev.interfaces.extend(ours.interfaces);
    prev.ips
        .extend(ours.ips.into_iter().map(|ip| IpConfig { interface: ip.interface.map(|i| i + shift), ..ip }));
    prev.routes.extend(ours.routes);
    if !super::result::dns_is_empty(&ours.dns) {
        prev.dns = ours.dns;
    }
    Ok(prev)
}

/// `mtu` on both ends, `hairpinMode` on the bridge port, IPAM's other routes.
async fn tune(call: &Call, host: &Netlink, nl_guest: &Netlink, result: &CniResult) -> Result<(), CniError> {
    let fail = |e: anyhow::Error| CniError::internal(&e);
    let cif = link(nl_guest, &call.env.ifname).await?;
    let host_end = match result.interfaces.len() {
        3 => Some(link(host, &result.interfaces[1].name).await?),
        _ => None,
    };
    if let Some(mtu) = call.conf.mtu {
        for (nl, l) in [(nl_guest, Some(&cif)), (host, host_end.as_ref())] {
            if let Some(l) = l.filter(|l| l.mtu != mtu) {
                nl.set_mtu(l.index, mtu)
                    .await
                    .map_err(|e| fail(e.context(format!("cannot set the MTU of {}", l.name))))?;
            }
        }
    }
    if let (true, Some(end)) = (call.conf.hairpin_mode, &host_end) {
        host.set_hairpin(end.index, true)
            .await
            .map_err(|e| fail(e.context("cannot turn hairpin mode on")))?;
    }
    for r in result.routes.iter().filter(|r| r.dst.prefix() != 0) {
        let gw =
            r.gw.or_else(|| result.ips.iter().find(|ip| ip.address.is_ipv4() == r.dst.is_ipv4())?.gateway);
        let route = Route::new(r.dst, gw, cif.index).map_err(fail)?;
        nl_guest
            .add_route(&route, false)
            .await
            .map_err(|e| fail(e.context(format!("cannot add the route to {}", r.dst))))?;
    }
    Ok(())
}

pub async fn link(nl: &Netlink, name: &str) -> Result<Link, CniError> {
    match nl.link_by_name(name).await {
        Ok(Some(l)) => Ok(l),
        Ok(None) => Err(CniError::new(Code::Internal, format!("{name} is gone"))),
        Err(e) => Err(CniError::internal(&e)),
    }
}

fn save(call: &Call, guest: &Guest, result: &CniResult) -> Result<(), CniError> {
    let a = state::Attachment {
        container_id: call.env.container_id.clone(),
        ifname: call.env.ifname.clone(),
        netns: call.env.netns.clone(),
        ns: guest.ns_inode,
        host_if: call.conf.host_if().to_string(),
        host_end: (result.interfaces.len() == 3).then(|| result.interfaces[1].name.clone()),
        direct_phys: call.conf.pipework.direct_phys,
        result: result.to_json(super::version::Version::V1_1_0),
    };
    state::save(&call.conf.name, &a).map_err(|e| CniError::new(Code::Io, format!("{e:#}")))
}
