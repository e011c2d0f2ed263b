//! The intent of an attach: written (atomically) before its first change, naming
//! every object the run may create or move, so that whatever a run killed at any
//! instant left (OOM, a runtime's timeout, `kill -9`) is found and undone by the
//! next run that looks: a re-run of the same attachment, `del`, `gc`, CNI DEL.
//! The kernel cannot tell: a link is born without the attachment's mark (it
//! ignores IFLA_IFALIAS in the request that creates it), and a `--direct-phys` NIC
//! in a guest has no record of what it was on the host until the attach ends.
//!
//! `$PIPEWORK_RUN_DIR/intents/NSINODE-CONTAINER_IF.json`, beside the records. A run
//! that ends well writes its record, then removes its intent; one that undoes
//! itself removes it; one that dies leaves it, with its pid, start time and boot,
//! which tell a dead run's intent (to undo) from a live one's (to leave alone).

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::dhcp::kept::Kept;
use crate::plan::remove::SavedNic;
pub use crate::process::Run;
use crate::record::{self, SavedRoute};

pub const VERSION: u32 = 1;

/// One attach under way, or cut short.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub version: u32,
    pub run: Run,
    /// The mark's `guest=` (`docker:ID`, `pid:N`, `netns:PATH`).
    pub guest: String,
    pub ns: u64,
    pub container_if: String,
    /// HOSTIF as the command named it.
    pub host_if: String,
    /// Who asked, when the guest's namespace alone cannot say it again: a CNI ADD's
    /// `cni:NETWORK/CONTAINERID/IFNAME`, which its DEL gives with `CNI_NETNS` gone.
    #[serde(default)]
    pub owner: Option<String>,
    /// Host links the run creates (veth host ends, VLAN devices): the run's own
    /// wherever found, with or without a mark.
    #[serde(default)]
    pub host_links: Vec<String>,
    /// Host links that were down and the run sets up (a macvlan's NIC): down again.
    #[serde(default)]
    pub set_up: Vec<String>,
    /// Bridges the run creates (Linux ones; Open vSwitch ones in `ovs_bridges`).
    #[serde(default)]
    pub bridges: Vec<String>,
    #[serde(default)]
    pub ovs_bridges: Vec<String>,
    /// Open vSwitch ports the run adds: (bridge, port).
    #[serde(default)]
    pub ovs_ports: Vec<(String, String)>,
    /// Links the run creates in the guest, temporary names included.
    #[serde(default)]
    pub guest_links: Vec<String>,
    /// A `--direct-phys` NIC the run moves into the guest, as it is on the host
    /// (`guest_index`: its index on the host, which a move keeps where it is free),
    /// and its name in the guest.
    #[serde(default)]
    pub nic: Option<MovedNic>,
    /// The guest's default routes the run deletes to put its own in.
    #[serde(default)]
    pub replaced_routes: Vec<SavedRoute>,
    /// The DHCP clients the run has left running so far (`-f` forms), added as
    /// they start.
    #[serde(default)]
    pub dhcp: Vec<Kept>,
    /// `--host-shim`: the shim the run makes (with the mark it gives it, which says
    /// what moves from the parent), if it makes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shim: Option<IntendedShim>,
    /// `--host-shim`: the host routes the run adds, to the guest through its shim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_routes: Vec<HostRoute>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntendedShim {
    pub name: String,
    pub mark: String,
}

/// A host route to a shimmed guest: `ip route add DST dev DEV`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRoute {
    pub dst: ipnetwork::IpNetwork,
    pub dev: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovedNic {
    pub saved: SavedNic,
    pub new_name: String,
    /// The MAC the run gives it (`--mac`), if any.
    pub new_mac: Option<String>,
}

/// `$PIPEWORK_RUN_DIR/intents`.
pub fn dir() -> PathBuf {
    record::dir().with_file_name("intents")
}

pub fn path(ns: u64, container_if: &str) -> PathBuf {
    dir().join(format!("{ns}-{container_if}.json"))
}

impl Intent {
    /// Write it, whole or not at all, before the run's first change.
    pub fn save(&self) -> Result<PathBuf> {
        let path = path(self.ns, &self.container_if);
        record::write_atomically(&path, self).context("cannot write the attach's intent")?;
        Ok(path)
    }

    /// The run is over (done, or undone): its intent goes.
    pub fn remove(&self) -> Result<()> {
        record::remove_at(&path(self.ns, &self.container_if)).map(drop)
    }

    /// What `ls` and `check` say of it: `attaching` (its run is alive) or
    /// `interrupted` (its run is over, cut short).
    pub fn state(&self) -> &'static str {
        if self.run.is_alive() {
            "attaching"
        } else {
            "interrupted"
        }
    }

    /// Its run wrote the attachment's record and was killed before it removed its
    /// intent: the attachment is whole, nothing to undo.
    pub fn completed(&self) -> bool {
        matches!(record::load(self.ns, &self.container_if), Ok(Some(r)) if r.run.as_ref() == Some(&self.run))
    }

    /// `an attach of eth1 in pid:N by pid M`.
    pub fn describe(&self) -> String {
        format!("an attach of {} in {} by pid {}", self.container_if, self.guest, self.run.process.pid)
    }
}

/// The intent of that attachment, if there is one.
pub fn load(ns: u64, container_if: &str) -> Result<Option<Intent>> {
    record::read_json(&path(ns, container_if))
}

/// Every intent on this host; none when the directory is not there (the common
/// case: one failed `readdir` is all an attach pays when nothing was cut short).
pub fn all() -> Result<Vec<(PathBuf, Result<Intent>)>> {
    record::all_json(&dir())
}

/// `owner` for a CNI attachment.
pub fn cni_owner(network: &str, container_id: &str, ifname: &str) -> String {
    format!("cni:{network}/{container_id}/{ifname}")
}

/// The intents of runs that are over (killed), which a later run may undo.
pub fn interrupted() -> Result<Vec<Intent>> {
    Ok(all()?.into_iter().filter_map(|(_, i)| i.ok()).filter(|i| !i.run.is_alive()).collect())
}
