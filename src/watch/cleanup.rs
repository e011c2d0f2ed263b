//! A container died: what its attachments left is removed by `gc` (the verb
//! `crate::lifecycle::gc::gc`, in-process), which removes only what it can prove is gone, by
//! asking the kernel. Its namespace may outlive the container for a moment (a
//! DHCP keeper still ending, the kernel deleting a veth, Docker's own bind mount
//! of it), so the watcher looks again, at growing intervals, until nothing of that
//! container's former lives is left or it gives up and says what is.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;
use tokio::sync::Mutex;

use super::log::{Line, Log, Who};
use super::{daemon, Shared};
use crate::lifecycle::gc::{self, Collected};
use crate::model::RunOpts;
use crate::plan::alias::{Alias, GuestRef};
use crate::report::{Failed, Said, Verb};
use crate::{interrupt, netns, record};

/// How long a dead container's leftovers are waited for.
const GIVE_UP: Duration = Duration::from_secs(20);

/// One `gc` at a time; one that started after a death covers it.
#[derive(Default)]
pub struct GcLane {
    last_start: Mutex<Option<Instant>>,
}

impl GcLane {
    /// Run `gc` unless one that started at or after `since` has run already.
    pub async fn sweep(&self, since: Instant, log: &Log) {
        let mut last = self.last_start.lock().await;
        if last.is_some_and(|t| t >= since) {
            return;
        }
        *last = Some(Instant::now());
        let collected = gc::gc(&RunOpts::default()).await;
        if let Some(line) = gc_line(collected) {
            log.write(line);
        }
    }
}

/// A line when gc removed something or failed; nothing when it found nothing.
fn gc_line(verb: Verb<Collected>) -> Option<Line<'static>> {
    let Said { value, notes, .. } = match verb {
        Ok(said) => said,
        Err(Failed { error, rollback_errors, .. }) => {
            let e = format!("{error:#}");
            let fields = json!({ "error": e, "rollback_errors": rollback_errors });
            return Some(Line::new(None, "gc", false, format!("gc: {e}")).with(fields));
        }
    };
    let removed: Vec<String> = value
        .removed
        .iter()
        .map(|g| format!("{} {} ({})", g.kind.words(), g.name, short_ids(&g.reason)))
        .collect();
    if removed.is_empty() && notes.is_empty() {
        return None;
    }
    let mut message =
        format!("gc removed {}", if removed.is_empty() { "nothing".into() } else { removed.join(", ") });
    for n in &notes {
        message = format!("{message}; {n}");
    }
    Some(Line::new(None, "gc", true, message).with(json!({ "removed": value.removed, "warnings": notes })))
}

/// `docker:` and a full id as `docker ps` shows ids (12 digits), for a line a person
/// reads (the JSON has them whole).
fn short_ids(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("docker:") {
        let (before, from) = rest.split_at(at + "docker:".len());
        out.push_str(before);
        let hex = from.bytes().take_while(u8::is_ascii_hexdigit).count();
        let keep = if hex == 64 { 12 } else { hex };
        out.push_str(&from[..keep]);
        rest = &from[hex..];
    }
    out.push_str(rest);
    out
}

/// What the container's former lives left: record files and marked host links whose
/// namespace is not the one it runs in now (none if it does not run).
#[derive(Debug, Default, PartialEq)]
struct Left {
    /// Record paths and link names, to see whether anything went.
    keys: BTreeSet<String>,
    /// `eth1 on br1 (host end veth1pl42)`, for the log.
    what: Vec<String>,
    /// The Open vSwitch ports the records name: the database keeps a port whose
    /// veth went with its namespace until gc takes it, after the record.
    ovs_ports: BTreeSet<String>,
}

pub async fn after_death(ctx: &Shared, id: &str, name: &str, died: Instant) {
    let who = Who { name, id: id.get(..12).unwrap_or(id) };
    let say = |ok: bool, message: String, fields: serde_json::Value| {
        ctx.log.write(Line::new(Some(who), "cleanup", ok, message).with(fields))
    };
    let first = match look(ctx, id, &BTreeSet::new()).await {
        Looked::Left(l) if l.keys.is_empty() => return,
        Looked::Left(l) => l,
        Looked::Unasked(e) => return unasked(ctx, id, died, e, say).await,
        Looked::Failed(e) => return say(false, format!("{e:#}"), json!({})),
    };
    let mut removed = first.what.clone();
    removed.extend(first.ovs_ports.iter().map(|p| format!("Open vSwitch port {p}")));
    let (mut since, mut pause) = (died, Duration::from_millis(100));
    loop {
        ctx.gc.sweep(since, &ctx.log).await;
        let left = match look(ctx, id, &first.ovs_ports).await {
            Looked::Left(l) => l,
            Looked::Unasked(e) | Looked::Failed(e) => return say(false, format!("{e:#}"), json!({})),
        };
        let fields = json!({ "removed": removed, "left": left.what });
        if left.keys.is_empty() {
            return say(true, format!("died: removed {}", removed.join(", ")), fields);
        }
        if died.elapsed() > GIVE_UP || interrupt::received().is_some() {
            let message =
                format!("died, but after {:?} still left: {}", died.elapsed(), left.what.join(", "));
            return say(false, message, fields);
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = interrupt::arrived() => {}
        }
        (since, pause) = (Instant::now(), (pause * 2).min(Duration::from_secs(2)));
    }
}

enum Looked {
    Left(Left),
    /// Docker cannot say whether (and where) the container runs now.
    Unasked(anyhow::Error),
    Failed(anyhow::Error),
}

/// What the container's former lives left; `ports`, Open vSwitch ports they had.
async fn look(ctx: &Shared, id: &str, ports: &BTreeSet<String>) -> Looked {
    // A daemon that stopped (its containers die with it) cannot say whether the
    // container runs again.
    let current = match current_namespace(ctx, id).await {
        Ok(c) => c,
        Err(e) => return Looked::Unasked(e),
    };
    let mut left = match leftovers(ctx, id, current).await {
        Ok(l) => l,
        Err(e) => return Looked::Failed(e),
    };
    if let Err(e) = ovs_left(ports, &mut left).await {
        return Looked::Failed(e);
    }
    Looked::Left(left)
}

/// Which of `ports` the Open vSwitch database still has.
async fn ovs_left(ports: &BTreeSet<String>, left: &mut Left) -> Result<()> {
    if ports.is_empty() || !crate::ovs::database_running() {
        return Ok(());
    }
    for iface in crate::ovs::marked_interfaces().await? {
        if ports.contains(&iface.name) && left.keys.insert(format!("ovs {}", iface.name)) {
            left.what.push(format!("Open vSwitch port {}", iface.name));
        }
    }
    Ok(())
}

/// Docker cannot be asked: gc, which asks the kernel only, takes what is surely gone;
/// the reconcile after reconnecting catches up. A line if the container had attachments.
async fn unasked(
    ctx: &Shared,
    id: &str,
    died: Instant,
    e: anyhow::Error,
    say: impl Fn(bool, String, serde_json::Value),
) {
    let Ok(left) = leftovers(ctx, id, None).await else { return };
    if left.keys.is_empty() {
        return;
    }
    ctx.gc.sweep(died, &ctx.log).await;
    let message = format!(
        "died while Docker cannot be asked ({e:#}): gc ran; the reconcile after reconnecting catches up"
    );
    say(true, message, json!({ "attachments": left.what }));
}

/// `current`: the namespace the container runs in now (its attachments there are no
/// leftovers).
async fn leftovers(ctx: &Shared, id: &str, current: Option<u64>) -> Result<Left> {
    let guest = GuestRef::Docker(id.to_string());
    let mut left = Left::default();
    let mut ends = BTreeSet::new();
    for (path, rec) in record::all()? {
        let Ok(r) = rec else { continue };
        if r.guest != guest.to_string() || Some(r.ns) == current {
            continue;
        }
        let end = r.host_end.as_ref().map(|e| format!(" (host end {e})")).unwrap_or_default();
        left.what.push(format!("{} on {}{end}", r.container_if, r.host_if));
        if r.kind == "ovs" {
            left.ovs_ports.extend(r.host_end.clone());
        }
        ends.extend(r.host_end);
        left.keys.insert(path.display().to_string());
    }
    for link in ctx.host.links().await? {
        let Some(Ok(alias)) = link.alias.as_deref().and_then(Alias::parse) else { continue };
        if alias.guest != guest || Some(alias.ns) == current {
            continue;
        }
        if !ends.contains(&link.name) {
            left.what.push(format!("{} on {} (host end {})", alias.container_if, alias.host_if, link.name));
        }
        left.keys.insert(format!("link {}", link.name));
    }
    Ok(left)
}

/// The network namespace the container runs in now, if it runs.
async fn current_namespace(ctx: &Shared, id: &str) -> Result<Option<u64>> {
    let Some(c) = daemon::inspect(&ctx.socket, id).await? else { return Ok(None) };
    if c.pid == 0 {
        return Ok(None);
    }
    Ok(netns::of_pid(c.pid).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::gc::{Garbage, GarbageKind};

    #[test]
    fn gc_says_what_it_removed_and_nothing_when_nothing() {
        let collected = |removed| Ok(Said::new(Collected { dry_run: false, removed }, vec![]));
        assert!(gc_line(collected(vec![])).is_none());
        let record = Garbage {
            kind: GarbageKind::Record,
            name: "/run/x.json".into(),
            reason: "guest docker:ab is gone".into(),
        };
        let line = gc_line(collected(vec![record])).unwrap();
        assert!(line.ok);
        assert_eq!(line.message, "gc removed record /run/x.json (guest docker:ab is gone)");
        let long = format!("guest docker:{} is gone", "ab".repeat(32));
        assert_eq!(short_ids(&long), "guest docker:abababababab is gone");
        assert_eq!(short_ids("docker:abc, docker:"), "docker:abc, docker:");
        let line = gc_line(Err(anyhow::anyhow!("cannot read /proc").into())).unwrap();
        assert!(!line.ok);
        assert_eq!(line.message, "gc: cannot read /proc");
    }
}
