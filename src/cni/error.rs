//! A CNI error: `{cniVersion, code, msg, details}` on stdout, with the spec's
//! well-known codes (1-11) and 999 for everything else the plugin fails at.

use nix::errno::Errno;
use serde_json::{json, Value};

/// The spec's codes, by what they say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    IncompatibleVersion = 1,
    UnsupportedField = 2,
    UnknownContainer = 3,
    InvalidEnvironment = 4,
    Io = 5,
    Decode = 6,
    InvalidConfig = 7,
    TryAgainLater = 11,
    /// STATUS: the plugin cannot do an ADD now.
    PluginNotAvailable = 50,
    /// libcni's `ErrInternal`: what a plugin's own failure is reported as.
    Internal = 999,
}

#[derive(Debug)]
pub struct CniError {
    /// A code of ours, or the one a delegated plugin answered with.
    pub code: u32,
    pub msg: String,
    pub details: String,
}

impl CniError {
    pub fn new(code: Code, msg: impl Into<String>) -> CniError {
        CniError { code: code as u32, msg: msg.into(), details: String::new() }
    }

    /// A failure of the attachment itself: its whole chain of causes in `msg`, as
    /// the command line would print it; code 11 when the kernel said to try again.
    pub fn internal(e: &anyhow::Error) -> CniError {
        let busy = matches!(crate::netlink::errno_of(e), Some(Errno::EAGAIN | Errno::EBUSY));
        CniError::new(if busy { Code::TryAgainLater } else { Code::Internal }, format!("{e:#}"))
    }

    pub fn with_details(mut self, details: impl Into<String>) -> CniError {
        self.details = details.into();
        self
    }

    /// What went wrong first, then what went wrong undoing it.
    pub fn and_then_failed(mut self, undo: &CniError) -> CniError {
        let more = format!("undoing it failed too: {}", undo.msg);
        self.details = if self.details.is_empty() { more } else { format!("{}; {more}", self.details) };
        self
    }

    pub fn to_json(&self, cni_version: &str) -> Value {
        let mut doc = json!({ "cniVersion": cni_version, "code": self.code, "msg": self.msg });
        if !self.details.is_empty() {
            doc["details"] = json!(self.details);
        }
        doc
    }

    /// An error another plugin printed (`{code, msg, details}`), kept as it said it.
    pub fn from_plugin(doc: &Value) -> Option<CniError> {
        let code = u32::try_from(doc.get("code")?.as_u64()?).ok()?;
        let text = |k: &str| doc.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        Some(CniError { code, msg: text("msg"), details: text("details") })
    }
}

impl std::fmt::Display for CniError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.msg, self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_only_when_there_are_some() {
        let e = CniError::new(Code::UnsupportedField, "ipMasq is not supported");
        assert_eq!(
            e.to_json("1.0.0"),
            json!({"cniVersion": "1.0.0", "code": 2, "msg": "ipMasq is not supported"})
        );
        let e = e.with_details("x");
        assert_eq!(e.to_json("1.0.0")["details"], "x");
    }

    #[test]
    fn a_plugins_error_is_kept() {
        let e = CniError::from_plugin(&json!({"code": 11, "msg": "busy", "details": "d"})).unwrap();
        assert_eq!((e.code, e.msg.as_str(), e.details.as_str()), (11, "busy", "d"));
        assert!(CniError::from_plugin(&json!({"ips": []})).is_none());
    }
}
