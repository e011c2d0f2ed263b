//! LXC guests, found by their cgroup as LXC lays it out (`lxc.payload.NAME`): a
//! process in its own netns placed in a cgroup of that name stands in for the
//! container (LXC itself is not installed here).

use std::path::PathBuf;

use crate::util::{unique, Netns};

/// A cgroup `lxc.payload.NAME` in the v1 `devices` hierarchy holding `guest`;
/// removed on drop (after the guest has left it).
struct LxcCgroup {
    dir: PathBuf,
}

impl LxcCgroup {
    fn new(name: &str, guest: &Netns) -> LxcCgroup {
        let dir = PathBuf::from(format!("/sys/fs/cgroup/devices/lxc.payload.{name}"));
        std::fs::create_dir(&dir).expect("a cgroup in the devices hierarchy");
        let cg = LxcCgroup { dir };
        std::fs::write(cg.dir.join("tasks"), guest.pid().to_string()).expect("move the guest in");
        cg
    }
}

impl Drop for LxcCgroup {
    fn drop(&mut self) {
        // Move anything left back to the root before removing the group.
        if let Ok(tasks) = std::fs::read_to_string(self.dir.join("tasks")) {
            for pid in tasks.lines() {
                let _ = std::fs::write("/sys/fs/cgroup/devices/tasks", pid);
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[test]
fn an_lxc_container_is_found_by_its_cgroup_before_docker_is_asked() {
    let host = Netns::new();
    let guest = Netns::new();
    let name = unique("pwt-lxc");
    let _cg = LxcCgroup::new(&name, &guest);
    host.pipework(&["br1", &name, "10.9.0.2/24"]).ok();
    assert!(
        host.link(&format!("veth1pl{}", guest.pid())).is_some(),
        "host end named after the LXC init's pid"
    );
    assert!(guest.addrs("eth1").contains(&"10.9.0.2/24".to_string()));
}
