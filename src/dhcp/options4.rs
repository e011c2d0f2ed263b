//! What a DHCPv4 lease says beyond the address, as the built-in client applies it: the
//! classless static routes (RFC 3442's option 121, Microsoft's 249 when 121 is absent)
//! and the interface MTU (option 26). Each is checked; a bad one is left out with one
//! warning line naming the option, and the rest of the lease is used.
//!
//! mozim parses the options. It drops an option it cannot parse (a prefix longer
//! than 32, a truncated entry) whole, saying so only to the `log` crate: [`capture`]
//! collects those lines for the exchange's thread, so that the warning names them.

use std::cell::RefCell;
use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;
use mozim::DhcpV4Lease;

use crate::plan::dhcp::LeaseRoute;

/// RFC 791's smallest datagram every host must take; RFC 2132 section 5.1's least MTU.
pub const MIN_MTU: u16 = 576;

/// Microsoft's classless static route option, read when 121 is absent.
const MS_CLASSLESS: u8 = 249;

/// The lease's router and routes: with classless static routes, their default route
/// gives the router and the router option is ignored (RFC 3442); a route whose router
/// is not on the lease's subnet is left out.
pub fn routes(
    l: &DhcpV4Lease,
    addr: Ipv4Network,
    warnings: &mut Vec<String>,
) -> (Option<Ipv4Addr>, Vec<LeaseRoute>) {
    for dropped in take_dropped() {
        warnings.push(crate::report::warning(format!(
            "the DHCP server's option {dropped} is malformed, so it is ignored"
        )));
    }
    let Some(classless) = &l.classless_routes else {
        if l.get_option_raw(MS_CLASSLESS).is_some() {
            warnings.push(crate::report::warning(format!(
                "the DHCP server's option {MS_CLASSLESS} is malformed, so it is ignored"
            )));
        }
        return (
            l.gateways.as_ref().and_then(|g| g.first().copied()).filter(|r| !r.is_unspecified()),
            Vec::new(),
        );
    };
    let ms = l.get_option_raw(121).is_none() && l.get_option_raw(MS_CLASSLESS).is_some();
    let code = if ms { MS_CLASSLESS } else { 121 };
    let (mut router, mut routes, mut off_link) = (None, Vec::new(), Vec::new());
    for r in classless {
        // Only the prefix's octets are sent (RFC 3442): the rest is the network's.
        let Ok(dst) = Ipv4Network::new(r.destination, r.prefix_length) else { continue };
        let Ok(dst) = Ipv4Network::new(dst.network(), dst.prefix()) else { continue };
        let via = (!r.router.is_unspecified()).then_some(r.router);
        if let Some(gw) = via.filter(|gw| !addr.contains(*gw)) {
            off_link.push(format!("{dst} via {gw}"));
            continue;
        }
        match (dst.prefix(), via) {
            (0, Some(gw)) if router.is_none() => router = Some(gw),
            _ if routes.iter().any(|known: &LeaseRoute| known.dst == dst) => {}
            _ => routes.push(LeaseRoute { dst, via }),
        }
    }
    if !off_link.is_empty() {
        warnings.push(crate::report::warning(format!(
            "the DHCP server's option {code} routes {} through a router not on {addr}, so they are left out",
            off_link.join(", ")
        )));
    }
    (router, routes)
}

/// Option 26, if it can be applied: at least 576, and no more than the host side's
/// `max` (a bigger one would drop the guest's big packets); without `max`, never.
pub fn mtu(l: &DhcpV4Lease, max: Option<u32>, warnings: &mut Vec<String>) -> Option<u32> {
    let mtu = l.mtu?;
    let bad = if mtu < MIN_MTU {
        format!("is below {MIN_MTU}")
    } else {
        match max {
            Some(max) if u32::from(mtu) <= max => return Some(mtu.into()),
            Some(max) => format!("is above the host side's {max}"),
            None => return None,
        }
    };
    warnings.push(crate::report::warning(format!(
        "the DHCP server's option 26 (interface MTU) {mtu} {bad}, so it is not applied"
    )));
    None
}

thread_local! {
    /// The options mozim dropped on this thread since they were last taken.
    static DROPPED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// mozim said, on this thread, that the server refused a lease (DHCPNAK).
    static REFUSED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The server refused a lease (DHCPNAK) since this was last asked: mozim says so
/// only through `log` (its state after a DHCPNAK and after an unanswered
/// INIT-REBOOT is the same), and the keeper's status names the reason.
pub fn take_refused() -> bool {
    REFUSED.with(|r| r.replace(false))
}

/// Collect, on each thread, the option codes mozim says it ignored as malformed.
/// Installed once per process; nothing else in pipework logs through `log`.
pub fn capture() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if log::set_logger(&Dropped).is_ok() {
            log::set_max_level(log::LevelFilter::Info);
        }
    });
}

fn take_dropped() -> Vec<u8> {
    let mut codes = DROPPED.with(|d| std::mem::take(&mut *d.borrow_mut()));
    codes.sort_unstable();
    codes.dedup();
    codes
}

struct Dropped;

impl log::Log for Dropped {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target().starts_with("mozim")
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // mozim's words: "Ignore DHCPv4 option {code} due to parsing error: ...".
        let text = record.args().to_string();
        if text.contains("DHCPNAK") {
            REFUSED.with(|r| r.set(true));
        }
        let code = text.strip_prefix("Ignore DHCPv4 option ").and_then(|rest| rest.split(' ').next());
        if let Some(code) = code.and_then(|c| c.parse::<u8>().ok()) {
            DROPPED.with(|d| d.borrow_mut().push(code));
        }
    }

    fn flush(&self) {}
}

/// glibc reads no more than 3 name servers (MAXNS) and, before 2.26, 6 search
/// domains in 256 characters: what a resolv.conf line can carry everywhere.
pub const MAX_SERVERS: usize = 3;
pub const MAX_SEARCH: usize = 6;
pub const MAX_SEARCH_CHARS: usize = 256;

/// The name servers (option 6) and search domains (119, else 15's domain name),
/// bounded as above; a name that is no DNS name (a space, a newline that would
/// start a line of its own in resolv.conf) is left out. One warning for each option
/// cut short.
pub fn dns(l: &DhcpV4Lease, warnings: &mut Vec<String>) -> (Vec<Ipv4Addr>, Vec<String>) {
    let mut servers: Vec<Ipv4Addr> = l.dns_srvs.clone().unwrap_or_default();
    servers.retain(|s| !s.is_unspecified() && !s.is_broadcast());
    let servers = first_servers(servers, "DHCP server's option 6", warnings);
    let (code, names) = match (&l.domain_search, &l.domain_name) {
        (Some(list), _) => (119, list.clone()),
        (None, Some(name)) => (15, vec![name.clone()]),
        (None, None) => (119, Vec::new()),
    };
    (servers, search_list(&names, &format!("DHCP server's option {code}"), warnings))
}

/// The first [`MAX_SERVERS`] of `servers`, with a warning naming the option
/// (`what`, e.g. `DHCP server's option 6`) when there were more.
pub fn first_servers<T>(mut servers: Vec<T>, what: &str, warnings: &mut Vec<String>) -> Vec<T> {
    if servers.len() > MAX_SERVERS {
        warnings.push(crate::report::warning(format!(
            "the {what} has {} name servers; only the first {MAX_SERVERS} are used",
            servers.len()
        )));
        servers.truncate(MAX_SERVERS);
    }
    servers
}

/// The search domains of `names` that are DNS names, bounded as resolv.conf needs;
/// one warning naming the option (`what`) when some are left out.
pub fn search_list(names: &[String], what: &str, warnings: &mut Vec<String>) -> Vec<String> {
    let given = names.len();
    let mut search: Vec<String> = Vec::new();
    let mut chars = 0;
    for name in names.iter().map(|n| n.trim_end_matches('.')).filter(|n| is_dns_name(n)) {
        if search.len() == MAX_SEARCH || chars + name.len() + 1 > MAX_SEARCH_CHARS {
            break;
        }
        chars += name.len() + 1;
        search.push(name.to_string());
    }
    if search.len() < given {
        warnings.push(crate::report::warning(format!(
            "the {what} has {given} search domains; {} are used (at most {MAX_SEARCH} \
             DNS names in {MAX_SEARCH_CHARS} characters)",
            search.len()
        )));
    }
    search
}

/// The domain name (option 15), if it is a DNS name; one warning if it is not.
pub fn domain(l: &DhcpV4Lease, warnings: &mut Vec<String>) -> Option<String> {
    let name = l.domain_name.as_deref()?.trim_end_matches('.');
    if is_dns_name(name) {
        return Some(name.to_string());
    }
    warnings.push(crate::report::warning("the DHCP server's option 15 is no DNS name, so it is ignored"));
    None
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}
