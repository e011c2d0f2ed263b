//! Ctrl-C, `kill`, a closed terminal: an attachment that is interrupted undoes what it
//! did, as any other failure does, instead of dying half-way (a veth on the bridge,
//! a DHCP client still running). Installed for attachments and batches only: `--wait`
//! and `route|rule|tc` have nothing to undo and keep the default dispositions.

use std::fmt;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::Result;
use nix::sys::signal::Signal;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Notify;

/// The first signal received, as a number; 0 while none has come.
static RECEIVED: AtomicI32 = AtomicI32::new(0);
static ARRIVED: Notify = Notify::const_new();

/// The error an interrupted step fails with; its exit status is 128 + the signal's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted(pub Signal);

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "interrupted by {}", self.0.as_str())
    }
}

impl std::error::Error for Interrupted {}

impl Interrupted {
    /// The status a shell reports for a process that this signal ended.
    pub fn exit_code(self) -> u8 {
        128 + self.0 as u8
    }
}

/// Catch SIGINT, SIGTERM and SIGHUP from now on (inside the runtime).
pub fn install() -> Result<()> {
    let kinds = [
        (SignalKind::interrupt(), Signal::SIGINT),
        (SignalKind::terminate(), Signal::SIGTERM),
        (SignalKind::hangup(), Signal::SIGHUP),
    ];
    for (kind, sig) in kinds {
        let mut stream = signal(kind)?;
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                // The first one counts; the undo it starts goes on through later ones.
                let _ = RECEIVED.compare_exchange(0, sig as i32, Ordering::SeqCst, Ordering::SeqCst);
                ARRIVED.notify_waiters();
            }
        });
    }
    Ok(())
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
