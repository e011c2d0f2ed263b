//! What every step of one run shares: a netlink socket per namespace, the guest's
//! netns, the notes for the result, and the links the run knows the index of.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::BorrowedFd;

use anyhow::{anyhow, Context as _, Result};

use super::bridge_lock::BridgeLock;
use crate::dhcp::kept::Kept;
use crate::model::Mac;
use crate::netlink::{errno_of, Netlink};
use crate::plan::{Side, Step};

/// The handles a run needs: one netlink socket per namespace, opened up front.
pub struct Context<'a> {
    pub host: &'a Netlink,
    pub guest: &'a Netlink,
    pub guest_ns: BorrowedFd<'a>,
    /// "container web1 (pid 123)", for messages.
    pub guest_desc: String,
    /// Warnings and notices for the result (never printed from here: a batch
    /// prefixes them with their line).
    pub notes: RefCell<Vec<String>>,
    /// What the run did that is worth knowing, for a run that succeeds (see
    /// `report::Said::notices`): a failed run says only its error.
    pub notices: RefCell<Vec<String>>,
    /// Links whose index this run has learnt (from the facts, or from the kernel's
    /// echo of a link it made), by side and name: each later step on them spares a
    /// lookup. Names change only through this run's own steps, which update it.
    known: RefCell<HashMap<(Side, String), Known>>,
    /// Held shared until this run's port is on its bridge (see `bridge_lock`).
    bridge_lock: RefCell<Option<BridgeLock>>,
    /// The guest's process and the inode of its network namespace, when it has one.
    guest_process: Option<(u32, u64)>,
    /// Told of each DHCP client a step leaves running (`-f` forms), before the step
    /// ends: the attach names it in its intent (`crate::intent`).
    client_started: Option<ClientHook<'a>>,
    /// Told of the host steps a step plans of what it got (a CNI `hostShim`'s, from
    /// the IPAM plugin's addresses) before they run: the attach names what they
    /// make in its intent.
    steps_derived: Option<StepsHook<'a>>,
    /// The leases the built-in DHCP clients took (or a re-run's new keeper took
    /// over), for the result: the CNI result's `dns` is theirs.
    pub leases: RefCell<Vec<crate::plan::Leased>>,
    /// Those of them whose DNS went into the guest's resolv.conf (`dns`), which a
    /// second one adds to.
    pub resolved: RefCell<Vec<crate::plan::Leased>>,
}

/// See [`Context::on_client_started`].
pub type ClientHook<'a> = Box<dyn Fn(&Kept) -> Result<()> + 'a>;

/// See [`Context::on_steps_derived`].
pub type StepsHook<'a> = Box<dyn Fn(&[Step]) -> Result<()> + 'a>;

/// A link this run knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Known {
    pub index: u32,
    /// Its MAC, where this run chose it or the kernel's echo of the new link gave it.
    pub mac: Option<Mac>,
}

impl<'a> Context<'a> {
    pub fn new(host: &'a Netlink, guest: &'a Netlink, guest_ns: BorrowedFd<'a>, guest_desc: String) -> Self {
        Context {
            host,
            guest,
            guest_ns,
            guest_desc,
            notes: RefCell::default(),
            notices: RefCell::default(),
            known: RefCell::default(),
            bridge_lock: RefCell::default(),
            guest_process: None,
            client_started: None,
            steps_derived: None,
            leases: RefCell::default(),
            resolved: RefCell::default(),
        }
    }

    /// `hook` is told of each DHCP client a step leaves running; its error fails
    /// the step (the client is stopped by the rollback then).
    pub fn on_client_started(mut self, hook: ClientHook<'a>) -> Self {
        self.client_started = Some(hook);
        self
    }

    /// A DHCP client this run leaves running, told before the step ends.
    pub fn client_started(&self, kept: &Kept) -> Result<()> {
        self.client_started.as_ref().map_or(Ok(()), |hook| hook(kept))
    }

    /// `hook` is told of the steps a step derives before they run; its error fails
    /// the step (before any of them has run).
    pub fn on_steps_derived(mut self, hook: StepsHook<'a>) -> Self {
        self.steps_derived = Some(hook);
        self
    }

    /// Steps about to run that the plan did not have.
    pub fn steps_derived(&self, steps: &[Step]) -> Result<()> {
        self.steps_derived.as_ref().map_or(Ok(()), |hook| hook(steps))
    }

    /// The guest is process `pid` in namespace `ns_inode`: an attach whose guest has
    /// gone by its end is no success (see [`Self::guest_is_there`]).
    pub fn with_guest_process(mut self, pid: Option<u32>, ns_inode: u64) -> Self {
        self.guest_process = pid.map(|p| (p, ns_inode));
        self
    }

    /// The guest's process is still there, in its namespace. Our fd keeps the
    /// namespace alive after the process has gone, so every step would still succeed,
    /// in a namespace nobody uses, which goes away with our fd.
    pub fn guest_is_there(&self) -> Result<()> {
        let Some((pid, ino)) = self.guest_process else {
            return Ok(());
        };
        match crate::netns::of_pid(pid) {
            Ok(i) if i == ino => Ok(()),
            _ => Err(anyhow!("{} went away during the attach", self.guest_desc)),
        }
    }

    /// Hold `lock` (taken before HOSTIF was looked up) until [`Self::release_bridge_lock`].
    pub fn hold_bridge_lock(&self, lock: Option<BridgeLock>) {
        *self.bridge_lock.borrow_mut() = lock;
    }

    /// The port is on its bridge, or the run gives up (and may remove the bridge).
    pub fn release_bridge_lock(&self) {
        self.bridge_lock.borrow_mut().take();
    }

    pub fn note(&self, line: String) {
        self.notes.borrow_mut().push(line);
    }

    pub fn notice(&self, line: String) {
        self.notices.borrow_mut().push(line);
    }

    /// The netlink socket of `side`.
    pub fn nl(&self, side: Side) -> &'a Netlink {
        match side {
            Side::Host => self.host,
            Side::Guest => self.guest,
        }
    }

    /// Remember link `name` on `side`.
    pub fn learn(&self, side: Side, name: &str, index: u32, mac: Option<Mac>) {
        self.known.borrow_mut().insert((side, name.to_string()), Known { index, mac });
    }

    /// `name` on `side` is gone, or is now another link.
    pub fn forget(&self, side: Side, name: &str) {
        self.known.borrow_mut().remove(&(side, name.to_string()));
    }

    pub fn known(&self, side: Side, name: &str) -> Option<Known> {
        self.known.borrow().get(&(side, name.to_string())).copied()
    }

    /// The index of link `name` on `side`: known, or looked up (and then known). A
    /// lookup that failed on the socket, not by the kernel's answer, is asked once
    /// more (on a new socket): it changes nothing, and a step must not fail half-done
    /// for a lost answer (a NIC just moved into the guest would stay there).
    pub async fn index(&self, side: Side, name: &str) -> Result<u32> {
        if let Some(k) = self.known(side, name) {
            return Ok(k.index);
        }
        let nl = self.nl(side);
        let looked = match nl.link_by_name(name).await {
            Err(e) if errno_of(&e).is_none() => nl.link_by_name(name).await,
            other => other,
        };
        let link = looked
            .with_context(|| format!("cannot look up {name}"))?
            .ok_or_else(|| anyhow!("{name} has disappeared"))?;
        self.learn(side, name, link.index, None);
        Ok(link.index)
    }
}
