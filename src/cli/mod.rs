//! The command line: clap for flags and help, plus the positional grammar of the
//! original (`HOSTIF [opts] GUEST IPSPEC [MAC][@VLAN]`, `route GUEST ...`, `--wait`)
//! turned into one typed [`Invocation`]. Nothing here touches the system.

pub mod docs;
pub mod lifecycle;
pub mod watch;
// Compiled into build.rs, which says the version; here only for its tests.
#[cfg(test)]
mod version;
mod words;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::{CommandFactory, FromArgMatches, Parser};

use crate::model::{self, addresses, Attach, Check, Del, HostIf, IfName, Ls, MacVlan};
use crate::model::{Passthrough, RunOpts, Tool};
pub use watch::Watch;
pub use words::parse_words;

/// Everything one run of `pipework` was asked to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Invocation {
    Attach(Box<AttachCommand>),
    Passthrough(Passthrough),
    Wait { container_if: IfName, timeout: Option<Duration> },
    Batch(Batch),
    Del(Del, RunOpts),
    Ls(Ls, RunOpts),
    Check(Check, RunOpts),
    Gc(RunOpts),
    Watch(Watch),
}

/// `pipework --batch FILE|-`: one attachment per line of FILE (see `crate::batch`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// `None` for `-`, standard input.
    pub file: Option<PathBuf>,
    /// The per-line results as one JSON array on stdout.
    pub json: bool,
    /// `--dry-run` and `--verbose` given with `--batch` apply to every line.
    pub dry_run: bool,
    pub verbose: bool,
}

/// An attachment as the command line (or a `--batch` line, or a watch declaration)
/// asks for it: the request, how to report it, and what the parse had to say.
#[derive(Clone, Debug, PartialEq)]
pub struct AttachCommand {
    pub req: Attach,
    pub opts: RunOpts,
    /// What the parse has to say without failing (extra arguments ignored); said
    /// before anything the run says.
    pub warnings: Vec<String>,
}

/// Why parsing stopped.
#[derive(Debug)]
pub enum CliError {
    /// Not enough arguments: print [`SYNTAX`] and [`SYNTAX_HINT`] on stdout, exit 1
    /// (as the original, which prints the block alone).
    Syntax,
    /// clap's own outcome: `--help`/`--version` (exit 0) or a flag error (exit 1).
    Clap(clap::Error),
    /// A bad value: one line (or the original's two) on stderr, exit 1.
    Invalid(anyhow::Error),
}

/// The usage text printed for too few arguments (the original's `Syntax:` block).
pub const SYNTAX: &str = "\
Syntax:
pipework [--direct-phys] <hostinterface> [-i containerinterface] [-l localinterfacename] [-a addressfamily] <guest> <ipaddr>/<subnet>[@default_gateway] [macaddr][@vlan]
pipework [--direct-phys] <hostinterface> [-i containerinterface] [-l localinterfacename] <guest> dhcp [macaddr][@vlan]
pipework mac:<hostinterface_macaddress> [-i containerinterface] [-l localinterfacename] [-a addressfamily] <guest> <ipaddr>/<subnet>[@default_gateway] [macaddr][@vlan]
pipework mac:<hostinterface_macaddress> [-i containerinterface] [-l localinterfacename] <guest> dhcp [macaddr][@vlan]
pipework route <guest> <route_command>
pipework rule <guest> <rule_command>
pipework tc <guest> <tc_command>
pipework --wait [-i containerinterface]
";

/// The one line printed after [`SYNTAX`], which stays the original's byte for byte
/// (scripts may read it): where the rest of the grammar is, and the verbs the
/// original did not have.
pub const SYNTAX_HINT: &str = "Run 'pipework --help' for every form, the options and examples; \
                               'pipework del GUEST' takes an attachment off, 'pipework ls' lists them.";

/// After the options in `-h`; `--help` has the grammar, exit statuses and examples
/// ([`docs::long_help`]).
const AFTER_HELP: &str =
    "Run 'pipework --help' for HOSTIF, GUEST and IPSPEC, the exit statuses and examples.";

/// The flags clap knows; the positional grammar is ours.
#[derive(Parser, Debug)]
#[command(
    name = "pipework",
    version = env!("PIPEWORK_VERSION_LINE"),
    about = "Software-defined networking for Linux containers",
    long_about = "Software-defined networking for Linux containers: gives a container, or the \
                  network namespace of any process, a new interface on a host bridge, Open vSwitch \
                  bridge or NIC, with an address and routes, through netlink; a drop-in \
                  replacement for the pipework script.",
    override_usage = "pipework [OPTIONS] HOSTIF [-i CONTAINER_IF] [-l LOCAL_IF] [-a 4|6] GUEST IPSPEC [MAC][@VLAN]\n       \
                      pipework route|rule|tc GUEST ARGS...\n       \
                      pipework del [HOSTIF] GUEST [-i CONTAINER_IF] [--prune-bridge] [--json] [--dry-run]\n       \
                      pipework ls [GUEST] | check GUEST [-i CONTAINER_IF] | gc [--dry-run]   (each [--json])\n       \
                      pipework --batch FILE|- [--json] [--dry-run] [--verbose]\n       \
                      pipework --wait [-i CONTAINER_IF] [--timeout SECONDS]\n       \
                      pipework watch [--json] [--key KEY] [--trust-images] | completions bash|zsh|fish",
    after_help = AFTER_HELP
)]
struct RawArgs {
    /// Move the physical host interface itself into the guest (no macvlan).
    #[arg(long)]
    direct_phys: bool,
    /// Macvlan mode on a physical interface: bridge (default), private, vepa or passthru.
    #[arg(long, value_name = "MODE", default_value = "bridge")]
    macvlan_mode: String,
    /// On a Linux bridge: isolated guests reach the other ports, not each other.
    ///
    /// On a Linux bridge: the host end is an isolated port (`bridge link set dev
    /// LOCAL_IF isolated on`). Isolated guests reach the bridge's other ports (its
    /// uplink, the host's address on it, a router guest) but not each other.
    #[arg(long)]
    isolated: bool,
    /// On a macvlan (NIC) attach: the host reaches the guest, through a shim.
    ///
    /// On a macvlan (NIC) attach: the host reaches the guest through a macvlan in
    /// bridge mode on the same parent, NAME (default pwshim-PARENT, or pwshim-
    /// and a hash of PARENT when that is longer than 15 bytes), to which the
    /// parent's address in the guest's subnet moves, with a host route to the guest
    /// through it. Shared by every guest of that parent; `del` of the last one
    /// removes it and puts the address back. A static IPSPEC only.
    #[arg(long, value_name = "NAME", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    host_shim: Option<String>,
    /// With --host-shim: the host's address on the shim, instead of the parent's
    /// (which then stays where it is).
    #[arg(long, value_name = "ADDR/PREFIX", requires = "host_shim", hide_short_help = true)]
    host_shim_addr: Option<String>,
    /// Inside a container: wait until CONTAINER_IF exists, is up and has carrier.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds (exit 1). With a DHCP IPSPEC: how
    /// long the client may take to get its lease before everything is undone
    /// (default 90; the built-in dhcp4: 30, or its timeout= option). With slaac: how
    /// long to wait for a router (default 30).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
    /// Print the steps that would be taken, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print each step on stderr as it is done.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// One attachment per line of FILE (`-`: standard input), in the grammar above;
    /// `#` comments and blank lines allowed; each line all-or-nothing; exit 1 if any failed.
    #[arg(
        long,
        value_name = "FILE",
        value_hint = clap::ValueHint::FilePath,
        conflicts_with_all = [
            "wait", "args", "direct_phys", "container_if", "local_if", "family", "timeout", "isolated",
            "host_shim"
        ]
    )]
    batch: Option<PathBuf>,
    /// The result as one JSON document on stdout (with --batch: a JSON array of
    /// {line, ok, error}); an error as {"error", "rollback_errors"}, exit 1.
    #[arg(long)]
    json: bool,
    /// Interface name inside the guest (default eth1; ib0 for IPoIB).
    #[arg(short = 'i', value_name = "CONTAINER_IF")]
    container_if: Option<String>,
    /// Host-side interface name (default v{CONTAINER_IF}pl{PID}).
    #[arg(short = 'l', value_name = "LOCAL_IF")]
    local_if: Option<String>,
    /// Address family: 4 (default) or 6; inferred from the address when omitted.
    #[arg(short = 'a', value_name = "FAMILY")]
    family: Option<String>,
    /// HOSTIF GUEST IPSPEC [MAC][@VLAN]
    #[arg(value_name = "ARGS")]
    args: Vec<String>,
}

/// The clap definition behind `--help`, the man page and the completions.
pub fn command() -> clap::Command {
    RawArgs::command().after_long_help(docs::long_help())
}

/// Parse `argv` (without the program name).
pub fn parse<I, S>(argv: I) -> Result<Invocation, CliError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let argv: Vec<String> = argv.into_iter().map(Into::into).collect();
    if let Some(s) = subcommand(&argv) {
        return s;
    }
    if let Some(p) = passthrough(&argv) {
        return p.map(Invocation::Passthrough);
    }
    parse_without_passthrough(argv)
}

/// [`parse`], then the original's rule for the `route*`/`rule*`/`tc*` words: an
/// existing host interface of that name is attached to, not passed through (one
/// ioctl, asked only for these words). The command line and `--batch` lines both
/// come through here.
pub fn parse_on_host(argv: Vec<String>) -> Result<Invocation, CliError> {
    match parse(argv.clone()) {
        Ok(Invocation::Passthrough(p)) if nix::net::if_::if_nametoindex(p.word.as_str()).is_ok() => {
            parse_without_passthrough(argv)
        }
        // The same rule for `del`, `ls`, `check`, `gc` and `watch`.
        Ok(
            Invocation::Del(..)
            | Invocation::Ls(..)
            | Invocation::Check(..)
            | Invocation::Gc(_)
            | Invocation::Watch(_),
        )
        | Err(_)
            if argv.first().is_some_and(|w| {
                (lifecycle::is_subcommand(w) || w == watch::WORD) && is_host_interface(w)
            }) =>
        {
            parse_without_passthrough(argv)
        }
        other => other,
    }
}

fn is_host_interface(name: &str) -> bool {
    nix::net::if_::if_nametoindex(name).is_ok()
}

/// `del ...`, `ls ...`, `check ...`, `gc ...` and `watch ...`: their own grammar (see
/// [`lifecycle`] and [`watch`]).
fn subcommand(argv: &[String]) -> Option<Result<Invocation, CliError>> {
    match argv.first().map(String::as_str) {
        Some("del") => Some(lifecycle::parse_del(&argv[1..]).map(|(d, o)| Invocation::Del(d, o))),
        Some("ls") => Some(lifecycle::parse_ls(&argv[1..]).map(|(l, o)| Invocation::Ls(l, o))),
        Some("check") => Some(lifecycle::parse_check(&argv[1..]).map(|(c, o)| Invocation::Check(c, o))),
        Some("gc") => Some(lifecycle::parse_gc(&argv[1..]).map(Invocation::Gc)),
        Some(watch::WORD) => {
            let key = std::env::var(watch::KEY_ENV).ok();
            Some(watch::parse_watch(&argv[1..], key).map(Invocation::Watch))
        }
        _ => None,
    }
}

/// Parse `argv` as an attachment (or `--wait`) even when its first word starts with
/// `route`, `rule` or `tc`: for a host interface of such a name, which the original
/// checks for before the passthrough prefixes.
pub fn parse_without_passthrough(argv: Vec<String>) -> Result<Invocation, CliError> {
    let argv = || std::iter::once("pipework".to_string()).chain(argv.iter().cloned());
    // The long help's paragraphs are wrapped at run time: made only for --help, not
    // for every attach and every CNI ADD.
    let matches = match RawArgs::command().try_get_matches_from(argv()) {
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
            command().try_get_matches_from(argv()).map_err(CliError::Clap)?
        }
        parsed => parsed.map_err(CliError::Clap)?,
    };
    let raw = RawArgs::from_arg_matches(&matches).map_err(CliError::Clap)?;
    if raw.json && raw.wait {
        let e = command().error(clap::error::ErrorKind::ArgumentConflict, "--json does not work with --wait");
        return Err(CliError::Clap(e));
    }
    if let Some(file) = raw.batch {
        let file = (file.as_os_str() != "-").then_some(file);
        let (json, dry_run, verbose) = (raw.json, raw.dry_run, raw.verbose);
        return Ok(Invocation::Batch(Batch { file, json, dry_run, verbose }));
    }
    if raw.wait {
        return wait(raw).map_err(CliError::Invalid);
    }
    // The original tests IPSPEC for being non-empty: `""` (an unset variable) is
    // a missing one.
    if raw.args.len() < 3 || raw.args[2].is_empty() {
        return Err(CliError::Syntax);
    }
    attach(raw).map(|a| Invocation::Attach(Box::new(a))).map_err(CliError::Invalid)
}

/// `route|rule|tc GUEST ARGS...`: recognised before clap so that nothing after
/// GUEST is ever read as one of our flags.
fn passthrough(argv: &[String]) -> Option<Result<Passthrough, CliError>> {
    let first = argv.first()?;
    let tool = if first.starts_with("route") {
        Tool::Route
    } else if first.starts_with("rule") {
        Tool::Rule
    } else if first.starts_with("tc") {
        Tool::Tc
    } else {
        return None;
    };
    // The original's check for a non-empty third argument comes first: `route
    // GUEST` alone (or with "") is a usage error, not `ip route` run bare.
    if argv.len() < 3 || argv[2].is_empty() {
        return Some(Err(CliError::Syntax));
    }
    Some(Ok(Passthrough { tool, word: first.clone(), guest: argv[1].clone(), args: argv[2..].to_vec() }))
}

fn wait(raw: RawArgs) -> Result<Invocation> {
    let container_if = ifname_or(raw.container_if.as_deref(), "eth1", "-i")?;
    let timeout = raw
        .timeout
        .map(|s| {
            Duration::try_from_secs_f64(s).map_err(|_| anyhow!("bad --timeout '{s}': expected seconds >= 0"))
        })
        .transpose()?;
    Ok(Invocation::Wait { container_if, timeout })
}

/// `-i`/`-l` for `--wait`; empty (an unset variable) means the default, as for an attach.
fn ifname_or(value: Option<&str>, default: &str, flag: &str) -> Result<IfName> {
    ifname(value.filter(|v| !v.is_empty()).unwrap_or(default), flag)
}

/// An interface-name argument; the error names it: `bad -i 'X': expected ...`.
fn ifname(value: &str, arg: &str) -> Result<IfName> {
    value.parse().with_context(|| format!("bad {arg} '{value}'"))
}

fn attach(raw: RawArgs) -> Result<AttachCommand> {
    let mut args = raw.args.into_iter();
    let (host_if, guest, ip) = (args.next().unwrap(), args.next().unwrap(), args.next().unwrap());
    let macvlan: MacVlan = args.next().map(|s| s.parse()).transpose()?.unwrap_or_default();
    let extra: Vec<String> = args.collect();
    let mut warnings = Vec::new();
    if !extra.is_empty() {
        // The original ignores them too; say so rather than guess.
        warnings.push(crate::report::warning(format!("ignoring extra arguments: {}", extra.join(" "))));
    }
    let host_if: HostIf = host_if.parse()?;
    let (ip, more, family) = addresses::parse(&ip, raw.family.as_deref())?;
    let dhcp_timeout = model::dhcp_timeout(raw.timeout, std::iter::once(&ip).chain(&more))?;
    let req = Attach {
        host_if,
        direct_phys: raw.direct_phys,
        macvlan_mode: raw.macvlan_mode.parse()?,
        // An empty `-i ''` or `-l ''` (a script's unset variable) means the default,
        // as in the original.
        container_if: raw
            .container_if
            .as_deref()
            .filter(|v| !v.is_empty())
            .map(|v| ifname(v, "-i"))
            .transpose()?,
        local_if: raw.local_if.as_deref().filter(|v| !v.is_empty()).map(|v| ifname(v, "-l")).transpose()?,
        family,
        guest,
        ip,
        more,
        mac: macvlan.mac,
        vlan: macvlan.vlan,
        port_vlans: model::PortVlans::default(),
        dhcp_timeout,
        isolated: raw.isolated,
        host_shim: host_shim(raw.host_shim.as_deref(), raw.host_shim_addr.as_deref())?,
    };
    let opts = RunOpts { json: raw.json, dry_run: raw.dry_run, verbose: raw.verbose };
    Ok(AttachCommand { req, opts, warnings })
}

/// `--host-shim[=NAME]` and `--host-shim-addr ADDR/PREFIX`; `--host-shim` alone (or
/// `=` with nothing) names the default.
fn host_shim(name: Option<&str>, addr: Option<&str>) -> Result<Option<Box<model::HostShim>>> {
    let Some(name) = name else { return Ok(None) };
    let name = (!name.is_empty()).then(|| ifname(name, "--host-shim")).transpose()?;
    let addr = addr
        .map(|a| {
            a.parse::<ipnetwork::IpNetwork>()
                .ok()
                .filter(|_| a.contains('/'))
                .ok_or_else(|| anyhow!("bad --host-shim-addr '{a}': expected ADDR/PREFIX like 10.0.0.1/24"))
        })
        .transpose()?;
    Ok(Some(Box::new(model::HostShim { name, addr })))
}

#[cfg(test)]
mod tests;
