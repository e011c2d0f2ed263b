//! One route-netlink socket, spoken to one request at a time, with every outcome
//! known. The kernel handles a route-netlink request inside sendmsg(2) and has
//! queued its whole answer by the time the call returns, so a plain blocking socket
//! waits for nothing; what it buys is control:
//!
//! - a request succeeds only on the kernel's ACK (or a dump's DONE), never because an
//!   answer stream ended: a send or receive error fails that request with its errno;
//! - a receive error after a good send leaves the outcome unknown (the kernel may
//!   have made the change), and says so ([`Unanswered`]), so that the caller keeps
//!   the undo it recorded beforehand;
//! - after any error the socket is closed and a new one opened in the same namespace
//!   (entered by the fd held for it) for the next request: a broken socket is never
//!   trusted again, and the undo runs on a working one;
//! - answers to an earlier request (one cut short) are told apart by sequence number.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use nix::errno::Errno;
use rtnetlink::packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR,
    NLM_F_REQUEST,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::KernelError;

/// How long an answer may take: the kernel answers at once, so this only bounds a
/// lost one (a receive queue that overflowed), which would otherwise hang the run.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Large enough for any datagram of a dump (the kernel fills at most 32 KiB).
const BUFFER: usize = 64 * 1024;

/// The request went out but its answer could not be read: the kernel may or may not
/// have done it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unanswered(pub Errno);

impl std::fmt::Display for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no answer from the kernel: {}", self.0.desc())
    }
}

impl std::error::Error for Unanswered {}

/// A route-netlink connection to one namespace.
#[derive(Clone)]
pub struct Conn {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    /// `None` after an error, until the next request opens a new one.
    socket: Option<Socket>,
    seq: u32,
    /// The namespace to open sockets in; `None` for the one this thread is in.
    netns: Option<OwnedFd>,
}

impl Conn {
    /// A connection to the namespace behind `netns` (or this thread's own), opened now
    /// so that a namespace we cannot reach fails before anything changes.
    pub fn open(netns: Option<OwnedFd>) -> Result<Conn> {
        let socket = open_socket(netns.as_ref())?;
        Ok(Conn { inner: Arc::new(Mutex::new(Inner { socket: Some(socket), seq: 0, netns })) })
    }

    /// Send `msg` with `flags` (NLM_F_REQUEST and NLM_F_ACK added); the kernel's
    /// answers, in order, up to its ACK.
    pub fn request(&self, msg: RouteNetlinkMessage, flags: u16) -> Result<Vec<RouteNetlinkMessage>> {
        Ok(self.exchange(msg, flags | NLM_F_ACK, false)?)
    }

    /// [`Self::request`], with the kernel's `absent` (ENODEV for a lookup) as `None`:
    /// an expected answer, never made an error (an `anyhow::Error` captures a
    /// backtrace where RUST_BACKTRACE is set, which costs more than the request).
    pub fn request_unless(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
        absent: Errno,
    ) -> Result<Option<Vec<RouteNetlinkMessage>>> {
        match self.exchange(msg, flags | NLM_F_ACK, false) {
            Ok(answers) => Ok(Some(answers)),
            Err(Failed::Kernel(errno)) if errno == absent => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A dump (NLM_F_DUMP): every answer up to its end. One the kernel interrupted
    /// (what it lists changed meanwhile) is asked for again, once: a partial list
    /// would let a rollback take a bridge in use for an unused one.
    pub fn dump(&self, msg: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>> {
        match self.exchange(msg.clone(), NLM_F_DUMP, true) {
            Err(Failed::Other(e)) if e.downcast_ref::<DumpInterrupted>().is_some() => {
                Ok(self.exchange(msg, NLM_F_DUMP, true)?)
            }
            other => Ok(other?),
        }
    }

    fn exchange(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
        dump: bool,
    ) -> Result<Vec<RouteNetlinkMessage>, Failed> {
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let result = inner.exchange(msg, flags, dump);
        // Broken or not, a socket that failed is not used again.
        if let Err(Failed::Other(_)) = &result {
            inner.socket = None;
        }
        result
    }
}

/// Why a request failed: the kernel said no (an errno), or anything else (the
/// socket, a lost or garbled answer), which makes the socket one not to trust.
enum Failed {
    Kernel(Errno),
    Other(anyhow::Error),
}

impl From<Failed> for anyhow::Error {
    fn from(f: Failed) -> anyhow::Error {
        match f {
            Failed::Kernel(errno) => KernelError(errno).into(),
            Failed::Other(e) => e,
        }
    }
}

impl From<anyhow::Error> for Failed {
    fn from(e: anyhow::Error) -> Failed {
        Failed::Other(e)
    }
}

impl Inner {
    fn exchange(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        dump: bool,
    ) -> Result<Vec<RouteNetlinkMessage>, Failed> {
        if self.socket.is_none() {
            self.socket = Some(open_socket(self.netns.as_ref()).context("cannot reopen the netlink socket")?);
        }
        let socket = self.socket.as_ref().expect("opened above");
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        req.finalize();
        let mut buf = vec![0u8; req.buffer_len()];
        req.serialize(&mut buf);
        let sent = loop {
            match socket.send(&buf, 0) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match sent {
            Ok(n) if n == buf.len() => {}
            Ok(n) => {
                return Err(anyhow!("netlink request cut short ({n} of {} bytes sent)", buf.len()).into())
            }
            Err(e) => {
                let e = anyhow::Error::new(SocketError(io_errno(&e)));
                return Err(e.context("cannot send the netlink request").into());
            }
        }
        receive(socket, seq, dump)
    }
}

/// Read answers to request `seq` until its ACK (or, for a dump, DONE). Once the
/// request has gone out the kernel may have acted on it: an answer that cannot be
/// read, or makes no sense, is [`Unanswered`]; only the kernel's own error is a sure
/// failure. A dump the kernel says it interrupted (its data changed meanwhile) is
/// [`DumpInterrupted`], for the caller to ask again.
fn receive(socket: &Socket, seq: u32, dump: bool) -> Result<Vec<RouteNetlinkMessage>, Failed> {
    let lost = |errno: Errno| Failed::Other(anyhow::Error::new(Unanswered(errno)));
    let mut answers = Vec::new();
    let mut interrupted = false;
    let mut buf: Vec<u8> = Vec::with_capacity(BUFFER);
    loop {
        buf.clear();
        let n = recv_retrying(socket, &mut buf).map_err(|e| lost(io_errno(&e)))?;
        if n > buf.len() {
            return Err(lost(Errno::EMSGSIZE));
        }
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let header = NetlinkBuffer::new_checked(rest).map_err(|_| lost(Errno::EBADMSG))?;
            let (len, this_seq, flags) = (header.length() as usize, header.sequence_number(), header.flags());
            let this = &rest[..len.min(rest.len())];
            // Messages are padded to 4 bytes.
            rest = &rest[((len + 3) & !3).min(rest.len())..];
            if this_seq != seq {
                // What is left of an earlier request that failed half-way: not read.
                continue;
            }
            interrupted |= flags & NLM_F_DUMP_INTR != 0;
            let lean = super::link::lean(this);
            let this = lean.as_deref().unwrap_or(this);
            let msg =
                NetlinkMessage::<RouteNetlinkMessage>::deserialize(this).map_err(|_| lost(Errno::EBADMSG))?;
            match msg.payload {
                NetlinkPayload::Error(e) if e.raw_code() == 0 => return Ok(answers),
                NetlinkPayload::Error(e) => return Err(Failed::Kernel(Errno::from_raw(-e.raw_code()))),
                // A dump that failed part-way says so in its DONE.
                NetlinkPayload::Done(d) if dump && d.code < 0 => {
                    return Err(Failed::Kernel(Errno::from_raw(-d.code)))
                }
                NetlinkPayload::Done(_) if dump && interrupted => {
                    return Err(Failed::Other(DumpInterrupted.into()))
                }
                NetlinkPayload::Done(_) if dump => return Ok(answers),
                NetlinkPayload::InnerMessage(m) => answers.push(m),
                NetlinkPayload::Overrun(_) => return Err(lost(Errno::ENOBUFS)),
                _ => {}
            }
        }
    }
}

/// recv(2), again after a signal handler ran (SO_RCVTIMEO keeps the kernel from
/// restarting it by itself).
fn recv_retrying(socket: &Socket, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    loop {
        match socket.recv(buf, nix::libc::MSG_TRUNC) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.clear(),
            other => return other,
        }
    }
}

/// The kernel interrupted a dump because what it lists changed meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DumpInterrupted;

impl std::fmt::Display for DumpInterrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the kernel's list changed while it was read")
    }
}

impl std::error::Error for DumpInterrupted {}

/// A blocking route-netlink socket in `netns` (or this thread's namespace): the
/// thread enters the namespace only for the `socket(2)` call (see `crate::netns`).
fn open_socket(netns: Option<&OwnedFd>) -> Result<Socket> {
    let make = || -> Result<Socket> {
        let mut socket =
            Socket::new(NETLINK_ROUTE).map_err(errno_error).context("cannot open a netlink socket")?;
        socket.bind_auto().map_err(errno_error).context("cannot bind the netlink socket")?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(errno_error)
            .context("cannot connect the netlink socket")?;
        Ok(socket)
    };
    let socket = match netns {
        Some(fd) => crate::netns::run_in(fd.as_fd(), make)?,
        None => make()?,
    };
    // Extended acks make the kernel say which attribute it refused; best effort.
    let _ = socket.set_ext_ack(true);
    let timeout = nix::sys::time::TimeVal::new(ANSWER_TIMEOUT.as_secs() as i64, 0);
    nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::ReceiveTimeout, &timeout)
        .map_err(|e| anyhow::Error::new(SocketError(e)))
        .context("cannot set the netlink socket's timeout")?;
    Ok(socket)
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO))
}

fn errno_error(e: std::io::Error) -> anyhow::Error {
    anyhow::Error::new(SocketError(io_errno(&e)))
}

/// A system call on the socket failed (the request, if any, never reached the
/// kernel): not the kernel's answer, so [`super::errno_of`] does not read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketError(pub Errno);

impl std::fmt::Display for SocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.desc())
    }
}

impl std::error::Error for SocketError {}
