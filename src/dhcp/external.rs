//! One run of an external DHCP client (udhcpc, dhclient, dhcpcd, and `dhclient -6`
//! and `dhcpcd -6` for `dhclient6` and `dhcpcd6`) in its sandbox:
//! wait for the lease, then stop the client (plain forms) or leave it renewing (`-f`).

use anyhow::{bail, Context as _, Result};

use super::{lease, sandbox, Acquired, Kept, Target};
use crate::model::Family;
use crate::plan::dhcp::External;
use crate::plan::DhcpRequest;

/// Run it; on success the lease is on the interface, and for a plain form no process
/// of the client is left. On failure nothing of the client is left running, and the
/// addresses it configured are gone.
pub async fn acquire(req: &DhcpRequest, target: &Target<'_>) -> Result<Acquired> {
    let ext = req.external().expect("an external client");
    let program = super::find_client(&ext.program)?;
    for dir in ext.make_dirs {
        // dhclient cannot create the directory of its lease file itself.
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {dir}"))?;
    }
    let spec = sandbox::Spec {
        program: &program,
        args: &ext.args,
        hostname: &req.hostname,
        private_dirs: ext.private_dirs,
    };
    if req.family == Family::V6 {
        // dhclient -6 binds to the link-local address at once, and gives up (exit 1)
        // while the kernel still has it under duplicate address detection.
        let deadline = std::time::Instant::now() + req.limit();
        let secs = req.limit().as_secs_f64().ceil() as u32;
        super::builtin6::usable_link_local(target.nl, target.index, &req.dev, deadline, secs).await?;
    }
    let mut client = sandbox::spawn(&spec, target.netns)?;
    // As IPSPEC names it (`dhclient6`), for messages.
    let name = &req.name();
    tell(target, name, &mut client, &ext)?;
    let status = match client.wait(req.limit()).await {
        Ok(Some(status)) => status,
        Ok(None) => {
            give_up(&mut client, &ext);
            bail!("{name} got no lease on {} within {} s", req.dev, req.limit().as_secs_f64());
        }
        Err(e) => {
            give_up(&mut client, &ext);
            return Err(e);
        }
    };
    if !status.success() {
        let words = client.last_words();
        give_up(&mut client, &ext);
        bail!("{name} failed ({status}){}", colon(&words));
    }
    // Told again: a client that went to the background (udhcpc does, with its
    // lease) is another process now, which alone proves its sandbox's.
    tell(target, name, &mut client, &ext)?;
    let configured = match lease::addresses(target.nl, target.index, req.family).await {
        Ok(leased) if !leased.is_empty() => leased,
        found => {
            let words = client.last_words();
            give_up(&mut client, &ext);
            found?;
            bail!("{name} ended without a lease on {}{}", req.dev, colon(&words));
        }
    };
    if req.foreground {
        let running = Kept::sandboxed(name, &client.mnt_ns, target.net_ns()?, ext.pid_file.clone());
        return Ok(Acquired { lease: None, configured, running: Some(running), ..Default::default() });
    }
    if let Err(e) = settle(&ext, req.family, target, &client.mnt_ns).await {
        give_up(&mut client, &ext);
        for addr in &configured {
            let _ = target.nl.del_address(target.index, *addr).await;
        }
        return Err(e);
    }
    Ok(Acquired { lease: None, configured, running: None, ..Default::default() })
}

/// The client as it runs now, told to the caller (see `Target::started`); if that
/// fails, the client is given up.
fn tell(target: &Target<'_>, name: &str, client: &mut sandbox::Sandboxed, ext: &External) -> Result<()> {
    let told = target.net_ns().and_then(|net_ns| {
        (target.started)(&Kept::sandboxed(name, &client.mnt_ns, net_ns, ext.pid_file.clone()))
    });
    match told {
        Ok(()) => client.open_gate(),
        Err(_) => give_up(client, ext),
    }
    told
}

/// A failed run: the client killed (it cannot undo anything then), and the pid file
/// it wrote on the host removed when the pid in it is no longer running.
fn give_up(client: &mut sandbox::Sandboxed, ext: &External) {
    client.kill();
    if let Some(file) = &ext.pid_file {
        remove_if_stale(file);
    }
}

/// A client's pid file on the host, removed when the pid in it is no longer running
/// (one that names a live process is another run's).
fn remove_if_stale(file: &std::path::Path) {
    let Ok(text) = std::fs::read_to_string(file) else { return };
    // A zombie has ended (the watcher reaps its children only between jobs).
    let alive = text.trim().parse::<u32>().is_ok_and(|pid| crate::process::Process::of(pid).is_some());
    if !alive {
        let _ = std::fs::remove_file(file);
    }
}

/// A plain form after its lease: stop what the client left running (up to ~1 s of
/// signals and waits, on the blocking pool, so a batch goes on), and keep the address
/// rather than let the kernel drop it when the lifetime the client gave it runs out.
async fn settle(
    ext: &External,
    family: Family,
    target: &Target<'_>,
    mnt_ns: &sandbox::MountNs,
) -> Result<()> {
    let (mnt_ns, signal) = (mnt_ns.clone(), ext.stop_signal);
    crate::blocking::run("stop", move || sandbox::kill_all(&mnt_ns, signal)).await?;
    if let Some(file) = &ext.remove_after {
        let _ = std::fs::remove_file(file);
    }
    lease::make_permanent(target.nl, target.index, family).await
}

fn colon(words: &str) -> String {
    if words.is_empty() {
        String::new()
    } else {
        format!(": {words}")
    }
}
