//! Small typed values for every argument form of pipework's grammar, each with `FromStr`.
//!
//! A bad value fails here, before anything on the host or in the guest is touched.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use anyhow::{anyhow, bail, Result};
use ipnetwork::IpNetwork;

use super::names::{Family, Mac};

/// The expected form of IPSPEC, for error messages and help.
pub const IPSPEC_FORM: &str = "ADDR/PREFIX[@GATEWAY], 0/0, or a DHCP client";

/// The optional last argument: `[MAC][@VLAN]`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MacVlan {
    pub mac: Option<Mac>,
    pub vlan: Option<Vlan>,
}

impl FromStr for MacVlan {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let (mac, vlan) = match s.split_once('@') {
            Some((m, v)) => (m, Some(v.parse::<Vlan>()?)),
            None => (s, None),
        };
        let mac = match mac {
            "" => None,
            m => match m.strip_prefix("U:") {
                Some(text) => Some(Mac::derived_from(text)),
                None => Some(m.parse().map_err(|_| {
                    anyhow!("bad MAC '{m}': expected six hex bytes like 02:42:ac:11:00:02, or U:TEXT")
                })?),
            },
        };
        Ok(MacVlan { mac, vlan })
    }
}

/// The `@VLAN` part, kept as written: a VLAN id (decimal) for OVS and physical
/// interfaces, a partition key (hex) for IPoIB. Which one is decided by the mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vlan(String);

impl FromStr for Vlan {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        if s.is_empty() || s.len() > 4 || !s.chars().all(|c| c.is_ascii_hexdigit()) {
            bail!("bad VLAN '{s}': expected a number from 0 to 4094 (a hex partition key for IPoIB)");
        }
        Ok(Vlan(s.to_string()))
    }
}

impl Vlan {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The 802.1Q id (0..=4094; 0 tags priority only, and the original passes it on).
    pub fn id(&self) -> Result<u16> {
        match self.0.parse::<u16>() {
            Ok(v) if v <= 4094 => Ok(v),
            _ => bail!("invalid VLAN id {:?} (expected a number from 0 to 4094)", self.0),
        }
    }
    /// A Linux bridge port's VLAN: 1..=4094 (0 is no VLAN, 4095 reserved).
    pub fn bridge_vid(&self) -> Result<u16> {
        match self.0.parse::<u16>() {
            Ok(v) if (1..=4094).contains(&v) => Ok(v),
            _ => bail!("invalid VLAN id {:?} (expected a number from 1 to 4094 for a Linux bridge)", self.0),
        }
    }
    /// An Open vSwitch port's tag: OVS takes 0..=4095, and the original passes the
    /// id on as given.
    pub fn ovs_tag(&self) -> Result<u16> {
        match self.0.parse::<u16>() {
            Ok(v) if v <= 4095 => Ok(v),
            _ => bail!("invalid VLAN id {:?} (expected a number from 0 to 4095 for Open vSwitch)", self.0),
        }
    }

    /// The InfiniBand partition key (hex, as the original passes `pkey 0xPKEY`).
    pub fn pkey(&self) -> Result<u16> {
        u16::from_str_radix(&self.0, 16)
            .map_err(|_| anyhow!("invalid partition key {:?} (expected hex)", self.0))
    }
}

/// A Linux bridge port's tagged VLANs (CNI `vlanTrunk`): inclusive ranges of ids
/// 1..=4094, sorted, none overlapping or touching; written `10-20,30` (the mark's
/// `trunk=` and `bridge vlan add ... vid 10-20`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trunk(Vec<(u16, u16)>);

impl Trunk {
    /// The union of `ranges` (each `min..=max`, checked by the caller).
    pub fn from_ranges(ranges: impl IntoIterator<Item = (u16, u16)>) -> Trunk {
        let mut all: Vec<(u16, u16)> = ranges.into_iter().collect();
        all.sort_unstable();
        let mut out: Vec<(u16, u16)> = Vec::new();
        for (lo, hi) in all {
            match out.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        Trunk(out)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.0
    }

    pub fn contains(&self, vid: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&vid))
    }
}

impl fmt::Display for Trunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (lo, hi)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match lo == hi {
                true => write!(f, "{lo}")?,
                false => write!(f, "{lo}-{hi}")?,
            }
        }
        Ok(())
    }
}

impl FromStr for Trunk {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let id = |t: &str| match t.parse::<u16>() {
            Ok(v) if (1..=4094).contains(&v) => Ok(v),
            _ => Err(anyhow!("bad VLAN trunk '{s}': expected ids from 1 to 4094 like 10-20,30")),
        };
        let mut ranges = Vec::new();
        for part in s.split(',') {
            let (lo, hi) = match part.split_once('-') {
                Some((lo, hi)) => (id(lo)?, id(hi)?),
                None => (id(part)?, id(part)?),
            };
            if lo > hi {
                bail!("bad VLAN trunk '{s}': {lo} is greater than {hi}");
            }
            ranges.push((lo, hi));
        }
        Ok(Trunk::from_ranges(ranges))
    }
}

/// A Linux bridge port's VLANs besides `@VLAN`'s PVID: the command line's `@VLAN`
/// makes the port a member of that VLAN only; CNI's bridge keys add tagged VLANs
/// (`vlanTrunk`) and keep the bridge's default VLAN 1 unless `preserveDefaultVlan`
/// is false.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortVlans {
    pub trunk: Trunk,
    /// The port stays a member of the default VLAN (1) besides its own.
    pub keep_default: bool,
}

/// Which DHCP client runs inside the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DhcpClient {
    /// `dhcp`: busybox udhcpc in a helper Docker container.
    DockerUdhcpc,
    Udhcpc,
    Dhclient,
    Dhcpcd,
    /// `dhcp4`: pipework's own DHCPv4 client; nothing to install on the host or in the guest.
    Builtin,
}

impl fmt::Display for DhcpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DhcpClient::DockerUdhcpc => "dhcp",
            DhcpClient::Udhcpc => "udhcpc",
            DhcpClient::Dhclient => "dhclient",
            DhcpClient::Dhcpcd => "dhcpcd",
            DhcpClient::Builtin => "dhcp4",
        })
    }
}

/// The IPSPEC argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpSpec {
    /// `ADDR/PREFIX[@GATEWAY]`; `addr` is `None` for `0/0` (no address at all).
    Static { addr: Option<IpNetwork>, gateway: Option<IpAddr> },
    /// `dhcp[:OPTS]`, `udhcpc[-f][:OPTS]`, `dhclient[-f][:OPTS]`, `dhcpcd[:OPTS]`,
    /// `dhcp4[-f][:OPTS]` (the built-in client), and their DHCPv6 forms
    /// `dhcp6[-f][:OPTS]`, `dhclient6[-f][:OPTS]`, `dhcpcd6[:OPTS]` (`family` V6).
    Dhcp { client: DhcpClient, family: Family, foreground: bool, options: Vec<String> },
    /// `slaac`: IPv6 stateless autoconfiguration from the network's router
    /// advertisements (the kernel's own, turned on for the new interface).
    Slaac,
}

impl FromStr for IpSpec {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        if let Some(dhcp) = parse_dhcp(s) {
            return Ok(dhcp);
        }
        if s == "slaac" {
            return Ok(IpSpec::Slaac);
        }
        let (addr, gateway) = match s.split_once('@') {
            Some((a, g)) => (a, Some(g)),
            None => (s, None),
        };
        let bad = |why: String| anyhow!("bad IPSPEC '{s}': expected {IPSPEC_FORM} ({why})");
        if !addr.contains('/') {
            // The original's hint (its second line, word for word) where it helps: an
            // address without a prefix length.
            if addr.parse::<IpAddr>().is_ok() {
                bail!("bad IPSPEC '{s}': expected {IPSPEC_FORM}\nMaybe you meant {addr}/24 ?");
            }
            bail!("bad IPSPEC '{s}': expected {IPSPEC_FORM}");
        }
        let gateway = gateway
            .map(|g| g.parse::<IpAddr>().map_err(|_| bad(format!("GATEWAY '{g}' is not an IP address"))))
            .transpose()?;
        let addr = if addr == "0/0" { None } else { Some(parse_network(addr).map_err(bad)?) };
        if let (Some(a), Some(g)) = (addr, gateway) {
            if Family::of(&a.ip()) != Family::of(&g) {
                return Err(bad(format!("GATEWAY {g} is not of the same family as ADDR {}", a.ip())));
            }
        }
        if let Some(why) = addr.and_then(|a| unusable_address(&a)) {
            return Err(bad(why));
        }
        if let Some(why) = gateway.and_then(|g| unusable_gateway(&g, addr.as_ref())) {
            return Err(bad(why));
        }
        Ok(IpSpec::Static { addr, gateway })
    }
}

/// Why ADDR can never work on an interface (the original passes it to `ip`, which
/// takes some of these and leaves an interface nobody can reach): an unspecified,
/// multicast or limited-broadcast address, or the subnet's network address.
fn unusable_address(a: &IpNetwork) -> Option<String> {
    let ip = a.ip();
    let what = match ip {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_multicast() => "a multicast address",
        IpAddr::V4(v4) if v4.is_broadcast() => "the limited broadcast address",
        _ if a.prefix() < if ip.is_ipv4() { 31 } else { 127 } && ip == a.network() => {
            "the subnet's network address"
        }
        _ => return None,
    };
    Some(format!("ADDR {ip} is {what}"))
}

/// Why GATEWAY can never be a router for ADDR: unspecified, loopback, multicast, the
/// limited broadcast, or the guest's own address.
fn unusable_gateway(g: &IpAddr, addr: Option<&IpNetwork>) -> Option<String> {
    let what = match g {
        _ if g.is_unspecified() => "unspecified",
        _ if g.is_loopback() => "a loopback address",
        _ if g.is_multicast() => "a multicast address",
        IpAddr::V4(v4) if v4.is_broadcast() => "the limited broadcast address",
        _ if addr.is_some_and(|a| a.ip() == *g) => "the guest's own address",
        _ => return None,
    };
    Some(format!("GATEWAY {g} is {what}"))
}

/// `ADDR/PREFIX`; the error says which half is wrong.
fn parse_network(s: &str) -> std::result::Result<IpNetwork, String> {
    let (ip, prefix) = s.split_once('/').ok_or_else(|| format!("'{s}' has no /PREFIX"))?;
    let ip: IpAddr = ip.parse().map_err(|_| format!("ADDR '{ip}' is not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bad_prefix = || format!("PREFIX '{prefix}' is not a number from 0 to {max}");
    let prefix: u8 = prefix.parse().map_err(|_| bad_prefix())?;
    IpNetwork::new(ip, prefix).map_err(|_| bad_prefix())
}

fn parse_dhcp(s: &str) -> Option<IpSpec> {
    let (word, opts) = match s.split_once(':') {
        Some((w, o)) => (w, Some(o)),
        None => (s, None),
    };
    use {DhcpClient::*, Family::*};
    let (client, family, foreground) = match word {
        "dhcp" => (DockerUdhcpc, V4, false),
        "udhcpc" => (Udhcpc, V4, false),
        "udhcpc-f" => (Udhcpc, V4, true),
        "dhclient" => (Dhclient, V4, false),
        "dhclient-f" => (Dhclient, V4, true),
        "dhcpcd" => (Dhcpcd, V4, false),
        "dhcp4" => (Builtin, V4, false),
        "dhcp4-f" => (Builtin, V4, true),
        // DHCPv6: the built-in client's and the external clients' `-6` forms.
        "dhcp6" => (Builtin, V6, false),
        "dhcp6-f" => (Builtin, V6, true),
        "dhclient6" => (Dhclient, V6, false),
        "dhclient6-f" => (Dhclient, V6, true),
        "dhcpcd6" => (Dhcpcd, V6, false),
        _ => return None,
    };
    // The original splits OPTIONS into words (unquoted expansion); no shell ever sees them.
    let options = opts.map(|o| o.split_whitespace().map(str::to_string).collect()).unwrap_or_default();
    Some(IpSpec::Dhcp { client, family, foreground, options })
}

impl IpSpec {
    /// The family this spec implies, if any.
    pub fn family(&self) -> Option<Family> {
        match self {
            IpSpec::Static { addr: Some(a), .. } => Some(Family::of(&a.ip())),
            IpSpec::Static { gateway: Some(g), .. } => Some(Family::of(g)),
            IpSpec::Slaac | IpSpec::Dhcp { family: Family::V6, .. } => Some(Family::V6),
            // The original's DHCP forms imply no family (`-a` says nothing to them).
            _ => None,
        }
    }
}

/// IPv4 broadcast of a network (what `ip addr add ... broadcast +` would set).
pub fn broadcast_of(net: &IpNetwork) -> Option<Ipv4Addr> {
    match net {
        IpNetwork::V4(n) if n.prefix() < 31 => Some(n.broadcast()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunk_ranges_merge_and_round_trip() {
        let t = Trunk::from_ranges([(30, 30), (10, 20), (21, 25), (12, 14), (4094, 4094)]);
        assert_eq!(t.to_string(), "10-25,30,4094");
        assert_eq!(t.to_string().parse::<Trunk>().unwrap(), t);
        assert!(t.contains(25) && !t.contains(26) && !t.contains(1));
        for bad in ["", "0", "4095", "20-10", "1-", "x"] {
            assert!(bad.parse::<Trunk>().is_err(), "{bad:?}");
        }
    }
    use crate::model::{IfName, MacvlanMode};

    #[test]
    fn addresses_and_gateways_that_cannot_work_are_refused() {
        for (spec, why) in [
            ("0.0.0.0/24", "ADDR 0.0.0.0 is unspecified"),
            ("224.0.0.5/24", "ADDR 224.0.0.5 is a multicast address"),
            ("255.255.255.255/24", "ADDR 255.255.255.255 is the limited broadcast address"),
            ("10.0.0.0/24", "ADDR 10.0.0.0 is the subnet's network address"),
            ("fd00::/64", "ADDR fd00:: is the subnet's network address"),
            ("ff02::5/64", "ADDR ff02::5 is a multicast address"),
            ("10.0.0.2/24@0.0.0.0", "GATEWAY 0.0.0.0 is unspecified"),
            ("10.0.0.2/24@127.0.0.1", "GATEWAY 127.0.0.1 is a loopback address"),
            ("10.0.0.2/24@224.0.0.1", "GATEWAY 224.0.0.1 is a multicast address"),
            ("10.0.0.2/24@255.255.255.255", "GATEWAY 255.255.255.255 is the limited broadcast address"),
            ("10.0.0.2/24@10.0.0.2", "GATEWAY 10.0.0.2 is the guest's own address"),
            ("fd00::2/64@::1", "GATEWAY ::1 is a loopback address"),
        ] {
            let e = spec.parse::<IpSpec>().unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("bad IPSPEC '{spec}'")) && e.ends_with(&format!("({why})")),
                "{spec}: {e}"
            );
        }
        // Still fine: point-to-point and host prefixes, a subnet broadcast as gateway
        // (the kernel's to refuse), no address at all, the loopback address itself.
        for ok in ["10.0.0.0/31", "10.0.0.1/32", "10.0.0.2/24@10.0.0.255", "0/0", "0/0@10.0.0.1", "::1/128"] {
            assert!(ok.parse::<IpSpec>().is_ok(), "{ok}");
        }
    }

    #[test]
    fn ifname_limits() {
        assert!("eth1".parse::<IfName>().is_ok());
        assert!("a23456789012345".parse::<IfName>().is_ok());
        for bad in ["", "a234567890123456", "a/b", "a:b", "a b", "a\tb", ".", ".."] {
            assert!(bad.parse::<IfName>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn mac_parse_and_print() {
        let m: Mac = "26:2E:71:98:60:8f".parse().unwrap();
        assert_eq!(m.to_string(), "26:2e:71:98:60:8f");
        for bad in ["", "26:2e:71:98:60", "26:2e:71:98:60:8f:00", "zz:2e:71:98:60:8f", "262:e:71:98:60:8f"] {
            assert!(bad.parse::<Mac>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn mac_derived_like_the_original() {
        // echo myhost.foo.com | md5sum => 726ccd9b8d...
        assert_eq!(Mac::derived_from("myhost.foo.com").to_string(), "02:72:6c:cd:9b:8d");
    }

    #[test]
    fn mac_vlan_forms() {
        let mv: MacVlan = "aa:bb:cc:dd:ee:ff@10".parse().unwrap();
        assert_eq!(mv.mac.unwrap().to_string(), "aa:bb:cc:dd:ee:ff");
        assert_eq!(mv.vlan.unwrap().id().unwrap(), 10);
        let mv: MacVlan = "@10".parse().unwrap();
        assert_eq!(mv.mac, None);
        assert_eq!(mv.vlan.unwrap().id().unwrap(), 10);
        let mv: MacVlan = "U:myhost.foo.com".parse().unwrap();
        assert_eq!(mv.mac.unwrap().to_string(), "02:72:6c:cd:9b:8d");
        assert_eq!(mv.vlan, None);
        let mv: MacVlan = "U:web1@20".parse().unwrap();
        assert_eq!(mv.mac, Some(Mac::derived_from("web1")));
        assert!("aa:bb@10".parse::<MacVlan>().is_err());
        assert!("@".parse::<MacVlan>().is_err());
        assert!("@x1".parse::<MacVlan>().is_err());
    }

    #[test]
    fn vlan_id_and_pkey() {
        assert!("4095".parse::<Vlan>().unwrap().id().is_err());
        assert_eq!("0".parse::<Vlan>().unwrap().id().unwrap(), 0);
        assert_eq!("4094".parse::<Vlan>().unwrap().id().unwrap(), 4094);
        // Open vSwitch takes 4095, as the original passes it on; a Linux VLAN device cannot.
        assert_eq!("4095".parse::<Vlan>().unwrap().ovs_tag().unwrap(), 4095);
        assert!("4096".parse::<Vlan>().unwrap().ovs_tag().is_err());
        assert_eq!("8001".parse::<Vlan>().unwrap().pkey().unwrap(), 0x8001);
        assert!("12345".parse::<Vlan>().is_err());
        assert!("-1".parse::<Vlan>().is_err());
    }

    #[test]
    fn family_values() {
        assert_eq!("4".parse::<Family>().unwrap(), Family::V4);
        assert_eq!("6".parse::<Family>().unwrap(), Family::V6);
        assert!("5".parse::<Family>().is_err());
    }

    #[test]
    fn static_ipspecs() {
        let s: IpSpec = "192.168.1.10/24@192.168.1.1".parse().unwrap();
        assert_eq!(
            s,
            IpSpec::Static {
                addr: Some("192.168.1.10/24".parse().unwrap()),
                gateway: Some("192.168.1.1".parse().unwrap())
            }
        );
        let s: IpSpec = "fd00::2/64@fe80::1".parse().unwrap();
        assert_eq!(s.family(), Some(Family::V6));
        let s: IpSpec = "0/0".parse().unwrap();
        assert_eq!(s, IpSpec::Static { addr: None, gateway: None });
        let s: IpSpec = "10.0.0.2/24".parse().unwrap();
        assert!(matches!(s, IpSpec::Static { gateway: None, .. }));
    }

    #[test]
    fn missing_netmask_names_ipspec_and_keeps_the_originals_hint() {
        let e = "10.0.0.2".parse::<IpSpec>().unwrap_err().to_string();
        assert_eq!(
            e,
            "bad IPSPEC '10.0.0.2': expected ADDR/PREFIX[@GATEWAY], 0/0, or a DHCP client\n\
             Maybe you meant 10.0.0.2/24 ?"
        );
        // No hint where the word is no address at all (a DHCP client misspelt).
        let e = "dhcp5".parse::<IpSpec>().unwrap_err().to_string();
        assert_eq!(e, "bad IPSPEC 'dhcp5': expected ADDR/PREFIX[@GATEWAY], 0/0, or a DHCP client");
    }

    /// Every malformed value: `bad ARG 'VALUE': expected FORM`, then why, if that helps.
    #[test]
    fn error_texts_name_the_argument_and_the_expected_form() {
        let err = |r: Result<()>| r.unwrap_err().to_string();
        let ip = |s: &str| err(s.parse::<IpSpec>().map(drop));
        let form = "expected ADDR/PREFIX[@GATEWAY], 0/0, or a DHCP client";
        for (value, why) in [
            ("10.0.0.300/24", "ADDR '10.0.0.300' is not an IP address"),
            ("10.0.0.2/33", "PREFIX '33' is not a number from 0 to 32"),
            ("fd00::1/129", "PREFIX '129' is not a number from 0 to 128"),
            ("10.0.0.2/x", "PREFIX 'x' is not a number from 0 to 32"),
            ("10.0.0.2/24@nope", "GATEWAY 'nope' is not an IP address"),
            ("10.0.0.2/24@fd00::1", "GATEWAY fd00::1 is not of the same family as ADDR 10.0.0.2"),
        ] {
            assert_eq!(ip(value), format!("bad IPSPEC '{value}': {form} ({why})"));
        }
        assert_eq!(
            err("zz:bb:cc:dd:ee:ff".parse::<MacVlan>().map(drop)),
            "bad MAC 'zz:bb:cc:dd:ee:ff': expected six hex bytes like 02:42:ac:11:00:02, or U:TEXT"
        );
        assert_eq!(
            err("@5000x".parse::<MacVlan>().map(drop)),
            "bad VLAN '5000x': expected a number from 0 to 4094 (a hex partition key for IPoIB)"
        );
        assert_eq!(err("5".parse::<Family>().map(drop)), "bad -a '5': expected 4 or 6");
        assert_eq!(
            err("bridged".parse::<MacvlanMode>().map(drop)),
            "bad --macvlan-mode 'bridged': expected bridge, private, vepa or passthru"
        );
        assert_eq!(
            err("a/b".parse::<IfName>().map(drop)),
            "expected an interface name of 1 to 15 bytes, without '/', ':' or whitespace (it contains '/')"
        );
    }

    #[test]
    fn bad_ipspecs() {
        for bad in [
            "10.0.0.300/24",
            "10.0.0.2/33",
            "10.0.0.2/x",
            "fd00::1/129",
            "10.0.0.2/24@nope",
            "10.0.0.2/24@fd00::1",
        ] {
            assert!(bad.parse::<IpSpec>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn dhcp_forms() {
        let d: IpSpec = "udhcpc:-t 5".parse().unwrap();
        assert_eq!(
            d,
            IpSpec::Dhcp {
                client: DhcpClient::Udhcpc,
                family: Family::V4,
                foreground: false,
                options: vec!["-t".into(), "5".into()]
            }
        );
        let d: IpSpec = "dhclient-f".parse().unwrap();
        assert!(matches!(d, IpSpec::Dhcp { client: DhcpClient::Dhclient, foreground: true, .. }));
        let d: IpSpec = "udhcpc-f".parse().unwrap();
        assert!(matches!(d, IpSpec::Dhcp { client: DhcpClient::Udhcpc, foreground: true, .. }));
        let d: IpSpec = "dhcpcd".parse().unwrap();
        assert!(matches!(d, IpSpec::Dhcp { client: DhcpClient::Dhcpcd, .. }));
        let d: IpSpec = "dhcp:-f".parse().unwrap();
        assert!(
            matches!(d, IpSpec::Dhcp { client: DhcpClient::DockerUdhcpc, ref options, .. } if options == &["-f"])
        );
    }

    #[test]
    fn builtin_dhcp_forms() {
        let d: IpSpec = "dhcp4".parse().unwrap();
        let plain =
            |family| IpSpec::Dhcp { client: DhcpClient::Builtin, family, foreground: false, options: vec![] };
        assert_eq!(d, plain(Family::V4));
        assert_eq!(d.family(), None);
        let d: IpSpec = "dhcp6".parse().unwrap();
        assert_eq!(d, plain(Family::V6));
        assert_eq!(d.family(), Some(Family::V6));
        let d: IpSpec = "dhcp4-f:timeout=5 renew=2".parse().unwrap();
        assert_eq!(
            d,
            IpSpec::Dhcp {
                client: DhcpClient::Builtin,
                family: Family::V4,
                foreground: true,
                options: vec!["timeout=5".into(), "renew=2".into()]
            }
        );
        assert_eq!(DhcpClient::Builtin.to_string(), "dhcp4");
        // Not a DHCP word: falls through to the address grammar.
        assert!("dhcp4x".parse::<IpSpec>().is_err());
        assert!("dhcpcd-f".parse::<IpSpec>().is_err());
        assert!("dhcpcd6-f".parse::<IpSpec>().is_err());
        assert!("udhcpc6".parse::<IpSpec>().is_err());
    }

    #[test]
    fn dhcpv6_forms() {
        for (word, client, foreground) in [
            ("dhcp6-f:renew=2", DhcpClient::Builtin, true),
            ("dhclient6", DhcpClient::Dhclient, false),
            ("dhclient6-f:-v", DhcpClient::Dhclient, true),
            ("dhcpcd6", DhcpClient::Dhcpcd, false),
        ] {
            let d: IpSpec = word.parse().unwrap();
            assert!(
                matches!(d, IpSpec::Dhcp { client: c, family: Family::V6, foreground: f, .. } if c == client && f == foreground),
                "{word}: {d:?}"
            );
        }
    }

    #[test]
    fn broadcast() {
        assert_eq!(broadcast_of(&"10.1.2.3/24".parse().unwrap()), Some("10.1.2.255".parse().unwrap()));
        assert_eq!(broadcast_of(&"10.1.2.3/31".parse().unwrap()), None);
        assert_eq!(broadcast_of(&"fd00::1/64".parse().unwrap()), None);
    }
}
