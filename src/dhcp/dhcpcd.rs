//! dhcpcd on the host, run in the guest: the original's `-q CONTAINER_IF -h GUEST`
//! (it drops OPTIONS, and so do we, with a warning).

use anyhow::Result;
use nix::sys::signal::Signal;

use super::external::{self, External};
use super::DhcpRequest;
use crate::apply::{Context, Journal};

/// dhcpcd keeps its pid files and control sockets in its run directory and its
/// leases and DUID in its database directory, both host-wide: a second guest's run
/// would find the first one's `eth1` "already running", or take its lease file.
/// Each run gets both private (a fresh DUID too, so two guests never share one).
const PRIVATE_DIRS: &[&str] = &["/run/dhcpcd", "/var/lib/dhcpcd"];

pub fn args(req: &DhcpRequest) -> Vec<String> {
    ["dhcpcd", "-q", &req.dev, "-h", &req.hostname].map(str::to_string).to_vec()
}

/// dhcpcd forks a daemon once it has the lease; the original leaves it running (it
/// has no `-f` form), which is what its users kept tripping over: it is stopped.
pub async fn run(req: &DhcpRequest, ctx: &Context<'_>, journal: &mut Journal) -> Result<()> {
    if !req.options.is_empty() {
        ctx.note(crate::report::warning(format!(
            "dhcpcd options are ignored, as the original ignores them: {}",
            req.options.join(" ")
        )));
    }
    let ext = External {
        req,
        args: args(req)[1..].to_vec(),
        private_dirs: PRIVATE_DIRS,
        stop_signal: Signal::SIGKILL,
        remove_after: None,
    };
    external::run(ext, ctx, journal).await
}
