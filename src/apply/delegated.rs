//! The addresses and routes a CNI IPAM plugin gives (`Step::Delegated`). The plugin
//! runs while the links are made; its answer is awaited here, once CONTAINER_IF is
//! up, and applied by the same steps as static addresses, each undo in the journal.

use anyhow::{anyhow, Context as _, Result};

use super::{Context, Journal};
use crate::model::Family;
use crate::model::IpSpec;
use crate::plan::shim::{self, PendingShim};
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

/// `dev` configured as the plugin says, and with `shim`, the host shim made (when
/// missing) and the host routes to the guest's new addresses through it.
pub async fn run(
    ctx: &Context<'_>,
    journal: &mut Journal,
    (dev, plugin): (&str, &str),
    shim: Option<&PendingShim>,
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
    if let Some(shim) = shim {
        let steps = shim_steps(ctx, shim, &specs).await?;
        // Named in the intent before it is made, as a planned shim is.
        ctx.steps_derived(&steps)?;
        super::run_derived(&steps, ctx, journal).await?;
        delegation.applied.extend(steps);
    }
    Ok(())
}

/// The shim's steps for the guest's addresses `specs`, with the host's routes to
/// them as they are now (read under the shim lock, which the attach holds).
async fn shim_steps(ctx: &Context<'_>, shim: &PendingShim, specs: &[IpSpec]) -> Result<Vec<Step>> {
    let guest: Vec<_> = specs
        .iter()
        .filter_map(|s| match s {
            IpSpec::Static { addr, .. } => *addr,
            _ => None,
        })
        .collect();
    let wanted: Vec<_> = guest.iter().map(shim::host_route_of).collect();
    let mut routes = Vec::new();
    for family in [Family::V4, Family::V6] {
        let read =
            ctx.host.routes(family).await.context("cannot read the host's routes for the host shim")?;
        routes.extend(read.into_iter().filter(|r| wanted.contains(&r.dst)));
    }
    shim::planned(shim, &guest, &routes).context("cannot route the host to the guest through a host shim")
}
