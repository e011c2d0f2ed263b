//! The command line's and `--batch`'s way to run an attach: signals caught, the
//! host's netlink socket opened, the verb's value rendered (`crate::render`).

use crate::attach::{self, Given};
use crate::model::{Attach, RunOpts};
use crate::netlink::Netlink;
use crate::report::Outcome;
use crate::{interrupt, render};

/// One attachment from the command line, with SIGINT, SIGTERM and SIGHUP turned into
/// a failure that undoes it (see `crate::interrupt`).
pub async fn attach(req: &Attach, opts: &RunOpts) -> Outcome {
    if let Err(e) = interrupt::install() {
        return Outcome::failed(e.context("cannot catch signals"));
    }
    let outcome = match Netlink::current() {
        Ok(host) => attach_on(req, opts, &host).await,
        Err(e) => Outcome::failed(e),
    };
    let outcome = match (outcome, interrupt::received()) {
        // Whatever failed during an interruption failed because of it (a client that
        // the terminal's Ctrl-C reached as well, say).
        (failed @ Outcome::Failed { .. }, Some(signal)) => Outcome::Interrupted(signal, Box::new(failed)),
        (outcome, _) => outcome,
    };
    if opts.json {
        crate::report::json(outcome)
    } else {
        outcome
    }
}

/// [`attach`] with the host's netlink handle given: a batch shares one among its lines.
pub async fn attach_on(req: &Attach, opts: &RunOpts, host: &Netlink) -> Outcome {
    render::attachment(opts, attach::attach(req, opts, host, Given::default()).await)
}
