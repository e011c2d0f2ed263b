//! The `dhcp4-f` and `dhcp6-f` keeper's own run (`pipework __dhcp-keep JSON`,
//! started by `dhcp::keep::start`): it lives in the guest's network namespace, renews
//! the lease at T1, rebinds at T2, and ends when the guest's process does. It must watch that
//! process: its own sockets keep the namespace, and so the interface, alive. Told
//! to stop (SIGTERM), or once the guest is gone, it sends a DHCPRELEASE (DHCPv6
//! Release) first. A new
//! address on rebinding is applied by the planner's lease steps, all or nothing;
//! with `dns`, new name servers are written into the guest's resolv.conf again.
//! `/var/run/dhcp4.HOSTNAME.lease` (`dhcp6.`) says how it is doing.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context as _, Result};
use mozim::{DhcpV4Client, DhcpV4State, DhcpV6Client, DhcpV6State};
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{signal, SignalKind};

use crate::apply::{self, Context};
use crate::dhcp::keep::Args;
use crate::dhcp::{builtin, builtin6};
use crate::netlink::{LinkLocal, Netlink};
use crate::plan::{addressing, Leased};

/// `pipework __dhcp-keep JSON`: keep the lease until the guest goes, or SIGTERM.
pub fn main(args: &[String]) -> ExitCode {
    let result = (|| -> Result<()> {
        let args = Args::parse(args.first().map(String::as_str).unwrap_or(""))?;
        if !crate::dhcp::gate::pass() {
            // Its run was killed before naming it: nothing would ever stop it.
            forget(&args);
            return Ok(());
        }
        crate::dhcp::options4::capture();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let outcome = rt.block_on(keep(&args));
        forget(&args);
        outcome
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::report::say(&format!("DHCP keeper: {e:#}"));
            ExitCode::from(1)
        }
    }
}

async fn keep(args: &Args) -> Result<()> {
    let guest = watch_guest(args.pid)?;
    let nl = Netlink::current()?;
    // The handler first: a rollback's SIGTERM in between would otherwise end the
    // keeper by default action and leave its status file behind.
    let mut term = signal(SignalKind::terminate())?;
    // The lease whose address the guest has; `None` while there is none (discovering
    // again after the server refused it, or after it ran out).
    let (mut client, mut current, state) = Client::start(&nl, args).await?;
    if args.bound_at.is_none() {
        hold(args, &args.lease);
    }
    let mut renewals = 0u32;
    // `dns`: the lease whose name servers the guest's resolv.conf has.
    let mut resolv_from = args.dns.then(|| args.lease.clone());
    report(args, current.as_ref(), renewals, &state);
    loop {
        tokio::select! {
            event = client.next(args.renew, args.iface.max_mtu) => match event {
                Ok(Event::Bound(new)) => {
                    match &current {
                        Some(old) if old.addr() != new.addr() => replace(&nl, args, old, &new).await?,
                        // Same address, other routes or MTU: the change applied.
                        Some(Leased::V4(old)) => {
                            if let Leased::V4(renewed) = &new {
                                let index = args.iface.index;
                                let steps = addressing::renewal_steps(&args.iface.dev, index, old, renewed);
                                run(&nl, args, &steps).await?;
                            }
                        }
                        Some(Leased::V6(_)) => {}
                        None => apply_lease(&nl, args, &new).await?,
                    }
                    hold(args, &new);
                    if let Some(from) = &resolv_from {
                        if rewrite_resolv_conf(args, from, &new) {
                            resolv_from = Some(new.clone());
                        }
                    }
                    current = Some(new);
                    renewals += 1;
                    report(args, current.as_ref(), renewals, "bound");
                }
                Ok(Event::State(state)) => {
                    // mozim back at its start: the lease is no longer ours (refused with a
                    // DHCPNAK, not confirmed by INIT-REBOOT, or run out while rebinding):
                    // its address and routes go, and discovery starts again.
                    let state = match (state.as_str(), current.take()) {
                        ("init_reboot" | "solicit", Some(old)) => {
                            withdraw(&nl, args, &old).await?;
                            let why = match crate::dhcp::options4::take_refused() {
                                true => "refused by the server (DHCPNAK)",
                                false => "not confirmed, or run out",
                            };
                            format!("discovering ({} {why})", old.addr())
                        }
                        (_, old) => {
                            current = old;
                            state
                        }
                    };
                    report(args, current.as_ref(), renewals, &state);
                }
                Err(e) => {
                    // The interface went away (deleted, or its guest without a pid gone).
                    if nl.link_by_name(&args.iface.dev).await?.is_none() {
                        return Ok(());
                    }
                    report(args, current.as_ref(), renewals, &format!("error: {e}"));
                    client.clean_up();
                    tokio::time::sleep(builtin::RETRY).await;
                }
            },
            // Told to stop (`del`), or the guest is gone: the lease goes back to the
            // server, as the other clients' release does; but for the identity of a
            // guest's stable name (a container's), which comes back after a restart
            // or re-creation and asks for it again: the server keeps it until then, or
            // until it runs out.
            _ = gone(&guest) => {
                return match (args.iface.client_id.as_ref(), current.as_ref()) {
                    (None, Some(lease)) => client.release(lease).await,
                    _ => Ok(()),
                };
            }
            _ = term.recv() => {
                return match current.as_ref() {
                    Some(lease) if !args.keep_lease_on_stop => client.release(lease).await,
                    _ => Ok(()),
                };
            }
        }
    }
}

/// mozim's client of the lease's family, started in the bound state.
enum Client {
    V4(DhcpV4Client),
    V6(DhcpV6Client),
}

/// What one run of the client came to: bound again (renewed, rebound, or a new
/// lease after starting over), or another state on the way.
enum Event {
    Bound(Leased),
    State(String),
}

impl Client {
    /// The client for `args.lease`, with the lease the guest holds now and the
    /// state to report. A lease just taken: started bound. A gone keeper's
    /// (`args.bound_at`): started in INIT-REBOOT, which asks the server to confirm it
    /// (RFC 2131 section 4.3.2); one that has run out is no longer the guest's to
    /// use: its address and routes go first, and the client starts from DISCOVER.
    async fn start(nl: &Netlink, args: &Args) -> Result<(Client, Option<Leased>, String)> {
        let e = |e: mozim::DhcpError| anyhow!("{e}");
        let lease = &args.lease;
        Ok(match (lease, args.bound_at) {
            (Leased::V4(l), Some(bound_at)) => {
                let held = crate::plan::HeldLease { lease: lease.clone(), bound_at };
                let config = builtin::config(&args.iface, 0)?;
                if held.expired(crate::dhcp::keep::now()) {
                    withdraw(nl, args, lease).await?;
                    let c = DhcpV4Client::init(config, None).await.map_err(e)?;
                    (Client::V4(c), None, format!("discovering ({} run out)", l.addr))
                } else {
                    let c = DhcpV4Client::init(config, Some(builtin::to_mozim(l))).await.map_err(e)?;
                    (Client::V4(c), Some(lease.clone()), "rebooting".to_string())
                }
            }
            (Leased::V4(l), None) => {
                let mut c = DhcpV4Client::init(builtin::config(&args.iface, 0)?, None).await.map_err(e)?;
                c.done(builtin::shorten(builtin::to_mozim(l), args.renew)).map_err(e)?;
                (Client::V4(c), Some(lease.clone()), "bound".to_string())
            }
            (Leased::V6(l), bound_at) => {
                // Its link-local address is usable by now: the lease came through it.
                let LinkLocal::Usable(ll) = nl.link_local(args.iface.index).await? else {
                    return Err(anyhow!("{} has no usable link-local address", args.iface.dev));
                };
                let config = builtin6::config(&args.iface, ll);
                let held = bound_at.map(|bound_at| crate::plan::HeldLease { lease: lease.clone(), bound_at });
                match held {
                    // A gone keeper's: renewed with the server first (mozim starts a
                    // client given a lease at Renew), or, run out, given up for a
                    // Solicit.
                    Some(held) if held.expired(crate::dhcp::keep::now()) => {
                        withdraw(nl, args, lease).await?;
                        let c = DhcpV6Client::init(config, None).await.map_err(e)?;
                        (Client::V6(c), None, format!("soliciting ({} run out)", l.addr))
                    }
                    Some(_) => {
                        let c = DhcpV6Client::init(config, Some(builtin6::to_mozim(l))).await.map_err(e)?;
                        (Client::V6(c), Some(lease.clone()), "renewing".to_string())
                    }
                    None => {
                        let mut c = DhcpV6Client::init(config, None).await.map_err(e)?;
                        c.done(builtin6::shorten(builtin6::to_mozim(l), args.renew)).map_err(e)?;
                        (Client::V6(c), Some(lease.clone()), "bound".to_string())
                    }
                }
            }
        })
    }

    /// Run the client on; once bound again, it is handed the lease back (with T1
    /// brought forward by `renew=`) to wait for its next renewal.
    async fn next(&mut self, renew: Option<u32>, max_mtu: Option<u32>) -> Result<Event> {
        let e = |e: mozim::DhcpError| anyhow!("{e}");
        match self {
            Client::V4(c) => match c.run().await.map_err(e)? {
                DhcpV4State::Done(l) => {
                    let (new, warnings) = builtin::from_mozim(&l, max_mtu)?;
                    for w in warnings {
                        crate::report::say(&w);
                    }
                    c.done(builtin::shorten(*l, renew)).map_err(e)?;
                    Ok(Event::Bound(Leased::V4(new)))
                }
                state => Ok(Event::State(state.to_string())),
            },
            Client::V6(c) => match c.run().await.map_err(e)? {
                DhcpV6State::Done(l) => {
                    let (new, warnings) = builtin6::from_mozim(&l)?;
                    for w in warnings {
                        crate::report::say(&w);
                    }
                    c.done(builtin6::shorten(*l, renew)).map_err(e)?;
                    Ok(Event::Bound(Leased::V6(new)))
                }
                state => Ok(Event::State(state.to_string())),
            },
        }
    }

    fn clean_up(&mut self) {
        match self {
            Client::V4(c) => c.clean_up(),
            Client::V6(c) => c.clean_up(),
        }
    }

    /// DHCPRELEASE (DHCPv6 Release) for `lease`, within a second; one that cannot be
    /// sent (the interface gone already) is no failure: the server's lease then runs
    /// out by itself.
    async fn release(&mut self, lease: &Leased) -> Result<()> {
        let sent = match (self, lease) {
            (Client::V4(c), Leased::V4(l)) => {
                tokio::time::timeout(RELEASE_TIMEOUT, c.release(&builtin::to_mozim(l))).await
            }
            (Client::V6(c), Leased::V6(l)) => {
                tokio::time::timeout(RELEASE_TIMEOUT, c.release(&builtin6::to_mozim(l))).await
            }
            _ => return Ok(()),
        };
        if let Ok(Err(e)) = sent {
            crate::report::say(&format!("DHCP keeper: no release sent: {e}"));
        }
        Ok(())
    }
}

const RELEASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// A new address on rebinding: the old lease's address goes, the new one comes with
/// its routes, all or nothing (there is no run to roll back: the keeper ends on error).
async fn replace(nl: &Netlink, args: &Args, old: &Leased, new: &Leased) -> Result<()> {
    let index = args.iface.index;
    nl.del_address(index, old.addr()).await.context("cannot remove the old leased address")?;
    let routes = nl.routes(new.family()).await.context("cannot read the guest's routes")?;
    let steps = addressing::lease_steps(&args.iface.dev, new, &routes);
    run(nl, args, &steps).await
}

/// A lease taken while the guest had none (discovering again): applied as the
/// attach applies one.
async fn apply_lease(nl: &Netlink, args: &Args, new: &Leased) -> Result<()> {
    let routes = nl.routes(new.family()).await.context("cannot read the guest's routes")?;
    run(nl, args, &addressing::lease_steps(&args.iface.dev, new, &routes)).await
}

/// A lease that is no longer the guest's: the routes it brought (its classless
/// routes, the default route through its router) and its address removed (RFC 2131
/// section 4.4.5: the client must stop using the address), and the lease it held
/// forgotten (a re-run then starts from DISCOVER).
async fn withdraw(nl: &Netlink, args: &Args, old: &Leased) -> Result<()> {
    let index = args.iface.index;
    if let Leased::V4(l) = old {
        for route in addressing::withdrawn_routes(index, l) {
            nl.del_route(&route).await.context("cannot remove a route of the lease")?;
        }
    }
    nl.del_address(index, old.addr()).await.context("cannot remove the address of the lease")?;
    let _ = std::fs::remove_file(crate::plan::HeldLease::path(&args.pid_file));
    Ok(())
}

/// Write down the lease the guest holds, granted now (see `HeldLease`): what a new
/// keeper starts from should this one die. A failure only costs that.
fn hold(args: &Args, lease: &Leased) {
    let held = crate::plan::HeldLease { lease: lease.clone(), bound_at: crate::dhcp::keep::now() };
    let _ = crate::record::write_atomically(&crate::plan::HeldLease::path(&args.pid_file), &held);
}

/// `dns`: a lease whose name servers or search domains differ from those the
/// guest's resolv.conf was written from: written again, but only over the very text
/// pipework wrote (a file the guest or another lease's servers changed since is
/// left as it is). `true` when the file has `new`'s servers now.
fn rewrite_resolv_conf(args: &Args, from: &Leased, new: &Leased) -> bool {
    use crate::apply::resolv;
    let dev = &args.iface.dev;
    let (was, now) =
        (resolv::text(dev, std::slice::from_ref(from)), resolv::text(dev, std::slice::from_ref(new)));
    if was == now {
        return false;
    }
    let Some(pid) = args.pid else { return false };
    match resolv::rewrite(pid, &was, &now) {
        Ok(done) => done,
        Err(e) => {
            crate::report::say(&format!("DHCP keeper: {e:#}"));
            false
        }
    }
}

/// Apply `steps` in the guest, all or nothing.
async fn run(nl: &Netlink, args: &Args, steps: &[crate::plan::Step]) -> Result<()> {
    if steps.is_empty() {
        return Ok(());
    }
    // The keeper lives in the guest's namespace: its one socket is the guest's.
    let here = File::open("/proc/self/ns/net").context("cannot open the guest's network namespace")?;
    let ctx = Context::new(nl, nl, here.as_fd(), format!("the guest of {}", args.iface.dev));
    apply::apply(steps, &ctx, None).await.map(drop).map_err(|f| f.error)
}

/// A pidfd for the guest's process; `None` for a guest that has none (a netns file).
/// A pid that no longer shares our namespace belongs to someone else: the guest is gone.
fn watch_guest(pid: Option<u32>) -> Result<Option<AsyncFd<OwnedFd>>> {
    let Some(pid) = pid else {
        return Ok(None);
    };
    let fd = crate::dhcp::watch(pid)?;
    if crate::netns::of_pid(pid).ok() != crate::netns::ours().ok() {
        return Err(anyhow!("the guest's process {pid} is gone"));
    }
    Ok(Some(fd))
}

async fn gone(guest: &Option<AsyncFd<OwnedFd>>) {
    match guest {
        Some(fd) => {
            let _ = fd.readable().await;
        }
        None => std::future::pending().await,
    }
}

fn status_file(args: &Args) -> PathBuf {
    args.pid_file.with_extension("lease")
}

/// `/var/run/dhcp4.HOSTNAME.lease` (`dhcp6.`): the state, the lease (none while
/// discovering again) and how many renewals so far.
fn report(args: &Args, lease: Option<&Leased>, renewals: u32, state: &str) {
    let path = status_file(args);
    let times = match lease {
        None => "address=".to_string(),
        Some(Leased::V4(l)) => {
            let router = l.router.map(|r| r.to_string()).unwrap_or_default();
            let routes: Vec<String> = l
                .routes
                .iter()
                .map(|r| r.via.map_or(r.dst.to_string(), |via| format!("{} via {via}", r.dst)))
                .collect();
            let mtu = l.mtu.map(|m| m.to_string()).unwrap_or_default();
            format!(
                "address={}\nserver={}\nrouter={router}\nroutes={}\nmtu={mtu}\nlease={}\nt1={}\nt2={}",
                l.addr,
                l.server,
                routes.join(","),
                l.secs,
                l.t1,
                l.t2
            )
        }
        Some(Leased::V6(l)) => format!(
            "address={}\npreferred={}\nvalid={}\nt1={}\nt2={}",
            l.addr, l.preferred, l.valid, l.t1, l.t2
        ),
    };
    let text = format!("state={state}\n{times}\nrenewals={renewals}\n");
    let tmp = path.with_extension("lease.new");
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, &path);
    }
}

/// On the way out: our pid file (only if it still names us) and status file go.
fn forget(args: &Args) {
    let mine =
        std::fs::read_to_string(&args.pid_file).is_ok_and(|s| s.trim() == std::process::id().to_string());
    if mine {
        let _ = std::fs::remove_file(&args.pid_file);
    }
    let _ = std::fs::remove_file(status_file(args));
    let _ = std::fs::remove_file(crate::plan::HeldLease::path(&args.pid_file));
}
