//! The `del`, `ls`, `check` and `gc` subcommands' arguments: their own small clap
//! parsers, reached when the first word is one of them and no host interface has
//! that name.

use clap::Parser;

use super::{ifname, CliError};
use crate::model::{Check, Del, IfName, Ls, RunOpts};

#[derive(Parser, Debug)]
#[command(name = "pipework del", about = "Remove an attachment that pipework made")]
struct DelArgs {
    /// Interface name inside the guest (default eth1).
    #[arg(short = 'i', value_name = "CONTAINER_IF")]
    container_if: Option<String>,
    /// Also remove the bridge (Linux or Open vSwitch) when no port is left on it.
    #[arg(long)]
    prune_bridge: bool,
    /// One JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// Print the steps that would be taken, change nothing.
    #[arg(long)]
    dry_run: bool,
    #[arg(short = 'v', long)]
    verbose: bool,
    /// [HOSTIF] GUEST
    #[arg(value_name = "ARGS", num_args = 1..=2, required = true)]
    args: Vec<String>,
}

#[derive(Parser, Debug)]
#[command(name = "pipework ls", about = "List the attachments pipework made on this host")]
struct LsArgs {
    /// One JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// Only this guest's attachments.
    #[arg(value_name = "GUEST")]
    guest: Option<String>,
}

#[derive(Parser, Debug)]
#[command(name = "pipework check", about = "Exit 0 when an attachment is as pipework made it")]
struct CheckArgs {
    /// Interface name inside the guest (default eth1).
    #[arg(short = 'i', value_name = "CONTAINER_IF")]
    container_if: Option<String>,
    /// One JSON document on stdout.
    #[arg(long)]
    json: bool,
    #[arg(value_name = "GUEST")]
    guest: String,
}

#[derive(Parser, Debug)]
#[command(name = "pipework gc", about = "Remove what guests that are gone left behind")]
struct GcArgs {
    /// Print what would be removed, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// One JSON document on stdout.
    #[arg(long)]
    json: bool,
}

/// The words that name these subcommands.
pub fn is_subcommand(word: &str) -> bool {
    matches!(word, "del" | "ls" | "check" | "gc")
}

fn container_if(given: Option<String>) -> Result<IfName, CliError> {
    let name = given.filter(|c| !c.is_empty()).unwrap_or_else(|| "eth1".to_string());
    ifname(&name, "-i").map_err(CliError::Invalid)
}

fn clap_parse<P: Parser>(word: &str, rest: &[String]) -> Result<P, CliError> {
    let argv = std::iter::once(format!("pipework {word}")).chain(rest.iter().cloned());
    P::try_parse_from(argv).map_err(CliError::Clap)
}

pub fn parse_del(rest: &[String]) -> Result<(Del, RunOpts), CliError> {
    let raw: DelArgs = clap_parse("del", rest)?;
    let mut args = raw.args.into_iter();
    let (host_if, guest) = match (args.next(), args.next()) {
        (Some(h), Some(g)) => (Some(ifname(&h, "HOSTIF").map_err(CliError::Invalid)?), g),
        (Some(g), None) => (None, g),
        _ => return Err(CliError::Syntax),
    };
    let container_if = container_if(raw.container_if)?;
    let opts = RunOpts { json: raw.json, dry_run: raw.dry_run, verbose: raw.verbose };
    Ok((Del { host_if, guest, container_if, prune_bridge: raw.prune_bridge }, opts))
}

pub fn parse_ls(rest: &[String]) -> Result<(Ls, RunOpts), CliError> {
    let raw: LsArgs = clap_parse("ls", rest)?;
    Ok((Ls { guest: raw.guest }, RunOpts { json: raw.json, ..RunOpts::default() }))
}

pub fn parse_check(rest: &[String]) -> Result<(Check, RunOpts), CliError> {
    let raw: CheckArgs = clap_parse("check", rest)?;
    let check = Check { guest: raw.guest, container_if: container_if(raw.container_if)? };
    Ok((check, RunOpts { json: raw.json, ..RunOpts::default() }))
}

pub fn parse_gc(rest: &[String]) -> Result<RunOpts, CliError> {
    let raw: GcArgs = clap_parse("gc", rest)?;
    Ok(RunOpts { dry_run: raw.dry_run, json: raw.json, ..RunOpts::default() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse, Invocation};

    fn del(line: &str) -> (Del, RunOpts) {
        match parse(line.split_whitespace()) {
            Ok(Invocation::Del(d, o)) => (d, o),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn del_takes_an_optional_hostif_and_dash_i_anywhere() {
        let (d, _) = del("del web1");
        assert_eq!((d.host_if, d.guest.as_str(), d.container_if.as_str()), (None, "web1", "eth1"));
        let (d, o) = del("del br1 -i eth2 web1 --prune-bridge --json");
        assert_eq!(d.host_if.unwrap().as_str(), "br1");
        assert_eq!((d.guest.as_str(), d.container_if.as_str()), ("web1", "eth2"));
        assert!(d.prune_bridge && o.json && !o.dry_run);
        assert!(del("del -i '' web1 --dry-run").1.dry_run);
    }

    #[test]
    fn del_and_ls_refuse_what_they_cannot_use() {
        assert!(matches!(parse(["del"]), Err(CliError::Clap(_))));
        assert!(matches!(parse(["del", "a", "b", "c"]), Err(CliError::Clap(_))));
        assert!(matches!(parse(["del", "web1", "-i", "a/b"]), Err(CliError::Invalid(_))));
        assert!(matches!(parse(["ls", "a", "b"]), Err(CliError::Clap(_))));
    }

    #[test]
    fn ls_with_and_without_a_guest() {
        assert_eq!(parse(["ls"]).ok(), Some(Invocation::Ls(Ls { guest: None }, RunOpts::default())));
        let (l, o) = (Ls { guest: Some("web1".into()) }, RunOpts { json: true, ..RunOpts::default() });
        assert_eq!(parse(["ls", "--json", "web1"]).ok(), Some(Invocation::Ls(l, o)));
    }

    #[test]
    fn check_takes_a_guest_and_dash_i() {
        let c = match parse(["check", "-i", "eth2", "web1", "--json"]) {
            Ok(Invocation::Check(c, o)) => (c, o),
            other => panic!("{other:?}"),
        };
        let (c, o) = c;
        assert_eq!((c.guest.as_str(), c.container_if.as_str(), o.json), ("web1", "eth2", true));
        assert!(matches!(parse(["check"]), Err(CliError::Clap(_))));
        assert!(matches!(parse(["check", "a", "b"]), Err(CliError::Clap(_))));
    }

    #[test]
    fn gc_takes_no_guest() {
        let g = RunOpts { dry_run: true, ..RunOpts::default() };
        assert_eq!(parse(["gc", "--dry-run"]).ok(), Some(Invocation::Gc(g)));
        assert!(matches!(parse(["gc", "web1"]), Err(CliError::Clap(_))));
    }
}
