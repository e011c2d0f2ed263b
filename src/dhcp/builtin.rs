//! The built-in DHCPv4 client, `dhcp4[-f][:OPTS]`: nothing to install on the host or in
//! the guest. mozim does the packets and the RFC 2131 state machine (DISCOVER, OFFER,
//! REQUEST, ACK; renewing at T1, rebinding at T2) over a raw socket; pipework applies
//! the lease itself, by the steps of a static address. `dhcp4-f` hands the lease to a
//! keeper process (`keep`).

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use ipnetwork::Ipv4Network;
use mozim::{DhcpV4Client, DhcpV4Config, DhcpV4Lease, DhcpV4State};
use nix::sched::{setns, CloneFlags};

use super::{options4, Interface, Target};
use crate::plan::dhcp::BuiltinOptions;
use crate::plan::{DhcpRequest, Lease};

/// udhcpc gives up after about 30 s too (3 discovers, 3 s apart, a 20 s pause).
const DEFAULT_TIMEOUT: u32 = 30;

/// mozim's configuration: our MAC as chaddr, the client id (the guest's stable
/// name's, else the MAC as udhcpc sends it), our name.
pub fn config(iface: &Interface, timeout: u32) -> Result<DhcpV4Config> {
    let mut c = DhcpV4Config::new(&iface.dev);
    c.set_iface_index(iface.index);
    c.set_iface_mac_raw(&iface.mac).map_err(|e| anyhow!("{e}"))?;
    c.set_host_name(&iface.hostname).set_timeout_sec(timeout);
    match &iface.client_id {
        // RFC 4361: type 255, IAID and DUID.
        Some(id) => c.set_client_id(255, id),
        None => c.use_mac_as_client_id(),
    };
    Ok(c)
}

/// DISCOVER to ACK: the lease, for the caller to apply. Changes nothing itself.
pub async fn acquire(req: &DhcpRequest, target: &Target<'_>) -> Result<(Lease, Vec<String>)> {
    let opts = BuiltinOptions::parse(&req.options)?;
    let iface = Interface::of(req, target)?;
    // The exchange blocks a thread for up to the timeout: on the runtime's blocking
    // pool, so that other lines of a --batch go on meanwhile.
    let netns = target.netns.try_clone_to_owned().context("cannot duplicate the guest's netns fd")?;
    let timeout = timeout(req, &opts);
    let exchange = crate::blocking::run("DHCP", move || exchange(netns.as_fd(), &iface, timeout));
    // An interrupted exchange is left to end on its own (it changes nothing itself).
    tokio::select! {
        done = exchange => done,
        signal = crate::interrupt::arrived() => Err(signal.into()),
    }
}

/// How long the exchange may take: `timeout=`, else `--timeout`, else 30 s.
pub(super) fn timeout(req: &DhcpRequest, opts: &BuiltinOptions) -> u32 {
    opts.timeout.or(req.timeout.map(|d| d.as_secs_f64().ceil() as u32)).unwrap_or(DEFAULT_TIMEOUT)
}

/// DISCOVER to ACK inside the guest.
pub fn exchange(netns: BorrowedFd<'_>, iface: &Interface, timeout: u32) -> Result<(Lease, Vec<String>)> {
    in_guest(netns, || {
        options4::capture();
        let rt = desync::runtime()?;
        let lease = rt.block_on(discover(iface, timeout))?;
        from_mozim(&lease, iface.max_mtu)
    })
}

/// Run `work` in the guest's network namespace. mozim opens its sockets in the
/// calling thread's namespace, so this runs on a thread of its own that enters the
/// guest's, and `work` makes a runtime of its own (the caller's thread never changes
/// namespace).
pub fn in_guest<T: Send>(netns: BorrowedFd<'_>, work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| -> Result<T> {
            setns(netns, CloneFlags::CLONE_NEWNET).context("cannot enter the guest's network namespace")?;
            work()
        })
        .join()
        .unwrap_or_else(|_| Err(anyhow!("DHCP thread panicked")))
    })
}

/// mozim waits a random 0-200 ms before its first DISCOVER (see [`desync`]).
const FIRST_WAIT: Duration = Duration::from_millis(200);

async fn discover(iface: &Interface, timeout: u32) -> Result<DhcpV4Lease> {
    let mut client = DhcpV4Client::init(config(iface, 0)?, None).await.map_err(|e| anyhow!("{e}"))?;
    // Armed on the paused clock, if any, which the skip moves on by its wait.
    let limit = Duration::from_secs(timeout.into()) + desync::skipped(FIRST_WAIT);
    match tokio::time::timeout(limit, bound(&mut client)).await {
        Ok(lease) => lease,
        Err(_) => bail!("no DHCP server answered on {} within {timeout} s", iface.dev),
    }
}

async fn bound(client: &mut DhcpV4Client) -> Result<DhcpV4Lease> {
    let mut state = desync::first_run(client.run(), FIRST_WAIT).await;
    loop {
        match state {
            Ok(DhcpV4State::Done(lease)) => return Ok(*lease),
            Ok(_) => {}
            Err(e) => bail!("{e}"),
        }
        state = client.run().await;
    }
}

/// mozim waits a random time before its first message: 0-200 ms before a DISCOVER
/// (RFC 2131 section 4.4.1), 0-1 s before a Solicit (RFC 8415 section 18.2.1, its
/// SOL_MAX_DELAY), so that hosts booting together do not all ask at once. By
/// default it is left to: the skip needs tokio's paused clock, which is a test
/// utility, and stays out of the release build. Built with the `fast-dhcp-start`
/// feature, the exchange's runtime starts with its clock paused: the first poll arms
/// that wait, the clock is moved past it, and only then runs in real time (every
/// later timer is real), so the client sends at once, as udhcpc does.
#[cfg(feature = "fast-dhcp-start")]
pub mod desync {
    use std::future::Future;
    use std::time::Duration;

    /// How far the clock was moved on for a first wait of at most `wait`.
    pub fn skipped(wait: Duration) -> Duration {
        wait
    }

    pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()
    }

    /// The client's first run, its first wait (at most `wait`) skipped.
    pub async fn first_run<F: Future>(first: F, wait: Duration) -> F::Output {
        let mut first = std::pin::pin!(first);
        match futures::poll!(first.as_mut()) {
            std::task::Poll::Ready(state) => {
                tokio::time::resume();
                state
            }
            std::task::Poll::Pending => {
                tokio::time::advance(wait).await;
                tokio::time::resume();
                first.await
            }
        }
    }
}

#[cfg(not(feature = "fast-dhcp-start"))]
pub mod desync {
    use std::future::Future;
    use std::time::Duration;

    pub fn skipped(_wait: Duration) -> Duration {
        Duration::ZERO
    }

    pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    }

    pub async fn first_run<F: Future>(first: F, _wait: Duration) -> F::Output {
        first.await
    }
}

/// Our lease from mozim's, and a warning for each option left out. `max_mtu`: the
/// most option 26 may set (see `options4`).
pub fn from_mozim(l: &DhcpV4Lease, max_mtu: Option<u32>) -> Result<(Lease, Vec<String>)> {
    let addr = Ipv4Network::with_netmask(l.yiaddr, l.subnet_mask)
        .map_err(|_| anyhow!("the server gave a bad netmask {} for {}", l.subnet_mask, l.yiaddr))?;
    let mut warnings = Vec::new();
    let (router, routes) = options4::routes(l, addr, &mut warnings);
    let mtu = options4::mtu(l, max_mtu, &mut warnings);
    let (dns, search) = options4::dns(l, &mut warnings);
    let domain = options4::domain(l, &mut warnings);
    let lease = Lease {
        addr,
        broadcast: l.broadcast_addr,
        router,
        server: l.srv_id,
        t1: l.t1_sec,
        t2: l.t2_sec,
        secs: l.lease_time_sec,
        routes,
        mtu,
        dns,
        search,
        domain,
    };
    Ok((lease, warnings))
}

/// mozim's lease from ours, to start the keeper's client in the bound state.
pub fn to_mozim(l: &Lease) -> DhcpV4Lease {
    let mut m = DhcpV4Lease::default();
    m.yiaddr = l.addr.ip();
    m.subnet_mask = l.addr.mask();
    m.broadcast_addr = l.broadcast;
    m.srv_id = l.server;
    m.siaddr = l.server;
    m.gateways = l.router.map(|r| vec![r]);
    m.mtu = l.mtu.and_then(|m| u16::try_from(m).ok());
    m.dns_srvs = (!l.dns.is_empty()).then(|| l.dns.clone());
    m.domain_search = (!l.search.is_empty()).then(|| l.search.clone());
    m.domain_name = l.domain.clone();
    (m.t1_sec, m.t2_sec, m.lease_time_sec) = (l.t1, l.t2, l.secs);
    m
}

/// `renew=N`: T1 brought forward to N seconds when the server's is later.
pub fn shorten(mut l: DhcpV4Lease, renew: Option<u32>) -> DhcpV4Lease {
    if let Some(r) = renew.filter(|r| *r < l.t1_sec) {
        l.t1_sec = r;
    }
    l
}

/// How long the keeper waits before trying again after mozim gave up.
pub const RETRY: Duration = Duration::from_secs(1);
