//! Domain values that every layer shares: interface names, MAC addresses, address
//! families, macvlan modes. The ground floor: `cli` parses them, `plan` and
//! `netlink` use them, and this module imports nothing of the crate.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use anyhow::{anyhow, bail, Result};
use ipnetwork::IpNetwork;

/// Linux interface-name limit (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// The expected form of every interface-name argument, for error messages: the
/// caller names the argument (`bad -i 'X': expected ...`).
pub const IFNAME_FORM: &str = "an interface name of 1 to 15 bytes, without '/', ':' or whitespace";

/// A network interface name the kernel will accept.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IfName(String);

impl IfName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for IfName {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        if s.is_empty() {
            bail!("expected {IFNAME_FORM} (it is empty)");
        }
        if s.len() > IFNAME_MAX {
            bail!("expected {IFNAME_FORM} (it is longer than {IFNAME_MAX} bytes)");
        }
        if s == "." || s == ".." {
            bail!("expected {IFNAME_FORM} ('.' and '..' are not allowed)");
        }
        // The kernel refuses '/', ':' and whitespace in names (dev_valid_name).
        if let Some(c) = s.chars().find(|c| *c == '/' || *c == ':' || c.is_whitespace()) {
            bail!("expected {IFNAME_FORM} (it contains {c:?})");
        }
        Ok(IfName(s.to_string()))
    }
}

/// An Ethernet MAC address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

/// As `ip link` writes it, `02:42:ac:11:00:02`.
impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for Mac {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || anyhow!("bad MAC '{s}': expected six hex bytes like 02:42:ac:11:00:02");
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in out.iter_mut() {
            let p = parts.next().ok_or_else(bad)?;
            if p.is_empty() || p.len() > 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Mac(out))
    }
}

impl Mac {
    /// A random unicast, locally administered MAC, as the kernel gives a veth end
    /// (eth_hw_addr_random), from the kernel's random source.
    pub fn random_local() -> Result<Mac> {
        let mut b = [0u8; 6];
        // SAFETY: getrandom(2) writes at most `b.len()` bytes into `b`.
        let n = unsafe { nix::libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
        if n != b.len() as isize {
            bail!("cannot pick a MAC address: {}", std::io::Error::last_os_error());
        }
        b[0] = (b[0] & 0xfe) | 0x02;
        Ok(Mac(b))
    }

    /// The original's `U:TEXT` form: `02:` then the first five bytes of
    /// md5(TEXT + "\n") — the newline comes from its `echo | md5sum`.
    pub fn derived_from(text: &str) -> Mac {
        let digest = md5::compute(format!("{text}\n"));
        let d = digest.0;
        Mac([0x02, d[0], d[1], d[2], d[3], d[4]])
    }
}

/// Address family, from `-a 4|6` or inferred from the address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl FromStr for Family {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "4" | "inet" => Ok(Family::V4),
            "6" | "inet6" => Ok(Family::V6),
            _ => bail!("bad -a '{s}': expected 4 or 6"),
        }
    }
}

/// An IPv6 link-local address (fe80::/10): the kernel's own on every IPv6 link,
/// never one an attachment made.
pub fn is_link_local(a: &IpNetwork) -> bool {
    matches!(a, IpNetwork::V6(v6) if (v6.ip().segments()[0] & 0xffc0) == 0xfe80)
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// The macvlan mode for physical interfaces (`--macvlan-mode`; the original always uses bridge).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MacvlanMode {
    #[default]
    Bridge,
    Private,
    Vepa,
    Passthru,
}

impl FromStr for MacvlanMode {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "bridge" => Ok(MacvlanMode::Bridge),
            "private" => Ok(MacvlanMode::Private),
            "vepa" => Ok(MacvlanMode::Vepa),
            "passthru" => Ok(MacvlanMode::Passthru),
            _ => bail!("bad --macvlan-mode '{s}': expected bridge, private, vepa or passthru"),
        }
    }
}

impl fmt::Display for MacvlanMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MacvlanMode::Bridge => "bridge",
            MacvlanMode::Private => "private",
            MacvlanMode::Vepa => "vepa",
            MacvlanMode::Passthru => "passthru",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_macs_are_unicast_locally_administered_and_differ() {
        let (a, b) = (Mac::random_local().unwrap(), Mac::random_local().unwrap());
        assert_eq!(a.0[0] & 0x03, 0x02, "{a}");
        assert_ne!(a, b);
    }
}
