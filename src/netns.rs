//! Entering another network namespace for a short synchronous piece of work, on the
//! calling thread, through a guard that always switches back.
//!
//! `setns(2)` moves only the calling thread. Code that holds a namespace across an
//! `.await` could let another task run in the wrong one; a closure that cannot await
//! cannot, on any runtime: nothing else runs on this thread until it returns. This
//! replaces a short-lived thread per guest, whose hand-off costs two scheduler
//! wake-ups: microseconds on an idle machine, milliseconds each on a busy one.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};

use anyhow::{Context, Result};
use nix::sched::{setns, CloneFlags};

/// Run `work` with the calling thread inside the network namespace behind `netns`,
/// then move the thread back where it was, whatever `work` returned.
pub fn run_in<T>(netns: BorrowedFd<'_>, work: impl FnOnce() -> Result<T>) -> Result<T> {
    let _back = enter(netns)?;
    work()
}

/// Moves the thread back into its namespace when dropped.
struct Back(File);

impl Drop for Back {
    fn drop(&mut self) {
        if let Err(e) = setns(self.0.as_fd(), CloneFlags::CLONE_NEWNET) {
            // Going on in the guest's namespace would make the host's next steps act on
            // the guest: stop here, whatever the cost.
            crate::report::say(&format!("cannot return to the host's network namespace: {e}"));
            std::process::abort();
        }
    }
}

fn enter(netns: BorrowedFd<'_>) -> Result<Back> {
    // This thread's own namespace, which need not be the process's.
    let home =
        File::open("/proc/thread-self/ns/net").context("cannot open this thread's network namespace")?;
    setns(netns, CloneFlags::CLONE_NEWNET).context("cannot enter the guest's network namespace")?;
    Ok(Back(home))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn inode(path: &str) -> u64 {
        std::fs::metadata(path).unwrap().ino()
    }

    #[test]
    fn work_runs_in_the_namespace_and_the_thread_comes_back() {
        let mine = inode("/proc/thread-self/ns/net");
        // Our own namespace is the only one a unit test can count on being allowed to enter.
        let ns = File::open("/proc/self/ns/net").unwrap();
        let seen = run_in(ns.as_fd(), || Ok(inode("/proc/thread-self/ns/net")));
        match seen {
            Ok(seen) => assert_eq!(seen, mine),
            // Without CAP_SYS_ADMIN, setns is refused, and the thread never moved.
            Err(e) => assert!(format!("{e:#}").contains("cannot enter"), "{e:#}"),
        }
        assert_eq!(inode("/proc/thread-self/ns/net"), mine);
        let err = run_in(ns.as_fd(), || -> Result<()> { anyhow::bail!("boom") });
        assert!(err.is_err());
        assert_eq!(inode("/proc/thread-self/ns/net"), mine);
    }
}
