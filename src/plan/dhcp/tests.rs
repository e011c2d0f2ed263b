//! DHCP planning table tests: the command lines, host names, refusals and the
//! built-in client's options, without root.

use super::*;

fn guest(name: &str, pid: Option<u32>, container: Option<(&str, &str)>) -> GuestId {
    GuestId {
        name: name.into(),
        tag: pid.map_or("n1".into(), |p| p.to_string()),
        pid,
        container: container.map(|(id, n)| (id.to_string(), n.to_string())),
        reference: crate::plan::alias::GuestRef::Pid(pid.unwrap_or(1)),
        ns_inode: 1,
    }
}

fn web1() -> GuestId {
    guest("web1", Some(4242), Some(("c0ffee", "/web1")))
}

fn request(ipspec: &str, g: &GuestId) -> DhcpRequest {
    let ip: IpSpec = ipspec.parse().unwrap();
    DhcpRequest::plan(&ip, "eth1", g, None, false).unwrap().expect("a DHCP step")
}

fn line(ipspec: &str) -> String {
    request(ipspec, &web1()).to_string()
}

#[test]
fn static_specs_have_no_dhcp_step() {
    let ip: IpSpec = "10.0.0.2/24".parse().unwrap();
    assert_eq!(DhcpRequest::plan(&ip, "eth1", &web1(), None, false).unwrap(), None);
}

#[test]
fn the_originals_command_lines() {
    assert_eq!(line("udhcpc"), "udhcpc -qi eth1 -x hostname:web1 -p /var/run/udhcpc.web1.pid");
    assert_eq!(line("udhcpc:-t 5"), "udhcpc -qi eth1 -x hostname:web1 -p /var/run/udhcpc.web1.pid -t 5");
    assert_eq!(
        line("dhclient:-v"),
        "dhclient eth1 -pf /var/run/dhclient.web1.pid -lf /etc/dhclient/dhclient.web1.leases -v"
    );
    assert_eq!(line("dhcpcd:-A"), "dhcpcd -q eth1 -h web1");
}

#[test]
fn udhcpc_f_keeps_renewing_instead_of_quitting() {
    // No -q (which makes the original's udhcpc-f quit) and no -f (which would hold pipework).
    assert_eq!(line("udhcpc-f"), "udhcpc -i eth1 -x hostname:web1 -p /var/run/udhcpc.web1.pid");
    assert_eq!(
        line("dhclient-f"),
        "dhclient eth1 -pf /var/run/dhclient.web1.pid -lf /etc/dhclient/dhclient.web1.leases"
    );
}

#[test]
fn docker_helper_is_removed_and_quits_after_the_lease() {
    assert_eq!(
        line("dhcp"),
        "docker run --rm --name pipework-dhcp-web1-eth1 --net=container:c0ffee --cap-add NET_ADMIN \
         busybox udhcpc -q -i eth1 -x hostname:web1"
    );
    assert_eq!(
        line("dhcp:-f"),
        "docker run -d --rm --name pipework-dhcp-web1-eth1 --net=container:c0ffee --pid=container:c0ffee \
         --cap-add NET_ADMIN busybox udhcpc -i eth1 -x hostname:web1 -f"
    );
}

#[test]
fn docker_mode_refused_for_other_guests() {
    let ip: IpSpec = "dhcp".parse().unwrap();
    let e = DhcpRequest::plan(&ip, "eth1", &guest("pid:77", Some(77), None), None, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("pid:77 is not a Docker container"), "{e}");
}

#[test]
fn host_names() {
    assert_eq!(request("udhcpc", &guest("pid:77", Some(77), None)).hostname, "pid-77");
    assert_eq!(request("udhcpc", &guest("/proc/77/ns/net", Some(77), None)).hostname, "pid-77");
    assert_eq!(request("udhcpc", &guest("/var/run/netns/blue", None, None)).hostname, "blue");
    assert_eq!(request("udhcpc", &guest("/x/a_b", None, None)).hostname, "a-b");
    // A container goes by GUEST as typed, as in the original's pid and lease file
    // names: an ID prefix stays the prefix; a Docker-style `/name` loses its slash.
    assert_eq!(request("udhcpc", &guest("c0f", Some(1), Some(("c0ffee", "/db.1")))).hostname, "c0f");
    assert_eq!(request("udhcpc", &guest("/db.1", Some(1), Some(("c0ffee", "/db.1")))).hostname, "db.1");
    assert_eq!(request("udhcpc", &guest("my_ct", Some(1), None)).hostname, "my_ct");
}

#[test]
fn builtin_options() {
    assert_eq!(
        BuiltinOptions::parse(&[]).unwrap(),
        BuiltinOptions { timeout: None, renew: None, dns: false, mac_id: false }
    );
    let words = ["timeout=5".to_string(), "renew=2".to_string(), "dns".to_string(), "id=mac".to_string()];
    assert_eq!(
        BuiltinOptions::parse(&words).unwrap(),
        BuiltinOptions { timeout: Some(5), renew: Some(2), dns: true, mac_id: true }
    );
    for bad in ["-t", "timeout=", "timeout=0", "renew=x", "speed=3", "dns=1", "DNS"] {
        let e = BuiltinOptions::parse(&[bad.to_string()]).unwrap_err().to_string();
        assert!(e.contains("invalid dhcp4/dhcp6 option"), "{bad}: {e}");
    }
    // Refused while planning, before any change.
    let ip: IpSpec = "dhcp4:fast".parse().unwrap();
    assert!(DhcpRequest::plan(&ip, "eth1", &web1(), None, false).is_err());
    let ip: IpSpec = "dhcp6:dns".parse().unwrap();
    assert!(DhcpRequest::plan(&ip, "eth1", &web1(), None, false).is_ok());
    let ip: IpSpec = "dhcp4:dns".parse().unwrap();
    assert!(DhcpRequest::plan(&ip, "eth1", &web1(), None, false).is_ok());
    assert_eq!(line("dhcp4-f:renew=2"), "dhcp4-f (built-in) -i eth1 -x hostname:web1 renew=2");
}

#[test]
fn derived_host_names_are_dns_labels_and_typed_ones_stay_whole() {
    let long = format!("/x/{}", "a".repeat(80));
    assert_eq!(request("udhcpc", &guest(&long, None, None)).hostname.len(), 63);
    // GUEST as typed stays whole, as in the original's file names (a full container
    // ID is 64 characters); only the sandbox's sethostname cuts it.
    let id = "b".repeat(64);
    assert_eq!(request("udhcpc", &guest(&id, Some(1), Some((&id, "/web1")))).hostname, id);
}

#[test]
fn dhcp4_f_needs_a_process_to_watch() {
    let ip: IpSpec = "dhcp4-f".parse().unwrap();
    let e =
        DhcpRequest::plan(&ip, "eth1", &guest("/var/run/netns/blue", None, None), None, false).unwrap_err();
    assert!(e.to_string().contains("needs a guest with a process"), "{e}");
    assert!(DhcpRequest::plan(&ip, "eth1", &web1(), None, false).unwrap().is_some());
    // Unless a `del` is sure to stop it (the CNI plugin's).
    let netns = guest("/var/run/netns/blue", None, None);
    assert_eq!(DhcpRequest::plan(&ip, "eth1", &netns, None, true).unwrap().unwrap().pid, None);
}

#[test]
fn dhcpv6_command_lines_and_files_beside_the_dhcpv4_ones() {
    assert_eq!(
        line("dhclient6:-v"),
        "dhclient -6 eth1 -pf /var/run/dhclient6.web1.pid -lf /etc/dhclient/dhclient6.web1.leases -v"
    );
    assert_eq!(line("dhcpcd6"), "dhcpcd -6 -q eth1 -h web1");
    assert_eq!(line("dhcp6-f:renew=2"), "dhcp6-f (built-in) -i eth1 renew=2");
    let r = request("dhclient6-f", &web1());
    assert_eq!((r.name(), r.family, r.foreground), ("dhclient6".to_string(), Family::V6, true));
    assert_eq!(
        request("dhcp6", &web1()).pid_file(&request("dhcp6", &web1()).name()).display().to_string(),
        "/var/run/dhcp6.web1.pid"
    );
    // The keeper needs a process to watch, as for dhcp4-f; options are checked too.
    let ip: IpSpec = "dhcp6-f".parse().unwrap();
    let e =
        DhcpRequest::plan(&ip, "eth1", &guest("/var/run/netns/blue", None, None), None, false).unwrap_err();
    assert!(e.to_string().starts_with("dhcp6-f needs a guest with a process"), "{e}");
    let ip: IpSpec = "dhcp6:fast".parse().unwrap();
    assert!(DhcpRequest::plan(&ip, "eth1", &web1(), None, false).is_err());
    // The original's way of asking dhclient for DHCPv6 points to the form that does it.
    let ip: IpSpec = "dhclient-f:-v -6".parse().unwrap();
    let e = DhcpRequest::plan(&ip, "eth1", &web1(), None, false).unwrap_err().to_string();
    assert_eq!(e, "dhclient with -6 takes a DHCPv6 lease: use dhclient6-f, which waits for that");
}
