//! Docker's event stream, `GET /events` over the Engine API socket: one response that
//! lasts as long as the daemon, one JSON object per line. An HTTP/1.1 daemon sends it
//! chunked; the chunks need not end where the lines do, so the body is decoded as it
//! comes ([`Body`]) and cut into lines after.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use tokio::net::UnixStream;

use crate::guest::docker::url_encode;

/// A daemon that accepted the connection but does not answer is one to reconnect to.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// An event is well under 4 KiB (its labels included); the cap bounds a bad peer.
const MAX_LINE: usize = 1 << 20;
const MAX_HEADER: usize = 64 << 10;

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
pub struct Stream {
    sock: UnixStream,
    body: Body,
}

/// Connect and subscribe to the start and die events of containers; returns once the
/// daemon has answered 200 (from then on no event is missed).
pub async fn subscribe(socket: &Path) -> Result<Stream> {
    let connected = tokio::time::timeout(HEADER_TIMEOUT, open(socket)).await;
    connected.map_err(|_| anyhow!("no answer from Docker at {} in {HEADER_TIMEOUT:?}", socket.display()))?
}

async fn open(socket: &Path) -> Result<Stream> {
    let at = || format!("Docker at {}", socket.display());
    let sock = UnixStream::connect(socket).await.with_context(|| format!("cannot connect to {}", at()))?;
    let filters = url_encode(r#"{"type":["container"],"event":["start","die"]}"#);
    let request = format!(
        "GET /events?filters={filters} HTTP/1.1\r\nHost: docker\r\nUser-Agent: pipework\r\nAccept: application/json\r\n\r\n"
    );
    write_all(&sock, request.as_bytes()).await.with_context(|| format!("cannot write to {}", at()))?;
    let mut raw = Vec::new();
    loop {
        let mut buf = [0u8; 4096];
        let n = read(&sock, &mut buf).await.with_context(|| format!("cannot read from {}", at()))?;
        if n == 0 {
            bail!("{} closed the connection before answering", at());
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some((body, rest)) = head(&raw).with_context(|| format!("bad answer from {}", at()))? {
            let mut stream = Stream { sock, body };
            stream.body.feed(&rest)?;
            return Ok(stream);
        }
        if raw.len() > MAX_HEADER {
            bail!("bad answer from {}: header over {MAX_HEADER} bytes", at());
        }
    }
}

/// One read, as soon as the socket has something (cancel-safe: nothing is read
/// until the socket is ready, and then at once).
async fn read(sock: &UnixStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        sock.readable().await?;
        match sock.try_read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

async fn write_all(sock: &UnixStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        sock.writable().await?;
        match sock.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The response head, once complete: the body's decoder and the bytes after the head.
/// A status other than 200 is the daemon's refusal.
fn head(raw: &[u8]) -> Result<Option<(Body, Vec<u8>)>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(raw)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let status = response.code.context("HTTP response without status code")?;
    let chunked = response.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            && String::from_utf8_lossy(h.value).to_ascii_lowercase().trim().ends_with("chunked")
    });
    if status != 200 {
        let text = String::from_utf8_lossy(&raw[len..]);
        let message = serde_json::from_str::<Value>(text.trim())
            .ok()
            .and_then(|j| j.get("message")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| text.trim().to_string());
        bail!("Docker refused the event stream (HTTP {status}): {message}");
    }
    Ok(Some((Body::new(chunked), raw[len..].to_vec())))
}

impl Stream {
    /// The next start or die event; `None` when the daemon ended the stream (it
    /// stopped). Cancel-safe: what was read stays in the decoder.
    pub async fn next(&mut self) -> Result<Option<Event>> {
        loop {
            while let Some(line) = self.body.next_line()? {
                if let Some(event) = parse_event(&line) {
                    return Ok(Some(event));
                }
            }
            if self.body.ended {
                return Ok(None);
            }
            let mut buf = [0u8; 8192];
            let n = read(&self.sock, &mut buf).await.context("the Docker event stream failed")?;
            if n == 0 {
                return Ok(None);
            }
            self.body.feed(&buf[..n])?;
        }
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

/// Where the chunked decoder is.
#[derive(Debug, PartialEq)]
enum Chunk {
    /// Before a size line.
    Size,
    /// Inside a chunk, with this many bytes of it to come.
    Data(u64),
    /// After a chunk's data: its CRLF.
    End,
}

/// The response body, decoded as it comes, cut into lines.
#[derive(Debug)]
pub struct Body {
    /// `None`: the body runs until the connection closes.
    chunk: Option<Chunk>,
    /// Received, not decoded yet (a chunk header cut in two).
    raw: Vec<u8>,
    /// Decoded, not a whole line yet.
    text: Vec<u8>,
    /// The last (empty) chunk came.
    ended: bool,
}

impl Body {
    pub fn new(chunked: bool) -> Body {
        Body { chunk: chunked.then_some(Chunk::Size), raw: Vec::new(), text: Vec::new(), ended: false }
    }

    /// Bytes from the connection.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<()> {
        let Some(state) = &mut self.chunk else {
            self.text.extend_from_slice(bytes);
            return self.bounded();
        };
        self.raw.extend_from_slice(bytes);
        let mut at = 0;
        while !self.ended {
            let rest = &self.raw[at..];
            match state {
                Chunk::Size => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((used, 0))) => {
                        at += used;
                        self.ended = true;
                    }
                    Ok(httparse::Status::Complete((used, size))) => {
                        at += used;
                        *state = Chunk::Data(size);
                    }
                    Ok(httparse::Status::Partial) if rest.len() < 1024 => break,
                    _ => bail!("bad chunk size line in the Docker event stream"),
                },
                Chunk::Data(left) => {
                    if rest.is_empty() {
                        break;
                    }
                    let take = usize::try_from(*left).unwrap_or(usize::MAX).min(rest.len());
                    self.text.extend_from_slice(&rest[..take]);
                    at += take;
                    *left -= take as u64;
                    if *left == 0 {
                        *state = Chunk::End;
                    }
                }
                Chunk::End => {
                    if rest.len() < 2 {
                        break;
                    }
                    if &rest[..2] != b"\r\n" {
                        bail!("a chunk without its CRLF in the Docker event stream");
                    }
                    at += 2;
                    *state = Chunk::Size;
                }
            }
        }
        self.raw.drain(..at);
        self.bounded()
    }

    fn bounded(&self) -> Result<()> {
        if self.text.len() > MAX_LINE || self.raw.len() > MAX_LINE {
            bail!("a Docker event over {MAX_LINE} bytes");
        }
        Ok(())
    }

    /// The next whole line, without its newline; blank lines are skipped.
    pub fn next_line(&mut self) -> Result<Option<Vec<u8>>> {
        while let Some(end) = self.text.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.text.drain(..=end).take(end).collect();
            if !line.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some(line));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = r#"{"status":"start","id":"abc","from":"busybox","Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"image":"busybox","name":"web1","pipework.1":"br1 10.0.0.2/24"}},"scope":"local","time":1,"timeNano":1000000001}"#;

    fn lines(body: &mut Body) -> Vec<String> {
        std::iter::from_fn(|| body.next_line().unwrap()).map(|l| String::from_utf8(l).unwrap()).collect()
    }

    #[test]
    fn chunks_cut_anywhere_give_the_same_lines() {
        let text = format!("{START}\n{START}\n");
        // Two chunks, split inside the first line; then fed one byte at a time.
        let (a, b) = text.split_at(37);
        let wire = format!("{:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n0\r\n\r\n", a.len(), b.len());
        let mut whole = Body::new(true);
        whole.feed(wire.as_bytes()).unwrap();
        assert_eq!(lines(&mut whole), [START, START]);
        assert!(whole.ended);
        let mut bytes = Body::new(true);
        let mut got = Vec::new();
        for byte in wire.as_bytes() {
            bytes.feed(std::slice::from_ref(byte)).unwrap();
            got.extend(lines(&mut bytes));
        }
        assert_eq!(got, [START, START]);
        assert!(bytes.ended);
    }

    #[test]
    fn a_body_without_chunks_runs_to_eof() {
        let mut body = Body::new(false);
        body.feed(format!("{START}\n\n{}", &START[..10]).as_bytes()).unwrap();
        assert_eq!(lines(&mut body), [START]);
        body.feed(format!("{}\n", &START[10..]).as_bytes()).unwrap();
        assert_eq!(lines(&mut body), [START]);
    }

    #[test]
    fn bad_chunking_is_an_error() {
        assert!(Body::new(true).feed(b"zz\r\nabc").is_err());
        assert!(Body::new(true).feed(b"3\r\nabcXY").is_err());
        assert!(Body::new(true).feed(&[b'1'; 2048]).is_err(), "a size line that never ends");
    }

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

    #[test]
    fn the_head_says_how_the_body_comes() {
        let raw =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n";
        let (body, rest) = head(raw).unwrap().unwrap();
        assert_eq!((body.chunk, rest.as_slice()), (Some(Chunk::Size), &b"5\r\n"[..]));
        assert!(head(b"HTTP/1.1 200 OK\r\nContent-").unwrap().is_none());
        let refused = b"HTTP/1.1 400 Bad Request\r\n\r\n{\"message\":\"invalid filter\"}";
        let e = head(refused).err().unwrap().to_string();
        assert_eq!(e, "Docker refused the event stream (HTTP 400): invalid filter");
    }
}
