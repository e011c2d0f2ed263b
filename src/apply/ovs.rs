//! Open vSwitch steps, through `crate::ovs` (ovs-vsctl), each with its undo.

use anyhow::{bail, Result};

use super::{Context, Journal, Undo};
use crate::ovs;
use crate::plan::OvsPort;

/// `add-br`, then insist on a network device: on a kernel without the OVS datapath,
/// `ovs-vsctl add-br` "succeeds" while nothing appears (the original carries on).
pub async fn create_bridge(
    ctx: &Context<'_>,
    j: &mut Journal,
    name: &str,
    datapath: Option<&str>,
) -> Result<()> {
    let _changing = ovs::exclusive().await;
    // Another line of the batch may have made it since the facts were read.
    if !ovs::bridge_exists(name).await? {
        ovs::add_bridge(name, datapath).await?;
        j.push(Undo::OvsDeleteBridgeIfUnused { name: name.to_string() });
    }
    if ctx.host.link_by_name(name).await?.is_none() {
        bail!(
            "Open vSwitch accepted bridge {name} but no network device appeared: this kernel has no \
             OVS datapath (for the userspace one: PIPEWORK_OVS_DATAPATH=netdev)"
        );
    }
    Ok(())
}

pub async fn add_port(j: &mut Journal, p: &OvsPort) -> Result<()> {
    let OvsPort { bridge, port, tag, external_ids, existing } = p;
    let _changing = ovs::exclusive().await;
    ovs::add_port(bridge, port, *tag, external_ids).await?;
    if !existing {
        j.push(Undo::OvsDeletePort { bridge: bridge.to_string(), port: port.to_string() });
    }
    Ok(())
}
