//! Docker's event stream, `GET /events` over the Engine API socket: one response that
//! lasts as long as the daemon, one JSON object per line, read as it comes by the
//! Docker client ([`crate::docker::client::Stream`]).

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use serde_json::Value;

use crate::docker::client::{self, url_encode};

/// A daemon that accepted the connection but does not answer is one to reconnect to.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the watcher acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Start,
    Die,
}

/// One container event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub action: Action,
    /// The container's full id.
    pub id: String,
    /// Its name, without the leading '/'.
    pub name: String,
    /// When the daemon saw it, in nanoseconds since the epoch.
    pub time_nanos: Option<u64>,
}

/// The open stream.
pub struct Stream(client::Stream);

/// Connect and subscribe to the start and die events of containers; returns once the
/// daemon has answered 200 (from then on no event is missed).
pub async fn subscribe(socket: &Path) -> Result<Stream> {
    let connected = tokio::time::timeout(HEADER_TIMEOUT, open(socket)).await;
    connected.map_err(|_| anyhow!("no answer from Docker at {} in {HEADER_TIMEOUT:?}", socket.display()))?
}

async fn open(socket: &Path) -> Result<Stream> {
    let filters = url_encode(r#"{"type":["container"],"event":["start","die"]}"#);
    let stream = client::open(socket, &format!("/events?filters={filters}")).await?;
    if stream.status != 200 {
        let refused = stream
            .whole()
            .await
            .with_context(|| format!("bad answer from Docker at {}", socket.display()))?;
        return Err(refused.refusal("Docker refused the event stream"));
    }
    Ok(Stream(stream))
}

impl Stream {
    /// The next start or die event; `None` when the daemon ended the stream (it
    /// stopped). Cancel-safe: what was read stays in the decoder.
    pub async fn next(&mut self) -> Result<Option<Event>> {
        while let Some(line) = self.0.next_line().await.context("the Docker event stream failed")? {
            if let Some(event) = parse_event(&line) {
                return Ok(Some(event));
            }
        }
        Ok(None)
    }
}

/// An event line: a container's start or die, else `None` (another kind, or a line
/// that is no event: skipped, as the daemon may add kinds).
pub fn parse_event(line: &[u8]) -> Option<Event> {
    let v: Value = serde_json::from_slice(line).ok()?;
    if v.get("Type").and_then(Value::as_str).is_some_and(|t| t != "container") {
        return None;
    }
    let action = match v.get("Action").or_else(|| v.get("status")).and_then(Value::as_str)? {
        "start" => Action::Start,
        "die" => Action::Die,
        _ => return None,
    };
    let actor = v.get("Actor");
    let id = actor.and_then(|a| a.get("ID")).or_else(|| v.get("id")).and_then(Value::as_str)?;
    let name = actor.and_then(|a| a.get("Attributes")?.get("name")?.as_str()).unwrap_or(id);
    let time_nanos = v.get("timeNano").and_then(Value::as_u64);
    Some(Event { action, id: id.to_string(), name: name.trim_start_matches('/').to_string(), time_nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = r#"{"status":"start","id":"abc","from":"busybox","Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"image":"busybox","name":"web1","pipework.1":"br1 10.0.0.2/24"}},"scope":"local","time":1,"timeNano":1000000001}"#;

    #[test]
    fn events_are_starts_and_dies_of_containers() {
        let e = parse_event(START.as_bytes()).unwrap();
        assert_eq!(e.action, Action::Start);
        assert_eq!((e.id.as_str(), e.name.as_str(), e.time_nanos), ("abc", "web1", Some(1000000001)));
        let die = START.replace("\"start\"", "\"die\"");
        assert_eq!(parse_event(die.as_bytes()).unwrap().action, Action::Die);
        let old = r#"{"status":"start","id":"def","from":"busybox","time":1}"#;
        let e = parse_event(old.as_bytes()).unwrap();
        assert_eq!((e.id.as_str(), e.name.as_str()), ("def", "def"), "an old daemon's form");
        assert_eq!(parse_event(START.replace("\"start\"", "\"exec_start: sh\"").as_bytes()), None);
        let network = START.replace("\"container\"", "\"network\"");
        assert_eq!(parse_event(network.as_bytes()), None);
        assert_eq!(parse_event(b"not json"), None);
    }
}
