//! One attachment's words, from anywhere but argv (a `--batch` line, a `watch`
//! label or variable), parsed as the command line parses them; a refusal is the
//! one line the command line would say.

use super::{parse_on_host, AttachCommand, CliError, Invocation};

/// The words of one attachment (`HOSTIF [options] GUEST IPSPEC [MAC][@VLAN]`).
pub fn parse_words(words: Vec<String>) -> Result<AttachCommand, String> {
    match parse_on_host(words) {
        Ok(Invocation::Attach(a)) => Ok(*a),
        Ok(_) => Err("only attachments (HOSTIF GUEST IPSPEC [MAC][@VLAN]) can be batched".to_string()),
        Err(CliError::Syntax) => Err("too few arguments (HOSTIF [options] GUEST IPSPEC [MAC][@VLAN])".into()),
        Err(CliError::Clap(e)) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            Err(first.strip_prefix("error: ").unwrap_or(first).to_string())
        }
        Err(CliError::Invalid(e)) => Err(format!("{e:#}")),
    }
}
