//! The CNI plugin under real CNI clients, nothing imitated: podman's CNI backend (Debian's
//! podman 4.3, `network_backend = "cni"` in its own containers.conf, conflists in a directory
//! of the test's own) and cnitool, built from its upstream source (`tests/cnitool/cnitool.go`,
//! containernetworking/cni v1.1.2, unmodified) against Debian's libcni with Debian's Go
//! toolchain. Each test is a machine of its own (tests/runtimes/engines.rs: a host netns with
//! veth parents, its own config and state dirs, podman storage).
//!
//! podman, golang-go and golang-github-appc-cni-dev must be installed (tests/all.sh installs
//! them): a missing one fails the test, except in the VM, which carries none; there they skip.

mod common;
#[path = "runtimes/engines.rs"]
mod engines;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use engines::*;
use serde_json::{Value, json};

/// A directory holding our binary under its CNI type name, as the packages install it.
fn plugin_dir(lab: &Lab) -> PathBuf {
    let dir = lab.path("cni-bin");
    std::fs::create_dir_all(&dir).expect("plugin dir");
    std::os::unix::fs::symlink(hook_bin(), dir.join("ipvlan-hook")).expect("symlink");
    dir
}

/// `name.conflist` in `dir`: one plugin, `plugin`, with this lab's directories in our section.
fn conflist(lab: &Lab, dir: &Path, name: &str, mut plugin: Value) {
    let ours = if plugin["type"] == "ipvlan-hook" {
        &mut plugin
    } else {
        &mut plugin["ipam"]
    };
    ours["config_dir"] = json!(lab.host.config);
    ours["state_dir"] = json!(lab.host.state);
    let list = json!({"cniVersion": "1.0.0", "name": name, "plugins": [plugin]});
    std::fs::write(dir.join(format!("{name}.conflist")), list.to_string()).expect("conflist");
}

/// `(network, container, ifname, address)` of every lease.
fn leases(lab: &Lab) -> Vec<(String, String, String, String)> {
    let out = lab.host.ok(&["lease", "ls", "--format", "json"]);
    let v: Value = serde_json::from_str(&out).expect("lease ls json");
    let field = |l: &Value, k: &str| l[k].as_str().unwrap_or_default().to_string();
    let mut rows: Vec<_> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|l| {
            (
                field(l, "network"),
                field(l, "container"),
                field(l, "ifname"),
                field(l, "address"),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// A second and third parent beside the lab's p0, and our networks `b` and `c` on them.
fn more_networks(lab: &Lab) {
    for (parent, peer, net, subnet) in [
        ("q0", "q1", "b", "10.82.0.0/24"),
        ("r0", "r1", "c", "10.83.0.0/24"),
    ] {
        lab.host.ns.sh(&format!(
            "ip link add {parent} type veth peer name {peer} && ip link set {parent} up && ip link set {peer} up"
        ));
        lab.host.ok(&[
            "network",
            "create",
            net,
            "--driver",
            driver(),
            "--parent",
            parent,
            "--subnet",
            subnet,
        ]);
    }
}

#[test]
fn podman_cni_backend_two_of_our_networks_a_static_address_and_our_ipam_under_macvlan() {
    let test = "podman_cni_backend_two_of_our_networks_a_static_address_and_our_ipam_under_macvlan";
    let Some(bin) = engine(test, "podman") else {
        return;
    };
    let lab = Lab::new("cni-podman");
    more_networks(&lab);
    let plugins = plugin_dir(&lab);
    let podman = Podman::with_cni(&lab, bin, &plugins);
    let dir = podman.networks_dir();
    conflist(
        &lab,
        &dir,
        "ipv-a",
        json!({"type": "ipvlan-hook", "network": "net"}),
    );
    conflist(
        &lab,
        &dir,
        "ipv-b",
        json!({"type": "ipvlan-hook", "network": "b"}),
    );
    conflist(
        &lab,
        &dir,
        "mv-c",
        json!({"type": "macvlan", "master": "r0", "ipam": {"type": "ipvlan-hook", "network": "c"}}),
    );
    let listed = podman.ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(listed.contains("ipv-a ipvlan-hook"), "{listed}");

    let id = podman.ok(&[
        "run",
        "-d",
        "--network",
        "ipv-a:ip=10.78.0.50",
        "--network",
        "ipv-b",
        "--network",
        "mv-c",
        IMAGE,
        "sleep",
        "600",
    ]);
    let id = id.trim();
    let shown = podman.ok(&["exec", id, "ip", "-o", "-4", "addr"]);
    let addr_of = |ifname: &str| {
        shown
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(ifname))
            .and_then(|l| l.split_whitespace().nth(3))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no {ifname} in {shown}"))
    };
    // podman names the interfaces eth0.. in an order of its own (podman#12850): match by
    // network, through the leases.
    let held = leases(&lab);
    assert_eq!(held.len(), 3, "{held:?}");
    for (net, container, ifname, address) in &held {
        assert_eq!(container, id, "the lease names the container podman gave");
        let want = match net.as_str() {
            "net" => "10.78.0.50".to_string(),
            _ => address.clone(),
        };
        assert_eq!(address, &want);
        assert_eq!(addr_of(ifname), format!("{want}/24"), "{net} on {ifname}");
    }
    assert!(
        held.iter()
            .any(|(n, _, _, a)| n == "b" && a.starts_with("10.82.0."))
    );
    assert!(
        held.iter()
            .any(|(n, _, _, a)| n == "c" && a.starts_with("10.83.0."))
    );
    // gc leaves a running container's CNI leases alone.
    assert!(lab.host.ok(&["gc", "--dry-run"]).trim().is_empty());

    podman.ok(&["rm", "--force", "--time", "0", id]);
    assert_eq!(leases(&lab), vec![], "podman's DEL released every lease");
    lab.assert_no_slave_in_host();
}

/// cnitool built from `tests/cnitool/cnitool.go` with Debian's Go and libcni (no network).
fn cnitool(test: &str, lab: &Lab) -> Option<PathBuf> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cnitool/cnitool.go");
    let gopath = Path::new("/usr/share/gocode");
    if installed("go").is_none()
        || !gopath
            .join("src/github.com/containernetworking/cni/libcni")
            .exists()
        || !source.exists()
    {
        assert!(
            std::env::var_os("IPVLAN_HOOK_VM").is_some(),
            "{test}: needs golang-go, golang-github-appc-cni-dev and the checkout (tests/all.sh installs them)"
        );
        skipped(
            test,
            "no Go toolchain or checkout in the VM; the host run tests it",
        );
        return None;
    }
    let build = lab.path("cnitool-build");
    std::fs::create_dir_all(&build).expect("build dir");
    std::fs::copy(&source, build.join("cnitool.go")).expect("copy source");
    let bin = build.join("cnitool");
    let out = Command::new("go")
        .current_dir(&build)
        .env("GO111MODULE", "off")
        .env("GOPATH", gopath)
        .env("GOCACHE", build.join("cache"))
        .env("GOFLAGS", "")
        .args(["build", "-o"])
        .arg(&bin)
        .arg("cnitool.go")
        .output()
        .expect("run go build");
    assert!(
        out.status.success(),
        "go build cnitool: {}",
        text(&out.stderr)
    );
    Some(bin)
}

#[test]
fn cnitool_add_check_del_with_a_second_interface_and_a_capability_address() {
    let test = "cnitool_add_check_del_with_a_second_interface_and_a_capability_address";
    let lab = Lab::new("cni-cnitool");
    let Some(tool) = cnitool(test, &lab) else {
        return;
    };
    let plugins = plugin_dir(&lab);
    let confs = lab.path("net.d");
    std::fs::create_dir_all(&confs).expect("conf dir");
    conflist(
        &lab,
        &confs,
        "ipv",
        json!({"type": "ipvlan-hook", "network": "net", "capabilities": {"ips": true}}),
    );
    let ctr = Ns::new();
    let netns = ctr.netns_path();
    let cnitool = |verb: &str, ifname: &str, cap_args: &str| {
        lab.host
            .ns
            .cmd(&tool)
            .env("NETCONFPATH", &confs)
            .env("CNI_PATH", format!("{}:/usr/lib/cni", plugins.display()))
            .env("CNI_IFNAME", ifname)
            .env("CAP_ARGS", cap_args)
            .args([verb, "ipv"])
            .arg(&netns)
            .output()
            .expect("run cnitool")
    };
    let run = |verb: &str, ifname: &str, cap_args: &str| {
        let out = cnitool(verb, ifname, cap_args);
        assert!(
            out.status.success(),
            "cnitool {verb} {ifname}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let result: Value = serde_json::from_str(&run("add", "eth0", r#"{"ips":["10.78.0.9"]}"#))
        .expect("cnitool prints the result");
    assert_eq!(result["ips"][0]["address"], "10.78.0.9/24");
    run("add", "net1", "");
    assert!(
        ctr.sh("ip -o -4 addr show dev eth0")
            .contains("10.78.0.9/24")
    );
    assert!(
        ctr.sh("ip -o -4 addr show dev net1")
            .contains("10.78.0.2/24")
    );
    let held = leases(&lab);
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(
        held.iter().all(|(_, c, _, _)| c.starts_with("cnitool-")),
        "{held:?}"
    );
    // libcni's CHECK hands the cached ADD result as prevResult.
    run("check", "eth0", r#"{"ips":["10.78.0.9"]}"#);
    run("check", "net1", "");
    ctr.sh("ip addr flush dev net1");
    let out = cnitool("check", "net1", "");
    assert!(!out.status.success(), "CHECK must see the lost address");
    assert!(
        text(&out.stderr).contains("lacks 10.78.0.2/24"),
        "{}",
        text(&out.stderr)
    );
    run("del", "net1", "");
    run("del", "net1", "");
    run("del", "eth0", "");
    assert_eq!(leases(&lab), vec![]);
    assert!(!ctr.try_sh("ip link show dev eth0"));
}
