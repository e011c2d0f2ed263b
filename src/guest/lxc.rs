//! LXC containers, found by their cgroup as the original looks for them (a cgroup
//! named after the container, first task in it), on cgroup v1 and v2 alike, or by
//! `lxc-info`. The original's lookup never runs on a current kernel (it tests
//! whether the kernel knows cgroup2); ours does, at fixed paths so that the cost
//! does not grow with the number of containers on the host.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Result};

/// Where the cgroup filesystems are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The PID of LXC container `name`, or `None` when no LXC container has that name.
pub fn find(name: &str) -> Result<Option<u32>> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Ok(None);
    }
    let found: Vec<Candidate> =
        candidates(Path::new(CGROUP_ROOT), name).into_iter().filter(|c| c.procs.is_file()).collect();
    for c in &found {
        if let Some(pid) = first_pid(&c.procs) {
            return Ok(Some(pid));
        }
    }
    if found.iter().any(|c| c.lxc_layout) {
        bail!("Could not find a process inside container {name}.");
    }
    Ok(lxc_info(name))
}

/// A process list where container `name`'s processes may be.
struct Candidate {
    procs: PathBuf,
    /// Under a name only LXC makes (`lxc/NAME`, `lxc.payload.NAME`): found empty,
    /// it is a stopped container. A bare `NAME` cgroup may be anything's (`docker`,
    /// say), and an empty one is no answer.
    lxc_layout: bool,
}

/// LXC's own layouts (`lxc/NAME`, `lxc.payload.NAME`) in the cgroup v1 `devices`
/// hierarchy and in the v2 tree, and a bare `NAME` at the top of the `devices`
/// hierarchy, as the original's `find -name` would match it there. Never a bare
/// name at the top of the v2 tree: that is systemd's (`init.scope` holds PID 1, the
/// host's own namespace).
fn candidates(root: &Path, name: &str) -> Vec<Candidate> {
    let mut out = Vec::new();
    for d in [format!("lxc/{name}"), format!("lxc.payload.{name}")] {
        for procs in [
            root.join("devices").join(&d).join("tasks"),
            root.join(&d).join("cgroup.procs"),
            root.join("unified").join(&d).join("cgroup.procs"),
        ] {
            out.push(Candidate { procs, lxc_layout: true });
        }
    }
    out.push(Candidate { procs: root.join("devices").join(name).join("tasks"), lxc_layout: false });
    out
}

fn first_pid(procs: &Path) -> Option<u32> {
    std::fs::read_to_string(procs).ok()?.lines().find_map(|l| l.trim().parse().ok())
}

/// `lxc-info -n NAME -p -H`, where LXC is installed (its own idea of where things are).
fn lxc_info(name: &str) -> Option<u32> {
    let out = Command::new("lxc-info")
        .args(["-n", name, "-p", "-H"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_paths_cover_v1_and_v2_layouts() {
        let c: Vec<(PathBuf, bool)> =
            candidates(Path::new("/cg"), "web1").into_iter().map(|c| (c.procs, c.lxc_layout)).collect();
        for want in [
            ("/cg/devices/lxc/web1/tasks", true),
            ("/cg/lxc.payload.web1/cgroup.procs", true),
            ("/cg/unified/lxc.payload.web1/cgroup.procs", true),
            ("/cg/devices/web1/tasks", false),
        ] {
            assert!(c.contains(&(PathBuf::from(want.0), want.1)), "{want:?} missing from {c:?}");
        }
        // systemd's top-level cgroups are never taken for containers.
        assert!(!c.iter().any(|(p, _)| p == Path::new("/cg/web1/cgroup.procs")), "{c:?}");
    }

    #[test]
    fn names_that_are_paths_are_not_lxc_names() {
        assert_eq!(find("../etc").unwrap(), None);
        assert_eq!(find("").unwrap(), None);
    }
}
