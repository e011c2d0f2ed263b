//! The record of an attachment: what the kernel cannot say later (the addresses and
//! gateways the attach made, the default route it replaced, the DHCP clients it
//! left running, a `--direct-phys` NIC as it was on the host), written at the end
//! of a successful attach as `$PIPEWORK_RUN_DIR/attachments/NSINODE-CONTAINER_IF.json`
//! (default `/run/pipework`), for `check` to compare against and `del` to put back.
//! Never the only truth: the attachment's mark in the kernel is (`crate::plan::alias`);
//! a missing record only means that less can be compared or put back. Written
//! atomically (a temporary file, then a rename), so a reader never sees half of one.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use ipnetwork::IpNetwork;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::dhcp::kept::Kept;
pub use crate::model::is_link_local;
use crate::plan::remove::SavedNic;

/// The environment variable that moves the run directory (tests use a temporary one).
pub const RUN_DIR_ENV: &str = "PIPEWORK_RUN_DIR";
pub const VERSION: u32 = 1;

/// One attachment as the attach made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    /// The mark's `guest=` (`docker:ID`, `pid:N`, `netns:PATH`).
    pub guest: String,
    pub ns: u64,
    pub container_if: String,
    pub host_if: String,
    pub kind: String,
    pub host_end: Option<String>,
    /// CONTAINER_IF's addresses after the attach (IPv6 link-local ones left out).
    pub addresses: Vec<IpNetwork>,
    /// The gateways of the default routes through CONTAINER_IF after the attach.
    pub gateways: Vec<IpAddr>,
    /// The guest's default routes the attach deleted to put its own in.
    pub replaced_routes: Vec<SavedRoute>,
    /// The DHCP clients the attach left running (`-f` forms), for `del` and `gc`
    /// to stop. Missing in the records of earlier versions.
    #[serde(default)]
    pub dhcp: Vec<Kept>,
    /// A `--direct-phys` NIC as it was on the host, for `del` to give it back.
    #[serde(default)]
    pub nic: Option<SavedNic>,
    /// The run that wrote it: its intent (`crate::intent`), if still there, is of a
    /// run that completed. Missing in the records of earlier versions.
    #[serde(default)]
    pub run: Option<crate::process::Run>,
    /// The CNI attachment it is (an ADD's), for `ls` to name it as the runtime
    /// does. Missing in the records of earlier versions and of the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni: Option<CniOwner>,
    /// `--isolated`: the host end was made an isolated port. Missing (false) in the
    /// records of earlier versions.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub isolated: bool,
    /// `--host-shim`: the shim the guest's host routes go through, and those routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shim: Option<RecordedShim>,
    /// `BRIDGE@UPLINK`: the uplink as HOSTIF named it (HOSTIF is the bridge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uplink: Option<String>,
}

/// Who a CNI ADD made an attachment for: the runtime's container (the pod's
/// sandbox under Kubernetes) and, when a Kubernetes runtime said it in `CNI_ARGS`
/// (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`), the pod as `NAMESPACE/NAME`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniOwner {
    pub network: String,
    pub container_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

/// A shimmed guest's part of its shim: what its `del` removes (the shim too, when
/// no other guest routes through it; its mark says what goes back on the parent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedShim {
    pub name: String,
    pub routes: Vec<IpNetwork>,
    /// The shim's mark when the attach ended (see `plan::shim::ShimMark`).
    pub mark: String,
}

/// A route as it can be made again: the device by name (its index may change).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedRoute {
    pub dst: IpNetwork,
    pub gateway: Option<IpAddr>,
    pub dev: Option<String>,
    /// Missing in the records of earlier versions: put back without one then.
    #[serde(default)]
    pub metric: Option<u32>,
    /// `proto` as a number; missing likewise (then `boot`, as `ip route` makes it).
    #[serde(default)]
    pub protocol: Option<u8>,
}

/// `$PIPEWORK_RUN_DIR` (default `/run/pipework`).
pub fn run_dir() -> PathBuf {
    let base = std::env::var_os(RUN_DIR_ENV).filter(|d| !d.is_empty());
    base.map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/run/pipework"))
}

/// `$PIPEWORK_RUN_DIR/attachments` (default `/run/pipework/attachments`).
pub fn dir() -> PathBuf {
    run_dir().join("attachments")
}

pub fn path(ns: u64, container_if: &str) -> PathBuf {
    dir().join(format!("{ns}-{container_if}.json"))
}

/// The record of that attachment; `None` when there is none.
pub fn load(ns: u64, container_if: &str) -> Result<Option<Record>> {
    read(&path(ns, container_if))
}

pub fn read(path: &Path) -> Result<Option<Record>> {
    read_json(path)
}

/// The JSON file at `path` (a record, an intent); `None` when there is none.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let value = serde_json::from_slice(&text).with_context(|| format!("cannot parse {}", path.display()))?;
    Ok(Some(value))
}

/// Write it atomically: a temporary file beside it, then renamed over it.
pub fn save(record: &Record) -> Result<PathBuf> {
    let path = path(record.ns, &record.container_if);
    write_atomically(&path, record)?;
    Ok(path)
}

/// `value` as JSON at `path`, whole or not at all: a hidden temporary file beside it
/// (`.NAME.PID.tmp`, which no reader lists), then renamed over it. Creates the
/// directory. Not synced: the rename alone makes it whole for every reader, and
/// what it describes (namespaces, links) does not outlive a crash or reboot anyway
/// (the run directory, `/run`, is per boot). An fsync per file, two per CNI ADD,
/// made an ADD 10-15% slower on a disk-backed run directory of a busy machine.
pub fn write_atomically<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        anyhow::bail!("cannot write {}: not a file in a directory", path.display());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(serde_json::to_string_pretty(value)?.as_bytes())?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow::Error::new(e).context(format!("cannot write {}", path.display())));
    }
    Ok(())
}

/// Remove the temporary files (see [`write_atomically`]) in `dir` of writers that
/// are gone (killed between write and rename): `del` and `gc` do, an attach does
/// not (it would pay a `readdir` every time for what a kill rarely leaves).
pub fn remove_dead_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temporary_of) else { continue };
        if crate::process::Process::of(pid).is_none() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The writer's pid of a temporary file's name, `.NAME.PID.tmp`.
fn temporary_of(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    rest.rsplit_once('.')?.1.parse().ok()
}

/// Remove the record at `path`; true if there was one.
pub fn remove_at(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// Every record file (`*.json`) in the directory, with what it holds; none when
/// the directory is not there.
pub fn all() -> Result<Vec<(PathBuf, Result<Record>)>> {
    all_json(&dir())
}

/// Every record file's path, unread, with the guest namespace its name gives
/// (`NS-CONTAINER_IF.json`), in name order: for a caller that needs only some of
/// them (`ls` reads only those of namespaces it has not found otherwise).
pub fn listed() -> Result<Vec<(u64, PathBuf)>> {
    let dir = dir();
    let named = json_files(&dir)?.into_iter().filter_map(|path| {
        let name = path.file_name()?.to_str()?;
        let ns = name.strip_suffix(".json")?.split_once('-')?.0.parse().ok()?;
        Some((ns, path))
    });
    Ok(named.collect())
}

/// Every `*.json` file in `dir` (temporary files, `.NAME.PID.tmp`, are not), in
/// name order, with what it holds; none when the directory is not there.
pub fn all_json<T: DeserializeOwned>(dir: &Path) -> Result<Vec<(PathBuf, Result<T>)>> {
    let files = json_files(dir)?.into_iter();
    Ok(files.map(|path| (path.clone(), read_json(&path).and_then(|v| v.context("gone meanwhile")))).collect())
}

/// The paths of the `*.json` files in `dir`, unread, in name order; none when the
/// directory is not there.
fn json_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry.with_context(|| format!("cannot read {}", dir.display()))?.path();
        if path.extension().is_some_and(|x| x == "json") {
            found.push(path);
        }
    }
    // By name: all are in `dir` (a whole path's comparison, component by component,
    // was a sixth of `ls`'s instructions with 1000 records).
    found.sort_unstable_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(found)
}

/// A record of `pid:42`'s eth1 on br1, for tests here and in `lifecycle`.
#[cfg(test)]
pub(crate) fn sample() -> Record {
    Record {
        version: 1,
        guest: "pid:42".into(),
        ns: 4026532001,
        container_if: "eth1".into(),
        host_if: "br1".into(),
        kind: "bridge".into(),
        host_end: Some("veth1pl42".into()),
        addresses: vec!["10.0.0.2/24".parse().unwrap()],
        gateways: vec!["10.0.0.1".parse().unwrap()],
        replaced_routes: Vec::new(),
        dhcp: Vec::new(),
        nic: None,
        run: None,
        cni: None,
        isolated: false,
        shim: None,
        uplink: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_writers_temporary_goes_and_a_live_ones_stays() {
        assert_eq!(temporary_of(".4026532001-eth1.json.1234.tmp"), Some(1234));
        assert_eq!(temporary_of("4026532001-eth1.json"), None);
        let dir = std::env::temp_dir().join(format!("pipework-tmp-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let (mine, theirs) = (format!(".a.json.{}.tmp", std::process::id()), format!(".b.json.{dead}.tmp"));
        for name in [&mine, &theirs, &"c.json".to_string()] {
            std::fs::write(dir.join(name), "{}").unwrap();
        }
        remove_dead_temporaries(&dir);
        assert!(dir.join(&mine).exists() && dir.join("c.json").exists());
        assert!(!dir.join(&theirs).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_record_round_trips_as_plain_json() {
        let replaced_routes = vec![SavedRoute {
            dst: "0.0.0.0/0".parse().unwrap(),
            gateway: Some("172.31.0.1".parse().unwrap()),
            dev: Some("up0".into()),
            metric: Some(100),
            protocol: Some(16),
        }];
        let r = Record { replaced_routes, ..sample() };
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains(r#""addresses":["10.0.0.2/24"]"#), "{text}");
        assert!(text.contains(r#""gateway":"172.31.0.1""#), "{text}");
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), r);
        assert_eq!(path(7, "eth1").file_name().unwrap(), "7-eth1.json");
    }

    #[test]
    fn a_record_of_an_earlier_version_reads_with_no_clients_and_no_nic() {
        let mut old = serde_json::to_value(sample()).unwrap();
        old.as_object_mut().unwrap().retain(|k, _| k != "dhcp" && k != "nic");
        let r: Record = serde_json::from_value(old).unwrap();
        assert_eq!(r, sample());
    }
}
