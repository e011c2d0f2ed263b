//! One run's rollback never removes a Linux bridge that another run has looked up
//! and is about to plug into. A bridge made by a run that then fails is deleted if it
//! has no ports; without care, that happens between another run's lookup of the
//! bridge and its veth request, which then fails. A host-wide advisory lock closes
//! the window: every attach holds it shared from before it looks up HOSTIF until its
//! port is on the bridge (or until it gives up); the removal of a bridge takes it
//! exclusive, and looks for ports only then. Runs that only add never wait for each
//! other; a removal waits for the runs between lookup and plug-in, and they for it.
//! A removal that cannot have the lock leaves the bridge in place: an empty bridge
//! left behind is harmless, one removed under a run plugging into it fails that run.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Result};
use nix::fcntl::{Flock, FlockArg};

/// How long a removal waits for the runs between lookup and plug-in (a run whose
/// Docker daemon is slow to name its guest holds the lock shared meanwhile).
const EXCLUSIVE_WAIT: Duration = Duration::from_secs(10);

/// `$PIPEWORK_RUN_DIR/bridges.lock` (default `/run/pipework`, created if missing):
/// host-wide, as the bridges are, for every run that shares the run directory.
fn path() -> PathBuf {
    crate::record::run_dir().join("bridges.lock")
}

/// A hold on the lock, released when dropped.
#[derive(Debug)]
pub struct BridgeLock(#[allow(dead_code)] Flock<File>);

impl BridgeLock {
    /// Held shared, by an attach until its port is plugged in.
    /// Best effort: a host where the lock file cannot be made (a read-only /run)
    /// attaches without it, and removes no bridge it made (see [`Self::exclusive`]).
    pub async fn shared() -> Option<BridgeLock> {
        Self::take(FlockArg::LockSharedNonblock).await.ok()
    }

    /// Held exclusive, by the removal of a bridge, waited for at most
    /// [`EXCLUSIVE_WAIT`]. An error when it cannot be had: the caller leaves the
    /// bridge in place and says so (removing it without the lock reopens the race the
    /// lock closes).
    pub async fn exclusive() -> Result<BridgeLock> {
        match tokio::time::timeout(EXCLUSIVE_WAIT, Self::take(FlockArg::LockExclusiveNonblock)).await {
            Ok(taken) => taken,
            Err(_) => Err(anyhow!(
                "another run held the bridge lock {} for {} s: left in place",
                path().display(),
                EXCLUSIVE_WAIT.as_secs()
            )),
        }
    }

    async fn take(how: FlockArg) -> Result<BridgeLock> {
        take_at(&path(), how).await.map(BridgeLock)
    }
}

/// The host-wide advisory lock at `path`, taken as `how` (a non-blocking kind).
/// Polled, never blocking: the lines of a --batch share one thread, and one of them
/// may hold what another waits for.
pub(super) async fn take_at(path: &std::path::Path, how: FlockArg) -> Result<Flock<File>> {
    let cannot =
        |e: &dyn std::fmt::Display| anyhow!("cannot take the lock {}: {e}: left in place", path.display());
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut pause = Duration::from_micros(500);
    loop {
        let file =
            OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(|e| cannot(&e))?;
        match Flock::lock(file, how) {
            Ok(held) => return Ok(held),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {}
            Err((_, e)) => return Err(cannot(&e)),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
