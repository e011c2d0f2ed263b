//! Planner tests of `--isolated` (bridge) and `--host-shim` (macvlan): no root.

use super::tests::{bridge, guest, link, plan, refused, req, steps};
use super::*;

fn nic() -> HostFacts {
    HostFacts { host_if: Some(link(4, "eth2", None)), ..Default::default() }
}

#[test]
fn isolated_makes_the_host_end_an_isolated_port_after_the_veth() {
    let s = steps("--isolated br1 web1 10.0.0.2/24", &bridge(1500), &GuestFacts::default());
    assert_eq!(
        s[0],
        "ip link add veth1pl4242 mtu 1500 master br1 up type veth peer name eth1 netns GUEST mtu 1500"
    );
    assert_eq!(s[2], "bridge link set dev veth1pl4242 isolated on");
    assert!(s[3].starts_with("guest: ip addr add"), "{s:?}");
    let plain = steps("br1 web1 10.0.0.2/24", &bridge(1500), &GuestFacts::default());
    assert!(!plain.iter().any(|s| s.contains("isolated")), "{plain:?}");
}

#[test]
fn isolated_off_a_linux_bridge_is_refused_in_one_line() {
    let none = GuestFacts::default();
    assert_eq!(
        refused("--isolated eth2 web1 10.0.0.2/24", &nic(), &none),
        "--isolated works on a Linux bridge attach only, not on eth2, a physical (macvlan) attach"
    );
    assert_eq!(
        refused("--isolated --direct-phys eth2 web1 10.0.0.2/24", &nic(), &none),
        "--isolated works on a Linux bridge attach only, not on a --direct-phys attach"
    );
    // A `--direct-phys` NIC not on the host (maybe in the guest already) too.
    let e = Class::of(&req("--isolated --direct-phys eth9 web1 10.0.0.2/24"), &HostFacts::default());
    assert_eq!(
        e.unwrap_err().to_string(),
        "--isolated works on a Linux bridge attach only, not on a --direct-phys attach"
    );
}

#[test]
fn a_rerun_with_isolated_of_a_port_made_without_is_not_already_done() {
    let (host, facts) = super::tests::attached(true);
    let r = req("--isolated br1 web1 10.0.0.2/24@10.0.0.1");
    assert!(plan(&r, &guest(), &host, &facts).is_err());
    let isolated = HostFacts {
        local_if: host.local_if.clone().map(|l| Link { isolated: Some(true), ..l }),
        ..host.clone()
    };
    assert!(matches!(plan(&r, &guest(), &isolated, &facts), Ok(Plan::AlreadyDone(_))));
}
