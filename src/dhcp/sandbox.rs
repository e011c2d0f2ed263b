//! A private world for an external DHCP client: the guest's network namespace, plus a
//! mount and UTS namespace of its own in which `/etc/resolv.conf`, the hostname and
//! the client's state directories are private. Whatever its scripts write there (the
//! Debian udhcpc and dhclient scripts rewrite resolv.conf and may set the hostname)
//! stays there, and every process it forks can be found again by that namespace.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{sethostname, Pid};
use tokio::io::unix::AsyncFd;

use super::gate::Gate;

/// What to run, and what to make private for it.
pub struct Spec<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    /// The hostname the client sees (dhclient sends `gethostname()` by default).
    pub hostname: &'a str,
    /// Directories hidden under an empty tmpfs (dhcpcd's run and lease directories,
    /// which all guests would otherwise share).
    pub private_dirs: &'a [&'a str],
}

/// A started client.
pub struct Sandboxed {
    child: Child,
    /// Its private mount namespace: every process it forks is in it.
    pub mnt_ns: MountNs,
    /// Its stdout and stderr, kept in memory for the error message.
    output: File,
    /// It waits here until named (see [`Sandboxed::open_gate`]).
    gate: Gate,
}

/// Start `spec` in the guest's network namespace and a private mount and UTS namespace.
pub fn spawn(spec: &Spec<'_>, netns: BorrowedFd<'_>) -> Result<Sandboxed> {
    let program = spec.program.display();
    let resolv = PrivateResolv::create()?;
    let output: File = memfd_create("pipework-dhcp", MFdFlags::MFD_CLOEXEC)
        .context("cannot create a buffer for the client's output")?
        .into();
    // The child reports its mount namespace's inode before exec: read afterwards from
    // /proc, it is lost if the client has already exited (a daemon it forked with it).
    let (report_r, report_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot make a pipe")?;
    let setup = Setup {
        netns: netns.as_raw_fd(),
        report: report_w.as_raw_fd(),
        mnt_path: cstring(Path::new("/proc/self/ns/mnt"))?,
        resolv: resolv.as_ref().map(|r| cstring(&r.0)).transpose()?,
        private_dirs: spec.private_dirs.iter().map(|d| cstring(Path::new(d))).collect::<Result<_>>()?,
        hostname: uts_name(spec.hostname).to_string(),
    };
    for dir in spec.private_dirs {
        // The mount point must exist; the client would create it on the host anyway.
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {dir}"))?;
    }
    // Through the gate (this very binary, then the client in its place): it starts
    // only once the run has named it (`super::gate`).
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg(super::gate::SUBCOMMAND).arg(spec.program);
    // Its own process group: a Ctrl-C at the terminal is pipework's to act on (undo,
    // then stop the client), not the client's to die of first.
    cmd.process_group(0);
    cmd.args(spec.args).stdin(Stdio::piped()).stdout(output.try_clone()?).stderr(output.try_clone()?);
    // SAFETY: the closure runs in the forked child before exec and only makes system
    // calls on values prepared beforehand (no allocation, no locks).
    unsafe { cmd.pre_exec(move || setup.enter()) };
    let spawned = cmd.spawn().with_context(|| format!("cannot start {program}"));
    drop(report_w);
    let mut child = spawned?;
    // The copy is mounted in the child's namespace by now (spawn returns after exec):
    // unlinking it leaves nothing on the host, and the mount keeps it alive.
    drop(resolv);
    let mut ino = [0u8; 8];
    let mnt_ns = match File::from(report_r).read_exact(&mut ino) {
        Ok(()) => MountNs::hold(u64::from_ne_bytes(ino), child.id()),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{program} did not report its mount namespace: {e}");
        }
    };
    let gate = Gate::new(child.stdin.take());
    Ok(Sandboxed { child, mnt_ns, output, gate })
}

fn cstring(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| anyhow!("bad path {}", p.display()))
}

/// Everything the child does between fork and exec, prepared by the parent.
struct Setup {
    netns: RawFd,
    /// Where the child writes its mount namespace's inode (8 bytes, native order).
    report: RawFd,
    mnt_path: CString,
    resolv: Option<CString>,
    private_dirs: Vec<CString>,
    hostname: String,
}

impl Setup {
    fn enter(&self) -> std::io::Result<()> {
        // SAFETY: the parent keeps the guest's netns fd open until after the spawn.
        let netns = unsafe { BorrowedFd::borrow_raw(self.netns) };
        setns(netns, CloneFlags::CLONE_NEWNET)?;
        unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS)?;
        let ns = nix::fcntl::open(
            self.mnt_path.as_c_str(),
            nix::fcntl::OFlag::O_RDONLY,
            nix::sys::stat::Mode::empty(),
        )?;
        let ino = nix::sys::stat::fstat(&ns)?.st_ino;
        // SAFETY: the parent keeps the pipe's write end open until after the spawn.
        let report = unsafe { BorrowedFd::borrow_raw(self.report) };
        nix::unistd::write(report, &ino.to_ne_bytes())?;
        // Mounts made below must not propagate back to the host's namespace.
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_SLAVE, None::<&str>)?;
        if let Some(copy) = &self.resolv {
            mount(Some(copy.as_c_str()), "/etc/resolv.conf", None::<&str>, MsFlags::MS_BIND, None::<&str>)?;
        }
        for dir in &self.private_dirs {
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
            mount(Some("tmpfs"), dir.as_c_str(), Some("tmpfs"), flags, Some("mode=0755"))?;
        }
        sethostname(&self.hostname)?;
        close_inherited();
        Ok(())
    }
}

/// `name` cut to what sethostname(2) takes (64 bytes), at a character boundary.
fn uts_name(name: &str) -> &str {
    const MAX: usize = 64;
    let mut end = name.len().min(MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Descriptors pipework itself inherited without close-on-exec (a caller's pipe) must
/// not live on in a daemon: one held open makes the caller wait for ever for EOF.
pub fn close_inherited() {
    // SAFETY: close_range(2) with CLOSE_RANGE_CLOEXEC only marks descriptors; the
    // ones std uses to report a failed exec are close-on-exec already.
    unsafe { nix::libc::syscall(nix::libc::SYS_close_range, 3u32, u32::MAX, nix::libc::CLOSE_RANGE_CLOEXEC) };
}

/// A copy of the host's `/etc/resolv.conf` in /run, bind-mounted over the real one
/// in the client's namespace; removed from /run as soon as the client has started.
struct PrivateResolv(PathBuf);

impl PrivateResolv {
    fn create() -> Result<Option<PrivateResolv>> {
        static N: AtomicU32 = AtomicU32::new(0);
        // No resolv.conf on the host: nothing to protect (and nothing to mount over).
        let Ok(content) = std::fs::read("/etc/resolv.conf") else {
            return Ok(None);
        };
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = PathBuf::from(format!("/run/pipework-resolv.{}.{n}", std::process::id()));
        std::fs::write(&path, content).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Some(PrivateResolv(path)))
    }
}

impl AsRef<Path> for PrivateResolv {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateResolv {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Sandboxed {
    /// Let the client start: the run has named it (its mount namespace) where a
    /// re-run, `del` or `gc` find it. Until then it waits; killed, the run shuts it.
    pub fn open_gate(&mut self) {
        self.gate.open();
    }

    /// Wait for the process we started to exit; `None` once `limit` has passed, an
    /// error if a signal interrupts pipework first.
    pub async fn wait(&mut self, limit: Duration) -> Result<Option<ExitStatus>> {
        let fd = watch(self.child.id())?;
        tokio::select! {
            waited = tokio::time::timeout(limit, fd.readable()) => match waited {
                Ok(ready) => {
                    let _exited = ready.context("cannot watch the client")?;
                    Ok(Some(self.child.wait().context("cannot wait for the client")?))
                }
                Err(_) => Ok(None),
            },
            signal = crate::interrupt::arrived() => Err(signal.into()),
        }
    }

    /// The last line the client printed, for error messages.
    pub fn last_words(&mut self) -> String {
        let mut text = String::new();
        let _ = self.output.seek(SeekFrom::Start(0));
        let _ = self.output.read_to_string(&mut text);
        text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string()
    }

    /// Stop everything the client started, at once.
    pub fn kill(&mut self) {
        let _ = kill_all(&self.mnt_ns, Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pidfd for `pid`: readable once the process has exited.
pub fn pidfd(pid: u32) -> Result<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid as nix::libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("cannot watch process {pid}"));
    }
    // SAFETY: the kernel just gave us this fd, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The pidfd of `pid`, registered with the runtime: `.readable()` once it has exited.
pub fn watch(pid: u32) -> Result<AsyncFd<OwnedFd>> {
    let fd = pidfd(pid)?;
    // SAFETY: the AsyncFd owns the pidfd, which nothing else closes or replaces.
    unsafe { AsyncFd::register(fd) }.with_context(|| format!("cannot watch process {pid}"))
}

/// A client's mount namespace, held open. Namespace inode numbers are reused as soon
/// as a namespace is freed: found by number alone, a client's namespace could turn
/// out, a moment after it ended, to be another program's (another run's client, a
/// container starting), and that program would get our signals. Held, it cannot be
/// freed, so its number stays its own.
#[derive(Clone, Debug)]
pub struct MountNs {
    ino: u64,
    /// `None` when no process was left in it to open it through: nothing to stop,
    /// and nothing can enter a namespace that nobody holds.
    held: Option<Arc<OwnedFd>>,
}

impl MountNs {
    /// Hold namespace `ino` through `pid`, or through any process still in it (the
    /// client may have exited already, leaving a daemon it forked).
    fn hold(ino: u64, pid: u32) -> MountNs {
        let through = |pid: u32| MountNs::hold_through(ino, pid);
        let held =
            through(pid).or_else(|| in_mount_ns(ino).into_iter().find_map(|p| through(p.as_raw() as u32)));
        held.unwrap_or(MountNs { ino, held: None })
    }

    /// Namespace `ino` held through `pid` alone, if `pid` is in it.
    pub fn hold_through(ino: u64, pid: u32) -> Option<MountNs> {
        let f = File::open(format!("/proc/{pid}/ns/mnt")).ok()?;
        (f.metadata().ok()?.ino() == ino).then(|| MountNs { ino, held: Some(Arc::new(OwnedFd::from(f))) })
    }

    /// Namespace `ino` held through a process that is in it and in network
    /// namespace `net_ns` too: two numbers that a namespace freed and another made
    /// since could not both match.
    pub fn hold_in(ino: u64, net_ns: u64) -> Option<MountNs> {
        let in_net =
            |pid: u32| std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.ino() == net_ns);
        in_mount_ns(ino)
            .into_iter()
            .map(|p| p.as_raw() as u32)
            .filter(|pid| in_net(*pid))
            .find_map(|pid| MountNs::hold_through(ino, pid).filter(|_| in_net(pid)))
    }

    pub fn ino(&self) -> u64 {
        self.ino
    }
}

/// The processes in a held namespace now (none in one that nothing held).
pub fn pids_in(mnt_ns: &MountNs) -> Vec<u32> {
    match mnt_ns.held {
        Some(_) => in_mount_ns(mnt_ns.ino).into_iter().map(|p| p.as_raw() as u32).collect(),
        None => Vec::new(),
    }
}

/// Send `first` to every process in mount namespace `mnt_ns`, then SIGKILL to any
/// still there after half a second; return once none is left.
pub fn kill_all(mnt_ns: &MountNs, first: Signal) -> Result<()> {
    if mnt_ns.held.is_none() {
        return Ok(());
    }
    let mnt_ns = mnt_ns.ino;
    for round in 0..60 {
        let pids = in_mount_ns(mnt_ns);
        if pids.is_empty() {
            return Ok(());
        }
        let signal = if round < 25 { first } else { Signal::SIGKILL };
        for pid in pids {
            let _ = kill(pid, signal);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("some of its processes would not end")
}

/// The processes whose mount namespace is `mnt_ns` (zombies have none and are skipped).
fn in_mount_ns(mnt_ns: u64) -> Vec<Pid> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| std::fs::metadata(format!("/proc/{pid}/ns/mnt")).is_ok_and(|m| m.ino() == mnt_ns))
        .map(|pid| Pid::from_raw(pid as i32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_that_cannot_be_held_is_never_signalled() {
        // No process is in a namespace numbered 1: nothing holds it, so a namespace
        // that later gets that number is not ours to signal.
        let ns = MountNs::hold(1, std::process::id());
        assert!(ns.held.is_none());
        assert!(kill_all(&ns, Signal::SIGKILL).is_ok());
    }

    #[test]
    fn a_live_namespace_is_held_through_its_process() {
        // Only held, never signalled: it is this test's own.
        let ino = std::fs::metadata("/proc/self/ns/mnt").unwrap().ino();
        assert!(MountNs::hold(ino, std::process::id()).held.is_some());
    }

    #[test]
    fn uts_names_fit_sethostname() {
        let id = "c".repeat(64);
        assert_eq!(uts_name(&id), id);
        assert_eq!(uts_name(&"d".repeat(70)).len(), 64);
        // 63 ASCII bytes and a 2-byte character: cut before it, not through it.
        let name = format!("{}é", "e".repeat(63));
        assert_eq!(uts_name(&name), "e".repeat(63));
    }
}
