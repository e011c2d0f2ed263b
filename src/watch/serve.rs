//! A container that started, or runs at a reconcile: its declarations (those it did
//! not only inherit from its image, unless images are trusted: see `super::image`)
//! applied in their order, each one all-or-nothing as on the command line (the
//! re-run rule: one already in place is left alone), one log line each. A declaration that fails
//! does not stop the next; a container that is gone (or started anew) before its
//! turn is skipped without a word: its next start is served then.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::declare::{self, Container, Declaration, Declared};
use super::log::{Line, Who};
use super::{daemon, image, Shared};
use crate::attach::{self, Attachment, Given};
use crate::cli::AttachCommand;
use crate::interrupt;
use crate::model::Attach;
use crate::netlink::Netlink;
use crate::netns;
use crate::report::{Failed, Said, Verb};

/// A start to serve.
#[derive(Clone, Debug)]
pub struct Started {
    pub id: String,
    pub name: String,
    /// When Docker saw the start (seconds since the epoch); `None` at a reconcile.
    pub event_time: Option<f64>,
}

pub async fn serve(ctx: &Shared, start: &Started) {
    let c = match daemon::inspect(&ctx.socket, &start.id).await {
        Ok(Some(c)) if c.pid != 0 => c,
        Ok(_) => return,
        Err(e) => {
            let who = Who { name: &start.name, id: short(&start.id) };
            ctx.log.write(Line::new(Some(who), "attach", false, format!("{e:#}")));
            return;
        }
    };
    let who = Who { name: &c.name, id: c.short_id() };
    let declarations = match declare::declarations(&c, ctx.key.as_deref()) {
        Declared::Serve(d) => d,
        Declared::OtherKey => {
            let why = "ignored: it declares attachments, but its pipework_key is not this watcher's";
            ctx.log.write(Line::new(Some(who), "skip", true, why));
            return;
        }
    };
    for d in own(ctx, &c, who, start, declarations).await {
        if interrupt::received().is_some() {
            return;
        }
        let fields = json!({ "declaration": d.source, "event_time": start.event_time });
        let attach = match d.attach {
            Ok(a) => a,
            Err(why) => {
                let line = Line::new(Some(who), "attach", false, format!("{}: {why}", d.source));
                ctx.log.write(line.with(fields));
                continue;
            }
        };
        let outcome = ctx.anchors.attach(&attach, &ctx.host).await;
        let (ok, message, mut more) = describe(&attach.req, outcome);
        if !ok && interrupt::received().is_none() && !still_there(ctx, &c).await {
            return;
        }
        merge(&mut more, fields);
        ctx.log.write(Line::new(Some(who), "attach", ok, format!("{}: {message}", d.source)).with(more));
    }
}

/// The declarations to apply: all when images are trusted, else those the container
/// did not only inherit from its image; one line for each of the others.
async fn own(
    ctx: &Shared,
    c: &Container,
    who: Who<'_>,
    start: &Started,
    all: Vec<Declaration>,
) -> Vec<Declaration> {
    if ctx.trust_images || all.is_empty() {
        return all;
    }
    let image = ctx.images.of(&ctx.socket, c).await;
    let (own, inherited) = image::split(all, image.as_deref());
    let name = if c.image_name.is_empty() { &c.image } else { &c.image_name };
    for d in inherited {
        let mut fields = json!({
            "declaration": d.source, "event_time": start.event_time, "image": name, "image_id": c.image,
        });
        let line = match &image {
            Ok(_) => {
                fields["from_image"] = json!(true);
                let message = format!(
                    "{}: not applied: declared by the image {name}, not by the container (pipework \
                     watch --trust-images applies what images declare; or set it with docker run -l/-e)",
                    d.source
                );
                Line::new(Some(who), "skip", true, message)
            }
            Err(why) => {
                fields["error"] = json!(why);
                let message = format!(
                    "{}: not applied: cannot tell whether the image {name} declares it ({why}); pipework \
                     watch --trust-images applies it",
                    d.source
                );
                Line::new(Some(who), "skip", false, message)
            }
        };
        ctx.log.write(line.with(fields));
    }
    own
}

/// `--batch`'s rule for what may create the same thing (see `crate::batch::run_jobs`):
/// a failed attach undoes what it made, a new bridge say, under the feet of another
/// that found it made. So the attachments of one key (HOSTIF and VLAN) go one at a
/// time until one succeeded; what it made then holds its port for good, and the
/// others of the key go together.
#[derive(Default)]
pub struct Anchors(RefCell<HashMap<String, Rc<Mutex<bool>>>>);

impl Anchors {
    async fn attach(&self, attach: &AttachCommand, host: &Netlink) -> Verb<Attachment> {
        let key = attach.req.switch_key(&HashMap::new());
        let gate = self.0.borrow_mut().entry(key).or_default().clone();
        let mut first = Some(gate.lock().await);
        if first.as_deref() == Some(&true) {
            first = None;
        }
        let mut verb = on_a_thread_of_its_own(attach, host).await;
        if let (Some(anchored), Ok(_)) = (first.as_mut(), &verb) {
            **anchored = true;
        }
        // The parse's warnings come before the run's.
        match &mut verb {
            Ok(Said { notes, .. }) | Err(Failed { notes, .. }) => {
                notes.splice(0..0, attach.warnings.iter().cloned());
            }
        }
        verb
    }
}

/// The attach on a thread of its own, with a runtime and a host socket of its own.
/// Its netlink requests block the thread they run on (a lost answer up to the
/// socket's 10 s), and on the watcher's one thread they stalled every other job and
/// the event stream with it. A thread that cannot be had runs it here, as before.
async fn on_a_thread_of_its_own(attach: &AttachCommand, host: &Netlink) -> Verb<Attachment> {
    let (req, opts) = (attach.req.clone(), attach.opts);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name("pipework-attach".into()).spawn(move || {
        let verb = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime.block_on(async {
                let host = Netlink::current()?;
                attach::attach(&req, &opts, &host, Given::default()).await
            }),
            Err(e) => {
                Err(Failed::from(anyhow::Error::new(e).context("cannot start a runtime for the attach")))
            }
        };
        let _ = tx.send(verb);
    });
    if spawned.is_err() {
        return attach::attach(&attach.req, &attach.opts, host, Given::default()).await;
    }
    match rx.await {
        Ok(verb) => verb,
        Err(_) => Err(Failed::from(anyhow::anyhow!("the thread of the attach died"))),
    }
}

/// The same life of the container still runs: its first process is there (Docker
/// learns of its end a moment after the kernel), and Docker names it still.
async fn still_there(ctx: &Shared, c: &Container) -> bool {
    // A zombie's namespaces are gone with it.
    if netns::of_pid(c.pid).is_err() {
        return false;
    }
    matches!(daemon::inspect(&ctx.socket, &c.id).await, Ok(Some(now)) if now.pid == c.pid)
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}

/// Whether it worked, what to say, and the facts for `--json`.
fn describe(req: &Attach, verb: Verb<Attachment>) -> (bool, String, Value) {
    match verb {
        Ok(Said { value, notes, .. }) => {
            let (message, mut fields) = attached(req, &value);
            let message = notes.iter().fold(message, |m, n| format!("{m}; {n}"));
            fields["warnings"] = json!(notes);
            (true, message, fields)
        }
        Err(Failed { error, rollback_errors, notes }) => {
            let mut message = format!("{error:#}");
            if interrupt::received().is_some() {
                message.push_str(" (undone; applied again when the watcher next starts)");
            }
            for r in rollback_errors.iter().chain(&notes) {
                message = format!("{message}; {r}");
            }
            (false, message, json!({ "error": format!("{error:#}"), "rollback_errors": rollback_errors }))
        }
    }
}

/// `attached eth1 to br1 (10.0.0.2/24; host end veth1pl42)`, or already in place.
fn attached(req: &Attach, attachment: &Attachment) -> (String, Value) {
    let a = match attachment {
        Attachment::Planned(steps) => {
            let steps: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
            let message = format!("would take {} steps (--dry-run)", steps.len());
            return (message, json!({ "changed": false, "steps": steps }));
        }
        Attachment::Done(Some(a)) => a,
        // The watcher asks for the result (`for_watch`): never without one.
        Attachment::Done(None) => return ("attached".into(), json!({ "changed": true })),
    };
    let cif = a.container_if().map_or("?", |i| i.name.as_str());
    let host_end = a.host_end().map(|i| i.name.as_str());
    let addresses: Vec<String> = a.ips.iter().map(|i| i.address.to_string()).collect();
    let mut detail = addresses.clone();
    detail.extend(host_end.iter().map(|e| format!("host end {e}")));
    let detail = if detail.is_empty() { String::new() } else { format!(" ({})", detail.join("; ")) };
    let message = match a.changed {
        true => format!("attached {cif} to {}{detail}", req.host_if),
        false => format!("{cif} on {} already in place{detail}", req.host_if),
    };
    let fields = json!({
        "changed": a.changed,
        "container_if": cif,
        "host_if": req.host_if.to_string(),
        "host_end": host_end,
        "addresses": addresses,
    });
    (message, fields)
}
