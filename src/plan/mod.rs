//! The pure planner: request + facts observed beforehand => the steps to take.
//! Nothing here touches the system, so all of it is unit-tested without root.

pub mod addressing;
pub mod alias;
mod bridge;
pub mod dhcp;
mod physical;
pub mod remove;
pub mod shim;
mod shim_facts;
mod step;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_dual_stack;
#[cfg(test)]
mod tests_host_reach;
mod virtual_link;

use anyhow::{bail, Result};
use ipnetwork::IpNetwork;

pub use bridge::Switch;
pub use dhcp::{DhcpRequest, HeldLease, Lease, Lease6, Leased};
pub use step::{drops_default_vlan, veth_host_end, GuestLink, NewGuestLink, OvsPort, Side, Step, Veth};

use crate::guest::{self, Guest};
use crate::model::{Attach, HostIf, IfName};
use crate::netlink::{Link, Route};

/// What was read on the host before planning.
#[derive(Clone, Debug, Default)]
pub struct HostFacts {
    /// The interface HOSTIF names (by name or `mac:`), if it exists.
    pub host_if: Option<Link>,
    /// An existing interface under the host-end name, if any.
    pub local_if: Option<Link>,
    /// With `@VLAN`: an existing `HOSTIF.VLAN`, if any.
    pub vlan_if: Option<Link>,
    /// HOSTIF is an Open vSwitch bridge (asked of `ovs-vsctl`), and its ports.
    pub ovs_bridge: bool,
    pub ovs_ports: Vec<String>,
    /// `ovs-vsctl` is installed (needed to create an `ovs*` bridge).
    pub ovs_installed: bool,
    /// `PIPEWORK_OVS_DATAPATH`: the datapath type of a bridge we create (e.g. `netdev`).
    pub ovs_datapath: Option<String>,
    /// `--host-shim`: what was read of the shim and the host (see `shim::ShimFacts`).
    pub shim: Option<shim::ShimFacts>,
    /// `BRIDGE@UPLINK` with no interface of that literal name: the uplink as read
    /// (`host_if` is then BRIDGE's link).
    pub uplink: Option<UplinkFacts>,
    /// A VLAN asked of a Linux bridge whose VLAN filtering is off: pipework's ports
    /// of that bridge that carry VLANs all the same (so another tool turned it off),
    /// as `NAME @VID` or `NAME trunk=...`. Read only then: it takes a dump.
    pub vlan_ports: Vec<String>,
}

/// The uplink of a `BRIDGE@UPLINK` HOSTIF, and with `@VLAN` its `UPLINK.VID`.
#[derive(Clone, Debug, Default)]
pub struct UplinkFacts {
    pub name: String,
    pub link: Option<Link>,
    pub vlan_if: Option<Link>,
}

/// What was read inside the guest before planning.
#[derive(Clone, Debug, Default)]
pub struct GuestFacts {
    /// An existing interface under CONTAINER_IF, if any.
    pub container_if: Option<Link>,
    /// Its addresses.
    pub container_addrs: Vec<IpNetwork>,
    /// Main-table routes of every family the request configures.
    pub routes: Vec<Route>,
    /// An IPv6 request, and the kernel has no IPv6 (booted with `ipv6.disable=1`).
    pub ipv6_off: bool,
    /// The DHCP clients (`dhcp4`, `udhcpc`, `dhclient6`, `dhcp` for the Docker
    /// helper, ...) that the record of an attachment already under CONTAINER_IF says
    /// it left running, and that still run as far as can be told without asking
    /// Docker (a helper container counts). Read only for a re-run of a `-f` form.
    pub renewing: Vec<String>,
    /// The built-in `-f` clients (`dhcp4`) that record names and that are gone
    /// (killed, OOM), each with the lease it last held: a re-run starts a new keeper
    /// from it (INIT-REBOOT). Read only for a re-run of a `-f` form.
    pub stopped: Vec<(String, HeldLease)>,
}

/// What the caller of an attach promises beyond the request itself: set by the CNI
/// plugin, whose runtime always calls DEL; the command line sets neither.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Terms {
    /// The addresses and routes come from this CNI IPAM plugin, which runs while the
    /// links are made (see `Step::Delegated`); the request's IPSPEC is then `0/0`.
    pub ipam_plugin: Option<String>,
    /// A DEL is sure to follow: a `dhcp4-f`/`dhcp6-f` keeper may serve a netns-file
    /// guest (no process for it to watch), since that DEL stops it.
    pub del_follows: bool,
    /// A Kubernetes pod the guest is the sandbox of (`NAMESPACE/NAME` from
    /// `K8S_POD_NAMESPACE`, `K8S_POD_NAME`): the built-in DHCP client's identity,
    /// so that a re-created pod (a new sandbox, a new MAC) gets its address back.
    pub pod: Option<String>,
}

/// The guest as the planner needs it: how to name things after it.
#[derive(Clone, Debug)]
pub struct GuestId {
    pub name: String,
    /// `{PID}` in derived names.
    pub tag: String,
    pub pid: Option<u32>,
    /// A Docker container's full ID and name (with Docker's leading '/').
    pub container: Option<(String, String)>,
    /// How the attachment's mark (see [`alias`]) names the guest, and the inode of
    /// its network namespace.
    pub reference: alias::GuestRef,
    pub ns_inode: u64,
}

impl GuestId {
    /// The guest as the planner names it, and as an attachment's mark refers to it:
    /// a Docker container by its full id, else a process by pid, else the netns file.
    pub fn of(guest: &Guest) -> GuestId {
        let container = match &guest.source {
            guest::Source::Docker { id, name } => Some((id.clone(), name.clone())),
            _ => None,
        };
        let reference = match (&container, guest.pid) {
            (Some((id, _)), _) => alias::GuestRef::Docker(id.clone()),
            (None, Some(pid)) => alias::GuestRef::Pid(pid),
            (None, None) => alias::GuestRef::Netns(guest.name.clone()),
        };
        GuestId {
            name: guest.name.clone(),
            tag: guest.name_tag(),
            pid: guest.pid,
            container,
            reference,
            ns_inode: guest.ns_inode,
        }
    }

    /// The name a link for CONTAINER_IF is born under, before its rename in the guest
    /// (the kernel builds a macvlan on the host side first, where CONTAINER_IF may be
    /// taken): `pw` and a hash of the guest's namespace and CONTAINER_IF, so that two
    /// attaches at once get two names, and a re-run after a kill finds its own.
    pub fn temporary_name(&self, container_if: &str) -> String {
        // FNV-1a: stable across builds and runs, unlike std's hashers.
        let bytes = self.ns_inode.to_le_bytes().into_iter().chain(container_if.bytes());
        let hash = bytes.fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
        format!("pw{hash:08x}")
    }

    /// The mark of an attachment of this guest's CONTAINER_IF to `host_if`.
    pub fn alias(&self, container_if: &str, host_if: &str, kind: alias::Kind) -> String {
        self.alias_tagged(container_if, host_if, kind, None)
    }

    /// [`Self::alias`] with an Open vSwitch port's tag (`vlan=VID`).
    pub fn alias_tagged(
        &self,
        container_if: &str,
        host_if: &str,
        kind: alias::Kind,
        vlan: Option<u16>,
    ) -> String {
        self.alias_trunked(container_if, host_if, kind, vlan, &crate::model::Trunk::default())
    }

    /// [`Self::alias_tagged`] with a Linux bridge port's tagged VLANs (`trunk=A-B,C`).
    pub fn alias_trunked(
        &self,
        container_if: &str,
        host_if: &str,
        kind: alias::Kind,
        vlan: Option<u16>,
        trunk: &crate::model::Trunk,
    ) -> String {
        alias::Alias {
            guest: self.reference.clone(),
            ns: self.ns_inode,
            container_if: container_if.to_string(),
            host_if: host_if.to_string(),
            kind,
            vlan,
            trunk: trunk.clone(),
        }
        .to_string()
    }
}

/// How HOSTIF is handled, decided in the original's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A Linux bridge; `create` when it does not exist yet (a `br*` name).
    Bridge {
        create: bool,
    },
    Ovs,
    Ipoib,
    Physical,
    Dummy,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Bridge { .. } => "bridge",
            Mode::Ovs => "Open vSwitch",
            Mode::Ipoib => "IPoIB",
            Mode::Physical => "physical (macvlan)",
            Mode::Dummy => "dummy",
        })
    }
}

/// ARPHRD_INFINIBAND
const LINK_TYPE_INFINIBAND: u16 = 32;
/// ARPHRD_LOOPBACK
const LINK_TYPE_LOOPBACK: u16 = 772;

pub fn mode(req: &Attach, host: &HostFacts) -> Result<Mode> {
    if let Some(link) = &host.host_if {
        if host.uplink.is_some() && !link.is_bridge() {
            bail!("{} is not a Linux bridge: BRIDGE@UPLINK needs one (or a missing br* name)", link.name);
        }
        return Ok(match link.kind.as_deref() {
            Some("bridge") => Mode::Bridge { create: false },
            _ if host.ovs_bridge => Mode::Ovs,
            _ if link.link_type == LINK_TYPE_INFINIBAND => Mode::Ipoib,
            _ => Mode::Physical,
        });
    }
    if host.uplink.is_some() && !missing_name(req)?.starts_with("br") {
        bail!("I do not know how to setup interface {}.", missing_name(req)?);
    }
    let name = missing_name(req)?;
    if name.starts_with("br") {
        Ok(Mode::Bridge { create: true })
    } else if name.starts_with("ovs") {
        if !host.ovs_installed {
            bail!("Need OVS installed on the system to create an ovs bridge");
        }
        Ok(Mode::Ovs)
    } else if name.starts_with("dummy") {
        Ok(Mode::Dummy)
    } else {
        bail!("I do not know how to setup interface {name}.")
    }
}

/// The name of a HOSTIF missing from the host, which the original then classifies by
/// its prefix; a `mac:` that matched nothing is refused as there.
fn missing_name(req: &Attach) -> Result<&str> {
    match &req.host_if {
        HostIf::Mac(mac) => bail!("Mac address {mac} specified for interface but no host interface matched."),
        // Only reached for the uplink form: a literal `BRIDGE@UPLINK` exists otherwise.
        HostIf::Name(n) => Ok(req.host_if.uplink_form().map_or(n.as_str(), |(bridge, _)| bridge)),
    }
}

/// The outcome of planning.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Steps to apply, in order.
    Steps(Vec<Step>),
    /// The state asked for is already there; nothing to do.
    AlreadyDone(String),
}

/// The request classified once, from what HOSTIF is: before the guest is looked for
/// (the original decides the kind of HOSTIF, and refuses what it cannot do with it,
/// first), and before the facts that depend on it are read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Class {
    /// `None` for a `--direct-phys` NIC missing from the host: it may be in the guest
    /// already (a re-run), which only the guest can tell.
    pub mode: Option<Mode>,
    /// The interface name inside the guest (`-i`; default `eth1`, `ib0` for IPoIB,
    /// whose kernel module is fussy about names).
    pub container_if: IfName,
}

impl Class {
    /// Classify, refusing what the original refuses before it looks for the guest: a
    /// HOSTIF it cannot use, a VLAN on a Linux bridge, a MAC on IPoIB.
    pub fn of(req: &Attach, host: &HostFacts) -> Result<Class> {
        // The original takes `lo` for a NIC: a macvlan on it fails half-way, after
        // setting it up and down again (its 127.0.0.1 and qdisc gone with that).
        if let Some(lo) = host.host_if.as_ref().filter(|l| l.link_type == LINK_TYPE_LOOPBACK) {
            bail!("{} is the loopback interface: nothing can be attached to it", lo.name);
        }
        let mode = match mode(req, host) {
            Ok(mode) => mode,
            // A `--direct-phys` NIC missing from the host, by a name (or `mac:`) the
            // original has no other use for: it may be in the guest already (a
            // re-run), which only the guest can tell. A name it classifies by its
            // prefix takes that mode, `--direct-phys` aside, as there (`br1` makes
            // the bridge and a veth on it).
            Err(_) if req.direct_phys && host.host_if.is_none() => {
                refuse_misplaced_flags(req, Mode::Physical)?;
                return Ok(Class { mode: None, container_if: container_if(req, Mode::Physical) });
            }
            Err(e) => return Err(e),
        };
        refuse_misplaced_flags(req, mode)?;
        match mode {
            // The original refuses `@VLAN` here (`VLAN configuration currently
            // unsupported for Linux bridge.`); we filter VLANs on the bridge instead.
            Mode::Bridge { .. } if req.vlan.is_some() => {
                // 1..=4094 for the bridge's filtering and the uplink's 802.1Q device alike.
                req.vlan.as_ref().map(|v| v.bridge_vid()).transpose()?;
                Ok(Class { mode: Some(mode), container_if: container_if(req, mode) })
            }
            Mode::Ipoib if req.mac.is_some() => {
                bail!("MACADDR configuration unsupported for IPoIB interfaces.")
            }
            _ => Ok(Class { mode: Some(mode), container_if: container_if(req, mode) }),
        }
    }

    /// The veth modes' host-end name: `-l`, or `v{CONTAINER_IF}pl{PID}`; `None` for
    /// the other modes. An error for a derived name longer than the kernel takes.
    pub fn host_end(&self, req: &Attach, guest: &GuestId) -> Option<Result<String>> {
        if !matches!(self.mode, Some(Mode::Bridge { .. } | Mode::Ovs)) {
            return None;
        }
        Some(self.veth_host_end(req, guest))
    }

    /// The host-end name a veth of this request gets (the veth modes plan with it).
    fn veth_host_end(&self, req: &Attach, guest: &GuestId) -> Result<String> {
        match &req.local_if {
            Some(l) => Ok(l.to_string()),
            None => derived_name(format!("v{}pl{}", self.container_if, guest.tag), "host-end", "-l LOCAL_IF"),
        }
    }
}

/// `--isolated` and `--host-shim` where they mean nothing: refused before any change.
pub fn refuse_misplaced_flags(req: &Attach, mode: Mode) -> Result<()> {
    let what = |mode: Mode| match mode {
        Mode::Physical if req.direct_phys => "a --direct-phys attach".to_string(),
        Mode::Ovs | Mode::Ipoib => format!("{}, an {mode} attach", req.host_if),
        mode => format!("{}, a {mode} attach", req.host_if),
    };
    if !req.port_vlans.trunk.is_empty() && !matches!(mode, Mode::Bridge { .. }) {
        bail!("a VLAN trunk (vlanTrunk) is for a Linux bridge's port only, not for {}", what(mode));
    }
    if req.isolated && !matches!(mode, Mode::Bridge { .. }) {
        bail!("--isolated works on a Linux bridge attach only, not on {}", what(mode));
    }
    if req.host_shim.is_some() && (mode != Mode::Physical || req.direct_phys) {
        bail!("--host-shim works on a macvlan attach (a NIC as HOSTIF) only, not on {}", what(mode));
    }
    Ok(())
}

fn container_if(req: &Attach, mode: Mode) -> IfName {
    let default = if mode == Mode::Ipoib { "ib0" } else { "eth1" };
    req.container_if.clone().unwrap_or_else(|| default.parse().expect("valid name"))
}

/// CONTAINER_IF taken in the guest by something we are not about to replace.
fn refuse_taken(cif: &IfName, guest: &GuestId, facts: &GuestFacts) -> Result<()> {
    if facts.container_if.is_some() {
        bail!("interface {cif} already exists in {}", guest.name);
    }
    Ok(())
}

/// A derived name must fit the kernel's 15 bytes; refuse before any change.
fn derived_name(name: String, what: &str, hint: &str) -> Result<String> {
    match name.parse::<IfName>() {
        Ok(n) => Ok(n.to_string()),
        Err(_) => bail!("the {what} name {name} would be longer than 15 bytes; choose one with {hint}"),
    }
}

/// Plan an attachment of the request classified as `class`.
pub fn plan(
    req: &Attach,
    terms: &Terms,
    class: &Class,
    guest: &GuestId,
    host: &HostFacts,
    facts: &GuestFacts,
) -> Result<Plan> {
    // A `--direct-phys` re-run: the NIC is no longer on the host, but in the guest.
    if let Some(done) = physical::moved_already(req, host, facts, guest) {
        return Ok(done);
    }
    // Not a re-run after all: what the original says of an unknown HOSTIF.
    let mode = match class.mode {
        Some(mode) => mode,
        None => mode(req, host)?,
    };
    let cif = &class.container_if;
    addressing::refuse_ipv6_off(req, cif.as_str(), guest, facts)?;
    // Checked before planning the link: `dhcp` needs a Docker guest, `dhcp4` good options.
    // An IPSPEC list has at most one DHCP form per family (see `model::addresses`).
    let mut dhcp = Vec::new();
    for ip in req.specs() {
        let planned = DhcpRequest::plan(ip, cif.as_str(), guest, req.dhcp_timeout, terms.del_follows)?;
        dhcp.extend(planned.map(|d| d.for_pod(terms.pod.as_deref())));
    }
    let plan = match mode {
        Mode::Bridge { create } => bridge::plan(req, class, guest, Switch::Linux { create }, host, facts),
        Mode::Physical => physical::plan(req, cif, guest, host, facts, terms.ipam_plugin.is_some()),
        Mode::Ipoib => virtual_link::ipoib(req, cif, guest, host, facts),
        Mode::Dummy => virtual_link::dummy(req, cif, guest, facts),
        Mode::Ovs => {
            bridge::plan(req, class, guest, Switch::Ovs { create: host.host_if.is_none() }, host, facts)
        }
    }?;
    // The IPAM plugin's addresses, and the client, come last, once the interface is
    // up (every mode's steps end with the addressing steps, which bring it up).
    Ok(match plan {
        Plan::Steps(mut steps) => {
            if let Some(plugin) = &terms.ipam_plugin {
                // The shim's routes are made from the plugin's addresses, once it gives them.
                let shim = match (mode, &host.host_if) {
                    (Mode::Physical, Some(nic)) if !req.direct_phys => {
                        shim::pending(req, &shim::parent_name(req, nic), host)?.map(Box::new)
                    }
                    _ => None,
                };
                steps.push(Step::Delegated { dev: cif.to_string(), plugin: plugin.clone(), shim });
            }
            steps.extend(dhcp.into_iter().map(Step::Dhcp));
            Plan::Steps(steps)
        }
        Plan::AlreadyDone(what) => resumed(dhcp, facts).unwrap_or(Plan::AlreadyDone(what)),
    })
}

/// A re-run that finds everything as asked but a `dhcp4-f` keeper gone (killed,
/// OOM): a new keeper for each, from the lease the gone one held, which verifies it
/// with INIT-REBOOT and keeps the address in the meantime. `None`: nothing gone.
fn resumed(dhcp: Vec<DhcpRequest>, facts: &GuestFacts) -> Option<Plan> {
    let steps: Vec<Step> = dhcp
        .into_iter()
        .filter(|d| d.foreground && !facts.renewing.contains(&d.name()))
        .filter_map(|mut d| {
            let (_, held) = facts.stopped.iter().find(|(client, _)| *client == d.name())?;
            d.resume = Some(held.clone());
            Some(Step::Dhcp(d))
        })
        .collect();
    (!steps.is_empty()).then_some(Plan::Steps(steps))
}
