//! The interface as pipework's own clients hand it to mozim (which reads nothing of
//! it itself): shared by the exchanges (`builtin`, `builtin6`) and the keeper they
//! hand their lease to (`keep`).

use anyhow::{anyhow, Result};

use super::Target;
use crate::plan::DhcpRequest;

/// What mozim needs to know about the interface.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Interface {
    pub dev: String,
    pub index: u32,
    pub mac: [u8; 6],
    pub hostname: String,
    /// The most a lease's MTU (option 26) may set: the interface's as made, which is
    /// the host side's. Missing in the keeper arguments of earlier versions (then
    /// the option is not applied).
    #[serde(default)]
    pub max_mtu: Option<u32>,
}

impl Interface {
    /// The target's interface, as the request names it; its MAC is the client's
    /// chaddr and client id (DHCPv4) or DUID (DHCPv6).
    pub fn of(req: &DhcpRequest, target: &Target<'_>) -> Result<Interface> {
        let mac = target.mac.ok_or_else(|| anyhow!("{} has no MAC address", req.dev))?;
        Ok(Interface {
            dev: req.dev.clone(),
            index: target.index,
            mac: mac.0,
            hostname: req.hostname.clone(),
            max_mtu: target.mtu,
        })
    }
}
