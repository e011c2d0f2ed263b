//! The Docker Engine API, the one client of it: where the daemon is ([`endpoint`]),
//! and GET requests over its unix socket ([`client`]), answered whole or streamed.
//! Guest resolution asks it for a container's pid, `pipework watch` for its events,
//! containers and images.
//!
//! Hand-written over `httparse` rather than hyper: pipework sends only GETs, one per
//! connection; guest resolution is synchronous code (on the blocking pool) in the
//! attach path, where starting an HTTP stack's runtime and connection machinery for
//! one ~2.5 ms question would cost more than the question; and hyper with its
//! unix-socket glue is a dozen crates the lock file does not have.

mod body;
pub mod client;
pub mod endpoint;
