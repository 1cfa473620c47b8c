//! The hook under real container engines: runc and crun with the hook in the bundle's
//! config.json, rootful podman with the hooks.d files of `hooks/`. Every test is a machine of its
//! own: a host netns with the veth parent `p0` in which the engine itself runs (runtimes run
//! hooks in their own netns, so the machine's real links are never touched), its own config and
//! state dirs handed to the hook in its args (or env), its own runtime state and podman storage.
//! The slave driver is ipvlan where the kernel has it (the VM run) and macvlan otherwise.
//!
//! runc, crun and podman must be installed (tests/all.sh installs them): a missing one fails the
//! test, except in the VM (IPVLAN_HOOK_VM), which carries runc alone; there the others skip.

mod common;
#[path = "runtimes/engines.rs"]
mod engines;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;
use engines::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// runc and crun: the hook in config.json
// ---------------------------------------------------------------------------------------------

fn attach_and_release(rt: &Runtime, dirs: Dirs) {
    let lab = rt.lab;
    let bundle = rt.bundle(
        "c1",
        &Spec {
            args: SHOW,
            annotations: ON_NET,
            dirs,
            ..Spec::default()
        },
    );
    let out = rt.run_ok("c1", &bundle);
    assert_attached(&out, "10.78.0.2");
    lab.assert_no_leases("after the container exited");
    lab.assert_no_slave_in_host();
    assert_eq!(rt.containers().trim(), "", "container left behind");
}

#[test]
fn runc_attaches_a_container_and_releases_it_at_exit() {
    let Some(bin) = engine("runc_attaches_a_container_and_releases_it_at_exit", "runc") else {
        return;
    };
    let lab = Lab::new("rt-runc");
    let rt = Runtime::runc(&lab, bin);
    attach_and_release(&rt, Dirs::Args);
}

#[test]
fn crun_attaches_a_container_and_releases_it_at_exit() {
    let Some(bin) = engine("crun_attaches_a_container_and_releases_it_at_exit", "crun") else {
        return;
    };
    let lab = Lab::new("rt-crun");
    let rt = Runtime::crun(&lab, bin);
    // The other documented way to hand the hook its directories: the hook entry's env.
    attach_and_release(&rt, Dirs::Env);
}

/// Two networks, `net` and `net2`, through `ipvlan.networks`: eth0 and eth1, the default route
/// from the first, all leases gone at exit.
const TWO_NETWORKS: &[(&str, &str)] = &[("ipvlan.networks", "net,net2")];
const SHOW_TWO: &[&str] = &[
    "sh",
    "-c",
    "ip addr show eth0 && ip addr show eth1 && ip route",
];

fn add_net2(lab: &Lab) {
    lab.host
        .ok(&network_create("net2", "p0", &["--subnet", "10.79.0.0/24"]));
}

fn assert_two_attached(out: &str) {
    assert_attached(out, "10.78.0.2");
    assert!(
        out.contains("inet 10.79.0.2/24") && out.contains("eth1"),
        "{out}"
    );
    assert_eq!(
        out.matches("default via").count(),
        1,
        "one default route: {out}"
    );
}

fn two_networks(rt: &Runtime) {
    let lab = rt.lab;
    add_net2(lab);
    let spec = Spec {
        args: SHOW_TWO,
        annotations: TWO_NETWORKS,
        dirs: Dirs::Args,
        ..Spec::default()
    };
    let out = rt.run_ok("c2", &rt.bundle("c2", &spec));
    assert_two_attached(&out);
    lab.assert_no_leases("after the container on two networks exited");
    lab.assert_no_slave_in_host();
}

#[test]
fn runc_container_on_two_networks() {
    let Some(bin) = engine("runc_container_on_two_networks", "runc") else {
        return;
    };
    let lab = Lab::new("rt-runc2");
    two_networks(&Runtime::runc(&lab, bin));
}

#[test]
fn crun_container_on_two_networks() {
    let Some(bin) = engine("crun_container_on_two_networks", "crun") else {
        return;
    };
    let lab = Lab::new("rt-crun2");
    two_networks(&Runtime::crun(&lab, bin));
}

#[test]
fn add_to_bundle_script_wires_a_runc_bundle() {
    let test = "add_to_bundle_script_wires_a_runc_bundle";
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/add-to-bundle.sh");
    if !script.exists() || installed("jq").is_none() {
        // The VM carries test binaries, not the checkout or jq.
        assert!(
            std::env::var_os("IPVLAN_HOOK_VM").is_some(),
            "{test}: needs {} and jq (tests/all.sh installs jq)",
            script.display()
        );
        return skipped(test, "no checkout or jq in the VM; the host run tests it");
    }
    let Some(bin) = engine(test, "runc") else {
        return;
    };
    let lab = Lab::new("rt-script");
    let rt = Runtime::runc(&lab, bin);
    // A plain bundle, then the script: the hook, the annotation and the directory flags.
    let bundle = rt.bundle(
        "c1",
        &Spec {
            args: SHOW,
            ..Spec::default()
        },
    );
    let config = bundle.join("config.json");
    let mut plain: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    plain["hooks"] = json!({"poststart": [{"path": "/bin/true"}]});
    std::fs::write(&config, plain.to_string()).unwrap();
    let [c, cdir, s, sdir] = lab.dir_args();
    for _ in 0..2 {
        // Twice: running it again replaces its own entries.
        let out = Command::new(&script)
            .args([&c, &cdir, &s, &sdir, "--annotation", "ipvlan.network=net"])
            .arg(&bundle)
            .arg(hook_bin())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "add-to-bundle.sh: {}",
            text(&out.stderr)
        );
    }
    let wired: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert_eq!(wired["hooks"]["createRuntime"].as_array().unwrap().len(), 1);
    assert_eq!(wired["hooks"]["poststop"].as_array().unwrap().len(), 1);
    assert_eq!(
        wired["hooks"]["poststart"],
        json!([{"path": "/bin/true"}]),
        "other hooks must be kept"
    );
    assert_eq!(wired["annotations"]["ipvlan.network"], "net");
    let out = rt.run_ok("c1", &bundle);
    assert_attached(&out, "10.78.0.2");
    lab.assert_no_leases("after the container exited");

    let out = Command::new(&script)
        .arg(lab.path("nowhere"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("runc spec"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn runc_precreated_netns_loses_the_link_at_poststop() {
    let Some(bin) = engine("runc_precreated_netns_loses_the_link_at_poststop", "runc") else {
        return;
    };
    let lab = Lab::new("rt-runc-ns");
    let rt = Runtime::runc(&lab, bin);
    let netns = Ns::new(); // outlives the container, like /run/netns/X
    let path = netns.netns_path();
    let bundle = rt.bundle(
        "c1",
        &Spec {
            args: SHOW,
            annotations: ON_NET,
            netns: Some(&path),
            ..Spec::default()
        },
    );
    let out = rt.run_ok("c1", &bundle);
    assert_attached(&out, "10.78.0.2");
    let links = netns.sh("ip -o link");
    assert!(!links.contains("eth0"), "eth0 left in the netns: {links}");
    lab.assert_no_leases("after the container exited");
}

/// A container asking for an address another one holds is aborted with the hook's message,
/// and gets nothing: no lease, no link (checked in a netns it was to join).
fn refused_address_aborts(rt: &Runtime, where_message: impl Fn(&Output) -> String) {
    let lab = rt.lab;
    // The holder: a process in a netns of its own, attached by the hook as a runtime would.
    let holder = Ns::new();
    let ann = [("ipvlan.network", "net"), ("ipvlan.ipv4", "10.78.0.50")];
    let out = lab.host.oci_hook(
        "createRuntime",
        &state_json("holder", Some(holder.pid()), lab.host.dir(), &ann),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    let netns = Ns::new();
    let path = netns.netns_path();
    let stderr_file = lab.path("hooks.err");
    let stderr_ann = stderr_file.display().to_string();
    let bundle = rt.bundle(
        "c2",
        &Spec {
            args: &["true"],
            annotations: &[
                ann[0],
                ann[1],
                // crun drops a hook's output unless told where to write it.
                ("run.oci.hooks.stderr", &stderr_ann),
            ],
            netns: Some(&path),
            ..Spec::default()
        },
    );
    let out = rt.run("c2", &bundle);
    assert!(!out.status.success(), "the container must not start");
    let message = where_message(&out);
    assert!(
        message.contains("10.78.0.50 is leased to container holder on network net"),
        "the hook's message must reach the user: {message}"
    );
    assert_eq!(rt.containers().trim(), "", "aborted container left behind");
    assert_eq!(
        lab.leases(),
        vec![("holder".to_string(), "10.78.0.50".to_string())],
        "only the holder's lease may exist (runc's poststop for the aborted one must not touch it)"
    );
    let links = netns.sh("ip -o link");
    assert_eq!(links.lines().count(), 1, "only lo may be there: {links}");
    lab.assert_no_slave_in_host();
}

#[test]
fn runc_refused_address_aborts_the_container() {
    let Some(bin) = engine("runc_refused_address_aborts_the_container", "runc") else {
        return;
    };
    let lab = Lab::new("rt-runc-refuse");
    let rt = Runtime::runc(&lab, bin);
    // runc quotes the hook's stderr in its own error.
    refused_address_aborts(&rt, |out| text(&out.stderr));
}

#[test]
fn crun_refused_address_aborts_the_container() {
    let Some(bin) = engine("crun_refused_address_aborts_the_container", "crun") else {
        return;
    };
    let lab = Lab::new("rt-crun-refuse");
    let rt = Runtime::crun(&lab, bin);
    let file = lab.path("hooks.err");
    refused_address_aborts(&rt, |out| {
        let own = text(&out.stderr);
        assert!(own.contains("error executing hook"), "{own}");
        std::fs::read_to_string(&file).unwrap_or_default()
    });
}

#[test]
fn runc_static_addresses_ping_each_other() {
    let Some(bin) = engine("runc_static_addresses_ping_each_other", "runc") else {
        return;
    };
    let lab = Lab::new("rt-runc-ping");
    let rt = Runtime::runc(&lab, bin);
    for (id, addr) in [("a", "10.78.0.50"), ("b", "10.78.0.51")] {
        let bundle = rt.bundle(
            id,
            &Spec {
                args: &["sleep", "60"],
                annotations: &[("ipvlan.network", "net"), ("ipvlan.ipv4", addr)],
                ..Spec::default()
            },
        );
        let status = rt
            .cmd()
            .arg("run")
            .arg("--detach")
            .arg("--bundle")
            .arg(&bundle)
            .arg(id)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "runc run --detach {id}");
    }
    let shown = rt.ok(&["exec", "a", "ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(shown.contains("inet 10.78.0.50/24"), "{shown}");
    rt.ok(&["exec", "a", "ping", "-c1", "-W2", "10.78.0.51"]);
    rt.ok(&["exec", "b", "ping", "-c1", "-W2", "10.78.0.50"]);
    assert_eq!(lab.leases().len(), 2);
    for id in ["a", "b"] {
        rt.ok(&["delete", "--force", id]); // runs poststop
    }
    lab.assert_no_leases("after runc delete");
}

// ---------------------------------------------------------------------------------------------
// podman: the hooks.d files
// ---------------------------------------------------------------------------------------------

/// `run --rm --network NETWORK --annotation A... IMAGE COMMAND...`
fn run_rm<'a>(network: &'a str, annotations: &[&'a str], command: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "--rm", "--network", network];
    for a in annotations {
        args.extend_from_slice(&["--annotation", a]);
    }
    args.push(IMAGE);
    args.extend_from_slice(command);
    args
}

#[test]
fn podman_run_rm_attaches_and_releases() {
    let Some(bin) = engine("podman_run_rm_attaches_and_releases", "podman") else {
        return;
    };
    let lab = Lab::new("rt-podman");
    let podman = Podman::new(&lab, bin);
    let out = podman.ok(&run_rm("none", &["ipvlan.network=net"], SHOW));
    assert_attached(&out, "10.78.0.2");
    // `run --rm` returns once poststop is done.
    lab.assert_no_leases("after podman run --rm");
    lab.assert_no_slave_in_host();
    assert_eq!(podman.containers().trim(), "");
}

#[test]
fn podman_container_on_two_networks() {
    let Some(bin) = engine("podman_container_on_two_networks", "podman") else {
        return;
    };
    let lab = Lab::new("rt-podman2");
    add_net2(&lab);
    let podman = Podman::new(&lab, bin);
    // podman 4 splits --annotation values at commas like a CSV line: quoted, it is one value.
    let out = podman.ok(&run_rm("none", &["\"ipvlan.networks=net,net2\""], SHOW_TWO));
    assert_two_attached(&out);
    lab.assert_no_leases("after podman run --rm on two networks");
    lab.assert_no_slave_in_host();
}

#[test]
fn podman_hooks_d_files_match_every_ipvlan_annotation_and_nothing_else() {
    let Some(bin) = engine(
        "podman_hooks_d_files_match_every_ipvlan_annotation_and_nothing_else",
        "podman",
    ) else {
        return;
    };
    let lab = Lab::new("rt-podman-match");
    let podman = Podman::with_call_log(&lab, bin);
    // Lookalike keys: not ours, no hook at all.
    podman.ok(&run_rm(
        "none",
        &["org.example.ipvlan.network=net", "xipvlan.network=net"],
        &["true"],
    ));
    assert_eq!(
        podman.calls(),
        "",
        "hooks ran for a container without ipvlan.*"
    );
    // ipvlan.network: both stages, each with its own stage argument.
    podman.ok(&run_rm("none", &["ipvlan.network=net"], &["true"]));
    assert_eq!(podman.calls(), "createRuntime rc=0\npoststop rc=0\n");
    // Any other ipvlan.* key matches too, so mistakes are reported instead of ignored.
    for (ann, want) in [
        ("ipvlan.ipv4=10.78.0.9", "annotations name no network"),
        ("ipvlan.netwrok=net", "unknown annotation ipvlan.netwrok"),
    ] {
        let out = podman.run(&run_rm("none", &[ann], &["true"]));
        assert!(!out.status.success(), "{ann} must be refused");
        assert!(
            text(&out.stderr).contains(want),
            "{ann}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(
        podman.calls(),
        "createRuntime rc=0\npoststop rc=0\ncreateRuntime rc=1\ncreateRuntime rc=1\n",
        "podman runs no poststop after a failed createRuntime"
    );
    lab.assert_no_leases("after the refused container");
}

#[test]
fn podman_detached_container_is_released_exactly_once() {
    let Some(bin) = engine(
        "podman_detached_container_is_released_exactly_once",
        "podman",
    ) else {
        return;
    };
    let lab = Lab::new("rt-podman-once");
    let podman = Podman::with_call_log(&lab, bin);
    let a = podman.start(&[], &["sleep", "60"]);
    let leases = lab.leases();
    assert_eq!(leases.len(), 1, "{leases:?}");
    assert_eq!(leases[0].0, a, "the lease belongs to the running container");
    let addr = leases[0].1.clone();
    assert_eq!(podman.calls(), "createRuntime rc=0\n");

    podman.ok(&["stop", "--time", "0", &a]);
    lab.assert_no_leases("after podman stop");
    assert_eq!(podman.calls(), "createRuntime rc=0\npoststop rc=0\n");

    // The address goes to another container at once; a second poststop of the first (what
    // runc does after a failed start, or a retry) succeeds and leaves that lease alone.
    let b = podman.start(
        &["--annotation", &format!("ipvlan.ipv4={addr}")],
        &["sleep", "60"],
    );
    let state = state_json(&a, None, lab.host.dir(), &[("ipvlan.network", "net")]);
    let out = lab.host.oci_hook("poststop", &state);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(lab.leases(), vec![(b.clone(), addr)]);

    podman.ok(&["rm", &a]);
    assert_eq!(
        podman.calls().matches("poststop").count(),
        1,
        "podman rm must not run poststop again: {}",
        podman.calls()
    );
    podman.ok(&["rm", "--force", "--time", "0", &b]);
    lab.assert_no_leases("after podman rm");
    assert_eq!(
        podman.calls(),
        "createRuntime rc=0\npoststop rc=0\ncreateRuntime rc=0\npoststop rc=0\n"
    );
}

#[test]
fn podman_precreated_netns_loses_the_link_at_poststop() {
    let Some(bin) = engine(
        "podman_precreated_netns_loses_the_link_at_poststop",
        "podman",
    ) else {
        return;
    };
    let lab = Lab::new("rt-podman-ns");
    let podman = Podman::new(&lab, bin);
    let netns = NamedNetns::new(&lab);
    let network = format!("ns:{}", netns.path().display());
    let out = podman.ok(&run_rm(&network, &["ipvlan.network=net"], SHOW));
    assert_attached(&out, "10.78.0.2");
    let links = netns.links();
    assert!(
        !links.contains("eth0"),
        "eth0 left in {}: {links}",
        netns.name
    );
    lab.assert_no_leases("after podman run --rm");
}

#[test]
fn podman_refused_address_aborts_the_container() {
    let Some(bin) = engine("podman_refused_address_aborts_the_container", "podman") else {
        return;
    };
    let lab = Lab::new("rt-podman-refuse");
    let podman = Podman::new(&lab, bin);
    let holder = podman.start(
        &["--annotation", "ipvlan.ipv4=10.78.0.50"],
        &["sleep", "60"],
    );
    let netns = Ns::new();
    let network = format!("ns:{}", netns.netns_path().display());
    let out = podman.run(&run_rm(
        &network,
        &["ipvlan.network=net", "ipvlan.ipv4=10.78.0.50"],
        &["true"],
    ));
    assert!(!out.status.success(), "the container must not start");
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "10.78.0.50 is leased to container {holder} on network net"
        )),
        "the hook's message must reach the user: {err}"
    );
    assert_eq!(
        podman.containers().trim(),
        holder,
        "aborted container left behind"
    );
    assert_eq!(lab.leases(), vec![(holder, "10.78.0.50".to_string())]);
    let links = netns.sh("ip -o link");
    assert_eq!(links.lines().count(), 1, "only lo may be there: {links}");
    lab.assert_no_slave_in_host();
}

#[test]
fn podman_twenty_concurrent_containers_get_distinct_addresses() {
    let Some(bin) = engine(
        "podman_twenty_concurrent_containers_get_distinct_addresses",
        "podman",
    ) else {
        return;
    };
    let lab = Lab::new("rt-podman-20");
    let podman = Podman::new(&lab, bin);
    let ids: Vec<String> = std::thread::scope(|s| {
        let started: Vec<_> = (0..20)
            .map(|_| s.spawn(|| podman.start(&[], &["sleep", "60"])))
            .collect();
        started.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let leases = lab.leases();
    let containers: BTreeSet<&str> = leases.iter().map(|(c, _)| c.as_str()).collect();
    let addresses: BTreeSet<&str> = leases.iter().map(|(_, a)| a.as_str()).collect();
    assert_eq!(leases.len(), 20, "{leases:?}");
    assert_eq!(containers, ids.iter().map(String::as_str).collect());
    assert_eq!(
        addresses.len(),
        20,
        "addresses handed out twice: {leases:?}"
    );
    // Each container really has the address its lease names (seen from the host through the
    // container's pid: 20 `podman exec`s would take seconds).
    let mut inspect = vec!["inspect", "--format", "{{.Id}} {{.State.Pid}}"];
    inspect.extend(ids.iter().map(String::as_str));
    for line in podman.ok(&inspect).lines() {
        let (id, pid) = line.split_once(' ').unwrap();
        let addr = &leases.iter().find(|(c, _)| c == id).unwrap().1;
        let shown = lab.host.ns.sh(&format!(
            "nsenter --net=/proc/{pid}/ns/net ip -o -4 addr show dev eth0"
        ));
        assert!(shown.contains(&format!("inet {addr}/24")), "{id}: {shown}");
    }
    // One stop for all: podman stops them in parallel, so the poststops race too.
    let mut stop = vec!["stop", "--time", "0"];
    stop.extend(ids.iter().map(String::as_str));
    podman.ok(&stop);
    lab.assert_no_leases("after the 20 containers stopped");
    let mut rm = vec!["rm"];
    rm.extend(ids.iter().map(String::as_str));
    podman.ok(&rm);
    lab.assert_no_leases("after the 20 containers were removed");
    assert_eq!(podman.containers().trim(), "");
}

#[test]
fn podman_static_addresses_ping_each_other() {
    let Some(bin) = engine("podman_static_addresses_ping_each_other", "podman") else {
        return;
    };
    let lab = Lab::new("rt-podman-ping");
    let podman = Podman::new(&lab, bin);
    // busybox ping needs a raw socket.
    let a = podman.start(
        &[
            "--cap-add",
            "NET_RAW",
            "--annotation",
            "ipvlan.ipv4=10.78.0.50",
        ],
        &["sleep", "60"],
    );
    let b = podman.start(
        &[
            "--cap-add",
            "NET_RAW",
            "--annotation",
            "ipvlan.ipv4=10.78.0.51",
        ],
        &["sleep", "60"],
    );
    let shown = podman.ok(&["exec", &a, "ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(shown.contains("inet 10.78.0.50/24"), "{shown}");
    podman.ok(&["exec", &a, "ping", "-c1", "-W2", "10.78.0.51"]);
    podman.ok(&["exec", &b, "ping", "-c1", "-W2", "10.78.0.50"]);
    podman.ok(&["rm", "--force", "--time", "0", &a, &b]);
    lab.assert_no_leases("after podman rm");
}
