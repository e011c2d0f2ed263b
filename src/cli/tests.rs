//! Table tests for the grammar: every form of the behaviour doc, and the bad ones.

use super::*;
use crate::model::{DhcpClient, Family, IpSpec};

fn ok(line: &str) -> Invocation {
    match parse(line.split_whitespace()) {
        Ok(i) => i,
        Err(e) => panic!("{line:?} should parse, got {e:?}"),
    }
}

fn command(line: &str) -> AttachCommand {
    match ok(line) {
        Invocation::Attach(a) => *a,
        other => panic!("{line:?} should be an attach, got {other:?}"),
    }
}

fn attach(line: &str) -> Attach {
    command(line).req
}

fn invalid(line: &str) -> String {
    match parse(line.split_whitespace()) {
        Err(CliError::Invalid(e)) => format!("{e:#}"),
        other => panic!("{line:?} should be refused, got {other:?}"),
    }
}

#[test]
fn basic_bridge_attach() {
    let a = attach("br1 web1 192.168.1.10/24@192.168.1.1");
    assert_eq!(a.host_if, HostIf::Name("br1".parse().unwrap()));
    assert_eq!(a.guest, "web1");
    assert_eq!(a.family, Family::V4);
    assert_eq!(a.container_if, None);
    assert_eq!(a.local_if, None);
    assert!(!a.direct_phys);
    assert!(!command("br1 web1 192.168.1.10/24@192.168.1.1").opts.dry_run);
    assert_eq!(a.mac, None);
}

#[test]
fn options_in_the_originals_order_and_in_any_order() {
    let want = attach("br1 -i eth2 -l vethweb -a 4 web1 10.0.0.2/24");
    assert_eq!(want.container_if.as_ref().unwrap().as_str(), "eth2");
    assert_eq!(want.local_if.as_ref().unwrap().as_str(), "vethweb");
    for line in [
        "br1 -a 4 -l vethweb -i eth2 web1 10.0.0.2/24",
        "br1 web1 -i eth2 10.0.0.2/24 -l vethweb -a 4",
        "-i eth2 br1 web1 10.0.0.2/24 -a 4 -l vethweb",
    ] {
        assert_eq!(attach(line), want, "{line}");
    }
}

#[test]
fn direct_phys_and_mac_hostif() {
    let a = attach("--direct-phys eth1 -i container0 web1 0/0");
    assert!(a.direct_phys);
    assert_eq!(a.ip, IpSpec::Static { addr: None, gateway: None });
    let a = attach("--direct-phys mac:00:f3:15:4a:42:c8 -i container0 web1 0/0");
    assert_eq!(a.host_if, HostIf::Mac("00:f3:15:4a:42:c8".parse().unwrap()));
}

#[test]
fn mac_and_vlan_forms() {
    let a = attach("eth0 web1 10.1.1.234/24@10.1.1.254 26:2e:71:98:60:8f");
    assert_eq!(a.mac.unwrap().to_string(), "26:2e:71:98:60:8f");
    let a = attach("eth2 web1 10.5.0.2/24 @10");
    assert_eq!(a.vlan.unwrap().id().unwrap(), 10);
    assert_eq!(a.mac, None);
    let a = attach("ovsbr0 web1 10.5.0.2/24 26:2e:71:98:60:8f@10");
    assert_eq!(a.vlan.unwrap().as_str(), "10");
    let a = attach("br1 web1 dhcp U:myhost.foo.com");
    assert_eq!(a.mac.unwrap().to_string(), "02:72:6c:cd:9b:8d");
    let a = attach("ib0 web1 10.10.10.10/24 @8001");
    assert_eq!(a.vlan.unwrap().pkey().unwrap(), 0x8001);
}

#[test]
fn dhcp_forms_parse() {
    for (line, client, fg) in [
        ("br1 web1 dhcp", DhcpClient::DockerUdhcpc, false),
        ("br1 web1 udhcpc", DhcpClient::Udhcpc, false),
        ("br1 web1 udhcpc-f", DhcpClient::Udhcpc, true),
        ("br1 web1 dhclient", DhcpClient::Dhclient, false),
        ("br1 web1 dhclient-f", DhcpClient::Dhclient, true),
        ("br1 web1 dhcpcd", DhcpClient::Dhcpcd, false),
    ] {
        let a = attach(line);
        assert!(
            matches!(a.ip, IpSpec::Dhcp { client: c, foreground: f, .. } if c == client && f == fg),
            "{line}: {:?}",
            a.ip
        );
    }
    // Quoted options arrive as one argument and are split into words.
    let a = match parse(["br1", "web1", "udhcpc:-t 5"]) {
        Ok(Invocation::Attach(a)) => a,
        other => panic!("{other:?}"),
    };
    assert!(matches!(a.req.ip, IpSpec::Dhcp { ref options, .. } if options == &["-t", "5"]));
}

#[test]
fn ipv6_family_inferred_and_checked() {
    assert_eq!(attach("br1 web1 fd00::2/64@fd00::1").family, Family::V6);
    assert_eq!(attach("br1 -a 6 web1 fd00::2/64").family, Family::V6);
    assert_eq!(attach("br1 -a 6 web1 0/0").family, Family::V6);
    assert!(invalid("br1 -a 4 web1 fd00::2/64").contains("contradicts"));
    assert!(invalid("br1 -a 6 web1 10.0.0.2/24").contains("contradicts"));
    assert!(invalid("br1 -a 5 web1 10.0.0.2/24").contains("bad -a '5': expected 4 or 6"));
}

#[test]
fn passthrough_keeps_every_argument() {
    let line = ["route", "web1", "add", "10.0.5.0/24", "via", "192.168.2.1", "-i", "x; rm -rf /"];
    match parse(line) {
        Ok(Invocation::Passthrough(p)) => {
            assert_eq!(p.tool, Tool::Route);
            assert_eq!(p.guest, "web1");
            assert_eq!(p.args, line[2..]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        ok("rule web1 add from 172.19.0.2/32 table 1"),
        Invocation::Passthrough(Passthrough { tool: Tool::Rule, .. })
    ));
    assert!(matches!(
        ok("tc web1 qdisc add dev eth1 root tbf rate 1mbit burst 32kbit latency 400ms"),
        Invocation::Passthrough(Passthrough { tool: Tool::Tc, .. })
    ));
    // As the original: fewer than three words is the usage text, not a bare `ip route`.
    for line in ["route", "route web1", "tc web1"] {
        assert!(matches!(parse(line.split_whitespace()), Err(CliError::Syntax)), "{line:?}");
    }
    assert!(matches!(parse(["route", "web1", ""]), Err(CliError::Syntax)));
}

#[test]
fn wait_forms() {
    assert_eq!(ok("--wait"), Invocation::Wait { container_if: "eth1".parse().unwrap(), timeout: None });
    assert_eq!(
        ok("--wait -i eth2 --timeout 30"),
        Invocation::Wait { container_if: "eth2".parse().unwrap(), timeout: Some(Duration::from_secs(30)) }
    );
    assert!(invalid("--wait --timeout=-1").contains("--timeout"));
}

#[test]
fn timeout_bounds_a_dhcp_client_and_nothing_else() {
    assert_eq!(attach("--timeout 2.5 br1 web1 dhcp").dhcp_timeout, Some(Duration::from_millis(2500)));
    assert_eq!(attach("br1 web1 udhcpc --timeout 7").dhcp_timeout, Some(Duration::from_secs(7)));
    assert_eq!(attach("br1 web1 dhcp").dhcp_timeout, None);
    assert!(invalid("--timeout 5 br1 web1 10.0.0.2/24").contains("a DHCP IPSPEC or slaac only"));
    assert!(invalid("--timeout 5 br1 web1 0/0").contains("a DHCP IPSPEC or slaac only"));
    assert!(invalid("--timeout 0 br1 web1 dhcp").contains("expected seconds > 0"));
    assert!(invalid("--timeout 1e19 br1 web1 dhcp").contains("at most 86400"));
    assert!(matches!(parse(["--batch", "-", "--timeout", "5"]), Err(CliError::Clap(_))));
}

#[test]
fn missing_arguments_give_the_syntax_text() {
    for line in ["", "br1", "br1 web1", "br1 -i eth2 web1"] {
        assert!(matches!(parse(line.split_whitespace()), Err(CliError::Syntax)), "{line:?}");
    }
    // An empty IPSPEC (an unset shell variable) is a missing one.
    assert!(matches!(parse(["br1", "web1", ""]), Err(CliError::Syntax)));
    assert!(SYNTAX.starts_with("Syntax:\n"));
    assert_eq!(SYNTAX.lines().count(), 9);
}

#[test]
fn the_line_after_the_syntax_points_to_help_del_and_ls() {
    assert_eq!(SYNTAX_HINT.lines().count(), 1, "{SYNTAX_HINT}");
    for word in ["'pipework --help'", "'pipework del GUEST'", "'pipework ls'"] {
        assert!(SYNTAX_HINT.contains(word), "{word} not in {SYNTAX_HINT:?}");
    }
    // The original's block is left as it was, hint apart.
    assert!(!SYNTAX.contains("--help") && !SYNTAX.contains(" del ") && !SYNTAX.contains(" ls"));
}

#[test]
fn bad_values_are_refused_before_anything_runs() {
    assert_eq!(
        invalid("br1 web1 10.0.0.2"),
        "bad IPSPEC '10.0.0.2': expected ADDR/PREFIX[@GATEWAY], 0/0, or a DHCP client\n\
         Maybe you meant 10.0.0.2/24 ?"
    );
    assert!(invalid("br1 web1 10.0.0.256/24").starts_with("bad IPSPEC '10.0.0.256/24': expected "));
    assert!(invalid("br1 web1 10.0.0.2/24 zz:bb:cc:dd:ee:ff").starts_with("bad MAC 'zz:bb:cc:dd:ee:ff'"));
    assert!(invalid("br1 web1 10.0.0.2/24 @5000x").starts_with("bad VLAN '5000x': expected "));
    assert_eq!(
        invalid("mac:00:11 web1 10.0.0.2/24"),
        "bad HOSTIF 'mac:00:11': expected mac: and six hex bytes like mac:02:42:ac:11:00:02"
    );
    let form = "expected an interface name of 1 to 15 bytes, without '/', ':' or whitespace";
    assert_eq!(
        invalid("br1 -i a234567890123456 web1 10.0.0.2/24"),
        format!("bad -i 'a234567890123456': {form} (it is longer than 15 bytes)")
    );
    assert_eq!(invalid("br1 -l a/b web1 10.0.0.2/24"), format!("bad -l 'a/b': {form} (it contains '/')"));
    assert_eq!(invalid("br:1 web1 10.0.0.2/24"), format!("bad HOSTIF 'br:1': {form} (it contains ':')"));
    assert!(invalid("a234567890123456 web1 10.0.0.2/24").starts_with("bad HOSTIF 'a234567890123456': "));
    assert_eq!(
        invalid("br1 --macvlan-mode bridged web1 10.0.0.2/24"),
        "bad --macvlan-mode 'bridged': expected bridge, private, vepa or passthru"
    );
    assert_eq!(
        invalid("--timeout 100000 br1 web1 dhcp"),
        "bad --timeout '100000': expected seconds > 0, at most 86400"
    );
    match parse(["br1", "-i", "a b", "web1", "10.0.0.2/24"]) {
        Err(CliError::Invalid(e)) => {
            assert_eq!(format!("{e:#}"), format!("bad -i 'a b': {form} (it contains ' ')"))
        }
        other => panic!("{other:?}"),
    }
}

/// `-h` is the short form; `--help` ends with the examples; both come from one command.
#[test]
fn help_ends_with_examples_and_h_stays_short() {
    let render = |flag: &str| match parse([flag]) {
        Err(CliError::Clap(e)) => e.render().to_string(),
        other => panic!("{flag}: {other:?}"),
    };
    let (short, long) = (render("-h"), render("--help"));
    assert!(!short.contains("Examples:") && !short.contains("HOSTIF is"), "{short}");
    // 31 with --isolated and --host-shim, which belong in the short help (their
    // companion --host-shim-addr is in --help only).
    assert!(short.lines().count() < 32, "-h has {} lines:\n{short}", short.lines().count());
    let examples = long.split("\nExamples:\n").nth(1).unwrap_or_else(|| panic!("no Examples in:\n{long}"));
    for form in ["@192.168.1.1", " -i eth2 ", " 02:42:0a:00:00:02", "pipework eth0 ", " dhcp4", "--batch "] {
        assert!(examples.contains(form), "no example with {form:?}:\n{examples}");
    }
    // Every example's command line parses as the grammar it teaches.
    for (cmd, _) in docs::EXAMPLES {
        let words: Vec<&str> = cmd.split_whitespace().skip(1).collect();
        assert!(parse(words).is_ok(), "{cmd} does not parse");
    }
    // Each example is a command line, then what it does, indented: nothing after them.
    let lines: Vec<&str> = examples.trim_end().lines().collect();
    assert!(lines.iter().all(|l| l.starts_with("  pipework ") || l.starts_with("      ")), "{examples}");
    assert!(long.contains("Exit status:\n  0 "), "{long}");
}

#[test]
fn completions_and_man_page_come_from_the_same_command() {
    for shell in ["bash", "zsh", "fish"] {
        let script = String::from_utf8(docs::completion(shell).unwrap()).unwrap();
        assert!(script.contains("macvlan-mode") && script.contains("batch"), "{shell}: {script}");
    }
    assert!(docs::completion("tcsh").is_none());
    let man = docs::man_page();
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH \"EXIT STATUS\"", ".SH EXAMPLES"] {
        assert!(man.contains(section), "no {section} in the man page");
    }
    let examples = &man[man.find(".SH EXAMPLES").unwrap()..];
    for (cmd, _) in docs::EXAMPLES {
        assert!(examples.contains(&cmd.replace('-', "\\-")), "{cmd} not in the man page's EXAMPLES");
    }
    assert!(
        man.contains(&format!("commit {}", env!("PIPEWORK_VERSION_LINE").split("commit ").nth(1).unwrap()))
    );
}

#[test]
fn help_and_version_come_from_clap() {
    for flag in ["--help", "-h", "--version", "-V"] {
        match parse([flag]) {
            Err(CliError::Clap(e)) => assert_eq!(e.exit_code(), 0, "{flag}"),
            other => panic!("{flag}: {other:?}"),
        }
    }
    match parse(["--bogus"]) {
        Err(CliError::Clap(e)) => assert_ne!(e.exit_code(), 0),
        other => panic!("{other:?}"),
    }
}

#[test]
fn dry_run_flag() {
    assert!(command("--dry-run br1 web1 10.0.0.2/24").opts.dry_run);
}

#[test]
fn batch_forms() {
    let want = |file: Option<&str>, json, dry_run, verbose| {
        Invocation::Batch(Batch { file: file.map(PathBuf::from), json, dry_run, verbose })
    };
    assert_eq!(ok("--batch lines.txt"), want(Some("lines.txt"), false, false, false));
    assert_eq!(ok("--batch - --json"), want(None, true, false, false));
    assert_eq!(ok("--json --dry-run --batch=./-"), want(Some("./-"), true, true, false));
    assert_eq!(ok("-v --batch route.txt"), want(Some("route.txt"), false, false, true));
}

#[test]
fn json_works_for_an_attachment_and_words_del_ls_are_subcommands() {
    assert!(command("--json br1 web1 10.0.0.2/24").opts.json);
    assert!(matches!(parse(["del", "web1"]), Ok(Invocation::Del(..))));
    assert!(matches!(parse(["ls"]), Ok(Invocation::Ls(..))));
    // Only the exact words: `delta` is a host interface's name as ever.
    assert!(matches!(parse(["delta", "web1", "10.0.0.2/24"]), Ok(Invocation::Attach(_))));
}

#[test]
fn batch_takes_no_attachment_of_its_own() {
    for line in [
        "--batch f br1 web1 10.0.0.2/24",
        "--batch f --wait",
        "--batch f -i eth2",
        "--batch f --direct-phys",
        "--json --wait",
        "--batch",
    ] {
        match parse(line.split_whitespace()) {
            Err(CliError::Clap(e)) => assert_ne!(e.exit_code(), 0, "{line}"),
            other => panic!("{line:?} should be refused, got {other:?}"),
        }
    }
}

#[test]
fn an_empty_i_or_l_means_the_default_name_as_in_the_original() {
    let Ok(Invocation::Attach(a)) = parse(["br1", "-i", "", "-l", "", "web1", "10.0.0.2/24"]) else {
        panic!("an attach")
    };
    assert_eq!((a.req.container_if, a.req.local_if), (None, None));
}

#[test]
fn slaac_is_ipv6_and_takes_a_timeout() {
    assert_eq!(attach("br1 web1 slaac").ip, IpSpec::Slaac);
    assert!(
        invalid("br1 -a 4 web1 slaac").contains("-a 4 contradicts"),
        "{}",
        invalid("br1 -a 4 web1 slaac")
    );
    assert!(attach("br1 web1 slaac --timeout 5").dhcp_timeout.is_some());
    assert!(invalid("br1 web1 10.0.0.2/24 --timeout 5").contains("--timeout works with"));
}

#[test]
fn an_ipspec_list_keeps_its_first_element_in_ip_and_the_rest_in_more() {
    let a = attach("br1 web1 10.0.0.2/24@10.0.0.1,fd00::2/64@fd00::1");
    assert_eq!(
        a.ip,
        IpSpec::Static {
            addr: Some("10.0.0.2/24".parse().unwrap()),
            gateway: Some("10.0.0.1".parse().unwrap())
        }
    );
    assert_eq!(
        a.more,
        [IpSpec::Static {
            addr: Some("fd00::2/64".parse().unwrap()),
            gateway: Some("fd00::1".parse().unwrap())
        }]
    );
    assert_eq!(a.family, Family::V4);
    // One element: exactly the original's grammar, nothing in `more`.
    assert!(attach("br1 web1 10.0.0.2/24").more.is_empty());
    assert!(attach("br1 web1 udhcpc:-xa,b").more.is_empty());
    assert_eq!(
        attach("br1 web1 dhcp4,fd00::2/64").ip,
        IpSpec::Dhcp { client: DhcpClient::Builtin, family: Family::V4, foreground: false, options: vec![] }
    );
    assert_eq!(attach("br1 web1 10.0.0.2/24@10.0.0.1,slaac").more, [IpSpec::Slaac]);
    assert_eq!(attach("br1 -a 6 web1 fd00::2/64,fd01::2/64").family, Family::V6);
    // `--timeout` when any element waits for the network.
    assert!(attach("br1 web1 10.0.0.2/24,slaac --timeout 5").dhcp_timeout.is_some());
    assert!(invalid("br1 web1 10.0.0.2/24,fd00::2/64 --timeout 5").contains("--timeout works with"));
}

#[test]
fn a_bad_list_is_refused_before_anything_with_the_element_named() {
    assert_eq!(
        invalid("br1 web1 10.0.0.2/24,fd00::x/64"),
        "bad IPSPEC 'fd00::x/64': expected ADDR/PREFIX[@GATEWAY], 0/0, or a DHCP client \
         (ADDR 'fd00::x' is not an IP address)"
    );
    assert!(invalid("br1 web1 10.0.0.2/24,").starts_with("bad IPSPEC '': expected"));
    assert!(invalid("br1 web1 10.0.0.2/24@10.0.0.1,10.0.1.2/24@10.0.1.1").contains("two IPv4 gateways"));
    assert!(invalid("br1 web1 dhcp4,10.0.0.2/24").contains("both configure IPv4"));
    assert!(invalid("br1 web1 0/0,fd00::2/64").contains("0/0 cannot be part of a list"));
    assert_eq!(
        invalid("br1 -a 4 web1 10.0.0.2/24,fd00::2/64"),
        "-a 4 contradicts the IPv6 address fd00::2/64"
    );
    // The single-address texts are unchanged.
    assert_eq!(invalid("br1 -a 6 web1 10.0.0.2/24"), "-a 6 contradicts the IPv4 address 10.0.0.2/24");
}

#[test]
fn host_shim_and_isolated_flags() {
    let a = attach("--isolated br1 web1 10.0.0.2/24");
    assert!(a.isolated && a.host_shim.is_none());
    let shim = attach("--host-shim eth2 web1 10.0.0.2/24").host_shim.unwrap();
    assert_eq!((shim.name, shim.addr), (None, None));
    let shim =
        attach("--host-shim=hs0 --host-shim-addr 10.0.0.9/24 eth2 web1 10.0.0.2/24").host_shim.unwrap();
    assert_eq!((shim.name.unwrap().as_str(), shim.addr), ("hs0", Some("10.0.0.9/24".parse().unwrap())));
    // `--host-shim NAME` without `=` leaves NAME to the positional grammar.
    assert_eq!(attach("--host-shim eth2 web1 10.0.0.2/24").host_if.to_string(), "eth2");
    match parse(["--host-shim", "--host-shim-addr", "10.0.0.9", "eth2", "web1", "10.0.0.2/24"]) {
        Err(CliError::Invalid(e)) => {
            assert_eq!(
                e.to_string(),
                "bad --host-shim-addr '10.0.0.9': expected ADDR/PREFIX like 10.0.0.1/24"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse(["--host-shim-addr", "10.0.0.9/24", "eth2", "web1", "10.0.0.2/24"]),
        Err(CliError::Clap(_))
    ));
    assert!(matches!(parse(["--host-shim=a b", "eth2", "web1", "10.0.0.2/24"]), Err(CliError::Invalid(_))));
}
