//! ISC dhclient on the host, run in the guest: the original's
//! `CONTAINER_IF -pf /var/run/dhclient.GUEST.pid -lf /etc/dhclient/dhclient.GUEST.leases OPTIONS`.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use nix::sys::signal::Signal;

use super::external::{self, External};
use super::DhcpRequest;
use crate::apply::{Context, Journal};

/// dhclient's default lease directory: with `-lf` it is not used, but scripts and
/// hooks may look there; in the sandbox it is private.
const PRIVATE_DIRS: &[&str] = &["/var/lib/dhcp"];

fn lease_file(req: &DhcpRequest) -> PathBuf {
    PathBuf::from(format!("/etc/dhclient/dhclient.{}.leases", req.hostname))
}

/// dhclient goes to the background once it has the lease; the plain form is stopped
/// then (and its pid file removed, as the original does), `dhclient-f` is left renewing.
pub fn args(req: &DhcpRequest) -> Vec<String> {
    let mut args = vec!["dhclient".to_string(), req.dev.clone()];
    args.extend(["-pf".to_string(), req.pid_file("dhclient").display().to_string()]);
    args.extend(["-lf".to_string(), lease_file(req).display().to_string()]);
    args.extend(req.options.iter().cloned());
    args
}

pub async fn run(req: &DhcpRequest, ctx: &Context<'_>, journal: &mut Journal) -> Result<()> {
    // dhclient cannot create the directory of its lease file itself.
    std::fs::create_dir_all("/etc/dhclient").context("cannot create /etc/dhclient")?;
    let ext = External {
        req,
        args: args(req)[1..].to_vec(),
        private_dirs: PRIVATE_DIRS,
        // dhclient leaves the interface as it is on SIGTERM (releasing takes `-r`).
        stop_signal: Signal::SIGTERM,
        remove_after: Some(req.pid_file("dhclient")),
    };
    external::run(ext, ctx, journal).await
}
