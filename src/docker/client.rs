//! The Docker Engine API over its unix socket: one GET per connection (`Connection:
//! close`), its answer's head read with `httparse`, its body with [`Body`]. Two
//! transports over the same exchange: a blocking one for one-shot questions (guest
//! resolution runs in synchronous code, on the blocking pool), and an async one for
//! the event stream, which lasts as long as the daemon and must be cancel-safe.

use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use super::body::Body;

/// A daemon that accepted the connection but hangs must not hang pipework.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// An inspect answer is ~10 KiB; the cap only bounds a misbehaving peer.
const MAX_RESPONSE: usize = 16 << 20;
/// An event is well under 4 KiB (its labels included); the cap bounds a bad peer.
const MAX_LINE: usize = 1 << 20;
const MAX_HEADER: usize = 64 << 10;

/// Percent-encodes everything but RFC 3986 unreserved characters, so no
/// name can add path segments or a query to the request.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The one request pipework sends: `path` is already percent-encoded. The daemon
/// closes the connection after the answer, so there is no keep-alive to handle.
fn request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: pipework\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
}

/// A whole answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    /// The daemon's refusal as one line, `{what} (HTTP 500): its message`: the
    /// `message` of its JSON error body, else the body's text.
    pub fn refusal(&self, what: &str) -> anyhow::Error {
        let json: Option<Value> = serde_json::from_slice(&self.body).ok();
        let message = json.as_ref().and_then(|j| j.get("message")?.as_str());
        let text = String::from_utf8_lossy(&self.body);
        anyhow!("{what} (HTTP {}): {}", self.status, message.unwrap_or_else(|| text.trim()))
    }

    /// The JSON of a 200 answer about `what`, `None` for a 404, else the daemon's refusal.
    pub fn json(&self, what: &str) -> Result<Option<Value>> {
        match self.status {
            200 => serde_json::from_slice(&self.body)
                .map(Some)
                .with_context(|| format!("Docker sent invalid JSON for {what}")),
            404 => Ok(None),
            _ => Err(self.refusal("Docker daemon error")),
        }
    }
}

/// Why a one-shot question got no answer.
#[derive(Debug)]
pub enum Failure {
    /// Nobody listens at the socket (no socket file, or a stale one): a remote or
    /// rootless setup may still work through the CLI's own configuration.
    Unreachable(anyhow::Error),
    Failed(anyhow::Error),
}

impl From<Failure> for anyhow::Error {
    fn from(f: Failure) -> anyhow::Error {
        match f {
            Failure::Unreachable(e) | Failure::Failed(e) => e,
        }
    }
}

/// GET `path` (already percent-encoded) from the Engine API at `socket`, blocking.
pub fn get(socket: &Path, path: &str) -> Result<Response, Failure> {
    let cannot = |e: io::Error| anyhow!("cannot query Docker at {}: {e}", socket.display());
    let mut sock = match std::os::unix::net::UnixStream::connect(socket) {
        Ok(sock) => sock,
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused) => {
            return Err(Failure::Unreachable(cannot(e)))
        }
        Err(e) => return Err(Failure::Failed(cannot(e))),
    };
    let mut exchange = || -> io::Result<Result<Response>> {
        sock.set_read_timeout(Some(IO_TIMEOUT))?;
        sock.set_write_timeout(Some(IO_TIMEOUT))?;
        sock.write_all(request(path).as_bytes())?;
        let mut incoming = Incoming::new(MAX_RESPONSE);
        let mut buf = [0u8; 8192];
        loop {
            let n = match sock.read(&mut buf) {
                // A socket with a timeout is not restarted after a signal handler
                // (signal(7)), SA_RESTART or not: watch's SIGCHLD comes here too.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                n => n?,
            };
            if n == 0 {
                return Ok(incoming.finish());
            }
            if let Err(e) = incoming.feed(&buf[..n]) {
                return Ok(Err(e));
            }
            if incoming.ended() {
                return Ok(incoming.finish());
            }
        }
    };
    let answer = exchange().map_err(|e| Failure::Failed(cannot(e)))?;
    answer.with_context(|| format!("bad answer from Docker at {}", socket.display())).map_err(Failure::Failed)
}

/// GET `path` and read its JSON: `None` for a 404, else the daemon's message.
pub fn get_json(socket: &Path, path: &str) -> Result<Option<Value>> {
    get(socket, path)?.json(path)
}

/// An answer as its bytes come: the head until it is whole, then the body.
struct Incoming {
    head: Vec<u8>,
    answer: Option<(u16, Body)>,
    limit: usize,
}

impl Incoming {
    fn new(limit: usize) -> Incoming {
        Incoming { head: Vec::new(), answer: None, limit }
    }

    fn feed(&mut self, bytes: &[u8]) -> Result<()> {
        if let Some((_, body)) = &mut self.answer {
            return body.feed(bytes);
        }
        self.head.extend_from_slice(bytes);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        let len = match response.parse(&self.head)? {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial if self.head.len() > MAX_HEADER => {
                bail!("header over {MAX_HEADER} bytes")
            }
            httparse::Status::Partial => return Ok(()),
        };
        let status = response.code.context("HTTP response without status code")?;
        let header = |name: &str| {
            let h = response.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name));
            h.map(|h| String::from_utf8_lossy(h.value).into_owned())
        };
        let mut body = Body::new(
            header("transfer-encoding").as_deref(),
            header("content-length").as_deref(),
            self.limit,
        )?;
        body.feed(&self.head[len..])?;
        self.head = Vec::new();
        self.answer = Some((status, body));
        Ok(())
    }

    fn ended(&self) -> bool {
        self.answer.as_ref().is_some_and(|(_, body)| body.ended())
    }

    /// The answer at the connection's end.
    fn finish(self) -> Result<Response> {
        let Some((status, body)) = self.answer else {
            bail!("truncated HTTP header ({} bytes)", self.head.len())
        };
        Ok(Response { status, body: body.finish()? })
    }
}

/// An answer read as it comes, over an async connection: its status known, its body
/// taken line by line (the event stream) or whole (a refusal).
pub struct Stream {
    sock: tokio::net::UnixStream,
    pub status: u16,
    body: Body,
}

/// Send GET `path` to the daemon at `socket`; returns once the answer's head came.
pub async fn open(socket: &Path, path: &str) -> Result<Stream> {
    let at = || format!("Docker at {}", socket.display());
    let sock = tokio::net::UnixStream::connect(socket)
        .await
        .with_context(|| format!("cannot connect to {}", at()))?;
    write_all(&sock, request(path).as_bytes()).await.with_context(|| format!("cannot write to {}", at()))?;
    let mut incoming = Incoming::new(MAX_LINE);
    loop {
        let mut buf = [0u8; 4096];
        let n = read(&sock, &mut buf).await.with_context(|| format!("cannot read from {}", at()))?;
        if n == 0 {
            bail!("{} closed the connection before answering", at());
        }
        incoming.feed(&buf[..n]).with_context(|| format!("bad answer from {}", at()))?;
        if let Some((status, body)) = incoming.answer.take() {
            return Ok(Stream { sock, status, body });
        }
    }
}

impl Stream {
    /// The body's next non-blank line; `None` when the body or the connection ended.
    /// Cancel-safe: what was read stays in the decoder.
    pub async fn next_line(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            if let Some(line) = self.body.next_line() {
                return Ok(Some(line));
            }
            if self.body.ended() {
                return Ok(None);
            }
            let mut buf = [0u8; 8192];
            let n = read(&self.sock, &mut buf).await?;
            if n == 0 {
                return Ok(None);
            }
            self.body.feed(&buf[..n])?;
        }
    }

    /// The whole answer, read to its end.
    pub async fn whole(mut self) -> Result<Response> {
        while !self.body.ended() {
            let mut buf = [0u8; 8192];
            let n = read(&self.sock, &mut buf).await?;
            if n == 0 {
                break;
            }
            self.body.feed(&buf[..n])?;
        }
        Ok(Response { status: self.status, body: self.body.finish()? })
    }
}

/// One read, as soon as the socket has something (cancel-safe: nothing is read
/// until the socket is ready, and then at once).
async fn read(sock: &tokio::net::UnixStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        sock.readable().await?;
        match sock.try_read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

async fn write_all(sock: &tokio::net::UnixStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        sock.writable().await?;
        match sock.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(raw: &str) -> Result<Response> {
        let mut incoming = Incoming::new(MAX_RESPONSE);
        incoming.feed(raw.as_bytes())?;
        incoming.finish()
    }

    #[test]
    fn the_head_says_how_the_body_comes() {
        let r = answer("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"a\":1}\n\nextra").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{\"a\":1}\n\n"[..]));
        let r = answer("HTTP/1.0 200 OK\r\n\r\n{\"a\":1}\n").unwrap();
        assert_eq!(r.body, b"{\"a\":1}\n");
        let r = answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\na;ext=1\r\n:[1,2,3]}\n\r\n0\r\n\r\n");
        assert_eq!(String::from_utf8(r.unwrap().body).unwrap(), "{\"a\":[1,2,3]}\n");
    }

    #[test]
    fn a_head_cut_in_pieces_is_read_whole() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        for cut in 0..raw.len() {
            let mut incoming = Incoming::new(MAX_RESPONSE);
            incoming.feed(&raw[..cut]).unwrap();
            incoming.feed(&raw[cut..]).unwrap();
            assert!(incoming.ended(), "cut at {cut}");
            assert_eq!(incoming.finish().unwrap().body, b"{}");
        }
    }

    #[test]
    fn a_truncated_or_endless_head_is_an_error() {
        let e = answer("HTTP/1.0 200 OK\r\nContent-Le").unwrap_err();
        assert_eq!(e.to_string(), "truncated HTTP header (27 bytes)");
        assert!(answer("").is_err());
        let e = answer(&format!("HTTP/1.1 200 OK\r\nX: {}", "y".repeat(MAX_HEADER))).unwrap_err();
        assert_eq!(e.to_string(), format!("header over {MAX_HEADER} bytes"));
        let e = answer("HTTP/1.0 200 OK\r\nContent-Length: 50\r\n\r\n{}").unwrap_err();
        assert_eq!(e.to_string(), "body cut short: 2 of 50 bytes");
    }

    #[test]
    fn an_error_answer_is_the_daemons_message_on_one_line() {
        let r = answer("HTTP/1.1 404 Not Found\r\nContent-Length: 45\r\n\r\n{\"message\":\"No such container: nosuchthing\"}\n").unwrap();
        assert!(r.json("nosuchthing").unwrap().is_none(), "404: no such thing");
        let r =
            answer("HTTP/1.1 500 Internal Server Error\r\n\r\n{\"message\":\"driver failed\"}\n").unwrap();
        assert_eq!(r.refusal("Refused").to_string(), "Refused (HTTP 500): driver failed");
        assert_eq!(r.json("web").unwrap_err().to_string(), "Docker daemon error (HTTP 500): driver failed");
        let r = answer("HTTP/1.1 502 Bad Gateway\r\n\r\nupstream down\n").unwrap();
        assert_eq!(r.json("web").unwrap_err().to_string(), "Docker daemon error (HTTP 502): upstream down");
        let r = answer("HTTP/1.1 400 Bad Request\r\n\r\n{\"msg\":\"x\"}").unwrap();
        assert_eq!(
            r.refusal("No").to_string(),
            "No (HTTP 400): {\"msg\":\"x\"}",
            "JSON without a message: its text"
        );
        let r = answer("HTTP/1.1 200 OK\r\n\r\nnot json").unwrap();
        assert_eq!(r.json("web").unwrap_err().to_string(), "Docker sent invalid JSON for web");
    }

    #[test]
    fn names_are_percent_encoded() {
        assert_eq!(url_encode("web_1.a-b~"), "web_1.a-b~");
        assert_eq!(url_encode("a/../b?x=1 #"), "a%2F..%2Fb%3Fx%3D1%20%23");
    }

    /// A daemon on a socket in a fresh directory: reads one request, then writes
    /// `pieces` one by one (each its own read on the other side) and closes.
    fn daemon(pieces: Vec<&'static str>) -> (std::path::PathBuf, std::thread::JoinHandle<String>) {
        daemon_pausing(pieces, Duration::from_millis(20))
    }

    /// The same, with `pause` before each piece.
    fn daemon_pausing(
        pieces: Vec<&'static str>,
        pause: Duration,
    ) -> (std::path::PathBuf, std::thread::JoinHandle<String>) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("pipework-docker-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("docker.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut asked = Vec::new();
            let mut buf = [0u8; 1024];
            while !asked.ends_with(b"\r\n\r\n") {
                let n = conn.read(&mut buf).unwrap();
                asked.extend_from_slice(&buf[..n]);
            }
            for piece in pieces {
                std::thread::sleep(pause);
                conn.write_all(piece.as_bytes()).unwrap();
            }
            let _ = std::fs::remove_dir_all(dir);
            String::from_utf8(asked).unwrap()
        });
        (path, server)
    }

    #[test]
    fn a_one_shot_answer_is_read_across_reads() {
        let pieces = vec![
            "HTTP/1.1 200 OK\r\nTransfer-",
            "Encoding: chunked\r\n\r\n4\r\n{\"a\"",
            "\r\n3;x=y\r\n:1}\r\n0\r\n",
            "\r\n",
        ];
        let (path, server) = daemon(pieces);
        let r = get(&path, "/containers/a%2Fb/json").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{\"a\":1}"[..]));
        let asked = server.join().unwrap();
        assert!(asked.starts_with("GET /containers/a%2Fb/json HTTP/1.1\r\nHost: docker\r\n"), "{asked}");
    }

    /// A socket with a timeout fails a read with EINTR when a signal comes, whatever
    /// SA_RESTART says (signal(7)): `watch` gets SIGCHLD while guest resolution waits.
    #[test]
    fn a_signal_while_waiting_for_the_answer_is_no_failure() {
        use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
        extern "C" fn nothing(_: nix::libc::c_int) {}
        let action = SigAction::new(SigHandler::Handler(nothing), SaFlags::SA_RESTART, SigSet::empty());
        // SAFETY: the handler does nothing, so it is async-signal-safe; SIGUSR1 is no
        // other test's.
        unsafe { sigaction(Signal::SIGUSR1, &action) }.unwrap();
        let pieces = vec!["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", "{}"];
        let (path, server) = daemon_pausing(pieces, Duration::from_millis(300));
        let (tx, rx) = std::sync::mpsc::channel();
        let asking = std::thread::spawn(move || {
            // SAFETY: pthread_self has no preconditions.
            tx.send(unsafe { nix::libc::pthread_self() }).unwrap();
            get(&path, "/_ping").map(|r| r.body)
        });
        let thread = rx.recv().unwrap();
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(100));
            // SAFETY: the thread is alive until joined below, and SIGUSR1 is handled.
            unsafe { nix::libc::pthread_kill(thread, nix::libc::SIGUSR1) };
        }
        assert_eq!(asking.join().unwrap().unwrap(), b"{}");
        server.join().unwrap();
    }

    #[test]
    fn a_stream_gives_its_lines_as_they_come_and_a_refusal_whole() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let pieces = vec![
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "6\r\none\ntw\r\n",
            "3\r\no\n\n\r\n0\r\n\r\n",
        ];
        let (path, server) = daemon(pieces);
        let lines = rt.block_on(async {
            let mut stream = open(&path, "/events").await.unwrap();
            assert_eq!(stream.status, 200);
            let mut lines = Vec::new();
            while let Some(line) = stream.next_line().await.unwrap() {
                lines.push(String::from_utf8(line).unwrap());
            }
            lines
        });
        assert_eq!(lines, ["one", "two"]);
        server.join().unwrap();
        let pieces = vec![
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 28\r\n\r\n{\"message\":",
            "\"invalid filter\"}",
        ];
        let (path, server) = daemon(pieces);
        let refused = rt.block_on(async { open(&path, "/events").await.unwrap().whole().await.unwrap() });
        assert_eq!(refused.refusal("Refused").to_string(), "Refused (HTTP 400): invalid filter");
        server.join().unwrap();
    }

    #[test]
    fn a_missing_socket_is_unreachable_not_failed() {
        let missing = Path::new("/nonexistent/pipework-test/docker.sock");
        match get(missing, "/_ping") {
            Err(Failure::Unreachable(e)) => {
                assert!(e.to_string().starts_with("cannot query Docker at /nonexistent/"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }
}
