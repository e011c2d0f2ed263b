//! Announcing a new static address: `tcpdump` in a peer on the same bridge sees the
//! gratuitous ARP (IPv4) and the unsolicited neighbour advertisement (IPv6).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::{unique, Netns};

/// How long to wait for tcpdump to listen, or for the packet (the kernel sends the
/// IPv6 one when duplicate address detection ends, ~1-2 s): generous, not a timing
/// assertion.
const PATIENCE: Duration = Duration::from_secs(10);

/// One `tcpdump -c 1` we started in a namespace; killed (by its own pid) on drop.
pub(crate) struct Tcpdump {
    child: Child,
}

impl Tcpdump {
    /// Start capturing on `dev` in `ns` and return once tcpdump says it listens.
    pub(crate) fn start(ns: &Netns, dev: &str, filter: &str) -> Tcpdump {
        let mut child = Command::new("nsenter")
            .arg(format!("--net={}", ns.path()))
            .args(["tcpdump", "-i", dev, "-n", "-e", "-vv", "-l", "--immediate-mode", "-c", "1", filter])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump (Debian package tcpdump)");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
            }
        });
        let mut dump = Tcpdump { child };
        if rx.recv_timeout(PATIENCE).is_err() {
            let _ = dump.child.kill();
            panic!("tcpdump did not start listening on {dev}");
        }
        dump
    }

    /// Everything tcpdump printed for its one packet (it exits after it).
    pub(crate) fn packet(mut self) -> String {
        let mut stdout = self.child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            let _ = tx.send(s);
        });
        // On timeout the drop below kills tcpdump, which ends the reader too.
        rx.recv_timeout(PATIENCE).unwrap_or_else(|_| panic!("tcpdump saw no packet within {PATIENCE:?}"))
    }

    /// True when tcpdump saw no packet at all within `window`.
    fn saw_nothing_within(mut self, window: Duration) -> bool {
        std::thread::sleep(window);
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A host namespace with a bridge and a peer on it (no address: it only listens).
fn world() -> (Netns, Netns, String) {
    let host = Netns::new();
    let peer = Netns::new();
    let br = unique("bra");
    host.pipework(&[&br, "-i", "eth9", &peer.guest(), "0/0"]).ok();
    until_every_port_forwards(&host, &br);
    (host, peer, br)
}

/// The peer's port drops frames until the kernel's linkwatch work has enabled it
/// (asynchronously, after the attach returns): wait for that before listening.
pub(crate) fn until_every_port_forwards(host: &Netns, br: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let ports = host.sh("bridge", &["-j", "link", "show", "master", br]);
        let ports: Vec<serde_json::Value> = serde_json::from_str(&ports).expect("bridge -j");
        if !ports.is_empty() && ports.iter().all(|p| p["state"] == "forwarding") {
            return;
        }
        assert!(Instant::now() < deadline, "ports of {br} not forwarding: {ports:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[track_caller]
fn assert_has(packet: &str, parts: &[&str]) {
    for p in parts {
        assert!(packet.contains(p), "expected {p:?} in tcpdump's output:\n{packet}");
    }
}

#[test]
fn ipv4_gratuitous_arp_reaches_a_peer_on_the_bridge() {
    let (host, peer, br) = world();
    let guest = Netns::new();
    let dump = Tcpdump::start(&peer, "eth9", "arp");
    host.pipework(&[&br, &guest.guest(), "10.0.0.2/24", "02:00:00:0a:00:02"]).ok();
    let packet = dump.packet();
    assert_has(
        &packet,
        &["02:00:00:0a:00:02 > ff:ff:ff:ff:ff:ff", "ARP", "Request who-has 10.0.0.2 tell 10.0.0.2"],
    );
}

#[test]
fn ipv6_unsolicited_neighbour_advertisement_reaches_a_peer_on_the_bridge() {
    let (host, peer, br) = world();
    let guest = Netns::new();
    // Neighbour advertisements (type 136) for fd00::2 only (the last 32 bits of the
    // target): DAD's solicitations and the link-local address's own are not ours.
    let dump = Tcpdump::start(&peer, "eth9", "icmp6 and ip6[40] == 136 and ip6[60:4] == 2");
    host.pipework(&[&br, &guest.guest(), "fd00::2/64", "02:00:00:0a:00:06"]).ok();
    let packet = dump.packet();
    assert_has(
        &packet,
        &[
            "02:00:00:0a:00:06 > 33:33:00:00:00:01",
            "hlim 255",
            "fd00::2 > ff02::1",
            "neighbor advertisement",
            "tgt is fd00::2",
            "Flags [override]",
            "destination link-address option (2), length 8 (1): 02:00:00:0a:00:06",
        ],
    );
}

/// A Docker container's eth1 is born with IPv6 off (issue 12): once pipework turns it
/// on, the kernel's advertisement after DAD (`ndisc_notify`) goes out from it too.
#[test]
fn ipv6_neighbour_advertisement_from_a_docker_container() {
    let (host, peer, br) = world();
    let c = crate::docker::Container::run();
    let dump = Tcpdump::start(&peer, "eth9", "icmp6 and ip6[40] == 136 and ip6[60:4] == 0x62");
    host.pipework(&[&br, &c.name, "fd00::62/64", "02:00:00:0a:00:62"]).ok();
    let packet = dump.packet();
    assert_has(
        &packet,
        &[
            "02:00:00:0a:00:62 > 33:33:00:00:00:01",
            "fd00::62 > ff02::1",
            "tgt is fd00::62",
            "Flags [override]",
        ],
    );
}

#[test]
fn a_duplicate_ipv6_address_is_attached_but_never_advertised() {
    let (host, peer, br) = world();
    // The peer already owns fd00::7; the guest's duplicate address detection fails,
    // and an advertisement with the override flag would steal the address.
    peer.sh("ip", &["addr", "add", "fd00::7/64", "dev", "eth9", "nodad"]);
    let guest = Netns::new();
    let dump = Tcpdump::start(
        &peer,
        "eth9",
        "icmp6 and ip6[40] == 136 and ip6[60:4] == 7 and ether src 02:00:00:0a:00:07",
    );
    let run = host.pipework(&[&br, &guest.guest(), "fd00::7/64", "02:00:00:0a:00:07"]);
    assert_eq!(run.code, 0, "announcing is not part of the attach: {run:?}");
    assert_eq!(run.stderr, "", "{run:?}");
    // DAD takes ~1-2 s; well past it, still no advertisement from the guest.
    assert!(dump.saw_nothing_within(Duration::from_secs(4)), "a duplicate address was advertised");
}
