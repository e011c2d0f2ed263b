//! Entering another network namespace for a short synchronous piece of work, on the
//! calling thread, through a guard that always switches back.
//!
//! `setns(2)` moves only the calling thread. Code that holds a namespace across an
//! `.await` could let another task run in the wrong one; a closure that cannot await
//! cannot, on any runtime: nothing else runs on this thread until it returns. This
//! replaces a short-lived thread per guest, whose hand-off costs two scheduler
//! wake-ups: microseconds on an idle machine, milliseconds each on a busy one.
//!
//! [`set_sysctl`] (a guest's `/proc/sys/net/...`) takes a short-lived thread of its
//! own instead, so that the runtime's thread never enters a guest's namespace for it
//! and a batch's other lines go on meanwhile.
//!
//! And a namespace's identity ([`of_pid`], [`of_file`], [`ours`]): the inode of its
//! nsfs file, the number that records, link marks and a resolved guest carry.

use std::fmt::Display;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
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
        // A transient failure (ENOMEM) is tried again; the namespace is held open by
        // `self.0`, so it cannot be gone.
        let mut last = None;
        for attempt in 0..5 {
            match setns(self.0.as_fd(), CloneFlags::CLONE_NEWNET) {
                Ok(()) => return,
                Err(e) => last = Some(e),
            }
            std::thread::sleep(std::time::Duration::from_millis(1 << attempt));
        }
        // Going on in the guest's namespace would make the host's next steps act on
        // the guest: stop here, whatever the cost.
        let e = last.expect("an error after the attempts");
        // Said straight to stderr: the report layer sits above this one.
        let _ = writeln!(std::io::stderr(), "pipework: cannot return to the host's network namespace: {e}");
        std::process::abort();
    }
}

fn enter(netns: BorrowedFd<'_>) -> Result<Back> {
    // This thread's own namespace, which need not be the process's.
    let home =
        File::open("/proc/thread-self/ns/net").context("cannot open this thread's network namespace")?;
    setns(netns, CloneFlags::CLONE_NEWNET).context("cannot enter the guest's network namespace")?;
    Ok(Back(home))
}

/// The identity of the network namespace that `path` (a netns file, or the magic link
/// `/proc/PID/ns/net`) is: its inode. Every network namespace is an inode of the one
/// nsfs superblock, so the inode alone tells two apart (the device would be the same).
pub fn of_file(path: impl AsRef<Path>) -> io::Result<u64> {
    std::fs::metadata(path).map(|m| m.ino())
}

/// The network namespace process `pid` is in; an error once it is gone (a zombie's
/// namespaces are gone with it) or when it is no process (a kernel thread has one).
pub fn of_pid(pid: impl Display) -> io::Result<u64> {
    of_file(format!("/proc/{pid}/ns/net"))
}

/// Every process's pid, as /proc lists them now (none if it cannot be read).
pub fn pids() -> impl Iterator<Item = u32> {
    let entries = std::fs::read_dir("/proc").into_iter().flatten();
    entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
}

/// The network namespace of process `pid`, opened, if it is still namespace `ino`
/// once open (the process may have moved on, or ended and its pid been reused).
pub fn open_of_pid(pid: u32, ino: u64) -> Option<std::fs::File> {
    let file = std::fs::File::open(format!("/proc/{pid}/ns/net")).ok()?;
    file.metadata().is_ok_and(|m| m.ino() == ino).then_some(file)
}

/// The network namespace this process is in, opened (our own thread never leaves
/// the host's: this is the host's, for every verb).
pub fn open_ours() -> Result<File> {
    File::open("/proc/self/ns/net").context("cannot open the host's namespace")
}

/// The network namespace this process is in: the host's, for every verb.
pub fn ours() -> io::Result<u64> {
    of_file("/proc/self/ns/net")
}

/// `/proc/sys/net/ipv6/conf/DEV/disable_ipv6`: IPv6 on or off on one interface. The
/// kernel takes no IPv6 devconf value over RTM_SETLINK (only the token and
/// addr_gen_mode), so this file is the way in.
pub fn disable_ipv6_path(dev: &str) -> String {
    format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6")
}

/// Read the sysctl file `path` as the calling thread's namespace shows it.
pub fn read_sysctl(path: &str) -> Result<String> {
    let value = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    Ok(value.trim().to_string())
}

/// Write the sysctl file `path` in the calling thread's namespace.
pub fn write_sysctl(path: &str, value: &str) -> Result<()> {
    std::fs::write(path, value).with_context(|| format!("cannot write {value} to {path}"))
}

/// Set the sysctl file `path` to `value` inside the network namespace behind `netns`;
/// the value it had when this changed it, `None` when it was `value` already.
///
/// /proc/sys/net resolves by the namespace of the thread that opens the file (every
/// guest has an `eth1`, and so may the host): a thread of its own enters the guest's
/// namespace by fd for it (never the runtime's), and is joined here. It never wakes
/// the runtime: a wake-up from another thread is a write to the runtime's eventfd,
/// and when that write failed tokio panicked on this thread and left the runtime
/// asleep for ever. The runtime's thread waits the few microseconds of one read and
/// one write meanwhile.
pub async fn set_sysctl(netns: BorrowedFd<'_>, path: String, value: String) -> Result<Option<String>> {
    let swap = || {
        let old = read_sysctl(&path)?;
        if old == value {
            return Ok(None);
        }
        write_sysctl(&path, &value)?;
        Ok(Some(old))
    };
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("pipework-sysctl".to_string())
            .spawn_scoped(scope, || run_in(netns, swap))
            .context("cannot start a thread for the guest's sysctl")?;
        thread.join().map_err(|_| anyhow!("the thread writing the guest's sysctl died"))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inode(path: &str) -> u64 {
        of_file(path).unwrap()
    }

    #[test]
    fn a_namespace_is_known_by_its_inode_through_a_pid_or_a_file() {
        let ours = ours().unwrap();
        assert_eq!(of_pid(std::process::id()).unwrap(), ours);
        assert_eq!(of_pid("self").unwrap(), ours);
        assert_eq!(File::open("/proc/self/ns/net").unwrap().metadata().unwrap().ino(), ours);
        // Pid 0 is never a process in /proc.
        assert_eq!(of_pid(0).unwrap_err().kind(), io::ErrorKind::NotFound);
        // Another kind of namespace is another inode.
        assert_ne!(of_file("/proc/self/ns/mnt").unwrap(), ours);
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

    #[tokio::test]
    async fn set_sysctl_swaps_the_value_and_says_what_it_was() {
        // Any file does for the swap; entering our own namespace needs CAP_SYS_ADMIN.
        let path = std::env::temp_dir().join(format!("pipework-sysctl-test-{}", std::process::id()));
        let path = path.to_str().unwrap().to_string();
        std::fs::write(&path, "1\n").unwrap();
        let ns = File::open("/proc/self/ns/net").unwrap();
        let first = set_sysctl(ns.as_fd(), path.clone(), "0".to_string()).await;
        let again = set_sysctl(ns.as_fd(), path.clone(), "0".to_string()).await;
        let written = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        match first {
            Ok(old) => {
                assert_eq!(old.as_deref(), Some("1"));
                assert_eq!(again.unwrap(), None, "already 0: nothing changed, nothing to undo");
                assert_eq!(written, "0");
            }
            Err(e) => assert!(format!("{e:#}").contains("cannot enter"), "{e:#}"),
        }
        assert_eq!(disable_ipv6_path("eth1"), "/proc/sys/net/ipv6/conf/eth1/disable_ipv6");
    }
}
