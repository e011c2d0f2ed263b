//! One run's rollback never removes a Linux bridge that another run has looked up
//! and is about to plug into. A bridge made by a run that then fails is deleted if it
//! has no ports; without care, that happens between another run's lookup of the
//! bridge and its veth request, which then fails. A host-wide advisory lock closes
//! the window: every attach holds it shared from before it looks up HOSTIF until its
//! port is on the bridge (or until it gives up); the removal of a bridge takes it
//! exclusive, and looks for ports only then. Runs that only add never wait for each
//! other; a removal waits for the runs between lookup and plug-in, and they for it.

use std::fs::{File, OpenOptions};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

/// Where the lock lives (created if missing).
const DIR: &str = "/run/pipework";
const PATH: &str = "/run/pipework/bridges.lock";

/// A hold on the lock, released when dropped.
#[derive(Debug)]
pub struct BridgeLock(#[allow(dead_code)] Flock<File>);

impl BridgeLock {
    /// Held shared, by an attach until its port is plugged in.
    pub async fn shared() -> Option<BridgeLock> {
        Self::take(FlockArg::LockSharedNonblock).await
    }

    /// Held exclusive, by the removal of a bridge. Waited for at most 10 s (a run
    /// whose Docker daemon is slow to name its guest holds it shared meanwhile); then
    /// the removal goes on without it, as it would without the lock.
    pub async fn exclusive() -> Option<BridgeLock> {
        tokio::time::timeout(Duration::from_secs(10), Self::take(FlockArg::LockExclusiveNonblock))
            .await
            .ok()?
    }

    /// Best effort: a host where the lock file cannot be made (a read-only /run) runs
    /// without it, as before. Polled, never blocking: the lines of a --batch share
    /// one thread, and one of them may hold what another waits for.
    async fn take(how: FlockArg) -> Option<BridgeLock> {
        let _ = std::fs::create_dir_all(DIR);
        let mut pause = Duration::from_micros(500);
        loop {
            let file = OpenOptions::new().create(true).truncate(false).write(true).open(PATH).ok()?;
            match Flock::lock(file, how) {
                Ok(held) => return Some(BridgeLock(held)),
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => {}
                Err(_) => return None,
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}
