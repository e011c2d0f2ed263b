//! contrib/kubernetes/ as shipped: each file parses, the DaemonSet installs the
//! conflist the containerd test runs with (tests/it/cri.rs reads the same file), and
//! the configs are ones pipework takes.

use serde_json::Value;

fn read(name: &str) -> String {
    let path = format!("{}/contrib/kubernetes/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The YAML documents of a manifest, as JSON values.
fn documents(name: &str) -> Vec<Value> {
    let text = read(name);
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| {
            let v: serde_yaml::Value =
                serde::Deserialize::deserialize(d).unwrap_or_else(|e| panic!("{name}: {e}"));
            serde_json::to_value(v).unwrap()
        })
        .collect()
}

#[test]
fn the_conflist_chains_bandwidth_after_pipework() {
    let conf = crate::cri::shipped_conflist();
    assert_eq!(conf["cniVersion"], "1.0.0", "containerd 1.6 speaks CNI up to 1.0.0");
    let plugins = conf["plugins"].as_array().unwrap();
    let types: Vec<&str> = plugins.iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["pipework", "bandwidth"]);
    assert_eq!(plugins[1]["capabilities"]["bandwidth"], true);
}

#[test]
fn the_daemonset_installs_the_shipped_conflist() {
    let docs = documents("pipework-daemonset.yaml");
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ConfigMap", "DaemonSet"]);
    let installed: Value =
        serde_json::from_str(docs[0]["data"]["10-pipework.conflist"].as_str().unwrap()).unwrap();
    assert_eq!(installed, crate::cri::shipped_conflist(), "the ConfigMap's conflist is contrib's");
    let spec = &docs[1]["spec"]["template"]["spec"];
    assert_eq!(spec["hostNetwork"], true);
    let paths: Vec<&str> =
        spec["volumes"].as_array().unwrap().iter().filter_map(|v| v["hostPath"]["path"].as_str()).collect();
    assert_eq!(paths, ["/opt/cni/bin", "/etc/cni/net.d"]);
    let script = spec["initContainers"][0]["command"][2].as_str().unwrap();
    assert!(
        script.contains("/host/opt/cni/bin/pipework") && script.contains("10-pipework.conflist"),
        "{script}"
    );
}

#[test]
fn the_network_attachment_definition_is_a_pipework_macvlan() {
    let docs = documents("macvlan-network-attachment.yaml");
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["kind"], "NetworkAttachmentDefinition");
    assert_eq!(docs[0]["apiVersion"], "k8s.cni.cncf.io/v1");
    let conf: Value = serde_json::from_str(docs[0]["spec"]["config"].as_str().unwrap()).unwrap();
    assert_eq!(conf["type"], "pipework");
    assert_eq!(conf["pipework"]["macvlanMode"], "bridge");
    assert_eq!(conf["ipam"]["type"], "host-local");
}
