//! `pipework ls [GUEST]`: the attachments on this host, from one dump of the host's
//! links (the veth host ends carry the marks) and one of each guest namespace found
//! (CONTAINER_IF's MAC and addresses; the marks of macvlan, IPoIB and dummy links).
//! Without GUEST, the guest namespaces are those the host ends name, and every
//! other one a process is in or a record's netns file names (where a guest-side
//! mark may be); with an Open vSwitch database, one `ovs-vsctl list` adds the ports'
//! `pipework.*` ids.

use std::collections::HashSet;
use std::os::fd::{AsFd, OwnedFd};

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::guest;
use crate::guest::{Guest, Source};
use crate::model::Ls;
use crate::netlink::{Link, Netlink};
use crate::netns;
use crate::ovs::MarkedInterface;
use crate::plan::alias::{Alias, GuestRef, Kind};
use crate::plan::GuestId;
use crate::report::{warning, Said, Verb};

/// One attachment, as `ls` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// The GUEST argument that names it again (a Docker container's full id).
    pub guest: String,
    /// A Docker container's name, when it is running.
    pub container_name: Option<String>,
    /// A CNI attachment's pod (`NAMESPACE/NAME`, from `K8S_POD_*`), from its record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// A CNI attachment's container id (the pod's sandbox), from its record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    pub ns: u64,
    pub container_if: String,
    pub host_if: String,
    pub kind: &'static str,
    pub host_end: Option<String>,
    pub addresses: Vec<String>,
    pub mac: Option<String>,
    pub vlan: Option<u16>,
    /// A Linux bridge port's tagged VLANs (CNI `vlanTrunk`), as its mark says:
    /// `10-20,30`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trunk: Option<String>,
    /// `BRIDGE@UPLINK`: the uplink, from the record (`host_if` is the bridge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uplink: Option<String>,
    /// The host end is an isolated port of its bridge (`--isolated`).
    pub isolated: bool,
    /// `--host-shim`: the shim the host reaches the guest through (from its record).
    pub shim: Option<String>,
    /// The DHCP clients the attach left running (`-f` forms), from its record.
    pub dhcp: Vec<Client>,
    /// The guest is gone (or its pid or netns file is another's now).
    pub stale: bool,
    /// An attach of it is `attaching` now, or was `interrupted` (cut short, its
    /// intent left: see `crate::intent`); `null` otherwise.
    pub intent: Option<&'static str>,
}

/// A DHCP client an attachment's record names.
#[derive(Clone, Debug, Serialize)]
pub struct Client {
    pub client: String,
    pub pids: Vec<u32>,
    /// `null` for a helper container (Docker is not asked).
    pub running: Option<bool>,
    /// A running keeper's own word (`bound`, `rebooting`, `discovering (...)`), from
    /// its status file; `null` for the other clients.
    pub state: Option<String>,
}

fn clients(rec: Option<&crate::record::Record>) -> Vec<Client> {
    let Some(rec) = rec else { return Vec::new() };
    rec.dhcp
        .iter()
        .map(|k| Client {
            client: k.client.clone(),
            pids: k.processes.iter().map(|p| p.pid).collect(),
            running: k.is_running(),
            state: k.is_running().unwrap_or(false).then(|| k.keeper_state()).flatten(),
        })
        .collect()
}

/// The marks found for one guest namespace.
struct Group {
    reference: GuestRef,
    ns: u64,
    /// Host ends with their marks.
    ends: Vec<(Alias, Link)>,
    /// The namespace's links, when they were dumped to find this group.
    dumped: Option<(Netlink, Vec<Link>)>,
}

/// What `ls` found: every attachment on this host (or of one guest).
#[derive(Clone, Debug, Serialize)]
pub struct Listing {
    pub attachments: Vec<Entry>,
}

/// The verb.
pub async fn ls(req: &Ls) -> Verb<Listing> {
    let (attachments, notes) = list(req).await?;
    Ok(Said::new(Listing { attachments }, notes))
}

async fn list(req: &Ls) -> Result<(Vec<Entry>, Vec<String>)> {
    let host = Netlink::current()?;
    let only = match &req.guest {
        Some(g) => Some(guest::lookup(g).await.and_then(guest::not_the_host)?),
        None => None,
    };
    let only_ns = only.as_ref().map(|g| g.ns_inode);
    let host_links = host.links().await?;
    let mut notes = Vec::new();
    let ovs = ovs_interfaces(&mut notes).await;
    let mut groups: Vec<Group> = Vec::new();
    for link in &host_links {
        let alias = match link.alias.as_deref().and_then(Alias::parse) {
            Some(Ok(a)) if a.kind.is_veth() => a,
            Some(Err(e)) => {
                notes.push(warning(format!("{}: {e}", link.name)));
                continue;
            }
            Some(Ok(_)) => continue,
            None => match original_port(link, &ovs).await {
                Some(a) => a,
                None => continue,
            },
        };
        if only.as_ref().is_some_and(|g| g.ns_inode != alias.ns) {
            continue;
        }
        match groups.iter_mut().find(|g| g.ns == alias.ns && g.reference == alias.guest) {
            Some(g) => g.ends.push((alias, link.clone())),
            None => groups.push(Group {
                reference: alias.guest.clone(),
                ns: alias.ns,
                ends: vec![(alias, link.clone())],
                dumped: None,
            }),
        }
    }
    if only.is_none() {
        let more = guest_side(&groups).await;
        groups.extend(more);
    }
    let mut entries = Vec::new();
    if let Some(g) = only {
        let id = GuestId::of(&g);
        let ends = match groups.iter().position(|x| x.ns == g.ns_inode) {
            Some(i) => groups.remove(i).ends,
            None => Vec::new(),
        };
        let group = Group { reference: id.reference, ns: id.ns_inode, ends, dumped: None };
        entries.extend(of_guest(Some(g), &group, &host_links, &ovs).await?);
    }
    for group in &groups {
        let guest = find_again(group).await;
        entries.extend(of_guest(guest, group, &host_links, &ovs).await?);
    }
    if req.guest.is_none() {
        entries.extend(left_behind(&ovs, &host_links));
    }
    with_intents(&mut entries, only_ns, &mut notes);
    Ok((entries, notes))
}

/// The attaches under way or cut short (their intents), on the entries they are of,
/// or as entries of their own (a link made without its mark yet shows nowhere else).
fn with_intents(entries: &mut Vec<Entry>, only_ns: Option<u64>, notes: &mut Vec<String>) {
    let intents = match crate::intent::all() {
        Ok(all) => all,
        Err(e) => {
            notes.push(warning(format!("{e:#}")));
            return;
        }
    };
    for (_, intent) in intents {
        let intent = match intent {
            Ok(i) if only_ns.is_none_or(|ns| ns == i.ns) && !i.completed() => i,
            Ok(_) => continue,
            Err(e) => {
                notes.push(warning(format!("{e:#}")));
                continue;
            }
        };
        let state = Some(intent.state());
        if let Some(e) =
            entries.iter_mut().find(|e| e.ns == intent.ns && e.container_if == intent.container_if)
        {
            e.intent = state;
            continue;
        }
        let guest = GuestRef::parse(&intent.guest).map(|g| g.as_guest_arg()).unwrap_or(intent.guest.clone());
        entries.push(Entry {
            guest,
            container_name: None,
            pod: None,
            container_id: None,
            ns: intent.ns,
            container_if: intent.container_if,
            host_if: intent.host_if,
            kind: "-",
            host_end: intent.host_links.first().cloned(),
            addresses: Vec::new(),
            mac: None,
            vlan: None,
            trunk: None,
            uplink: None,
            isolated: false,
            shim: None,
            dhcp: Vec::new(),
            stale: false,
            intent: state,
        });
    }
}

/// A host end without a mark that is an Open vSwitch port the original pipework
/// made: its external ids name it (`pipework.interface`) and a guest (its container,
/// else its pid) in which its veth peer is; CONTAINER_IF is that peer's name.
async fn original_port(link: &Link, ovs: &[MarkedInterface]) -> Option<Alias> {
    let m = ovs.iter().find(|m| m.name == link.name && m.id("interface") == Some(&link.name))?;
    if !link.is_veth() {
        return None;
    }
    let arg =
        m.id("containerid").map(str::to_string).or_else(|| m.id("nspid").map(|p| format!("pid:{p}")))?;
    let guest = guest::lookup(&arg).await.ok()?;
    let nl = Netlink::in_netns(guest.netns()).ok()?;
    let peer = nl.link_by_index(link.peer?).await.ok()??;
    if peer.peer != Some(link.index) {
        return None;
    }
    let id = GuestId::of(&guest);
    Some(Alias {
        guest: id.reference,
        ns: id.ns_inode,
        container_if: peer.name,
        host_if: m.id("bridge")?.to_string(),
        kind: Kind::Ovs,
        vlan: m.id("vlan").and_then(|v| v.parse().ok()),
        trunk: Default::default(),
    })
}

/// Open vSwitch's Interface records with `pipework.*` ids, when a database runs here
/// (one `ovs-vsctl list`); one that does not answer is a note.
async fn ovs_interfaces(notes: &mut Vec<String>) -> Vec<MarkedInterface> {
    if crate::ovs::vsctl_path().is_none() || !crate::ovs::database_running() {
        return Vec::new();
    }
    match crate::ovs::marked_interfaces().await {
        Ok(m) => m,
        Err(e) => {
            notes.push(warning(format!("Open vSwitch ports not looked at: {e:#}")));
            Vec::new()
        }
    }
}

/// Open vSwitch ports with `pipework.*` ids whose interface is gone from the host
/// (what `gc` removes): stale attachments, as far as their ids say (no CONTAINER_IF).
fn left_behind(ovs: &[MarkedInterface], host_links: &[Link]) -> Vec<Entry> {
    let gone = ovs.iter().filter(|m| m.unopened && !host_links.iter().any(|l| l.name == m.name));
    gone.map(|m| {
        let guest = match (m.id("containerid"), m.id("nspid")) {
            (Some(id), _) => id.to_string(),
            (None, Some(pid)) => format!("pid:{pid}"),
            (None, None) => "?".to_string(),
        };
        Entry {
            guest,
            container_name: m.id("containername").map(|n| n.trim_start_matches('/').to_string()),
            pod: None,
            container_id: None,
            ns: 0,
            container_if: String::new(),
            host_if: m.id("bridge").unwrap_or("?").to_string(),
            kind: "ovs",
            host_end: Some(m.name.clone()),
            addresses: Vec::new(),
            mac: None,
            vlan: m.id("vlan").and_then(|v| v.parse().ok()),
            trunk: None,
            uplink: None,
            isolated: false,
            shim: None,
            dhcp: Vec::new(),
            stale: true,
            intent: None,
        }
    })
    .collect()
}

/// The namespaces no host end named, of running processes (`/proc/PID/ns/net`) and
/// of the records' netns files, each dumped once for the marks that macvlan, IPoIB
/// and dummy links carry inside their guest; those with a mark become groups.
async fn guest_side(known: &[Group]) -> Vec<Group> {
    let mut seen: HashSet<u64> = known.iter().map(|g| g.ns).collect();
    if let Ok(ours) = netns::ours() {
        seen.insert(ours);
    }
    let mut found = Vec::new();
    for (ns, file) in namespaces(&mut seen) {
        // One that went meanwhile, or cannot be read, has nothing to show.
        let Ok(nl) = Netlink::in_netns(file.as_fd()) else { continue };
        let Ok(links) = nl.links().await else { continue };
        let mark = links.iter().find_map(|l| inside_mark(ns, l));
        if let Some(a) = mark {
            found.push(Group { reference: a.guest, ns, ends: Vec::new(), dumped: Some((nl, links)) });
        }
    }
    found
}

/// The attachment that a guest's own link in namespace `ns` is: by its mark
/// (macvlan, IPoIB, dummy), or the `--direct-phys` NIC a record names (its index
/// there, and its old name as its alias).
fn inside_mark(ns: u64, link: &Link) -> Option<Alias> {
    let text = link.alias.as_deref()?;
    match Alias::parse(text) {
        // No attach writes a `direct-phys` mark: the record alone names a NIC.
        Some(Ok(a))
            if !a.kind.is_veth()
                && a.kind != Kind::DirectPhys
                && a.ns == ns
                && a.container_if == link.name =>
        {
            Some(a)
        }
        Some(_) => None,
        None => {
            let rec = crate::record::load(ns, &link.name).ok()??;
            let nic = rec
                .nic
                .as_ref()
                .filter(|n| n.guest_index == link.index && n.name == text && n.kind == link.kind)?;
            Some(Alias {
                guest: GuestRef::parse(&rec.guest).ok()?,
                ns,
                container_if: link.name.clone(),
                host_if: nic.name.clone(),
                kind: Kind::DirectPhys,
                vlan: None,
                trunk: Default::default(),
            })
        }
    }
}

/// Each network namespace not `seen` yet, open: through the first process found in
/// it, or a record's netns file (opened as a GUEST is, with its checks).
fn namespaces(seen: &mut HashSet<u64>) -> Vec<(u64, OwnedFd)> {
    let mut open = Vec::new();
    for pid in netns::pids() {
        let Ok(ns) = netns::of_pid(pid) else { continue };
        if seen.contains(&ns) {
            continue;
        }
        if let Some(file) = netns::open_of_pid(pid, ns) {
            seen.insert(ns);
            open.push((ns, OwnedFd::from(file)));
        }
    }
    // Only the records of namespaces not found through a process are read (by the
    // namespace their file is named for): a guest that is a netns file has none.
    for (ns, file) in crate::record::listed().unwrap_or_default() {
        if seen.contains(&ns) {
            continue;
        }
        let rec = crate::record::read(&file).and_then(|r| r.context("gone meanwhile"));
        let Ok(GuestRef::Netns(path)) = rec.and_then(|r| GuestRef::parse(&r.guest)) else { continue };
        let Ok(guest) = crate::guest::resolve(&path) else { continue };
        if let (true, Ok(fd)) = (seen.insert(guest.ns_inode), guest.netns().try_clone_to_owned()) {
            open.push((guest.ns_inode, fd));
        }
    }
    open
}

/// The guest a mark names, if it is still that guest (same namespace).
async fn find_again(group: &Group) -> Option<Guest> {
    let found = guest::lookup(&group.reference.as_guest_arg()).await.ok()?;
    (found.ns_inode == group.ns).then_some(found)
}

/// The entries of one guest: its host ends' attachments, and (when it is there) the
/// marked links inside it.
async fn of_guest(
    guest: Option<Guest>,
    group: &Group,
    host_links: &[Link],
    ovs: &[MarkedInterface],
) -> Result<Vec<Entry>> {
    let opened = match (&group.dumped, &guest) {
        (Some(_), _) | (None, None) => None,
        (None, Some(g)) => {
            let nl = Netlink::in_netns(g.netns())?;
            let links = nl.links().await?;
            Some((nl, links))
        }
    };
    let (nl, inside) = match group.dumped.as_ref().or(opened.as_ref()) {
        Some((nl, links)) => (Some(nl), &links[..]),
        None => (None, &[][..]),
    };
    let container_name = guest.as_ref().and_then(|g| match &g.source {
        Source::Docker { name, .. } => Some(name.trim_start_matches('/').to_string()),
        _ => None,
    });
    let mut marked: Vec<(Alias, Option<&Link>, Option<&Link>)> = Vec::new();
    for (alias, end) in &group.ends {
        let cif = inside.iter().find(|l| Some(l.index) == end.peer && l.name == alias.container_if);
        marked.push((alias.clone(), Some(end), cif));
    }
    for link in inside {
        if let Some(a) = inside_mark(group.ns, link) {
            marked.push((a, None, Some(link)));
        }
    }
    let mut entries = Vec::new();
    for (alias, end, cif) in marked {
        let addresses = match (nl, cif) {
            (Some(nl), Some(l)) => nl.addresses(l.index).await?.iter().map(|a| a.to_string()).collect(),
            _ => Vec::new(),
        };
        // The mark's (an OVS tag), else the port's `pipework.vlan` (an older mark),
        // else a macvlan's `HOSTIF.VID` parent's.
        let port_vlan = end.and_then(|e| ovs.iter().find(|m| m.name == e.name)).and_then(|m| m.id("vlan"));
        let vlan = alias
            .vlan
            .or_else(|| port_vlan.and_then(|v| v.parse().ok()))
            .or_else(|| host_links.iter().find(|l| l.name == alias.host_if).and_then(|l| l.vlan_id));
        // Read once: the DHCP clients, the shim, the uplink and the CNI owner it names.
        let rec = crate::record::load(alias.ns, &alias.container_if).ok().flatten();
        let cni = rec.as_ref().and_then(|r| r.cni.as_ref());
        let uplink = rec.as_ref().and_then(|r| r.uplink.clone());
        let vlan = vlan.or_else(|| uplink_vlan(host_links, &alias.host_if, uplink.as_deref()?));
        entries.push(Entry {
            guest: alias.guest.as_guest_arg(),
            container_name: container_name.clone(),
            pod: cni.and_then(|c| c.pod.clone()),
            container_id: cni.map(|c| c.container_id.clone()),
            ns: alias.ns,
            kind: alias.kind.as_str(),
            host_end: end.map(|e| e.name.clone()),
            mac: cif.and_then(|l| l.mac).map(|m| m.to_string()),
            isolated: end.and_then(|e| e.isolated).unwrap_or(false),
            shim: rec.as_ref().and_then(|r| r.shim.as_ref()).map(|s| s.name.clone()),
            stale: guest.is_none() || cif.is_none(),
            intent: None,
            dhcp: clients(rec.as_ref()),
            addresses,
            vlan,
            trunk: (!alias.trunk.is_empty()).then(|| alias.trunk.to_string()),
            uplink,
            container_if: alias.container_if,
            host_if: alias.host_if,
        });
    }
    Ok(entries)
}

/// `dhcp4:running`, `udhcpc:ended`, `dhcp:?` (a helper container); a keeper that
/// is not bound says what it does instead: `dhcp4:rebooting` (INIT-REBOOT),
/// `dhcp4:discovering` (its lease refused or run out).
fn dhcp_cell(clients: &[Client]) -> Option<String> {
    let state = |c: &Client| match (c.running, c.state.as_deref()) {
        (Some(true), Some(s)) if !s.starts_with("bound") => s.split(' ').next().unwrap_or(s).to_string(),
        (Some(true), _) => "running".to_string(),
        (Some(false), _) => "ended".to_string(),
        (None, _) => "?".to_string(),
    };
    let cells: Vec<String> = clients.iter().map(|c| format!("{}:{}", c.client, state(c))).collect();
    (!cells.is_empty()).then(|| cells.join(","))
}

/// KIND, with what the attach added to it: `bridge,isolated`.
fn kind_cell(e: &Entry) -> String {
    let mut cell = e.kind.to_string();
    if e.isolated {
        cell.push_str(",isolated");
    }
    if let Some(shim) = &e.shim {
        cell.push_str(&format!(",shim={shim}"));
    }
    cell
}

impl Listing {
    /// The human form: one line per attachment under a header, columns padded.
    pub fn table(&self) -> Vec<String> {
        table(&self.attachments)
    }
}

/// A `BRIDGE@UPLINK @VID`'s VLAN: that of the bridge's port that is a VLAN device
/// of the uplink.
fn uplink_vlan(links: &[Link], bridge: &str, uplink: &str) -> Option<u16> {
    let bridge = links.iter().find(|l| l.name == bridge)?.index;
    let uplink = links.iter().find(|l| l.name == uplink)?.index;
    links.iter().find(|l| l.master == Some(bridge) && l.peer == Some(uplink)).and_then(|l| l.vlan_id)
}

fn table(entries: &[Entry]) -> Vec<String> {
    let header =
        ["GUEST", "CONTAINER_IF", "HOSTIF", "KIND", "HOST_END", "ADDRESSES", "MAC", "VLAN", "DHCP", "STATE"];
    let mut rows = vec![header.map(str::to_string).to_vec()];
    for e in entries {
        // A name first (a Docker container's, a pod's), then what it is named by.
        let guest = match (&e.container_name, &e.pod, &e.container_id) {
            (Some(n), _, _) => format!("{n} ({})", &e.guest[..e.guest.len().min(12)]),
            (None, Some(pod), Some(id)) => format!("{pod} ({})", &id[..id.len().min(12)]),
            _ => e.guest.clone(),
        };
        let dash = |s: Option<String>| s.unwrap_or_else(|| "-".to_string());
        let addresses = if e.addresses.is_empty() { "-".to_string() } else { e.addresses.join(",") };
        rows.push(vec![
            guest,
            dash(Some(e.container_if.clone()).filter(|c| !c.is_empty())),
            match &e.uplink {
                Some(uplink) => format!("{}@{uplink}", e.host_if),
                None => e.host_if.clone(),
            },
            kind_cell(e),
            dash(e.host_end.clone()),
            addresses,
            dash(e.mac.clone()),
            // A trunk port's tagged VLANs after its PVID, if any: `10+t:20-30`.
            match (e.vlan, &e.trunk) {
                (Some(v), Some(t)) => format!("{v}+t:{t}"),
                (None, Some(t)) => format!("t:{t}"),
                (v, None) => dash(v.map(|v| v.to_string())),
            },
            dash(dhcp_cell(&e.dhcp)),
            e.intent.unwrap_or(if e.stale { "stale" } else { "ok" }).to_string(),
        ]);
    }
    let widths: Vec<usize> =
        (0..header.len()).map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0)).collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect()
}
