//! `pipework watch`: a long-running process that follows Docker's event stream and,
//! for every container that declares attachments (see [`declare`]), applies them
//! when it starts and removes what they left when it dies. At start, and after every
//! reconnection, it reconciles: the running containers are served (what is in place
//! stays as it is) and `gc` catches up with the deaths it did not see.
//!
//! One loop on the runtime's one thread: the event stream, the connection's retries
//! and the jobs in flight (at most [`CONCURRENCY`], as `--batch` lines) are polled
//! together, so a burst of starts is attached concurrently. A container's own starts
//! are served one after the other. Nothing is held while waiting for events: a job
//! drops its guest's namespace and locks when it ends. SIGTERM (or SIGINT, SIGHUP)
//! stops it: attachments made stay; one being made is undone, and made again by
//! the next reconcile.

mod cleanup;
mod daemon;
pub mod declare;
pub mod events;
mod image;
mod log;
mod serve;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use futures::future::LocalBoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::Future;
use serde_json::json;
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::Watch;
use crate::docker::endpoint;
use crate::interrupt::{self, Interrupted};
use crate::netlink::Netlink;
use crate::report::Outcome;
use cleanup::GcLane;
use events::{Action, Event};
use log::{Line, Log};
use serve::Started;

/// Jobs in flight at once, as `--batch` runs its lines (see `crate::batch`).
const CONCURRENCY: usize = 32;
/// Reconnection: the first retry soon (a daemon restarting), then slower.
const FIRST_RETRY: Duration = Duration::from_millis(250);
const LAST_RETRY: Duration = Duration::from_secs(8);

/// What every job shares.
pub struct Shared {
    socket: PathBuf,
    /// The namespace the watcher runs in: where the host ends go.
    host: Netlink,
    key: Option<String>,
    /// Apply what containers only inherited from their images, too (see [`image`]).
    trust_images: bool,
    images: image::Images,
    log: Log,
    gc: GcLane,
    anchors: serve::Anchors,
}

pub async fn run(req: &Watch) -> Outcome {
    let Some(socket) = endpoint::api_socket() else {
        let e = anyhow!(
            "pipework watch talks to the Docker Engine API socket: DOCKER_HOST must be unset or unix://PATH"
        );
        return Outcome::failed(e);
    };
    let host = match Netlink::current() {
        Ok(h) => h,
        Err(e) => return Outcome::failed(e),
    };
    if let Err(e) = interrupt::install() {
        return Outcome::failed(e.context("cannot catch signals"));
    }
    let (key, log) = (req.key.clone(), Log { json: req.json });
    let ctx = Shared {
        socket,
        host,
        key,
        trust_images: req.trust_images,
        images: Default::default(),
        log,
        gc: GcLane::default(),
        anchors: Default::default(),
    };
    let mut jobs = Jobs::default();
    let signal = match follow(&ctx, &mut jobs).await {
        Ok(signal) => signal,
        Err(e) => return Outcome::failed(e),
    };
    // What runs ends (an attach in progress undoes itself); nothing new starts.
    jobs.queue.clear();
    jobs.cleanups.clear();
    while jobs.in_flight.next().await.is_some() {}
    let message = format!("stopped by {}: the attachments made stay", signal.0.as_str());
    ctx.log.write(Line::new(None, "stop", true, message));
    Outcome::Done(Vec::new())
}

/// The events, the connection's retries and the jobs, polled together until a signal.
async fn follow<'a>(ctx: &'a Shared, jobs: &mut Jobs<'a>) -> anyhow::Result<Interrupted> {
    let mut child_ended = signal(SignalKind::child()).context("cannot catch SIGCHLD")?;
    let mut link = Link { conn: Conn::connect(&ctx.socket), retry: FIRST_RETRY };
    loop {
        tokio::select! {
            signal = interrupt::arrived() => return Ok(signal),
            _ = child_ended.recv() => {}
            Some(done) = jobs.in_flight.next(), if !jobs.in_flight.is_empty() => jobs.finished(done),
            step = link.conn.step() => {
                if let Some(work) = link.on(step, ctx) {
                    jobs.push(work);
                }
            }
        }
        jobs.fill(ctx);
        if jobs.in_flight.is_empty() {
            reap_detached();
        }
    }
}

/// The connection, and the pause before the next try should it go down.
struct Link<'a> {
    conn: Conn<'a>,
    retry: Duration,
}

impl<'a> Link<'a> {
    /// The next state after `step`, said in the log; the work it brings.
    fn on(&mut self, step: Step, ctx: &'a Shared) -> Option<Work> {
        match step {
            Step::Up(stream) => {
                self.retry = FIRST_RETRY;
                let message = format!("following Docker's events at {}", ctx.socket.display());
                ctx.log.write(Line::new(None, "connect", true, message));
                self.conn = Conn::Up(stream);
                Some(Work::Reconcile)
            }
            Step::Event(e) => Some(Work::of(e)),
            Step::Down(why) => {
                let message = format!("{why}; again in {:?}", self.retry);
                ctx.log.write(Line::new(None, "disconnect", false, message));
                self.conn = Conn::Waiting(Box::pin(tokio::time::sleep(self.retry)));
                self.retry = (self.retry * 2).min(LAST_RETRY);
                None
            }
            Step::Retry => {
                self.conn = Conn::connect(&ctx.socket);
                None
            }
        }
    }
}

/// Reap the children that ended and that nobody waits for: the `dhcp4-f` keepers and
/// `-f` DHCP clients an attach started, detached, end with their containers, and a
/// process that lives for months must not collect their zombies. Only while no job
/// runs: every other child is a job's, waited for by it.
fn reap_detached() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    while let Ok(status) = waitpid(nix::unistd::Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// The connection to the event stream.
enum Conn<'a> {
    Connecting(LocalBoxFuture<'a, anyhow::Result<events::Stream>>),
    Up(events::Stream),
    Waiting(Pin<Box<tokio::time::Sleep>>),
}

enum Step {
    Up(events::Stream),
    Event(Event),
    Down(String),
    Retry,
}

impl<'a> Conn<'a> {
    fn connect(socket: &'a Path) -> Conn<'a> {
        Conn::Connecting(Box::pin(events::subscribe(socket)))
    }

    /// What happens next. Cancel-safe: the connection attempt and the timer live in
    /// `self`, the stream keeps what it read.
    async fn step(&mut self) -> Step {
        match self {
            Conn::Connecting(f) => match f.as_mut().await {
                Ok(stream) => Step::Up(stream),
                Err(e) => Step::Down(format!("cannot follow Docker's events: {e:#}")),
            },
            Conn::Up(stream) => match stream.next().await {
                Ok(Some(e)) => Step::Event(e),
                Ok(None) => Step::Down("Docker ended the event stream (the daemon stopped?)".into()),
                Err(e) => Step::Down(format!("{e:#}")),
            },
            Conn::Waiting(sleep) => {
                sleep.as_mut().await;
                Step::Retry
            }
        }
    }
}

/// Something to do.
#[derive(Debug)]
enum Work {
    Serve(Started),
    Cleanup {
        id: String,
        name: String,
        died: Instant,
    },
    /// List the running containers and serve them; gc.
    Reconcile,
}

impl Work {
    fn of(e: Event) -> Work {
        match e.action {
            Action::Start => {
                let event_time = e.time_nanos.map(|n| n as f64 / 1e9);
                Work::Serve(Started { id: e.id, name: e.name, event_time })
            }
            Action::Die => Work::Cleanup { id: e.id, name: e.name, died: Instant::now() },
        }
    }
}

/// What a job gives back.
enum Done {
    Served(String),
    Cleaned,
    Other,
    Listed(Vec<Started>),
}

/// The jobs: waiting, in flight, and the containers being served.
#[derive(Default)]
struct Jobs<'a> {
    in_flight: FuturesUnordered<LocalBoxFuture<'a, Done>>,
    queue: VecDeque<Work>,
    /// Containers with a start queued or in flight.
    busy: HashSet<String>,
    /// Those of them whose start is queued, not started yet.
    waiting: HashSet<String>,
    /// Deaths to clean up after, not started yet; and how many are in flight.
    cleanups: Vec<Work>,
    cleaning: usize,
    /// A start that came while the container's previous one was being served.
    again: HashMap<String, Started>,
}

impl<'a> Jobs<'a> {
    fn push(&mut self, work: Work) {
        if let Work::Cleanup { .. } = work {
            self.cleanups.push(work);
            return;
        }
        if let Work::Serve(s) = &work {
            // One not started yet reads the container's state when it starts: enough.
            if self.waiting.contains(&s.id) {
                return;
            }
            if !self.busy.insert(s.id.clone()) {
                self.again.insert(s.id.clone(), s.clone());
                return;
            }
            self.waiting.insert(s.id.clone());
        }
        self.queue.push_back(work);
    }

    fn finished(&mut self, done: Done) {
        match done {
            Done::Served(id) => {
                self.busy.remove(&id);
                if let Some(s) = self.again.remove(&id) {
                    self.push(Work::Serve(s));
                }
            }
            Done::Listed(running) => running.into_iter().for_each(|s| self.push(Work::Serve(s))),
            Done::Cleaned => self.cleaning -= 1,
            Done::Other => {}
        }
    }

    /// Start what may start: every cleanup at once (they mostly wait, for a namespace
    /// to go, and their gc runs one at a time anyway), the rest up to [`CONCURRENCY`]
    /// (a burst of deaths must not hold up the starts after it).
    fn fill(&mut self, ctx: &'a Shared) {
        for work in self.cleanups.drain(..) {
            self.cleaning += 1;
            self.in_flight.push(job(ctx, work));
        }
        while self.in_flight.len() - self.cleaning < CONCURRENCY {
            let Some(work) = self.next_work() else { break };
            self.in_flight.push(job(ctx, work));
        }
    }

    /// The next work to start.
    fn next_work(&mut self) -> Option<Work> {
        let work = self.queue.pop_front()?;
        if let Work::Serve(s) = &work {
            self.waiting.remove(&s.id);
        }
        Some(work)
    }
}

fn job(ctx: &Shared, work: Work) -> LocalBoxFuture<'_, Done> {
    let f: Pin<Box<dyn Future<Output = Done>>> = match work {
        Work::Serve(s) => Box::pin(async move {
            serve::serve(ctx, &s).await;
            Done::Served(s.id)
        }),
        Work::Cleanup { id, name, died } => Box::pin(async move {
            cleanup::after_death(ctx, &id, &name, died).await;
            Done::Cleaned
        }),
        Work::Reconcile => Box::pin(reconcile(ctx)),
    };
    f
}

async fn reconcile(ctx: &Shared) -> Done {
    let listed = daemon::running(&ctx.socket).await;
    ctx.gc.sweep(Instant::now(), &ctx.log).await;
    match listed {
        Ok(running) => {
            let n = running.len();
            let message = format!("reconciling: {n} container{} running", if n == 1 { "" } else { "s" });
            ctx.log
                .write(Line::new(None, "reconcile", true, message).with(json!({ "running": running.len() })));
            Done::Listed(
                running.into_iter().map(|(id, name)| Started { id, name, event_time: None }).collect(),
            )
        }
        Err(e) => {
            ctx.log.write(Line::new(None, "reconcile", false, format!("cannot list the containers: {e:#}")));
            Done::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(id: &str, t: f64) -> Work {
        Work::Serve(Started { id: id.into(), name: id.into(), event_time: Some(t) })
    }

    fn queued(jobs: &Jobs<'_>) -> Vec<String> {
        jobs.queue
            .iter()
            .map(|w| match w {
                Work::Serve(s) => format!("{}@{}", s.id, s.event_time.unwrap_or_default()),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_containers_starts_are_served_one_after_the_other_the_last_one_kept() {
        let mut jobs = Jobs::default();
        jobs.push(start("a", 1.0));
        jobs.push(start("b", 1.0));
        // `a` restarts while its first start waits: that serving reads the new state.
        jobs.push(start("a", 2.0));
        assert_eq!(queued(&jobs), ["a@1", "b@1"]);
        assert!(jobs.again.is_empty());
        // Once it runs, `a` restarts twice more: one more serving, the latest.
        assert!(jobs.next_work().is_some() && jobs.next_work().is_some(), "both start");
        jobs.push(start("a", 3.0));
        jobs.push(start("a", 4.0));
        assert!(jobs.queue.is_empty());
        jobs.finished(Done::Served("b".into()));
        assert!(jobs.queue.is_empty());
        jobs.finished(Done::Served("a".into()));
        assert_eq!(queued(&jobs), ["a@4"]);
        assert!(jobs.next_work().is_some());
        jobs.finished(Done::Served("a".into()));
        assert!(jobs.queue.is_empty() && jobs.busy.is_empty() && jobs.again.is_empty());
    }

    #[test]
    fn deaths_wait_in_no_queue_behind_starts() {
        let mut jobs = Jobs::default();
        for i in 0..40 {
            jobs.push(start(&format!("c{i}"), 1.0));
        }
        jobs.push(Work::Cleanup { id: "d".into(), name: "d".into(), died: Instant::now() });
        assert_eq!((jobs.queue.len(), jobs.cleanups.len()), (40, 1), "started by fill at once");
    }

    #[test]
    fn a_reconcile_serves_each_running_container_once() {
        let mut jobs = Jobs::default();
        jobs.push(start("a", 1.0));
        let running = ["a", "b"].map(|id| Started { id: id.into(), name: id.into(), event_time: None });
        jobs.finished(Done::Listed(running.to_vec()));
        assert_eq!(queued(&jobs), ["a@1", "b@0"], "a's serving, still queued, reads its state then");
        assert!(jobs.again.is_empty());
    }
}
