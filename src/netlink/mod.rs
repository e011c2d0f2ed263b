//! The only code that speaks netlink: one [`Netlink`] handle per network namespace,
//! opened up front, and typed errors for what the kernel answers.

mod addr;
mod bridge_vlan;
mod child;
mod config;
mod devconf;
mod link;
mod monitor;
mod port;
mod route;
mod socket;
mod tune;

use std::fmt;
use std::os::fd::BorrowedFd;

use anyhow::{Context, Result};
use nix::errno::Errno;
use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_ECHO, NLM_F_EXCL};
use rtnetlink::packet_route::link::LinkMessage;
use rtnetlink::packet_route::RouteNetlinkMessage;

pub use addr::LinkLocal;
pub use bridge_vlan::DEFAULT_PVID;
pub use child::{ChildKind, ChildRequest};
pub use config::LinkConfig;
pub use devconf::IPV4_ARP_NOTIFY;
pub use link::{Link, VethRequest};
pub use monitor::LinkEvents;
pub use route::Route;
pub use socket::Unanswered;

/// A route-netlink connection to one network namespace (see [`socket`]).
#[derive(Clone)]
pub struct Netlink {
    conn: socket::Conn,
}

impl Netlink {
    /// A handle for the namespace this process runs in.
    pub fn current() -> Result<Netlink> {
        Ok(Netlink { conn: socket::Conn::open(None)? })
    }

    /// A handle for the namespace behind `netns` (an open `/proc/PID/ns/net` or
    /// similar), held so that a socket that fails can be opened again there.
    ///
    /// A netlink socket stays bound to the namespace it was created in, so the
    /// thread enters the guest's only for the `socket(2)` call (see `crate::netns`).
    pub fn in_netns(netns: BorrowedFd<'_>) -> Result<Netlink> {
        let held = netns.try_clone_to_owned().context("cannot duplicate the guest's netns fd")?;
        let conn = socket::Conn::open(Some(held)).context("cannot reach the guest's network namespace")?;
        Ok(Netlink { conn })
    }

    /// A handle for this namespace plus its link notifications (RTNLGRP_LINK),
    /// subscribed before this returns, so that nothing after it goes unseen.
    pub fn link_monitor() -> Result<(Netlink, LinkEvents)> {
        let events = LinkEvents::subscribe()?;
        Ok((Netlink::current()?, events))
    }

    /// A change the kernel acknowledges; `flags` beyond NLM_F_REQUEST|NLM_F_ACK.
    async fn change_with(&self, msg: RouteNetlinkMessage, flags: u16) -> Result<()> {
        self.conn.request(msg, flags).map(|_| ())
    }

    /// Create a host link and have the kernel echo it back (NLM_F_ECHO, Linux 6.3 and
    /// later), so that its index (and a veth's peer index) come with the ACK: no
    /// lookup after it. `None` from a kernel that does not echo, or when the link
    /// was made in another namespace (the echo goes to that namespace's sockets).
    async fn create_echoed(&self, msg: LinkMessage) -> Result<Option<Link>> {
        let answers = self.conn.request(RouteNetlinkMessage::NewLink(msg), CREATE | NLM_F_ECHO)?;
        Ok(answers.iter().find_map(|a| match a {
            RouteNetlinkMessage::NewLink(m) => Some(Link::from_message(m)),
            _ => None,
        }))
    }

    /// A request with one answer (a GET by name or index), `None` when the kernel
    /// answers `absent` (made no error: see `socket::Conn::request_unless`).
    async fn get_one_unless(
        &self,
        msg: RouteNetlinkMessage,
        absent: Errno,
    ) -> Result<Option<RouteNetlinkMessage>> {
        Ok(self.conn.request_unless(msg, 0, absent)?.and_then(|a| a.into_iter().next()))
    }

    /// A dump: every answer up to its end.
    async fn dump(&self, msg: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>> {
        self.conn.dump(msg)
    }
}

/// NLM_F_CREATE | NLM_F_EXCL: make a new object, never touch an existing one.
const CREATE: u16 = NLM_F_CREATE | NLM_F_EXCL;

/// An error the kernel answered with, as an errno value that callers can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelError(pub Errno);

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.desc())
    }
}

impl std::error::Error for KernelError {}

/// The errno inside an error chain, if the kernel gave one.
pub fn errno_of(e: &anyhow::Error) -> Option<Errno> {
    e.chain().find_map(|c| c.downcast_ref::<KernelError>()).map(|k| k.0)
}

/// The request's outcome is unknown: it went out, and its answer was lost.
pub fn unanswered(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<Unanswered>().is_some())
}

/// "Already gone" is success when removing something.
pub(crate) fn ignore_gone(r: Result<()>) -> Result<()> {
    match r {
        Err(e)
            if matches!(
                errno_of(&e),
                Some(Errno::ENODEV | Errno::ESRCH | Errno::EADDRNOTAVAIL | Errno::ENOENT)
            ) =>
        {
            Ok(())
        }
        other => other,
    }
}
