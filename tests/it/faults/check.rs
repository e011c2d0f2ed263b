//! Helpers of the fault worlds: compact snapshot differences for the report, `ip -j`
//! readers, /var/run/netns, and a bounded wait for a traced run.

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{Netns, Run};

pub fn flags(link: &Value) -> Vec<String> {
    link["flags"]
        .as_array()
        .map(|f| f.iter().filter_map(|x| x.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

pub fn link_names(ns: &Netns) -> BTreeSet<String> {
    let links = ns.ip_j(&["link", "show"]);
    links.as_array().unwrap().iter().filter_map(|l| l["ifname"].as_str().map(String::from)).collect()
}

/// The link names of a snapshot's `link show` part.
pub fn names_in_snapshot(snapshot: &str) -> BTreeSet<String> {
    let links =
        snapshot.lines().next().and_then(|l| l.split_once(": ")).map(|(_, json)| json).unwrap_or("[]");
    let v: Value = serde_json::from_str(links).unwrap_or(Value::Array(vec![]));
    v.as_array().unwrap().iter().filter_map(|l| l["ifname"].as_str().map(String::from)).collect()
}

/// What differs between two snapshots, compactly: each item (link, link's
/// addresses, route) only before ("-") or only after ("+").
pub fn diff(what: &str, before: &str, after: &str) -> String {
    let items = |snap: &str| -> Vec<String> {
        snap.lines()
            .filter_map(|l| l.split_once(": "))
            .flat_map(|(_, json)| match serde_json::from_str::<Value>(json) {
                Ok(Value::Array(v)) => v.iter().map(summary).collect(),
                _ => vec![json.to_string()],
            })
            .collect()
    };
    let (b, a) = (items(before), items(after));
    let mut out: Vec<String> = b.iter().filter(|x| !a.contains(x)).map(|x| format!("-{x}")).collect();
    out.extend(a.iter().filter(|x| !b.contains(x)).map(|x| format!("+{x}")));
    if out.is_empty() {
        // A detail the summaries leave out: show where the texts part.
        let at = before
            .bytes()
            .zip(after.bytes())
            .position(|(x, y)| x != y)
            .unwrap_or(before.len().min(after.len()));
        let around = |t: &str| {
            String::from_utf8_lossy(&t.as_bytes()[at.saturating_sub(60).min(t.len())..(at + 60).min(t.len())])
                .into_owned()
        };
        out.push(format!("before ...{}... after ...{}...", around(before), around(after)));
    }
    format!("{what} changed: {}", out.join(", "))
}

/// One `ip -j` item in a few words.
fn summary(v: &Value) -> String {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    if v.get("dst").is_some() {
        let table =
            v.get("table").map(|t| format!(" table {}", t.as_str().unwrap_or(""))).unwrap_or_default();
        let via = v.get("gateway").map(|g| format!(" via {}", g.as_str().unwrap_or(""))).unwrap_or_default();
        return format!("route {}{via} dev {}{table}", s("dst"), s("dev"));
    }
    if let Some(addrs) = v["addr_info"].as_array() {
        let list: Vec<String> = addrs
            .iter()
            .map(|a| format!("{}/{}", a["local"].as_str().unwrap_or(""), a["prefixlen"]))
            .collect();
        return format!("addrs of {}: {}", s("ifname"), list.join(" "));
    }
    let master = v.get("master").map(|m| format!(" master {}", m.as_str().unwrap_or(""))).unwrap_or_default();
    format!("link {} {}{master}", s("ifname"), v["flags"])
}

/// The names under /var/run/netns (none, if it does not exist), but for those that
/// tests running meanwhile make: the CNI tests' `pwtcni-*`, Podman's `netns-*` and
/// containerd's CRI's `cni-*` (1.6 makes its pods' there whatever its config says;
/// pipework makes none, and the original named its entries by pid).
pub fn netns_entries() -> BTreeSet<String> {
    std::fs::read_dir("/var/run/netns")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_else(|_| Vec::new())
        .into_iter()
        .filter(|n: &String| !["pwtcni-", "netns-", "cni-"].iter().any(|p| n.starts_with(p)))
        .collect()
}

/// Wait for `child` (nsenter exec'd into strace) at most `timeout`; then kill the
/// tracees strace started (by pid, from /proc) and strace itself, and report -2.
pub fn wait_bounded(mut child: Child, timeout: Duration) -> Run {
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let strace = child.id();
            let kids =
                std::fs::read_to_string(format!("/proc/{strace}/task/{strace}/children")).unwrap_or_default();
            for pid in kids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            let mut run = Run::from(out);
            run.code = -2;
            run.stderr += &format!("\n(timed out after {timeout:?})");
            return run;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    let signal = out.status.signal();
    let mut run = Run::from(out);
    if let Some(sig) = signal {
        run.code = 128 + sig;
    }
    run
}
