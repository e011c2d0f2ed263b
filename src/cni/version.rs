//! The CNI spec versions this plugin speaks, and the `VERSION` answer.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde_json::{json, Value};

use super::error::{CniError, Code};

pub const SUPPORTED: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
/// The version we implement, for answers where the caller named none.
pub const LATEST: &str = "1.1.0";

/// A `cniVersion` that is one of [`SUPPORTED`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    major: u8,
    minor: u8,
    patch: u8,
}

impl FromStr for Version {
    type Err = CniError;
    fn from_str(s: &str) -> Result<Version, CniError> {
        let unsupported = || {
            CniError::new(Code::IncompatibleVersion, format!("incompatible CNI version {s:?}"))
                .with_details(format!("pipework supports {}", SUPPORTED.join(", ")))
        };
        if !SUPPORTED.contains(&s) {
            return Err(unsupported());
        }
        let mut parts = s.split('.').map(|p| p.parse::<u8>());
        match (parts.next(), parts.next(), parts.next()) {
            (Some(Ok(major)), Some(Ok(minor)), Some(Ok(patch))) => Ok(Version { major, minor, patch }),
            _ => Err(unsupported()),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch))
    }
}

impl Version {
    pub const V0_4_0: Version = Version { major: 0, minor: 4, patch: 0 };
    pub const V1_0_0: Version = Version { major: 1, minor: 0, patch: 0 };
    pub const V1_1_0: Version = Version { major: 1, minor: 1, patch: 0 };
}

/// `VERSION`: the versions we speak; `cniVersion` is the caller's when it named one.
pub fn answer(asked: Option<&str>) -> Value {
    json!({ "cniVersion": asked.unwrap_or(LATEST), "supportedVersions": SUPPORTED })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_versions_parse_and_order() {
        let v: Vec<Version> = SUPPORTED.iter().map(|s| s.parse().unwrap()).collect();
        assert!(v.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(v[3].to_string(), "1.0.0");
    }

    #[test]
    fn others_are_code_1() {
        for bad in ["0.2.0", "1.2.0", "", "1.0"] {
            assert_eq!(bad.parse::<Version>().unwrap_err().code, 1, "{bad}");
        }
    }
}
