//! Docker guest resolver: container name, full ID or ID prefix to PID, ID and name, via the Engine API socket or else the `docker` CLI.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::Duration;

/// A running Docker container, as the daemon describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerContainer {
    /// PID of the container's first process, in the host's PID namespace.
    pub pid: u32,
    /// Full 64-hex-digit container ID.
    pub id: String,
    /// Name as Docker gives it, with the leading '/'.
    pub name: String,
}

const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// A daemon that accepted the connection but hangs must not hang pipework.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// An inspect answer is ~10 KiB; the cap only bounds a misbehaving peer.
const MAX_RESPONSE: u64 = 16 << 20;
/// The original script tries 3 times, one second apart, while the PID is 0.
const PID_TRIES: u32 = 3;
const PID_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Resolves a Docker container by name, full ID or unique ID prefix.
///
/// Retries while the container is still being (re)started and has no PID
/// yet; fails at once for a container that is not running.
pub fn inspect(name_or_id: &str) -> Result<DockerContainer> {
    // The daemon adds the leading '/' itself; sending it would make an
    // empty path segment that the daemon's router redirects instead.
    let name = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
    if name.is_empty() {
        bail!("empty Docker container name");
    }
    let endpoint = endpoint(&DockerEnv::from_process());
    for attempt in 1..=PID_TRIES {
        let json = match &endpoint {
            Endpoint::Socket(path) => match api_inspect(path, name)? {
                Some(json) => json,
                // Nobody listens on the socket: a remote or rootless setup
                // may still work through the CLI's own configuration.
                None => cli_inspect(name)?,
            },
            Endpoint::Cli => cli_inspect(name)?,
        };
        if let Some(container) = container_from_json(name_or_id, &json)? {
            return Ok(container);
        }
        if attempt < PID_TRIES {
            sleep(PID_RETRY_DELAY);
        }
    }
    bail!("Docker inspect returned invalid PID 0")
}

/// The Engine API's socket, as the `docker` CLI would choose it (`DOCKER_HOST`, the
/// context); `None` when only the CLI can reach the daemon (tcp://, ssh://, a named
/// context). For `pipework watch`, which talks to the socket alone.
pub fn api_socket() -> Option<PathBuf> {
    match endpoint(&DockerEnv::from_process()) {
        Endpoint::Socket(path) => Some(path),
        Endpoint::Cli => None,
    }
}

/// GET `path` (already percent-encoded) from the Engine API at `socket`: the JSON
/// of a 200 answer, `None` for a 404, else the daemon's message.
pub fn api_get_json(socket: &Path, path: &str) -> Result<Option<Value>> {
    let raw =
        http_get(socket, path).with_context(|| format!("cannot query Docker at {}", socket.display()))?;
    let response =
        parse_response(&raw).with_context(|| format!("bad answer from Docker at {}", socket.display()))?;
    if response.status == 404 {
        return Ok(None);
    }
    api_json(path, &response).map(Some)
}

/// The environment that decides where the Docker daemon is.
#[derive(Debug, Default)]
struct DockerEnv {
    host: Option<String>,
    context: Option<String>,
    /// `currentContext` from the CLI's config.json (`docker context use`).
    config_context: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    Socket(PathBuf),
    Cli,
}

impl DockerEnv {
    fn from_process() -> Self {
        let var = |k| std::env::var(k).ok().filter(|v: &String| !v.is_empty());
        let config_dir = var("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| Path::new(&h).join(".docker")));
        let config_context = config_dir
            .and_then(|d| std::fs::read(d.join("config.json")).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v.get("currentContext")?.as_str().map(str::to_owned))
            .filter(|c| !c.is_empty());
        DockerEnv { host: var("DOCKER_HOST"), context: var("DOCKER_CONTEXT"), config_context }
    }
}

/// Picks the socket only when it is surely the daemon the `docker` CLI
/// would talk to; anything else (tcp://, ssh://, a named context) is the
/// CLI's business. Precedence follows the CLI: DOCKER_HOST, then
/// DOCKER_CONTEXT, then config.json's currentContext.
fn endpoint(env: &DockerEnv) -> Endpoint {
    if let Some(host) = &env.host {
        return match host.strip_prefix("unix://") {
            Some(path) if !path.is_empty() => Endpoint::Socket(PathBuf::from(path)),
            _ => Endpoint::Cli,
        };
    }
    let context = env.context.as_ref().or(env.config_context.as_ref());
    match context {
        Some(c) if c != "default" => Endpoint::Cli,
        _ => Endpoint::Socket(PathBuf::from(DEFAULT_SOCKET)),
    }
}

/// Asks the daemon over its socket. `Ok(None)` means nobody listens there
/// (no socket file, or a stale one), so the caller may try the CLI.
fn api_inspect(socket: &Path, name: &str) -> Result<Option<Value>> {
    let raw = match http_get(socket, &format!("/containers/{}/json", url_encode(name))) {
        Ok(raw) => raw,
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused) => {
            return Ok(None)
        }
        Err(e) => return Err(anyhow!("cannot query Docker at {}: {e}", socket.display())),
    };
    let response =
        parse_response(&raw).with_context(|| format!("bad answer from Docker at {}", socket.display()))?;
    api_json(name, &response).map(Some)
}

/// Sends one HTTP/1.0 GET and reads the answer to EOF: HTTP/1.0 makes the
/// daemon close the connection after the body, so no keep-alive handling.
fn http_get(socket: &Path, path: &str) -> io::Result<Vec<u8>> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: docker\r\nUser-Agent: pipework\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.take(MAX_RESPONSE).read_to_end(&mut raw)?;
    Ok(raw)
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so no
/// name can add path segments or a query to the request.
pub(crate) fn url_encode(s: &str) -> String {
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

#[derive(Debug)]
struct HttpResponse {
    status: u16,
    body: Vec<u8>,
}

/// Splits a raw response into status and body. The body ends at
/// Content-Length if given, else at EOF; chunked encoding is decoded too,
/// although a server must not use it for an HTTP/1.0 request.
fn parse_response(raw: &[u8]) -> Result<HttpResponse> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let header_len = match response.parse(raw)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => bail!("truncated HTTP header ({} bytes)", raw.len()),
    };
    let status = response.code.context("HTTP response without status code")?;
    let header = |name: &str| {
        let h = response.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name));
        h.map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    let rest = &raw[header_len..];
    let body = if header("transfer-encoding").is_some_and(|te| te.ends_with("chunked")) {
        decode_chunked(rest)?
    } else if let Some(len) = header("content-length") {
        let len: usize = len.parse().with_context(|| format!("bad Content-Length {len:?}"))?;
        let body = rest.get(..len);
        body.with_context(|| format!("body cut short: {} of {len} bytes", rest.len()))?.to_vec()
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse { status, body })
}

/// Decodes a chunked body (size line, data, CRLF; a zero size ends it).
fn decode_chunked(mut rest: &[u8]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let (start, size) = match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete(found)) => found,
            _ => bail!("bad chunk size line in chunked body"),
        };
        if size == 0 {
            return Ok(body);
        }
        let end = usize::try_from(size).ok().and_then(|s| s.checked_add(start));
        let chunk = end.and_then(|end| rest.get(start..end));
        let chunk = chunk.context("chunked body cut short")?;
        body.extend_from_slice(chunk);
        rest = rest[start + chunk.len()..].strip_prefix(b"\r\n").context("chunk without CRLF")?;
    }
}

/// Turns the daemon's answer into JSON, or into the daemon's own message.
fn api_json(name: &str, response: &HttpResponse) -> Result<Value> {
    let json: Option<Value> = serde_json::from_slice(&response.body).ok();
    match response.status {
        200 => json.with_context(|| format!("Docker sent invalid JSON for {name}")),
        404 => bail!("no such container: {name}"),
        status => {
            let message = json.as_ref().and_then(|j| j.get("message")?.as_str());
            let text = String::from_utf8_lossy(&response.body);
            let message = message.unwrap_or_else(|| text.trim());
            bail!("Docker daemon error (HTTP {status}): {message}")
        }
    }
}

/// Asks the `docker` CLI, which knows contexts, TLS and ssh:// hosts.
fn cli_inspect(name: &str) -> Result<Value> {
    let args = ["inspect", "--type", "container", "--format", "{{json .}}", name];
    let output = match Command::new("docker").args(args).output() {
        Ok(output) => output,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            bail!("Container {name} not found, and Docker not installed.")
        }
        Err(e) => bail!("cannot run docker inspect {name}: {e}"),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!(cli_error(name, &stderr));
    }
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("docker inspect {name} printed invalid JSON"))
}

/// One line from the CLI's stderr ("Error: No such container: x", or the
/// daemon's message), without the CLI's "Error: " decoration.
fn cli_error(name: &str, stderr: &str) -> String {
    let line = stderr.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    // Older CLIs say "No such object" when --type is not understood.
    if line.contains("No such container") || line.contains("No such object") {
        return format!("no such container: {name}");
    }
    let line = line.strip_prefix("Error: ").unwrap_or(line);
    if line.is_empty() {
        format!("docker inspect {name} failed without a message")
    } else {
        format!("docker inspect {name} failed: {line}")
    }
}

/// Reads the inspect JSON. `Ok(None)` means "no PID yet, ask again": the
/// container is being created or restarted.
fn container_from_json(name: &str, json: &Value) -> Result<Option<DockerContainer>> {
    let text = |key: &str| json.get(key).and_then(Value::as_str);
    let state = json.get("State").context("Docker inspect output has no State")?;
    let pid = state.get("Pid").and_then(Value::as_u64);
    let pid = pid.context("Docker inspect output has no State.Pid")?;
    let status = state.get("Status").and_then(Value::as_str).unwrap_or("unknown");
    if pid == 0 {
        // "running" with PID 0 is the same transient state seen mid-start.
        return match status {
            "created" | "restarting" | "running" => Ok(None),
            _ => bail!("container {name} is not running (status: {status})"),
        };
    }
    Ok(Some(DockerContainer {
        pid: u32::try_from(pid).with_context(|| format!("Docker gave PID {pid} for {name}"))?,
        id: text("Id").context("Docker inspect output has no Id")?.to_owned(),
        name: text("Name").context("Docker inspect output has no Name")?.to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(raw: &str) -> HttpResponse {
        parse_response(raw.as_bytes()).unwrap()
    }

    #[test]
    fn response_with_content_length_stops_at_length() {
        let r = parse("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"a\":1}\n\nextra");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"{\"a\":1}\n\n");
    }

    #[test]
    fn response_without_length_reads_to_eof() {
        let r = parse("HTTP/1.0 200 OK\r\n\r\n{\"a\":1}\n");
        assert_eq!(r.body, b"{\"a\":1}\n");
    }

    #[test]
    fn response_chunked_is_decoded() {
        let r = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\na;ext=1\r\n:[1,2,3]}\n\r\n0\r\n\r\n");
        assert_eq!(String::from_utf8(r.body).unwrap(), "{\"a\":[1,2,3]}\n");
    }

    #[test]
    fn response_chunked_cut_short_is_an_error() {
        let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc";
        assert!(parse_response(raw.as_bytes()).is_err());
    }

    #[test]
    fn response_shorter_than_content_length_is_an_error() {
        let err = parse_response(b"HTTP/1.0 200 OK\r\nContent-Length: 50\r\n\r\n{}").unwrap_err();
        assert_eq!(err.to_string(), "body cut short: 2 of 50 bytes");
    }

    #[test]
    fn response_truncated_header_is_an_error() {
        assert!(parse_response(b"HTTP/1.0 200 OK\r\nContent-Le").is_err());
        assert!(parse_response(b"").is_err());
    }

    #[test]
    fn status_404_means_no_such_container() {
        let r = parse("HTTP/1.0 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 45\r\n\r\n{\"message\":\"No such container: nosuchthing\"}\n");
        assert_eq!(r.status, 404);
        let err = api_json("nosuchthing", &r).unwrap_err();
        assert_eq!(err.to_string(), "no such container: nosuchthing");
    }

    #[test]
    fn other_status_carries_daemon_message() {
        let r = parse("HTTP/1.0 500 Internal Server Error\r\n\r\n{\"message\":\"driver failed\"}\n");
        let err = api_json("web", &r).unwrap_err();
        assert_eq!(err.to_string(), "Docker daemon error (HTTP 500): driver failed");
        let r = parse("HTTP/1.0 502 Bad Gateway\r\n\r\nupstream down\n");
        let err = api_json("web", &r).unwrap_err();
        assert_eq!(err.to_string(), "Docker daemon error (HTTP 502): upstream down");
    }

    fn inspect_json(pid: u64, status: &str) -> Value {
        json!({
            "Id": "4c5e3d6a1f0b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5061728394a5b",
            "Name": "/web1",
            "State": {"Status": status, "Running": pid != 0, "Pid": pid}
        })
    }

    #[test]
    fn running_container_gives_pid_id_and_name() {
        let c = container_from_json("web1", &inspect_json(4242, "running")).unwrap().unwrap();
        assert_eq!(c.pid, 4242);
        assert_eq!(c.name, "/web1");
        assert!(c.id.starts_with("4c5e3d6a1f0b") && c.id.len() == 64);
    }

    #[test]
    fn exited_container_fails_at_once() {
        let err = container_from_json("web1", &inspect_json(0, "exited")).unwrap_err();
        assert_eq!(err.to_string(), "container web1 is not running (status: exited)");
    }

    #[test]
    fn pid_zero_while_starting_asks_for_retry() {
        for status in ["created", "restarting"] {
            assert_eq!(container_from_json("web1", &inspect_json(0, status)).unwrap(), None);
        }
    }

    #[test]
    fn malformed_inspect_output_is_an_error() {
        assert!(container_from_json("x", &json!({"Id": "a", "Name": "/x"})).is_err());
        let no_id = json!({"Name": "/x", "State": {"Status": "running", "Pid": 7}});
        assert!(container_from_json("x", &no_id).is_err());
        let huge = json!({"Id": "a", "Name": "/x", "State": {"Status": "running", "Pid": 1u64 << 40}});
        assert!(container_from_json("x", &huge).is_err());
    }

    fn env(host: Option<&str>, context: Option<&str>, config: Option<&str>) -> DockerEnv {
        DockerEnv {
            host: host.map(str::to_owned),
            context: context.map(str::to_owned),
            config_context: config.map(str::to_owned),
        }
    }

    #[test]
    fn docker_host_classification() {
        let sock = |p: &str| Endpoint::Socket(PathBuf::from(p));
        let cases = [
            (env(None, None, None), sock(DEFAULT_SOCKET)),
            (env(Some("unix:///run/user/1000/docker.sock"), None, None), sock("/run/user/1000/docker.sock")),
            (env(Some("tcp://10.0.0.1:2376"), None, None), Endpoint::Cli),
            (env(Some("ssh://me@host"), None, None), Endpoint::Cli),
            (env(Some("unix://"), None, None), Endpoint::Cli),
            (env(None, Some("remote"), None), Endpoint::Cli),
            (env(None, Some("default"), None), sock(DEFAULT_SOCKET)),
            (env(None, None, Some("remote")), Endpoint::Cli),
            (env(None, Some("default"), Some("remote")), sock(DEFAULT_SOCKET)),
            // The CLI lets DOCKER_HOST win over any context.
            (env(Some("unix:///tmp/d.sock"), Some("remote"), None), sock("/tmp/d.sock")),
        ];
        for (env, want) in cases {
            assert_eq!(endpoint(&env), want, "{env:?}");
        }
    }

    #[test]
    fn names_are_percent_encoded() {
        assert_eq!(url_encode("web_1.a-b~"), "web_1.a-b~");
        assert_eq!(url_encode("a/../b?x=1 #"), "a%2F..%2Fb%3Fx%3D1%20%23");
    }

    #[test]
    fn cli_errors_are_one_line() {
        let err = cli_error("ghost", "Error: No such container: ghost\n");
        assert_eq!(err, "no such container: ghost");
        let err = cli_error(
            "web",
            "Cannot connect to the Docker daemon at tcp://h:2375. Is the docker daemon running?\n",
        );
        assert_eq!(err, "docker inspect web failed: Cannot connect to the Docker daemon at tcp://h:2375. Is the docker daemon running?");
        assert_eq!(cli_error("web", "\n"), "docker inspect web failed without a message");
    }

    #[test]
    fn missing_socket_means_ask_the_cli() {
        let missing = Path::new("/nonexistent/pipework-test/docker.sock");
        assert!(api_inspect(missing, "web").unwrap().is_none());
    }
}
