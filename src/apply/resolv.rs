//! `dhcp4:dns`, `dhcp6:dns`: the leases' name servers and search domains written into the guest's
//! own `/etc/resolv.conf`, and put back by `del` (or a rollback).
//!
//! The file is the guest's mount namespace's: opened under `/proc/PID/root` with
//! `openat2(RESOLVE_IN_ROOT)`, so that a symlink in the guest resolves inside the
//! guest and never to the host's file, and a Docker container's bind-mounted file is
//! written in place (truncated and rewritten: a rename cannot replace a mount point).
//! Its original content is saved on the host first, in
//! `$PIPEWORK_RUN_DIR/resolv/NSINODE-CONTAINER_IF.conf`, so that a run killed after
//! the write leaves what `del` needs to put it back; the first save wins (a re-run
//! keeps the very original).

use std::io::{Read as _, Seek as _, Write as _};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use nix::fcntl::{open, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use std::net::IpAddr;

use crate::plan::Leased;

/// Where the guest's original resolv.conf is kept until `del`.
pub fn saved_path(ns: u64, container_if: &str) -> PathBuf {
    crate::record::run_dir().join("resolv").join(format!("{ns}-{container_if}.conf"))
}

/// resolv.conf's text for the `leases` on `dev` (a DHCPv4 and a DHCPv6 one, in
/// the order they came): their name servers, at most glibc's three, and their
/// search domains, each once.
pub fn text(dev: &str, leases: &[Leased]) -> String {
    let mut servers: Vec<IpAddr> = Vec::new();
    let mut search: Vec<&str> = Vec::new();
    for lease in leases {
        let (s, names): (Vec<IpAddr>, &[String]) = match lease {
            Leased::V4(l) => (l.dns.iter().map(|a| IpAddr::V4(*a)).collect(), &l.search),
            Leased::V6(l) => (l.dns.iter().map(|a| IpAddr::V6(*a)).collect(), &l.search),
        };
        servers.extend(s.into_iter().filter(|a| !servers.contains(a)).collect::<Vec<_>>());
        search.extend(names.iter().map(String::as_str).filter(|n| !search.contains(n)).collect::<Vec<_>>());
    }
    servers.truncate(crate::dhcp::options4::MAX_SERVERS);
    search.truncate(crate::dhcp::options4::MAX_SEARCH);
    let mut t = format!("# written by pipework from the DHCP lease on {dev}\n");
    for s in &servers {
        t.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() {
        t.push_str(&format!("search {}\n", search.join(" ")));
    }
    t
}

/// Save the guest's resolv.conf (unless saved already), then write `text` into it.
pub fn write(pid: u32, ns: u64, container_if: &str, text: &str) -> Result<()> {
    let mut file = std::fs::File::from(open_in_guest(pid, true)?);
    let saved = saved_path(ns, container_if);
    if !saved.exists() {
        let mut original = Vec::new();
        file.read_to_end(&mut original).context("cannot read the guest's /etc/resolv.conf")?;
        let dir = saved.parent().expect("a file in a directory");
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = saved.with_extension("new");
        std::fs::write(&tmp, &original).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &saved).with_context(|| format!("cannot write {}", saved.display()))?;
    }
    replace(&mut file, text.as_bytes()).context("cannot write the guest's /etc/resolv.conf")
}

/// A renewal's new name servers: the guest's resolv.conf replaced by `now` if it
/// still is `was`, the text pipework wrote; `Ok(false)` when it is not (left as it
/// is). Its saved original stays what `del` puts back.
pub fn rewrite(pid: u32, was: &str, now: &str) -> Result<bool> {
    let mut file = std::fs::File::from(open_in_guest(pid, false)?);
    let mut text = Vec::new();
    file.read_to_end(&mut text).context("cannot read the guest's /etc/resolv.conf")?;
    if text != was.as_bytes() {
        return Ok(false);
    }
    replace(&mut file, now.as_bytes()).context("cannot write the guest's /etc/resolv.conf")?;
    Ok(true)
}

/// Put the saved resolv.conf back, if there is one; `Ok(false)` when nothing was
/// saved. A guest without its process any more has no file to put back: the saved
/// copy just goes.
pub fn restore(pid: Option<u32>, ns: u64, container_if: &str) -> Result<bool> {
    let saved = saved_path(ns, container_if);
    let Ok(original) = std::fs::read(&saved) else {
        return Ok(false);
    };
    if let Some(pid) = pid.filter(|p| crate::netns::of_pid(*p).ok() == Some(ns)) {
        let mut file = std::fs::File::from(open_in_guest(pid, false)?);
        replace(&mut file, &original).context("cannot put the guest's /etc/resolv.conf back")?;
    }
    std::fs::remove_file(&saved).with_context(|| format!("cannot remove {}", saved.display()))?;
    Ok(true)
}

fn replace(file: &mut std::fs::File, bytes: &[u8]) -> std::io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(bytes)
}

/// The guest's /etc/resolv.conf, resolved inside its root. `create`: made if missing.
fn open_in_guest(pid: u32, create: bool) -> Result<OwnedFd> {
    let root = format!("/proc/{pid}/root");
    let dir = open(root.as_str(), OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .with_context(|| format!("cannot open {root}"))?;
    let resolve = ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS;
    let how = OpenHow::new().resolve(resolve);
    // openat2 refuses a mode without O_CREAT (EINVAL).
    let how = match create {
        true => {
            how.flags(OFlag::O_RDWR | OFlag::O_CLOEXEC | OFlag::O_CREAT).mode(Mode::from_bits_truncate(0o644))
        }
        false => how.flags(OFlag::O_RDWR | OFlag::O_CLOEXEC),
    };
    openat2(&dir, "etc/resolv.conf", how)
        .with_context(|| format!("cannot open the guest's /etc/resolv.conf ({root})"))
}
