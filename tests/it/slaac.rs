//! `slaac` end to end: Debian's dnsmasq as the router (`--enable-ra`, in a namespace
//! of its own on the test's bridge), and guests that autoconfigure from it: a plain
//! namespace guest and a real Docker container (IPv6 off inside, as Docker leaves it).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::docker::Container;
use crate::util::{assert_same, unique, Netns};

/// The prefix the router advertises.
pub(crate) const PREFIX: &str = "fd00:5a::";

/// dnsmasq sending router advertisements for PREFIX/64 on `bridge` in `host`.
pub(crate) struct Router {
    _ns: Netns,
    child: Child,
    dir: PathBuf,
}

impl Router {
    pub(crate) fn start(host: &Netns, bridge: &str) -> Router {
        let ns = Netns::new();
        host.pipework(&[bridge, &ns.guest(), &format!("{PREFIX}1/64")]).ok();
        // An advertisement names a default router only with an explicit lifetime, and
        // only when dnsmasq's own namespace has a default route (measured).
        ns.sh("ip", &["-6", "route", "add", "default", "dev", "eth1"]);
        let dir = std::env::temp_dir().join(unique("pwt-ra"));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net={}", ns.path()))
            .args([
                "dnsmasq",
                "--no-daemon",
                "--port=0",
                "--bind-interfaces",
                "--interface=eth1",
                "--enable-ra",
            ])
            .arg(format!("--dhcp-range={PREFIX},ra-only,64"))
            .args(["--ra-param=eth1,10,600", "--no-resolv", "--no-hosts"])
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .arg(format!("--log-facility={}", dir.join("log").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (Debian's dnsmasq-base)");
        let router = Router { _ns: ns, child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !router.log().contains("router advertisement enabled") {
            assert!(Instant::now() < deadline, "dnsmasq did not start:\n{}", router.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        router
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The autoconfigured global address on eth1, from `ip -6 -o addr` output.
pub(crate) fn autoconfigured(ip_addr: &str) -> Option<String> {
    ip_addr
        .split_whitespace()
        .find(|w| w.starts_with(PREFIX))
        .map(|w| w.split('/').next().unwrap().to_string())
}

#[test]
fn a_guest_autoconfigures_from_the_routers_advertisement_and_gets_its_default_route() {
    let host = Netns::new();
    host.sh("ip", &["link", "add", "brra", "type", "bridge"]);
    host.sh("ip", &["link", "set", "brra", "up"]);
    let router = Router::start(&host, "brra");
    let guest = Netns::new();
    guest.ipv6_off_as_docker_does();
    let dry = host.pipework(&["brra", &guest.guest(), "slaac", "--dry-run"]).ok();
    assert!(dry.stdout.contains("accept_ra=1") && dry.stdout.contains("disable_ipv6=0"), "{}", dry.stdout);
    host.pipework(&["brra", &guest.guest(), "slaac"]).ok();
    // When pipework returns, both are there already: that is what it waited for.
    let addrs = guest.sh("ip", &["-6", "-o", "addr", "show", "dev", "eth1", "scope", "global", "-tentative"]);
    let addr =
        autoconfigured(&addrs).unwrap_or_else(|| panic!("no {PREFIX} address: {addrs}\n{}", router.log()));
    let routes = guest.sh("ip", &["-6", "route", "show", "default"]);
    assert!(routes.contains("dev eth1") && routes.contains("proto ra"), "{routes}");
    // Only eth1 changed: the guest's own defaults stay off.
    assert_eq!(guest.sh("sysctl", &["-n", "net.ipv6.conf.default.disable_ipv6"]).trim(), "1");
    // The address works: the router reaches it.
    let ping = guest.run("ping", &["-6", "-c", "1", "-W", "2", &format!("{PREFIX}1")]);
    assert!(ping.status.success(), "ping from {addr}: {ping:?}");
    // Safe to re-run: the autoconfigured address and the router's route are in place.
    let again = host.pipework(&["--json", "brra", &guest.guest(), "slaac"]).ok().stdout;
    assert!(again.contains("\"changed\":false"), "{again}");
}

#[test]
fn without_a_router_slaac_times_out_and_everything_is_undone() {
    let host = Netns::new();
    let guest = Netns::new();
    let (h, g) = (host.snapshot(), guest.snapshot());
    let run = host.pipework(&["brnora", &guest.guest(), "slaac", "--timeout", "2"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("no router advertisement gave eth1 an address and a default route within 2 s"),
        "{run:?}"
    );
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
}

#[test]
fn a_docker_container_autoconfigures_with_ipv6_on_for_eth1_only() {
    let host = Netns::new();
    host.sh("ip", &["link", "add", "brrad", "type", "bridge"]);
    host.sh("ip", &["link", "set", "brrad", "up"]);
    let router = Router::start(&host, "brrad");
    let c = Container::run();
    host.pipework(&["brrad", &c.name, "slaac"]).ok();
    let addrs = c.sh(&["ip", "-6", "-o", "addr", "show", "dev", "eth1"]);
    assert!(autoconfigured(&addrs).is_some(), "no {PREFIX} address: {addrs}\n{}", router.log());
    assert!(c.sh(&["ip", "-6", "route"]).contains("default via fe80:"), "no default route");
    assert_eq!(
        (c.ipv6_disabled("eth1"), c.ipv6_disabled("all"), c.ipv6_disabled("default")),
        ("0".into(), "1".into(), "1".into())
    );
}
