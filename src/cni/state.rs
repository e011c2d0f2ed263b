//! What a CNI ADD made, kept beside the attachments' records as
//! `$PIPEWORK_RUN_DIR/cni/NETWORK/CONTAINERID-IFNAME.json`: DEL needs the namespace's
//! inode once the namespace is gone (to drop the attachment's record), and GC needs
//! the list of attachments of one network to compare with `valid-attachments`.

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

pub fn path(network: &str, container_id: &str, ifname: &str) -> PathBuf {
    dir(&safe(network)).join(format!("{}-{}.json", safe(container_id), safe(ifname)))
}

pub fn load(network: &str, container_id: &str, ifname: &str) -> Result<Option<Attachment>> {
    let path = path(network, container_id, ifname);
    match std::fs::read(&path) {
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

pub fn remove(network: &str, container_id: &str, ifname: &str) -> Result<()> {
    record::remove_at(&path(network, container_id, ifname)).map(drop)
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
}
