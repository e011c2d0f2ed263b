//! host-local's store, file for file, so that a network can switch between the two
//! and keep its leases: `DATADIR/NETWORK/ADDRESS` holding `CONTAINERID\r\nIFNAME`
//! (an older host-local wrote the id alone), `last_reserved_ip.N` (the last address
//! given from range set N, where its round robin goes on), and `lock`, flock(2)ed
//! for the whole of each call, by us and by host-local alike.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use nix::fcntl::{Flock, FlockArg};

/// One network's leases, locked while this lives.
pub struct Store {
    dir: PathBuf,
    _lock: Flock<File>,
}

/// One lease as its file says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub ip: IpAddr,
    pub container_id: String,
    /// `None` in the files of an older host-local.
    pub ifname: Option<String>,
}

impl Lease {
    pub fn is_of(&self, container_id: &str, ifname: &str) -> bool {
        self.container_id == container_id && self.ifname.as_deref().is_none_or(|i| i == ifname)
    }
}

impl Store {
    /// `data_dir/network`, made when missing, locked (waits for another call).
    pub fn open(data_dir: &Path, network: &str) -> Result<Store> {
        let dir = data_dir.join(network);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| anyhow::Error::new(e).context(format!("cannot lock {}", path.display())))?;
        Ok(Store { dir, _lock: lock })
    }

    /// Every lease (files named by an address).
    pub fn leases(&self) -> Result<Vec<Lease>> {
        let mut out = Vec::new();
        let entries =
            std::fs::read_dir(&self.dir).with_context(|| format!("cannot read {}", self.dir.display()))?;
        for e in entries.flatten() {
            let Some(ip) = e.file_name().to_str().and_then(|n| n.parse::<IpAddr>().ok()) else { continue };
            let Ok(text) = std::fs::read_to_string(e.path()) else { continue };
            let mut lines = text.lines().map(str::trim);
            let container_id = lines.next().unwrap_or_default().to_string();
            let ifname = lines.next().filter(|l| !l.is_empty()).map(String::from);
            out.push(Lease { ip, container_id, ifname });
        }
        Ok(out)
    }

    /// Take `ip` for the attachment: `false` when it is taken already.
    pub fn reserve(&self, ip: IpAddr, container_id: &str, ifname: &str, set: usize) -> Result<bool> {
        let path = self.dir.join(ip.to_string());
        let mut f = match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(e).with_context(|| format!("cannot write {}", path.display())),
        };
        let written = f.write_all(format!("{container_id}\r\n{ifname}").as_bytes());
        if let Err(e) = written {
            let _ = std::fs::remove_file(&path);
            return Err(e).with_context(|| format!("cannot write {}", path.display()));
        }
        let last = self.dir.join(format!("last_reserved_ip.{set}"));
        std::fs::write(&last, ip.to_string()).with_context(|| format!("cannot write {}", last.display()))?;
        Ok(true)
    }

    /// `last_reserved_ip.N`, if it holds an address.
    pub fn last_reserved(&self, set: usize) -> Option<IpAddr> {
        std::fs::read_to_string(self.dir.join(format!("last_reserved_ip.{set}"))).ok()?.trim().parse().ok()
    }

    /// Remove `ip`'s lease.
    pub fn release(&self, ip: IpAddr) -> Result<()> {
        let path = self.dir.join(ip.to_string());
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", path.display()))
            }
            _ => Ok(()),
        }
    }
}
