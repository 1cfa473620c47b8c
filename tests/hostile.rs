//! Hostile and broken input, table-driven: every case gets one clear line on stderr, a non-zero
//! exit, and leaves nothing behind (no lease, no link, no network file). Input handling is the
//! same on every kernel: these run on the host only.

mod common;

use std::process::Output;

use common::*;

const NET4: &str = "10.80.0.0/24";
const NET6: &str = "fd00:80::/64";

fn host() -> Host {
    Host::with_network("hostile", &["--subnet", NET4, "--subnet", NET6])
}

/// One failed invocation: non-zero, one line naming the problem, nothing left behind.
fn assert_refused(host: &Host, ctr: &Ns, case: &str, out: &Output, want: &str) {
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{case}: should fail, stderr: {err}");
    // Ours: one line. clap's usage errors: its first line, then a pointer to --help.
    let first = err.lines().next().unwrap_or_default();
    let ours = err.starts_with("ipvlan-hook: ") && err.trim_end().lines().count() == 1;
    let clap = err.starts_with("error: ") && out.status.code() == Some(2);
    assert!(ours || clap, "{case}: not one clear line: {err:?}");
    assert!(first.contains(want), "{case}: expected {want:?} in {err:?}");
    assert_eq!(host.lease_count(), 0, "{case}: left a lease");
    let links = ctr.sh("ip -o link");
    assert_eq!(
        links.lines().count(),
        1,
        "{case}: left a link in the container: {links}"
    );
    let host_links = host.ns.sh("ip -o link");
    assert_eq!(
        host_links.lines().count(),
        3,
        "{case}: left a link in the host: {host_links}"
    );
}

#[test]
fn broken_oci_state_and_annotations() {
    if !host_only("broken_oci_state_and_annotations") {
        return;
    }
    let host = host();
    let ctr = Ns::new();
    let pid = ctr.pid();
    let b = host.dir().to_path_buf();
    let ann = |pairs: &[(&str, &str)]| {
        let mut all = vec![("ipvlan.network", "net")];
        all.extend_from_slice(pairs);
        state_json("c1", Some(pid), &b, &all)
    };
    let mut zombie = std::process::Command::new("true").spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100)); // exited, not reaped: no netns
    let huge = format!("{{\"id\":\"c1\",\"pad\":\"{}\"}}", "x".repeat(2 << 20));
    let cases: Vec<(&str, String, &str)> = vec![
        ("malformed JSON", "{".into(), "invalid OCI state JSON"),
        (
            "truncated JSON",
            ann(&[])[..40].to_string(),
            "invalid OCI state JSON",
        ),
        ("empty stdin", String::new(), "no OCI state on stdin"),
        (
            "wrong type of id",
            r#"{"id":5,"pid":1}"#.into(),
            "invalid type",
        ),
        (
            "wrong type of pid",
            r#"{"id":"c1","pid":"1"}"#.into(),
            "invalid type",
        ),
        (
            "annotations not a map",
            r#"{"id":"c1","pid":1,"annotations":[1]}"#.into(),
            "invalid type",
        ),
        ("huge input", huge, "larger than"),
        (
            "missing id",
            r#"{"pid":1,"annotations":{"ipvlan.network":"net"}}"#.into(),
            "missing field `id`",
        ),
        (
            "path traversal in id",
            state_json("../../etc/x", Some(pid), &b, &[("ipvlan.network", "net")]),
            "invalid container id",
        ),
        (
            "NUL in id",
            r#"{"id":"a\u0000b","pid":1,"annotations":{"ipvlan.network":"net"}}"#.into(),
            "invalid container id",
        ),
        (
            "overlong id",
            state_json(
                &"a".repeat(300),
                Some(pid),
                &b,
                &[("ipvlan.network", "net")],
            ),
            "invalid container id",
        ),
        (
            "missing pid",
            state_json("c1", None, &b, &[("ipvlan.network", "net")]),
            "has no pid",
        ),
        (
            "dead pid",
            state_json("c1", Some(999_999_999), &b, &[("ipvlan.network", "net")]),
            "/proc/999999999",
        ),
        (
            "netns already gone",
            state_json("c1", Some(zombie.id()), &b, &[("ipvlan.network", "net")]),
            &*format!("/proc/{}/ns/net", zombie.id()).leak(),
        ),
        (
            "unknown network",
            state_json("c1", Some(pid), &b, &[("ipvlan.network", "nope")]),
            "network nope is not defined",
        ),
        (
            "path traversal in network",
            state_json("c1", Some(pid), &b, &[("ipvlan.network", "../x")]),
            "invalid network name",
        ),
        (
            "unknown mode",
            ann(&[("ipvlan.mode", "l7")]),
            "use l2, l3 or l3s",
        ),
        (
            "unknown flag",
            ann(&[("ipvlan.flag", "open")]),
            "use bridge, private or vepa",
        ),
        (
            "unknown annotation",
            ann(&[("ipvlan.adress", "1.2.3.4")]),
            "unknown annotation ipvlan.adress",
        ),
        (
            "invalid address text",
            ann(&[("ipvlan.ipv4", "10.80.0.300")]),
            "not an address",
        ),
        (
            "address of the wrong family",
            ann(&[("ipvlan.ipv4", "fd00:80::5")]),
            "not an IPv4 address",
        ),
        (
            "address outside the subnet",
            ann(&[("ipvlan.ipv4", "10.81.0.5")]),
            "outside every subnet of network net",
        ),
        (
            "network address",
            ann(&[("ipvlan.ipv4", "10.80.0.0")]),
            "10.80.0.0",
        ),
        (
            "broadcast address",
            ann(&[("ipvlan.ipv4", "10.80.0.255")]),
            "10.80.0.255",
        ),
        (
            "gateway address",
            ann(&[("ipvlan.ipv4", "10.80.0.1")]),
            "10.80.0.1",
        ),
        (
            "IPv6 subnet-router address",
            ann(&[("ipvlan.ipv6", "fd00:80::")]),
            "fd00:80::",
        ),
        (
            "prefix disagreeing with the network",
            ann(&[("ipvlan.ipv4", "10.80.0.5/16")]),
            "has subnet 10.80.0.0/24",
        ),
        (
            "gateway annotation on a defined network",
            ann(&[("ipvlan.gateway", "10.80.0.254")]),
            "for annotation-only networks",
        ),
        (
            "mode contradicting the network",
            ann(&[("ipvlan.mode", "l3")]),
            "contradicts network net",
        ),
        (
            "parent contradicting the network",
            ann(&[("ipvlan.parent", "p1")]),
            "contradicts network net",
        ),
        (
            "MTU out of range",
            ann(&[("ipvlan.mtu", "70000")]),
            "68 to 65535",
        ),
        (
            "MTU not a number",
            ann(&[("ipvlan.mtu", "big")]),
            "68 to 65535",
        ),
        (
            "interface name too long",
            ann(&[("ipvlan.ifname", "abcdefghijklmnop")]),
            "invalid interface name",
        ),
        (
            "interface name with a slash",
            ann(&[("ipvlan.ifname", "a/b")]),
            "invalid interface name",
        ),
        (
            "interface name ..",
            ann(&[("ipvlan.ifname", "..")]),
            "invalid interface name",
        ),
        (
            "annotation-only network refused by default",
            state_json(
                "c1",
                Some(pid),
                &b,
                &[("ipvlan.parent", "p0"), ("ipvlan.ipv4", "10.90.0.5/24")],
            ),
            "refused by policy",
        ),
    ];
    for (case, stdin, want) in cases {
        let out = host.oci_hook("createRuntime", &stdin);
        assert_refused(&host, &ctr, case, &out, want);
    }
    zombie.wait().unwrap();
}

#[test]
fn broken_network_definitions() {
    if !host_only("broken_network_definitions") {
        return;
    }
    let host = host();
    let ctr = Ns::new();
    let before = host.ok(&["network", "ls", "--format", "json"]);
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "VLAN id 0",
            &["v", "--parent", "p0.0", "--subnet", "10.82.0.0/24"],
            "VLAN id \"0\" is not valid",
        ),
        (
            "VLAN id 4095",
            &["v", "--parent", "p0.4095", "--subnet", "10.82.0.0/24"],
            "use a number from 1 to 4094",
        ),
        (
            "VLAN id not numeric",
            &["v", "--parent", "p0.x", "--subnet", "10.82.0.0/24"],
            "VLAN id \"x\" is not valid",
        ),
        (
            "missing parent",
            &["v", "--parent", "nosuch0", "--subnet", "10.82.0.0/24"],
            "parent interface nosuch0 not found",
        ),
        (
            "parent lo",
            &["v", "--parent", "lo", "--subnet", "10.82.0.0/24"],
            "loopback",
        ),
        (
            "MTU too small",
            &[
                "v",
                "--parent",
                "p0",
                "--subnet",
                "10.82.0.0/24",
                "--mtu",
                "10",
            ],
            "--mtu 10 is out of range",
        ),
        (
            "IPv6 MTU below 1280",
            &[
                "v",
                "--parent",
                "p0",
                "--subnet",
                "fd00:82::/64",
                "--mtu",
                "1000",
            ],
            "1280 to 65535",
        ),
        (
            "gateway outside the subnet",
            &[
                "v",
                "--parent",
                "p0",
                "--subnet",
                "10.82.0.0/24",
                "--gateway",
                "10.83.0.1",
            ],
            "--gateway 10.83.0.1 lies outside",
        ),
        (
            "ip-range outside the subnet",
            &[
                "v",
                "--parent",
                "p0",
                "--subnet",
                "10.82.0.0/24",
                "--ip-range",
                "10.83.0.0/25",
            ],
            "lies outside",
        ),
        (
            "host bits set",
            &["v", "--parent", "p0", "--subnet", "10.82.0.1/24"],
            "host bits set",
        ),
        (
            "invalid subnet text",
            &["v", "--parent", "p0", "--subnet", "10.82.0.0/33"],
            "invalid value",
        ),
        (
            "no subnet",
            &["v", "--parent", "p0"],
            "at least one --subnet",
        ),
        (
            "name with a slash",
            &["a/b", "--parent", "p0", "--subnet", "10.82.0.0/24"],
            "invalid network name",
        ),
        (
            "existing name",
            &["net", "--parent", "p0", "--subnet", "10.82.0.0/24"],
            "already exists",
        ),
        (
            "overlapping subnet on the same parent",
            &[
                "v",
                "--driver",
                driver(),
                "--parent",
                "p0",
                "--subnet",
                "10.80.0.128/25",
            ],
            "overlaps",
        ),
        (
            "unknown mode",
            &[
                "v",
                "--parent",
                "p0",
                "--mode",
                "l4",
                "--subnet",
                "10.82.0.0/24",
            ],
            "invalid value 'l4'",
        ),
    ];
    for (case, args, want) in cases {
        let mut full = vec!["network", "create"];
        full.extend_from_slice(args);
        let out = host.hook(&full);
        assert_refused(&host, &ctr, case, &out, want);
        assert_eq!(
            host.ok(&["network", "ls", "--format", "json"]),
            before,
            "{case}: networks changed"
        );
    }
}

#[test]
fn hand_edited_network_files() {
    if !host_only("hand_edited_network_files") {
        return;
    }
    let host = host();
    let ctr = Ns::new();
    let dir = host.config.join("networks");
    let cases = [
        (
            "unknown field",
            r#"{"version":1,"name":"bad","id":"x","parent":"p0","subnets":[{"subnet":"10.84.0.0/24"}],"colour":"red"}"#,
            "unknown field `colour`",
        ),
        (
            "missing field",
            r#"{"version":1,"name":"bad","id":"x","subnets":[{"subnet":"10.84.0.0/24"}]}"#,
            "missing field `parent`",
        ),
        (
            "future version",
            r#"{"version":9,"name":"bad","id":"x","parent":"p0","subnets":[{"subnet":"10.84.0.0/24"}]}"#,
            "has version 9",
        ),
        (
            "truncated",
            r#"{"version":1,"name":"bad","id":"#,
            "invalid network file",
        ),
        (
            "name disagreeing with the file",
            r#"{"version":1,"name":"other","id":"x","parent":"p0","subnets":[{"subnet":"10.84.0.0/24"}]}"#,
            "must agree",
        ),
        (
            "parent lo",
            r#"{"version":1,"name":"bad","id":"x","parent":"lo","subnets":[{"subnet":"10.84.0.0/24"}]}"#,
            "loopback interface lo is not a valid parent",
        ),
        (
            "mtu 0",
            r#"{"version":1,"name":"bad","id":"x","parent":"p0","mtu":0,"subnets":[{"subnet":"10.84.0.0/24"}]}"#,
            "mtu 0 is out of range",
        ),
        (
            "a /32 subnet",
            r#"{"version":1,"name":"bad","id":"x","parent":"p0","subnets":[{"subnet":"10.84.0.1/32"}]}"#,
            "too small to allocate from",
        ),
        (
            "gateway outside its subnet",
            r#"{"version":1,"name":"bad","id":"x","parent":"p0","subnets":[{"subnet":"10.84.0.0/24","gateway":"10.85.0.1"}]}"#,
            "gateway 10.85.0.1 lies outside its subnet 10.84.0.0/24",
        ),
    ];
    for (case, json, want) in cases {
        std::fs::write(dir.join("bad.json"), json).unwrap();
        let out = host.oci_hook(
            "createRuntime",
            &state_json(
                "c1",
                Some(ctr.pid()),
                host.dir(),
                &[("ipvlan.network", "bad")],
            ),
        );
        assert_refused(&host, &ctr, case, &out, want);
        assert!(
            text(&out.stderr).contains("bad.json"),
            "{case}: must name the file: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn corrupted_lease_file_never_causes_a_double_allocation() {
    if !host_only("corrupted_lease_file_never_causes_a_double_allocation") {
        return;
    }
    let host = host();
    let a = Ns::new();
    let out = host.oci_hook(
        "createRuntime",
        &state_json("a", Some(a.pid()), host.dir(), &[("ipvlan.network", "net")]),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let leases = host.state.join("networks/net/leases");
    // Truncate a's lease and plant garbage where the next address would go.
    std::fs::write(leases.join("10.80.0.2"), "{\"version\":1,").unwrap();
    std::fs::write(leases.join("10.80.0.3"), "garbage").unwrap();
    let b = Ns::new();
    let out = host.oci_hook(
        "createRuntime",
        &state_json("b", Some(b.pid()), host.dir(), &[("ipvlan.network", "net")]),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let addr = b.sh("ip -o -4 addr show dev eth0");
    assert!(
        addr.contains("10.80.0.4/24"),
        "unreadable leases must keep their addresses: {addr}"
    );
    let out = host.oci_hook(
        "createRuntime",
        &state_json(
            "c",
            Some(Ns::new().pid()),
            host.dir(),
            &[("ipvlan.network", "net"), ("ipvlan.ipv4", "10.80.0.2")],
        ),
    );
    assert!(
        text(&out.stderr).contains("blocked by the unreadable lease file"),
        "{}",
        text(&out.stderr)
    );
    let ls = host.hook(&["lease", "ls"]);
    assert!(
        text(&ls.stderr).contains("unreadable lease file"),
        "lease ls must report it: {}",
        text(&ls.stderr)
    );
}

/// A tmpfs mounted on the state dir for one test; unmounted again when dropped.
struct Mounted(std::path::PathBuf);

impl Mounted {
    fn tmpfs(path: &std::path::Path, opts: &str) -> Mounted {
        std::fs::create_dir_all(path).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(path)
            .status()
            .unwrap();
        assert!(ok.success(), "mount tmpfs on {}", path.display());
        Mounted(path.to_owned())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn unwritable_or_full_state_dir() {
    if !host_only("unwritable_or_full_state_dir") {
        return;
    }
    let host = host();
    let ctr = Ns::new();
    let state = |id: &str| {
        state_json(
            id,
            Some(ctr.pid()),
            host.dir(),
            &[("ipvlan.network", "net")],
        )
    };
    {
        let _ro = Mounted::tmpfs(&host.state, "ro,size=1m");
        let out = host.oci_hook("createRuntime", &state("c1"));
        let err = text(&out.stderr);
        assert!(
            !out.status.success() && err.contains("Read-only file system"),
            "{err}"
        );
        assert!(
            err.contains(&host.state.display().to_string()),
            "must name the path: {err}"
        );
        assert_eq!(ctr.sh("ip -o link").lines().count(), 1, "left a link");
    }
    {
        let _full = Mounted::tmpfs(&host.state, "size=64k");
        let filler = host.state.join("filler");
        let _ = std::fs::write(&filler, vec![0u8; 1 << 20]); // fails once the tmpfs is full
        let out = host.oci_hook("createRuntime", &state("c2"));
        let err = text(&out.stderr);
        assert!(
            !out.status.success() && err.contains("No space left on device"),
            "{err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert_eq!(ctr.sh("ip -o link").lines().count(), 1, "left a link");
        std::fs::remove_file(&filler).unwrap();
        let leases = host.state.join("networks/net/leases");
        let left = std::fs::read_dir(&leases).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "left a lease in {}", leases.display());
    }
}
