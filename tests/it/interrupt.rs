//! A signal while an attachment is under way (here: waiting for a DHCP lease that
//! never comes) undoes it like any failure: nothing left on the host or in the guest,
//! no client running, one line, and the exit status a shell expects (128 + signal).

use std::process::{Child, Output};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::dhcp::others_in;
use crate::util::{assert_same, Netns};

/// Wait until `ready` holds (the run is waiting for its lease), then send `signal` to
/// the pipework we started, by its pid, and collect what it said.
fn interrupt_when(mut child: Child, signal: Signal, ready: impl Fn() -> bool) -> Output {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("pipework never got to wait for its lease: {:?}", child.wait_with_output());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn sigterm_while_a_client_waits_for_its_lease_undoes_everything() {
    let host = Netns::new();
    let guest = Netns::new();
    let (h, g) = (host.snapshot(), guest.snapshot());
    // No server, and no -n: udhcpc would try for the whole default 90 s.
    let child = host.spawn_pipework(&["br1", &guest.guest(), "udhcpc"]);
    let out = interrupt_when(child, Signal::SIGTERM, || !others_in(&guest).is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(stderr.ends_with(": interrupted by SIGTERM\n"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
    assert_eq!(others_in(&guest), Vec::<u32>::new(), "the client is stopped");
}

#[test]
fn sigint_stops_a_batch_and_every_line_is_undone_or_not_run() {
    let host = Netns::new();
    let guests = [Netns::new(), Netns::new()];
    let before: Vec<String> = guests.iter().map(Netns::snapshot).collect();
    let h = host.snapshot();
    // Lines 1 and 2 run at once (two bridges); line 3 waits behind line 1 (same
    // bridge, not made yet) and never starts.
    let (g0, g1) = (guests[0].guest(), guests[1].guest());
    let lines = format!("br1 {g0} udhcpc\nbr2 -i eth2 {g1} dhcp4:timeout=60\nbr1 -i eth3 {g1} 10.0.0.3/24\n");
    let file = std::env::temp_dir().join(format!("pipework-interrupt-{}.txt", guests[0].pid()));
    std::fs::write(&file, lines).unwrap();
    let child = host.spawn_pipework(&["--batch", file.to_str().unwrap()]);
    // Both lines are waiting: udhcpc runs in the first guest, eth2 is up in the second.
    let out = interrupt_when(child, Signal::SIGINT, || {
        !others_in(&guests[0]).is_empty()
            && guests[1].link("eth2").is_some_and(|l| l["flags"].to_string().contains("\"UP\""))
    });
    let _ = std::fs::remove_file(&file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}");
    assert!(stdout.contains("line 1: ") && stdout.contains("line 2: "), "{stdout}");
    assert_eq!(stdout.matches("interrupted by SIGINT").count(), 3, "{stdout}");
    assert!(stdout.contains("line 3: not run: interrupted by SIGINT\n"), "{stdout}");
    assert!(stdout.ends_with("0 attached, 3 failed\n"), "{stdout}");
    assert_same("host", &h, &host.snapshot());
    for (guest, before) in guests.iter().zip(&before) {
        assert_same("guest", before, &guest.snapshot());
    }
    assert_eq!(others_in(&guests[0]), Vec::<u32>::new(), "the client is stopped");
}
