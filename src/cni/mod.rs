//! pipework as a CNI plugin (spec 1.1.0): when `CNI_COMMAND` is set, the process is
//! a plugin called by a runtime (Podman, containerd, CRI-O...) and not a command.
//!
//! env + stdin --env/config--> Call --add/del/check/...--> Result --result/error--> stdout
//!
//! ADD, DEL and CHECK are `attach`, `lifecycle::del` and `lifecycle::check`
//! underneath, with IPAM delegated to the plugin `ipam.type` names (see [`ipam`]).
//! Only the result or the error, as JSON, goes to stdout: [`crate::report`] prints
//! it; warnings go to stderr, which runtimes log.

mod add;
mod bridge;
mod check;
mod config;
mod del;
mod env;
mod error;
mod gc;
mod ipam;
mod leasing;
mod netns;
mod pool;
mod request;
mod result;
mod state;
mod version;

use std::io::Read as _;
use std::process::ExitCode;

use serde_json::Value;

use crate::report::{self, Outcome};

use config::NetConf;
use env::{Command, Env};
use error::{CniError, Code};

/// One call: what the runtime said in the environment and on stdin.
#[derive(Clone, Debug)]
pub struct Call {
    pub command: Command,
    pub env: Env,
    pub conf: NetConf,
    /// stdin as it came: delegated plugins get it unchanged.
    pub stdin: Vec<u8>,
}

impl Call {
    /// The IPAM plugin to delegate to (none for the built-in DHCP client).
    fn ipam(&self) -> Option<ipam::Ipam<'_>> {
        let kind = self.conf.ipam.as_ref().filter(|i| !i.is_builtin())?.kind.as_str();
        let pool = self.conf.pool.as_ref();
        Some(ipam::Ipam { kind, env: &self.env, stdin: &self.stdin, overrides: Vec::new(), pool })
    }
}

/// The process's exit code when it runs as a CNI plugin; `None` when `CNI_COMMAND`
/// is not set (a command line).
pub fn from_env() -> Option<ExitCode> {
    let command = std::env::var("CNI_COMMAND").ok()?;
    Some(report::finish(run(&command)))
}

fn run(command: &str) -> Outcome {
    let mut stdin = Vec::new();
    let read = std::io::stdin().read_to_end(&mut stdin);
    // The error's cniVersion is the caller's when its config says one.
    let asked =
        serde_json::from_slice::<Value>(&stdin).ok().and_then(|v| v["cniVersion"].as_str().map(String::from));
    let answered = match read {
        Ok(_) => answer(command, stdin, asked.as_deref()),
        Err(e) => Err(CniError::new(Code::Io, format!("cannot read the network configuration: {e}"))),
    };
    match answered {
        Ok(Some(doc)) => Outcome::Json { doc, notes: Vec::new(), code: 0 },
        Ok(None) => Outcome::Done(Vec::new()),
        Err(e) => {
            let doc = e.to_json(asked.as_deref().unwrap_or(version::LATEST));
            Outcome::Json { doc, notes: Vec::new(), code: 1 }
        }
    }
}

fn answer(command: &str, stdin: Vec<u8>, asked: Option<&str>) -> Result<Option<Value>, CniError> {
    let command: Command = command.parse()?;
    if command == Command::Version {
        return Ok(Some(version::answer(asked)));
    }
    let env = Env::read(command, |k| std::env::var(k).ok())?;
    let text = std::str::from_utf8(&stdin)
        .map_err(|e| CniError::new(Code::Decode, format!("stdin is not UTF-8: {e}")))?;
    let conf: NetConf = text.parse()?;
    let call = Call { command, env, conf, stdin };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CniError::new(Code::Internal, format!("cannot start the runtime: {e}")))?;
    let answered = runtime.block_on(dispatch(&call));
    runtime.shutdown_background();
    answered
}

async fn dispatch(call: &Call) -> Result<Option<Value>, CniError> {
    match call.command {
        Command::Add => add::run(call).await.map(Some),
        Command::Del => del::run(call).await.map(|()| None),
        Command::Check => check::run(call).await.map(|()| None),
        Command::Status => gc::status(call).await.map(|()| None),
        Command::Gc => gc::gc(call).await.map(|()| None),
        Command::Version => Ok(Some(version::answer(Some(&call.conf.cni_version)))),
    }
}
