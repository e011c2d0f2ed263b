//! A GUEST argument opened from async code, and the one guest no verb takes: the
//! host's own namespace.

use anyhow::Result;

use super::Guest;
use crate::{blocking, netns};

/// A Docker name is resolved over the daemon's socket (blocking I/O, ~2.5 ms): on a
/// thread of the runtime's blocking pool, so that a batch's other lines go on meanwhile.
/// `pid:N` and netns paths are one `open`, done in place.
pub async fn lookup(spec: &str) -> Result<Guest> {
    if spec.starts_with("pid:") || super::is_netns_path(spec) {
        return super::resolve(spec);
    }
    let spec = spec.to_string();
    blocking::run("guest resolution", move || super::resolve(&spec)).await
}

/// A guest in the host's own network namespace (a `--net=host` container, `pid:1`)
/// would have the host itself configured as the guest: its default route
/// replaced, an `eth1` added beside its own. The original does that; we refuse.
pub fn not_the_host(guest: Guest) -> Result<Guest> {
    if netns::ours().is_ok_and(|ino| ino == guest.ns_inode) {
        anyhow::bail!("{} is in the host's own network namespace: nothing to attach it to", guest.describe());
    }
    Ok(guest)
}
