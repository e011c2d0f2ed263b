//! The external programs pipework may run (`ip`, `tc`, `ovs-vsctl`, the DHCP clients,
//! `docker`), found by one rule, and what they said last.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Used when PATH is unset, as execvp(3) does on glibc.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The sbin directories a non-login root shell's PATH may lack, where the DHCP
/// clients live.
const SBIN: [&str; 3] = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// `name` on PATH (or the default PATH), then in the sbin directories: the first
/// executable regular file. Looked up before spawning, so that "not installed" is
/// never confused with a failure between fork and exec (entering a namespace).
pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from(DEFAULT_PATH));
    let dirs = std::env::split_paths(&path).chain(SBIN.map(PathBuf::from));
    dirs.map(|d| d.join(name)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The last non-blank line a program wrote to `output` (a file it shared as stdout
/// and stderr), trimmed: what to quote when it failed.
pub fn last_line(output: &mut File) -> String {
    let mut text = String::new();
    let _ = output.seek(SeekFrom::Start(0));
    let _ = output.read_to_string(&mut text);
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_only_executables() {
        assert!(find("sh").is_some());
        assert!(find("no-such-program-pipework").is_none());
        // A directory of that name is no program.
        assert!(find("").is_none());
    }

    #[test]
    fn last_line_skips_trailing_blank_lines() {
        let mut f: File =
            nix::sys::memfd::memfd_create("t", nix::sys::memfd::MFdFlags::empty()).unwrap().into();
        std::io::Write::write_all(&mut f, b"first\n  udhcpc: no lease  \n\n \n").unwrap();
        assert_eq!(last_line(&mut f), "udhcpc: no lease");
    }
}
