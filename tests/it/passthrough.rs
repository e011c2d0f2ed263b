//! `pipework route|rule|tc GUEST ARGS...`: effects read back inside the guest, and
//! iproute2's own output, errors and exit statuses passed through untouched.

use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::util::{pipework_here, unique, Netns, Run, BIN};

/// A guest with `eth1` at 10.0.0.2/24 on a bridge in its own host namespace.
fn attached() -> (Netns, Netns) {
    let host = Netns::new();
    let guest = Netns::new();
    host.pipework(&["br1", &guest.guest(), "10.0.0.2/24"]).ok();
    (host, guest)
}

/// Run the binary's passthrough and the tool itself in the guest; both results.
fn both(guest: &Netns, sub: &str, tool: &str, tool_args: &[&str], args: &[&str]) -> (Run, Output) {
    let g = guest.guest();
    let mut ours = vec![sub, &g];
    ours.extend_from_slice(args);
    let mut theirs = tool_args.to_vec();
    theirs.extend_from_slice(args);
    (pipework_here(&ours), guest.run(tool, &theirs))
}

#[track_caller]
fn assert_same_as_tool(ours: &Run, theirs: &Output) {
    let theirs = Run::from(theirs.clone());
    assert_eq!(
        (ours.code, &ours.stdout, &ours.stderr),
        (theirs.code, &theirs.stdout, &theirs.stderr),
        "pipework (left) and the tool run directly (right) differ"
    );
}

fn find(v: &Value, pred: impl Fn(&Value) -> bool) -> Option<&Value> {
    v.as_array().unwrap().iter().find(|x| pred(x))
}

#[test]
fn route_add_and_replace_default_read_back_in_the_guest() {
    let (_host, guest) = attached();
    let g = guest.guest();
    pipework_here(&["route", &g, "add", "10.0.5.0/24", "via", "10.0.0.1"]).ok();
    pipework_here(&["route", &g, "replace", "default", "via", "10.0.0.78"]).ok();
    let routes = guest.ip_j(&["-4", "route", "show"]);
    let net =
        find(&routes, |r| r["dst"] == "10.0.5.0/24").unwrap_or_else(|| panic!("no 10.0.5.0/24 in {routes}"));
    assert_eq!((&net["gateway"], &net["dev"]), (&"10.0.0.1".into(), &"eth1".into()), "{net}");
    let def = find(&routes, |r| r["dst"] == "default").unwrap_or_else(|| panic!("no default in {routes}"));
    assert_eq!(def["gateway"], "10.0.0.78", "{def}");
    // The original leaves /var/run/netns/PID behind; we never write there.
    let leftover = std::path::Path::new("/var/run/netns").join(guest.pid().to_string());
    assert!(!leftover.exists(), "{leftover:?} was created");
}

#[test]
fn rule_add_read_back_in_the_guest() {
    let guest = Netns::new();
    pipework_here(&["rule", &guest.guest(), "add", "from", "172.19.0.2/32", "table", "1"]).ok();
    let rules = guest.ip_j(&["rule", "show"]);
    let rule = find(&rules, |r| r["src"] == "172.19.0.2").unwrap_or_else(|| panic!("no rule in {rules}"));
    assert_eq!(rule["table"], "1", "{rule}");
}

#[test]
fn tc_qdisc_add_read_back_in_the_guest() {
    let (_host, guest) = attached();
    let g = guest.guest();
    let args = [
        "qdisc", "add", "dev", "eth1", "root", "tbf", "rate", "1mbit", "burst", "32kbit", "latency", "400ms",
    ];
    let mut all = vec!["tc", &g];
    all.extend_from_slice(&args);
    pipework_here(&all).ok();
    let out = guest.sh("tc", &["-j", "qdisc", "show", "dev", "eth1"]);
    let qdiscs: Value = serde_json::from_str(&out).unwrap();
    let tbf = find(&qdiscs, |q| q["kind"] == "tbf").unwrap_or_else(|| panic!("no tbf in {qdiscs}"));
    assert_eq!(tbf["root"], true, "{tbf}");
    assert_eq!(tbf["options"]["rate"], 125000, "1mbit is 125000 bytes/s: {tbf}");
}

#[test]
fn output_errors_and_exit_status_are_the_tools_own() {
    let (_host, guest) = attached();
    let (ours, theirs) = both(&guest, "route", "ip", &["route"], &["show"]);
    assert_eq!(ours.code, 0, "{ours:?}");
    assert!(ours.stdout.contains("10.0.0.0/24 dev eth1"), "{ours:?}");
    assert_same_as_tool(&ours, &theirs);
    // An unreachable gateway: iproute2 says so and exits 2 (RTNETLINK error).
    let (ours, theirs) = both(&guest, "route", "ip", &["route"], &["add", "10.0.9.0/24", "via", "10.99.0.1"]);
    assert_eq!(ours.code, 2, "{ours:?}");
    assert_same_as_tool(&ours, &theirs);
    // A bad word: exit 1 from ip's own parser, with ip's usage complaint.
    let (ours, theirs) = both(&guest, "rule", "ip", &["rule"], &["add", "frm", "1.2.3.4"]);
    assert_ne!(ours.code, 0, "{ours:?}");
    assert_same_as_tool(&ours, &theirs);
    let (ours, theirs) = both(&guest, "tc", "tc", &[], &["qdisc", "add", "dev", "eth1", "root", "netem"]);
    assert_ne!(ours.code, 0, "this kernel has no netem: {ours:?}");
    assert_same_as_tool(&ours, &theirs);
}

#[test]
fn shell_characters_and_spaces_arrive_intact_and_are_never_run() {
    let (_host, guest) = attached();
    let marker = format!("/tmp/{}", unique("pwned-"));
    let nasty = format!("10.0.5.0/24; touch {marker} $(touch {marker}) `touch {marker}` | touch {marker}");
    let (ours, theirs) = both(&guest, "route", "ip", &["route"], &["add", &nasty, "via", "10.0.0.1"]);
    assert_ne!(ours.code, 0, "{ours:?}");
    assert!(ours.stderr.contains(&nasty), "ip must see the argument whole: {ours:?}");
    assert_same_as_tool(&ours, &theirs);
    let dev = format!("eth1 ; touch {marker}");
    let args =
        ["qdisc", "add", "dev", &dev, "root", "tbf", "rate", "1mbit", "burst", "32kbit", "latency", "400ms"];
    let (ours, theirs) = both(&guest, "tc", "tc", &[], &args);
    assert_ne!(ours.code, 0, "{ours:?}");
    assert_same_as_tool(&ours, &theirs);
    assert!(!std::path::Path::new(&marker).exists(), "{marker} was created: something ran a shell");
}

/// `ip` and `tc` truly absent: PATH holds none, and the sbin directories that
/// pipework also searches (where a non-login root shell's PATH may lack them) are
/// hidden under empty tmpfs mounts in a mount namespace of the test's own.
#[test]
fn a_missing_tool_is_one_line_naming_the_package_and_exit_127() {
    let guest = Netns::new();
    let empty = std::env::temp_dir().join(unique("pwt-nopath"));
    std::fs::create_dir_all(&empty).unwrap();
    // Absolute paths: PATH is empty for all of them.
    let hide = "for d in /usr/local/sbin /usr/sbin /sbin; do [ -d $d ] && /bin/mount -t tmpfs none $d; done; exec \"$@\"";
    for (sub, tool) in [("route", "ip"), ("rule", "ip"), ("tc", "tc")] {
        let out = Command::new("/usr/bin/unshare")
            .args([
                "-m",
                "--propagation",
                "private",
                "/bin/sh",
                "-c",
                hide,
                "sh",
                BIN,
                sub,
                &guest.guest(),
                "show",
            ])
            .env("PATH", &empty)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let run = Run::from(out);
        assert_eq!(run.code, 127, "{run:?}");
        assert_eq!(
            run.stderr,
            format!("pipework: cannot run {tool}: not found (install Debian package iproute2)\n"),
            "{run:?}"
        );
    }
    std::fs::remove_dir(&empty).unwrap();
}

#[test]
fn an_unknown_guest_is_one_line_and_exit_1() {
    let line = pipework_here(&["route", "pid:999999999", "show"]).failed();
    assert!(line.contains("no such process"), "{line}");
}

#[test]
fn an_existing_interface_named_like_a_passthrough_word_is_a_host_interface() {
    // The original looks for an interface named HOSTIF before the route*/rule*/tc* prefixes.
    let host = Netns::new();
    let guest = Netns::new();
    host.sh("ip", &["link", "add", "tc0", "type", "bridge"]);
    host.pipework(&["tc0", &guest.guest(), "10.0.0.2/24"]).ok();
    let veth = host.link(&format!("veth1pl{}", guest.pid())).expect("a veth on bridge tc0");
    assert_eq!(veth["master"], "tc0");
    assert!(guest.addrs("eth1").contains(&"10.0.0.2/24".to_string()));
}
