//! `dhcp4:dns` (issue 28): the lease's name servers and search domains written into a
//! Docker container's own /etc/resolv.conf (the file Docker bind-mounts), put back
//! by `del`; without the option, or for a guest sharing the host's mount namespace,
//! no resolv.conf is touched. Against Debian's dnsmasq.

use std::process::{Command, Output, Stdio};

use crate::dhcp::Dnsmasq;
use crate::util::{unique, Netns};

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).stdin(Stdio::null()).output().expect("docker (scripts/docker-up.sh)")
}

/// A container with Docker's defaults, removed on drop.
struct Container(String);

impl Container {
    fn run() -> Container {
        let name = unique("pwt-dhcp-dns");
        let out = docker(&["run", "-d", "--init", "--name", &name, "busybox", "sleep", "600"]);
        assert!(out.status.success(), "docker run: {}", String::from_utf8_lossy(&out.stderr));
        Container(name)
    }

    fn resolv_conf(&self) -> String {
        let out = docker(&["exec", &self.0, "cat", "/etc/resolv.conf"]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).stdout(Stdio::null()).status();
    }
}

fn server(host: &Netns, opts: &str) -> (Dnsmasq, std::path::PathBuf) {
    let path = std::env::temp_dir().join(unique("pwt-dhcp-dns-opts"));
    std::fs::write(&path, opts).unwrap();
    (Dnsmasq::start_with_options(host, &path), path)
}

#[test]
fn dns_option_writes_the_containers_resolv_conf_and_del_puts_it_back() {
    let host = Netns::new();
    let (_server, opts) = server(&host, "3,10.77.0.1\n6,10.77.0.53,10.77.0.54\n119,example.test,corp.test\n");
    let hosts_own = std::fs::read("/etc/resolv.conf").unwrap();
    let c = Container::run();
    let original = c.resolv_conf();
    let run = host.pipework(&["br1", &c.0, "dhcp4:dns"]).ok();
    assert!(!run.stderr.contains("warning"), "{run:?}");
    let written = c.resolv_conf();
    assert!(written.contains("nameserver 10.77.0.53\nnameserver 10.77.0.54\n"), "{written}");
    assert!(written.contains("search example.test corp.test\n"), "{written}");
    assert_eq!(hosts_own, std::fs::read("/etc/resolv.conf").unwrap(), "the host's resolv.conf changed");
    let del = host.pipework(&["del", &c.0]).ok();
    assert_eq!(c.resolv_conf(), original, "del put the container's resolv.conf back: {del:?}");

    // Without the option the file is left alone (the default).
    host.pipework(&["br1", &c.0, "dhcp4"]).ok();
    assert_eq!(c.resolv_conf(), original);
    host.pipework(&["del", &c.0]).ok();
    let _ = std::fs::remove_file(opts);
}

/// Too many name servers and search domains: bounded (3 servers, 6 domains), one
/// warning for each option. A guest sharing the host's mount namespace: nothing
/// written, one warning.
#[test]
fn dns_lists_are_bounded_and_a_shared_resolv_conf_is_never_written() {
    let host = Netns::new();
    let servers: Vec<String> = (10..30).map(|i| format!("10.77.0.{i}")).collect();
    let domains: Vec<String> = (0..12).map(|i| format!("d{i}.example.test")).collect();
    let (_server, opts) =
        server(&host, &format!("3,10.77.0.1\n6,{}\n119,{}\n", servers.join(","), domains.join(",")));
    let c = Container::run();
    let run = host.pipework(&["br1", &c.0, "dhcp4:dns"]).ok();
    let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 2, "{run:?}");
    assert!(warnings.iter().any(|w| w.contains("option 6 has 20 name servers")), "{run:?}");
    assert!(warnings.iter().any(|w| w.contains("option 119 has 12 search domains")), "{run:?}");
    let written = c.resolv_conf();
    assert_eq!(written.matches("nameserver ").count(), 3, "{written}");
    assert!(written.contains(&format!("search {}\n", domains[..6].join(" "))), "{written}");
    host.pipework(&["del", &c.0]).ok();

    let hosts_own = std::fs::read("/etc/resolv.conf").unwrap();
    let guest = Netns::new();
    let run = host.pipework(&["br1", &guest.guest(), "dhcp4:dns"]).ok();
    assert!(run.stderr.contains("shares the host's /etc/resolv.conf"), "{run:?}");
    assert_eq!(hosts_own, std::fs::read("/etc/resolv.conf").unwrap(), "the host's resolv.conf changed");
    let _ = std::fs::remove_file(opts);
}

/// `dhcp4-f:dns`: a renewal whose name servers changed writes them again (the
/// keeper's, T1 = 1 s); `del` still puts the container's own file back.
#[test]
fn a_keepers_renewal_with_new_name_servers_writes_them_again() {
    let host = Netns::new();
    let (server, opts) = server(&host, "3,10.77.0.1\n6,10.77.0.53\n119,example.test\n");
    let c = Container::run();
    let original = c.resolv_conf();
    host.pipework(&["br1", &c.0, "dhcp4-f:dns renew=1"]).ok();
    assert!(c.resolv_conf().contains("nameserver 10.77.0.53\nsearch example.test\n"), "{}", c.resolv_conf());
    std::fs::write(&opts, "3,10.77.0.1\n6,10.77.0.63,10.77.0.64\n119,corp.test\n").unwrap();
    server.reload();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let renewed = "nameserver 10.77.0.63\nnameserver 10.77.0.64\nsearch corp.test\n";
    while !c.resolv_conf().contains(renewed) {
        assert!(
            std::time::Instant::now() < deadline,
            "no renewal wrote the new servers:\n{}",
            c.resolv_conf()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let del = host.pipework(&["del", &c.0]).ok();
    assert_eq!(c.resolv_conf(), original, "del put the container's resolv.conf back: {del:?}");
    let _ = std::fs::remove_file(opts);
}
