//! The network namespace the runtime names (`CNI_NETNS`), opened for ADD, DEL and
//! CHECK alike.

use crate::guest::Guest;

use super::error::{CniError, Code};

/// The netns the runtime made: a path we can open that is not our own namespace
/// (code 3 when there is no such file, 4 when it is no namespace).
pub fn open(netns: &str) -> Result<Guest, CniError> {
    let bad =
        |e: anyhow::Error| CniError::new(Code::InvalidEnvironment, format!("bad CNI_NETNS {netns:?}: {e:#}"));
    if !crate::guest::is_netns_path(netns) {
        return Err(bad(anyhow::anyhow!("not an absolute path to a network namespace")));
    }
    // Code 3 tells the runtime that there is nothing to clean up either.
    if !std::path::Path::new(netns).exists() {
        return Err(CniError::new(Code::UnknownContainer, format!("the namespace {netns} does not exist")));
    }
    crate::guest::resolve(netns).and_then(crate::guest::not_the_host).map_err(bad)
}
