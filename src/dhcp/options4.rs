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
        let code = text.strip_prefix("Ignore DHCPv4 option ").and_then(|rest| rest.split(' ').next());
        if let Some(code) = code.and_then(|c| c.parse::<u8>().ok()) {
            DROPPED.with(|d| d.borrow_mut().push(code));
        }
    }

    fn flush(&self) {}
}
