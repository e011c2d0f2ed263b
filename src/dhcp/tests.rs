//! DHCP executor tests without root: the built-in client's lease through mozim and
//! its renewal timing, and the original's words for a missing client.

use super::builtin;
use super::*;

fn lease() -> Lease {
    Lease {
        addr: "10.9.0.60/24".parse().unwrap(),
        broadcast: Some("10.9.0.255".parse().unwrap()),
        router: Some("10.9.0.1".parse().unwrap()),
        server: "10.9.0.1".parse().unwrap(),
        t1: 60,
        t2: 105,
        secs: 120,
    }
}

#[test]
fn lease_round_trips_through_mozim() {
    let m = builtin::to_mozim(&lease());
    assert_eq!(builtin::from_mozim(&m).unwrap(), lease());
}

#[test]
fn renewal_brought_forward_only_when_sooner() {
    let m = builtin::to_mozim(&lease());
    let short = builtin::shorten(m.clone(), Some(2));
    assert_eq!((short.t1_sec, short.t2_sec, short.lease_time_sec), (2, 105, 120));
    assert_eq!(builtin::shorten(m.clone(), Some(90)).t1_sec, 60);
    assert_eq!(builtin::shorten(m, None).t1_sec, 60);
}

/// The renewal state machine: a client handed a bound lease with T1 brought forward
/// is done (bound), and its next step is renewing once T1 has passed.
#[tokio::test]
async fn bound_client_goes_renewing_at_t1() {
    let iface =
        builtin::Interface { dev: "eth1".into(), index: 2, mac: [2, 0, 0, 0, 0, 1], hostname: "web1".into() };
    let mut client = mozim::DhcpV4Client::init(builtin::config(&iface, 0).unwrap(), None).await.unwrap();
    client.done(builtin::shorten(builtin::to_mozim(&lease()), Some(1))).unwrap();
    let started = std::time::Instant::now();
    let state = client.run().await.unwrap();
    assert_eq!(state, mozim::DhcpV4State::Renewing);
    assert!(started.elapsed() >= std::time::Duration::from_millis(900), "{:?}", started.elapsed());
}

#[test]
fn a_missing_client_is_named_as_the_original_does() {
    let e = find_client("no-such-dhcp-client").unwrap_err().to_string();
    assert_eq!(e, "You asked for DHCP client no-such-dhcp-client, but I can't find it.");
}
