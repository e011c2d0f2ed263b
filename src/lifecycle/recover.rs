//! Undo what a run cut short left (its intent, `crate::intent`): every object the
//! intent names that is there, wherever the kill left it, with or without a mark
//! (a link is born without one). Planned as `del` plans (`Removal`s, idempotent,
//! so a recovery cut short is finished by the next), then the replaced default
//! routes put back, then the intent goes. Called by a re-run of the attachment,
//! `del`, `gc` and CNI DEL, each for the intents of runs that are over.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use anyhow::{Context as _, Result};

use crate::apply::{self, Context};
use crate::intent::Intent;
use crate::lifecycle::restore::{self, PutBack};
use crate::netlink::{Link, Netlink};
use crate::plan::alias::GuestRef;
use crate::plan::remove::Removal;
use crate::plan::Side;

/// Whether a bridge the run created goes too (when it has no ports): `gc` removes
/// it; a re-run uses it, and `del` leaves it as it leaves any bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bridges {
    Keep,
    Remove,
}

/// What undoing one intent came to.
#[derive(Debug)]
pub struct Recovered {
    pub intent: Intent,
    /// The removals, in order; then the routes put back.
    pub steps: Vec<Removal>,
    pub put_back: Vec<PutBack>,
}

impl Recovered {
    /// `undid an attach of eth1 in docker:ID by pid N, cut short`, or with `--dry-run`
    /// what would be done.
    pub fn describe(&self, dry_run: bool) -> String {
        let what = self.intent.describe();
        if !dry_run {
            return format!("undid {what}, cut short");
        }
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(ToString::to_string)
            .chain(self.put_back.iter().map(ToString::to_string))
            .collect();
        format!(
            "would undo {what}, cut short: {}",
            if steps.is_empty() { "nothing left".into() } else { steps.join("; ") }
        )
    }
}

/// Undo `intent` (a dead run's). `guest`: the guest's netlink socket and namespace
/// when the caller has it open; else it is looked for by its namespace's inode
/// (gone: only the host's side is undone, the guest's went with it). `None`: its
/// run had completed (see `Intent::completed`), nothing to undo; the intent goes.
pub async fn recover(
    host: &Netlink,
    intent: Intent,
    guest: Option<(&Netlink, std::os::fd::BorrowedFd<'_>)>,
    bridges: Bridges,
    dry_run: bool,
) -> Result<Option<Recovered>> {
    if intent.completed() {
        if !dry_run {
            intent.remove()?;
        }
        return Ok(None);
    }
    let found;
    let guest = match guest {
        Some(g) => Some(g),
        None => {
            found = match open_namespace(&intent) {
                Some(fd) => Some((Netlink::in_netns(fd.as_fd())?, fd)),
                None => None,
            };
            found.as_ref().map(|(nl, fd)| (nl, fd.as_fd()))
        }
    };
    let host_links = host.links().await.context("cannot read the host's interfaces")?;
    let guest_links = match guest {
        Some((nl, _)) => nl.links().await.context("cannot read the guest's interfaces")?,
        None => Vec::new(),
    };
    let steps = plan(&intent, &host_links, &guest_links, bridges);
    // Those that cannot go back (their gateway gone with the attachment...) stay gone,
    // as after a `del`.
    let put_back = match guest {
        Some((nl, _)) if !intent.replaced_routes.is_empty() => {
            let going = guest_links.iter().find(|l| l.name == intent.container_if).map_or(0, |l| l.index);
            let routes = restore::routes_for(nl, &intent.replaced_routes).await?;
            restore::plan(&intent.replaced_routes, &guest_links, &routes, going).0
        }
        _ => Vec::new(),
    };
    if !dry_run {
        // The clients first: a release needs the interface.
        for kept in &intent.dhcp {
            kept.stop().await.with_context(|| format!("cannot stop {}", kept.describe()))?;
        }
        // Without a guest there is no guest step: the host stands in for it.
        let own = crate::netns::open_ours()?;
        let (nl_guest, ns) = guest.unwrap_or((host, own.as_fd()));
        let ctx = Context::new(host, nl_guest, ns, intent.guest.clone());
        apply::remove(&steps, &ctx).await.context("cannot undo an attach cut short")?;
        restore::apply(nl_guest, &put_back).await.context("cannot undo an attach cut short")?;
        intent.remove()?;
    }
    Ok(Some(Recovered { intent, steps, put_back }))
}

/// The removals that undo `intent`, given the links there are now.
fn plan(intent: &Intent, host: &[Link], guest: &[Link], bridges: Bridges) -> Vec<Removal> {
    let mut steps = Vec::new();
    for (bridge, port) in &intent.ovs_ports {
        steps.push(Removal::OvsDelPort { bridge: bridge.clone(), port: port.clone() });
    }
    // The NIC: under its own name (moved, not renamed yet) or CONTAINER_IF's, and of
    // its own kind (what a guest cannot fake on a link it made).
    let nic = intent.nic.as_ref().and_then(|moved| {
        let names = [moved.saved.name.as_str(), moved.new_name.as_str()];
        guest
            .iter()
            .find(|l| names.contains(&l.name.as_str()) && l.kind == moved.saved.kind)
            .map(|l| (moved, l))
    });
    for name in &intent.guest_links {
        if let Some(l) = guest.iter().find(|l| &l.name == name) {
            if nic.is_none_or(|(_, n)| n.index != l.index) {
                steps.push(Removal::DeleteLink { side: Side::Guest, name: l.name.clone(), index: l.index });
            }
        }
    }
    if let Some((moved, l)) = nic {
        let nic = Box::new(crate::plan::remove::SavedNic { guest_index: l.index, ..moved.saved.clone() });
        steps.push(Removal::GiveBack { dev: l.name.clone(), index: l.index, nic });
    }
    for name in &intent.host_links {
        if let Some(l) = host.iter().find(|l| &l.name == name) {
            steps.push(Removal::DeleteLink { side: Side::Host, name: l.name.clone(), index: l.index });
        }
    }
    for name in &intent.set_up {
        if let Some(l) = host.iter().find(|l| &l.name == name && l.up) {
            steps.push(Removal::SetDown { name: l.name.clone(), index: l.index });
        }
    }
    // The guest's host routes, then its shim if this run made it and no other
    // guest routes through it by now (one that waited for the shim lock the killed
    // run held may).
    for r in &intent.host_routes {
        steps.push(Removal::DeleteHostRoute { dst: r.dst, dev: r.dev.clone() });
    }
    if let Some(shim) = intent.shim.as_ref().filter(|s| host.iter().any(|l| l.name == s.name)) {
        steps.push(Removal::RemoveShimIfUnused { name: shim.name.clone(), mark: shim.mark.clone() });
    }
    if bridges == Bridges::Remove {
        for name in &intent.bridges {
            steps.push(Removal::DeleteBridgeIfUnused { name: name.clone(), ovs: false });
        }
        for name in &intent.ovs_bridges {
            steps.push(Removal::DeleteBridgeIfUnused { name: name.clone(), ovs: true });
        }
    }
    steps
}

/// The intent's guest namespace, if it is still there: through its netns file, or
/// any process in it (Docker is not asked: a daemon that is down must not make a
/// guest look gone, and leave its links).
fn open_namespace(intent: &Intent) -> Option<OwnedFd> {
    if let Ok(GuestRef::Netns(path)) = GuestRef::parse(&intent.guest) {
        if let Ok(f) = File::open(&path) {
            if f.metadata().is_ok_and(|m| m.ino() == intent.ns) {
                return Some(f.into());
            }
        }
    }
    let mut in_it = crate::netns::pids().filter(|p| crate::netns::of_pid(p).is_ok_and(|ns| ns == intent.ns));
    in_it.find_map(|pid| crate::netns::open_of_pid(pid, intent.ns)).map(OwnedFd::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::{MovedNic, Run, VERSION};
    use crate::plan::remove::SavedNic;
    use crate::process::Process;

    fn intent() -> Intent {
        Intent {
            version: VERSION,
            run: Run { process: Process { pid: 1, start: 1 }, boot: "b".into() },
            guest: "pid:42".into(),
            ns: 7,
            container_if: "eth1".into(),
            host_if: "eth2".into(),
            owner: None,
            host_links: vec!["veth1pl42".into()],
            set_up: vec!["eth2".into()],
            bridges: vec!["br1".into()],
            ovs_bridges: Vec::new(),
            ovs_ports: Vec::new(),
            guest_links: vec!["pw1234abcd".into(), "eth1".into()],
            nic: None,
            replaced_routes: Vec::new(),
            dhcp: Vec::new(),
            shim: None,
            host_routes: Vec::new(),
        }
    }

    fn link(index: u32, name: &str, kind: Option<&str>, up: bool) -> Link {
        Link { index, name: name.into(), kind: kind.map(String::from), up, ..Link::default() }
    }

    #[test]
    fn what_is_there_of_the_intent_goes_and_nothing_else() {
        let host = [link(2, "eth2", None, true), link(3, "other0", Some("veth"), true)];
        let guest = [link(1, "lo", None, true), link(5, "pw1234abcd", Some("macvlan"), false)];
        let steps = plan(&intent(), &host, &guest, Bridges::Keep);
        assert_eq!(
            steps,
            vec![
                Removal::DeleteLink { side: Side::Guest, name: "pw1234abcd".into(), index: 5 },
                Removal::SetDown { name: "eth2".into(), index: 2 },
            ]
        );
        let with_bridges = plan(&intent(), &host, &guest, Bridges::Remove);
        assert_eq!(
            with_bridges.last(),
            Some(&Removal::DeleteBridgeIfUnused { name: "br1".into(), ovs: false })
        );
    }

    #[test]
    fn a_moved_nic_goes_back_whatever_its_name_and_a_guests_own_link_of_another_kind_stays() {
        let saved = SavedNic {
            name: "eth2".into(),
            mac: None,
            alias: None,
            master: None,
            up: true,
            disable_ipv6: None,
            config: Default::default(),
            guest_index: 2,
            kind: None,
        };
        let nic = MovedNic { saved, new_name: "eth1".into(), new_mac: None };
        let i = Intent {
            nic: Some(nic),
            guest_links: Vec::new(),
            host_links: Vec::new(),
            set_up: Vec::new(),
            ..intent()
        };
        for name in ["eth2", "eth1"] {
            let steps = plan(&i, &[], &[link(9, name, None, false)], Bridges::Keep);
            assert!(
                matches!(&steps[..], [Removal::GiveBack { dev, index: 9, .. }] if dev == name),
                "{steps:?}"
            );
        }
        let faked = plan(&i, &[], &[link(9, "eth1", Some("veth"), false)], Bridges::Keep);
        assert_eq!(faked, Vec::new(), "a veth the guest made under the name is not the NIC");
    }

    #[test]
    fn a_shim_the_run_made_goes_if_still_there_after_the_guests_routes() {
        use crate::intent::{HostRoute, IntendedShim};
        let mark = "pipework-shim parent=eth2 moved=10.0.0.1/24".to_string();
        let i = Intent {
            shim: Some(IntendedShim { name: "pwshim-eth2".into(), mark: mark.clone() }),
            host_routes: vec![HostRoute { dst: "10.0.0.2/32".parse().unwrap(), dev: "pwshim-eth2".into() }],
            host_links: Vec::new(),
            set_up: Vec::new(),
            guest_links: Vec::new(),
            ..intent()
        };
        let route =
            Removal::DeleteHostRoute { dst: "10.0.0.2/32".parse().unwrap(), dev: "pwshim-eth2".into() };
        let shim = [link(9, "pwshim-eth2", Some("macvlan"), true)];
        assert_eq!(
            plan(&i, &shim, &[], Bridges::Keep),
            vec![route.clone(), Removal::RemoveShimIfUnused { name: "pwshim-eth2".into(), mark }]
        );
        assert_eq!(plan(&i, &[], &[], Bridges::Keep), vec![route], "killed before the shim was made");
    }
}
