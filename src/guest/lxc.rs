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
    let found: Vec<PathBuf> =
        candidates(Path::new(CGROUP_ROOT), name).into_iter().filter(|p| p.is_file()).collect();
    for procs in &found {
        if let Some(pid) = first_pid(procs) {
            return Ok(Some(pid));
        }
    }
    if !found.is_empty() {
        bail!("Could not find a process inside container {name}.");
    }
    Ok(lxc_info(name))
}

/// The process lists a container `name` may have: LXC's own layouts (`lxc/NAME`,
/// `lxc.payload.NAME`, and a bare `NAME`, as the original's `find -name` would
/// match at the top), in the cgroup v1 `devices` hierarchy and in the v2 tree.
fn candidates(root: &Path, name: &str) -> Vec<PathBuf> {
    let dirs = [format!("lxc/{name}"), format!("lxc.payload.{name}"), name.to_string()];
    let mut out = Vec::new();
    for d in &dirs {
        out.push(root.join("devices").join(d).join("tasks"));
        out.push(root.join(d).join("cgroup.procs"));
        out.push(root.join("unified").join(d).join("cgroup.procs"));
    }
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
        let c = candidates(Path::new("/cg"), "web1");
        for want in [
            "/cg/devices/lxc/web1/tasks",
            "/cg/lxc.payload.web1/cgroup.procs",
            "/cg/unified/lxc.payload.web1/cgroup.procs",
            "/cg/devices/web1/tasks",
        ] {
            assert!(c.contains(&PathBuf::from(want)), "{want} missing from {c:?}");
        }
    }

    #[test]
    fn names_that_are_paths_are_not_lxc_names() {
        assert_eq!(find("../etc").unwrap(), None);
        assert_eq!(find("").unwrap(), None);
    }
}
