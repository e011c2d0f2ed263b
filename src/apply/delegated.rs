//! The addresses and routes a CNI IPAM plugin gives (`Step::Delegated`). The plugin
//! runs while the links are made; its answer is awaited here, once CONTAINER_IF is
//! up, and applied by the same steps as static addresses, each undo in the journal.

use anyhow::{anyhow, Result};

use super::{Context, Journal};
use crate::model::Family;
use crate::model::IpSpec;
use crate::plan::{addressing, Step};

/// What delivers the addresses: one answer, the IPSPEC elements the plugin's
/// result amounts to, or why there are none (its error).
pub type Delegated = tokio::sync::oneshot::Receiver<Result<Vec<IpSpec>>>;

/// One apply's IPAM answer to come, and the steps that applied it once it came.
#[derive(Default)]
pub struct Delegation {
    pub answer: Option<Delegated>,
    pub applied: Vec<Step>,
}

pub async fn run(
    ctx: &Context<'_>,
    journal: &mut Journal,
    dev: &str,
    plugin: &str,
    delegation: &mut Delegation,
) -> Result<()> {
    let answer = delegation.answer.take().ok_or_else(|| anyhow!("no IPAM plugin was started"))?;
    // Read while the plugin runs: the guest's routes, which the default-route steps
    // look at (nothing but this run changes a namespace the runtime has just made).
    let v4 = ctx.guest.routes(Family::V4).await;
    let v6 = ctx.guest.routes(Family::V6).await;
    let specs = tokio::select! {
        got = answer => got.map_err(|_| anyhow!("the IPAM plugin {plugin} gave no answer"))??,
        signal = crate::interrupt::arrived() => return Err(signal.into()),
    };
    let mut routes = Vec::new();
    for (family, read) in [(Family::V4, v4), (Family::V6, v6)] {
        let gateway =
            |s: &IpSpec| matches!(s, IpSpec::Static { gateway: Some(g), .. } if Family::of(g) == family);
        if specs.iter().any(gateway) {
            routes.extend(read?);
        }
    }
    let steps = addressing::delegated_steps(dev, &specs, &routes);
    super::run_derived(&steps, ctx, journal).await?;
    // For what follows the apply: the announcement, the record, --verbose.
    delegation.applied.extend(steps);
    Ok(())
}
