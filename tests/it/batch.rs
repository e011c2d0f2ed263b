//! `--batch`: many netns guests in one run, per-line results in line order, a line
//! that fails undone alone while the others land, comments, standard input, JSON.

use std::io::Write;
use std::process::Stdio;

use serde_json::Value;

use crate::util::{assert_same, guest_with_default_route, unique, Netns, Run};

/// A batch file under the temp directory, removed on drop.
struct BatchFile {
    path: std::path::PathBuf,
}

impl BatchFile {
    fn new(text: &str) -> BatchFile {
        let path = std::env::temp_dir().join(unique("pipework-batch-"));
        std::fs::write(&path, text).unwrap();
        BatchFile { path }
    }

    fn arg(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

impl Drop for BatchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Run the binary in `host`'s namespace with `stdin` as its standard input.
fn run_with_stdin(host: &Netns, args: &[&str], stdin: &str) -> Run {
    let mut child = host
        .pipework_command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pipework");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    Run::from(child.wait_with_output().unwrap())
}

/// The guest has eth1 with `addr`, and a default route via `gw` if given.
#[track_caller]
fn assert_attached(guest: &Netns, addr: &str, gw: Option<&str>) {
    let addrs = guest.addrs("eth1");
    assert!(addrs.contains(&addr.to_string()), "guest {}: {addrs:?}", guest.guest());
    if let Some(gw) = gw {
        let def = guest.ip_j(&["-4", "route", "show", "default"]);
        assert_eq!(def[0]["gateway"], gw, "{def}");
        assert_eq!(def[0]["dev"], "eth1", "{def}");
    }
}

#[test]
fn many_guests_on_one_new_bridge_with_comments_and_blank_lines() {
    let host = Netns::new();
    let guests: Vec<Netns> = (0..8).map(|_| Netns::new()).collect();
    let mut text = String::from("# eight guests, one bridge that does not exist yet\n\n");
    for (i, g) in guests.iter().enumerate() {
        text += &format!("br1 {} 10.7.0.{}/24@10.7.0.1   # guest {i}\n", g.guest(), i + 2);
        if i == 3 {
            text += "   \n\t# half way\n";
        }
    }
    let file = BatchFile::new(&text);
    let run = host.pipework(&["--batch", file.arg()]).ok();
    // Lines 3-6, then two lines of nothing, then 9-12: numbers are the file's own.
    let want: Vec<String> = [3, 4, 5, 6, 9, 10, 11, 12].iter().map(|n| format!("line {n}: ok")).collect();
    let mut got: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(got.pop(), Some("8 attached, 0 failed"), "{run:?}");
    assert_eq!(got, want, "{run:?}");
    assert_eq!(run.stderr, "", "{run:?}");
    for (i, g) in guests.iter().enumerate() {
        assert_attached(g, &format!("10.7.0.{}/24", i + 2), Some("10.7.0.1"));
    }
    let ports = host.ip_j(&["link", "show", "master", "br1"]);
    assert_eq!(ports.as_array().unwrap().len(), 8, "{ports}");
    assert!(guests[0].ping("10.7.0.9"), "first guest cannot reach the last one");
}

#[test]
fn a_failing_line_is_undone_alone_while_the_others_land() {
    let host = Netns::new();
    let (a, c, e) = (Netns::new(), Netns::new(), Netns::new());
    // b fails at the veth (a multicast MAC), after creating the bridge, which it then
    // removes; d fails at its last step, after its own default route was deleted.
    let (b, d) = (Netns::new(), guest_with_default_route());
    let (b_before, d_before) = (b.snapshot(), d.snapshot());
    let text = format!(
        "br2 {} 10.8.0.3/24 01:00:5e:00:00:01\n\
         br2 {} 10.8.0.2/24\n\
         br2 {} 10.8.0.4/24\n\
         br2 {} 10.8.0.5/24@10.8.0.255\n\
         br2 {} 10.8.0.6/24\n\
         br2 {}\n",
        b.guest(),
        a.guest(),
        c.guest(),
        d.guest(),
        e.guest(),
        e.guest(),
    );
    let file = BatchFile::new(&text);
    let run = host.pipework(&["--batch", file.arg()]);
    assert_eq!(run.code, 1, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 7, "{run:?}");
    assert!(lines[0].starts_with("line 1: cannot create veth pair veth1pl"), "{run:?}");
    assert_eq!(lines[1], "line 2: ok");
    assert_eq!(lines[2], "line 3: ok");
    assert!(lines[3].starts_with("line 4: cannot set the default route via 10.8.0.255 on eth1"), "{run:?}");
    assert_eq!(lines[4], "line 5: ok");
    assert!(lines[5].starts_with("line 6: too few arguments"), "{run:?}");
    assert_eq!(lines[6], "3 attached, 3 failed");
    assert_same("guest of line 1", &b_before, &b.snapshot());
    assert_same("guest of line 4", &d_before, &d.snapshot());
    assert_attached(&a, "10.8.0.2/24", None);
    assert_attached(&c, "10.8.0.4/24", None);
    assert_attached(&e, "10.8.0.6/24", None);
    let ports = host.ip_j(&["link", "show", "master", "br2"]);
    assert_eq!(ports.as_array().unwrap().len(), 3, "only the lines that landed keep a port: {ports}");
}

#[test]
fn standard_input_and_json() {
    let host = Netns::new();
    let (a, b) = (Netns::new(), Netns::new());
    let bridge = unique("brj");
    let text =
        format!("{bridge} {} 10.6.0.2/24\n# a comment\n{bridge} {} 10.6.0.256/24\n", a.guest(), b.guest());
    let run = run_with_stdin(&host, &["--batch", "-", "--json"], &text);
    assert_eq!(run.code, 1, "{run:?}");
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"));
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 2, "{v}");
    assert_eq!(items[0], serde_json::json!({"line": 1, "ok": true, "error": null}));
    assert_eq!(items[1]["line"], 3);
    assert_eq!(items[1]["ok"], false);
    assert!(items[1]["error"].as_str().unwrap().contains("10.6.0.256"), "{v}");
    assert_eq!(run.stderr, "pipework: 1 attached, 1 failed\n");
    assert_attached(&a, "10.6.0.2/24", None);
    assert!(b.link("eth1").is_none());
}

#[test]
fn an_unreadable_file_is_one_line_and_exit_1() {
    let host = Netns::new();
    let missing = std::env::temp_dir().join(unique("pipework-none-"));
    let line = host.pipework(&["--batch", missing.to_str().unwrap()]).failed();
    assert!(line.starts_with("pipework: cannot read ") && line.contains("No such file"), "{line}");
}
