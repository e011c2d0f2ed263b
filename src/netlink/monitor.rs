//! Link notifications (RTNLGRP_LINK) for `--wait`: a socket of our own, subscribed
//! before the first look, that wakes the runtime when the kernel says a link changed.
//! Only their arrival matters: the caller looks again.

use std::os::fd::AsRawFd;

use anyhow::{Context as _, Result};
use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use tokio::io::unix::AsyncFd;

/// RTNLGRP_LINK's bit in the legacy group mask.
const RTMGRP_LINK: u32 = 1;

pub struct LinkEvents {
    socket: AsyncFd<Socket>,
}

impl LinkEvents {
    /// Subscribed when this returns: nothing after it goes unseen.
    pub fn subscribe() -> Result<LinkEvents> {
        let mut socket = Socket::new(NETLINK_ROUTE).context("cannot open a netlink socket")?;
        socket.bind(&SocketAddr::new(0, RTMGRP_LINK)).context("cannot subscribe to link notifications")?;
        socket.set_non_blocking(true).context("cannot make the netlink socket non-blocking")?;
        // SAFETY: the AsyncFd owns the socket, whose fd stays open and the same until
        // it is dropped with it.
        let socket = unsafe { AsyncFd::register(socket) }
            .map_err(|e| e.into_parts().1)
            .context("cannot watch the netlink socket")?;
        Ok(LinkEvents { socket })
    }

    /// Wait for one or more notifications, and take them all: a burst (create,
    /// rename, up, carrier) needs one look, not one each. A receive queue that
    /// overflowed (ENOBUFS) counts as a notification: something changed.
    pub async fn next(&self) -> Result<()> {
        let mut guard = self.socket.readable().await.context("cannot wait for link notifications")?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: recv(2) writes at most `buf.len()` bytes into `buf`.
            let n = unsafe {
                nix::libc::recv(self.socket.get_ref().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0)
            };
            if n >= 0 {
                continue;
            }
            let e = std::io::Error::last_os_error();
            match e.kind() {
                std::io::ErrorKind::WouldBlock => {
                    guard.clear_ready();
                    return Ok(());
                }
                _ if e.raw_os_error() == Some(nix::libc::ENOBUFS) => continue,
                _ => return Err(e).context("cannot read link notifications"),
            }
        }
    }
}
