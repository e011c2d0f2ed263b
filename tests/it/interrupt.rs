//! A signal while an attachment is under way (here: waiting for a DHCP lease that
//! never comes) undoes it like any failure: nothing left on the host or in the guest,
//! no client running, one line; then pipework dies of the signal, so that a shell
//! loop calling it stops too.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use crate::dhcp::others_in;
use crate::util::{assert_same, Netns, BIN};

/// Wait until `ready` holds (the run is waiting for its lease; it is given pipework's
/// pid), then `send` the signal, and collect what pipework said.
fn interrupt_when(mut child: Child, ready: impl Fn(u32) -> bool, send: impl FnOnce(Pid)) -> Output {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready(child.id()) {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("pipework never got to wait for its lease: {:?}", child.wait_with_output());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    send(Pid::from_raw(child.id() as i32));
    child.wait_with_output().unwrap()
}

#[test]
fn sigterm_while_a_client_waits_for_its_lease_undoes_everything() {
    let host = Netns::new();
    let guest = Netns::new();
    let (h, g) = (host.snapshot(), guest.snapshot());
    // No server, and no -n: udhcpc would try for the whole default 90 s.
    let child = host.spawn_pipework(&["br1", &guest.guest(), "udhcpc"]);
    let out = interrupt_when(child, |pw| client_in(&guest, pw), |pid| kill(pid, Signal::SIGTERM).unwrap());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(Signal::SIGTERM as i32), "{stderr}");
    assert!(stderr.contains("cannot get a DHCP lease with udhcpc"), "the wait was interrupted: {stderr}");
    assert!(stderr.ends_with(": interrupted by SIGTERM\n"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_same("host", &h, &host.snapshot());
    assert_same("guest", &g, &guest.snapshot());
    assert_eq!(others_in(&guest), Vec::<u32>::new(), "the client is stopped");
}

#[test]
fn ctrl_c_stops_a_batch_and_every_line_is_undone_or_not_run() {
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
    let waiting = |pw| {
        let up = |l: serde_json::Value| l["flags"].to_string().contains("\"UP\"");
        client_in(&guests[0], pw) && guests[1].link("eth2").is_some_and(up)
    };
    // As the terminal does: SIGINT to the whole foreground process group.
    let out = interrupt_when(child, waiting, |pid| killpg(pid, Signal::SIGINT).unwrap());
    let _ = std::fs::remove_file(&file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.signal(), Some(Signal::SIGINT as i32), "{stdout}");
    assert!(stdout.contains("line 1: cannot get a DHCP lease with udhcpc"), "{stdout}");
    // Line 2 may be caught in its DHCP step or just before it, between two steps.
    assert!(stdout.contains("line 2: "), "{stdout}");
    assert_eq!(stdout.matches("interrupted by SIGINT").count(), 3, "{stdout}");
    assert!(stdout.contains("line 3: not run: interrupted by SIGINT\n"), "{stdout}");
    assert!(stdout.ends_with("0 attached, 3 failed\n"), "{stdout}");
    assert_same("host", &h, &host.snapshot());
    for (guest, before) in guests.iter().zip(&before) {
        assert_same("guest", before, &guest.snapshot());
    }
    assert_eq!(others_in(&guests[0]), Vec::<u32>::new(), "the client is stopped");
}

#[test]
fn a_signal_the_caller_ignores_stays_ignored() {
    let host = Netns::new();
    let guest = Netns::new();
    // As under `nohup` or `trap '' TERM`: pipework must not start catching it.
    let script = format!(
        "trap '' TERM; exec nsenter --net={} {BIN} --timeout 2 br1 {} udhcpc",
        host.path(),
        guest.guest()
    );
    let child = Command::new("sh")
        .args(["-c", &script])
        .envs(host.env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = interrupt_when(child, |pw| client_in(&guest, pw), |pid| kill(pid, Signal::SIGTERM).unwrap());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.ends_with("udhcpc got no lease on eth1 within 2 s\n"), "{stderr}");
}

/// A process other than pipework itself in the guest's namespace: its DHCP client
/// (pipework's own thread visits the namespace for a moment while it prepares).
fn client_in(guest: &Netns, pipework: u32) -> bool {
    others_in(guest).into_iter().any(|p| p != pipework)
}
