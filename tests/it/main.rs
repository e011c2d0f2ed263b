//! Integration tests: each builds its own throw-away namespaces (see `util`) and
//! runs the real binary inside them. Root is needed, as for pipework itself.

mod util;

mod bridge;
mod cli;
mod docker;
mod physical;
mod rerun;
mod rollback;
