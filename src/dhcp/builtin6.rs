//! The built-in DHCPv6 client, `dhcp6[-f][:OPTS]`: an address (IA_NA), with nothing
//! to install on the host or in the guest and no daemon. The client is mozim's, the
//! crate the built-in DHCPv4 client already is: Solicit, Advertise, Request, Reply,
//! then Renew at T1 and Rebind at T2 (RFC 8415), over a UDP socket in the guest. The
//! CNI `dhcp` plugin and netavark have no DHCPv6 at all; dhclient is end-of-life
//! upstream, and dhcpcd a daemon of its own.
//!
//! What mozim lacks, and pipework does around it:
//! - it reads nothing of the interface without its netlink feature (off here, as
//!   pipework has its own netlink): the index, the MAC (its DUID-LL) and the
//!   link-local address are handed to it;
//! - it binds to the link-local address, which the kernel refuses (EADDRNOTAVAIL)
//!   while duplicate address detection runs: this waits until the address is
//!   usable, which the interface's `optimistic_dad` (RFC 4429, set by the planner
//!   before the link comes up) makes at once where the kernel has it;
//! - DHCPv6 has no prefix length and no router: the address is applied as a /128,
//!   and the on-link prefix and default route come from the router's advertisement
//!   (see `plan::addressing::lease_steps`);
//! - no Rapid Commit, Confirm, Reconfigure or Information-request; the DNS servers
//!   and search domains of its Reply are used by `dhcp6:dns` (see `apply::resolv`).

use std::net::Ipv6Addr;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use ipnetwork::Ipv6Network;
use mozim::{
    DhcpV6Client, DhcpV6Config, DhcpV6Duid, DhcpV6DuidUuid, DhcpV6IaType, DhcpV6Lease, DhcpV6Mode,
    DhcpV6State,
};

use super::builtin::{self, desync};
use super::{options4, Interface, Target};
use crate::netlink::{LinkLocal, Netlink};
use crate::plan::dhcp::BuiltinOptions;
use crate::plan::{DhcpRequest, Lease6};

/// mozim waits up to SOL_MAX_DELAY (1 s) before its first Solicit (see `desync`).
const FIRST_WAIT: Duration = Duration::from_secs(1);

/// How often the link-local address is looked at while DAD runs.
const POLL: Duration = Duration::from_millis(20);

/// OPTION_SERVERID.
const SERVER_ID: u16 = 2;

/// mozim's configuration, sent from `link_local`. The DUID and IAID are those of
/// the DHCPv4 client identifier (RFC 4361 section 6.1: one DUID for both
/// protocols): a DUID-UUID (RFC 6355) of the guest's stable name and the
/// interface's IAID, so that a container re-created with a new MAC is the same
/// client; without a stable name (or with `id=mac`), our MAC (DUID-LL), stable for
/// the interface.
pub fn config(iface: &Interface, link_local: Ipv6Addr) -> DhcpV6Config {
    let mut c = DhcpV6Config::new(&iface.dev, DhcpV6Mode::NonTemporaryAddresses);
    c.set_iface_index(iface.index).set_link_local_ip(link_local);
    match iface.client_id.as_deref().and_then(duid_uuid) {
        Some((iaid, duid)) => c.set_iaid(iaid).set_duid(duid),
        None => c.set_duid_by_iface_mac(&iface.mac),
    };
    c
}

/// The IAID and DUID-UUID of a DHCPv4 client identifier of ours (IAID, then DUID
/// type 4 and the 16 bytes of the UUID).
fn duid_uuid(id: &[u8]) -> Option<(u32, DhcpV6Duid)> {
    let (iaid, duid) = id.split_first_chunk::<4>()?;
    let uuid: [u8; 16] = duid.strip_prefix(&[0, 4])?.try_into().ok()?;
    Some((u32::from_be_bytes(*iaid), DhcpV6Duid::UUID(DhcpV6DuidUuid::new(u128::from_be_bytes(uuid)))))
}

/// Solicit to Reply: the address, for the caller to apply. Changes nothing itself.
pub async fn acquire(req: &DhcpRequest, target: &Target<'_>) -> Result<(Lease6, Vec<String>)> {
    let opts = BuiltinOptions::parse(&req.options)?;
    let iface = Interface::of(req, target)?;
    let timeout = builtin::timeout(req, &opts);
    let deadline = Instant::now() + Duration::from_secs(timeout.into());
    let work = async {
        let link_local = usable_link_local(target.nl, target.index, &req.dev, deadline, timeout).await?;
        let netns = target.netns.try_clone_to_owned().context("cannot duplicate the guest's netns fd")?;
        let left = deadline.saturating_duration_since(Instant::now()).max(POLL);
        // On the runtime's blocking pool, so that other lines of a --batch go on meanwhile.
        crate::blocking::run("DHCPv6", move || exchange(netns.as_fd(), &iface, link_local, left, timeout))
            .await
    };
    // An interrupted exchange is left to end on its own (it changes nothing itself).
    tokio::select! {
        done = work => done,
        signal = crate::interrupt::arrived() => Err(signal.into()),
    }
}

/// The link-local address once a socket may bind to it, waiting out DAD.
pub async fn usable_link_local(
    nl: &Netlink,
    index: u32,
    dev: &str,
    deadline: Instant,
    timeout: u32,
) -> Result<Ipv6Addr> {
    loop {
        match nl.link_local(index).await.context("cannot read the link-local address")? {
            LinkLocal::Usable(addr) => return Ok(addr),
            LinkLocal::Duplicate(addr) => {
                bail!("{dev}'s link-local address {addr} is taken on the link (duplicate address detection failed)")
            }
            LinkLocal::Absent | LinkLocal::Tentative if Instant::now() >= deadline => {
                bail!("{dev} got no usable IPv6 link-local address within {timeout} s")
            }
            LinkLocal::Absent | LinkLocal::Tentative => tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                signal = crate::interrupt::arrived() => return Err(signal.into()),
            },
        }
    }
}

/// Solicit to Reply inside the guest, within `limit` (`timeout` for the message).
fn exchange(
    netns: BorrowedFd<'_>,
    iface: &Interface,
    link_local: Ipv6Addr,
    limit: Duration,
    timeout: u32,
) -> Result<(Lease6, Vec<String>)> {
    builtin::in_guest(netns, || {
        let rt = desync::runtime()?;
        let lease = rt.block_on(async {
            let mut client =
                DhcpV6Client::init(config(iface, link_local), None).await.map_err(|e| anyhow!("{e}"))?;
            // Armed on the paused clock, if any, which the skip moves on by its wait.
            let limit = limit + desync::skipped(FIRST_WAIT);
            match tokio::time::timeout(limit, bound(&mut client)).await {
                Ok(lease) => lease,
                Err(_) => bail!("no DHCPv6 server answered on {} within {timeout} s", iface.dev),
            }
        })?;
        from_mozim(&lease)
    })
}

async fn bound(client: &mut DhcpV6Client) -> Result<DhcpV6Lease> {
    let mut state = desync::first_run(client.run(), FIRST_WAIT).await;
    loop {
        match state {
            Ok(DhcpV6State::Done(lease)) => return Ok(*lease),
            Ok(_) => {}
            Err(e) => bail!("{e}"),
        }
        state = client.run().await;
    }
}

/// Our lease from mozim's: the address as a /128, the server's DUID as it sent it,
/// and its DNS options bounded (a warning for each cut short).
pub fn from_mozim(l: &DhcpV6Lease) -> Result<(Lease6, Vec<String>)> {
    if l.address.is_unspecified() {
        bail!("the server's reply holds no address");
    }
    let addr = Ipv6Network::new(l.address, 128).expect("a full-length prefix");
    let mut warnings = Vec::new();
    let (dns, search) = dns(l, &mut warnings);
    let lease = Lease6 {
        addr,
        server_id: server_id(l).ok_or_else(|| anyhow!("the server's reply holds no server identifier"))?,
        iaid: l.iaid,
        t1: l.t1_sec,
        t2: l.t2_sec,
        preferred: l.preferred_time_sec,
        valid: l.valid_time_sec,
        dns,
        search,
    };
    Ok((lease, warnings))
}

/// The name servers (option 23) and search domains (24), bounded as DHCPv4's are
/// (`options4`), a warning for each option cut short.
pub fn dns(l: &DhcpV6Lease, warnings: &mut Vec<String>) -> (Vec<Ipv6Addr>, Vec<String>) {
    let servers = l.dns_srvs.iter().copied().filter(|s| !s.is_unspecified() && !s.is_multicast());
    let dns = options4::first_servers(servers.collect(), "DHCPv6 server's option 23", warnings);
    (dns, options4::search_list(&l.domain_list, "DHCPv6 server's option 24", warnings))
}

/// The Server Identifier option's DUID, byte for byte. mozim hands options out whole
/// (code and length first), whatever its comment says.
fn server_id(l: &DhcpV6Lease) -> Option<Vec<u8>> {
    let raw = l.get_option_raw(SERVER_ID)?.into_iter().next()?;
    match raw.as_slice() {
        [0, 2, hi, lo, duid @ ..] if usize::from(u16::from_be_bytes([*hi, *lo])) == duid.len() => {
            Some(duid.to_vec())
        }
        _ => None,
    }
}

/// mozim's lease from ours, to start the keeper's client in the bound state. The
/// server's DUID goes back opaque: a Renew carries it as it came.
pub fn to_mozim(l: &Lease6) -> DhcpV6Lease {
    let mut m = DhcpV6Lease::default();
    m.address = l.addr.ip();
    m.prefix_len = 128;
    m.ia_type = Some(DhcpV6IaType::NonTemporaryAddresses);
    m.srv_duid = DhcpV6Duid::Raw(l.server_id.clone());
    m.iaid = l.iaid;
    m.dns_srvs = l.dns.clone();
    m.domain_list = l.search.clone();
    (m.t1_sec, m.t2_sec, m.preferred_time_sec, m.valid_time_sec) = (l.t1, l.t2, l.preferred, l.valid);
    m
}

/// `renew=N`: T1 brought forward to N seconds when the server's is later.
pub fn shorten(mut l: DhcpV6Lease, renew: Option<u32>) -> DhcpV6Lease {
    if let Some(r) = renew.filter(|r| *r < l.t1_sec) {
        l.t1_sec = r;
    }
    l
}
