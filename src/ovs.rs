//! The only code that talks to Open vSwitch: `ovs-vsctl`, a stable interface, with
//! arguments as a list (never a shell) and always `--timeout` (it waits forever
//! when ovs-vswitchd is down). OVS_RUNDIR and friends pass through from the caller.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// One pipework process's OVS changes, one at a time: the lines of a --batch run
/// concurrently, and the undo "delete the bridge unless it has ports" must not fall
/// between another line's look at the bridge and its add-port.
static CHANGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Hold while changing OVS.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    CHANGES.lock().await
}

/// Seconds `ovs-vsctl` may wait for the database or the switch.
const TIMEOUT: &str = "--timeout=10";

/// `ovs-vsctl`, if installed.
pub fn vsctl_path() -> Option<PathBuf> {
    crate::programs::find("ovs-vsctl")
}

/// Run `ovs-vsctl --timeout=10 ARGS`; its stdout, or its own error text. On the
/// runtime's blocking pool: it takes milliseconds (up to the timeout when OVS is
/// stuck), and the other lines of a --batch go on meanwhile.
async fn vsctl(args: Vec<String>) -> Result<String> {
    crate::blocking::run("ovs-vsctl", move || vsctl_now(&args)).await
}

fn vsctl_now(args: &[String]) -> Result<String> {
    let path = vsctl_path().context("ovs-vsctl not found (install Debian package openvswitch-switch)")?;
    // Its own process group: a Ctrl-C at the terminal must not kill it mid-transaction.
    let out = Command::new(path)
        .process_group(0)
        .arg(TIMEOUT)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run ovs-vsctl")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!("ovs-vsctl {}: {}", args.join(" "), err.trim().lines().next().unwrap_or("failed"));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// Whether `name` is an OVS bridge (`ovs-vsctl br-exists`: exit 0 yes, 2 no).
pub async fn bridge_exists(name: &str) -> Result<bool> {
    let Some(path) = vsctl_path() else {
        return Ok(false);
    };
    let name = name.to_string();
    crate::blocking::run("ovs-vsctl", move || {
        let status = Command::new(path)
            .process_group(0)
            .args([TIMEOUT, "br-exists", &name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("cannot run ovs-vsctl")?;
        match status.code() {
            Some(0) => Ok(true),
            Some(2) => Ok(false),
            _ => bail!("ovs-vsctl br-exists {name} failed (is ovs-vswitchd running?)"),
        }
    })
    .await
}

/// `ovs-vsctl add-br NAME [-- set bridge NAME datapath_type=DP]`
pub async fn add_bridge(name: &str, datapath: Option<&str>) -> Result<()> {
    let dp = datapath.map(|d| format!("datapath_type={d}"));
    let mut args = vec!["add-br", name];
    if let Some(dp) = &dp {
        args.extend(["--", "set", "bridge", name, dp]);
    }
    vsctl(owned(&args)).await.map(drop)
}

/// `ovs-vsctl --if-exists del-br NAME`
pub async fn del_bridge(name: &str) -> Result<()> {
    vsctl(owned(&["--if-exists", "del-br", name])).await.map(drop)
}

/// The ports of bridge `name` (`ovs-vsctl list-ports`), without its own internal port.
pub async fn ports(name: &str) -> Result<Vec<String>> {
    Ok(vsctl(owned(&["list-ports", name])).await?.lines().map(str::to_string).collect())
}

/// `ovs-vsctl --may-exist add-port BR PORT [tag=VID] -- set Interface PORT external-ids:K=V ...`
pub async fn add_port(
    bridge: &str,
    port: &str,
    tag: Option<u16>,
    external_ids: &[(String, String)],
) -> Result<()> {
    let tag = tag.map(|t| format!("tag={t}"));
    let ids: Vec<String> =
        external_ids.iter().map(|(k, v)| format!("external-ids:{k}={}", quote(v))).collect();
    let mut args = vec!["--may-exist", "add-port", bridge, port];
    if let Some(t) = &tag {
        args.push(t);
    }
    if !ids.is_empty() {
        args.extend(["--", "set", "Interface", port]);
        args.extend(ids.iter().map(String::as_str));
    }
    vsctl(owned(&args)).await.map(drop)
}

/// `ovs-vsctl --if-exists del-port BR PORT`
pub async fn del_port(bridge: &str, port: &str) -> Result<()> {
    vsctl(owned(&["--if-exists", "del-port", bridge, port])).await.map(drop)
}

/// An Interface record that carries the original's `pipework.*` external ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkedInterface {
    pub name: String,
    /// Open vSwitch has no working device for it: `ofport` -1, an `error`, or its
    /// `link_state` not `up` (the userspace datapath keeps the ofport of a device
    /// that is gone, without an error: `link_state` says `down`).
    pub unopened: bool,
    /// Its `pipework.*` external ids, the prefix left off (`interface`, `bridge`,
    /// `containerid`, `containername`, `nspid`, `vlan`).
    pub ids: Vec<(String, String)>,
}

impl MarkedInterface {
    /// The `pipework.KEY` id's value.
    pub fn id(&self, key: &str) -> Option<&str> {
        self.ids.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// The Interface records with `pipework.*` external ids (`ovs-vsctl list Interface`).
pub async fn marked_interfaces() -> Result<Vec<MarkedInterface>> {
    let columns = "--columns=name,ofport,error,external_ids,link_state";
    let args = owned(&["--format=json", columns, "list", "Interface"]);
    parse_marked(&vsctl(args).await?)
}

/// `{"headings": [...], "data": [[name, ofport, error, ["map", [[k, v], ...]], link_state], ...]}`;
/// an empty column is `["set", []]`.
fn parse_marked(text: &str) -> Result<Vec<MarkedInterface>> {
    let doc: serde_json::Value = serde_json::from_str(text).context("cannot parse ovs-vsctl's JSON")?;
    let rows = doc["data"].as_array().context("ovs-vsctl's JSON has no data")?;
    let mut found = Vec::new();
    for row in rows {
        let all = row[3][1].as_array().cloned().unwrap_or_default();
        let ids: Vec<(String, String)> = all
            .iter()
            .filter_map(|kv| Some((kv[0].as_str()?.strip_prefix("pipework.")?, kv[1].as_str()?)))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if ids.is_empty() {
            continue;
        }
        let Some(name) = row[0].as_str() else { continue };
        let unopened = row[1].as_i64() == Some(-1) || row[2].is_string() || row[4] != "up";
        found.push(MarkedInterface { name: name.to_string(), unopened, ids });
    }
    Ok(found)
}

/// Whether an Open vSwitch database runs here: its socket, `$OVS_RUNDIR/db.sock`
/// (default `/var/run/openvswitch`), is there.
pub fn database_running() -> bool {
    let dir = std::env::var_os("OVS_RUNDIR").unwrap_or_else(|| "/var/run/openvswitch".into());
    std::path::Path::new(&dir).join("db.sock").exists()
}

/// `ovs-vsctl --if-exists del-port PORT`, whichever bridge holds it.
pub async fn del_port_anywhere(port: &str) -> Result<()> {
    vsctl(owned(&["--if-exists", "del-port", port])).await.map(drop)
}

/// ovs-vsctl parses values in its own syntax: a value with anything beyond
/// [A-Za-z0-9_.-] (a Docker name's leading '/') is written as a quoted string.
fn quote(v: &str) -> String {
    if !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        v.to_string()
    } else {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_marked, quote};

    #[test]
    fn marked_interfaces_are_those_with_pipework_ids() {
        let text = r#"{"data":[["veth1pl9",-1,"could not open network device veth1pl9 (No such device)",["map",[["pipework.bridge","ovsbr0"],["pipework.interface","veth1pl9"]]],"down"],["theirs",1,["set",[]],["map",[]],"down"],["veth1pl8",2,["set",[]],["map",[["pipework.nspid","8"]]],"up"],["veth1pl7",3,["set",[]],["map",[["pipework.nspid","7"]]],"down"]],"headings":["name","ofport","error","external_ids","link_state"]}"#;
        let found = parse_marked(text).unwrap();
        let seen: Vec<(&str, bool)> = found.iter().map(|m| (m.name.as_str(), m.unopened)).collect();
        assert_eq!(seen, [("veth1pl9", true), ("veth1pl8", false), ("veth1pl7", true)]);
        assert_eq!((found[0].id("bridge"), found[0].id("interface")), (Some("ovsbr0"), Some("veth1pl9")));
        assert_eq!((found[1].id("nspid"), found[1].id("vlan")), (Some("8"), None));
        assert!(parse_marked("not json").is_err());
    }

    #[test]
    fn values_are_quoted_for_ovs_vsctl_when_needed() {
        assert_eq!(quote("eth1"), "eth1");
        assert_eq!(quote("4242"), "4242");
        assert_eq!(quote("/web1"), "\"/web1\"");
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
    }
}
