//! IPSPEC as a comma-separated list (issue 12, dual stack in one attach): how it
//! splits, the family of each element, and the rules a list keeps. One element is
//! the original's grammar, parsed and checked exactly as before.

use anyhow::{bail, Result};

use super::ipspec::IpSpec;
use super::names::Family;

/// The elements of IPSPEC. A DHCP form with `:OPTIONS` takes the rest of the text,
/// commas and all (the original passes its options on untouched, and they may hold
/// commas), so in a list it comes last.
pub fn split(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some((head, tail)) = rest.split_once(',') {
        if has_dhcp_options(head) {
            break;
        }
        out.push(head);
        rest = tail;
    }
    out.push(rest);
    out
}

fn has_dhcp_options(element: &str) -> bool {
    element.split_once(':').is_some_and(|(word, _)| matches!(word.parse(), Ok(IpSpec::Dhcp { .. })))
}

/// The family an element of a list configures: a DHCP form its own (the original's
/// words are DHCPv4, the `6` words DHCPv6), `slaac` IPv6; `0/0`, which a list
/// refuses, has its gateway's or none.
pub fn family_in_list(spec: &IpSpec) -> Option<Family> {
    match spec {
        IpSpec::Dhcp { family, .. } => Some(*family),
        other => other.family(),
    }
}

/// A list of two or more elements, each parsed: refused when it asks for something
/// that cannot be done in one attach, before anything is touched.
pub fn check(text: &str, elements: &[(&str, IpSpec)]) -> Result<()> {
    let bad = |why: String| -> Result<()> { bail!("bad IPSPEC '{text}': expected {LIST_FORM} ({why})") };
    let mut seen: Vec<(&str, &IpSpec, Family)> = Vec::new();
    for (word, spec) in elements {
        let family = match (spec, family_in_list(spec)) {
            (IpSpec::Static { addr: None, .. }, _) | (_, None) => {
                return bad(format!("{word} cannot be part of a list"));
            }
            (_, Some(family)) => family,
        };
        for (other, earlier, f) in &seen {
            if *f != family {
                continue;
            }
            let why = match (*earlier, spec) {
                (IpSpec::Static { gateway: Some(a), .. }, IpSpec::Static { gateway: Some(b), .. }) => {
                    format!("two {family} gateways, {a} and {b}; one per family")
                }
                (IpSpec::Static { addr: Some(a), .. }, IpSpec::Static { addr: Some(b), .. })
                    if a.ip() == b.ip() =>
                {
                    format!("ADDR {} twice", a.ip())
                }
                (IpSpec::Static { .. }, IpSpec::Static { .. }) => continue,
                _ => format!("{other} and {word} both configure {family}; {AUTO_ALONE}"),
            };
            return bad(why);
        }
        seen.push((word, spec, family));
    }
    Ok(())
}

/// The expected form of a list, for its errors.
const LIST_FORM: &str = "IPSPEC[,IPSPEC...], at most one gateway and one DHCP form or slaac per family";

/// Why a DHCP form or `slaac` cannot share its family.
const AUTO_ALONE: &str = "a DHCP form or slaac configures its family alone";

/// `-a` with a list: every element must be of that family; without it, the list's
/// first element's.
pub fn family(flag: Option<&str>, elements: &[(&str, IpSpec)]) -> Result<Family> {
    let first = elements.first().and_then(|(_, s)| family_in_list(s)).unwrap_or(Family::V4);
    let Some(flag) = flag else {
        return Ok(first);
    };
    let want: Family = flag.parse()?;
    for (word, spec) in elements {
        match family_in_list(spec) {
            Some(f) if f != want => bail!("-a {flag} contradicts the {f} address {word}"),
            _ => {}
        }
    }
    Ok(want)
}

/// IPSPEC as the command line takes it (one element, or a list that keeps the
/// list's rules): every element, in order. A CNI IPAM plugin's answer is checked
/// by this too, so that it is refused exactly as the command line refuses it.
pub fn list(text: &str) -> Result<Vec<IpSpec>> {
    let (first, more, _) = parse(text, None)?;
    Ok(std::iter::once(first).chain(more).collect())
}

/// IPSPEC and `-a`: one element exactly as the original's grammar; a list element
/// by element, then as a whole. The first element, the others, and the family.
pub fn parse(text: &str, flag: Option<&str>) -> Result<(IpSpec, Vec<IpSpec>, Family)> {
    let words = split(text);
    if words.len() == 1 {
        let ip: IpSpec = text.parse()?;
        let family = family_of_one(flag, &ip, text)?;
        return Ok((ip, Vec::new(), family));
    }
    let elements = words.into_iter().map(|w| Ok((w, w.parse()?))).collect::<Result<Vec<(&str, IpSpec)>>>()?;
    check(text, &elements)?;
    let family = family(flag, &elements)?;
    let mut specs = elements.into_iter().map(|(_, s)| s);
    let first = specs.next().expect("two or more elements");
    Ok((first, specs.collect(), family))
}

/// `-a` wins when given, but an address that contradicts it is an error.
fn family_of_one(flag: Option<&str>, ip: &IpSpec, ip_text: &str) -> Result<Family> {
    match (flag.map(str::parse::<Family>).transpose()?, ip.family()) {
        (Some(f), Some(i)) if f != i => {
            bail!("-a {} contradicts the {i} address {ip_text}", flag.unwrap_or_default())
        }
        (Some(f), _) => Ok(f),
        (None, Some(i)) => Ok(i),
        (None, None) => Ok(Family::V4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> Vec<(&str, IpSpec)> {
        split(s).into_iter().map(|w| (w, w.parse().unwrap())).collect()
    }

    fn refused(s: &str) -> String {
        check(s, &parsed(s)).unwrap_err().to_string()
    }

    #[test]
    fn split_on_commas_a_dhcp_form_with_options_takes_the_rest() {
        assert_eq!(split("10.0.0.2/24"), ["10.0.0.2/24"]);
        assert_eq!(
            split("10.0.0.2/24@10.0.0.1,fd00::2/64@fd00::1"),
            ["10.0.0.2/24@10.0.0.1", "fd00::2/64@fd00::1"]
        );
        assert_eq!(split("dhcp4,fd00::2/64"), ["dhcp4", "fd00::2/64"]);
        assert_eq!(split("fd00::2/64,dhcp4:timeout=5"), ["fd00::2/64", "dhcp4:timeout=5"]);
        // The original's single DHCP form keeps its options whole.
        assert_eq!(split("udhcpc:-x hostname:a,b"), ["udhcpc:-x hostname:a,b"]);
        assert_eq!(split("fd00::2/64,udhcpc:-x a,b"), ["fd00::2/64", "udhcpc:-x a,b"]);
        // An IPv6 address's colons are not a DHCP form's.
        assert_eq!(split("fd00::2/64,10.0.0.2/24"), ["fd00::2/64", "10.0.0.2/24"]);
        assert_eq!(split("a,,b"), ["a", "", "b"]);
    }

    #[test]
    fn dual_stack_lists_that_work() {
        for ok in [
            "10.0.0.2/24@10.0.0.1,fd00::2/64@fd00::1",
            "10.0.0.2/24@10.0.0.1,slaac",
            "dhcp4,fd00::2/64",
            "udhcpc,slaac",
            "10.0.0.2/24,10.0.1.2/24@10.0.0.1",
            "fd00::2/64@fd00::1,fd01::2/64,10.0.0.2/24",
            "10.0.0.2/24,::1/128",
            "10.0.0.2/24,dhcp6",
            "10.0.0.2/24@10.0.0.1,dhclient6-f",
            "dhcp4,dhcp6:timeout=5",
            "udhcpc,dhcpcd6",
        ] {
            assert!(check(ok, &parsed(ok)).is_ok(), "{ok}: {:?}", check(ok, &parsed(ok)));
        }
    }

    #[test]
    fn lists_that_cannot_be_done_in_one_attach_are_refused() {
        let form = "expected IPSPEC[,IPSPEC...], at most one gateway and one DHCP form or slaac per family";
        for (s, why) in [
            (
                "10.0.0.2/24@10.0.0.1,10.0.1.2/24@10.0.1.1",
                "two IPv4 gateways, 10.0.0.1 and 10.0.1.1; one per family",
            ),
            (
                "fd00::2/64@fd00::1,10.0.0.2/24,fd01::2/64@fd01::1",
                "two IPv6 gateways, fd00::1 and fd01::1; one per family",
            ),
            (
                "dhcp4,udhcpc",
                "dhcp4 and udhcpc both configure IPv4; a DHCP form or slaac configures its family alone",
            ),
            (
                "slaac,slaac",
                "slaac and slaac both configure IPv6; a DHCP form or slaac configures its family alone",
            ),
            (
                "dhcp4,10.0.0.2/24",
                "dhcp4 and 10.0.0.2/24 both configure IPv4; a DHCP form or slaac configures its family alone",
            ),
            (
                "fd00::2/64,slaac",
                "fd00::2/64 and slaac both configure IPv6; a DHCP form or slaac configures its family alone",
            ),
            (
                "dhcp6,slaac",
                "dhcp6 and slaac both configure IPv6; a DHCP form or slaac configures its family alone",
            ),
            (
                "fd00::2/64,dhclient6",
                "fd00::2/64 and dhclient6 both configure IPv6; a DHCP form or slaac configures its family alone",
            ),
            ("10.0.0.2/24,0/0", "0/0 cannot be part of a list"),
            ("0/0@10.0.0.1,fd00::2/64", "0/0@10.0.0.1 cannot be part of a list"),
            ("10.0.0.2/24,10.0.0.2/16", "ADDR 10.0.0.2 twice"),
        ] {
            assert_eq!(refused(s), format!("bad IPSPEC '{s}': {form} ({why})"));
        }
    }

    #[test]
    fn a_flag_holds_every_element_to_its_family() {
        assert_eq!(family(None, &parsed("10.0.0.2/24,fd00::2/64")).unwrap(), Family::V4);
        assert_eq!(family(None, &parsed("slaac,dhcp4")).unwrap(), Family::V6);
        assert_eq!(family(None, &parsed("dhcp6,10.0.0.2/24")).unwrap(), Family::V6);
        assert_eq!(family(Some("6"), &parsed("fd00::2/64,fd01::2/64@fd01::1")).unwrap(), Family::V6);
        assert_eq!(
            family(Some("6"), &parsed("fd00::2/64,10.0.0.2/24")).unwrap_err().to_string(),
            "-a 6 contradicts the IPv4 address 10.0.0.2/24"
        );
        assert_eq!(
            family(Some("4"), &parsed("dhcp4,slaac")).unwrap_err().to_string(),
            "-a 4 contradicts the IPv6 address slaac"
        );
        assert!(family(Some("5"), &parsed("10.0.0.2/24,fd00::2/64")).is_err());
    }
}
