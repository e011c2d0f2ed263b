//! Finding the guest's network namespace: a Docker container, `pid:N`, or a netns
//! file. The result holds an open fd of the namespace from resolution to the end,
//! so a PID that exits or is reused afterwards cannot send anything elsewhere.

pub mod docker;
mod lxc;
mod opening;

pub use opening::{lookup, not_the_host};

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::sys::statfs::{fstatfs, statfs, Statfs};

/// Where the guest came from, which decides what it can do (`dhcp` needs Docker).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Docker { id: String, name: String },
    Lxc,
    Pid,
    NetnsPath,
}

/// A resolved guest.
#[derive(Debug)]
pub struct Guest {
    /// The GUEST argument as given (used for hostnames and messages).
    pub name: String,
    /// The process whose namespace this is; `None` for a bare netns file.
    pub pid: Option<u32>,
    pub source: Source,
    /// The namespace's inode, which identifies it.
    pub ns_inode: u64,
    netns: OwnedFd,
}

impl Guest {
    pub fn netns(&self) -> BorrowedFd<'_> {
        self.netns.as_fd()
    }

    /// What `{PID}` stands for in derived interface names. A guest without a
    /// PID uses a short stable id of its namespace: `n` and the low 24 bits of its
    /// inode in hex (namespace inodes are 0xF0000000 plus a small counter).
    pub fn name_tag(&self) -> String {
        match self.pid {
            Some(pid) => pid.to_string(),
            None => format!("n{:x}", self.ns_inode & 0xff_ffff),
        }
    }

    /// "container web1 (pid 123)", for messages.
    pub fn describe(&self) -> String {
        match (&self.source, self.pid) {
            (Source::Docker { .. } | Source::Lxc, Some(pid)) => {
                format!("container {} (pid {pid})", self.name)
            }
            (Source::NetnsPath, Some(pid)) => format!("guest {} (pid {pid})", self.name),
            _ => format!("guest {}", self.name),
        }
    }
}

/// A netns file's path: absolute, with a directory (`/proc/N/ns/net`,
/// `/var/run/netns/NAME`). A bare `/NAME` is a Docker name as Docker prints it
/// (`docker inspect -f '{{.Name}}'`), which the original passes to Docker.
pub fn is_netns_path(spec: &str) -> bool {
    spec.strip_prefix('/').is_some_and(|rest| rest.contains('/'))
}

/// Resolve GUEST: `pid:N`, a path to a netns file, else an LXC container, else a
/// Docker container.
pub fn resolve(spec: &str) -> Result<Guest> {
    if let Some(pid) = spec.strip_prefix("pid:") {
        let pid: u32 =
            pid.parse().map_err(|_| anyhow!("invalid guest {spec:?}: pid:N takes a process id"))?;
        return open(spec, Some(pid), Source::Pid);
    }
    if is_netns_path(spec) {
        return open(spec, pid_of_proc_path(spec), Source::NetnsPath);
    }
    // The original's order: an LXC container of that name first, then Docker.
    if let Some(pid) = lxc::find(spec)? {
        return open(spec, Some(pid), Source::Lxc);
    }
    let c = docker::inspect(spec)?;
    open(spec, Some(c.pid), Source::Docker { id: c.id, name: c.name })
}

/// `/proc/N/ns/net` names its process; other netns files do not.
fn pid_of_proc_path(path: &str) -> Option<u32> {
    path.strip_prefix("/proc/")?.strip_suffix("/ns/net")?.parse().ok()
}

fn open(spec: &str, pid: Option<u32>, source: Source) -> Result<Guest> {
    let path = match (&source, pid) {
        (Source::NetnsPath, _) | (_, None) => spec.to_string(),
        (_, Some(pid)) => format!("/proc/{pid}/ns/net"),
    };
    let cannot_open = |e: Errno| match (e, pid) {
        (Errno::ENOENT, Some(pid)) => anyhow!("no such process: {pid} (guest {spec})"),
        _ => anyhow!("cannot open network namespace {path}: {}", std::io::Error::from(e)),
    };
    // Look before opening: opening a FIFO for reading blocks until a writer comes
    // (for ever), and opening a device may act on it. statfs follows the magic link
    // /proc/N/ns/net to the namespace itself, which lives on nsfs.
    let fs = statfs(path.as_str()).map_err(cannot_open)?;
    if !is_nsfs(&fs) {
        bail!("{path} is not a network namespace");
    }
    // Non-blocking all the same, should the file be swapped in between; checked again.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(&path)
        .map_err(|e| cannot_open(Errno::from_raw(e.raw_os_error().unwrap_or(0))))?;
    check_is_netns(&file, &path)?;
    let ns_inode = file.metadata().with_context(|| format!("cannot stat {path}"))?.ino();
    Ok(Guest { name: spec.to_string(), pid, source, ns_inode, netns: file.into() })
}

// The magic's type (`__fsword_t`) is i64 here but not on every target.
#[allow(clippy::unnecessary_cast)]
fn is_nsfs(fs: &Statfs) -> bool {
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    fs.filesystem_type().0 as i64 == NSFS_MAGIC
}

/// A bind-mounted netns file lives on nsfs, as do the other namespaces' files
/// (`/proc/N/ns/mnt`): anything but a network namespace would make setns fail later
/// with a less helpful EINVAL.
fn check_is_netns(file: &File, path: &str) -> Result<()> {
    let fs = fstatfs(file).with_context(|| format!("cannot statfs {path}"))?;
    if !is_nsfs(&fs) {
        bail!("{path} is not a network namespace");
    }
    // NS_GET_NSTYPE (_IO(0xb7, 0x3), linux/nsfs.h): the CLONE_NEW* type of the namespace.
    const NS_GET_NSTYPE: nix::libc::c_ulong = 0xb703;
    // SAFETY: an argument-less ioctl on a descriptor we own; it writes no memory.
    let kind = unsafe { nix::libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE as _) };
    if kind != nix::libc::CLONE_NEWNET {
        bail!("{path} is not a network namespace (another kind of namespace)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netns_paths_have_a_directory() {
        assert!(is_netns_path("/proc/1/ns/net"));
        assert!(is_netns_path("/var/run/netns/blue"));
        assert!(!is_netns_path("/web1"), "Docker's own spelling of a name");
        assert!(!is_netns_path("web1"));
    }

    #[test]
    fn proc_paths_name_their_pid() {
        assert_eq!(pid_of_proc_path("/proc/123/ns/net"), Some(123));
        assert_eq!(pid_of_proc_path("/var/run/netns/blue"), None);
        assert_eq!(pid_of_proc_path("/proc/self/ns/net"), None);
    }

    #[test]
    fn own_namespace_resolves_by_pid() {
        let me = std::process::id();
        let g = resolve(&format!("pid:{me}")).unwrap();
        assert_eq!(g.pid, Some(me));
        assert_eq!(g.name_tag(), me.to_string());
        let g = resolve("/proc/self/ns/net").unwrap();
        assert_eq!(g.pid, None);
        assert!(g.name_tag().starts_with('n') && g.name_tag().len() <= 8, "{}", g.name_tag());
    }

    #[test]
    fn bad_guests() {
        assert!(resolve("pid:abc").unwrap_err().to_string().contains("pid:N"));
        let e = resolve("pid:999999999").unwrap_err().to_string();
        assert!(e.contains("no such process"), "{e}");
        let e = resolve("/etc/hostname").unwrap_err().to_string();
        assert!(e.contains("not a network namespace"), "{e}");
    }

    /// Regression: a FIFO given as GUEST was opened for reading and blocked for ever.
    #[test]
    fn a_fifo_as_guest_is_refused_without_blocking() {
        let dir = std::env::temp_dir().join(format!("pipework-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("guest");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR).unwrap();
        let e = resolve(fifo.to_str().unwrap()).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(e.ends_with("is not a network namespace"), "{e}");
    }

    #[test]
    fn another_kind_of_namespace_is_refused() {
        let e = resolve("/proc/self/ns/mnt").unwrap_err().to_string();
        assert!(e.contains("another kind of namespace"), "{e}");
    }
}
