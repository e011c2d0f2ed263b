//! IPAM delegated as the spec says: the plugin named by `ipam.type`, found on
//! `CNI_PATH`, run with our own environment (its `CNI_COMMAND` set to the command
//! at hand) and our stdin; its stdout is its result or its error.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};

use serde_json::Value;

use super::env::{Command, Env};
use super::error::{CniError, Code};
use super::pool::{self, Pool};
use super::result::CniResult;

/// The IPAM plugin of one network configuration.
pub struct Ipam<'a> {
    pub kind: &'a str,
    pub env: &'a Env,
    /// The network configuration exactly as we got it.
    pub stdin: &'a [u8],
    /// Variables set otherwise than ours (GC's DEL of another attachment).
    pub overrides: Vec<(&'static str, String)>,
    /// The built-in pool, which runs here rather than as a program.
    pub pool: Option<&'a Pool>,
}

impl Ipam<'_> {
    /// The container and interface of the call (GC's DEL gives another's).
    fn attachment(&self) -> (&str, &str) {
        let over = |k: &str| self.overrides.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        (
            over("CNI_CONTAINERID").unwrap_or(&self.env.container_id),
            over("CNI_IFNAME").unwrap_or(&self.env.ifname),
        )
    }

    pub fn add(&self) -> Result<CniResult, CniError> {
        if let Some(pool) = self.pool {
            let (id, ifname) = self.attachment();
            return pool::add(pool, id, ifname);
        }
        let doc = self.exec(Command::Add)?;
        CniResult::parse(&doc.unwrap_or_default(), self.kind)
    }

    /// DEL, CHECK: nothing to read back on success.
    pub fn call(&self, command: Command) -> Result<(), CniError> {
        if let Some(pool) = self.pool {
            let (id, ifname) = self.attachment();
            return match command {
                Command::Del => pool::del(pool, id, ifname),
                Command::Check => pool::check(pool, id, ifname),
                _ => Ok(()),
            };
        }
        self.exec(command).map(drop)
    }

    /// GC, STATUS: only to a plugin that speaks 1.1.0 (there are none before it;
    /// an older plugin fails them each its own way). `Ok(false)`: not called.
    pub fn call_if_1_1(&self, command: Command) -> Result<bool, CniError> {
        // The built-in pool's GC needs `valid-attachments`: gc.rs calls it itself.
        if self.pool.is_some() {
            return Ok(false);
        }
        if !self.versions()?.iter().any(|v| v == super::version::LATEST) {
            return Ok(false);
        }
        self.exec_with(command, self.stdin).map(|_| true)
    }

    fn versions(&self) -> Result<Vec<String>, CniError> {
        let spoken = self.exec_with(Command::Version, self.stdin)?.unwrap_or_default();
        let list = spoken["supportedVersions"].as_array().into_iter().flatten();
        Ok(list.filter_map(Value::as_str).map(String::from).collect())
    }

    /// Our config with its `cniVersion` lowered to the highest the plugin speaks:
    /// Debian's IPAM plugins (1.1.1) speak up to 1.0.0, and a 1.1.0 network (for GC
    /// and STATUS) would otherwise get no address from them.
    fn lowered(&self) -> Result<Option<Vec<u8>>, CniError> {
        let mut conf: Value = serde_json::from_slice(self.stdin).map_err(|e| {
            CniError::new(Code::Decode, format!("cannot decode the network configuration: {e}"))
        })?;
        let spoken = self.exec_with(Command::Version, self.stdin)?.unwrap_or_default();
        let spoken: Vec<&str> =
            spoken["supportedVersions"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let ours = conf["cniVersion"].as_str().unwrap_or_default();
        let Some(best) = super::version::SUPPORTED.iter().rev().find(|v| spoken.contains(v) && **v < ours)
        else {
            return Ok(None);
        };
        conf["cniVersion"] = Value::from(*best);
        Ok(Some(conf.to_string().into_bytes()))
    }

    fn find(&self) -> Result<PathBuf, CniError> {
        if self.kind.contains('/') {
            return Err(CniError::new(
                Code::InvalidConfig,
                format!("bad ipam type {:?}: a plugin name, not a path", self.kind),
            ));
        }
        self.env.path.iter().map(|d| d.join(self.kind)).find(|p| p.is_file()).ok_or_else(|| {
            let dirs: Vec<String> = self.env.path.iter().map(|d| d.display().to_string()).collect();
            CniError::new(
                Code::InvalidConfig,
                format!("cannot find the IPAM plugin {:?} in CNI_PATH", self.kind),
            )
            .with_details(format!("searched {}", dirs.join(":")))
        })
    }

    /// `command`, and again at a version the plugin speaks if it refused ours.
    fn exec(&self, command: Command) -> Result<Option<Value>, CniError> {
        match self.exec_with(command, self.stdin) {
            Err(e) if e.code == Code::IncompatibleVersion as u32 => match self.lowered()? {
                Some(stdin) => self.exec_with(command, &stdin),
                None => Err(e),
            },
            answered => answered,
        }
    }

    fn exec_with(&self, command: Command, stdin: &[u8]) -> Result<Option<Value>, CniError> {
        let program = self.find()?;
        let io = |what: &str, e: std::io::Error| {
            CniError::new(Code::Io, format!("{what} the IPAM plugin {}: {e}", self.kind))
        };
        let mut child = Process::new(&program)
            .env("CNI_COMMAND", command.as_str())
            .envs(self.overrides.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io("cannot run", e))?;
        // A plugin that exits before reading all of stdin is answered by its output.
        let _ = child.stdin.take().expect("piped").write_all(stdin);
        let out = child.wait_with_output().map_err(|e| io("cannot read", e))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let doc: Option<Value> = if text.trim().is_empty() { None } else { serde_json::from_str(&text).ok() };
        if out.status.success() {
            return match (doc, text.trim().is_empty()) {
                (Some(d), _) => Ok(Some(d)),
                (None, true) => Ok(None),
                (None, false) => {
                    Err(CniError::new(Code::Decode, format!("the IPAM plugin {} printed no JSON", self.kind)))
                }
            };
        }
        let said = doc.as_ref().and_then(CniError::from_plugin);
        Err(said.unwrap_or_else(|| {
            let stderr = String::from_utf8_lossy(&out.stderr);
            CniError::new(
                Code::Internal,
                format!("the IPAM plugin {} failed ({}): {}", self.kind, out.status, stderr.trim()),
            )
        }))
    }
}
