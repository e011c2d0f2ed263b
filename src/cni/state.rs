//! What a CNI ADD made, kept beside the attachments' records as
//! `$PIPEWORK_RUN_DIR/cni/NETWORK/CONTAINERID-IFNAME.json`: DEL needs the namespace's
//! inode once the namespace is gone (to drop the attachment's record), and GC needs
//! the list of attachments of one network to compare with `valid-attachments`.
//! CONTAINERID and IFNAME are escaped (`-` and `%` too), so that no two attachments
//! share a file; the files of earlier versions, named without that, are still read
//! and removed (see [`legacy_path`]).

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::record;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
    pub netns: String,
    /// The namespace's inode: the attachment's record is named by it.
    pub ns: u64,
    pub host_if: String,
    pub host_end: Option<String>,
    /// The ADD's result (1.1.0 shape), for CHECK when the runtime has none.
    pub result: serde_json::Value,
}

/// `$PIPEWORK_RUN_DIR/cni/NETWORK`, beside `attachments/`.
pub fn dir(network: &str) -> PathBuf {
    record::dir().with_file_name("cni").join(network)
}

/// A name the runtime gave, as a file name: no `/`, no leading dot.
fn safe(name: &str) -> String {
    name.replace('/', "%2F").replacen('.', "%2E", usize::from(name.starts_with('.')))
}

/// A name the runtime gave as part of a file name: every byte but an ASCII letter,
/// digit, `_` or a `.` that does not lead as `%XX`, `-` (the separator) and `%`
/// included. Container `a-b` with `c` and container `a` with `b-c` shared one file.
fn escaped(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => out.push(b as char),
            b'.' if i > 0 => out.push('.'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub fn path(network: &str, container_id: &str, ifname: &str) -> PathBuf {
    dir(&safe(network)).join(format!("{}-{}.json", escaped(container_id), escaped(ifname)))
}

/// Where versions before the escaping wrote this attachment: the same as [`path`]
/// for names without `-`, `%` or a leading `.`. Its file may be another
/// attachment's (the two shared it), so it is only taken when what it says names
/// this one.
fn legacy_path(network: &str, container_id: &str, ifname: &str) -> PathBuf {
    dir(&safe(network)).join(format!("{}-{}.json", safe(container_id), safe(ifname)))
}

/// This attachment's state: its file, or the file an earlier version wrote.
pub fn load(network: &str, container_id: &str, ifname: &str) -> Result<Option<Attachment>> {
    if let Some(a) = read(&path(network, container_id, ifname))? {
        return Ok(Some(a));
    }
    legacy(network, container_id, ifname)
}

/// The legacy file, when it is this attachment's.
fn legacy(network: &str, container_id: &str, ifname: &str) -> Result<Option<Attachment>> {
    let old = legacy_path(network, container_id, ifname);
    if old == path(network, container_id, ifname) {
        return Ok(None);
    }
    Ok(read(&old)?.filter(|a| a.container_id == container_id && a.ifname == ifname))
}

fn read(path: &std::path::Path) -> Result<Option<Attachment>> {
    match std::fs::read(path) {
        Ok(text) => serde_json::from_slice(&text)
            .map(Some)
            .with_context(|| format!("cannot parse {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Written whole or not at all (a temporary file renamed over it).
pub fn save(network: &str, a: &Attachment) -> Result<()> {
    record::write_atomically(&path(network, &a.container_id, &a.ifname), a)
}

/// Its file, and the legacy file when that is this attachment's (an unreadable one
/// is left: it may be another's).
pub fn remove(network: &str, container_id: &str, ifname: &str) -> Result<()> {
    record::remove_at(&path(network, container_id, ifname))?;
    if let Ok(Some(_)) = legacy(network, container_id, ifname) {
        record::remove_at(&legacy_path(network, container_id, ifname))?;
    }
    Ok(())
}

/// Every attachment of `network` (unreadable files are skipped: GC keeps them).
pub fn all(network: &str) -> Result<Vec<Attachment>> {
    let dir = dir(&safe(network));
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        if entry.path().extension().is_some_and(|x| x == "json") {
            if let Ok(a) = std::fs::read(entry.path())
                .map_err(anyhow::Error::new)
                .and_then(|t| Ok(serde_json::from_slice(&t)?))
            {
                found.push(a);
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_in_their_directory() {
        let p = path("../x", "a/b", "eth0");
        assert_eq!(p.parent().unwrap().file_name().unwrap(), "%2E./x".replace('/', "%2F").as_str());
        assert_eq!(p.file_name().unwrap(), "a%2Fb-eth0.json");
    }

    #[test]
    fn ids_and_ifnames_with_the_separator_get_files_of_their_own() {
        let (a, b) = (path("n", "a-b", "c"), path("n", "a", "b-c"));
        assert_ne!(a, b);
        assert_eq!(a.file_name().unwrap(), "a%2Db-c.json");
        assert_eq!(b.file_name().unwrap(), "a-b%2Dc.json");
        assert_eq!(path("n", "a%2Db", "c").file_name().unwrap(), "a%252Db-c.json");
        // The common names keep the name earlier versions gave them.
        assert_eq!(path("n", "c0ffee.1", "eth0"), legacy_path("n", "c0ffee.1", "eth0"));
        assert_eq!(legacy_path("n", "a-b", "c"), legacy_path("n", "a", "b-c"));
    }
}
