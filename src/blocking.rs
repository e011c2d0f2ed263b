//! Blocking work (a child process to wait for, a daemon's socket, a DHCP exchange) on
//! the runtime's blocking pool: the runtime has one thread, and the other lines of a
//! --batch must go on meanwhile.

use anyhow::{anyhow, Result};

/// Run `f` on the blocking pool; `what` names it should the task itself fail.
pub async fn run<T: Send + 'static>(what: &str, f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| anyhow!("{what} task failed: {e}"))?
}
