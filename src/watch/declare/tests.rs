use super::*;

const ID: &str = "4c5e3d6a1f0b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5061728394a5b";

fn container(labels: &[(&str, &str)], env: &[(&str, &str)]) -> Container {
    Container {
        id: ID.into(),
        name: "prod_web_12".into(),
        hostname: "web.example".into(),
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        pid: 42,
        ..Container::default()
    }
}

fn served(c: &Container, key: Option<&str>) -> Vec<(String, Result<Attach, String>)> {
    match declarations(c, key) {
        Declared::Serve(d) => d.into_iter().map(|d| (d.source, d.attach.map(|a| a.req))).collect(),
        Declared::OtherKey => panic!("refused by key"),
    }
}

#[test]
fn labels_in_the_order_of_n_with_the_container_as_guest() {
    let c = container(
        &[
            ("pipework.10", "br2 -i eth3 10.0.2.2/24"),
            ("pipework.2", "br1 -i eth2 10.0.1.2/24@10.0.1.1 02:42:0a:00:01:02@7"),
            ("com.example.other", "x"),
        ],
        &[],
    );
    let got = served(&c, None);
    let sources: Vec<&str> = got.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(sources, ["label pipework.2", "label pipework.10"]);
    let a = got[0].1.as_ref().unwrap();
    assert_eq!((a.guest.as_str(), a.host_if.to_string()), (ID, "br1".into()));
    assert_eq!(a.ip, "10.0.1.2/24@10.0.1.1".parse().unwrap());
    assert_eq!(a.container_if.as_ref().unwrap().as_str(), "eth2");
    assert_eq!(a.vlan.as_ref().unwrap().as_str(), "7");
    let Declared::Serve(d) = declarations(&c, None) else { panic!("refused by key") };
    assert!(d[0].attach.as_ref().unwrap().opts.json, "the log reads the result document");
}

#[test]
fn the_guest_goes_after_hostif_whatever_options_come_first() {
    let c = container(
        &[("pipework.1", "--direct-phys -i eth9 eth2 dhcp"), ("pipework.2", "-l vx0 br1 10.0.0.2/24")],
        &[],
    );
    let got = served(&c, None);
    let a = got[0].1.as_ref().unwrap();
    assert!(a.direct_phys);
    assert_eq!((a.host_if.to_string(), a.guest.as_str()), ("eth2".into(), ID));
    let b = got[1].1.as_ref().unwrap();
    assert_eq!((b.host_if.to_string(), b.local_if.as_ref().unwrap().as_str()), ("br1".into(), "vx0"));
}

#[test]
fn a_bad_label_is_its_own_error_and_the_others_stand() {
    let c = container(
        &[
            ("pipework.1", "br1 10.0.0.300/24"),
            ("pipework.2", "br1 10.0.0.2/24"),
            ("pipework.3", "br1 'unbalanced"),
            ("pipework.4", "br1"),
            ("pipework.5", "br1 -x 10.0.0.2/24"),
            ("pipework.web", "br1 10.0.0.2/24"),
        ],
        &[],
    );
    let got = served(&c, None);
    let errors: Vec<String> =
        got.iter().map(|(_, a)| a.as_ref().err().cloned().unwrap_or_default()).collect();
    assert!(errors[0].contains("10.0.0.300/24"), "{}", errors[0]);
    assert_eq!(errors[1], "");
    assert_eq!(errors[2], "unbalanced quotes or a trailing backslash");
    assert!(errors[3].starts_with("too few arguments"), "{}", errors[3]);
    assert!(errors[4].contains("-x"), "{}", errors[4]);
    assert_eq!(errors[5], "not a declaration: the labels are pipework.N, N a number");
}

#[test]
fn shell_metacharacters_stay_in_their_words() {
    let c = container(
        &[("pipework.1", "br1 10.0.0.2/24 $(touch /tmp/x)"), ("pipework.2", "br1 10.0.0.2/24`id`")],
        &[],
    );
    for (source, a) in served(&c, None) {
        let e = a.unwrap_err();
        assert!(e.contains("$(touch") || e.contains("`id`"), "{source}: {e}");
    }
}

#[test]
fn env_commands_of_the_wrapper_image_with_its_macros() {
    let c = container(
        &[("com.docker.compose.project", "shop")],
        &[
            ("pipework_cmd_b", "pipework br1 -i eth2 @CONTAINER_NAME@ 10.0.0.@INSTANCE@/24 # second"),
            ("apache_pipework_cmd", "br-@COMPOSE_PROJECT_NAME@ @CONTAINER_ID@ dhcp U:@HOSTNAME@"),
            ("pipework_cmd", "br0 /prod_web_12 10.1.0.2/16"),
            ("PATH", "/bin"),
        ],
    );
    let got = served(&c, None);
    let sources: Vec<&str> = got.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(sources, ["env apache_pipework_cmd", "env pipework_cmd", "env pipework_cmd_b"], "by name");
    let a = got[0].1.as_ref().unwrap();
    assert_eq!((a.host_if.to_string(), a.guest.as_str()), ("br-shop".into(), ID));
    assert_eq!(a.mac, Some(crate::model::Mac::derived_from("web.example")), "U:@HOSTNAME@");
    let b = got[2].1.as_ref().unwrap();
    assert_eq!((&b.ip, b.guest.as_str()), (&"10.0.0.12/24".parse().unwrap(), ID));
}

#[test]
fn an_env_command_must_name_this_container() {
    let c = container(
        &[],
        &[("pipework_cmd", "br1 other 10.0.0.2/24"), ("pipework_cmd_2", "br1 4c5e3d 10.0.0.2/24")],
    );
    let got = served(&c, None);
    assert_eq!(got[0].1.as_ref().unwrap_err(), "GUEST is 'other', not this container (prod_web_12)");
    assert_eq!(got[1].1.as_ref().unwrap().guest, ID, "an id prefix is this container");
    let c = container(&[], &[("pipework_cmd", "route @CONTAINER_NAME@ add 10.0.0.0/8 dev eth1")]);
    assert!(served(&c, None)[0].1.as_ref().unwrap_err().starts_with("only attachments"));
}

#[test]
fn a_key_serves_only_the_containers_with_it() {
    let decl = [("pipework.1", "br1 10.0.0.2/24")];
    assert!(matches!(declarations(&container(&decl, &[]), Some("k")), Declared::OtherKey));
    let c = container(&decl, &[("pipework_key", "k")]);
    assert_eq!(served(&c, Some("k")).len(), 1);
    let c = container(&[("pipework.1", "br1 10.0.0.2/24"), ("pipework.key", "k")], &[]);
    assert_eq!(served(&c, Some("k")).len(), 1, "the label pipework.key is not a declaration");
    assert!(matches!(
        declarations(&container(&decl, &[("pipework_key", "j")]), Some("k")),
        Declared::OtherKey
    ));
    assert!(matches!(declarations(&container(&[], &[]), Some("k")), Declared::Serve(d) if d.is_empty()));
}

#[test]
fn instance_is_the_last_run_of_digits() {
    assert_eq!(instance("prod_myapp_1"), "1");
    assert_eq!(instance("web12b"), "12");
    assert_eq!(instance("a1b22c333"), "333");
    assert_eq!(instance("web"), "");
    assert_eq!(instance("é1"), "1", "a name Docker would refuse, but no panic");
    assert_eq!(instance("42"), "42");
}

#[test]
fn inspect_output_gives_what_declarations_need() {
    let v = serde_json::json!({
        "Id": ID, "Name": "/web1", "Image": "sha256:baa5",
        "State": {"Running": true, "Pid": 7},
        "Config": {"Hostname": "h1", "Image": "shop/web:1", "Labels": {"pipework.1": "br1 10.0.0.2/24"}, "Env": ["A=b=c", "NOVALUE"]}
    });
    let c = Container::from_inspect(&v).unwrap();
    assert_eq!(
        (c.name.as_str(), c.hostname.as_str(), c.pid, c.short_id()),
        ("web1", "h1", 7, "4c5e3d6a1f0b")
    );
    assert_eq!(c.env, [("A".to_string(), "b=c".to_string()), ("NOVALUE".to_string(), String::new())]);
    assert_eq!((c.image.as_str(), c.image_name.as_str()), ("sha256:baa5", "shop/web:1"));
    let stopped =
        serde_json::json!({"Id": ID, "Name": "/web1", "State": {"Running": false, "Pid": 0}, "Config": {}});
    assert_eq!(Container::from_inspect(&stopped).unwrap().pid, 0);
}

#[test]
fn guest_goes_after_the_first_word_that_is_no_option_nor_its_value() {
    let words = |t: &str| t.split_whitespace().map(String::from).collect::<Vec<_>>();
    let cases = [
        ("br1 10.0.0.2/24", Some(0)),
        ("-i eth9 br1 10.0.0.2/24", Some(2)),
        ("-vi eth9 br1 10.0.0.2/24", Some(2)),
        ("-ieth9 br1 10.0.0.2/24", Some(1)),
        ("--macvlan-mode=private eth0 10.0.0.2/24", Some(1)),
        ("--macvlan-mode private --direct-phys eth0 10.0.0.2/24", Some(3)),
        ("--timeout 5 -v br1 dhcp", Some(3)),
        ("-- br1 10.0.0.2/24", Some(1)),
        ("-i eth9", None),
    ];
    for (text, want) in cases {
        assert_eq!(first_positional(&words(text)), want, "{text}");
    }
}

/// Found by the fuzz target: a cluster of short options whose first takes a value.
#[test]
fn a_cluster_of_short_options_is_no_panic() {
    let c = container(&[("pipework.3", "-argse\u{fffd}\u{fffd}ipeeth1 0/0")], &[]);
    let got = served(&c, None);
    assert!(got[0].1.is_err(), "{:?}", got[0].1);
    let c = container(&[("pipework.1", "-a4 br1 10.0.0.2/24")], &[]);
    assert_eq!(served(&c, None)[0].1.as_ref().unwrap().guest, ID);
}

#[test]
fn options_of_a_dhcp_client_the_host_runs_are_refused() {
    // dhclient runs as the host's root with the host's files: `-lf FILE` would have it
    // write its leases over any file (a label may come with an image). The helper
    // container's options and the built-in clients' stay.
    let c = container(
        &[
            ("pipework.1", "br1 'dhclient:-lf /etc/shadow'"),
            ("pipework.2", "br1 -i eth2 'udhcpc-f:-s /tmp/x'"),
            ("pipework.3", "br1 -i eth3 dhcp:-f"),
            ("pipework.4", "br1 -i eth4 dhcp4:timeout=5"),
            ("pipework.5", "br1 -i eth5 dhclient"),
            // The original drops dhcpcd's options, and so does pipework.
            ("pipework.6", "br1 -i eth7 dhcpcd:-4"),
        ],
        &[("pipework_cmd", "br1 -i eth6 @CONTAINER_NAME@ 'dhclient6:-cf /tmp/x'")],
    );
    let got = served(&c, None);
    let refused: Vec<&str> = got.iter().filter(|(_, a)| a.is_err()).map(|(s, _)| s.as_str()).collect();
    assert_eq!(refused, ["label pipework.1", "label pipework.2", "env pipework_cmd"]);
    let e = got[0].1.as_ref().unwrap_err();
    assert!(e.starts_with("dhclient options are not taken from a declaration"), "{e}");
}
