//! The runtime's side of a call: `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`,
//! `CNI_IFNAME`, `CNI_ARGS` and `CNI_PATH`, checked per command as the spec asks.

use std::path::PathBuf;
use std::str::FromStr;

use crate::model::{IfName, Mac};

use super::error::{CniError, Code};

/// `CNI_COMMAND`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Status,
    Gc,
    Version,
}

impl FromStr for Command {
    type Err = CniError;
    fn from_str(s: &str) -> Result<Command, CniError> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            "VERSION" => Command::Version,
            _ => return Err(CniError::new(Code::InvalidEnvironment, format!("unknown CNI_COMMAND {s:?}"))),
        })
    }
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Status => "STATUS",
            Command::Gc => "GC",
            Command::Version => "VERSION",
        }
    }
}

/// `CNI_ARGS`: `K=V;K=V`. `MAC` is ours, and the pod a Kubernetes runtime names
/// (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`: containerd and CRI-O send them, with
/// `IgnoreUnknown=1`), which `ls` shows; `IP` is the IPAM plugin's, which reads it
/// from the same environment. Any other key fails unless `IgnoreUnknown` is set,
/// as libcni's plugins do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CniArgs {
    pub mac: Option<Mac>,
    pub pod_namespace: Option<String>,
    pub pod_name: Option<String>,
}

impl FromStr for CniArgs {
    type Err = CniError;
    fn from_str(s: &str) -> Result<CniArgs, CniError> {
        let bad = |why: String| CniError::new(Code::InvalidEnvironment, format!("bad CNI_ARGS: {why}"));
        let mut pairs = Vec::new();
        for pair in s.split(';').filter(|p| !p.is_empty()) {
            pairs.push(pair.split_once('=').ok_or_else(|| bad(format!("{pair:?} is not KEY=VALUE")))?);
        }
        let ignore_unknown = pairs
            .iter()
            .any(|(k, v)| *k == "IgnoreUnknown" && matches!(v.to_ascii_lowercase().as_str(), "1" | "true"));
        let mut args = CniArgs::default();
        for (key, value) in pairs {
            match key {
                "IgnoreUnknown" | "IP" => {}
                "MAC" => {
                    args.mac = Some(value.parse().map_err(|_| bad(format!("MAC {value:?} is not a MAC")))?)
                }
                "K8S_POD_NAMESPACE" => args.pod_namespace = Some(value.to_string()).filter(|v| !v.is_empty()),
                "K8S_POD_NAME" => args.pod_name = Some(value.to_string()).filter(|v| !v.is_empty()),
                _ if ignore_unknown => {}
                _ => return Err(bad(format!("unknown key {key:?} (IgnoreUnknown=1 lets it pass)"))),
            }
        }
        Ok(args)
    }
}

impl CniArgs {
    /// The pod as `NAMESPACE/NAME`, as kubectl names it; `None` without a name.
    pub fn pod(&self) -> Option<String> {
        let name = self.pod_name.as_deref()?;
        Some(match self.pod_namespace.as_deref() {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_string(),
        })
    }
}

/// The environment of one call; what the command needs is there (or it failed).
#[derive(Clone, Debug, Default)]
pub struct Env {
    pub container_id: String,
    /// Empty for a DEL after the runtime lost the namespace (allowed).
    pub netns: String,
    pub ifname: String,
    pub args: CniArgs,
    /// `CNI_PATH`'s directories, where delegated plugins are found.
    pub path: Vec<PathBuf>,
}

impl Env {
    /// Read through `get` (the process environment, or a test's map).
    pub fn read(command: Command, get: impl Fn(&str) -> Option<String>) -> Result<Env, CniError> {
        let required = |name: &str, needed: bool| -> Result<String, CniError> {
            match get(name).filter(|v| !v.is_empty()) {
                Some(v) => Ok(v),
                None if needed => Err(CniError::new(
                    Code::InvalidEnvironment,
                    format!("{name} is required for {}", command.as_str()),
                )),
                None => Ok(String::new()),
            }
        };
        let attachment = matches!(command, Command::Add | Command::Del | Command::Check);
        let args = get("CNI_ARGS").unwrap_or_default();
        let ifname = required("CNI_IFNAME", attachment)?;
        if attachment {
            ifname.parse::<IfName>().map_err(|e| {
                CniError::new(Code::InvalidEnvironment, format!("bad CNI_IFNAME {ifname:?}: {e:#}"))
            })?;
        }
        let container_id = required("CNI_CONTAINERID", attachment)?;
        if attachment && !valid_container_id(&container_id) {
            return Err(CniError::new(
                Code::InvalidEnvironment,
                format!(
                    "bad CNI_CONTAINERID {container_id:?}: it must start with a letter or digit, \
                     followed by letters, digits, '_', '.' or '-'"
                ),
            ));
        }
        Ok(Env {
            container_id,
            netns: required("CNI_NETNS", matches!(command, Command::Add | Command::Check))?,
            ifname,
            args: if attachment { args.parse()? } else { CniArgs::default() },
            path: std::env::split_paths(&required("CNI_PATH", command != Command::Version)?).collect(),
        })
    }
}

/// The spec's container ID: not empty, an ASCII letter or digit, then any of those,
/// `_`, `.` and `-` (libcni refuses others before it calls a plugin; a runtime that
/// does not gets error 4, "invalid necessary environment variables").
fn valid_container_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)], command: Command) -> Result<Env, CniError> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Env::read(command, |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn args_mac_and_ignore_unknown() {
        let a: CniArgs = "IgnoreUnknown=1;K8S_POD_NAME=x;MAC=02:00:00:00:00:05;IP=10.0.0.5".parse().unwrap();
        assert_eq!(a.mac.unwrap().to_string(), "02:00:00:00:00:05");
        assert_eq!(a.pod().as_deref(), Some("x"));
        let e = "K8S_POD_UID=x".parse::<CniArgs>().unwrap_err();
        assert_eq!(e.code, 4);
        assert!(e.msg.contains("K8S_POD_UID"), "{}", e.msg);
        assert_eq!("MAC=zz".parse::<CniArgs>().unwrap_err().code, 4);
        assert_eq!("".parse::<CniArgs>().unwrap(), CniArgs::default());
    }

    /// What containerd 1.6's CRI sends.
    #[test]
    fn args_of_a_kubernetes_pod() {
        let a: CniArgs = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;\
                          K8S_POD_INFRA_CONTAINER_ID=5f0c;K8S_POD_UID=0b1e"
            .parse()
            .unwrap();
        assert_eq!(a.pod().as_deref(), Some("default/web-0"));
        assert_eq!(a.mac, None);
        let a: CniArgs = "K8S_POD_NAMESPACE=default".parse().unwrap();
        assert_eq!(a.pod(), None, "a namespace without a name names no pod");
        assert_eq!("".parse::<CniArgs>().unwrap().pod(), None);
    }

    #[test]
    fn what_each_command_needs() {
        let all = [
            ("CNI_CONTAINERID", "c1"),
            ("CNI_NETNS", "/run/netns/x"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", "/a:/b"),
        ];
        let e = env(&all, Command::Add).unwrap();
        assert_eq!(e.path, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
        // DEL without a namespace is allowed; ADD without one is code 4.
        assert!(env(&[all[0], all[2], all[3]], Command::Del).unwrap().netns.is_empty());
        let e = env(&[all[0], all[2], all[3]], Command::Add).unwrap_err();
        assert_eq!((e.code, e.msg.as_str()), (4, "CNI_NETNS is required for ADD"));
        assert!(env(&[], Command::Version).is_ok());
        assert_eq!(env(&[], Command::Status).unwrap_err().code, 4);
        assert_eq!("FOO".parse::<Command>().unwrap_err().code, 4);
        let long = [all[0], all[1], ("CNI_IFNAME", "an-interface-name-too-long"), all[3]];
        assert_eq!(env(&long, Command::Add).unwrap_err().code, 4);
    }

    #[test]
    fn the_container_id_is_what_the_spec_allows() {
        for ok in ["c1", "0a", "A_b.c-d", "1-"] {
            let vars =
                [("CNI_CONTAINERID", ok), ("CNI_NETNS", "/x"), ("CNI_IFNAME", "eth0"), ("CNI_PATH", "/a")];
            assert!(env(&vars, Command::Add).is_ok(), "{ok}");
        }
        for bad in ["-a", ".a", "_a", "a/b", "a b", "a%2D", "é"] {
            for command in [Command::Add, Command::Del, Command::Check] {
                let vars = [
                    ("CNI_CONTAINERID", bad),
                    ("CNI_NETNS", "/x"),
                    ("CNI_IFNAME", "eth0"),
                    ("CNI_PATH", "/a"),
                ];
                let e = env(&vars, command).unwrap_err();
                assert_eq!(e.code, 4, "{bad}");
                assert!(e.msg.starts_with("bad CNI_CONTAINERID"), "{}", e.msg);
            }
        }
    }
}
