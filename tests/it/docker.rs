//! Real Docker containers, resolved through the Engine API socket (the daemon is
//! started by scripts/docker-up.sh with the locally built `busybox` image).

use std::process::{Command, Stdio};

use crate::util::{unique, Netns};

/// A container we started (`--init --network none`), removed on drop.
pub(crate) struct Container {
    pub(crate) name: String,
}

impl Container {
    pub(crate) fn run() -> Container {
        let name = unique("pwt-c");
        let out = Command::new("docker")
            .args(["run", "-d", "--init", "--network", "none", "--name", &name, "busybox", "sleep", "600"])
            .stdin(Stdio::null())
            .output()
            .expect("docker run (is scripts/docker-up.sh done?)");
        assert!(out.status.success(), "docker run: {}", String::from_utf8_lossy(&out.stderr));
        Container { name }
    }

    fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker").arg("exec").arg(&self.name).args(args).stdin(Stdio::null()).output().unwrap()
    }

    pub(crate) fn pid(&self) -> String {
        let out =
            Command::new("docker").args(["inspect", "-f", "{{.State.Pid}}", &self.name]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.name]).stdout(Stdio::null()).status();
    }
}

#[test]
fn docker_containers_by_name_get_eth1_and_ping_each_other() {
    let host = Netns::new();
    let (a, b) = (Container::run(), Container::run());
    host.pipework(&["br1", &a.name, "192.168.1.10/24@192.168.1.1"]).ok();
    host.pipework(&["br1", &b.name, "192.168.1.11/24"]).ok();
    assert!(host.link(&format!("veth1pl{}", a.pid())).is_some(), "host end named after the container's pid");
    let addr = a.exec(&["ip", "-4", "addr", "show", "eth1"]);
    assert!(String::from_utf8_lossy(&addr.stdout).contains("192.168.1.10/24"), "{addr:?}");
    let route = a.exec(&["ip", "route"]);
    assert!(String::from_utf8_lossy(&route.stdout).contains("default via 192.168.1.1 dev eth1"), "{route:?}");
    let ping = a.exec(&["ping", "-c", "1", "-W", "3", "192.168.1.11"]);
    assert!(ping.status.success(), "{ping:?}");
}

#[test]
fn docker_container_by_id_prefix() {
    let host = Netns::new();
    let c = Container::run();
    let out = Command::new("docker").args(["inspect", "-f", "{{.Id}}", &c.name]).output().unwrap();
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    host.pipework(&["br1", &id[..12], "10.0.0.2/24"]).ok();
    assert!(host.link(&format!("veth1pl{}", c.pid())).is_some());
}

#[test]
fn docker_container_by_its_slashed_name_as_docker_prints_it() {
    let host = Netns::new();
    let c = Container::run();
    let out = Command::new("docker").args(["inspect", "-f", "{{.Name}}", &c.name]).output().unwrap();
    let slashed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(slashed, format!("/{}", c.name));
    host.pipework(&["br1", &slashed, "10.0.0.2/24"]).ok();
    assert!(host.link(&format!("veth1pl{}", c.pid())).is_some());
}

#[test]
fn unknown_and_stopped_containers_are_one_clear_line() {
    let host = Netns::new();
    let bogus = unique("pwt-none");
    let line = host.pipework(&["br1", &bogus, "10.0.0.2/24"]).failed();
    assert_eq!(line, format!("pipework: no such container: {bogus}"));
    let c = Container::run();
    let stop =
        Command::new("docker").args(["stop", "-t", "1", &c.name]).stdout(Stdio::null()).status().unwrap();
    assert!(stop.success());
    let line = host.pipework(&["br1", &c.name, "10.0.0.2/24"]).failed();
    assert!(line.contains("is not running"), "{line}");
    assert!(host.link("br1").is_none());
}
