//! `pipework --wait [-i IF] [--timeout SECONDS]`, run inside a container: return as
//! soon as IF exists, is up and has carrier. Event-driven over route netlink (link
//! notifications), so it needs no `ip` binary and no sysfs, and costs nothing while
//! it waits.

use std::cell::Cell;
use std::fmt;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures::{StreamExt, TryStreamExt};
use nix::errno::Errno;
use rtnetlink::packet_route::link::{LinkFlags, LinkMessage};
use rtnetlink::{Handle, MulticastGroup};

use crate::cli::IfName;
use crate::netlink::{errno_of, kernel};
use crate::Outcome;

/// How far along the interface is; each state names what it still lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Missing,
    Down,
    NoCarrier,
    Ready,
}

impl State {
    fn of(msg: &LinkMessage) -> State {
        let flags = msg.header.flags;
        if !flags.contains(LinkFlags::Up) {
            State::Down
        } else if !flags.contains(LinkFlags::LowerUp) {
            State::NoCarrier
        } else {
            State::Ready
        }
    }
}

/// The end of "waiting for eth1 ...".
impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Missing => "to exist",
            State::Down => "to be up",
            State::NoCarrier => "to have carrier",
            State::Ready => "(ready)",
        })
    }
}

/// Wait for `ifname`; with a timeout, fail naming what is still missing.
pub async fn run(ifname: &IfName, timeout: Option<Duration>) -> Outcome {
    let seen = Cell::new(State::Missing);
    let waiting = until_ready(ifname.as_str(), &seen);
    let result = match timeout {
        None => waiting.await,
        Some(limit) => match tokio::time::timeout(limit, waiting).await {
            Ok(r) => r,
            Err(_) => {
                Err(anyhow!("timed out after {} s waiting for {ifname} {}", limit.as_secs_f64(), seen.get()))
            }
        },
    };
    match result {
        Ok(()) => Outcome::Done(vec![]),
        Err(e) => Outcome::failed(e),
    }
}

/// Resolves once the link is ready; `seen` holds the last state observed.
async fn until_ready(ifname: &str, seen: &Cell<State>) -> Result<()> {
    // Subscribe before the first look: a change between the look and the
    // subscription would otherwise go unseen and the wait would never end.
    let (conn, handle, mut events) = rtnetlink::new_multicast_connection(&[MulticastGroup::Link])
        .context("cannot open a netlink socket")?;
    tokio::spawn(conn);
    loop {
        let state = state_of(&handle, ifname).await?;
        seen.set(state);
        if state == State::Ready {
            return Ok(());
        }
        if events.next().await.is_none() {
            bail!("the netlink socket closed while waiting for {ifname}");
        }
        // A burst of notifications (create, rename, up, carrier) needs one look, not one each.
        while events.try_recv().is_ok() {}
    }
}

/// One GETLINK by name: the kernel answers ENODEV while there is no such link.
async fn state_of(handle: &Handle, ifname: &str) -> Result<State> {
    let mut links = handle.link().get().match_name(ifname.to_string()).execute();
    match links.try_next().await.map_err(kernel) {
        Ok(Some(msg)) => Ok(State::of(&msg)),
        Ok(None) => Ok(State::Missing),
        Err(e) if errno_of(&e) == Some(Errno::ENODEV) => Ok(State::Missing),
        Err(e) => Err(e.context(format!("cannot read link {ifname}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_flags(flags: LinkFlags) -> LinkMessage {
        let mut msg = LinkMessage::default();
        msg.header.flags = flags;
        msg
    }

    #[test]
    fn states_from_flags() {
        assert_eq!(State::of(&with_flags(LinkFlags::empty())), State::Down);
        // Carrier without up is possible for a moment (a veth whose peer is up): still down.
        assert_eq!(State::of(&with_flags(LinkFlags::LowerUp)), State::Down);
        assert_eq!(State::of(&with_flags(LinkFlags::Up)), State::NoCarrier);
        assert_eq!(State::of(&with_flags(LinkFlags::Up | LinkFlags::LowerUp)), State::Ready);
    }

    #[test]
    fn messages_name_what_is_missing() {
        assert_eq!(State::Missing.to_string(), "to exist");
        assert_eq!(State::Down.to_string(), "to be up");
        assert_eq!(State::NoCarrier.to_string(), "to have carrier");
    }
}
