//! Docker guest resolver: container name, full ID or ID prefix to PID, ID and name, via the Engine API socket or else the `docker` CLI.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io;
use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::Duration;

use crate::docker::client::{self, Failure, Response};
use crate::docker::endpoint::{self, Endpoint};

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
    let endpoint = endpoint::endpoint();
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

/// Asks the daemon over its socket. `Ok(None)` means nobody listens there
/// (no socket file, or a stale one), so the caller may try the CLI.
fn api_inspect(socket: &Path, name: &str) -> Result<Option<Value>> {
    let response = match client::get(socket, &format!("/containers/{}/json", client::url_encode(name))) {
        Ok(response) => response,
        Err(Failure::Unreachable(_)) => return Ok(None),
        Err(failure) => return Err(failure.into()),
    };
    inspected(name, &response).map(Some)
}

/// The daemon's answer about container `name`: its JSON, or why there is none.
fn inspected(name: &str, response: &Response) -> Result<Value> {
    match response.json(name)? {
        Some(json) => Ok(json),
        None => bail!("no such container: {name}"),
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

    #[test]
    fn status_404_means_no_such_container() {
        let body = br#"{"message":"No such container: nosuchthing"}"#.to_vec();
        let err = inspected("nosuchthing", &Response { status: 404, body }).unwrap_err();
        assert_eq!(err.to_string(), "no such container: nosuchthing");
        let body = br#"{"message":"driver failed"}"#.to_vec();
        let err = inspected("web", &Response { status: 500, body }).unwrap_err();
        assert_eq!(err.to_string(), "Docker daemon error (HTTP 500): driver failed");
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
