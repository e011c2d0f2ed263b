//! The questions the watcher asks Docker besides the event stream: which
//! containers run, what one of them declares, and what its image's inspect says.
//! Blocking socket I/O (the one client, `crate::docker::client`) on the runtime's
//! blocking pool.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

use super::declare::Container;
use crate::blocking;
use crate::docker::client::{get_json, url_encode};

/// The running containers: (full id, name without '/').
pub async fn running(socket: &Path) -> Result<Vec<(String, String)>> {
    let socket = socket.to_path_buf();
    let list = blocking::run("container list", move || get_json(&socket, "/containers/json")).await?;
    let list = list.context("Docker has no container list")?;
    let items = list.as_array().context("Docker's container list is not a list")?;
    Ok(items
        .iter()
        .filter_map(|c| {
            let id = c.get("Id")?.as_str()?.to_string();
            let name = c.get("Names").and_then(|n| n.get(0)?.as_str()).unwrap_or(&id);
            Some((id.clone(), name.trim_start_matches('/').to_string()))
        })
        .collect())
}

/// The container as it is now; `None` once it is gone (removed).
pub async fn inspect(socket: &Path, id: &str) -> Result<Option<Container>> {
    let (socket, path): (PathBuf, String) =
        (socket.to_path_buf(), format!("/containers/{}/json", url_encode(id)));
    let found: Option<Value> = blocking::run("container inspect", move || get_json(&socket, &path)).await?;
    found.as_ref().map(Container::from_inspect).transpose()
}

/// The image with this id (`sha256:...`), as Docker's image inspect says (what it
/// declares is `super::image`'s business); `None` when Docker has no such image.
pub async fn image(socket: &Path, id: &str) -> Result<Option<Value>> {
    let (socket, path): (PathBuf, String) =
        (socket.to_path_buf(), format!("/images/{}/json", url_encode(id)));
    blocking::run("image inspect", move || get_json(&socket, &path)).await
}
