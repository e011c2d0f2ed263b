//! `pipework --wait [-i IF] [--timeout SECONDS]`, run inside a container: return as
//! soon as IF exists, is up and has carrier. Event-driven over route netlink (link
//! notifications), so it needs no `ip` binary and no sysfs, and costs nothing while
//! it waits.

use std::cell::Cell;
use std::fmt;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};

use crate::model::IfName;
use crate::netlink::{Link, Netlink};
use crate::report::Outcome;

/// How far along the interface is; each state names what it still lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Missing,
    Down,
    NoCarrier,
    Ready,
}

impl State {
    fn of(link: Option<&Link>) -> State {
        match link {
            None => State::Missing,
            Some(l) if !l.up => State::Down,
            Some(l) if !l.carrier => State::NoCarrier,
            Some(_) => State::Ready,
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
    let (nl, events) = Netlink::link_monitor()?;
    loop {
        let link = nl.link_by_name(ifname).await.with_context(|| format!("cannot read link {ifname}"))?;
        let state = State::of(link.as_ref());
        seen.set(state);
        if state == State::Ready {
            return Ok(());
        }
        events.next().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(up: bool, carrier: bool) -> Link {
        Link { up, carrier, ..Link::default() }
    }

    #[test]
    fn states_from_flags() {
        assert_eq!(State::of(None), State::Missing);
        assert_eq!(State::of(Some(&link(false, false))), State::Down);
        // Carrier without up is possible for a moment (a veth whose peer is up): still down.
        assert_eq!(State::of(Some(&link(false, true))), State::Down);
        assert_eq!(State::of(Some(&link(true, false))), State::NoCarrier);
        assert_eq!(State::of(Some(&link(true, true))), State::Ready);
    }

    #[test]
    fn messages_name_what_is_missing() {
        assert_eq!(State::Missing.to_string(), "to exist");
        assert_eq!(State::Down.to_string(), "to be up");
        assert_eq!(State::NoCarrier.to_string(), "to have carrier");
    }
}
