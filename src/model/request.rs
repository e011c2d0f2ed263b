//! What each verb is asked to do, as plain data: the attachment request and its
//! parts, the `del`/`ls`/`check`/`gc` requests, the passthrough to `ip`/`tc`, and the
//! run options apart from them. Every front end (command line, `--batch`, CNI,
//! `watch`) builds these once; nothing below the front ends knows where they came from.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use ipnetwork::IpNetwork;

use super::addresses;
use super::ipspec::IpSpec;
use super::ipspec::{PortVlans, Vlan};
use super::names::{Family, IfName, Mac, MacvlanMode};

/// How a verb reports, apart from what it does: `--json`, `--dry-run`, `--verbose`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunOpts {
    /// The result as one JSON document on stdout.
    pub json: bool,
    /// Plan and print, change nothing.
    pub dry_run: bool,
    /// Print each step on stderr as it is done.
    pub verbose: bool,
}

/// One attachment: `HOSTIF GUEST IPSPEC [MAC][@VLAN]` and its options.
#[derive(Clone, Debug, PartialEq)]
pub struct Attach {
    pub host_if: HostIf,
    pub direct_phys: bool,
    /// `--macvlan-mode` for physical interfaces.
    pub macvlan_mode: MacvlanMode,
    /// `-i`; `None` means the mode's default (`eth1`, `ib0` for IPoIB).
    pub container_if: Option<IfName>,
    /// `-l`; `None` means the derived `v{CONTAINER_IF}pl{PID}`.
    pub local_if: Option<IfName>,
    /// `-a`, or inferred from the address.
    pub family: Family,
    pub guest: String,
    /// IPSPEC, or the first element of an IPSPEC list: every single-address path reads
    /// this field alone, as before lists existed.
    pub ip: IpSpec,
    /// The other elements of an IPSPEC list (`10.0.0.2/24,fd00::2/64`), in order;
    /// empty for the original's one-address grammar.
    pub more: Vec<IpSpec>,
    pub mac: Option<Mac>,
    pub vlan: Option<Vlan>,
    /// On a Linux bridge: the port's tagged VLANs and whether it keeps VLAN 1 (CNI
    /// `vlanTrunk`, `preserveDefaultVlan`); the command line's are the default (none,
    /// and VLAN 1 dropped for `@VLAN`).
    pub port_vlans: PortVlans,
    /// `--timeout`: how long a DHCP client may take to get its lease.
    pub dhcp_timeout: Option<Duration>,
    /// `--isolated` (CNI `portIsolation`): the veth's host end is an isolated port of
    /// its Linux bridge, which forwards between it and the bridge's other isolated
    /// ports nothing at all.
    pub isolated: bool,
    /// `--host-shim[=NAME]` on a macvlan attach: the host reaches the guest.
    pub host_shim: Option<Box<HostShim>>,
}

/// `--host-shim[=NAME] [--host-shim-addr ADDR/PREFIX]`: a macvlan in bridge mode on
/// the guest's parent, in the host, shared by every shimmed guest of that parent,
/// with the host's address on it and a host route to each guest through it. The
/// kernel passes nothing between a macvlan and its parent: the host reaches its
/// macvlan guests only through a sibling macvlan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostShim {
    /// `None`: `pwshim-PARENT` (see `plan::shim::default_name`).
    pub name: Option<IfName>,
    /// `--host-shim-addr`; `None`: the parent's address in the guest's subnet, moved.
    pub addr: Option<IpNetwork>,
}

impl Attach {
    /// Attachments with the same key may create the same thing (a bridge,
    /// `HOSTIF.VLAN`): `--batch` and `pipework watch` run them one at a time until
    /// one succeeded. `names` gives the interface that a `mac:` HOSTIF stands for, so
    /// that `eth0@10` and `mac:<eth0's MAC>@10` share a key.
    pub fn switch_key(&self, names: &HashMap<Mac, String>) -> String {
        let vlan = self.vlan.as_ref().map(|v| v.as_str().to_string()).unwrap_or_default();
        match &self.host_if {
            HostIf::Mac(mac) if names.contains_key(mac) => format!("{}@{vlan}", names[mac]),
            host_if => format!("{host_if}@{vlan}"),
        }
    }

    /// Every element of IPSPEC, in order.
    pub fn specs(&self) -> impl Iterator<Item = &IpSpec> {
        std::iter::once(&self.ip).chain(&self.more)
    }

    /// The families the request configures: `family` for one element (`-a`, or the
    /// address's); each family of a list once, in the list's order.
    pub fn families(&self) -> Vec<Family> {
        if self.more.is_empty() {
            return vec![self.family];
        }
        let mut out = Vec::new();
        for f in self.specs().filter_map(addresses::family_in_list) {
            if !out.contains(&f) {
                out.push(f);
            }
        }
        out
    }
}

/// The host interface, by name or by `mac:` address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostIf {
    Name(IfName),
    Mac(Mac),
}

impl std::fmt::Display for HostIf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostIf::Name(n) => write!(f, "{n}"),
            HostIf::Mac(m) => write!(f, "mac:{m}"),
        }
    }
}

impl HostIf {
    /// `BRIDGE@UPLINK` (the original's PR #227 shape): a Linux bridge over an uplink
    /// (with `@VLAN`, the uplink's VLAN device `UPLINK.VID`). Both parts are names;
    /// whether the form applies is the host's to say (an interface named so
    /// literally is taken as it is, as the original takes it).
    pub fn uplink_form(&self) -> Option<(&str, &str)> {
        let HostIf::Name(n) = self else {
            return None;
        };
        let (bridge, uplink) = n.as_str().split_once('@')?;
        (!bridge.is_empty() && !uplink.is_empty() && !uplink.contains('@')).then_some((bridge, uplink))
    }
}

/// HOSTIF as the command line and a CNI config give it; the error names HOSTIF.
impl std::str::FromStr for HostIf {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<HostIf> {
        match text.strip_prefix("mac:") {
            Some(mac) => Ok(HostIf::Mac(mac.parse().map_err(|_| {
                anyhow!("bad HOSTIF '{text}': expected mac: and six hex bytes like mac:02:42:ac:11:00:02")
            })?)),
            None => Ok(HostIf::Name(text.parse().with_context(|| format!("bad HOSTIF '{text}'"))?)),
        }
    }
}

/// `--timeout` of an attachment: only a DHCP client (or `slaac`'s wait for a router)
/// waits for anything; at most a day, past which deadlines overflow.
pub fn dhcp_timeout<'a>(
    seconds: Option<f64>,
    mut specs: impl Iterator<Item = &'a IpSpec>,
) -> Result<Option<Duration>> {
    let Some(s) = seconds else {
        return Ok(None);
    };
    if !specs.any(|ip| matches!(ip, IpSpec::Dhcp { .. } | IpSpec::Slaac)) {
        anyhow::bail!("--timeout works with --wait, a DHCP IPSPEC or slaac only");
    }
    const MAX: Duration = Duration::from_secs(86_400);
    match Duration::try_from_secs_f64(s) {
        Ok(d) if !d.is_zero() && d <= MAX => Ok(Some(d)),
        _ => anyhow::bail!("bad --timeout '{s}': expected seconds > 0, at most {}", MAX.as_secs()),
    }
}

/// `pipework del [HOSTIF] GUEST [-i CONTAINER_IF]`: take one attachment off again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Del {
    /// Only the attachment to this host interface (a bridge, OVS bridge or NIC).
    pub host_if: Option<IfName>,
    pub guest: String,
    /// `-i`; default `eth1`, as an attach's.
    pub container_if: IfName,
    /// Remove the bridge too when no port is left on it.
    pub prune_bridge: bool,
}

/// `pipework ls [GUEST]`: the attachments on this host (or of that guest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ls {
    pub guest: Option<String>,
}

/// `pipework check GUEST [-i CONTAINER_IF]`: is the attachment as it was made?
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub guest: String,
    /// `-i`; default `eth1`.
    pub container_if: IfName,
}

/// `route|rule|tc GUEST ARGS...`: ARGS go untouched to `ip route`, `ip rule` or `tc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passthrough {
    pub tool: Tool,
    /// The word that chose the tool (`route`, `routes`, `tc0`...).
    pub word: String,
    pub guest: String,
    pub args: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Route,
    Rule,
    Tc,
}
