//! GC and STATUS (1.1.0). GC removes this network's attachments that are not in
//! `cni.dev/valid-attachments` (each as DEL would, IPAM's DEL included), then hands
//! GC on to IPAM. STATUS says whether an ADD could work now.

use crate::netlink::Netlink;

use super::env::Command;
use super::error::{CniError, Code};
use super::version::Version;
use super::{del, state, Call};

/// The spec's STATUS code: "the plugin is not available" (cannot do ADD now).
const PLUGIN_NOT_AVAILABLE: Code = Code::PluginNotAvailable;

fn needs_1_1(call: &Call) -> Result<(), CniError> {
    let version = call.conf.version();
    if version < Version::V1_1_0 {
        let what = call.command.as_str();
        return Err(CniError::new(Code::IncompatibleVersion, format!("{what} is not part of CNI {version}")));
    }
    Ok(())
}

pub async fn gc(call: &Call) -> Result<(), CniError> {
    needs_1_1(call)?;
    // Without the list, everything would look stale: refused rather than guessed.
    let Some(valid) = call.conf.valid_attachments.as_deref() else {
        return Err(CniError::new(Code::InvalidConfig, "GC needs cni.dev/valid-attachments"));
    };
    let keep = |a: &state::Attachment| {
        valid.iter().any(|v| v.container_id == a.container_id && v.ifname == a.ifname)
    };
    let saved = state::all(&call.conf.name).map_err(|e| CniError::new(Code::Io, format!("{e:#}")))?;
    let mut failed = Vec::new();
    for a in saved.iter().filter(|a| !keep(a)) {
        let mut stale = call.clone();
        stale.env.container_id.clone_from(&a.container_id);
        stale.env.ifname.clone_from(&a.ifname);
        stale.env.netns.clone_from(&a.netns);
        if let Some(mut ipam) = stale.ipam() {
            ipam.overrides = vec![
                ("CNI_CONTAINERID", a.container_id.clone()),
                ("CNI_IFNAME", a.ifname.clone()),
                ("CNI_NETNS", a.netns.clone()),
            ];
            if let Err(e) = ipam.call(Command::Del) {
                failed.push(format!("{}/{}: {}", a.container_id, a.ifname, e.msg));
                continue;
            }
        }
        if let Err(e) = del::detach(&stale).await {
            failed.push(format!("{}/{}: {}", a.container_id, a.ifname, e.msg));
        }
    }
    // The pool's leases of attachments not valid (an ADD killed before its state
    // was written has one); an IPAM plugin older than 1.1 knows no GC: the DELs
    // above did its part.
    let ipam_gc = match (&call.conf.pool, call.ipam()) {
        (Some(pool), _) => {
            let valid: Vec<(&str, &str)> =
                valid.iter().map(|v| (v.container_id.as_str(), v.ifname.as_str())).collect();
            super::pool::gc(pool, &valid)
        }
        (None, Some(ipam)) => ipam.call_if_1_1(Command::Gc).map(drop),
        (None, None) => Ok(()),
    };
    if let Err(e) = ipam_gc {
        failed.push(format!("IPAM GC: {}", e.msg));
    }
    match failed.is_empty() {
        true => Ok(()),
        false => {
            Err(CniError::new(Code::Internal, format!("GC left some attachments: {}", failed.join("; "))))
        }
    }
}

/// STATUS: our netlink works, and the host interface is there or is one ADD makes
/// (a Linux or `ovs*` bridge).
pub async fn status(call: &Call) -> Result<(), CniError> {
    needs_1_1(call)?;
    let unavailable = |msg: String| CniError::new(PLUGIN_NOT_AVAILABLE, msg);
    let host = Netlink::current().map_err(|e| unavailable(format!("no netlink: {e:#}")))?;
    let name = call.conf.host_if();
    let found = host.link_by_name(name).await.map_err(|e| unavailable(format!("{e:#}")))?;
    let own = &call.conf.pipework;
    let named = own.host_interface.is_none() || name.starts_with("br") || name.starts_with("ovs");
    let made_by_add = !own.direct_phys && named;
    if found.is_none() && !made_by_add {
        return Err(unavailable(format!("the host interface {name} is not there")));
    }
    match &call.conf.pool {
        Some(pool) => super::pool::status(pool),
        None => Ok(()),
    }
}
