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
    /// The DHCPv4 client identifier (option 61) after its type byte: RFC 4361's
    /// IAID and DUID, derived from the guest's stable name; `None`: the MAC (as
    /// udhcpc sends it). Missing in the keeper arguments of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Vec<u8>>,
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
            client_id: client_id(req)?,
        })
    }
}

/// RFC 4361's client identifier for `req`'s guest, unless `id=mac`: type 255, an
/// IAID (the interface's: two interfaces of one guest are two clients), and a
/// DUID-UUID (RFC 6355) made of the guest's stable name, so that the same guest
/// with a new MAC is the same client to the server.
fn client_id(req: &DhcpRequest) -> Result<Option<Vec<u8>>> {
    let Some(name) = &req.identity else { return Ok(None) };
    if crate::plan::dhcp::BuiltinOptions::parse(&req.options)?.mac_id {
        return Ok(None);
    }
    let iaid = md5::compute(req.dev.as_bytes());
    let uuid = md5::compute(format!("pipework:{name}").as_bytes());
    let mut id = iaid.0[..4].to_vec();
    id.extend_from_slice(&[0, 4]);
    id.extend_from_slice(&uuid.0);
    Ok(Some(id))
}
