//! The mark every attachment carries in the kernel, so that `del` and `ls` can
//! recognise it later from the kernel alone: an interface alias (IFLA_IFALIAS) of the
//! form `pipework:v1 guest=REF ns=INODE if=CONTAINER_IF host=HOSTIF mode=MODE`,
//! on the veth's host end (bridge and OVS modes) or on the guest's own link
//! (macvlan, dummy, IPoIB), with ` vlan=VID` after it for an Open vSwitch port's
//! tag or a Linux bridge port's VLAN. Space-separated `key=value` words, in any order;
//! unknown keys are skipped (a later minor change may add some); another version
//! than `v1` is refused as not understood rather than guessed at.

use std::fmt;

use anyhow::{anyhow, bail, Result};

/// The alias of a VLAN device (`HOSTIF.VID`) that an attach made for its macvlan:
/// `del` and `gc` remove it when no attachment's record names it any more. Not a
/// mark of an attachment (it does not start with [`PREFIX`]), so readers of marks
/// pass over it.
pub const MADE_VLAN: &str = "made by pipework for its attachments";

/// What every alias of ours starts with, before the version.
pub const PREFIX: &str = "pipework:";
const VERSION: &str = "v1";

/// Which guest an attachment belongs to, as it can be found again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuestRef {
    /// A Docker container, by its full id (a name can be reused; the id cannot).
    Docker(String),
    /// A process's network namespace (`pid:N`, an LXC container, `/proc/N/ns/net`).
    Pid(u32),
    /// A network-namespace file (`/var/run/netns/NAME`).
    Netns(String),
}

impl fmt::Display for GuestRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuestRef::Docker(id) => write!(f, "docker:{id}"),
            GuestRef::Pid(pid) => write!(f, "pid:{pid}"),
            GuestRef::Netns(path) => write!(f, "netns:{}", escape(path)),
        }
    }
}

impl GuestRef {
    pub fn parse(s: &str) -> Result<GuestRef> {
        let (kind, value) = s.split_once(':').ok_or_else(|| anyhow!("guest '{s}' has no kind"))?;
        match kind {
            "docker" if !value.is_empty() && value.chars().all(|c| c.is_ascii_hexdigit()) => {
                Ok(GuestRef::Docker(value.to_string()))
            }
            "pid" => value.parse().map(GuestRef::Pid).map_err(|_| anyhow!("bad pid in guest '{s}'")),
            "netns" if value.starts_with('/') => Ok(GuestRef::Netns(unescape(value)?)),
            _ => bail!("guest '{s}' is not docker:ID, pid:N or netns:PATH"),
        }
    }

    /// The GUEST argument that names this guest again.
    pub fn as_guest_arg(&self) -> String {
        match self {
            GuestRef::Docker(id) => id.clone(),
            GuestRef::Pid(pid) => format!("pid:{pid}"),
            GuestRef::Netns(path) => path.clone(),
        }
    }
}

/// How the attachment was made, as its mark says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bridge,
    Ovs,
    Macvlan,
    Dummy,
    Ipoib,
    /// A `--direct-phys` NIC: it carries no mark (its alias is its old name, as
    /// before); the attachment's record names it.
    DirectPhys,
}

impl Kind {
    const ALL: [(Kind, &'static str); 6] = [
        (Kind::Bridge, "bridge"),
        (Kind::Ovs, "ovs"),
        (Kind::Macvlan, "macvlan"),
        (Kind::Dummy, "dummy"),
        (Kind::Ipoib, "ipoib"),
        (Kind::DirectPhys, "direct-phys"),
    ];

    pub fn as_str(self) -> &'static str {
        Kind::ALL.iter().find(|(k, _)| *k == self).map(|(_, s)| *s).unwrap_or("?")
    }

    /// A veth pair whose host end carries the mark (else the guest's link carries it).
    pub fn is_veth(self) -> bool {
        matches!(self, Kind::Bridge | Kind::Ovs)
    }
}

/// One attachment's mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alias {
    pub guest: GuestRef,
    /// The inode of the guest's network namespace when attached: a pid reused by
    /// another process, or a netns file mounted anew, is another guest.
    pub ns: u64,
    pub container_if: String,
    /// HOSTIF as resolved (the bridge, OVS bridge or NIC's name; `dummy*` as given).
    pub host_if: String,
    pub kind: Kind,
    /// `vlan=VID`: the Open vSwitch port's tag (`@VID`); none otherwise (a macvlan's
    /// VLAN is its `HOSTIF.VID` parent's).
    pub vlan: Option<u16>,
    /// `trunk=A-B,C`: a Linux bridge port's tagged VLANs (CNI `vlanTrunk`); empty
    /// for none.
    pub trunk: crate::model::Trunk,
}

/// The kernel's longest alias (IFALIASZ less its NUL).
pub const ALIAS_MAX: usize = 255;

impl fmt::Display for Alias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::new();
        self.write_words(&mut text)?;
        // A trunk too long for the alias is left out of it (the kernel's `bridge
        // vlan show` still lists it).
        let trunk = format!(" trunk={}", self.trunk);
        if !self.trunk.is_empty() && text.len() + trunk.len() <= ALIAS_MAX {
            text.push_str(&trunk);
        }
        f.write_str(&text)
    }
}

impl Alias {
    fn write_words(&self, f: &mut impl fmt::Write) -> fmt::Result {
        write!(
            f,
            "{PREFIX}{VERSION} guest={} ns={} if={} host={} mode={}",
            self.guest,
            self.ns,
            self.container_if,
            self.host_if,
            self.kind.as_str()
        )?;
        match self.vlan {
            Some(v) => write!(f, " vlan={v}"),
            None => Ok(()),
        }
    }
}

impl Alias {
    /// `None` for an alias that is not ours (or none at all); an error for one that
    /// says it is ours but cannot be read (another version, a field missing).
    pub fn parse(text: &str) -> Option<Result<Alias>> {
        let rest = text.strip_prefix(PREFIX)?;
        Some(parse_words(rest).map_err(|e| anyhow!("unreadable pipework alias '{text}': {e}")))
    }
}

fn parse_words(rest: &str) -> Result<Alias> {
    let mut words = rest.split(' ').filter(|w| !w.is_empty());
    let version = words.next().unwrap_or_default();
    if version != VERSION {
        bail!("version '{version}' is not {VERSION}");
    }
    let (mut guest, mut ns, mut cif, mut host, mut kind, mut vlan) = (None, None, None, None, None, None);
    let mut trunk = crate::model::Trunk::default();
    for word in words {
        let (key, value) = word.split_once('=').ok_or_else(|| anyhow!("'{word}' is not key=value"))?;
        match key {
            "guest" => guest = Some(GuestRef::parse(value)?),
            "ns" => ns = Some(value.parse::<u64>().map_err(|_| anyhow!("bad ns '{value}'"))?),
            "if" => cif = Some(value.to_string()),
            "host" => host = Some(value.to_string()),
            "mode" => {
                let found = Kind::ALL.iter().find(|(_, s)| *s == value).map(|(k, _)| *k);
                kind = Some(found.ok_or_else(|| anyhow!("unknown mode '{value}'"))?)
            }
            "vlan" => vlan = Some(value.parse::<u16>().map_err(|_| anyhow!("bad vlan '{value}'"))?),
            "trunk" => trunk = value.parse()?,
            _ => {}
        }
    }
    let missing = |what: &str| anyhow!("no {what}=");
    Ok(Alias {
        guest: guest.ok_or_else(|| missing("guest"))?,
        ns: ns.ok_or_else(|| missing("ns"))?,
        container_if: cif.filter(|c| !c.is_empty()).ok_or_else(|| missing("if"))?,
        host_if: host.filter(|h| !h.is_empty()).ok_or_else(|| missing("host"))?,
        kind: kind.ok_or_else(|| missing("mode"))?,
        vlan,
        trunk,
    })
}

/// A netns path may hold spaces or '%': those (and any byte outside a safe set)
/// become `%XX`, so that the alias stays one word per field.
fn escape(s: &str) -> String {
    let safe = |b: u8| b.is_ascii_alphanumeric() || b"/._-+@:,".contains(&b);
    s.bytes().map(|b| if safe(b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

fn unescape(s: &str) -> Result<String> {
    let mut out = Vec::new();
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hex: String = bytes.by_ref().take(2).map(char::from).collect();
        out.push(u8::from_str_radix(&hex, 16).map_err(|_| anyhow!("bad escape %{hex}"))?);
    }
    String::from_utf8(out).map_err(|_| anyhow!("netns path is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias(guest: GuestRef, kind: Kind) -> Alias {
        Alias {
            guest,
            ns: 4026532001,
            container_if: "eth1".into(),
            host_if: "br1".into(),
            kind,
            vlan: None,
            trunk: Default::default(),
        }
    }

    #[test]
    fn round_trips() {
        let id = "c0ffee".repeat(10) + "abcd";
        for a in [
            alias(GuestRef::Docker(id), Kind::Ovs),
            alias(GuestRef::Pid(4242), Kind::Bridge),
            alias(GuestRef::Netns("/run/netns/my blue%ns".into()), Kind::Macvlan),
            alias(GuestRef::Pid(1), Kind::Dummy),
            Alias { vlan: Some(4095), ..alias(GuestRef::Docker("c0ffee".repeat(10) + "abcd"), Kind::Ovs) },
            Alias { trunk: "10-20,30".parse().unwrap(), ..alias(GuestRef::Pid(7), Kind::Bridge) },
        ] {
            let text = a.to_string();
            assert!(text.len() <= 255, "IFALIASZ: {text}");
            assert_eq!(Alias::parse(&text).unwrap().unwrap(), a, "{text}");
        }
    }

    #[test]
    fn the_text_is_short_and_plain() {
        assert_eq!(
            alias(GuestRef::Pid(4242), Kind::Bridge).to_string(),
            "pipework:v1 guest=pid:4242 ns=4026532001 if=eth1 host=br1 mode=bridge"
        );
        let a = alias(GuestRef::Netns("/run/netns/a b".into()), Kind::Ovs).to_string();
        assert!(a.contains("guest=netns:/run/netns/a%20b "), "{a}");
    }

    #[test]
    fn a_trunk_too_long_for_the_alias_is_left_out() {
        let a = Alias { trunk: "3-4".parse().unwrap(), ..alias(GuestRef::Pid(4242), Kind::Bridge) };
        assert!(a.to_string().ends_with(" mode=bridge trunk=3-4"), "{a}");
        let odd = crate::model::Trunk::from_ranges((1..2000).step_by(2).map(|v| (v, v)));
        let a = Alias { trunk: odd, ..alias(GuestRef::Pid(4242), Kind::Bridge) };
        let text = a.to_string();
        assert!(text.ends_with(" mode=bridge") && text.len() <= ALIAS_MAX, "{text}");
    }

    #[test]
    fn not_ours_is_none_and_corrupt_is_an_error() {
        assert!(Alias::parse("eth2").is_none(), "a --direct-phys NIC's old name");
        assert!(Alias::parse("uplink to rack 3").is_none());
        for bad in [
            "pipework:v2 guest=pid:1 ns=1 if=eth1 host=br1 mode=bridge",
            "pipework:v1 guest=pid:x ns=1 if=eth1 host=br1 mode=bridge",
            "pipework:v1 guest=pid:1 if=eth1 host=br1 mode=bridge",
            "pipework:v1 guest=pid:1 ns=1 if=eth1 host=br1 mode=tunnel",
            "pipework:v1 guest=web1 ns=1 if=eth1 host=br1 mode=bridge",
            "pipework:",
        ] {
            let e = Alias::parse(bad).unwrap().unwrap_err().to_string();
            assert!(e.contains("unreadable pipework alias"), "{bad}: {e}");
        }
        let extra = "pipework:v1 guest=pid:1 ns=1 if=eth1 host=br1 mode=bridge later=yes";
        assert!(Alias::parse(extra).unwrap().is_ok(), "unknown keys are skipped");
    }
}
