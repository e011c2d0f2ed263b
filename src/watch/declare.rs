//! What a container asks for, read from its configuration (`docker inspect`):
//! labels `pipework.N=HOSTIF [opts] IPSPEC [MAC][@VLAN]` (the guest is the container
//! itself, N orders them), and the dreamcat4/pipework image's environment variables
//! (any name holding `pipework_cmd`, a whole command line, in name order) with its
//! macros. Words are split as a shell splits them, but no shell ever runs; macros are
//! expanded inside each word, so no value can add words. Every declaration goes
//! through the command line's own parser (`crate::cli::parse_words`).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::cli::{self, AttachCommand};
use crate::model::{Attach, DhcpClient, IpSpec};

/// What a container's inspect says that declarations need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Container {
    /// The full id.
    pub id: String,
    /// Without the leading '/'.
    pub name: String,
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    /// `NAME=VALUE` entries, in the container's order.
    pub env: Vec<(String, String)>,
    /// The first process's pid; 0 when the container is not running.
    pub pid: u32,
    /// The id of the image it was made from (`sha256:...`), and the name it was given by.
    pub image: String,
    pub image_name: String,
}

impl Container {
    pub fn from_inspect(v: &Value) -> Result<Container> {
        let config = v.get("Config").context("Docker inspect output has no Config")?;
        let (labels, env) = labels_and_env(config);
        let running = v.pointer("/State/Running").and_then(Value::as_bool).unwrap_or(false);
        let pid = v.pointer("/State/Pid").and_then(Value::as_u64).unwrap_or(0);
        Ok(Container {
            id: string_of(v.get("Id")),
            name: string_of(v.get("Name")).trim_start_matches('/').to_string(),
            hostname: string_of(config.get("Hostname")),
            image: string_of(v.get("Image")),
            image_name: string_of(config.get("Image")),
            labels,
            env,
            pid: if running { u32::try_from(pid).unwrap_or(0) } else { 0 },
        })
    }

    /// The id as `docker ps` shows it.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }
}

fn string_of(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

/// `Labels` and `Env` of an inspect's `Config` (a container's or an image's).
pub fn labels_and_env(config: &Value) -> (BTreeMap<String, String>, Vec<(String, String)>) {
    let labels = config
        .get("Labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), string_of(Some(v)))).collect())
        .unwrap_or_default();
    let env = config
        .get("Env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|e| e.split_once('=').map_or((e.to_string(), String::new()), |(k, v)| (k.into(), v.into())))
        .collect();
    (labels, env)
}

/// One declaration: where it is, and the attachment it asks for or why it cannot be.
#[derive(Debug)]
pub struct Declaration {
    /// `label pipework.1`, `env pipework_cmd_eth1`.
    pub source: String,
    /// The label or variable it is, with its value.
    pub entry: Entry,
    pub attach: Result<AttachCommand, String>,
}

/// A label or an environment variable: (name, value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Label(String, String),
    Env(String, String),
}

/// What the watcher does with a container.
#[derive(Debug)]
pub enum Declared {
    /// Its declarations, in order (none: nothing to do).
    Serve(Vec<Declaration>),
    /// It declares some, but the watcher has a key and the container another (or none).
    OtherKey,
}

const LABEL_PREFIX: &str = "pipework.";
const KEY_LABEL: &str = "pipework.key";
const ENV_PATTERN: &str = "pipework_cmd";

/// The container's declarations; `key`, the watcher's, if it has one.
pub fn declarations(c: &Container, key: Option<&str>) -> Declared {
    let mut labels: Vec<(Option<u64>, &String, &String)> = c
        .labels
        .iter()
        .filter(|(k, _)| k.starts_with(LABEL_PREFIX) && k.as_str() != KEY_LABEL)
        .map(|(k, v)| (k[LABEL_PREFIX.len()..].parse::<u64>().ok(), k, v))
        .collect();
    // By N; the labels that are not pipework.N last, each an error.
    labels.sort_by_key(|(n, k, _)| (n.is_none(), *n, k.as_str()));
    let mut out: Vec<Declaration> = labels
        .into_iter()
        .map(|(n, k, v)| Declaration {
            source: format!("label {k}"),
            entry: Entry::Label(k.clone(), v.clone()),
            attach: match n {
                Some(_) => from_label(c, v),
                None => Err("not a declaration: the labels are pipework.N, N a number".to_string()),
            },
        })
        .collect();
    let mut env: Vec<&(String, String)> = c.env.iter().filter(|(k, _)| k.contains(ENV_PATTERN)).collect();
    env.sort_by(|a, b| a.0.cmp(&b.0));
    out.extend(env.into_iter().map(|(k, v)| Declaration {
        source: format!("env {k}"),
        entry: Entry::Env(k.clone(), v.clone()),
        attach: from_env(c, v),
    }));
    match key {
        Some(key) if !out.is_empty() && container_key(c) != Some(key) => Declared::OtherKey,
        _ => Declared::Serve(out),
    }
}

/// For the fuzz target in `fuzz/` (re-exported as `pipework::parse_watch_declarations`;
/// not an API): every `NAME=VALUE` line of `text` is a label (a `pipework.` name) or an
/// environment variable of one container; its declarations, each an attachment or a
/// one-line reason. With `key`, the watcher's.
#[doc(hidden)]
pub fn declarations_of_text(text: &str, key: Option<&str>) -> Vec<Result<Attach, String>> {
    let mut c =
        Container { id: "4c5e3d6a1f0b".repeat(5) + "2c3d", name: "web_1".into(), ..Container::default() };
    for line in text.lines() {
        let (k, v) = line.split_once('=').unwrap_or((line, ""));
        match k.starts_with(LABEL_PREFIX) {
            true => drop(c.labels.insert(k.to_string(), v.to_string())),
            false => c.env.push((k.to_string(), v.to_string())),
        }
    }
    match declarations(&c, key) {
        Declared::Serve(d) => d.into_iter().map(|d| d.attach.map(|a| a.req)).collect(),
        Declared::OtherKey => Vec::new(),
    }
}

/// `pipework_key` in the environment (the image's way), else the label `pipework.key`.
fn container_key(c: &Container) -> Option<&str> {
    let env = c.env.iter().rev().find(|(k, _)| k == cli::watch::KEY_ENV).map(|(_, v)| v.as_str());
    env.or_else(|| c.labels.get(KEY_LABEL).map(String::as_str))
}

/// `HOSTIF [opts] IPSPEC [MAC][@VLAN]`: the container goes in as GUEST after HOSTIF.
fn from_label(c: &Container, text: &str) -> Result<AttachCommand, String> {
    let words = words(c, text)?;
    let words = with_guest(words, &c.id)?;
    let attach = crate::cli::parse_words(words)?;
    // What clap took as GUEST is the container, or the label is not as the grammar has it.
    if attach.req.guest != c.id {
        return Err(format!("cannot tell HOSTIF from the options in '{text}'"));
    }
    for_watch(attach)
}

/// A whole command line (`pipework` before it allowed) whose GUEST must be the
/// container itself: by name, `/name`, id or id prefix (`@CONTAINER_ID@`).
fn from_env(c: &Container, text: &str) -> Result<AttachCommand, String> {
    let mut words = words(c, text)?;
    if words.first().is_some_and(|w| w == "pipework") {
        words.remove(0);
    }
    let mut attach = crate::cli::parse_words(words)?;
    let g = attach.req.guest.trim_start_matches('/');
    let is_id = !g.is_empty() && g.bytes().all(|b| b.is_ascii_hexdigit()) && c.id.starts_with(g);
    if g != c.name && !is_id {
        return Err(format!("GUEST is '{}', not this container ({})", attach.req.guest, c.name));
    }
    // By id from now on: a name can be another container's by the time it is looked up.
    attach.req.guest = c.id.clone();
    for_watch(attach)
}

/// The result as a document (what the log says of it). Options of a DHCP client
/// the host runs (udhcpc, dhclient) are refused: it runs as root with the host's
/// files, and its options name files it runs or writes (`dhclient -lf FILE` writes
/// its leases over FILE), while a label or variable may come with an image.
/// (dhcpcd's options are dropped anyway, as the original drops them.)
fn for_watch(mut attach: AttachCommand) -> Result<AttachCommand, String> {
    let host_run =
        attach.req.specs().find_map(|s| match s {
            IpSpec::Dhcp {
                client: client @ (DhcpClient::Udhcpc | DhcpClient::Dhclient), options, ..
            } if !options.is_empty() => Some(client),
            _ => None,
        });
    if let Some(client) = host_run {
        return Err(format!(
            "{client} options are not taken from a declaration: {client} runs as the host's root, \
             and its options name host files (dhcp:OPTS runs in a helper container; dhcp4 and \
             dhcp6 are pipework's own)"
        ));
    }
    attach.opts.json = true;
    Ok(attach)
}

/// Split as a shell would (quotes, backslashes, `#` comments), then the macros.
fn words(c: &Container, text: &str) -> Result<Vec<String>, String> {
    let words = shlex::split(text).ok_or("unbalanced quotes or a trailing backslash")?;
    if words.is_empty() {
        return Err("empty".to_string());
    }
    Ok(words.into_iter().map(|w| expand(c, &w)).collect())
}

/// The image's macros, in one word.
pub fn expand(c: &Container, word: &str) -> String {
    if !word.contains('@') {
        return word.to_string();
    }
    let project = c.labels.get("com.docker.compose.project").map(String::as_str).unwrap_or_default();
    word.replace("@CONTAINER_NAME@", &c.name)
        .replace("@CONTAINER_ID@", c.short_id())
        .replace("@HOSTNAME@", &c.hostname)
        .replace("@INSTANCE@", instance(&c.name))
        .replace("@COMPOSE_PROJECT_NAME@", project)
}

/// The last run of digits in the name (`prod_myapp_1`: `1`), or nothing.
fn instance(name: &str) -> &str {
    let end = match name.rfind(|c: char| c.is_ascii_digit()) {
        Some(i) => i + 1,
        None => return "",
    };
    let start = name[..end].char_indices().rev().find(|(_, c)| !c.is_ascii_digit());
    let start = start.map_or(0, |(i, c)| i + c.len_utf8());
    &name[start..end]
}

/// `words` with GUEST put in as the second positional argument, where the command
/// line has it: after the first word that is not an option or an option's value (as
/// the command line's clap definition says which options take one), so that
/// `--direct-phys -i eth1 eth2 IPSPEC` works too. Words clap refuses are refused
/// here, in the words a `--batch` line gets.
fn with_guest(mut words: Vec<String>, guest: &str) -> Result<Vec<String>, String> {
    let argv = std::iter::once("pipework".to_string()).chain(words.iter().cloned());
    if let Err(e) = cli::command().try_get_matches_from(argv) {
        return Err(crate::cli::parse_words(words).err().unwrap_or_else(|| e.to_string()));
    }
    let Some(at) = first_positional(&words) else {
        return Err("too few arguments (HOSTIF [options] IPSPEC [MAC][@VLAN])".to_string());
    };
    words.insert(at + 1, guest.to_string());
    Ok(words)
}

/// The index of the first positional word.
fn first_positional(words: &[String]) -> Option<usize> {
    let command = cli::command();
    let takes_value = |arg: &clap::Arg| arg.get_action().takes_values();
    let long = |name: &str| command.get_arguments().any(|a| a.get_long() == Some(name) && takes_value(a));
    let short = |c: char| command.get_arguments().any(|a| a.get_short() == Some(c) && takes_value(a));
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        if w == "--" {
            return (i + 1 < words.len()).then_some(i + 1);
        }
        if let Some(name) = w.strip_prefix("--") {
            if !name.contains('=') && long(name) {
                i += 1;
            }
        } else if let Some(cluster) = w.strip_prefix('-').filter(|c| !c.is_empty()) {
            // `-ieth2` holds its value; `-i eth2` takes the next word.
            if let Some((at, _)) = cluster.char_indices().find(|(_, c)| short(*c)) {
                if at + 1 == cluster.len() {
                    i += 1;
                }
            }
        } else {
            return Some(i);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests;
