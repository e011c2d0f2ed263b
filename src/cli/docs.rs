//! The documentation made from the clap definition: the long help's grammar, exit
//! statuses and examples, the man page (`clap_mangen`) and shell completions
//! (`clap_complete`). One source for all three, so they cannot drift apart.

use std::io::Write;
use std::process::ExitCode;

use clap_mangen::roff::{bold, roman, Roff};

/// The paragraphs after the options in `--help`, and the man page's ARGUMENTS.
pub const GRAMMAR: &[&str] = &[
    "HOSTIF is a Linux bridge (a missing br* one is created), an Open vSwitch bridge (ovs* \
     likewise), a NIC (a macvlan on it; --direct-phys moves the NIC itself), an InfiniBand \
     NIC (IPoIB), dummy*, or mac:HOSTMAC for the interface with that MAC.",
    "GUEST is a Docker container (name, /name, ID or ID prefix), an LXC container, pid:N (the \
     network namespace of process N), or a network-namespace file given by a path with a \
     directory, such as /proc/N/ns/net or /var/run/netns/NAME.",
    "IPSPEC is ADDR/PREFIX[@GATEWAY], 0/0 (no address), or a DHCP client: dhcp[:OPTS], \
     udhcpc[-f][:OPTS], dhclient[-f][:OPTS], dhcpcd[:OPTS], dhcp4[-f][:OPTS] (built in); for \
     DHCPv6 dhcp6[-f][:OPTS] (built in), dhclient6[-f][:OPTS], dhcpcd6[:OPTS]; or \
     slaac (IPv6 from the network's router advertisements). A comma-separated list \
     gives one attach both families, or several addresses: 10.0.0.2/24@10.0.0.1,fd00::2/64@fd00::1, \
     10.0.0.2/24,slaac, fd00::2/64,dhcp4 or 10.0.0.2/24,dhcp6 (at most one gateway and one DHCP form or slaac \
     per family; a DHCP form with :OPTS last).",
    "The last argument is [MAC][@VLAN]: a MAC address or U:TEXT (a stable MAC derived from \
     TEXT), optionally followed by @VLAN.",
    "pipework del [HOSTIF] GUEST [-i CONTAINER_IF] removes an attachment pipework made (it \
     refuses any other interface; nothing there is success); --prune-bridge also removes \
     its bridge when no port is left; a default route the attach replaced is put back; a \
     DHCP client a -f form left running is stopped (dhcp4-f releases its lease); a \
     --direct-phys NIC goes back to the host as it was. pipework ls [GUEST] lists the \
     attachments (VLAN, DHCP client), stale when their guest is gone. pipework check \
     GUEST [-i CONTAINER_IF] exits 0 when the attachment is as it was made (its mark; host end up and on its bridge or Open vSwitch \
     port; CONTAINER_IF up; the addresses and default route its record holds), else 1 with \
     one line per difference. pipework gc [--dry-run] removes what guests that are gone \
     left behind (their records and DHCP clients, veth host ends, Open vSwitch ports) and \
     lists it. --json \
     gives one JSON document on stdout.",
    "pipework watch [--json] [--key KEY] [--trust-images] follows Docker's events (Engine API socket) and \
     applies the attachments containers declare each time they start: labels \
     pipework.N=HOSTIF [opts] IPSPEC [MAC][@VLAN] (the container is GUEST; N orders them) \
     and, as the dreamcat4/pipework image reads them, environment variables whose name holds \
     pipework_cmd, each a whole command line, with @CONTAINER_NAME@, @CONTAINER_ID@, \
     @HOSTNAME@, @INSTANCE@ and @COMPOSE_PROJECT_NAME@ expanded. When one dies, gc removes \
     what it left. It reconciles at start and after every reconnection; with --key (or \
     $pipework_key) it serves only containers with pipework_key=KEY or the label \
     pipework.key=KEY. A declaration the container only inherited from its image (a label \
     or variable with the image's name and value: Docker copies them into every container \
     made from it) is not applied, and one line says so, unless --trust-images; when the \
     image cannot be inspected, none is. One line per action on stderr (--json: JSON lines); SIGTERM ends it, \
     the attachments stay.",
    "Each attach leaves a record of what it made in $PIPEWORK_RUN_DIR/attachments \
     (default /run/pipework/attachments); del removes it. Without it, check says what it \
     cannot compare, and del and ls work from the kernel's marks alone.",
    "SIGINT, SIGTERM or SIGHUP during an attachment undo it, then pipework dies of the signal.",
    "With CNI_COMMAND set, pipework is a CNI plugin (spec 1.1.0; \"type\": \"pipework\" in a \
     network configuration, the reference bridge plugin's keys): the configuration on stdin, \
     the result or error as JSON on stdout, no arguments.",
];

/// Exit statuses: (status, meaning).
pub const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "success (with --batch: every line succeeded)"),
    (
        "1",
        "any error: a bad argument, a step that failed (everything is undone), a --batch line \
         that failed, --wait timed out",
    ),
    ("N", "route, rule, tc: the exit status of ip or tc (127: not installed)"),
    ("128+N", "killed by signal N during an attachment, after undoing it"),
];

/// The forms an operator types most: (command line, what it does).
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "pipework br1 web1 192.168.1.10/24@192.168.1.1",
        "container web1 gets eth1 on bridge br1 (created if missing), that address and default route",
    ),
    ("pipework br1 -i eth2 web1 10.0.0.2/24", "the interface in the container is eth2, not eth1"),
    ("pipework br1 web1 10.0.0.2/24 02:42:0a:00:00:02", "with that MAC (U:web1: one derived from the text)"),
    ("pipework eth0 web1 192.168.0.50/24@192.168.0.1", "a macvlan on the host's NIC eth0, on its LAN"),
    (
        "pipework --host-shim eth0 web1 192.168.0.50/24@192.168.0.1",
        "the same, and the host reaches web1 too, through the macvlan pwshim-eth0 (eth0's address moves to it)",
    ),
    ("pipework --isolated br1 web1 10.0.0.2/24", "web1 reaches br1's other ports, not other isolated guests"),
    ("pipework br1 pid:4242 10.0.0.2/24", "the network namespace of process 4242, no container needed"),
    ("pipework br1 web1 dhcp4", "an address by DHCP, with the built-in client (or udhcpc, dhclient, dhcpcd)"),
    ("pipework check web1", "exit 0 if web1's eth1 is as attached, else one line per difference"),
    ("pipework gc --dry-run", "what gc would remove of what guests that are gone left behind"),
    (
        "pipework watch --key s3cret",
        "attach the containers that declare it (label pipework.1=br1 10.0.0.2/24) on every start",
    ),
    ("pipework --batch attach.txt", "one attachment per line of attach.txt, each all or nothing"),
];

/// The shells `pipework completions SHELL` knows.
const SHELLS: &str = "bash, zsh, fish, elvish or powershell";

/// The hidden flag that prints the man page (for the package build).
pub const MAN_PAGE_FLAG: &str = "--man-page";

/// `--help` after the options: grammar, exit statuses, and examples last.
pub fn long_help() -> String {
    let mut s: Vec<String> = GRAMMAR.iter().map(|p| wrap(p, "", "") + "\n").collect();
    s.push("Exit status:".into());
    for (code, what) in EXIT_STATUS {
        s.push(wrap(what, &format!("  {code:<7}"), "         "));
    }
    s.push("\nExamples:".into());
    for (cmd, what) in EXAMPLES {
        s.push(format!("  {cmd}"));
        s.push(wrap(what, "      ", "      "));
    }
    s.join("\n")
}

/// TEXT filled to [`WIDTH`] columns, the first line after FIRST, the others after REST
/// (clap fills its own help only with a feature we do without).
fn wrap(text: &str, first: &str, rest: &str) -> String {
    let mut out = first.to_string();
    let mut col = first.len();
    for (i, word) in text.split_whitespace().enumerate() {
        if i > 0 && col + 1 + word.len() > WIDTH {
            out.push('\n');
            out.push_str(rest);
            col = rest.len();
        } else if i > 0 {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += word.len();
    }
    out
}

const WIDTH: usize = 88;

/// The man page (section 8: pipework is run as root), in roff.
pub fn man_page() -> String {
    let man = clap_mangen::Man::new(super::command())
        .section("8")
        .date(env!("PIPEWORK_COMMIT_DATE"))
        .manual("System Administration");
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    let _ = man.render_description_section(&mut out);
    let _ = man.render_options_section(&mut out);
    let mut roff = Roff::new();
    roff.control("SH", ["ARGUMENTS"]);
    for (i, p) in GRAMMAR.iter().enumerate() {
        if i > 0 {
            roff.control("PP", []);
        }
        roff.text([roman(*p)]);
    }
    roff.control("SH", ["EXIT STATUS"]);
    for (code, what) in EXIT_STATUS {
        roff.control("TP", []).text([bold(*code)]).text([roman(*what)]);
    }
    roff.control("SH", ["EXAMPLES"]);
    for (cmd, what) in EXAMPLES {
        roff.control("TP", []).text([bold(*cmd)]).text([roman(*what)]);
    }
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman("ip(8), bridge(8), ovs-vsctl(8), docker(1), udhcpc(8), dhclient(8), dhcpcd(8)")]);
    let _ = roff.to_writer(&mut out);
    let _ = man.render_version_section(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `completions SHELL` and the man-page flag, handled before the attachment grammar;
/// `None` for anything else. As for `route`/`rule`/`tc`, a host interface named
/// `completions` wins over the word.
pub fn early(argv: &[String]) -> Option<ExitCode> {
    match argv.first()?.as_str() {
        MAN_PAGE_FLAG if argv.len() == 1 => Some(print(man_page().as_bytes())),
        "completions" if nix::net::if_::if_nametoindex("completions").is_err() => {
            Some(completions(&argv[1..]))
        }
        _ => None,
    }
}

fn completions(args: &[String]) -> ExitCode {
    let shell = match args {
        [s] => s,
        [] => return fail(&format!("completions needs a SHELL: {SHELLS}")),
        _ => return fail(&format!("completions takes one SHELL: {SHELLS}")),
    };
    match completion(shell) {
        Some(script) => print(&script),
        None => fail(&format!("bad SHELL '{shell}': expected {SHELLS}")),
    }
}

/// The completion script for SHELL, or `None` for a shell clap_complete does not know.
pub fn completion(shell: &str) -> Option<Vec<u8>> {
    let shell: clap_complete::Shell = shell.parse().ok()?;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut super::command(), "pipework", &mut out);
    Some(out)
}

fn print(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is the reader's choice, not our failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(&format!("cannot write to standard output: {e}")),
    }
}

fn fail(line: &str) -> ExitCode {
    crate::report::say(line);
    ExitCode::from(1)
}
