//! ADD: IPAM started in the background (see [`leasing`](super::leasing)), the
//! attachment made meanwhile by `attach::attach` with the request the config
//! amounts to, IPAM's addresses put on when they come; then the bridge
//! plugin's extras (`mtu`, `hairpinMode`, `promiscMode`, IPAM's other routes, the
//! gateway address on the bridge), then the result. IPAM's DEL if anything fails
//! after its ADD did.

use serde_json::Value;

use crate::attach::{self, Attached, Attachment};
use crate::guest::Guest;
use crate::model::RunOpts;
use crate::netlink::{Link, Netlink, Route};
use crate::plan::Mode;
use crate::report::{Failed, Said, Verb};

use super::error::{CniError, Code};
use super::leasing::{Leased, Leasing};
use super::result::{CniResult, IpConfig};
use super::{bridge, del, netns, request, state, Call};

pub async fn run(call: &Call) -> Result<Value, CniError> {
    // A runtime that gives up on an ADD (its timeout) sends SIGTERM: the ADD is then
    // undone as any failure is, IPAM's lease given back, and said as an error.
    crate::interrupt::install().map_err(|e| CniError::internal(&e.context("cannot catch signals")))?;
    call.conf.refuse_unsupported()?;
    let mac = call.conf.mac(call.env.args.mac)?;
    let guest = netns::open(&call.env.netns)?;
    let nl_guest = Netlink::in_netns(guest.netns()).map_err(|e| CniError::internal(&e))?;
    if nl_guest.link_by_name(&call.env.ifname).await.map_err(|e| CniError::internal(&e))?.is_some() {
        let msg = format!("interface {} already exists in {}", call.env.ifname, call.env.netns);
        return Err(CniError::new(Code::Internal, msg));
    }
    let host = Netlink::current().map_err(|e| CniError::internal(&e))?;
    refuse_misplaced_shim(call, &host, mac).await?;
    // From here on the plugin runs, and is waited for whatever comes.
    let (leasing, answer) = match call.ipam() {
        Some(_) => Leasing::start(call).map(|(l, d)| (Some(l), Some(d)))?,
        None => (None, None),
    };
    let ns_inode = guest.ns_inode;
    let linked = link(call, &host, mac, (guest, nl_guest.clone()), answer).await;
    let leased = leasing.map(Leasing::join);
    let finished = match (linked, leased) {
        (Err(e), None) => return Err(e),
        // IPAM's own failure first (the attach, which awaited it, failed on it).
        (Err(_), Some(Leased { result: Err(e), .. })) => return Err(e),
        (Err(e), Some(Leased { result: Ok(_), refused })) => Err(refused.unwrap_or(e)),
        (Ok(linked), Some(Leased { result: Err(e), .. })) => {
            return Err(undo(call, &host, linked.made_bridge, e).await)
        }
        (Ok(linked), Some(Leased { result: Ok(mut leased), .. })) => {
            linked.finish(call, ns_inode, &nl_guest, &host, &mut leased).await
        }
        (Ok(linked), None) => {
            linked.finish(call, ns_inode, &nl_guest, &host, &mut CniResult::default()).await
        }
    };
    match finished {
        Ok(result) => Ok(result.to_json(call.conf.version())),
        // IPAM's ADD succeeded: its DEL gives the address back.
        Err(e) => Err(match call.ipam().map(|i| i.call(super::env::Command::Del)) {
            Some(Err(undo)) => e.and_then_failed(&undo),
            _ => e,
        }),
    }
}

/// `hostShim` on a bridge, Open vSwitch or `directPhys` config, `vlanTrunk` on
/// anything but a Linux bridge, and `isGateway` with `vlan` on a Linux bridge (the
/// bridge plugin's gateway is then a `BRIDGE.VLAN` port of its own, which pipework
/// does not make): refused before IPAM runs and a bridge is made, in the command
/// line's words (`--host-shim`).
async fn refuse_misplaced_shim(
    call: &Call,
    host: &Netlink,
    mac: Option<crate::model::Mac>,
) -> Result<(), CniError> {
    let (req, _) = request::request(call, mac)?;
    let vlan_gateway = req.vlan.is_some() && call.conf.gateway_on_bridge();
    if req.host_shim.is_none() && req.port_vlans.trunk.is_empty() && !vlan_gateway {
        return Ok(());
    }
    let invalid = |e: anyhow::Error| CniError::new(Code::InvalidConfig, format!("{e:#}"));
    let facts = crate::facts::host_kind(host, &req).await.map_err(|e| CniError::internal(&e))?;
    let mode = match (&facts.host_if, req.direct_phys) {
        // A bridge the ADD would make (see `bridge::ensure`).
        (None, false) if call.conf.host_if().starts_with("ovs") => Mode::Ovs,
        (None, false) => Mode::Bridge { create: true },
        _ => match crate::plan::Class::of(&req, &facts).map_err(invalid)?.mode {
            Some(mode) => mode,
            None => return Ok(()),
        },
    };
    if vlan_gateway && matches!(mode, Mode::Bridge { .. }) {
        let msg = "isGateway (or isDefaultGateway) with vlan on a Linux bridge is not supported: \
                   the gateway address on the bridge is in VLAN 1, not in the port's";
        return Err(CniError::new(Code::UnsupportedField, msg));
    }
    crate::plan::refuse_misplaced_flags(&req, mode).map_err(invalid)
}

/// The attachment made, with IPAM's addresses on it.
struct Linked {
    /// The attachment as the attach read it back.
    attached: Attached,
    /// The index of a bridge this ADD made.
    made_bridge: Option<u32>,
}

/// The bridge when missing, then the attach in the guest opened already (which
/// awaits IPAM's addresses, if any); on failure nothing of either is left.
async fn link(
    call: &Call,
    host: &Netlink,
    mac: Option<crate::model::Mac>,
    guest: (Guest, Netlink),
    answer: Option<crate::apply::Delegated>,
) -> Result<Linked, CniError> {
    let (req, terms) = request::request(call, mac)?;
    let made_bridge = bridge::ensure(host, &call.conf).await?;
    let owner = Some(crate::intent::cni_owner(&call.conf.name, &call.env.container_id, &call.env.ifname));
    let cni = Some(crate::record::CniOwner {
        network: call.conf.name.clone(),
        container_id: call.env.container_id.clone(),
        pod: call.env.args.pod(),
    });
    let given = attach::Given { guest: Some(guest), terms, answer, owner, cni };
    let opts = RunOpts { json: true, ..RunOpts::default() };
    match attached(attach::attach(&req, &opts, host, given).await) {
        Ok(attached) => Ok(Linked { attached, made_bridge }),
        // An attach that failed after its changes stood (its result could not be
        // read back) leaves them, as the command line does; an ADD is all or nothing.
        Err(e) => Err(undo(call, host, made_bridge, e).await),
    }
}

/// `e`, after removing whatever of the attachment there is (and the bridge this
/// ADD made).
async fn undo(call: &Call, host: &Netlink, made_bridge: Option<u32>, e: CniError) -> CniError {
    let e = match del::detach(call).await {
        Err(undo) => e.and_then_failed(&undo),
        Ok(()) => e,
    };
    bridge::undo(host, made_bridge, e).await
}

impl Linked {
    /// The rest of the ADD, and its result; on failure nothing of the attachment
    /// is left.
    async fn finish(
        self,
        call: &Call,
        ns_inode: u64,
        nl_guest: &Netlink,
        host: &Netlink,
        leased: &mut CniResult,
    ) -> Result<CniResult, CniError> {
        let finished = async {
            let mut result = result_of(call, &self.attached, leased);
            if result.interfaces.len() == 3 {
                result.interfaces[0].mac =
                    link_named(host, &result.interfaces[0].name).await?.mac.map(|m| m.to_string());
            }
            tune(call, host, nl_guest, &result).await?;
            bridge::gateway_addresses(host, &call.conf, leased).await?;
            save(call, ns_inode, &result)?;
            after(call.conf.prev_result.as_ref(), result)
        };
        match finished.await {
            Ok(result) => Ok(result),
            Err(e) => Err(undo(call, host, self.made_bridge, e).await),
        }
    }
}

/// What the attach made, or its failure (and any undo that failed too).
fn attached(verb: Verb<Attachment>) -> Result<Attached, CniError> {
    match verb {
        Ok(Said { value: Attachment::Done(Some(attached)), .. }) => Ok(attached),
        Ok(_) => Err(CniError::new(Code::Internal, "the attach gave no result")),
        Err(Failed { error, rollback_errors, .. }) if rollback_errors.is_empty() => {
            Err(CniError::internal(&error))
        }
        Err(Failed { error, rollback_errors, .. }) => Err(CniError::internal(&error)
            .with_details(format!("undoing it failed too: {}", rollback_errors.join("; ")))),
    }
}

/// The result: the bridge (for the veth modes), then the interfaces the attach
/// reports; IPAM's addresses on the container's interface; its routes; `dns` from
/// the config if it has any, else from IPAM.
fn result_of(call: &Call, attached: &Attached, leased: &CniResult) -> CniResult {
    let mut result = CniResult::from(attached);
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
    // The built-in client's lease says its DNS, for the runtime to apply (the
    // network config's own `dns` still wins, as it does over another IPAM's).
    let from_lease = || attached.dns.as_ref().map(|d| serde_json::to_value(d).expect("serializes"));
    let ipam_dns = match builtin {
        true => from_lease().unwrap_or_default(),
        false => leased.dns.clone(),
    };
    let dns = call.conf.dns.clone().filter(|d| d.as_object().is_some_and(|m| !m.is_empty()));
    result.dns = dns.unwrap_or(ipam_dns);
    result
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
    let conf = &call.conf;
    // The built-in DHCP client's routes (its lease's classless ones) are in place already.
    let builtin = conf.ipam.as_ref().is_some_and(|i| i.is_builtin());
    let routes: Vec<_> = result.routes.iter().filter(|r| r.dst.prefix() != 0 && !builtin).collect();
    // Nothing to tune (the common case): no lookups either.
    if conf.mtu.is_none() && !conf.hairpin_mode && routes.is_empty() {
        return Ok(());
    }
    let cif = link_named(nl_guest, &call.env.ifname).await?;
    let host_end = match result.interfaces.len() {
        3 => Some(link_named(host, &result.interfaces[1].name).await?),
        _ => None,
    };
    if let Some(mtu) = conf.mtu {
        for (nl, l) in [(nl_guest, Some(&cif)), (host, host_end.as_ref())] {
            if let Some(l) = l.filter(|l| l.mtu != mtu) {
                nl.set_mtu(l.index, mtu)
                    .await
                    .map_err(|e| fail(e.context(format!("cannot set the MTU of {}", l.name))))?;
            }
        }
    }
    if let (true, Some(end)) = (conf.hairpin_mode, &host_end) {
        host.set_hairpin(end.index, true)
            .await
            .map_err(|e| fail(e.context("cannot turn hairpin mode on")))?;
    }
    for r in routes {
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

pub async fn link_named(nl: &Netlink, name: &str) -> Result<Link, CniError> {
    match nl.link_by_name(name).await {
        Ok(Some(l)) => Ok(l),
        Ok(None) => Err(CniError::new(Code::Internal, format!("{name} is gone"))),
        Err(e) => Err(CniError::internal(&e)),
    }
}

fn save(call: &Call, ns_inode: u64, result: &CniResult) -> Result<(), CniError> {
    let a = state::Attachment {
        container_id: call.env.container_id.clone(),
        ifname: call.env.ifname.clone(),
        netns: call.env.netns.clone(),
        ns: ns_inode,
        host_if: call.conf.host_if().to_string(),
        host_end: (result.interfaces.len() == 3).then(|| result.interfaces[1].name.clone()),
        result: result.to_json(super::version::Version::V1_1_0),
    };
    state::save(&call.conf.name, &a).map_err(|e| CniError::new(Code::Io, format!("{e:#}")))
}
