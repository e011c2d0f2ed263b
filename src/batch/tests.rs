//! Table tests for the batch file grammar, the per-line results and their printing.

use super::*;

fn parsed(text: &str) -> Vec<(usize, Result<String, String>)> {
    parse_lines(text).into_iter().map(|(n, r)| (n, r.map(|a| a.req.guest))).collect()
}

#[test]
fn comments_blank_lines_and_line_numbers() {
    let text = "# header\n\nbr1 pid:1 10.0.0.2/24\n   \n  br1 pid:2 10.0.0.3/24 # trailing\n\t# indented\n";
    assert_eq!(parsed(text), vec![(3, Ok("pid:1".into())), (5, Ok("pid:2".into()))]);
}

#[test]
fn words_are_split_as_a_shell_would() {
    let lines = parse_lines("br1 'web 1' \"10.0.0.2/24\" -i eth2\nbr1 w\\ 2 10.0.0.3/24 U:a#b\n");
    let a = lines[0].1.as_ref().unwrap();
    assert_eq!(a.req.guest, "web 1");
    assert_eq!(a.req.container_if.as_ref().unwrap().as_str(), "eth2");
    let b = lines[1].1.as_ref().unwrap();
    assert_eq!(b.req.guest, "w 2");
    // `#` inside a word is no comment, as in a shell.
    assert!(b.req.mac.is_some());
}

#[test]
fn bad_lines_say_why_and_keep_their_number() {
    let text = "br1 pid:1\nbr1 'pid:1 10.0.0.2/24\nroute pid:1 add default via 10.0.0.1\n--wait\n\
                br1 pid:1 10.0.0.256/24\nbr1 --bogus pid:1 10.0.0.2/24\n";
    let got = parsed(text);
    let errors: Vec<(usize, String)> = got.into_iter().map(|(n, r)| (n, r.unwrap_err())).collect();
    assert_eq!(errors[0], (1, "too few arguments (HOSTIF [options] GUEST IPSPEC [MAC][@VLAN])".into()));
    assert_eq!(errors[1], (2, "unbalanced quotes or a trailing backslash".into()));
    assert!(errors[2].1.starts_with("only attachments"), "{:?}", errors[2]);
    assert!(errors[3].1.starts_with("only attachments"), "{:?}", errors[3]);
    assert_eq!(errors[4].0, 5);
    assert!(errors[4].1.contains("10.0.0.256"), "{:?}", errors[4]);
    assert!(errors[5].1.contains("--bogus"), "{:?}", errors[5]);
}

#[test]
fn lines_creating_the_same_thing_share_a_key() {
    let mac: Mac = "00:f3:15:4a:42:c8".parse().unwrap();
    let names = HashMap::from([(mac, "eth0".to_string())]);
    let key = |line: &str| {
        let attach = parse_lines(line).remove(0).1.unwrap();
        Job { line: 1, index: 0, attach }.key(&names)
    };
    assert_eq!(key("br1 pid:1 10.0.0.2/24"), key("br1 -i eth2 pid:2 10.0.0.3/24"));
    assert_ne!(key("br1 pid:1 10.0.0.2/24"), key("br2 pid:1 10.0.0.2/24"));
    assert_ne!(key("eth0 pid:1 10.0.0.2/24 @10"), key("eth0 pid:1 10.0.0.2/24 @20"));
    // A mac: HOSTIF groups with the interface it stands for.
    assert_eq!(key("eth0 pid:1 10.0.0.2/24 @10"), key("mac:00:F3:15:4A:42:C8 pid:2 10.0.0.3/24 @10"));
    assert_ne!(key("eth0 pid:1 10.0.0.2/24 @10"), key("mac:00:f3:15:4a:42:c9 pid:2 10.0.0.3/24 @10"));
}

#[test]
fn outcomes_become_results() {
    let ok = LineResult::from_outcome(3, Outcome::Done(vec![]));
    assert_eq!(ok, LineResult { line: 3, error: None, steps: vec![], notes: vec![] });
    let failed = LineResult::from_outcome(
        4,
        Outcome::Failed {
            error: anyhow::anyhow!("why").context("what failed"),
            rollback_errors: vec!["rollback: cannot delete x: busy".into()],
            notes: vec![],
        },
    );
    assert_eq!(failed.error.as_deref(), Some("what failed: why\nrollback: cannot delete x: busy"));
    assert_eq!(
        human_lines(&failed, false),
        ["line 4: what failed: why", "line 4: rollback: cannot delete x: busy"]
    );
    assert_eq!(human_lines(&ok, false), ["line 3: ok"]);
    let planned = LineResult::from_outcome(
        5,
        Outcome::Printed { lines: vec!["ip link add br1 up type bridge".into()], notes: vec![] },
    );
    assert_eq!(human_lines(&planned, true), ["line 5: ip link add br1 up type bridge", "line 5: ok"]);
}

fn result(line: usize, error: Option<&str>) -> LineResult {
    LineResult { line, error: error.map(String::from), steps: vec![], notes: vec![] }
}

/// A stdout that is full (`--batch --json > /dev/full`).
struct Full;

impl std::io::Write for Full {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::from_raw_os_error(28))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_batch_whose_results_cannot_be_written_fails() {
    let mut p = Printer::new(Full, true, false);
    p.record(0, result(1, None));
    assert_eq!(p.finish(), 1);
}

#[test]
fn results_print_in_line_order_with_a_summary() {
    let mut p = Printer::new(Vec::new(), false, false);
    p.record(1, result(4, Some("boom")));
    assert!(p.out.is_empty(), "line 4 waits for line 2");
    p.record(2, result(7, None));
    p.record(0, result(2, None));
    let (code, out) = p.finish_into_test();
    assert_eq!(code, 1);
    assert_eq!(out, "line 2: ok\nline 4: boom\nline 7: ok\n2 attached, 1 failed\n");
}

#[test]
fn json_is_one_array_of_line_ok_error() {
    let mut p = Printer::new(Vec::new(), true, false);
    p.record(0, result(1, None));
    p.record(1, result(3, Some("cannot create bridge br1: Operation not permitted")));
    let (code, out) = p.finish_into_test();
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        json!([
            {"line": 1, "ok": true, "error": null},
            {"line": 3, "ok": false, "error": "cannot create bridge br1: Operation not permitted"}
        ])
    );
}

#[test]
fn all_good_exits_0() {
    let mut p = Printer::new(Vec::new(), false, false);
    p.record(0, result(1, None));
    assert_eq!(p.finish_into_test(), (0, "line 1: ok\n1 attached, 0 failed\n".into()));
}

impl Printer<Vec<u8>> {
    /// [`Printer::finish`], and everything written.
    fn finish_into_test(mut self) -> (u8, String) {
        let code = self.finish();
        (code, String::from_utf8(self.out).unwrap())
    }
}
