//! `pipework --batch FILE`: many attachments in one run, one per line in the ordinary
//! command-line grammar. Each line is one all-or-nothing attachment; lines run
//! concurrently on the one runtime thread and share the host's netlink socket; the
//! results come out in line order, then a summary line.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result};
use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::{json, Value};

use crate::attach::{self, Given};
use crate::cli::{self, AttachCommand, Batch};
use crate::model::{HostIf, Mac};
use crate::netlink::Netlink;
use crate::report::{self, Outcome};
use crate::{facts, interrupt, render};

/// Lines in flight at once. Link changes serialise on the kernel's RTNL lock anyway;
/// this hides each line's own waits (Docker look-ups, thread hand-offs) behind the
/// others' netlink work, and bounds the open descriptors (two or three per line).
const CONCURRENCY: usize = 32;

pub async fn run(req: &Batch) -> Outcome {
    let text = match read_input(req.file.as_deref()) {
        Ok(t) => t,
        Err(e) => return Outcome::failed(e),
    };
    let host = match Netlink::current() {
        Ok(h) => h,
        Err(e) => return Outcome::failed(e),
    };
    // Only now: reading standard input must stay interruptible the default way.
    if let Err(e) = interrupt::install() {
        return Outcome::failed(e.context("cannot catch signals"));
    }
    let mut out = Printer::new(std::io::stdout(), req.json, req.dry_run);
    let mut jobs = Vec::new();
    for (index, (line, parsed)) in parse_lines(&text).into_iter().enumerate() {
        match parsed {
            Ok(mut attach) => {
                attach.opts.dry_run |= req.dry_run;
                attach.opts.verbose |= req.verbose;
                jobs.push(Job { line, index, attach });
            }
            Err(error) => {
                let result = LineResult { line, error: Some(error), steps: Vec::new(), notes: Vec::new() };
                out.record(index, result)
            }
        }
    }
    let cut_short = run_jobs(jobs, &host, &mut out).await;
    let status = Outcome::exit(out.finish());
    match (cut_short, interrupt::received()) {
        (true, Some(signal)) => Outcome::Interrupted(signal, Box::new(status)),
        _ => status,
    }
}

fn read_input(file: Option<&Path>) -> Result<String> {
    match file {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
        }
        None => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("cannot read standard input")?;
            Ok(text)
        }
    }
}

/// Every line that holds words, with its 1-based number: the attachment, or why not.
/// Words are split as a shell splits them (quotes, backslashes, `#` comments), but
/// no shell ever runs. Public (re-exported as `pipework::parse_batch_lines`) only
/// for the fuzz target in `fuzz/`.
pub fn parse_lines(text: &str) -> Vec<(usize, Result<AttachCommand, String>)> {
    let mut jobs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let parsed = match shlex::split(line) {
            None => Err("unbalanced quotes or a trailing backslash".to_string()),
            Some(words) if words.is_empty() => continue,
            Some(words) => cli::parse_words(words),
        };
        jobs.push((i + 1, parsed));
    }
    jobs
}

/// One line to attach.
struct Job {
    /// 1-based, in the input.
    line: usize,
    /// Position in the output.
    index: usize,
    attach: AttachCommand,
}

impl Job {
    fn key(&self, names: &HashMap<Mac, String>) -> String {
        self.attach.req.switch_key(names)
    }
}

/// The interface each `mac:` HOSTIF of the batch stands for now, as the attach itself
/// will find it; one dump of the host's links, and only when some line uses `mac:`.
async fn mac_names(jobs: &[Job], host: &Netlink) -> HashMap<Mac, String> {
    let macs: Vec<Mac> = jobs
        .iter()
        .filter_map(|j| match &j.attach.req.host_if {
            HostIf::Mac(mac) => Some(*mac),
            HostIf::Name(_) => None,
        })
        .collect();
    if macs.is_empty() {
        return HashMap::new();
    }
    // A failed dump only costs the grouping; each line reports its own errors.
    let links = host.links().await.unwrap_or_default();
    macs.into_iter()
        .filter_map(|mac| facts::first_with_mac(&links, mac).map(|l| (mac, l.name.clone())))
        .collect()
}

/// What came of one line.
#[derive(Debug, Clone, PartialEq)]
struct LineResult {
    line: usize,
    /// `None` when the line succeeded.
    error: Option<String>,
    /// The steps, for `--dry-run` (stdout) or `--verbose` (stderr).
    steps: Vec<String>,
    /// Warnings and notices (stderr).
    notes: Vec<String>,
}

impl LineResult {
    fn from_outcome(line: usize, outcome: Outcome) -> LineResult {
        let (error, steps, notes) = match outcome {
            // attach::attach reports a line's own interruption as its failure.
            Outcome::Interrupted(_, said) => return LineResult::from_outcome(line, *said),
            // A line's notices are said with its warnings.
            Outcome::Noticed { mut notices, then } => {
                let mut r = LineResult::from_outcome(line, *then);
                notices.append(&mut r.notes);
                r.notes = notices;
                return r;
            }
            Outcome::Done(lines) => (None, lines, Vec::new()),
            Outcome::Printed { lines, notes } => (None, lines, notes),
            Outcome::Failed { error, rollback_errors, notes } => {
                let mut text = format!("{error:#}");
                for r in rollback_errors {
                    text.push('\n');
                    text.push_str(&r);
                }
                (Some(text), Vec::new(), notes)
            }
            Outcome::Exit { code: 0, lines } => (None, Vec::new(), lines),
            Outcome::Exit { code, lines } => (Some(format!("exit status {code}")), Vec::new(), lines),
            // A line's own `--json`: the batch's result is the document of record.
            Outcome::Json { doc, notes, code: 0 } => (None, vec![doc.to_string()], notes),
            Outcome::Json { doc, notes, .. } => {
                (Some(doc["error"].as_str().unwrap_or("failed").to_string()), Vec::new(), notes)
            }
        };
        LineResult { line, error, steps, notes }
    }
}

/// Run every job, at most [`CONCURRENCY`] at once. A line that fails undoes what it
/// created, such as a new bridge, if nothing is plugged into it: under the feet of
/// another line that found it made and is about to plug in. So the lines of one key
/// go one at a time until one succeeds; what it made then holds its port for good,
/// and the key's other lines go together.
///
/// Returns whether a signal cut the batch short: a line failed once it had come, or
/// never started.
async fn run_jobs<W: Write>(jobs: Vec<Job>, host: &Netlink, out: &mut Printer<W>) -> bool {
    let names = mac_names(&jobs, host).await;
    let mut groups: Vec<VecDeque<Job>> = Vec::new();
    let mut keys: HashMap<String, usize> = HashMap::new();
    for job in jobs {
        let g = *keys.entry(job.key(&names)).or_insert_with(|| {
            groups.push(VecDeque::new());
            groups.len() - 1
        });
        groups[g].push_back(job);
    }
    let mut anchored = vec![false; groups.len()];
    let mut ready: VecDeque<(usize, Job)> =
        groups.iter_mut().enumerate().filter_map(|(g, q)| q.pop_front().map(|j| (g, j))).collect();
    let mut in_flight = FuturesUnordered::new();
    let mut cut_short = false;
    loop {
        // Once a signal has come, no new line starts; the running ones undo themselves.
        while in_flight.len() < CONCURRENCY && interrupt::received().is_none() {
            let Some((g, job)) = ready.pop_front() else { break };
            in_flight.push(async move {
                let AttachCommand { req, opts, warnings } = &job.attach;
                let outcome =
                    render::attachment(opts, attach::attach(req, opts, host, Given::default()).await)
                        .said_first(warnings.clone());
                let failed = matches!(outcome, Outcome::Failed { .. });
                (g, job.index, LineResult::from_outcome(job.line, outcome), failed)
            });
        }
        let Some((g, index, result, failed)) = in_flight.next().await else { break };
        cut_short |= failed && interrupt::received().is_some();
        if !anchored[g] {
            if result.error.is_none() {
                anchored[g] = true;
                ready.extend(groups[g].drain(..).map(|j| (g, j)));
            } else if let Some(next) = groups[g].pop_front() {
                ready.push_back((g, next));
            }
        }
        out.record(index, result);
    }
    if let Some(signal) = interrupt::received() {
        let left = ready.into_iter().map(|(_, j)| j).chain(groups.into_iter().flatten());
        for job in left {
            cut_short = true;
            let error = Some(format!("not run: {signal}"));
            out.record(job.index, LineResult { line: job.line, error, steps: Vec::new(), notes: Vec::new() });
        }
    }
    cut_short
}

/// Prints results in line order as soon as all earlier lines are done; keeps them for
/// the JSON array and the summary.
struct Printer<W: Write> {
    out: W,
    json: bool,
    dry_run: bool,
    next: usize,
    pending: BTreeMap<usize, LineResult>,
    done: Vec<LineResult>,
    write_error: Option<std::io::Error>,
}

impl<W: Write> Printer<W> {
    fn new(out: W, json: bool, dry_run: bool) -> Printer<W> {
        let (next, pending, done, write_error) = (0, BTreeMap::new(), Vec::new(), None);
        Printer { out, json, dry_run, next, pending, done, write_error }
    }

    fn record(&mut self, index: usize, result: LineResult) {
        self.pending.insert(index, result);
        while let Some(r) = self.pending.remove(&self.next) {
            self.emit(&r);
            self.done.push(r);
            self.next += 1;
        }
    }

    fn emit(&mut self, r: &LineResult) {
        // Dry-run steps go to stdout with the result; done steps to stderr.
        let done: &[String] = if self.dry_run { &[] } else { &r.steps };
        for l in done.iter().chain(&r.notes) {
            report::say(&format!("line {}: {l}", r.line));
        }
        if !self.json {
            for l in human_lines(r, self.dry_run) {
                self.write(&l);
            }
        }
    }

    /// A line on stdout; the first write error is kept, and fails the batch.
    fn write(&mut self, line: &str) {
        if self.write_error.is_none() {
            if let Err(e) = writeln!(self.out, "{line}") {
                self.write_error = Some(e);
            }
        }
    }

    /// The JSON array (with `--json`) and the summary; the exit status.
    fn finish(&mut self) -> u8 {
        let failed = self.done.iter().filter(|r| r.error.is_some()).count();
        let ok = self.done.len() - failed;
        let verb = if self.dry_run { "planned" } else { "attached" };
        let summary = format!("{ok} {verb}, {failed} failed");
        if self.json {
            // One array, one line's object per line of text: easy on `grep` and `jq` alike.
            let items: Vec<String> = self.done.iter().map(|r| json_of(r, self.dry_run).to_string()).collect();
            let body = if items.is_empty() { String::new() } else { format!("\n{}\n", items.join(",\n")) };
            self.write(&format!("[{body}]"));
            // stdout stays one JSON document.
            report::say(&summary);
        } else {
            self.write(&summary);
        }
        if let (None, Err(e)) = (&self.write_error, self.out.flush()) {
            self.write_error = Some(e);
        }
        if let Some(e) = &self.write_error {
            report::say(&format!("cannot write to standard output: {e}"));
            return 1;
        }
        u8::from(failed > 0)
    }
}

/// `line N: ok`, or `line N: ERROR` (one per line of the error); with `--dry-run`,
/// the steps first.
fn human_lines(r: &LineResult, dry_run: bool) -> Vec<String> {
    let mut lines = Vec::new();
    if dry_run {
        lines.extend(r.steps.iter().map(|s| format!("line {}: {s}", r.line)));
    }
    match &r.error {
        None => lines.push(format!("line {}: ok", r.line)),
        Some(e) => lines.extend(e.lines().map(|l| format!("line {}: {l}", r.line))),
    }
    lines
}

fn json_of(r: &LineResult, dry_run: bool) -> Value {
    let mut v = json!({ "line": r.line, "ok": r.error.is_none(), "error": r.error });
    if dry_run {
        v["steps"] = json!(r.steps);
    }
    v
}

#[cfg(test)]
mod tests;
