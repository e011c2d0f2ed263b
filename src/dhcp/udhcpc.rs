//! busybox udhcpc on the host, run in the guest: the original's
//! `-qi CONTAINER_IF -x hostname:GUEST -p /var/run/udhcpc.GUEST.pid OPTIONS`.

use anyhow::Result;
use nix::sys::signal::Signal;

use super::external::{self, External};
use super::DhcpRequest;
use crate::apply::{Context, Journal};

/// The plain form quits once it has the lease (`-q`). The original passes `-q` to
/// `udhcpc-f` too, so that it never renews; ours leaves out `-q` (and `-f`, which
/// would hold pipework until the client ends): udhcpc then goes to the background
/// once it has the lease and renews it, findable by its pid file.
pub fn args(req: &DhcpRequest) -> Vec<String> {
    let mut args = vec!["udhcpc".to_string()];
    args.push(if req.foreground { "-i" } else { "-qi" }.to_string());
    args.push(req.dev.clone());
    args.extend(["-x".to_string(), format!("hostname:{}", req.hostname)]);
    args.extend(["-p".to_string(), req.pid_file("udhcpc").display().to_string()]);
    args.extend(req.options.iter().cloned());
    args
}

pub async fn run(req: &DhcpRequest, ctx: &Context<'_>, journal: &mut Journal) -> Result<()> {
    let ext = External {
        req,
        args: args(req)[1..].to_vec(),
        private_dirs: &[],
        stop_signal: Signal::SIGTERM,
        remove_after: None,
    };
    external::run(ext, ctx, journal).await
}
