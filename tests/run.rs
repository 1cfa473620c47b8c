//! `ipvlan-run` end to end: a command in a fresh netns on a network, its exit status passed
//! through, everything torn down however it ends.

mod common;

use std::time::Duration;

use common::*;

/// `ipvlan-run` arguments for a network of its own on p0 with the test driver, then `rest`.
fn on_p0<'a>(subnet: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--parent", "p0", "--driver", driver(), "--subnet", subnet];
    args.extend_from_slice(rest);
    args
}

#[test]
fn command_runs_on_the_network_and_its_exit_status_passes_through() {
    let host = Host::with_parent("status");
    let out = host.run(&on_p0(
        "10.78.0.0/24",
        &["--", "sh", "-c", "ip -o addr; ip route; exit 7"],
    ));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(7), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("eth0    inet 10.78.0.2/24"), "{stdout}");
    assert!(
        stdout.contains("lo    inet 127.0.0.1/8"),
        "lo must be up: {stdout}"
    );
    assert!(
        stdout.contains("default via 10.78.0.1 dev eth0"),
        "{stdout}"
    );
    assert_eq!(host.lease_count(), 0);
}

#[test]
fn defined_network_static_address_and_name() {
    let host = Host::with_parent("defined");
    host.ok(&network_create(
        "n",
        "p0",
        &["--subnet", "10.78.1.0/24", "--subnet", "fd00:78:1::/64"],
    ));
    let out = host.run(&[
        "--network",
        "n",
        "--ip",
        "10.78.1.9",
        "--ip6",
        "fd00:78:1::9",
        "--name",
        "job1",
        "--",
        "sh",
        "-c",
        "ip -o addr show dev eth0",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("10.78.1.9/24") && stdout.contains("fd00:78:1::9/64"),
        "{stdout}"
    );
    assert_eq!(host.lease_count(), 0);
}

#[test]
fn killed_command_still_tears_down() {
    let host = Host::with_parent("killed");
    let out = host.run(&on_p0("10.78.2.0/24", &["--", "sh", "-c", "kill -9 $$"]));
    assert_eq!(out.status.code(), Some(137), "{}", text(&out.stderr));
    assert_eq!(host.lease_count(), 0);
}

#[test]
fn signals_are_forwarded_and_teardown_follows() {
    let host = Host::with_parent("signal");
    let mut child = host
        .run_cmd(&on_p0(
            "10.78.3.0/24",
            &["--name", "sig", "--", "sleep", "60"],
        ))
        .spawn()
        .unwrap();
    // Wait until the lease exists: setup is done and sleep is running.
    let mut tries = 0;
    while host.lease_count() == 0 {
        tries += 1;
        assert!(tries < 200, "setup never finished");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 15));
    assert_eq!(host.lease_count(), 0);
}

#[test]
fn bad_flags_fail_clearly() {
    let host = Host::with_parent("bad");
    for (args, want) in [
        (vec!["--", "true"], "give --network NAME, or --subnet CIDR"),
        (
            vec!["--network", "nope", "--", "true"],
            "network nope is not defined",
        ),
        (
            vec![
                "--parent",
                "nosuch0",
                "--subnet",
                "10.78.4.0/24",
                "--driver",
                "macvlan",
                "--",
                "true",
            ],
            "nosuch0",
        ),
        (
            vec![
                "--parent",
                "p0",
                "--subnet",
                "10.78.4.0/24",
                "--driver",
                "macvlan",
                "--ip",
                "10.78.5.1",
                "--",
                "true",
            ],
            "10.78.5.1",
        ),
        (
            vec![
                "--parent",
                "p0",
                "--subnet",
                "10.78.4.0/24",
                "--driver",
                "macvlan",
                "--",
                "/nonexistent/cmd",
            ],
            "cannot run /nonexistent/cmd",
        ),
    ] {
        let out = host.run(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(host.lease_count(), 0, "{args:?}");
    }
}

#[test]
fn main_command_on_a_kernel_without_ipvlan_says_so() {
    if kernel_has_ipvlan() {
        return skipped(
            "main_command_on_a_kernel_without_ipvlan_says_so",
            "this kernel has ipvlan (the VM suite runs the command for real)",
        );
    }
    let host = Host::with_parent("nokernel");
    let out = host.run(&["--subnet", "192.168.77.0/24", "--", "ip", "addr"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        "ipvlan-hook: kernel lacks ipvlan support (CONFIG_IPVLAN): load the ipvlan module (modprobe ipvlan)"
    );
}
