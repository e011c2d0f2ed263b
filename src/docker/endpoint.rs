//! Where the Docker daemon is: its Engine API socket, when it is surely the daemon the
//! `docker` CLI would talk to, else the CLI's business.

use std::path::{Path, PathBuf};

use serde_json::Value;

const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// How to reach the daemon.
#[derive(Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Its Engine API socket.
    Socket(PathBuf),
    /// Only through the `docker` CLI (tcp://, ssh://, a named context: TLS and the
    /// CLI's configuration).
    Cli,
}

/// The endpoint that this process's environment names.
pub fn endpoint() -> Endpoint {
    choose(&DockerEnv::from_process())
}

/// The Engine API's socket, as the `docker` CLI would choose it (`DOCKER_HOST`, the
/// context); `None` when only the CLI can reach the daemon.
pub fn api_socket() -> Option<PathBuf> {
    match endpoint() {
        Endpoint::Socket(path) => Some(path),
        Endpoint::Cli => None,
    }
}

/// The environment that decides where the Docker daemon is.
#[derive(Debug, Default)]
struct DockerEnv {
    host: Option<String>,
    context: Option<String>,
    /// `currentContext` from the CLI's config.json (`docker context use`).
    config_context: Option<String>,
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
fn choose(env: &DockerEnv) -> Endpoint {
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

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(choose(&env), want, "{env:?}");
        }
    }
}
