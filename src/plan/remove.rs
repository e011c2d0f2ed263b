//! `pipework del`, decided purely: the guest's CONTAINER_IF and the host end its
//! veth pairs with, as read beforehand => the removals, each shown as the command
//! it equals (`--dry-run`). Only what carries pipework's mark (see [`super::alias`])
//! is ever removed.

use std::fmt;

use anyhow::{bail, Result};
use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use super::alias::{Alias, Kind};
use super::{GuestId, Side};
use crate::model::Del;
use crate::netlink::{Link, LinkConfig};

/// A `--direct-phys` NIC as it was on the host before the attach moved it in (what
/// the attach's rollback would have put back), kept in the attachment's record for
/// `del` to give it back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedNic {
    pub name: String,
    pub mac: Option<String>,
    pub alias: Option<String>,
    /// The bridge it was a port of, by name (a move drops it from any).
    pub master: Option<String>,
    pub up: bool,
    /// Its own `net.ipv6.conf.NAME.disable_ipv6` on the host.
    pub disable_ipv6: Option<String>,
    /// Its own addresses and routes there.
    pub config: LinkConfig,
    /// Its index in the guest after the attach: with its old name as its alias, what
    /// proves that CONTAINER_IF is still this NIC (an index is not reused while the
    /// namespace lives, until the counter wraps).
    pub guest_index: u32,
    /// Its link kind (`IFLA_INFO_KIND`; none for a physical NIC): a link of another
    /// kind under its index and alias is one the guest made. Missing in the records
    /// of earlier versions: a physical NIC's then.
    #[serde(default)]
    pub kind: Option<String>,
}

/// What was read before planning a `del`.
#[derive(Clone, Debug, Default)]
pub struct DelFacts {
    /// CONTAINER_IF in the guest, if there.
    pub container_if: Option<Link>,
    /// For a veth CONTAINER_IF: the host link its peer index names, if any.
    pub host_end: Option<Link>,
    /// The `--direct-phys` NIC the attachment's record saved, if any.
    pub nic: Option<SavedNic>,
    /// Why that NIC cannot go back now (its name taken on the host, its bridge gone).
    pub nic_blocked: Option<String>,
    /// For a host end without a pipework alias: the `pipework.*` external ids of its
    /// Open vSwitch Interface record (the prefix left off), if it has any. The
    /// original pipework writes these, and no alias.
    pub ovs_ids: Option<Vec<(String, String)>>,
    /// With `--prune-bridge`: the other ports of the bridge the mark names (`None`:
    /// not read, or no such bridge).
    pub bridge_ports: Option<Vec<String>>,
}

/// One removal, in the words of the command it replaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removal {
    /// `ovs-vsctl --if-exists del-port BRIDGE PORT`: before the link, so that a `del`
    /// cut short between the two leaves a link that a second `del` still finds.
    OvsDelPort { bridge: String, port: String },
    /// `ip link del NAME` (a veth's host end takes its guest end along).
    DeleteLink { side: Side, name: String, index: u32 },
    /// The bridge, when still without ports (looked at again, under the bridge lock).
    DeleteBridgeIfUnused { name: String, ovs: bool },
    /// A `--direct-phys` NIC back to the host as it was (CONTAINER_IF's index).
    GiveBack { dev: String, index: u32, nic: Box<SavedNic> },
    /// `ip link set NAME down`: a host link a run cut short had set up.
    SetDown { name: String, index: u32 },
    /// `ip route del DST dev DEV` on the host: a shimmed guest's route.
    DeleteHostRoute { dst: IpNetwork, dev: String },
    /// The shim, once no guest routes through it (looked at under the shim lock),
    /// with what its mark says moved from the parent put back; `mark`: the mark
    /// the run gave it (for a shim whose run was killed before setting it).
    RemoveShimIfUnused { name: String, mark: String },
}

impl fmt::Display for Removal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Removal::OvsDelPort { bridge, port } => {
                write!(f, "ovs-vsctl --if-exists del-port {bridge} {port}")
            }
            Removal::DeleteLink { side: Side::Host, name, .. } => write!(f, "ip link del {name}"),
            Removal::DeleteLink { side: Side::Guest, name, .. } => write!(f, "guest: ip link del {name}"),
            Removal::DeleteBridgeIfUnused { name, ovs: false } => {
                write!(f, "ip link del {name} (it has no ports)")
            }
            Removal::DeleteBridgeIfUnused { name, ovs: true } => {
                write!(f, "ovs-vsctl --if-exists del-br {name} (it has no ports)")
            }
            Removal::SetDown { name, .. } => write!(f, "ip link set {name} down"),
            Removal::DeleteHostRoute { dst, dev } => write!(f, "ip route del {dst} dev {dev}"),
            Removal::RemoveShimIfUnused { name, mark } => {
                write!(f, "ip link del {name} (when no guest routes through it)")?;
                let moved = crate::plan::shim::ShimMark::parse(mark).map(|m| (m.parent, m.moved));
                for m in moved.iter().flat_map(|(p, m)| m.iter().map(move |m| (p, m))) {
                    write!(f, "; ip addr add {} dev {}", m.1, m.0)?;
                }
                Ok(())
            }
            Removal::GiveBack { dev, nic, .. } => write!(
                f,
                "guest: ip link set {dev} netns <host> name {} (its MAC, alias, bridge, up state, addresses and \
                 routes as before the attach)",
                nic.name
            ),
        }
    }
}

/// The attachment found, as its mark describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub alias: Alias,
    /// The veth's host end (bridge and OVS modes).
    pub host_end: Option<String>,
}

/// What `del` will do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DelPlan {
    /// Nothing of that attachment is there: success, with the reason.
    Nothing(String),
    Steps {
        found: Found,
        steps: Vec<Removal>,
        notes: Vec<String>,
    },
}

/// Plan the removal of GUEST's CONTAINER_IF; an error refuses (nothing is touched).
pub fn plan_del(req: &Del, guest: &GuestId, facts: &DelFacts) -> Result<DelPlan> {
    let cif = req.container_if.as_str();
    let Some(link) = &facts.container_if else {
        return Ok(DelPlan::Nothing(format!("no {cif} in {}", guest.name)));
    };
    let by_ids = || original_ovs(cif, guest, link, facts.host_end.as_ref(), facts.ovs_ids.as_deref());
    let (alias, host_end) = match nic_of(cif, guest, link, facts.nic.as_ref()) {
        Some(alias) => (alias, None),
        None => match by_ids().map_or_else(|| mark(cif, guest, link, facts.host_end.as_ref()), Ok)? {
            Marked::Guest(alias) => (alias, None),
            Marked::HostEnd(alias, end) => (alias, Some(end)),
        },
    };
    if let Some(want) = &req.host_if {
        if want.as_str() != alias.host_if {
            let on = &alias.host_if;
            return Ok(DelPlan::Nothing(format!("{cif} in {} is attached to {on}, not {want}", guest.name)));
        }
    }
    let mut steps = Vec::new();
    match &host_end {
        Some(end) => {
            if alias.kind == Kind::Ovs {
                steps.push(Removal::OvsDelPort { bridge: alias.host_if.clone(), port: end.name.clone() });
            }
            steps.push(Removal::DeleteLink { side: Side::Host, name: end.name.clone(), index: end.index });
        }
        None if alias.kind == Kind::DirectPhys => {
            if let Some(why) = &facts.nic_blocked {
                bail!(
                    "{cif} in {} cannot go back to the host as {}: {why}; nothing removed",
                    guest.name,
                    alias.host_if
                );
            }
            let nic = Box::new(facts.nic.clone().expect("a saved NIC"));
            steps.push(Removal::GiveBack { dev: link.name.clone(), index: link.index, nic })
        }
        None => {
            steps.push(Removal::DeleteLink { side: Side::Guest, name: link.name.clone(), index: link.index })
        }
    }
    let mut notes = Vec::new();
    if req.prune_bridge && alias.kind.is_veth() {
        prune(&alias, host_end.as_ref(), facts, &mut steps, &mut notes);
    }
    let found = Found { alias, host_end: host_end.map(|l| l.name) };
    Ok(DelPlan::Steps { found, steps, notes })
}

/// CONTAINER_IF is the `--direct-phys` NIC the record saved: its index is the one
/// recorded, its alias the NIC's old name (as the attach set it), and its kind the
/// NIC's (the guest can make a link with any free index and alias, but not a NIC).
pub fn nic_of(cif: &str, guest: &GuestId, link: &Link, nic: Option<&SavedNic>) -> Option<Alias> {
    let nic = nic.filter(|n| {
        n.guest_index == link.index && link.alias.as_deref() == Some(&n.name) && link.kind == n.kind
    })?;
    Some(Alias {
        guest: guest.reference.clone(),
        ns: guest.ns_inode,
        container_if: cif.to_string(),
        host_if: nic.name.clone(),
        kind: Kind::DirectPhys,
        vlan: None,
        trunk: Default::default(),
    })
}

/// An Open vSwitch attachment the original pipework made: the veth peer of CONTAINER_IF
/// is a port whose external ids name it (`pipework.interface`) and this guest
/// (`pipework.nspid` its pid, or `pipework.containerid` its container).
fn original_ovs(
    cif: &str,
    guest: &GuestId,
    link: &Link,
    end: Option<&Link>,
    ids: Option<&[(String, String)]>,
) -> Option<Marked> {
    let end = end.filter(|h| h.is_veth() && h.peer == Some(link.index) && link.peer == Some(h.index))?;
    let id = |key: &str| ids?.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let pid = guest.pid.map(|p| p.to_string());
    let container = guest.container.as_ref().map(|(id, _)| id.as_str());
    let this_guest = (pid.is_some() && id("nspid") == pid.as_deref())
        || (container.is_some() && id("containerid") == container);
    if id("interface") != Some(end.name.as_str()) || !this_guest {
        return None;
    }
    let alias = Alias {
        guest: guest.reference.clone(),
        ns: guest.ns_inode,
        container_if: cif.to_string(),
        host_if: id("bridge")?.to_string(),
        kind: Kind::Ovs,
        vlan: id("vlan").and_then(|v| v.parse().ok()),
        trunk: Default::default(),
    };
    Some(Marked::HostEnd(alias, end.clone()))
}

pub enum Marked {
    /// The guest's own link carries the mark (macvlan, dummy, IPoIB).
    Guest(Alias),
    /// The veth's host end carries it.
    HostEnd(Alias, Link),
}

/// The mark that makes CONTAINER_IF ours (`host_end`: the host link its veth peer
/// index names), or the refusal: a link pipework did not make is never deleted.
pub fn mark(cif: &str, guest: &GuestId, link: &Link, host_end: Option<&Link>) -> Result<Marked> {
    let g = &guest.name;
    let matches = |a: &Alias| a.ns == guest.ns_inode && a.container_if == cif;
    if let Some(text) = &link.alias {
        match Alias::parse(text) {
            // A NIC is known by its record alone: this mark is the guest's own writing.
            Some(Ok(a)) if a.kind == Kind::DirectPhys => {
                bail!("{cif} in {g} carries a --direct-phys mark, which pipework never writes ({text}); not deleting it")
            }
            Some(Ok(a)) if matches(&a) && !a.kind.is_veth() => return Ok(Marked::Guest(a)),
            Some(Ok(_)) => {
                bail!("{cif} in {g} carries the mark of another attachment ({text}); not deleting it")
            }
            Some(Err(e)) => bail!("{cif} in {g}: {e}; not deleting it"),
            None if !link.is_veth() => bail!(
                "{cif} in {g} was not made by pipework (alias '{text}' is no pipework mark, nor is it a \
                 --direct-phys NIC that an attachment's record names); not deleting it"
            ),
            None => {}
        }
    }
    if !link.is_veth() {
        bail!("{cif} in {g} was not made by pipework (it has no pipework alias); not deleting it");
    }
    let end = host_end.filter(|h| h.is_veth() && h.peer == Some(link.index) && link.peer == Some(h.index));
    let Some(end) = end else {
        bail!("{cif} in {g} was not made by pipework (its veth peer is not on this host); not deleting it");
    };
    match end.alias.as_deref().map(Alias::parse) {
        Some(Some(Ok(a))) if matches(&a) && a.kind.is_veth() => Ok(Marked::HostEnd(a, end.clone())),
        Some(Some(Err(e))) => bail!("{cif} in {g}: host end {}: {e}; not deleting it", end.name),
        _ => bail!(
            "{cif} in {g} was not made by pipework (its host end {} has no pipework alias for it); not deleting it",
            end.name
        ),
    }
}

/// `--prune-bridge`: the bridge goes too when our port was its last.
fn prune(
    alias: &Alias,
    end: Option<&Link>,
    facts: &DelFacts,
    steps: &mut Vec<Removal>,
    notes: &mut Vec<String>,
) {
    let ours = end.map(|l| l.name.as_str());
    let others: Vec<&String> =
        facts.bridge_ports.iter().flatten().filter(|p| Some(p.as_str()) != ours).collect();
    let bridge = &alias.host_if;
    match (&facts.bridge_ports, others.is_empty()) {
        (None, _) => notes.push(format!("bridge {bridge} not found: nothing to prune")),
        (Some(_), true) => {
            steps.push(Removal::DeleteBridgeIfUnused { name: bridge.clone(), ovs: alias.kind == Kind::Ovs })
        }
        (Some(_), false) => notes.push(format!("bridge {bridge} kept: it has other ports")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::alias::GuestRef;
    use super::*;
    use crate::cli::{parse, Invocation};

    fn del(line: &str) -> Del {
        match parse(line.split_whitespace()) {
            Ok(Invocation::Del(d, _)) => d,
            other => panic!("{other:?}"),
        }
    }

    fn guest() -> GuestId {
        GuestId {
            name: "web1".into(),
            tag: "42".into(),
            pid: Some(42),
            container: None,
            reference: GuestRef::Pid(42),
            ns_inode: 7,
        }
    }

    fn veth(index: u32, name: &str, peer: u32, alias: Option<String>) -> Link {
        Link {
            index,
            name: name.into(),
            kind: Some("veth".into()),
            peer: Some(peer),
            alias,
            ..Default::default()
        }
    }

    fn facts(kind: &str, ports: Option<Vec<String>>) -> DelFacts {
        let alias = guest().alias("eth1", "br1", if kind == "ovs" { Kind::Ovs } else { Kind::Bridge });
        DelFacts {
            container_if: Some(veth(2, "eth1", 10, None)),
            host_end: Some(veth(10, "veth1pl42", 2, Some(alias))),
            nic: None,
            nic_blocked: None,
            ovs_ids: None,
            bridge_ports: ports,
        }
    }

    fn shown(p: &DelPlan) -> Vec<String> {
        match p {
            DelPlan::Steps { steps, .. } => steps.iter().map(|s| s.to_string()).collect(),
            DelPlan::Nothing(why) => vec![format!("nothing: {why}")],
        }
    }

    #[test]
    fn a_bridge_attachment_goes_by_its_host_end_and_the_bridge_only_when_asked_and_empty() {
        let p = plan_del(&del("del web1"), &guest(), &facts("bridge", None)).unwrap();
        assert_eq!(shown(&p), ["ip link del veth1pl42"]);
        let ports = Some(vec!["veth1pl42".to_string()]);
        let p = plan_del(&del("del web1 --prune-bridge"), &guest(), &facts("bridge", ports)).unwrap();
        assert_eq!(shown(&p), ["ip link del veth1pl42", "ip link del br1 (it has no ports)"]);
        let ports = Some(vec!["veth1pl42".to_string(), "other".to_string()]);
        let p = plan_del(&del("del web1 --prune-bridge"), &guest(), &facts("bridge", ports)).unwrap();
        assert_eq!(shown(&p), ["ip link del veth1pl42"]);
    }

    #[test]
    fn an_ovs_attachment_loses_its_port_first() {
        let p = plan_del(&del("del ovsbr web1"), &guest(), &facts("ovs", None));
        assert_eq!(shown(&p.unwrap()), ["nothing: eth1 in web1 is attached to br1, not ovsbr"]);
        let p = plan_del(&del("del br1 web1"), &guest(), &facts("ovs", None)).unwrap();
        assert_eq!(shown(&p), ["ovs-vsctl --if-exists del-port br1 veth1pl42", "ip link del veth1pl42"]);
    }

    #[test]
    fn a_guest_link_with_our_mark_goes_in_the_guest() {
        let alias = guest().alias("eth1", "eth0", Kind::Macvlan);
        let link = Link {
            index: 3,
            name: "eth1".into(),
            kind: Some("macvlan".into()),
            alias: Some(alias),
            ..Default::default()
        };
        let f = DelFacts { container_if: Some(link), ..Default::default() };
        assert_eq!(shown(&plan_del(&del("del web1"), &guest(), &f).unwrap()), ["guest: ip link del eth1"]);
    }

    #[test]
    fn a_direct_phys_nic_its_record_names_goes_back_and_only_that_one() {
        let saved = SavedNic {
            name: "enp3s0".into(),
            mac: None,
            alias: None,
            master: None,
            up: true,
            disable_ipv6: None,
            config: LinkConfig::default(),
            guest_index: 3,
            kind: None,
        };
        let nic = Link { index: 3, name: "eth1".into(), alias: Some("enp3s0".into()), ..Default::default() };
        let f = DelFacts { container_if: Some(nic.clone()), nic: Some(saved.clone()), ..Default::default() };
        let p = plan_del(&del("del enp3s0 web1"), &guest(), &f).unwrap();
        assert!(shown(&p)[0].starts_with("guest: ip link set eth1 netns <host> name enp3s0 "), "{p:?}");
        let other = Link { index: 4, ..nic };
        let f = DelFacts { container_if: Some(other), nic: Some(saved), ..Default::default() };
        let e = plan_del(&del("del web1"), &guest(), &f).unwrap_err().to_string();
        assert!(e.contains("not made by pipework"), "another link under that name: {e}");
        let f = DelFacts {
            container_if: Some(Link {
                index: 3,
                name: "eth1".into(),
                alias: Some("enp3s0".into()),
                ..Default::default()
            }),
            nic: f.nic,
            nic_blocked: Some("the host has an interface enp3s0 now".into()),
            ..Default::default()
        };
        let e = plan_del(&del("del web1"), &guest(), &f).unwrap_err().to_string();
        assert!(e.ends_with("the host has an interface enp3s0 now; nothing removed"), "{e}");
    }

    #[test]
    fn a_direct_phys_mark_the_guest_wrote_itself_is_refused() {
        // No attach writes `mode=direct-phys`: a guest's own link carrying it is a forgery,
        // whether or not a record saved a NIC (that NIC must not be given a link of theirs).
        let forged = "pipework:v1 guest=pid:42 ns=7 if=eth1 host=enp3s0 mode=direct-phys";
        let link = Link {
            index: 9,
            name: "eth1".into(),
            kind: Some("veth".into()),
            alias: Some(forged.into()),
            ..Default::default()
        };
        let f = DelFacts { container_if: Some(link.clone()), ..Default::default() };
        let e = plan_del(&del("del web1"), &guest(), &f).unwrap_err().to_string();
        assert!(e.contains("not deleting it"), "{e}");
        let f = DelFacts { container_if: Some(link), nic: Some(saved_nic(3, None)), ..Default::default() };
        let e = plan_del(&del("del web1"), &guest(), &f).unwrap_err().to_string();
        assert!(e.contains("not deleting it"), "{e}");
    }

    #[test]
    fn a_saved_nic_is_only_a_link_of_its_own_kind() {
        // The guest may make a link with the NIC's index and old name as its alias
        // (`ip link add eth1 index 3 type veth ...`): it is not the NIC.
        let veth = Link {
            index: 3,
            name: "eth1".into(),
            kind: Some("veth".into()),
            alias: Some("enp3s0".into()),
            ..Default::default()
        };
        let f = DelFacts { container_if: Some(veth), nic: Some(saved_nic(3, None)), ..Default::default() };
        let e = plan_del(&del("del web1"), &guest(), &f).unwrap_err().to_string();
        assert!(e.contains("not made by pipework"), "{e}");
    }

    fn saved_nic(guest_index: u32, kind: Option<&str>) -> SavedNic {
        SavedNic {
            name: "enp3s0".into(),
            mac: None,
            alias: None,
            master: Some("br0".into()),
            up: true,
            disable_ipv6: None,
            config: LinkConfig::default(),
            guest_index,
            kind: kind.map(str::to_string),
        }
    }

    #[test]
    fn an_ovs_port_of_the_original_pipework_is_found_by_its_external_ids() {
        let mut f = facts("ovs", None);
        f.host_end.as_mut().unwrap().alias = None;
        let ids = |pid: &str| {
            let kv = [("interface", "veth1pl42"), ("bridge", "ovsbr0"), ("nspid", pid), ("vlan", "10")];
            Some(kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
        };
        f.ovs_ids = ids("42");
        let p = plan_del(&del("del web1"), &guest(), &f).unwrap();
        assert_eq!(shown(&p), ["ovs-vsctl --if-exists del-port ovsbr0 veth1pl42", "ip link del veth1pl42"]);
        f.ovs_ids = ids("43");
        let e = plan_del(&del("del web1"), &guest(), &f).unwrap_err().to_string();
        assert!(e.contains("has no pipework alias"), "another guest's port: {e}");
    }

    #[test]
    fn nothing_there_is_nothing_to_remove() {
        let p = plan_del(&del("del web1 -i eth3"), &guest(), &DelFacts::default()).unwrap();
        assert_eq!(p, DelPlan::Nothing("no eth3 in web1".into()));
    }

    #[test]
    fn what_pipework_did_not_make_is_refused() {
        let refused = |f: &DelFacts| plan_del(&del("del web1"), &guest(), f).unwrap_err().to_string();
        let mut f = facts("bridge", None);
        f.host_end.as_mut().unwrap().alias = None;
        assert!(refused(&f).contains("has no pipework alias"), "{}", refused(&f));
        f.host_end.as_mut().unwrap().alias =
            Some("pipework:v1 guest=pid:42 ns=8 if=eth1 host=br1 mode=bridge".into());
        assert!(refused(&f).contains("no pipework alias for it"), "another namespace's: {}", refused(&f));
        f.host_end.as_mut().unwrap().alias = Some("pipework:v9".into());
        assert!(refused(&f).contains("unreadable pipework alias"), "{}", refused(&f));
        f.host_end = None;
        assert!(refused(&f).contains("not on this host"), "{}", refused(&f));
        let nic = Link { index: 3, name: "eth1".into(), alias: Some("eth2".into()), ..Default::default() };
        let f = DelFacts { container_if: Some(nic), ..Default::default() };
        assert!(refused(&f).contains("direct-phys"), "{}", refused(&f));
        let lo = Link { index: 3, name: "eth1".into(), kind: Some("macvlan".into()), ..Default::default() };
        let f = DelFacts { container_if: Some(lo), ..Default::default() };
        assert!(refused(&f).contains("no pipework alias"), "{}", refused(&f));
    }
}
