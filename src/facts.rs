//! Reading the facts the planner needs, before anything changes: single-link
//! lookups by name (no dump of every host interface, so the cost does not grow
//! with the number of containers), and the guest's few routes.

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

use crate::model::Family;
use crate::model::Mac;
use crate::model::IFNAME_MAX;
use crate::model::{Attach, HostIf, IpSpec};
use crate::netlink::{Link, Netlink};
use crate::ovs;
use crate::plan::alias::Alias;
use crate::plan::{Class, GuestFacts, GuestId, HeldLease, HostFacts, UplinkFacts};
use crate::record;

/// The host interface, by name, or by MAC (case does not matter; where several
/// share it, as a bridge and its first port do, the first by name wins).
pub async fn host_if(host: &Netlink, req: &Attach) -> Result<Option<Link>> {
    match &req.host_if {
        HostIf::Name(n) => host.link_by_name(n.as_str()).await,
        HostIf::Mac(mac) => Ok(first_with_mac(&host.links().await?, *mac).cloned()),
    }
}

/// Of `links`, the first by name whose MAC is `mac`.
pub fn first_with_mac(links: &[Link], mac: Mac) -> Option<&Link> {
    links.iter().filter(|l| l.mac == Some(mac)).min_by(|a, b| a.name.cmp(&b.name))
}

/// What HOSTIF is (and its `HOSTIF.VLAN`, and OVS's view of it): all that can be read
/// before the guest is known, as the original decides the kind of HOSTIF first.
pub async fn host_kind(host: &Netlink, req: &Attach) -> Result<HostFacts> {
    let host_if = host_if(host, req).await.context("cannot read the host interface")?;
    let mut facts = HostFacts { host_if, ..Default::default() };
    if let (None, Some((bridge, uplink))) = (&facts.host_if, req.host_if.uplink_form()) {
        facts.uplink = Some(uplink_facts(host, req, uplink).await?);
        facts.host_if = host.link_by_name(bridge).await.context("cannot read the bridge")?;
        ovs(req, &mut facts).await?;
        return Ok(facts);
    }
    // `HOSTIF.VLAN`, named with the VLAN as written, as the original does.
    if let (Some(vlan), Some(hif)) = (&req.vlan, &facts.host_if) {
        let name = format!("{}.{}", hif.name, vlan.as_str());
        if name.len() <= IFNAME_MAX {
            facts.vlan_if = host.link_by_name(&name).await.context("cannot read the VLAN device")?;
        }
    }
    ovs(req, &mut facts).await?;
    facts.vlan_ports = vlan_ports(host, req, facts.host_if.as_ref()).await?;
    Ok(facts)
}

/// For a VLAN asked of a Linux bridge whose filtering is off: pipework's ports of it
/// whose marks say they carry VLANs (see `HostFacts::vlan_ports`).
async fn vlan_ports(host: &Netlink, req: &Attach, bridge: Option<&Link>) -> Result<Vec<String>> {
    let asks_vlans = req.vlan.is_some() || !req.port_vlans.trunk.is_empty();
    let Some(bridge) = bridge.filter(|b| asks_vlans && b.is_bridge() && b.vlan_filtering == Some(false))
    else {
        return Ok(Vec::new());
    };
    let links = host.links().await.context("cannot read the bridge's ports")?;
    let ports = links.iter().filter(|l| l.master == Some(bridge.index));
    let marked = ports.filter_map(|l| Some((l, Alias::parse(l.alias.as_deref()?)?.ok()?)));
    Ok(marked
        .filter_map(|(l, a)| match (a.vlan, a.trunk.is_empty()) {
            (Some(vid), _) => Some(format!("{} @{vid}", l.name)),
            (None, false) => Some(format!("{} trunk={}", l.name, a.trunk)),
            (None, true) => None,
        })
        .collect())
}

/// A `BRIDGE@UPLINK`'s uplink, and with `@VLAN` its `UPLINK.VID` (named with the
/// VLAN as written, as `HOSTIF.VLAN` is).
async fn uplink_facts(host: &Netlink, req: &Attach, uplink: &str) -> Result<UplinkFacts> {
    let link = host.link_by_name(uplink).await.context("cannot read the uplink")?;
    let mut vlan_if = None;
    if let (Some(vlan), Some(l)) = (&req.vlan, &link) {
        let name = format!("{}.{}", l.name, vlan.as_str());
        if name.len() <= IFNAME_MAX {
            vlan_if = host.link_by_name(&name).await.context("cannot read the uplink's VLAN device")?;
        }
    }
    Ok(UplinkFacts { name: uplink.to_string(), link, vlan_if })
}

/// The rest, once the guest is known: the host end its name derives from (a derived
/// name too long to exist is left to the planner to refuse).
pub async fn host_end(
    host: &Netlink,
    req: &Attach,
    class: &Class,
    guest: &GuestId,
    facts: &mut HostFacts,
) -> Result<()> {
    if let Some(Ok(name)) = class.host_end(req, guest) {
        facts.local_if = host.link_by_name(&name).await.context("cannot read the host end")?;
    }
    Ok(())
}

/// Open vSwitch facts, asked of `ovs-vsctl` only where OVS can be involved: an
/// existing interface of kind `openvswitch` (kernel datapath) or `tun` (the
/// userspace datapath's internal port), or a missing `ovs*` name. Plain NICs and
/// Linux bridges never spawn it.
async fn ovs(req: &Attach, facts: &mut HostFacts) -> Result<()> {
    match &facts.host_if {
        Some(l) if matches!(l.kind.as_deref(), Some("openvswitch" | "tun")) => {
            facts.ovs_bridge = ovs::bridge_exists(&l.name).await?;
            if facts.ovs_bridge {
                facts.ovs_ports = ovs::ports(&l.name).await?;
            }
        }
        None if matches!(&req.host_if, HostIf::Name(n) if n.as_str().starts_with("ovs")) => {
            facts.ovs_installed = ovs::vsctl_path().is_some();
            facts.ovs_datapath = std::env::var("PIPEWORK_OVS_DATAPATH").ok().filter(|d| !d.is_empty());
        }
        _ => {}
    }
    Ok(())
}

/// The guest's side: CONTAINER_IF as classified, its addresses, the routes.
pub async fn guest(nl: &Netlink, req: &Attach, class: &Class, ns_inode: u64) -> Result<GuestFacts> {
    let cif = &class.container_if;
    let container_if = nl.link_by_name(cif.as_str()).await.context("cannot read the guest's interfaces")?;
    let container_addrs = match &container_if {
        Some(l) => nl.addresses(l.index).await?,
        None => Vec::new(),
    };
    // Every family an IPSPEC list names: each family's old default goes, and a re-run
    // looks for each family's gateway. Only those with a gateway or `slaac` (a lease's
    // routes are read when it comes; `0/0` has none).
    let families = req.families();
    let ipv6_off = families.contains(&Family::V6) && ipv6_off_in_kernel(probe_ipv6());
    let mut routes = Vec::new();
    if !ipv6_off {
        for family in families.into_iter().filter(|f| routed(req, *f)) {
            routes.extend(nl.routes(family).await.context("cannot read the guest's routes")?);
        }
    }
    let rerun_of_kept = req.specs().any(|s| matches!(s, IpSpec::Dhcp { foreground: true, .. }));
    let (renewing, stopped) = match &container_if {
        Some(_) if rerun_of_kept => renewing(ns_inode, cif.as_str()),
        _ => Default::default(),
    };
    Ok(GuestFacts { container_if, container_addrs, routes, ipv6_off, renewing, stopped })
}

/// The planner looks at `family`'s routes: for a static gateway of it, or `slaac`.
fn routed(req: &Attach, family: Family) -> bool {
    req.specs().any(|s| match s {
        IpSpec::Static { gateway: Some(g), .. } => Family::of(g) == family,
        IpSpec::Slaac => family == Family::V6,
        _ => false,
    })
}

/// The DHCP clients the record of the attachment under CONTAINER_IF left running
/// that still run (a helper container, which Docker would have to be asked about,
/// counts); and the built-in keepers among them that are gone, with the lease each
/// held. A record that is missing or cannot be read names none: a re-run of a `-f`
/// form is then refused, as the original refuses every re-run.
fn renewing(ns_inode: u64, cif: &str) -> (Vec<String>, Vec<(String, HeldLease)>) {
    let Ok(Some(record)) = record::load(ns_inode, cif) else {
        return Default::default();
    };
    let running = record.dhcp.iter().filter(|k| k.is_running() != Some(false)).map(|k| k.client.clone());
    let stopped = record.dhcp.iter().filter(|k| k.is_running() == Some(false));
    let held = stopped.filter_map(|k| Some((k.client.clone(), k.held_lease()?)));
    (running.collect(), held.collect())
}

/// An IPv6 socket, opened and closed at once, in whatever namespace: `ipv6.disable=1`
/// is the kernel's, for every namespace alike.
fn probe_ipv6() -> Result<(), Errno> {
    socket(AddressFamily::Inet6, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None).map(drop)
}

/// A kernel booted with `ipv6.disable=1` (or built without IPv6) registers no IPv6
/// socket family: EAFNOSUPPORT. Any other failure says nothing about IPv6; the steps
/// will tell.
fn ipv6_off_in_kernel(probe: Result<(), Errno>) -> bool {
    probe == Err(Errno::EAFNOSUPPORT)
}

/// `--host-shim`: the shim under its name, the parent's addresses, every host
/// address (for `--host-shim-addr` to be the host's alone) and the host's routes
/// to the guest's addresses. Read under the shim lock (see `apply::ShimLock`).
pub async fn shim(host: &Netlink, req: &Attach, facts: &mut HostFacts) -> Result<()> {
    use crate::plan::shim::{self, Moved, ShimFacts};
    let Some(nic) = &facts.host_if else { return Ok(()) };
    let parent = shim::parent_name(req, nic);
    let Some(name) = shim::name(req, &parent) else { return Ok(()) };
    let read = async {
        let links = host.links().await?;
        let mut out =
            ShimFacts { link: links.iter().find(|l| l.name == name).cloned(), ..Default::default() };
        for link in &links {
            for (addr, broadcast) in host.addresses_with_broadcast(link.index).await? {
                if crate::model::is_link_local(&addr) {
                    continue;
                }
                if link.name == parent {
                    out.parent_addrs.push(Moved { addr, broadcast });
                }
                if link.name == name {
                    out.addrs.push(addr);
                }
                out.host_addrs.push((link.name.clone(), addr));
            }
        }
        let wanted: Vec<_> =
            shim::guest_addresses(req).unwrap_or_default().iter().map(shim::host_route_of).collect();
        for family in [Family::V4, Family::V6] {
            let routes = host.routes(family).await?;
            out.routes.extend(routes.into_iter().filter(|r| wanted.contains(&r.dst)));
        }
        anyhow::Ok(out)
    };
    facts.shim = Some(read.await.context("cannot read the host's addresses and routes for --host-shim")?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_off_only_where_the_kernel_has_no_ipv6_family() {
        assert!(ipv6_off_in_kernel(Err(Errno::EAFNOSUPPORT)));
        assert!(!ipv6_off_in_kernel(Ok(())));
        assert!(!ipv6_off_in_kernel(Err(Errno::EMFILE)));
        // This kernel has IPv6 (the integration tests use it).
        assert!(!ipv6_off_in_kernel(probe_ipv6()));
    }
}
