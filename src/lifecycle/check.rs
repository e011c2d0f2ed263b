//! `pipework check GUEST [-i CONTAINER_IF]`: is the attachment as the attach made it?
//! From the kernel: its mark, the host end up and on its bridge (or Open vSwitch
//! port), CONTAINER_IF up. From its record (`crate::record`), when there is one: the
//! addresses and default routes the attach made. Exit 0, or exit 1 with one line per
//! difference.

use std::net::IpAddr;

use anyhow::{Context as _, Result};
use ipnetwork::IpNetwork;

use crate::guest;
use crate::model::{Check, Family};
use crate::netlink::{Link, Netlink};
use crate::plan::alias::{Alias, Kind};
use crate::plan::remove::{mark, nic_of, Marked};
use crate::plan::{GuestId, Leased};
use crate::record::{self, is_link_local, Record};
use crate::report::{Said, Verb};

/// What `check` found.
#[derive(Debug)]
pub struct CheckReport {
    /// The guest as it was named.
    pub guest: String,
    pub container_if: String,
    /// The attachment's mark, when it was found.
    pub alias: Option<Alias>,
    pub host_end: Option<String>,
    /// One line each: where the attachment is not as the attach made it.
    pub differences: Vec<String>,
    /// What could not be compared, and why.
    pub not_compared: Vec<String>,
}

impl CheckReport {
    /// As attached.
    pub fn ok(&self) -> bool {
        self.differences.is_empty()
    }
}

/// The verb: the attachment against its mark and record.
pub async fn check(req: &Check) -> Verb<CheckReport> {
    Ok(Said::new(report(req).await?, Vec::new()))
}

async fn report(req: &Check) -> Result<CheckReport> {
    let host = Netlink::current()?;
    let guest = guest::lookup(&req.guest).await.and_then(guest::not_the_host)?;
    let nl_guest = Netlink::in_netns(guest.netns())?;
    let id = GuestId::of(&guest);
    let cif = req.container_if.as_str();
    let mut v = CheckReport {
        guest: req.guest.clone(),
        container_if: cif.to_string(),
        alias: None,
        host_end: None,
        differences: Vec::new(),
        not_compared: Vec::new(),
    };
    if let Some(intent) = crate::intent::load(id.ns_inode, cif)?.filter(|i| !i.completed()) {
        v.differences.push(match intent.run.is_alive() {
            true => format!("{} is under way", intent.describe()),
            false => format!("{} was cut short: run it again, or del", intent.describe()),
        });
        return Ok(v);
    }
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
            if let Some(r) = &rec {
                v.differences.extend(isolation_difference(r, &end));
            }
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
            let (now, moved) = as_kept_now(&r);
            v.differences.extend(moved);
            v.differences.extend(compare(&now, cif, &addresses, &gateways));
            if let Some(shim) = &r.shim {
                v.differences.extend(shim_differences(&host, shim).await?);
            }
            // A `-f` form's client that is gone (killed, OOM): nobody renews the lease.
            // A keeper that left the lease it held is brought back by a re-run.
            for kept in r.dhcp.iter().filter(|k| k.is_running() == Some(false)) {
                let then = match kept.held_lease() {
                    Some(_) => "run the attach again to start a new one from it, or del",
                    None => "del, then attach again",
                };
                v.differences.push(format!(
                    "{}:stopped ({} is gone: nobody renews the lease: {then})",
                    kept.client,
                    kept.describe()
                ));
            }
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

/// `--host-shim`: the shim is there, and the guest's host routes through it.
async fn shim_differences(host: &Netlink, shim: &record::RecordedShim) -> Result<Vec<String>> {
    let Some(link) = host.link_by_name(&shim.name).await? else {
        return Ok(vec![format!("host shim {} is gone", shim.name)]);
    };
    let routes = crate::apply::shim::guest_routes(host, link.index).await?;
    let missing = shim.routes.iter().filter(|dst| !routes.iter().any(|r| r.dst == **dst));
    Ok(missing.map(|dst| format!("the host route to {} via {} is gone", dst.ip(), shim.name)).collect())
}

/// `--isolated` as the record has it against the port (`bridge -d link` shows it).
fn isolation_difference(r: &Record, end: &Link) -> Option<String> {
    let isolated = end.isolated.unwrap_or(false);
    match (r.isolated, isolated) {
        (true, false) => Some(format!("host end {} is no longer an isolated port", end.name)),
        (false, true) => {
            Some(format!("host end {} is an isolated port, which the attach did not make", end.name))
        }
        _ => None,
    }
}

/// The record as its running keepers have moved it on: the lease a keeper holds now
/// (rebound to another address, a new one after a DHCPNAK) in place of the one the
/// attach applied; none, and one line saying so, while it discovers again.
fn as_kept_now(r: &Record) -> (Record, Vec<String>) {
    let keepers = r.dhcp.iter().filter(|k| k.is_running() == Some(true));
    let moved: Vec<_> = keepers
        .filter_map(|k| k.granted.as_ref().map(|granted| (k, granted, k.held_lease().map(|h| h.lease))))
        .collect();
    let mut lines = Vec::new();
    for (k, _, _) in moved.iter().filter(|(_, _, now)| now.is_none()) {
        let state = k.keeper_state().unwrap_or_else(|| "discovering".to_string());
        lines.push(format!("{}:{state}: {} holds no lease now", k.client, k.describe()));
    }
    let swaps = moved.iter().map(|(_, granted, now)| ((*granted).clone(), now.clone()));
    (moved_on(r, swaps), lines)
}

/// `r` with each granted lease's address and router replaced by those of the lease
/// held now (removed when none is).
fn moved_on(r: &Record, swaps: impl Iterator<Item = (Leased, Option<Leased>)>) -> Record {
    let router = |l: &Leased| match l {
        Leased::V4(l) => l.router.map(IpAddr::V4),
        Leased::V6(_) => None,
    };
    let mut out = r.clone();
    for (granted, now) in swaps {
        if now.as_ref() == Some(&granted) {
            continue;
        }
        out.addresses.retain(|a| *a != granted.addr());
        out.gateways.retain(|g| Some(*g) != router(&granted));
        if let Some(now) = &now {
            out.addresses.push(now.addr());
            out.gateways.extend(router(now));
        }
    }
    out
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

    /// A keeper's lease moved on: the record's address and router of the lease the
    /// attach applied give way to the held one's; none while it discovers again.
    #[test]
    fn a_keepers_lease_held_now_takes_the_granted_ones_place() {
        let granted = crate::dhcp::tests::lease();
        let r = Record {
            addresses: vec![granted.addr.into()],
            gateways: vec!["10.9.0.1".parse().unwrap()],
            ..record()
        };
        let held = crate::plan::Lease { addr: "10.9.0.70/24".parse().unwrap(), ..granted.clone() };
        let (granted, held) = (Leased::V4(granted), Leased::V4(held));
        let now = moved_on(&r, [(granted.clone(), Some(held))].into_iter());
        assert_eq!(now.addresses, vec!["10.9.0.70/24".parse::<IpNetwork>().unwrap()]);
        assert_eq!(now.gateways, r.gateways);
        assert_eq!(moved_on(&r, [(granted.clone(), Some(granted.clone()))].into_iter()), r);
        let discovering = moved_on(&r, [(granted, None)].into_iter());
        assert!(discovering.addresses.is_empty() && discovering.gateways.is_empty(), "{discovering:?}");
    }

    #[test]
    fn isolation_against_the_record() {
        let port = |on| Link { name: "veth1pl42".into(), isolated: Some(on), ..Link::default() };
        let isolated = Record { isolated: true, ..record() };
        assert_eq!(isolation_difference(&isolated, &port(true)), None);
        assert_eq!(isolation_difference(&record(), &port(false)), None);
        assert_eq!(
            isolation_difference(&isolated, &port(false)).unwrap(),
            "host end veth1pl42 is no longer an isolated port"
        );
        assert!(isolation_difference(&record(), &port(true)).unwrap().contains("did not make"));
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
