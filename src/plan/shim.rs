//! `--host-shim`: the host reaches its macvlan guests. The kernel passes nothing
//! between a macvlan and its parent, so the host gets a macvlan of its own (bridge
//! mode) on the guests' parent, a sibling of theirs: the shim. One per parent, shared
//! by every shimmed guest of it; the parent's address in the guest's subnet moves to
//! it (or it gets `--host-shim-addr`), and each guest gets a host route through it
//! (`/32`, `/128`). Its mark, in its alias, names its parent and what moved from the
//! parent, so that whoever removes it with its last guest puts that back.

use std::net::IpAddr;

use anyhow::{bail, Result};
use ipnetwork::IpNetwork;

pub use super::shim_facts::{PendingShim, ShimFacts};
pub use super::step::Moved;
use super::{HostFacts, Step};
use crate::model::{Attach, IpSpec, MacvlanMode, IFNAME_MAX};
use crate::netlink::{Link, Route};

/// The alias of every shim pipework makes: `pipework-shim parent=eth2 moved=10.0.0.1/24~10.0.0.255`.
/// Not the attachments' `pipework:` mark: a shim is no attachment (`ls` and `del`
/// look for those).
pub const MARK: &str = "pipework-shim";

/// What a shim's mark says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShimMark {
    pub parent: String,
    /// The parent's addresses now on the shim, with their IPv4 broadcast.
    pub moved: Vec<Moved>,
    /// The parent's routes that the kernel flushed with its moved address (the
    /// host's default route among them), now through the shim: back on the parent
    /// with the address. Written into the mark before the address leaves the parent.
    pub routes: Vec<MovedRoute>,
}

/// A route through a shim's parent, as a mark carries it: `route=DST>GATEWAY>METRIC>PROTO`
/// (an on-link route has no GATEWAY; no METRIC is none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MovedRoute {
    pub dst: IpNetwork,
    pub gateway: Option<std::net::IpAddr>,
    pub metric: Option<u32>,
    pub protocol: u8,
}

impl MovedRoute {
    pub fn of(r: &Route) -> MovedRoute {
        MovedRoute { dst: r.dst, gateway: r.gateway, metric: r.metric(), protocol: r.protocol() }
    }

    /// The same route through the link `index` (the shim, or the parent again).
    pub fn on(&self, index: u32) -> Result<Route> {
        Ok(Route::new(self.dst, self.gateway, index)?
            .with_metric_and_protocol(self.metric, Some(self.protocol)))
    }
}

impl std::fmt::Display for MovedRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let gw = self.gateway.map(|g| g.to_string()).unwrap_or_default();
        let metric = self.metric.map(|m| m.to_string()).unwrap_or_default();
        write!(f, "{}>{gw}>{metric}>{}", self.dst, self.protocol)
    }
}

impl std::str::FromStr for MovedRoute {
    type Err = ();
    fn from_str(s: &str) -> std::result::Result<MovedRoute, ()> {
        let mut parts = s.split('>');
        let mut next = || parts.next().ok_or(());
        let dst = next()?.parse().map_err(drop)?;
        let gateway = match next()? {
            "" => None,
            g => Some(g.parse().map_err(drop)?),
        };
        let metric = match next()? {
            "" => None,
            m => Some(m.parse().map_err(drop)?),
        };
        let protocol = next()?.parse().map_err(drop)?;
        Ok(MovedRoute { dst, gateway, metric, protocol })
    }
}

impl std::fmt::Display for ShimMark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{MARK} parent={}", self.parent)?;
        if !self.moved.is_empty() {
            let moved: Vec<String> = self.moved.iter().map(Moved::to_string).collect();
            write!(f, " moved={}", moved.join(","))?;
        }
        for r in &self.routes {
            write!(f, " route={r}")?;
        }
        Ok(())
    }
}

impl ShimMark {
    /// `None`: no shim mark (the link is not pipework's shim).
    pub fn parse(text: &str) -> Option<ShimMark> {
        let rest = text.strip_prefix(MARK)?.strip_prefix(' ')?;
        let mut mark = ShimMark::default();
        for word in rest.split(' ') {
            match word.split_once('=')? {
                ("parent", p) => mark.parent = p.to_string(),
                ("route", r) => mark.routes.push(r.parse().ok()?),
                ("moved", list) => {
                    for m in list.split(',') {
                        let (addr, broadcast) = match m.split_once('~') {
                            Some((a, b)) => (a, Some(b.parse().ok()?)),
                            None => (m, None),
                        };
                        mark.moved.push(Moved { addr: addr.parse().ok()?, broadcast });
                    }
                }
                _ => return None,
            }
        }
        (!mark.parent.is_empty()).then_some(mark)
    }

    /// The mark of `link`, if it is a shim pipework made.
    pub fn of(link: &Link) -> Option<ShimMark> {
        link.alias.as_deref().and_then(ShimMark::parse).filter(|_| link.kind.as_deref() == Some("macvlan"))
    }
}

/// `pwshim-PARENT`; for a PARENT too long for that (over 8 bytes), `pwshim-` and
/// 8 hex digits of a hash of PARENT, which a re-run and every other guest of the
/// same parent compute alike.
pub fn default_name(parent: &str) -> String {
    let name = format!("pwshim-{parent}");
    if name.len() <= IFNAME_MAX {
        return name;
    }
    // FNV-1a: stable across builds and runs, unlike std's hashers.
    let hash = parent.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    format!("pwshim-{hash:08x}")
}

/// The link the guest's macvlan (and the shim) goes on: HOSTIF, or `HOSTIF.VID`.
pub fn parent_name(req: &Attach, nic: &Link) -> String {
    match &req.vlan {
        Some(v) => format!("{}.{}", nic.name, v.as_str()),
        None => nic.name.clone(),
    }
}

/// The shim's name for a request with `--host-shim` whose macvlan goes on `parent`.
pub fn name(req: &Attach, parent: &str) -> Option<String> {
    let shim = req.host_shim.as_ref()?;
    Some(shim.name.as_ref().map_or_else(|| default_name(parent), |n| n.to_string()))
}

/// The guest's addresses, which its host routes go to: a static IPSPEC's.
pub fn guest_addresses(req: &Attach) -> Result<Vec<IpNetwork>> {
    let mut out = Vec::new();
    for spec in req.specs() {
        match spec {
            IpSpec::Static { addr: Some(a), .. } => out.push(*a),
            IpSpec::Static { addr: None, .. } => {}
            _ => bail!("--host-shim needs a static IPSPEC (the host route to the guest is made from it)"),
        }
    }
    if out.is_empty() {
        bail!("--host-shim needs an address in IPSPEC, for the host route to the guest");
    }
    Ok(out)
}

/// The host's route to `addr` alone.
pub fn host_route_of(addr: &IpNetwork) -> IpNetwork {
    let full = if addr.is_ipv4() { 32 } else { 128 };
    IpNetwork::new(addr.ip(), full).expect("a full-length prefix")
}

/// The steps of `--host-shim` for a guest whose macvlan goes on `parent`, after the
/// guest's own: the shim (when missing) with its address, then the guest's routes.
pub fn steps(req: &Attach, parent: &str, host: &HostFacts) -> Result<Vec<Step>> {
    let Some(pending) = pending(req, parent, host)? else {
        return Ok(Vec::new());
    };
    let guest = guest_addresses(req)?;
    planned(&pending, &guest, &pending.facts.routes)
}

/// The shim of a request with `--host-shim` whose macvlan goes on `parent`, checked
/// as far as it can be without the guest's addresses; `None` without `--host-shim`.
pub fn pending(req: &Attach, parent: &str, host: &HostFacts) -> Result<Option<PendingShim>> {
    let (Some(shim), Some(name)) = (req.host_shim.as_ref(), name(req, parent)) else {
        return Ok(None);
    };
    if req.macvlan_mode != MacvlanMode::Bridge {
        bail!(
            "--host-shim needs --macvlan-mode bridge: macvlans in {} mode do not reach each other",
            req.macvlan_mode
        );
    }
    let facts = host.shim.clone().unwrap_or_default();
    match &facts.link {
        Some(link) => refuse_foreign(&name, link, parent, shim.addr, &facts)?,
        None => {
            if let Some(addr) = shim.addr {
                refuse_conflict(addr, &[], &facts)?;
            }
        }
    }
    Ok(Some(PendingShim { name, parent: parent.to_string(), addr: shim.addr, facts }))
}

/// The steps of `shim` for a guest with the addresses `guest`: the shim (when
/// missing) with its address, then the guest's routes. `routes`: the host's routes
/// to those addresses (`/32`, `/128`), wherever they go.
pub fn planned(shim: &PendingShim, guest: &[IpNetwork], routes: &[Route]) -> Result<Vec<Step>> {
    if guest.is_empty() {
        bail!("--host-shim needs an address in IPSPEC, for the host route to the guest");
    }
    let (name, parent, facts) = (&shim.name, shim.parent.as_str(), &shim.facts);
    let mut steps = Vec::new();
    if facts.link.is_none() {
        let moved = match shim.addr {
            Some(addr) => {
                refuse_conflict(addr, guest, facts)?;
                Vec::new()
            }
            None => in_subnets(&facts.parent_addrs, guest),
        };
        let mark = ShimMark { parent: parent.to_string(), moved: moved.clone(), routes: Vec::new() };
        steps.push(Step::CreateShim {
            name: name.clone(),
            parent: parent.to_string(),
            mark: mark.to_string(),
        });
        if let Some(addr) = shim.addr {
            steps.push(Step::AddHostAddress { dev: name.clone(), addr });
        }
        for m in moved {
            steps.push(Step::MoveAddress { moved: m, from: parent.to_string(), to: name.clone() });
        }
    }
    let shim_index = facts.link.as_ref().map(|l| l.index);
    for addr in guest {
        let dst = host_route_of(addr);
        if let Some(r) = routes.iter().find(|r| r.dst == dst) {
            if shim_index.is_some() && r.oif == shim_index {
                continue;
            }
            bail!("the host has a route to {} already; --host-shim would shadow it", dst.ip());
        }
        steps.push(Step::AddHostRoute { dst, dev: name.clone() });
    }
    Ok(steps)
}

/// An existing link under the shim's name: ours for this parent, or refused.
fn refuse_foreign(
    name: &str,
    link: &Link,
    parent: &str,
    addr: Option<IpNetwork>,
    facts: &ShimFacts,
) -> Result<()> {
    let Some(mark) = ShimMark::of(link) else {
        bail!("{name} exists and is not a shim pipework made (no {MARK} mark); choose another with --host-shim=NAME");
    };
    if mark.parent != parent {
        bail!(
            "{name} is pipework's shim of {}, not of {parent}; choose another with --host-shim=NAME",
            mark.parent
        );
    }
    if let Some(a) = addr.filter(|a| !facts.addrs.contains(a)) {
        bail!("--host-shim-addr {a}: shim {name} exists without it (the address of a new shim only)");
    }
    Ok(())
}

/// `--host-shim-addr` must be the host's alone, and not the guest's.
fn refuse_conflict(addr: IpNetwork, guest: &[IpNetwork], facts: &ShimFacts) -> Result<()> {
    if let Some((dev, _)) = facts.host_addrs.iter().find(|(_, a)| a.ip() == addr.ip()) {
        bail!("--host-shim-addr {addr}: {} is already on {dev}", addr.ip());
    }
    if guest.iter().any(|g| g.ip() == addr.ip()) {
        bail!("--host-shim-addr {addr}: {} is the guest's own address", addr.ip());
    }
    Ok(())
}

/// The parent's addresses in a subnet of the guest's: they move to the shim.
fn in_subnets(parent: &[Moved], guest: &[IpNetwork]) -> Vec<Moved> {
    let contains = |m: &Moved, g: IpAddr| m.addr.contains(g) && m.addr.is_ipv4() == g.is_ipv4();
    parent.iter().filter(|m| guest.iter().any(|g| contains(m, g.ip()))).copied().collect()
}
