//! `pipework check GUEST [-i CONTAINER_IF]`: is the attachment as the attach made it?
//! From the kernel: its mark, the host end up and on its bridge (or Open vSwitch
//! port), CONTAINER_IF up. From its record (`crate::record`), when there is one: the
//! addresses and default routes the attach made. Exit 0, or exit 1 with one line per
//! difference.

use std::net::IpAddr;

use anyhow::{Context as _, Result};
use ipnetwork::IpNetwork;
use serde_json::json;

use crate::attach;
use crate::model::Family;
use crate::model::{Check, RunOpts};
use crate::netlink::{Link, Netlink};
use crate::plan::alias::{Alias, Kind};
use crate::plan::remove::{mark, nic_of, Marked};
use crate::record::{self, is_link_local, Record};
use crate::report::{self, Outcome};

/// What `check` found.
struct Verdict {
    alias: Option<Alias>,
    host_end: Option<String>,
    differences: Vec<String>,
    /// What could not be compared, and why.
    not_compared: Vec<String>,
}

pub async fn run(req: &Check, opts: &RunOpts) -> Outcome {
    let outcome = match check(req).await {
        Ok(v) => outcome(req, opts, v),
        Err(e) => Outcome::failed(e),
    };
    if opts.json {
        report::json(outcome)
    } else {
        outcome
    }
}

fn outcome(req: &Check, opts: &RunOpts, v: Verdict) -> Outcome {
    let ok = v.differences.is_empty();
    let code = if ok { 0 } else { 1 };
    let cif = req.container_if.as_str();
    if opts.json {
        let a = v.alias.as_ref();
        let doc = json!({
            "ok": ok,
            "guest": req.guest,
            "container_if": cif,
            "host_if": a.map(|a| a.host_if.clone()),
            "kind": a.map(|a| a.kind.as_str()),
            "host_end": v.host_end,
            "differences": v.differences,
            "not_compared": v.not_compared,
        });
        return Outcome::Json { doc, notes: Vec::new(), code };
    }
    let mut lines: Vec<String> =
        v.differences.iter().map(|d| format!("{cif} in {}: {d}", req.guest)).collect();
    lines.extend(v.not_compared);
    if ok {
        let on = v.alias.map(|a| a.host_if).unwrap_or_default();
        lines.insert(0, format!("{cif} in {} is as attached to {on}", req.guest));
        return Outcome::Done(lines);
    }
    Outcome::Exit { code, lines }
}

async fn check(req: &Check) -> Result<Verdict> {
    let host = Netlink::current()?;
    let guest = attach::resolve(&req.guest).await.and_then(attach::not_the_host)?;
    let nl_guest = Netlink::in_netns(guest.netns())?;
    let id = attach::guest_id(&guest);
    let cif = req.container_if.as_str();
    let mut v = Verdict { alias: None, host_end: None, differences: Vec::new(), not_compared: Vec::new() };
    let Some(link) = nl_guest.link_by_name(cif).await.context("cannot read the guest's interfaces")? else {
        v.differences.push("not there".to_string());
        return Ok(v);
    };
    let end = match link.peer.filter(|_| link.is_veth()) {
        Some(peer) => host.link_by_index(peer).await.context("cannot read the host end")?,
        None => None,
    };
    let rec = record::load(id.ns_inode, cif)?;
    let nic = rec.as_ref().and_then(|r| r.nic.as_ref());
    let marked = match nic_of(cif, &id, &link, nic) {
        Some(a) => Ok(Marked::Guest(a)),
        None => mark(cif, &id, &link, end.as_ref()),
    };
    let alias = match marked {
        Ok(Marked::Guest(a)) => a,
        Ok(Marked::HostEnd(a, end)) => {
            v.host_end = Some(end.name.clone());
            host_end_differences(&host, &a, &end, &mut v.differences).await?;
            a
        }
        Err(e) => {
            let text = e.to_string();
            let text = text.trim_end_matches("; not deleting it");
            v.differences.push(
                text.strip_prefix(&format!("{cif} in {}", id.name))
                    .unwrap_or(text)
                    .trim_start_matches([':', ' '])
                    .to_string(),
            );
            return Ok(v);
        }
    };
    if !link.up {
        v.differences.push(format!("{cif} is down"));
    }
    let path = record::path(id.ns_inode, cif);
    match rec {
        Some(r) => {
            let addresses = nl_guest.addresses(link.index).await?;
            let mut gateways = Vec::new();
            for family in [Family::V4, Family::V6] {
                let routes = nl_guest.routes(family).await?;
                let via = routes.iter().filter(|r| r.is_default() && r.oif == Some(link.index));
                gateways.extend(via.filter_map(|r| r.gateway));
            }
            v.differences.extend(compare(&r, cif, &addresses, &gateways));
        }
        None => v.not_compared.push(format!(
            "no record of the attach ({}): its addresses and default route cannot be compared",
            path.display()
        )),
    }
    v.alias = Some(alias);
    Ok(v)
}

/// The veth's host end: up, and a port of its bridge (or of its Open vSwitch bridge).
async fn host_end_differences(host: &Netlink, a: &Alias, end: &Link, out: &mut Vec<String>) -> Result<()> {
    let (name, bridge) = (&end.name, &a.host_if);
    if !end.up {
        out.push(format!("host end {name} is down"));
    }
    if a.kind == Kind::Ovs {
        if !crate::ovs::bridge_exists(bridge).await? {
            out.push(format!("Open vSwitch bridge {bridge} is gone"));
        } else if !crate::ovs::ports(bridge).await?.iter().any(|p| p == name) {
            out.push(format!("host end {name} is not a port of Open vSwitch bridge {bridge}"));
        }
        return Ok(());
    }
    match host.link_by_name(bridge).await?.filter(|l| l.is_bridge()) {
        None => out.push(format!("bridge {bridge} is gone")),
        Some(b) if end.master != Some(b.index) => {
            out.push(format!("host end {name} is not a port of bridge {bridge}"))
        }
        Some(_) => {}
    }
    Ok(())
}

/// CONTAINER_IF's addresses and default-route gateways against the record's.
fn compare(r: &Record, cif: &str, addresses: &[IpNetwork], gateways: &[IpAddr]) -> Vec<String> {
    let mut out = Vec::new();
    for a in &r.addresses {
        if !addresses.contains(a) {
            out.push(format!("address {a} is gone"));
        }
    }
    for a in addresses.iter().filter(|a| !is_link_local(a) && !r.addresses.contains(a)) {
        out.push(format!("address {a} was not made by the attach"));
    }
    for gw in &r.gateways {
        if !gateways.contains(gw) {
            out.push(format!("the default route via {gw} dev {cif} is gone"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record { ns: 7, ..crate::record::sample() }
    }

    #[test]
    fn the_same_addresses_and_gateways_are_no_difference() {
        let (a, g) =
            (["10.0.0.2/24".parse().unwrap(), "fe80::1/64".parse().unwrap()], ["10.0.0.1".parse().unwrap()]);
        assert_eq!(compare(&record(), "eth1", &a, &g), Vec::<String>::new());
    }

    #[test]
    fn each_difference_is_one_line() {
        let a = ["10.0.0.9/24".parse().unwrap()];
        assert_eq!(
            compare(&record(), "eth1", &a, &[]),
            [
                "address 10.0.0.2/24 is gone",
                "address 10.0.0.9/24 was not made by the attach",
                "the default route via 10.0.0.1 dev eth1 is gone"
            ]
        );
    }
}
