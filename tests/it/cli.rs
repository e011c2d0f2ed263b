//! The binary's front door: help, version, usage and bad values, all before any change.

use crate::util::{assert_same, pipework_here, Netns};

#[test]
fn help_and_version_exit_0() {
    let r = pipework_here(&["--help"]).ok();
    assert!(r.stdout.contains("HOSTIF") && r.stdout.contains("--wait"), "{}", r.stdout);
    let r = pipework_here(&["--version"]).ok();
    assert!(r.stdout.starts_with("pipework "), "{}", r.stdout);
}

/// What `pipework` alone prints: the original's `Syntax:` block byte for byte
/// (scripts may read it), then one line of ours.
const SYNTAX_AND_HINT: &str = "\
Syntax:
pipework [--direct-phys] <hostinterface> [-i containerinterface] [-l localinterfacename] [-a addressfamily] <guest> <ipaddr>/<subnet>[@default_gateway] [macaddr][@vlan]
pipework [--direct-phys] <hostinterface> [-i containerinterface] [-l localinterfacename] <guest> dhcp [macaddr][@vlan]
pipework mac:<hostinterface_macaddress> [-i containerinterface] [-l localinterfacename] [-a addressfamily] <guest> <ipaddr>/<subnet>[@default_gateway] [macaddr][@vlan]
pipework mac:<hostinterface_macaddress> [-i containerinterface] [-l localinterfacename] <guest> dhcp [macaddr][@vlan]
pipework route <guest> <route_command>
pipework rule <guest> <rule_command>
pipework tc <guest> <tc_command>
pipework --wait [-i containerinterface]
Run 'pipework --help' for every form, the options and examples; 'pipework del GUEST' takes an attachment off, 'pipework ls' lists them.
";

#[test]
fn missing_arguments_print_the_syntax_on_stdout_and_exit_1() {
    for args in [&[][..], &["br1"][..], &["br1", "web1"][..]] {
        let r = pipework_here(args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert_eq!(r.stdout, SYNTAX_AND_HINT, "{args:?}: {r:?}");
        assert_eq!(r.stderr, "", "{args:?}: {r:?}");
    }
}

#[test]
fn a_passthrough_without_arguments_or_an_empty_ipspec_prints_the_syntax() {
    for args in [&["route", "web1"][..], &["tc", "web1"][..], &["rule"][..], &["br1", "web1", ""][..]] {
        let r = pipework_here(args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(r.stdout.starts_with("Syntax:\n"), "{args:?}: {r:?}");
    }
}

#[test]
fn a_guest_in_the_hosts_own_namespace_is_refused_and_nothing_changes() {
    // What a `--net=host` container, or pid:1 on a real host, would be.
    let host = Netns::new();
    let h = host.snapshot();
    let line = host.pipework(&["br1", &host.guest(), "10.0.0.2/24@10.0.0.1"]).failed();
    assert_eq!(
        line,
        format!(
            "pipework: guest {} is in the host's own network namespace: nothing to attach it to",
            host.guest()
        )
    );
    assert_same("host", &h, &host.snapshot());
}

#[test]
fn missing_netmask_names_ipspec_and_keeps_the_originals_hint() {
    let r = pipework_here(&["br1", "web1", "10.0.0.2"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "pipework: bad IPSPEC '10.0.0.2': expected ADDR/PREFIX[@GATEWAY], 0/0, or a DHCP client\n\
         Maybe you meant 10.0.0.2/24 ?\n"
    );
}

#[test]
fn version_names_the_commit_it_was_built_from_or_when_without_git() {
    let line = pipework_here(&["--version"]).ok().stdout;
    let rest = line.trim_end().strip_prefix(&format!("pipework {} (", env!("CARGO_PKG_VERSION")));
    let rest = rest.and_then(|r| r.strip_suffix(')')).unwrap_or_else(|| panic!("{line:?}"));
    // Built in a git checkout (this test's case, unless told otherwise): that HEAD.
    let head = std::process::Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match (head, std::env::var("PIPEWORK_GIT_COMMIT")) {
        (_, Ok(c)) if !c.is_empty() => assert_eq!(rest, format!("commit {c}")),
        (Some(h), _) => assert_eq!(rest, format!("commit {h}")),
        // No git: when it was built, `built YYYY-MM-DD HH:MM UTC, ...`, never `unknown`.
        (None, _) => {
            let when =
                rest.strip_prefix("built ").and_then(|r| r.strip_suffix(" UTC, not from a git checkout"));
            let when = when.unwrap_or_else(|| panic!("{line:?}"));
            assert!(when.len() == 16 && when.as_bytes()[10] == b' ', "{line:?}");
        }
    }
}

#[test]
fn help_ends_with_examples_and_bad_values_show_the_expected_form() {
    let help = pipework_here(&["--help"]).ok().stdout;
    let tail = help.rsplit("\nExamples:\n").next().unwrap();
    assert!(tail.starts_with("  pipework br1 web1 192.168.1.10/24@192.168.1.1\n"), "{help}");
    let short = pipework_here(&["-h"]).ok().stdout;
    assert!(!short.contains("Examples:") && short.contains("pipework --help"), "{short}");
    for (args, line) in [
        (&["br1", "web1", "10.0.0.2/33"][..], "pipework: bad IPSPEC '10.0.0.2/33': expected ADDR/PREFIX[@GATEWAY], 0/0, or a DHCP client (PREFIX '33' is not a number from 0 to 32)"),
        (&["br1", "web1", "10.0.0.2/24", "02:42"], "pipework: bad MAC '02:42': expected six hex bytes like 02:42:ac:11:00:02, or U:TEXT"),
        (&["br1", "-a", "5", "web1", "10.0.0.2/24"], "pipework: bad -a '5': expected 4 or 6"),
    ] {
        assert_eq!(pipework_here(args).failed(), line, "{args:?}");
    }
}

#[test]
fn completions_print_a_script_for_each_shell() {
    for (shell, start) in
        [("bash", "_pipework() {"), ("zsh", "#compdef pipework"), ("fish", "complete -c pipework")]
    {
        let out = pipework_here(&["completions", shell]).ok().stdout;
        assert!(out.contains(start) && out.contains("macvlan-mode"), "{shell}:\n{out}");
    }
    assert_eq!(
        pipework_here(&["completions", "tcsh"]).failed(),
        "pipework: bad SHELL 'tcsh': expected bash, zsh, fish, elvish or powershell"
    );
    let man = pipework_here(&["--man-page"]).ok().stdout;
    assert!(man.starts_with(".ie") && man.contains(".SH EXAMPLES"), "{man}");
}

#[test]
fn a_host_interface_named_completions_wins_over_the_word() {
    // As for route/rule/tc: the original would take the word as HOSTIF.
    let host = Netns::new();
    host.sh("ip", &["link", "add", "completions", "type", "bridge"]);
    let r = host.pipework(&["completions", "bash"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.starts_with("Syntax:\n"), "{r:?}");
    // And an attachment to it is one.
    let guest = Netns::new();
    host.pipework(&["completions", &guest.guest(), "10.0.0.2/24"]).ok();
    assert!(guest.addrs("eth1").contains(&"10.0.0.2/24".to_string()), "{:?}", guest.addrs("eth1"));
}

#[test]
fn bad_values_exit_1_with_one_line_and_change_nothing() {
    let host = Netns::new();
    let guest = Netns::new();
    let (h, g) = (host.snapshot(), guest.snapshot());
    let gs = guest.guest();
    for args in [
        vec!["br1", &gs, "10.0.0.256/24"],
        vec!["br1", &gs, "10.0.0.2/24", "zz:00:00:00:00:01"],
        vec!["br1", &gs, "10.0.0.2/24", "@abcde"],
        vec!["br1", "-i", "a234567890123456", &gs, "10.0.0.2/24"],
        vec!["br1", "-l", "a/b", &gs, "10.0.0.2/24"],
        vec!["br1", "-a", "5", &gs, "10.0.0.2/24"],
        vec!["br1", "-a", "4", &gs, "fd00::2/64"],
        vec!["--bogus", "br1", &gs, "10.0.0.2/24"],
    ] {
        let r = host.pipework(&args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(r.stderr.starts_with("pipework: ") || r.stderr.starts_with("error: "), "{args:?}: {r:?}");
    }
    assert_eq!(h, host.snapshot());
    assert_eq!(g, guest.snapshot());
}

#[test]
fn unknown_host_interface_and_unmatched_mac() {
    let host = Netns::new();
    let guest = Netns::new();
    let line = host.pipework(&["foo1", &guest.guest(), "10.0.0.2/24"]).failed();
    assert_eq!(line, "pipework: I do not know how to setup interface foo1.");
    let line = host.pipework(&["mac:02:00:00:00:00:42", &guest.guest(), "10.0.0.2/24"]).failed();
    assert_eq!(
        line,
        "pipework: Mac address 02:00:00:00:00:42 specified for interface but no host interface matched."
    );
}

#[test]
fn hostif_refusals_come_before_the_guest_is_looked_for() {
    // As in the original, which decides what HOSTIF is before it asks Docker: with
    // both wrong, the HOSTIF error is the one said.
    let host = Netns::new();
    let line = host.pipework(&["foo1", "no-such-container-xyz", "10.0.0.2/24"]).failed();
    assert_eq!(line, "pipework: I do not know how to setup interface foo1.");
    // The original refuses every `@VLAN` on a Linux bridge (`VLAN configuration
    // currently unsupported for Linux bridge.`); we filter VLANs there, and refuse
    // an id no bridge carries, as early.
    let line = host.pipework(&["br1", "no-such-container-xyz", "10.0.0.2/24", "@4095"]).failed();
    assert_eq!(
        line,
        "pipework: invalid VLAN id \"4095\" (expected a number from 1 to 4094 for a Linux bridge)"
    );
    assert!(host.link("br1").is_none());
}

#[test]
fn missing_guest_process_is_one_clear_line() {
    let host = Netns::new();
    let line = host.pipework(&["br1", "pid:999999999", "10.0.0.2/24"]).failed();
    assert!(line.contains("no such process: 999999999"), "{line}");
    assert!(host.link("br1").is_none(), "nothing may be created for a missing guest");
}

#[test]
fn dry_run_prints_the_steps_and_changes_nothing() {
    let host = Netns::new();
    let guest = Netns::new();
    let (h, g) = (host.snapshot(), guest.snapshot());
    let r = host.pipework(&["--dry-run", "br1", &guest.guest(), "10.0.0.2/24@10.0.0.1"]).ok();
    let want = format!(
        "ip link add br1 up type bridge\n\
         ip link add veth1pl{pid} mtu 1500 master br1 up type veth peer name eth1 netns GUEST mtu 1500\n\
         ip link set veth1pl{pid} alias 'pipework:v1 guest=pid:{pid} ns={ns} if=eth1 host=br1 mode=bridge'\n\
         guest: ip addr add 10.0.0.2/24 broadcast 10.0.0.255 dev eth1\n\
         guest: ip link set eth1 up\n\
         guest: ip route replace default via 10.0.0.1 dev eth1\n",
        pid = guest.pid(),
        ns = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(guest.path()).unwrap())
    );
    assert_eq!(r.stdout, want);
    assert_eq!(h, host.snapshot());
    assert_eq!(g, guest.snapshot());
}

/// Regression (issue 11): `--batch --json > /dev/full` exited 0 with nothing
/// written. Output that cannot be written fails the run; so does a stderr that is gone
/// when there was something to say there.
#[test]
fn output_that_cannot_be_written_fails_the_run() {
    let host = Netns::new();
    let guest = Netns::new();
    host.sh("ip", &["link", "add", "brfull", "type", "bridge"]);
    let full = || std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let run = |args: &[&str], stdin: &str, to_stdout: bool| {
        let mut cmd = host.pipework_command(args);
        cmd.stdin(std::process::Stdio::piped());
        if to_stdout {
            cmd.stdout(full());
        } else {
            cmd.stderr(full());
        }
        let mut child = cmd.spawn().unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), stdin.as_bytes()).unwrap();
        child.wait().unwrap().code()
    };
    let line = format!("brfull {} 10.0.0.2/24\n", guest.guest());
    assert_eq!(
        run(&["--batch", "-", "--json", "--dry-run"], &line, true),
        Some(1),
        "--batch --json > /dev/full"
    );
    assert_eq!(
        run(&["brfull", &guest.guest(), "10.0.0.2/24", "--dry-run"], "", true),
        Some(1),
        "--dry-run > /dev/full"
    );
    assert_eq!(
        run(&["brfull", &guest.guest(), "10.0.0.2/24", "--verbose"], "", false),
        Some(1),
        "--verbose 2> /dev/full"
    );
}

/// Regression (issue 11): `std::env::args` panicked (exit 101) on an argument that
/// is not UTF-8.
#[test]
fn a_non_utf8_argument_is_one_line_and_exit_1_not_a_panic() {
    use std::os::unix::ffi::OsStrExt;
    let out = std::process::Command::new(crate::util::BIN)
        .arg(std::ffi::OsStr::from_bytes(b"\xff"))
        .args(["pid:1", "10.9.0.2/24"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let r = crate::util::Run::from(out);
    assert_eq!(r.failed(), r#"pipework: argument 1 is not valid UTF-8: "\xFF""#);
}

/// Regression (issue 11): a FIFO given as GUEST was opened for reading, which blocks
/// until a writer comes (for ever), and SIGTERM did not end it.
#[test]
fn a_fifo_as_guest_fails_at_once_instead_of_hanging() {
    let host = Netns::new();
    let fifo = std::env::temp_dir().join(crate::util::unique("pipework-fifo-"));
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR).unwrap();
    let path = fifo.to_str().unwrap().to_string();
    let mut child = host.spawn_pipework(&["br1", &path, "10.9.0.2/24"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = std::fs::remove_file(&fifo);
            panic!("pipework still waits on the FIFO after 10 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = std::fs::remove_file(&fifo);
    let line = crate::util::Run::from(child.wait_with_output().unwrap()).failed();
    assert_eq!(line, format!("pipework: {path} is not a network namespace"));
}
