//! The whole fault-injection sweep of issue 11, run by `scripts/fault-sweep.sh` (an
//! ignored test, so that it shares the integration tests' worlds and binary). Per
//! scenario: one clean traced run counts each syscall's occurrences per tracee (strace
//! counts `when=K` per syscall and per tracee); then, for every (syscall, K, errno),
//! a fresh world, snapshots, one injected run, a verdict, teardown. Prints a table
//! of verdicts per scenario and the first examples of each bad verdict with what
//! reproduces them.
//!
//! Options, as environment variables (the script sets them from its flags):
//! `FAULT_SCENARIOS` (comma-separated names, default all six), `FAULT_SYSCALLS`
//! (default `sendto,sendmsg,recvfrom,recvmsg,setns,socket,epoll_ctl`), `FAULT_ERRNOS`
//! (default `ENOBUFS,EIO,EPERM`), `FAULT_CAP` (at most this many occurrences K per
//! syscall and scenario), `FAULT_JOBS` (runs at once, default 2), `FAULT_TIMEOUT`
//! (seconds per run, default 20), `FAULT_EXAMPLES` (per bad verdict, default 5),
//! `FAULT_ONLY_K` (only that occurrence: one case again).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::check::netns_entries;
use super::world::{Fault, Scenario, Verdict, World};

pub const DEFAULT_SYSCALLS: &str = "sendto,sendmsg,recvfrom,recvmsg,setns,socket,epoll_ctl";

struct Options {
    scenarios: Vec<Scenario>,
    syscalls: Vec<String>,
    errnos: Vec<String>,
    cap: u32,
    jobs: usize,
    timeout: Duration,
    examples: usize,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())
}

fn list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

impl Options {
    fn from_env() -> Options {
        let names = env_or("FAULT_SCENARIOS", &Scenario::ALL.map(Scenario::name).join(","));
        let scenarios = list(&names)
            .iter()
            .map(|n| {
                Scenario::from_name(n).unwrap_or_else(|| panic!("FAULT_SCENARIOS: unknown scenario {n:?}"))
            })
            .collect();
        let num = |name: &str, default: &str| -> u64 {
            env_or(name, default).parse().unwrap_or_else(|_| panic!("{name} takes a number"))
        };
        Options {
            scenarios,
            syscalls: list(&env_or("FAULT_SYSCALLS", DEFAULT_SYSCALLS)),
            errnos: list(&env_or("FAULT_ERRNOS", "ENOBUFS,EIO,EPERM")),
            cap: num("FAULT_CAP", "65534") as u32,
            jobs: num("FAULT_JOBS", "2").max(1) as usize,
            timeout: Duration::from_secs(num("FAULT_TIMEOUT", "20")),
            examples: num("FAULT_EXAMPLES", "5") as usize,
        }
    }
}

/// Occurrences of each syscall in a clean traced run of `scenario`: the most any
/// one tracee (thread) made, since `when=K` counts per tracee.
pub fn count_occurrences(
    scenario: Scenario,
    syscalls: &[String],
    timeout: Duration,
) -> BTreeMap<String, u32> {
    let world = World::new(scenario);
    let before = world.snapshots();
    let trace = std::env::temp_dir().join(crate::util::unique("pipework-trace-"));
    let run = world.run(None, &syscalls.join(","), trace.to_str(), timeout);
    let text = std::fs::read_to_string(&trace).unwrap_or_default();
    let _ = std::fs::remove_file(&trace);
    let (verdict, why) = world.verdict(&run, &before, &netns_entries());
    assert_eq!(
        verdict,
        Verdict::Attached,
        "the clean traced run of {} failed: {why} {run:?}",
        scenario.name()
    );
    let mut per_tracee: BTreeMap<(String, String), u32> = BTreeMap::new();
    for line in text.lines() {
        // "PID name(args..." (an "<... name resumed>" line is the same call, and
        // "+++ exited" lines are no calls).
        let Some((pid, rest)) = line.split_once(' ') else { continue };
        let Some((name, _)) = rest.trim_start().split_once('(') else { continue };
        if syscalls.iter().any(|s| s == name) {
            *per_tracee.entry((name.to_string(), pid.to_string())).or_default() += 1;
        }
    }
    let mut counts: BTreeMap<String, u32> = syscalls.iter().map(|s| (s.clone(), 0)).collect();
    for ((name, _), n) in per_tracee {
        let c = counts.get_mut(&name).unwrap();
        *c = (*c).max(n);
    }
    counts
}

/// One injected run in a fresh world: the verdict and what explains it.
pub fn inject(
    scenario: Scenario,
    fault: &Fault,
    syscalls: &str,
    timeout: Duration,
) -> (Verdict, String, String) {
    let world = World::new(scenario);
    let netns_before = netns_entries();
    let before = world.snapshots();
    let run = world.run(Some(fault), syscalls, None, timeout);
    let (verdict, why) = world.verdict(&run, &before, &netns_before);
    let said = format!("exit {}; stderr: {}", run.code, run.stderr.trim().replace('\n', " | "));
    (verdict, why, format!("{said}; stdout: {}", run.stdout.trim().replace('\n', " | ")))
}

/// What reproduces one case by hand (world built as `World::new` does).
fn reproduction(scenario: Scenario, fault: &Fault) -> String {
    let world_args = match scenario {
        Scenario::NewBridge => "br1 pid:G 10.9.0.2/24@10.9.0.1",
        Scenario::ExistingBridge => "br1 pid:G 10.9.0.2/24@10.9.0.1   (br1 exists, up, with a port port0 whose peer is up)",
        Scenario::Ipv6 => "br6 -i eth7 -l vhost7 pid:G fd00:9::2/64@fd00:9::1",
        Scenario::Macvlan => "eth2 pid:G 10.9.1.2/24@10.9.1.1   (eth2: a veth, down, its peer up in another netns)",
        Scenario::DirectPhys => {
            "--direct-phys eth2 pid:G 10.9.2.2/24@10.9.2.1   (eth2: a veth, up, 192.0.2.5/24, a route; its peer up in another netns)"
        }
        Scenario::Batch => "--batch FILE --json   (3 lines: br1 G1, br1 G2, br9 -i eth3 G3 IPv6)",
        Scenario::OvsTag => "ovsbr0 pid:G 10.9.4.2/24@10.9.4.1 @10   (a private Open vSwitch, ovsbr0 on netdev)",
        Scenario::Dhcp4F => "br1 pid:G dhcp4-f   (existing br1, dnsmasq behind it; the keeper outlives the run)",
        Scenario::HostShim => "--host-shim eth2 pid:G 10.9.6.2/24   (eth2 up with 10.9.6.1/24, which moves to pwshim-eth2)",
    };
    format!(
        "scripts/fault-sweep.sh --scenarios {} --syscalls {} --errnos {} --only-k {}   # strace -f -e inject={fault} pipework {world_args}",
        scenario.name(),
        fault.syscall,
        fault.errno,
        fault.k
    )
}

#[derive(Default)]
struct Tally {
    counts: BTreeMap<(Scenario, Verdict), usize>,
    examples: BTreeMap<Verdict, Vec<String>>,
    bad: Vec<(Scenario, Fault, Verdict)>,
}

#[test]
#[ignore = "the whole sweep takes many minutes: scripts/fault-sweep.sh"]
fn fault_sweep() {
    let opts = Options::from_env();
    let only_k: Option<u32> = std::env::var("FAULT_ONLY_K").ok().and_then(|k| k.parse().ok());
    let started = Instant::now();
    let mut work = VecDeque::new();
    for &scenario in &opts.scenarios {
        let counts = count_occurrences(scenario, &opts.syscalls, opts.timeout);
        println!("fault-sweep: {}: occurrences per tracee in a clean run: {counts:?}", scenario.name());
        for (syscall, n) in counts {
            for k in (1..=n.min(opts.cap)).filter(|k| only_k.is_none_or(|o| o == *k)) {
                for errno in &opts.errnos {
                    work.push_back((scenario, Fault { syscall: syscall.clone(), k, errno: errno.clone() }));
                }
            }
        }
    }
    let total = work.len();
    println!("fault-sweep: {total} injected runs, {} at once", opts.jobs);
    let queue = Mutex::new(work);
    let tally = Mutex::new(Tally::default());
    // strace counts `when=` per tracee: trace only the injected syscall (cheaper).
    std::thread::scope(|s| {
        for _ in 0..opts.jobs {
            s.spawn(|| loop {
                let Some((scenario, fault)) = queue.lock().unwrap().pop_front() else { return };
                let (verdict, why, said) = inject(scenario, &fault, &fault.syscall, opts.timeout);
                let mut t = tally.lock().unwrap();
                *t.counts.entry((scenario, verdict)).or_default() += 1;
                let done: usize = t.counts.values().sum();
                if done % 100 == 0 {
                    println!(
                        "fault-sweep: {done}/{total} runs, {} bad, {:.0} s",
                        t.bad.len(),
                        started.elapsed().as_secs_f64()
                    );
                }
                if !verdict.is_ok() {
                    t.bad.push((scenario, fault.clone(), verdict));
                    let ex = t.examples.entry(verdict).or_default();
                    if ex.len() < opts.examples {
                        ex.push(format!(
                            "  {} {fault}: {why}\n      {said}\n      repro: {}",
                            scenario.name(),
                            reproduction(scenario, &fault)
                        ));
                    }
                }
            });
        }
    });
    let t = tally.into_inner().unwrap();
    print_table(&opts, &t, total, started.elapsed());
}

fn print_table(opts: &Options, t: &Tally, total: usize, took: Duration) {
    println!(
        "\nfault-sweep: {total} runs in {:.0} s; syscalls {}; errnos {}",
        took.as_secs_f64(),
        opts.syscalls.join(","),
        opts.errnos.join(",")
    );
    let mut header = format!("{:<16} {:>5}", "scenario", "runs");
    for v in Verdict::ALL {
        header += &format!(" {:>15}", v.name());
    }
    println!("{header}");
    let mut sums = vec![0usize; Verdict::ALL.len()];
    for &s in &opts.scenarios {
        let row: Vec<usize> =
            Verdict::ALL.iter().map(|v| t.counts.get(&(s, *v)).copied().unwrap_or(0)).collect();
        let mut line = format!("{:<16} {:>5}", s.name(), row.iter().sum::<usize>());
        for (i, n) in row.iter().enumerate() {
            sums[i] += n;
            line += &format!(" {n:>15}");
        }
        println!("{line}");
    }
    let mut line = format!("{:<16} {:>5}", "all", sums.iter().sum::<usize>());
    for n in &sums {
        line += &format!(" {n:>15}");
    }
    println!("{line}");
    let bad: usize = t.bad.len();
    println!("bad: {bad} of {total} ({:.1}%)", 100.0 * bad as f64 / total.max(1) as f64);
    for (v, ex) in &t.examples {
        println!("\nfirst {} of {} {}:", ex.len(), t.bad.iter().filter(|b| b.2 == *v).count(), v.name());
        ex.iter().for_each(|e| println!("{e}"));
    }
    // Every bad case, one line each, grouped by (scenario, syscall, verdict), for the
    // fixes' to-do list.
    let mut groups: BTreeMap<(Scenario, String, Verdict), BTreeSet<String>> = BTreeMap::new();
    for (s, f, v) in &t.bad {
        groups.entry((*s, f.syscall.clone(), *v)).or_default().insert(format!("{}/{}", f.k, f.errno));
    }
    println!("\nall bad cases (K/ERRNO) by scenario, syscall and verdict:");
    for ((s, sys, v), ks) in groups {
        println!("  {} {sys} {}: {}", s.name(), v.name(), ks.into_iter().collect::<Vec<_>>().join(" "));
    }
}
