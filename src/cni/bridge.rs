//! The Linux bridge as the bridge plugin treats it: made when missing (with `mtu`
//! and `promiscMode`), given the gateway address with `isGateway`, and left in
//! place by DEL. A bridge this ADD made goes again when the ADD fails.

use ipnetwork::IpNetwork;
use nix::errno::Errno;

use crate::apply::BridgeLock;
use crate::model::broadcast_of;
use crate::netlink::{errno_of, Netlink};

use super::config::NetConf;
use super::error::{CniError, Code};
use super::result::CniResult;

/// The host end of the veth: `veth` and 8 hex digits of the attachment's identity,
/// the bridge plugin's form; the same name again for the same container and ifname.
pub fn host_end(container_id: &str, ifname: &str) -> String {
    let digest = md5::compute(format!("{container_id}\n{ifname}"));
    format!("veth{:02x}{:02x}{:02x}{:02x}", digest[0], digest[1], digest[2], digest[3])
}

/// Make the bridge when it is missing; the index of one made now. An Open vSwitch
/// (`ovs*`) name, a NIC and `directPhys` are the attach's to handle.
pub async fn ensure(host: &Netlink, conf: &NetConf) -> Result<Option<u32>, CniError> {
    let fail = |e: anyhow::Error| CniError::internal(&e);
    let name = conf.host_if();
    if conf.pipework.direct_phys {
        return Ok(None);
    }
    let found = host.link_by_name(name).await.map_err(fail)?;
    let linux_bridge = found.as_ref().map_or(!name.starts_with("ovs"), |l| l.is_bridge());
    if let Some(link) = found {
        if conf.promisc_mode && link.is_bridge() {
            host.set_promisc(link.index, true).await.map_err(fail)?;
        }
        return Ok(None);
    }
    if !linux_bridge {
        return Ok(None);
    }
    match host.create_bridge(name).await {
        Ok(_) => {}
        // Another ADD made it meanwhile (runtimes start containers in parallel).
        Err(e) if errno_of(&e) == Some(Errno::EEXIST) => return Ok(None),
        Err(e) => return Err(fail(e.context(format!("cannot create the bridge {name}")))),
    }
    let Some(made) = host.link_by_name(name).await.map_err(fail)? else {
        return Err(CniError::new(
            Code::Internal,
            format!("the bridge {name} is gone right after it was made"),
        ));
    };
    let settings = async {
        if let Some(mtu) = conf.mtu {
            host.set_mtu(made.index, mtu).await?;
        }
        if conf.promisc_mode {
            host.set_promisc(made.index, true).await?;
        }
        host.set_up(made.index).await
    };
    match settings.await {
        Ok(()) => Ok(Some(made.index)),
        Err(e) => {
            Err(undo(host, Some(made.index), fail(e.context(format!("cannot set up the bridge {name}"))))
                .await)
        }
    }
}

/// `e`, after removing the bridge made by this ADD (and saying so if that failed):
/// as a failed attach removes its bridge, under the bridge lock held exclusive and
/// only without ports (another ADD may have plugged into it meanwhile).
pub async fn undo(host: &Netlink, made: Option<u32>, e: CniError) -> CniError {
    let Some(index) = made else { return e };
    let removed = async {
        let _lock = BridgeLock::exclusive().await?;
        if host.links().await?.iter().any(|l| l.master == Some(index)) {
            return Ok(());
        }
        host.delete_link(index).await
    };
    match removed.await {
        Ok(()) => e,
        Err(undo) => e.and_then_failed(&CniError::internal(&undo)),
    }
}

/// `isGateway`: each gateway on the bridge, with the subnet's prefix. Another
/// address of that subnet there is an error, or replaced with `forceAddress`.
pub async fn gateway_addresses(host: &Netlink, conf: &NetConf, leased: &CniResult) -> Result<(), CniError> {
    let fail = |e: anyhow::Error| CniError::internal(&e);
    if !conf.gateway_on_bridge() {
        return Ok(());
    }
    let name = conf.host_if();
    let Some(bridge) = host.link_by_name(name).await.map_err(fail)?.filter(|l| l.is_bridge()) else {
        return Ok(());
    };
    for ip in &leased.ips {
        let Some(gw) = ip.gateway else { continue };
        let want = IpNetwork::new(gw, ip.address.prefix()).map_err(|e| fail(e.into()))?;
        let have = host.addresses(bridge.index).await.map_err(fail)?;
        if have.contains(&want) {
            continue;
        }
        for other in have.iter().filter(|a| a.prefix() == want.prefix() && a.network() == want.network()) {
            if !conf.force_address {
                let msg = format!(
                    "{name} already has an address {other} different from {want} (forceAddress replaces it)"
                );
                return Err(CniError::new(Code::Internal, msg));
            }
            host.del_address(bridge.index, *other).await.map_err(fail)?;
        }
        match host.add_address(bridge.index, want, broadcast_of(&want)).await {
            // Another ADD on the bridge added it meanwhile.
            Err(e) if errno_of(&e) == Some(Errno::EEXIST) => {}
            added => added.map_err(|e| fail(e.context(format!("cannot add {want} to {name}"))))?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_end_is_stable_and_fits() {
        let a = super::host_end("c0ffee", "eth0");
        assert_eq!(a, super::host_end("c0ffee", "eth0"));
        assert_ne!(a, super::host_end("c0ffee", "eth1"));
        assert_eq!(a.len(), 12);
    }
}
