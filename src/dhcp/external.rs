//! One run of an external DHCP client (udhcpc, dhclient, dhcpcd) in its sandbox:
//! wait for the lease, then stop the client (plain forms) or leave it renewing (`-f`).

use std::path::PathBuf;

use anyhow::{bail, Result};
use nix::sys::signal::Signal;

use super::{lease, sandbox, DhcpRequest, Running};
use crate::apply::{index_of, Context, Journal, Undo};

/// How one client is run and stopped.
pub struct External<'a> {
    pub req: &'a DhcpRequest,
    pub args: Vec<String>,
    pub private_dirs: &'a [&'a str],
    /// The signal that ends it without undoing its work (dhcpcd deconfigures the
    /// interface on SIGTERM unless configured `persistent`, so it gets SIGKILL).
    pub stop_signal: Signal,
    /// A file the original removes once it has stopped a plain form (dhclient's pid file).
    pub remove_after: Option<PathBuf>,
}

/// Run it; on success the lease is on the interface, and for a plain form no process
/// of the client is left. On failure nothing of the client is left running.
pub async fn run(ext: External<'_>, ctx: &Context<'_>, journal: &mut Journal) -> Result<()> {
    let req = ext.req;
    let name = req.client.to_string();
    let program = super::find_client(&name)?;
    let index = index_of(ctx.guest, &req.dev).await?;
    let spec = sandbox::Spec {
        program: &program,
        args: &ext.args,
        hostname: &req.hostname,
        private_dirs: ext.private_dirs,
    };
    let mut client = sandbox::spawn(&spec, ctx.guest_ns)?;
    let status = match client.wait(req.limit()).await {
        Ok(Some(status)) => status,
        Ok(None) => {
            client.kill();
            bail!("{name} got no lease on {} within {} s", req.dev, req.limit().as_secs_f64());
        }
        Err(e) => {
            client.kill();
            return Err(e);
        }
    };
    if !status.success() {
        let words = client.last_words();
        client.kill();
        bail!("{name} failed ({status}){}", colon(&words));
    }
    let leased = lease::ipv4_addresses(ctx.guest, index).await?;
    if leased.is_empty() {
        let words = client.last_words();
        client.kill();
        bail!("{name} ended without a lease on {}{}", req.dev, colon(&words));
    }
    for addr in leased {
        journal.push(Undo::DeleteAddress { index, addr });
    }
    if req.foreground {
        journal.push(Undo::StopDhcp(Running::Sandbox { client: name, mnt_ns: client.mnt_ns.clone() }));
        return Ok(());
    }
    // Up to ~1 s of signals and waits: on the blocking pool, so a batch goes on.
    let (mnt_ns, signal) = (client.mnt_ns.clone(), ext.stop_signal);
    crate::blocking::run("stop", move || sandbox::kill_all(&mnt_ns, signal)).await?;
    if let Some(file) = ext.remove_after {
        let _ = std::fs::remove_file(file);
    }
    // Nobody renews the lease now: keep the address rather than let the kernel drop
    // it when the lifetime the client gave it runs out.
    lease::make_permanent(ctx.guest, index).await
}

fn colon(words: &str) -> String {
    if words.is_empty() {
        String::new()
    } else {
        format!(": {words}")
    }
}
