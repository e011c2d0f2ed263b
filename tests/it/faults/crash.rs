//! The kill sweep of issue 23: pipework killed (strace's `signal=KILL`) at the K-th
//! occurrence of a syscall, then, in fresh worlds of the fault scenarios:
//! (a) the same command again gives the full attachment, and `del` then the state
//! from before; (b) `del` at once gives the state from before; (c) `gc` then exits
//! 0 and leaves it so; and for a CNI ADD (`cni-add`): (d) the runtime's DEL leaves
//! the host as before and host-local's store empty, and the next ADD succeeds.
//! "The state from before" allows a bridge the run created
//! (a `del` never removes a bridge it did not name); no intent or record may stay.
//! `scripts/crash-sweep.sh` runs every kill point; the tests in `faults.rs` a subset.

use std::time::{Duration, Instant};

use super::check::{diff, netns_entries};
use super::world::{Fault, Scenario, Verdict, World};
use crate::util::Run;

/// The syscalls of the sweep: every netlink request, and every file syscall that
/// makes or removes state (records, intents, CNI state), plus the opens.
pub const SYSCALLS: &str = "sendto,sendmsg,openat,rename,unlink";

/// The kill sweep's CNI scenario: an ADD with host-local IPAM, judged by (d).
const CNI_ADD: &str = "cni-add";

/// What a kill point came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Point {
    /// Killed there, and recovered.
    Recovered,
    /// The run was not killed (the K-th call was a child's, `ovs-vsctl`'s, which
    /// died instead), and recovered all the same.
    NotKilled,
}

/// One kill point checked in two fresh worlds; `Err` says which promise broke.
pub fn recovers(scenario: Scenario, kill: &Fault, timeout: Duration) -> Result<Point, String> {
    // (a) run again, then del.
    let w = World::new(scenario);
    let (before, netns_before) = (w.snapshots(), netns_entries());
    let killed = w.run(Some(kill), &kill.syscall, None, timeout);
    let point = match killed.code {
        137 => Point::Recovered,
        0 | 1 => Point::NotKilled,
        _ => return Err(format!("the killed run: {}", said(&killed))),
    };
    let args = w.args();
    let again = w.pipework(&args.iter().map(String::as_str).collect::<Vec<_>>());
    match w.verdict(&again, &before, &netns_before) {
        (Verdict::Attached, _) => {}
        (v, why) => return Err(format!("(a) the re-run: {}: {why}; {}", v.name(), said(&again))),
    }
    del_all(&w).map_err(|e| format!("(a) del after the re-run: {e}"))?;
    w.undo_what_del_leaves();
    as_before(&w, &before).map_err(|e| format!("(a) del after the re-run left: {e}"))?;
    // (b) del at once; (c) gc.
    let w = World::new(scenario);
    let before = w.snapshots();
    w.run(Some(kill), &kill.syscall, None, timeout);
    // Killed after its record was written (its last act but removing its intent),
    // the attach is whole: its del leaves what any del leaves.
    let whole = w.has_records();
    del_all(&w).map_err(|e| format!("(b) del: {e}"))?;
    if whole {
        w.undo_what_del_leaves();
    }
    as_before(&w, &before).map_err(|e| format!("(b) del left: {e}"))?;
    let gc = w.pipework(&["gc"]);
    if gc.code != 0 {
        return Err(format!("(c) gc: {}", said(&gc)));
    }
    as_before(&w, &before).map_err(|e| format!("(c) gc left: {e}"))?;
    Ok(point)
}

fn said(run: &Run) -> String {
    format!("exit {}; stderr: {}", run.code, run.stderr.trim().replace('\n', " | "))
}

fn del_all(w: &World) -> Result<(), String> {
    for args in w.del_args() {
        let run = w.pipework(&args.iter().map(String::as_str).collect::<Vec<_>>());
        if run.code != 0 {
            return Err(format!("{}: {}", args.join(" "), said(&run)));
        }
    }
    Ok(())
}

/// Every snapshot as before, but for bridges the run made, now without ports
/// (removed here), within 3 s (the kernel's link-watch work lags); and no intent
/// or record left in the run directory (temporary files included).
fn as_before(w: &World, before: &[String]) -> Result<(), String> {
    for bridge in w.made_bridges() {
        if w.host.link(bridge).is_some() {
            w.host.sh("ip", &["link", "del", bridge]);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut after = w.snapshots();
    while after != before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        after = w.snapshots();
    }
    if let Some(i) = before.iter().zip(&after).position(|(b, a)| b != a) {
        return Err(diff(if i == 0 { "host" } else { "guest" }, &before[i], &after[i]));
    }
    let left = w.processes_left();
    if !left.is_empty() {
        return Err(format!("processes left in the guests: {left:?}"));
    }
    for dir in ["intents", "attachments"] {
        let left: Vec<_> = std::fs::read_dir(w.host.run_dir().join(dir))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        if !left.is_empty() {
            return Err(format!("{dir}: {left:?}"));
        }
    }
    Ok(())
}

/// The whole sweep (`scripts/crash-sweep.sh`): every occurrence of each syscall of
/// `CRASH_SYSCALLS` (default [`SYSCALLS`]) in a clean run of each scenario of
/// `CRASH_SCENARIOS` (default all), at most `CRASH_CAP` per syscall.
#[test]
#[ignore = "the whole sweep takes many minutes: scripts/crash-sweep.sh"]
fn crash_sweep() {
    let env = |name: &str, default: &str| {
        std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or(default.into())
    };
    let all: Vec<&str> = Scenario::CRASH.map(Scenario::name).into_iter().chain([CNI_ADD]).collect();
    let names = env("CRASH_SCENARIOS", &all.join(","));
    let syscalls: Vec<String> = env("CRASH_SYSCALLS", SYSCALLS).split(',').map(String::from).collect();
    let cap: u32 = env("CRASH_CAP", "65534").parse().expect("CRASH_CAP takes a number");
    let timeout = Duration::from_secs(20);
    let started = Instant::now();
    let (mut points, mut not_killed, mut bad) = (0, 0, Vec::new());
    for name in names.split(',') {
        if name == CNI_ADD {
            // (d): the runtime's DEL, then ADD again (crate::cni::killed_adds).
            for syscall in &syscalls {
                let (n, broke) = crate::cni::killed_adds(syscall);
                println!("crash-sweep: {CNI_ADD}: {n} kill points at {syscall}, {} bad", broke.len());
                points += n;
                for e in broke {
                    println!("crash-sweep: BAD {CNI_ADD} {e}");
                    bad.push(format!("{CNI_ADD} {e}"));
                }
            }
            continue;
        }
        let scenario = Scenario::from_name(name).unwrap_or_else(|| panic!("unknown scenario {name:?}"));
        let counts = super::sweep::count_occurrences(scenario, &syscalls, timeout);
        println!("crash-sweep: {name}: occurrences per tracee in a clean run: {counts:?}");
        for (syscall, n) in counts {
            for k in 1..=n.min(cap) {
                points += 1;
                let kill = Fault::kill(&syscall, k);
                match recovers(scenario, &kill, timeout) {
                    Ok(Point::Recovered) => {}
                    Ok(Point::NotKilled) => not_killed += 1,
                    Err(e) => {
                        println!("crash-sweep: BAD {name} {kill}: {e}");
                        bad.push(format!("{name} {kill}"));
                    }
                }
            }
        }
    }
    println!(
        "crash-sweep: {points} kill points, {} recovered ((a)-(c), or (d) for cni-add; {not_killed} of them a child killed, not pipework), {} bad, in {:.0} s",
        points - bad.len(),
        bad.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(bad.is_empty(), "bad kill points:\n{}", bad.join("\n"));
}
