//! Ctrl-C, `kill`, a closed terminal: an attachment that is interrupted undoes what it
//! did, as any other failure does, instead of dying half-way (a veth on the bridge,
//! a DHCP client still running), and then dies of the signal as the caller expects
//! (a shell loop stops on a Ctrl-C'd child). Installed for attachments and batches
//! only: `--wait` and `route|rule|tc` have nothing to undo and keep the default
//! dispositions. A second signal during the undo ends the process at once.

use std::fmt;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::Result;
use nix::libc;
use nix::sys::signal::{raise, signal as set_disposition, SigHandler, Signal};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Notify;

/// The first signal received, as a number; 0 while none has come.
static RECEIVED: AtomicI32 = AtomicI32::new(0);
static ARRIVED: Notify = Notify::const_new();

const CAUGHT: [(Signal, fn() -> SignalKind); 3] = [
    (Signal::SIGINT, SignalKind::interrupt),
    (Signal::SIGTERM, SignalKind::terminate),
    (Signal::SIGHUP, SignalKind::hangup),
];

/// The error an interrupted step fails with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted(pub Signal);

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "interrupted by {}", self.0.as_str())
    }
}

impl std::error::Error for Interrupted {}

impl Interrupted {
    /// The status a shell reports for a process that this signal ended; ours, should
    /// dying of it again not work.
    pub fn exit_code(self) -> u8 {
        128 + self.0 as u8
    }

    /// Die of the signal, now that everything is undone and said.
    pub fn die(self) {
        // SAFETY: setting the default disposition installs no handler code; nothing
        // else in the process relies on the one tokio installed any more.
        unsafe {
            let _ = set_disposition(self.0, SigHandler::SigDfl);
        }
        let _ = raise(self.0);
    }
}

/// Catch SIGINT, SIGTERM and SIGHUP from now on (inside the runtime), except those the
/// caller has set to be ignored (`nohup`, `trap '' TERM`, a background job of a
/// non-interactive shell): those stay ignored, for us and for our children.
pub fn install() -> Result<()> {
    for (sig, kind) in CAUGHT {
        if is_ignored(sig) {
            continue;
        }
        let mut stream = signal(kind())?;
        tokio::spawn(async move {
            if stream.recv().await.is_some() {
                let _ = RECEIVED.compare_exchange(0, sig as i32, Ordering::SeqCst, Ordering::SeqCst);
                ARRIVED.notify_waiters();
                // From now on any of them ends the process at once: a stuck undo
                // (Docker or OVS not answering) can be cut short.
                for (other, _) in CAUGHT {
                    if !is_ignored(other) {
                        // SAFETY: the default disposition runs no code of ours.
                        unsafe {
                            let _ = set_disposition(other, SigHandler::SigDfl);
                        }
                    }
                }
            }
        });
    }
    Ok(())
}

/// Whether `sig`'s disposition is "ignore" (read without changing it).
fn is_ignored(sig: Signal) -> bool {
    // SAFETY: sigaction(2) with a null new action only reads the current one into
    // `old`, a zeroed sigaction that lives across the call.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig as libc::c_int, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// The signal received so far, if any.
pub fn received() -> Option<Interrupted> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        n => Signal::try_from(n).ok().map(Interrupted),
    }
}

/// `Err` once a signal has come: checked between steps.
pub fn check() -> Result<()> {
    match received() {
        Some(i) => Err(i.into()),
        None => Ok(()),
    }
}

/// Resolves when a signal comes (at once if one has): raced against long waits.
pub async fn arrived() -> Interrupted {
    loop {
        let notified = ARRIVED.notified();
        if let Some(i) = received() {
            return i;
        }
        notified.await;
    }
}
