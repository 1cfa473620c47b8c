//! `ipvlan-hook doctor` in a throwaway host namespace with its own directories and hooks.d
//! directory. The kernel rows must agree with what `ip link add` can do in a scratch namespace:
//! on a kernel without ipvlan, 802.1q or dummy they FAIL with the module to load; in the VM run
//! (IPVLAN_HOOK_VM) all three must PASS.

mod common;

use std::path::Path;

use common::*;
use serde_json::{Value, json};

const SUBNET: &str = "10.81.0.0/24";

/// `doctor --format json` with this host's dirs and `hooks_dir`: (exit code, rows, stderr).
fn doctor(host: &Host, hooks_dir: &Path) -> (i32, Vec<Value>, String) {
    let out = host.hook(&[
        "doctor",
        "--format",
        "json",
        "--hooks-dir",
        hooks_dir.to_str().unwrap(),
    ]);
    let rows: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor json: {e}: {}", text(&out.stdout)));
    (
        out.status.code().unwrap_or(-1),
        rows.as_array().expect("array of checks").clone(),
        text(&out.stderr),
    )
}

/// Some row `check` has `status` and a detail containing `detail`.
fn assert_row(rows: &[Value], check: &str, status: &str, detail: &str) {
    let named: Vec<&Value> = rows.iter().filter(|r| r["check"] == check).collect();
    assert!(!named.is_empty(), "no {check:?} row in {rows:#?}");
    assert!(
        named
            .iter()
            .any(|r| r["status"] == status && r["detail"].as_str().unwrap().contains(detail)),
        "{check}: no {status} row whose detail has {detail:?}: {named:#?}"
    );
}

/// The hooks.d files of hooks/, pointing at this build and this host's directories.
fn write_hooks_d(host: &Host, dir: &Path, stages: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    for stage in stages {
        let file = json!({
            "version": "1.0.0",
            "hook": {
                "path": hook_bin(),
                "args": ["ipvlan-hook", "hook", stage, "--config-dir", host.config, "--state-dir", host.state],
                "timeout": 10
            },
            "when": {"annotations": {"^ipvlan\\.": ".*"}},
            "stages": [stage]
        });
        std::fs::write(
            dir.join(format!("ipvlan-hook-{stage}.json")),
            file.to_string(),
        )
        .unwrap();
    }
}

/// What `ip link add` says this kernel can do, one link type at a time.
fn kernel_can(kind: &str) -> bool {
    let ns = Ns::new();
    ns.try_sh(match kind {
        "dummy" => "ip link add d0 type dummy",
        "vlan" => "ip link add v0 type veth peer name v1 && ip link add link v0 name v0.5 type vlan id 5",
        _ => "ip link add v0 type veth peer name v1 && ip link add link v0 name iv0 type ipvlan mode l2",
    })
}

fn links(host: &Host) -> String {
    host.ns.sh("ip -o link show | cut -d: -f2 | sort")
}

#[test]
fn a_ready_host_passes_and_kernel_rows_match_the_kernel() {
    let host = Host::new("doctor-ok");
    host.ns
        .sh("ip link add p0 type veth peer name p1 && ip link set p0 up && ip link set p1 up");
    host.ok(&[
        "network", "create", "net", "--driver", "macvlan", "--parent", "p0", "--subnet", SUBNET,
    ]);
    let hooks_d = host.dir().join("hooks.d");
    write_hooks_d(&host, &hooks_d, &["createRuntime", "poststop"]);
    let before = links(&host);

    let (code, rows, stderr) = doctor(&host, &hooks_d);

    let vm = std::env::var_os("IPVLAN_HOOK_VM").is_some();
    let mut all_supported = true;
    for (check, kind, module) in [
        ("kernel: ipvlan", "ipvlan", "ipvlan"),
        ("kernel: 802.1q VLAN", "vlan", "8021q"),
        ("kernel: dummy", "dummy", "dummy"),
    ] {
        let can = kernel_can(kind);
        assert!(!vm || can, "{check}: the VM kernel must have {kind} links");
        if can {
            assert_row(&rows, check, "pass", "supported");
        } else {
            all_supported = false;
            assert_row(&rows, check, "fail", &format!("(modprobe {module})"));
        }
    }
    assert_row(&rows, "privileges", "pass", "CAP_NET_ADMIN");
    let config = host.config.display().to_string();
    assert_row(&rows, &format!("config dir {config}"), "pass", "readable");
    assert_row(
        &rows,
        &format!("policy {config}/policy.json"),
        "pass",
        "annotation-only networks refused",
    );
    assert_row(
        &rows,
        "network net",
        "pass",
        &format!("macvlan bridge on p0, {SUBNET}"),
    );
    let state = host.state.display().to_string();
    assert_row(&rows, &format!("state dir {state}"), "pass", "");
    for stage in ["createRuntime", "poststop"] {
        let file = hooks_d.join(format!("ipvlan-hook-{stage}.json"));
        assert_row(
            &rows,
            &format!("hooks.d {}", file.display()),
            "pass",
            &format!("{stage} runs {}", hook_bin().display()),
        );
    }
    let failed: Vec<&Value> = rows.iter().filter(|r| r["status"] == "fail").collect();
    assert_eq!(
        failed.is_empty(),
        all_supported,
        "only kernel rows may fail here: {failed:#?}"
    );
    assert_eq!(code, if all_supported { 0 } else { 1 }, "{stderr}");
    if !all_supported {
        assert!(
            stderr.contains(&format!(
                "doctor: {} of {} checks failed",
                failed.len(),
                rows.len()
            )),
            "{stderr}"
        );
    }
    // The probes ran in a namespace of their own: nothing new here, no probe link anywhere.
    assert_eq!(links(&host), before, "doctor changed the host's links");

    // The table a person reads: the same verdicts, with the hint to act on.
    let out = host.hook(&["doctor", "--hooks-dir", hooks_d.to_str().unwrap()]);
    let table = text(&out.stdout);
    assert!(table.starts_with("CHECK"), "{table}");
    if !kernel_can("ipvlan") {
        assert!(
            table.lines().any(|l| l.starts_with("kernel: ipvlan")
                && l.contains("FAIL")
                && l.ends_with("load the ipvlan module (modprobe ipvlan)")),
            "{table}"
        );
    }
}

#[test]
fn broken_networks_and_hooks_fail_with_what_to_do() {
    let host = Host::new("doctor-bad");
    host.ns
        .sh("ip link add p0 type veth peer name p1 && ip link set p0 up && ip link set p1 up");
    let nets = host.config.join("networks");
    std::fs::create_dir_all(&nets).unwrap();
    let net = |name: &str, parent: &str, owned: Option<&str>, subnet: &str| {
        let mut v = json!({"version": 1, "name": name, "id": "0123456789abcdef0123", "driver": "macvlan",
            "parent": parent, "subnets": [{"subnet": subnet}]});
        if let Some(o) = owned {
            v["parent_owned"] = json!(o);
        }
        std::fs::write(nets.join(format!("{name}.json")), v.to_string()).unwrap();
    };
    net("gone", "nope0", None, "10.81.1.0/24");
    net("vlan20", "p0.20", Some("vlan"), "10.81.2.0/24");
    net("novlanbase", "q9.30", Some("vlan"), "10.81.3.0/24");
    net("isolated", "di-0123456789ab", Some("dummy"), "10.81.4.0/24");
    std::fs::write(
        nets.join("typo.json"),
        r#"{"version": 1, "name": "typo", "parnet": "p0"}"#,
    )
    .unwrap();
    std::fs::write(
        host.config.join("policy.json"),
        r#"{"version": 1, "allow_annotation_networks": true, "allowed_parents": ["p0"]}"#,
    )
    .unwrap();

    // Only a createRuntime file, and it points at a binary that is not there.
    let hooks_d = host.dir().join("hooks.d");
    write_hooks_d(&host, &hooks_d, &["createRuntime"]);
    let file = hooks_d.join("ipvlan-hook-createRuntime.json");
    let shipped = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        shipped.replace(hook_bin().to_str().unwrap(), "/nonexistent/ipvlan-hook"),
    )
    .unwrap();

    let (code, rows, stderr) = doctor(&host, &hooks_d);
    assert_eq!(code, 1, "{stderr}");
    assert_row(
        &rows,
        "network gone",
        "fail",
        "parent interface nope0 not found: create it, or recreate the network",
    );
    assert_row(
        &rows,
        "network vlan20",
        "pass",
        "VLAN 20 on p0 is missing and is made again when a container attaches",
    );
    assert_row(
        &rows,
        "network novlanbase",
        "fail",
        "base interface q9 not found",
    );
    assert_row(
        &rows,
        "network isolated",
        "pass",
        "dummy parent is missing and is made again",
    );
    assert_row(&rows, "network typo", "fail", "parnet");
    assert_row(
        &rows,
        &format!("policy {}", host.config.join("policy.json").display()),
        "pass",
        "annotation-only networks allowed: parents p0, subnets any",
    );
    assert_row(
        &rows,
        &format!("hooks.d {}", file.display()),
        "fail",
        "hook path /nonexistent/ipvlan-hook does not exist",
    );
    assert_row(
        &rows,
        "hooks.d",
        "fail",
        "no working ipvlan-hook file for the poststop stage",
    );

    // A hooks.d file that runs the hook with other directories than the ones checked.
    let other = host.dir().join("hooks-other");
    write_hooks_d(&host, &other, &["createRuntime", "poststop"]);
    let poststop = other.join("ipvlan-hook-poststop.json");
    let text_ = std::fs::read_to_string(&poststop).unwrap();
    std::fs::write(
        &poststop,
        text_.replace(host.state.to_str().unwrap(), "/srv/elsewhere"),
    )
    .unwrap();
    let (_, rows, _) = doctor(&host, &other);
    assert_row(
        &rows,
        &format!("hooks.d {}", poststop.display()),
        "warn",
        "it uses --state-dir /srv/elsewhere",
    );
}

#[test]
fn a_fresh_host_warns_but_only_the_kernel_can_fail() {
    let host = Host::new("doctor-fresh");
    let empty = host.dir().join("no-hooks.d");
    let (code, rows, stderr) = doctor(&host, &empty);
    let config = host.config.display().to_string();
    assert_row(&rows, &format!("config dir {config}"), "warn", "missing");
    assert_row(&rows, "networks", "warn", "none defined");
    assert_row(
        &rows,
        &format!("state dir {}", host.state.display()),
        "pass",
        "missing: made on first use",
    );
    assert_row(
        &rows,
        "hooks.d",
        "warn",
        "podman and CRI-O will not run the hook",
    );
    let non_kernel_failures: Vec<&Value> = rows
        .iter()
        .filter(|r| r["status"] == "fail" && !r["check"].as_str().unwrap().starts_with("kernel:"))
        .collect();
    assert!(non_kernel_failures.is_empty(), "{non_kernel_failures:#?}");
    let kernel_ok = rows.iter().all(|r| r["status"] != "fail");
    assert_eq!(code, if kernel_ok { 0 } else { 1 }, "{stderr}");
    assert!(!host.config.exists(), "doctor created the config dir");
    assert!(!host.state.exists(), "doctor created the state dir");
}
