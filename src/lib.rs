//! pipework: software-defined networking for Linux containers.
//!
//! argv --cli--> Invocation --guest--> Guest --facts--> plan --> apply --> report
//!
//! This file only parses and dispatches; [`report`] prints.

mod announce;
pub mod apply;
mod attach;
mod batch;
mod blocking;
pub mod cli;
mod cni;
pub mod dhcp;
mod docker;
mod facts;
pub mod guest;
mod intent;
mod interrupt;
mod keeper;
mod lifecycle;
pub mod model;
pub mod netlink;
mod netns;
mod ovs;
mod passthrough;
pub mod plan;
mod process;
mod programs;
mod record;
mod render;
pub mod report;
mod run;
mod wait;
mod watch;

use std::process::ExitCode;

use cli::{CliError, Invocation};
pub use report::Outcome;

/// The `--batch` line parser (line number, attachment or why not), for the fuzz
/// target in `fuzz/`; not an API.
#[doc(hidden)]
pub use batch::parse_lines as parse_batch_lines;

/// The declarations `pipework watch` reads from a container's labels and environment
/// (`NAME=VALUE` lines), for the fuzz target in `fuzz/`; not an API.
#[doc(hidden)]
pub use watch::declare::declarations_of_text as parse_watch_declarations;

/// Run with the arguments after the program name; the process's exit code.
pub fn main<I: IntoIterator<Item = String>>(argv: I) -> ExitCode {
    let argv: Vec<String> = argv.into_iter().collect();
    // The detached `dhcp4-f` keeper: a hidden subcommand, never typed by a user.
    if argv.first().map(String::as_str) == Some(dhcp::keep::SUBCOMMAND) {
        return keeper::main(&argv[1..]);
    }
    // An external DHCP client, waiting until its run has named it (`dhcp::gate`).
    if argv.first().map(String::as_str) == Some(dhcp::gate::SUBCOMMAND) {
        return dhcp::gate::main(&argv[1..]);
    }
    // Called by a container runtime as its CNI plugin (see `crate::cni`); after the
    // keeper, which a CNI ADD starts with the runtime's environment.
    if let Some(code) = cni::from_env() {
        return code;
    }
    // `completions SHELL` and the man page: documentation, not an attachment.
    if let Some(code) = cli::docs::early(&argv) {
        return code;
    }
    let invocation = match cli::parse_on_host(argv) {
        Ok(i) => i,
        Err(CliError::Syntax) => {
            // On stdout, as the original prints it, then our one line; exit 1
            // whatever becomes of it.
            let syntax = cli::SYNTAX.trim_end_matches('\n');
            let _ = report::print_lines(&[syntax.to_string(), cli::SYNTAX_HINT.to_string()]);
            return ExitCode::from(1);
        }
        Err(CliError::Clap(e)) => {
            let _ = e.print();
            return ExitCode::from(if e.exit_code() == 0 { 0 } else { 1 });
        }
        Err(CliError::Invalid(e)) => return report::finish(Outcome::failed(e)),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            let e = anyhow::Error::new(e).context("cannot start the runtime");
            return report::finish(Outcome::failed(e));
        }
    };
    let outcome = match invocation {
        Invocation::Attach(a) => runtime.block_on(run::attach(&a.req, &a.opts)).said_first(a.warnings),
        Invocation::Passthrough(p) => passthrough::run(&p),
        Invocation::Wait { container_if, timeout } => runtime.block_on(wait::run(&container_if, timeout)),
        Invocation::Batch(b) => runtime.block_on(batch::run(&b)),
        Invocation::Del(d, o) => render::removed(&o, runtime.block_on(lifecycle::del::del(&d, &o))),
        Invocation::Ls(l, o) => render::listing(&o, runtime.block_on(lifecycle::ls::ls(&l))),
        Invocation::Check(c, o) => render::check_report(&o, runtime.block_on(lifecycle::check::check(&c))),
        Invocation::Gc(o) => render::collected(&o, runtime.block_on(lifecycle::gc::gc(&o))),
        Invocation::Watch(w) => runtime.block_on(watch::run(&w)),
    };
    // An interrupted built-in DHCP exchange may still sit on the blocking pool until
    // its own timeout: nothing waits for it.
    runtime.shutdown_background();
    report::finish(outcome)
}
