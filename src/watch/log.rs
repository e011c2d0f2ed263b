//! The watcher's log: one line per thing it did or failed to do, on stderr, with the
//! container's name; `--json`: one JSON object per line instead, with the same
//! message and the facts as fields (`time` in seconds since the epoch).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::report;

/// Who a line is about.
#[derive(Clone, Copy, Debug)]
pub struct Who<'a> {
    pub name: &'a str,
    pub id: &'a str,
}

/// One line.
#[derive(Debug)]
pub struct Line<'a> {
    pub who: Option<Who<'a>>,
    /// `attach`, `cleanup`, `gc`, `connect`, `disconnect`, `reconcile`, `skip`, `stop`.
    pub action: &'static str,
    pub ok: bool,
    pub message: String,
    /// More fields for `--json` (an object).
    pub fields: Value,
}

impl<'a> Line<'a> {
    pub fn new(who: Option<Who<'a>>, action: &'static str, ok: bool, message: impl Into<String>) -> Line<'a> {
        // One line, whatever the error said (some say a second line: a hint).
        let message = message.into().replace('\n', "; ");
        Line { who, action, ok, message, fields: Value::Null }
    }

    pub fn with(mut self, fields: Value) -> Line<'a> {
        self.fields = fields;
        self
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Log {
    pub json: bool,
}

impl Log {
    pub fn write(&self, line: Line<'_>) {
        if self.json {
            report::say_as_is(&json_of(&line, now()).to_string());
        } else {
            report::say(&human(&line));
        }
    }
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

/// `watch: web1: label pipework.1: attached ...`; a failure says `failed:`.
fn human(line: &Line<'_>) -> String {
    let who = line.who.map(|w| format!("{}: ", w.name)).unwrap_or_default();
    let failed = if line.ok { "" } else { "failed: " };
    format!("watch: {who}{failed}{}", line.message)
}

fn json_of(line: &Line<'_>, time: f64) -> Value {
    let mut doc = Map::new();
    doc.insert("time".into(), json!(time));
    if let Some(w) = line.who {
        doc.insert("container".into(), json!(w.name));
        doc.insert("id".into(), json!(w.id));
    }
    doc.insert("action".into(), json!(line.action));
    doc.insert("ok".into(), json!(line.ok));
    doc.insert("message".into(), json!(line.message));
    if let Value::Object(more) = &line.fields {
        for (k, v) in more {
            doc.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_the_container_and_says_failed() {
        let who = Some(Who { name: "web1", id: "abc" });
        let l = Line::new(who, "attach", false, "label pipework.2: bad IPSPEC 'x'");
        assert_eq!(human(&l), "watch: web1: failed: label pipework.2: bad IPSPEC 'x'");
        let l = Line::new(None, "connect", true, "following Docker at /var/run/docker.sock");
        assert_eq!(human(&l), "watch: following Docker at /var/run/docker.sock");
    }

    #[test]
    fn json_lines_carry_the_fields_but_cannot_overwrite_the_common_ones() {
        let who = Some(Who { name: "web1", id: "abc" });
        let l = Line::new(who, "attach", true, "attached").with(json!({"container_if": "eth1", "ok": false}));
        let v = json_of(&l, 1.5);
        assert_eq!(v["time"], 1.5);
        assert_eq!((v["container"].as_str(), v["id"].as_str()), (Some("web1"), Some("abc")));
        assert_eq!((v["action"].as_str(), v["ok"].as_bool()), (Some("attach"), Some(true)));
        assert_eq!(v["container_if"], "eth1");
    }
}
