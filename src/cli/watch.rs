//! `pipework watch [--json] [--key KEY] [--trust-images]`: its own small clap parser, reached when the
//! first word is `watch` and no host interface has that name.

use clap::Parser;

use super::CliError;

/// The word that names the subcommand.
pub const WORD: &str = "watch";

/// The environment variable the dreamcat4/pipework image reads its key from.
pub const KEY_ENV: &str = "pipework_key";

/// `pipework watch`: follow Docker's events and apply the attachments containers declare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    /// One JSON object per log line on stderr.
    pub json: bool,
    /// Serve only containers whose `pipework_key` (environment) or `pipework.key`
    /// (label) is this; `None` serves every container.
    pub key: Option<String>,
    /// Apply the declarations a container only inherited from its image, too.
    pub trust_images: bool,
}

#[derive(Parser, Debug)]
#[command(
    name = "pipework watch",
    about = "Apply the attachments Docker containers declare, on every start; clean up when they die"
)]
struct WatchArgs {
    /// One JSON object per log line (stderr).
    #[arg(long)]
    json: bool,
    /// Serve only containers with pipework_key=KEY (environment) or the label
    /// pipework.key=KEY (default: $pipework_key; empty or unset: every container).
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// Apply also the declarations a container only inherited, unchanged, from its
    /// image (LABEL, ENV in its Dockerfile). Default: only those set or changed on the
    /// container (docker run -l/-e, compose labels), so that running an image pulled
    /// from a registry cannot take a host interface.
    #[arg(long)]
    trust_images: bool,
}

/// `env_key`: the value of [`KEY_ENV`], which `--key` overrides.
pub fn parse_watch(rest: &[String], env_key: Option<String>) -> Result<Watch, CliError> {
    let argv = std::iter::once(format!("pipework {WORD}")).chain(rest.iter().cloned());
    let raw = WatchArgs::try_parse_from(argv).map_err(CliError::Clap)?;
    let key = raw.key.or(env_key).filter(|k| !k.is_empty());
    Ok(Watch { json: raw.json, key, trust_images: raw.trust_images })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_from_the_flag_else_the_environment() {
        let w = parse_watch(&[], None).unwrap();
        assert_eq!(w, Watch { json: false, key: None, trust_images: false });
        let w = parse_watch(&["--json".into(), "--trust-images".into()], Some("s3cret".into())).unwrap();
        assert_eq!(w, Watch { json: true, key: Some("s3cret".into()), trust_images: true });
        let w = parse_watch(&["--key".into(), "mine".into()], Some("env".into())).unwrap();
        assert_eq!(w.key.as_deref(), Some("mine"));
        assert_eq!(parse_watch(&[], Some(String::new())).unwrap().key, None, "empty is unset");
        assert!(matches!(parse_watch(&["web1".into()], None), Err(CliError::Clap(_))));
    }
}
