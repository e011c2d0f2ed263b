//! Who reaches whom, with real Docker containers (Docker's defaults): `--isolated`
//! ports on one bridge, and `--host-shim` for a macvlan's host. Each test prints its
//! ping matrix (`cargo test --test it docker_reach -- --nocapture`).

use serde_json::Value;

use crate::docker::Container;
use crate::util::Netns;

/// A pinger and the addresses it tries.
pub(crate) trait Pinger {
    fn pings(&self, addr: &str) -> bool;
}

impl Pinger for Container {
    fn pings(&self, addr: &str) -> bool {
        self.exec(&["ping", "-c", "1", "-W", "2", addr]).status.success()
    }
}

/// The test's host namespace, as a pinger.
pub(crate) struct Host<'a>(pub &'a Netns);

impl Pinger for Host<'_> {
    fn pings(&self, addr: &str) -> bool {
        self.0.run("ping", &["-c", "1", "-W", "2", addr]).status.success()
    }
}

/// Each pinger against each target (`(label, address)`), printed as a table;
/// `true` where it reached.
pub(crate) fn matrix(title: &str, from: &[(&str, &dyn Pinger)], to: &[(&str, &str)]) -> Vec<Vec<bool>> {
    let mut out = Vec::new();
    let mut lines =
        vec![format!("{title}\n{:<12}{}", "from \\ to", cells(to.iter().map(|t| t.0.to_string())))];
    for (label, p) in from {
        let row: Vec<bool> = to.iter().map(|(l, addr)| l == label || p.pings(addr)).collect();
        let marks = to.iter().zip(&row).map(|((l, _), ok)| match (l == label, ok) {
            (true, _) => "-".to_string(),
            (false, true) => "yes".to_string(),
            (false, false) => "no".to_string(),
        });
        lines.push(format!("{label:<12}{}", cells(marks)));
        out.push(row);
    }
    println!("{}\n", lines.join("\n"));
    out
}

fn cells(c: impl Iterator<Item = String>) -> String {
    c.map(|c| format!("{c:<12}")).collect::<Vec<_>>().join("").trim_end().to_string()
}

#[test]
fn docker_isolated_ports_reach_the_others_and_the_bridge_but_not_each_other() {
    let host = Netns::new();
    let (a, b, c) = (Container::run(), Container::run(), Container::run());
    let dry = host.pipework(&["--dry-run", "--isolated", "br1", &a.name, "10.7.0.2/24"]).ok();
    assert!(dry.stdout.contains(&format!("bridge link set dev veth1pl{} isolated on", a.pid())), "{dry:?}");
    let json = host.pipework(&["--json", "--isolated", "br1", &a.name, "10.7.0.2/24"]).ok();
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["interfaces"][0]["isolated"], true, "{v}");
    host.pipework(&["--isolated", "br1", &b.name, "10.7.0.3/24"]).ok();
    host.pipework(&["br1", &c.name, "10.7.0.4/24"]).ok();
    host.sh("ip", &["addr", "add", "10.7.0.1/24", "dev", "br1"]);
    let port = host.ip_j(&["-d", "link", "show", "dev", &format!("veth1pl{}", a.pid())]);
    assert_eq!(port[0]["linkinfo"]["info_slave_data"]["isolated"], true, "{port}");

    let to = [("a (iso)", "10.7.0.2"), ("b (iso)", "10.7.0.3"), ("c", "10.7.0.4"), ("host br1", "10.7.0.1")];
    let from: [(&str, &dyn Pinger); 4] =
        [("a (iso)", &a), ("b (iso)", &b), ("c", &c), ("host br1", &Host(&host))];
    let m = matrix("--isolated: a and b isolated ports of br1, c not", &from, &to);
    assert_eq!(
        m,
        [
            [true, false, true, true],
            [false, true, true, true],
            [true, true, true, true],
            [true, true, true, true],
        ],
        "who reaches whom"
    );

    // `ls` and `check` show and compare it; `del` as usual.
    let ls = host.pipework(&["ls"]).ok();
    assert_eq!(ls.stdout.matches("bridge,isolated").count(), 2, "{ls:?}");
    let listed: Value = serde_json::from_str(&host.pipework(&["ls", "--json"]).ok().stdout).unwrap();
    let isolated = |name: &str| {
        let entries = listed["attachments"].as_array().unwrap();
        entries.iter().find(|e| e["container_name"] == name).map(|e| e["isolated"].clone())
    };
    assert_eq!((isolated(&a.name), isolated(&c.name)), (Some(true.into()), Some(false.into())));
    host.pipework(&["check", &a.name]).ok();
    host.sh(
        "ip",
        &["link", "set", "dev", &format!("veth1pl{}", a.pid()), "type", "bridge_slave", "isolated", "off"],
    );
    let e = host.pipework(&["check", &a.name]).failed();
    assert!(e.ends_with("is no longer an isolated port"), "{e}");
    for g in [&a, &b, &c] {
        host.pipework(&["del", &g.name]).ok();
    }
}

#[test]
fn docker_isolated_on_a_nic_is_refused_before_any_change() {
    let host = Netns::new();
    let c = Container::run();
    host.sh("ip", &["link", "add", "nic0", "type", "veth", "peer", "name", "nic0p"]);
    let before = host.snapshot();
    let e = host.pipework(&["--isolated", "nic0", &c.name, "10.7.1.2/24"]).failed();
    assert_eq!(
        e,
        "pipework: --isolated works on a Linux bridge attach only, not on nic0, a physical (macvlan) attach"
    );
    crate::util::assert_same("host", &before, &host.snapshot());
}
