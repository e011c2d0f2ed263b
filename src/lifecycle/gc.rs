//! `pipework gc [--dry-run]`: remove what guests that are gone left behind: their
//! records (`crate::record`) and the DHCP clients these name (a `-f` client's
//! sockets keep a gone guest's namespace, and so its veth, alive), veth host ends
//! whose mark names a namespace no process is in any more (one kept alive by a bind
//! mount or an open fd), and Open vSwitch
//! ports with the `pipework.*` external ids whose interface is gone (a veth goes
//! with its namespace; its port record in the OVS database stays).
//!
//! A guest is gone when no process on this host but the DHCP clients its records name
//! (proven by their start times) is in its network namespace (every
//! `/proc/PID/ns/net` is read once) and, for a `netns:PATH` guest, PATH is not that
//! namespace either. That is asked of the kernel, not of Docker: a daemon that is
//! down makes no container look gone. A namespace number is reused as soon as it is
//! freed, so a new namespace may carry a gone guest's number: gc then keeps what it
//! left, as it keeps whatever it cannot prove gone; the next gc after that namespace
//! ends takes it.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::lifecycle::nic_home;
use crate::lifecycle::recover::{recover, Bridges};
use crate::model::RunOpts;
use crate::netlink::Netlink;
use crate::netns;
use crate::plan::alias::{Alias, GuestRef, Kind};
use crate::record::{self, Record};
use crate::report::{warning, Said, Verb};

/// What `gc` came to: what it removed (or would remove, with `--dry-run`).
#[derive(Clone, Debug, Serialize)]
pub struct Collected {
    pub dry_run: bool,
    pub removed: Vec<Garbage>,
}

/// One thing `gc` removed (or would remove).
#[derive(Clone, Debug, Serialize)]
pub struct Garbage {
    pub kind: GarbageKind,
    /// The record's path, the client as `describe` says it, or the interface's name.
    pub name: String,
    /// Why it is garbage.
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GarbageKind {
    /// An attach cut short (its intent, `crate::intent`), undone.
    Interrupted,
    Record,
    DhcpClient,
    HostEnd,
    OvsPort,
    /// A gone guest's host routes through its shim (and the shim, with its last).
    HostShim,
    /// A `--direct-phys` NIC the kernel put back when its guest's namespace died:
    /// given its name and addresses again (`crate::lifecycle::nic_home`).
    NicHome,
    /// A VLAN device an attach made, that no attachment uses any more.
    VlanDevice,
}

impl GarbageKind {
    /// In words: `host end`, `Open vSwitch port`...
    pub fn words(self) -> &'static str {
        match self {
            GarbageKind::Interrupted => "attach cut short",
            GarbageKind::Record => "record",
            GarbageKind::DhcpClient => "DHCP client",
            GarbageKind::HostEnd => "host end",
            GarbageKind::OvsPort => "Open vSwitch port",
            GarbageKind::HostShim => "host shim route",
            GarbageKind::VlanDevice => "VLAN device",
            GarbageKind::NicHome => "NIC",
        }
    }
}

/// The verb: collect what gone guests left (see the module's comment).
pub async fn gc(opts: &RunOpts) -> Verb<Collected> {
    let (removed, notes) = collect(opts).await?;
    Ok(Said::new(Collected { dry_run: opts.dry_run, removed }, notes))
}

/// The inode of the initial PID namespace, fixed by the kernel (PROC_PID_INIT_INO).
const INIT_PID_NS: u64 = 0xEFFF_FFFC;

/// Processes that make no guest live: the DHCP clients that attaches left running
/// (their sockets keep a gone guest's namespace alive), each proven still that
/// process by its start time.
#[derive(Default)]
struct Exempt {
    pids: HashSet<u32>,
    /// The sandboxes' mount namespaces, held by a live recorded client.
    mnt: HashSet<u64>,
}

impl Exempt {
    fn of(records: &[(PathBuf, Result<Record>)]) -> Exempt {
        let mut exempt = Exempt::default();
        for kept in records.iter().filter_map(|(_, r)| r.as_ref().ok()).flat_map(|r| &r.dhcp) {
            let live: Vec<_> = kept.processes.iter().filter(|p| p.is_alive()).collect();
            exempt.pids.extend(live.iter().map(|p| p.pid));
            if let (Some(ino), false) = (kept.mnt_ns, live.is_empty()) {
                exempt.mnt.insert(ino);
            }
        }
        exempt
    }

    fn covers(&self, pid: &str) -> bool {
        if pid.parse().is_ok_and(|p: u32| self.pids.contains(&p)) {
            return true;
        }
        !self.mnt.is_empty()
            && std::fs::metadata(format!("/proc/{pid}/ns/mnt")).is_ok_and(|m| self.mnt.contains(&m.ino()))
    }
}

/// The namespaces some process (not an exempt one) is in now. Only in the initial
/// PID namespace does /proc show every process: elsewhere every guest would look gone.
fn live_namespaces(exempt: &Exempt) -> Result<HashSet<u64>> {
    let pid_ns = std::fs::metadata("/proc/self/ns/pid").context("cannot read /proc/self/ns/pid")?.ino();
    if pid_ns != INIT_PID_NS {
        anyhow::bail!(
            "gc runs only in the host's PID namespace (here, /proc does not show every guest's processes)"
        );
    }
    let mut live = HashSet::new();
    for entry in std::fs::read_dir("/proc").context("cannot read /proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) =
            entry.file_name().to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())).map(String::from)
        else {
            continue;
        };
        if exempt.covers(&pid) {
            continue;
        }
        // A process that ended meanwhile (or a kernel thread's) is none.
        if let Ok(ns) = netns::of_pid(&pid) {
            live.insert(ns);
        }
    }
    Ok(live)
}

fn gone(guest: &GuestRef, ns: u64, live: &HashSet<u64>) -> bool {
    if live.contains(&ns) {
        return false;
    }
    match guest {
        GuestRef::Netns(path) => netns::of_file(path).ok() != Some(ns),
        _ => true,
    }
}

async fn collect(opts: &RunOpts) -> Result<(Vec<Garbage>, Vec<String>)> {
    let host = Netlink::current()?;
    let mut removed = Vec::new();
    let mut notes = Vec::new();
    // First: a run cut short left links without a mark, which nothing below finds.
    interrupted(opts, &host, &mut removed, &mut notes).await?;
    if !opts.dry_run {
        record::remove_dead_temporaries(&record::dir());
        record::remove_dead_temporaries(&crate::intent::dir());
    }
    let all = record::all()?;
    // A gone guest's DHCP client keeps its namespace alive, and makes it no live one.
    let live = live_namespaces(&Exempt::of(&all))?;
    // The clients first, while their veths are still there: udhcpc's and the
    // keeper's DHCPRELEASE goes out through them (as `del` does it). Said after
    // the links, as before.
    let mut of_records = Vec::new();
    records(opts, &host, all, &live, &mut of_records, &mut notes).await?;
    let _changing = crate::ovs::exclusive().await;
    ovs_ports(opts, &host, &mut removed, &mut notes).await?;
    for link in host.links().await? {
        let Some(Ok(alias)) = link.alias.as_deref().and_then(Alias::parse) else { continue };
        if !alias.kind.is_veth() || !gone(&alias.guest, alias.ns, &live) {
            continue;
        }
        if !opts.dry_run {
            if alias.kind == Kind::Ovs {
                crate::ovs::del_port_anywhere(&link.name).await?;
            }
            // Only if the index is still this link's.
            match host.link_by_index(link.index).await? {
                Some(l) if l.name == link.name => host.delete_link(link.index).await?,
                _ => continue,
            }
        }
        let reason = format!("guest {} is gone", alias.guest);
        if alias.kind == Kind::Ovs {
            removed.push(Garbage {
                kind: GarbageKind::OvsPort,
                name: link.name.clone(),
                reason: reason.clone(),
            });
        }
        removed.push(Garbage { kind: GarbageKind::HostEnd, name: link.name.clone(), reason });
    }
    // Last: the VLAN devices that only the records just removed named.
    let leaving: Vec<PathBuf> =
        of_records.iter().filter(|g| g.kind == GarbageKind::Record).map(|g| PathBuf::from(&g.name)).collect();
    for v in crate::lifecycle::vlan_devices::unused(&host, &leaving, &[]).await? {
        if !opts.dry_run {
            match host.link_by_index(v.index).await? {
                Some(l) if l.name == v.name => host.delete_link(v.index).await?,
                _ => continue,
            }
        }
        let reason = "no attachment uses it any more".to_string();
        removed.push(Garbage { kind: GarbageKind::VlanDevice, name: v.name, reason });
    }
    removed.extend(of_records);
    Ok((removed, notes))
}

/// Every attach cut short (whatever its guest: a re-run would undo it too), undone,
/// a bridge it made and left without ports included. One that cannot be undone is
/// a warning, and its intent stays for the next gc.
async fn interrupted(
    opts: &RunOpts,
    host: &Netlink,
    removed: &mut Vec<Garbage>,
    notes: &mut Vec<String>,
) -> Result<()> {
    for intent in crate::intent::interrupted()? {
        let path = crate::intent::path(intent.ns, &intent.container_if).display().to_string();
        let (name, reason) = (intent.describe(), format!("cut short; its intent: {path}"));
        match recover(host, intent, None, Bridges::Remove, opts.dry_run).await {
            Ok(None) => {}
            Ok(Some(done)) => {
                // What would be done, step by step (done, the line below says it).
                if opts.dry_run {
                    notes.push(done.describe(true));
                }
                removed.push(Garbage { kind: GarbageKind::Interrupted, name, reason });
            }
            Err(e) => notes.push(warning(format!("{path}: {e:#}; kept"))),
        }
    }
    Ok(())
}

/// The records of gone guests, with the DHCP clients they left running.
async fn records(
    opts: &RunOpts,
    host: &Netlink,
    all: Vec<(PathBuf, Result<Record>)>,
    live: &HashSet<u64>,
    removed: &mut Vec<Garbage>,
    notes: &mut Vec<String>,
) -> Result<()> {
    for (path, rec) in all {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                notes.push(warning(format!("{e:#}; kept")));
                continue;
            }
        };
        let guest = match GuestRef::parse(&rec.guest) {
            Ok(g) => g,
            Err(e) => {
                notes.push(warning(format!("{}: {e:#}; kept", path.display())));
                continue;
            }
        };
        if !gone(&guest, rec.ns, live) {
            continue;
        }
        let reason = format!("guest {guest} is gone");
        let mut kept_back = false;
        for kept in rec.dhcp.iter().filter(|k| k.is_running() != Some(false)) {
            if !opts.dry_run {
                if let Err(e) = kept.stop().await {
                    notes
                        .push(warning(format!("cannot stop {}: {e:#}; its record is kept", kept.describe())));
                    kept_back = true;
                    continue;
                }
            }
            removed.push(Garbage {
                kind: GarbageKind::DhcpClient,
                name: kept.describe(),
                reason: reason.clone(),
            });
        }
        if kept_back {
            continue;
        }
        if let Some(nic) = &rec.nic {
            if !nic_back(opts, host, &path, nic, &reason, removed, notes).await? {
                continue;
            }
        }
        let shim = super::del::shim_removals(&rec);
        if !shim.is_empty() {
            if !opts.dry_run {
                let own = netns::open_ours()?;
                let ctx =
                    crate::apply::Context::new(host, host, std::os::fd::AsFd::as_fd(&own), rec.guest.clone());
                crate::apply::remove(&shim, &ctx).await?;
            }
            let name = shim.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            removed.push(Garbage { kind: GarbageKind::HostShim, name, reason: reason.clone() });
        }
        if !opts.dry_run {
            record::remove_at(&path)?;
        }
        removed.push(Garbage { kind: GarbageKind::Record, name: path.display().to_string(), reason });
    }
    Ok(())
}

/// A gone guest's `--direct-phys` NIC, which the kernel put back, given its name and
/// addresses again; whether its record can go (not while a physical NIC is not back:
/// its namespace may still be held, and the record is all that says how it was).
async fn nic_back(
    opts: &RunOpts,
    host: &Netlink,
    path: &std::path::Path,
    nic: &crate::plan::remove::SavedNic,
    reason: &str,
    removed: &mut Vec<Garbage>,
    notes: &mut Vec<String>,
) -> Result<bool> {
    let Some(link) = nic_home::find(host, nic).await? else {
        if nic.kind.is_none() && host.link_by_name(&nic.name).await?.is_none() {
            let p = path.display();
            notes.push(warning(format!(
                "{p}: NIC {} is not back on the host yet; its record is kept",
                nic.name
            )));
            return Ok(false);
        }
        return Ok(true);
    };
    if !opts.dry_run {
        if let Err(e) = nic_home::restore(host, &link, nic).await {
            let p = path.display();
            notes.push(warning(format!(
                "{p}: cannot give {} back as {}: {e:#}; its record is kept",
                link.name, nic.name
            )));
            return Ok(false);
        }
    }
    let name = format!("{} as {} with its addresses", link.name, nic.name);
    removed.push(Garbage { kind: GarbageKind::NicHome, name, reason: reason.to_string() });
    Ok(true)
}

/// The Open vSwitch ports with `pipework.*` ids whose interface is gone: Open vSwitch
/// has no working device for it, and there is no link of that name here either
/// (Open vSwitch runs in this namespace: the attach made the host end here).
/// Nothing to do without `ovs-vsctl` or a running database; one that does not
/// answer is a warning.
async fn ovs_ports(
    opts: &RunOpts,
    host: &Netlink,
    removed: &mut Vec<Garbage>,
    notes: &mut Vec<String>,
) -> Result<()> {
    if crate::ovs::vsctl_path().is_none() || !crate::ovs::database_running() {
        return Ok(());
    }
    let marked = match crate::ovs::marked_interfaces().await {
        Ok(m) => m,
        Err(e) => {
            notes.push(warning(format!("Open vSwitch ports not looked at: {e:#}")));
            return Ok(());
        }
    };
    for iface in marked.into_iter().filter(|i| i.unopened) {
        if host.link_by_name(&iface.name).await?.is_some() {
            continue;
        }
        if !opts.dry_run {
            crate::ovs::del_port_anywhere(&iface.name).await?;
        }
        let reason = "its interface is gone".to_string();
        removed.push(Garbage { kind: GarbageKind::OvsPort, name: iface.name, reason });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_is_gone_when_no_process_is_in_its_namespace_nor_its_netns_file() {
        let live: HashSet<u64> = [7].into();
        assert!(!gone(&GuestRef::Pid(1), 7, &live));
        assert!(gone(&GuestRef::Pid(1), 8, &live));
        assert!(gone(&GuestRef::Docker("ab".into()), 8, &live), "Docker is not asked");
        let mine = netns::ours().unwrap();
        let path = GuestRef::Netns("/proc/self/ns/net".into());
        assert!(!gone(&path, mine, &HashSet::new()), "a netns file that is still that namespace");
        assert!(gone(&GuestRef::Netns("/nonexistent/netns".into()), mine, &HashSet::new()));
    }
}
