//! The VLAN devices (`HOSTIF.VID`) that attaches made for their macvlans, marked
//! [`MADE_VLAN`]: removed by `del` and `gc` once no attachment uses them. Users are
//! known by the records (a macvlan's record names the VLAN device as its HOSTIF)
//! and the intents of runs still under way (one may be about to put a macvlan on it);
//! the macvlans themselves are in the guests' namespaces, where the host cannot
//! list them. Deleting a VLAN device deletes the macvlans on it, so one that any
//! record or intent names is kept.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::Result;

use crate::netlink::{Link, Netlink};
use crate::plan::alias::MADE_VLAN;
use crate::record;

/// The host links that an attach made as VLAN devices, that no record (but those at
/// `leaving`) and no intent names, and that are no `BRIDGE@UPLINK`'s uplink of a
/// bridge with other ports (but the host ends `leaving_ends`, about to go): the
/// records of its veths name the bridge, not the uplink.
pub async fn unused(host: &Netlink, leaving: &[PathBuf], leaving_ends: &[&str]) -> Result<Vec<Link>> {
    let mut used: HashSet<String> = HashSet::new();
    for (path, rec) in record::all()? {
        match rec {
            Ok(r) if !leaving.contains(&path) => {
                used.insert(r.host_if);
            }
            Ok(_) => {}
            // An unreadable record might name any of them: keep them all.
            Err(_) => return Ok(Vec::new()),
        }
    }
    for (_, intent) in crate::intent::all()? {
        match intent {
            Ok(i) if i.run.is_alive() => used.extend(i.host_links.iter().cloned().chain([i.host_if.clone()])),
            // A run that is gone: what it made is `gc`'s to undo (`crate::intent`).
            Ok(_) => {}
            Err(_) => return Ok(Vec::new()),
        }
    }
    let links = host.links().await?;
    let bridged = |l: &Link| {
        let others = |o: &&Link| o.index != l.index && !leaving_ends.contains(&o.name.as_str());
        l.master.is_some_and(|m| links.iter().filter(others).any(|o| o.master == Some(m)))
    };
    Ok(links
        .iter()
        .filter(|l| l.kind.as_deref() == Some("vlan") && l.alias.as_deref() == Some(MADE_VLAN))
        .filter(|l| !used.contains(&l.name) && !bridged(l))
        .cloned()
        .collect())
}
