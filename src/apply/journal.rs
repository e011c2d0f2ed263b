//! The undo journal: each applied step records its inverse here, before or right
//! after its change; on failure `super::rollback` runs the inverses in reverse.

use anyhow::Result;
use ipnetwork::IpNetwork;

use crate::dhcp::Kept;
use crate::netlink::{Link, LinkConfig, Route};

/// The inverse of one applied step.
#[derive(Debug)]
pub enum Undo {
    /// A bridge we created; kept if someone else has plugged a port into it since.
    /// `index: None`: made, but its index was never read (found by name then).
    DeleteBridgeIfUnused {
        index: Option<u32>,
        name: String,
    },
    /// A host link we created (deleting a veth end deletes the pair); `index` as above.
    DeleteHostLink {
        index: Option<u32>,
        name: String,
    },
    /// An Open vSwitch bridge we created; kept if it has ports (another run's).
    OvsDeleteBridgeIfUnused {
        name: String,
    },
    /// A port we added to an Open vSwitch bridge.
    OvsDeletePort {
        bridge: String,
        port: String,
    },
    /// A bridge whose VLAN filtering we turned on.
    VlanFilteringOff {
        index: u32,
        name: String,
    },
    /// An uplink we made a port of a bridge (`BRIDGE@UPLINK`): released again.
    Release {
        index: u32,
        name: String,
    },
    /// A host link we set up that was down.
    SetHostDown {
        index: u32,
        name: String,
    },
    /// A link we created inside the guest; `index` as above.
    DeleteGuestLink {
        index: Option<u32>,
        name: String,
    },
    /// A host link we moved into the guest (`--direct-phys`), with what it had:
    /// the link as it was, and its addresses and routes; and its own
    /// `disable_ipv6` on the host, which a move resets to the namespace's default.
    MoveBack {
        index: u32,
        nic: Box<(Link, LinkConfig)>,
        disable_ipv6: Option<String>,
    },
    /// A guest interface's `disable_ipv6` we set to 0: back to `value`.
    /// A guest sysctl file we changed (`/proc/sys/net/ipv6/conf/DEV/KEY`): back to `value`.
    RestoreSysctl {
        path: String,
        value: String,
    },
    RestoreIpv6Off {
        dev: String,
        value: String,
    },
    DeleteAddress {
        index: u32,
        addr: IpNetwork,
    },
    /// A guest route we deleted: put back as it was.
    RestoreRoute(Route),
    DeleteRoute(Route),
    /// An address a run moved from a host link to its shim: back on the link.
    PutAddressBack {
        dev: String,
        moved: crate::plan::shim::Moved,
    },
    /// The routes a shim's parent had, which the kernel flushed with its address:
    /// back on the parent (after its address).
    PutRoutesBack {
        dev: String,
        routes: Vec<crate::plan::shim::MovedRoute>,
    },
    /// A host route a run added (to a shimmed guest).
    DeleteHostRoute(Route),
    /// A guest link's MTU we changed (a lease's option 26): back to `mtu`.
    SetGuestMtu {
        index: u32,
        mtu: u32,
    },
    /// The guest's resolv.conf we rewrote (`dhcp4:dns`): its saved original back.
    RestoreResolvConf {
        pid: u32,
        ns: u64,
        container_if: String,
    },
    /// A DHCP client left running to renew its lease (`-f` forms).
    StopDhcp(Kept),
}

/// Applied steps' inverses, newest last. Async undo cannot run in `Drop`, so the
/// caller must end every journal with [`Journal::commit`] or `super::rollback`;
/// `apply` is the one place that does.
#[derive(Debug, Default)]
#[must_use]
pub struct Journal {
    undos: Vec<Undo>,
}

impl Journal {
    pub fn push(&mut self, undo: Undo) {
        self.undos.push(undo);
    }

    /// Make a change with its undo recorded first: the undo stays when the change
    /// succeeded, and when its outcome is unknown (the kernel's answer was lost, so
    /// the change may be made); it goes when the change surely failed. Every undo
    /// tolerates finding its change not made.
    pub async fn attempt(
        &mut self,
        undo: Undo,
        change: impl std::future::Future<Output = Result<()>>,
    ) -> Result<()> {
        self.undos.push(undo);
        let result = change.await;
        if let Err(e) = &result {
            if !crate::netlink::unanswered(e) {
                self.undos.pop();
            }
        }
        result
    }

    /// Keep everything; hand back what a later `del` must know and the kernel
    /// cannot say (the DHCP clients left running, a NIC's saved configuration).
    pub fn commit(mut self) -> super::Applied {
        let mut applied = super::Applied::default();
        for undo in self.undos.drain(..) {
            match undo {
                Undo::StopDhcp(kept) => applied.running.push(kept),
                Undo::MoveBack { index, nic, disable_ipv6 } => {
                    let (nic, config) = *nic;
                    applied.moved = Some(super::Moved { index, nic, config, disable_ipv6 });
                }
                _ => {}
            }
        }
        applied
    }

    /// The newest undo, taken off the journal (the rollback's, in `super::rollback`).
    pub fn pop(&mut self) -> Option<Undo> {
        self.undos.pop()
    }
}
