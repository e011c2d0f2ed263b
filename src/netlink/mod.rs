//! The only code that speaks netlink: one [`Netlink`] handle per network namespace,
//! opened up front, and typed errors for what the kernel answers.

mod addr;
mod child;
mod config;
mod devconf;
mod link;
mod route;

use std::fmt;
use std::os::fd::{BorrowedFd, FromRawFd, IntoRawFd};

use anyhow::{Context, Result};
use nix::errno::Errno;
use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, TokioSocket};
use rtnetlink::Handle;

pub use child::{ChildKind, ChildRequest};
pub use config::LinkConfig;
pub use devconf::IPV4_ARP_NOTIFY;
pub use link::{Link, VethRequest};
pub use route::Route;

/// Notifications from [`Netlink::link_monitor`]; only their arrival matters.
pub type LinkEvents = futures::channel::mpsc::UnboundedReceiver<(
    rtnetlink::packet_core::NetlinkMessage<rtnetlink::packet_route::RouteNetlinkMessage>,
    rtnetlink::sys::SocketAddr,
)>;

/// A route-netlink socket bound to one network namespace.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// A handle for the namespace this process runs in. Needs a tokio runtime.
    pub fn current() -> Result<Netlink> {
        let socket = Socket::new(NETLINK_ROUTE).context("cannot open a netlink socket")?;
        Ok(Self::from_socket(socket))
    }

    /// A handle for the namespace behind `netns` (an open `/proc/PID/ns/net` or similar).
    ///
    /// A netlink socket stays bound to the namespace it was created in, so the
    /// thread enters the guest's only for the `socket(2)` call (see `crate::netns`).
    pub fn in_netns(netns: BorrowedFd<'_>) -> Result<Netlink> {
        let socket = crate::netns::run_in(netns, || {
            Socket::new(NETLINK_ROUTE).context("cannot open a netlink socket in the guest")
        })?;
        Ok(Self::from_socket(socket))
    }

    /// A handle for this namespace plus its link notifications (RTNLGRP_LINK),
    /// subscribed before this returns, so that nothing after it goes unseen.
    pub fn link_monitor() -> Result<(Netlink, LinkEvents)> {
        let (conn, handle, events) = rtnetlink::new_multicast_connection(&[rtnetlink::MulticastGroup::Link])
            .context("cannot open a netlink socket")?;
        tokio::spawn(conn);
        Ok((Netlink { handle }, events))
    }

    fn from_socket(socket: Socket) -> Netlink {
        // Extended acks make the kernel say which attribute it refused; best effort.
        let _ = socket.set_ext_ack(true);
        let fd = socket.into_raw_fd();
        // SAFETY: `fd` was just released by `into_raw_fd`, so the TokioSocket is its sole owner.
        let socket = unsafe { TokioSocket::from_raw_fd(fd) };
        let (conn, handle, _) = rtnetlink::from_socket(socket);
        tokio::spawn(conn);
        Netlink { handle }
    }
}

/// An error the kernel answered with, as an errno value that callers can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelError(pub Errno);

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.desc())
    }
}

impl std::error::Error for KernelError {}

/// Turn an rtnetlink error into one whose errno can be read back with [`errno_of`].
pub(crate) fn kernel(e: rtnetlink::Error) -> anyhow::Error {
    match e {
        rtnetlink::Error::NetlinkError(msg) if msg.raw_code() != 0 => {
            anyhow::Error::new(KernelError(Errno::from_raw(-msg.raw_code())))
        }
        other => anyhow::Error::msg(other.to_string()),
    }
}

/// The errno inside an error chain, if the kernel gave one.
pub fn errno_of(e: &anyhow::Error) -> Option<Errno> {
    e.chain().find_map(|c| c.downcast_ref::<KernelError>()).map(|k| k.0)
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
