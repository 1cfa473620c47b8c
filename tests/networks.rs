//! Several networks per container, and namespaces no runtime manages (`network connect`), end
//! to end on this kernel: a "host" netns whose veth `p0` is every network's parent and whose
//! peer `p1` plays the networks' routers, "containers" that are processes in their own netns.
//! The slave driver is ipvlan where the kernel has it (the VM run) and macvlan otherwise.

mod common;

use common::*;
use serde_json::Value;

/// Networks a (dual stack), b (dual stack) and c on p0; p1 answers at each gateway.
fn three_networks(tag: &str) -> Host {
    let host = Host::with_parent(tag);
    for (name, v4, v6) in [
        ("a", "10.78.1.0/24", "fd00:78:1::/64"),
        ("b", "10.78.2.0/24", "fd00:78:2::/64"),
        ("c", "10.78.3.0/24", "fd00:78:3::/64"),
    ] {
        host.ok(&network_create(
            name,
            "p0",
            &["--subnet", v4, "--subnet", v6],
        ));
    }
    host.ns.sh(
        "ip addr add 10.78.1.1/24 dev p1 && ip addr add 10.78.2.1/24 dev p1 && \
         ip addr add 10.78.3.1/24 dev p1 && ip -6 addr add fd00:78:2::1/64 dev p1 nodad",
    );
    host
}

fn create(host: &Host, id: &str, ctr: &Ns, ann: &[(&str, &str)]) -> std::process::Output {
    host.oci_hook(
        "createRuntime",
        &state_json(id, Some(ctr.pid()), host.dir(), ann),
    )
}

/// Poststop as a runtime runs it: it succeeds and no lease is left.
fn poststop_releases_all(host: &Host, id: &str, ann: &[(&str, &str)]) {
    let out = host.oci_hook("poststop", &state_json(id, None, host.dir(), ann));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(host.lease_count(), 0);
}

fn leases(host: &Host) -> Vec<Value> {
    let out = host.ok(&["lease", "ls", "--format", "json"]);
    serde_json::from_str::<Value>(&out)
        .expect("lease ls json")
        .as_array()
        .expect("array")
        .clone()
}

/// The default routes of a family, without the `proto`/`metric` tails.
fn defaults(ctr: &Ns, family: &str) -> Vec<String> {
    ctr.sh(&format!("ip {family} route show default"))
        .lines()
        .map(|l| l.split(" proto ").next().unwrap_or(l).trim().to_string())
        .collect()
}

#[test]
fn three_attachments_one_default_route_per_family_all_released() {
    let host = three_networks("multi");
    let ctr = Ns::new();
    // b wins the default routes; a twice is two interfaces with two addresses.
    let mac = if driver() == "macvlan" {
        r#","mac":"02:42:0a:4e:02:09""#
    } else {
        ""
    };
    let list = format!(
        r#"[{{"name":"a","ips":["10.78.1.50"]}},{{"name":"b","gw-priority":10,"mtu":1400{mac}}},{{"name":"a","interface":"lan2"}}]"#
    );
    let ann = [("ipvlan.networks", list.as_str())];
    let out = create(&host, "m1", &ctr, &ann);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let addr = |ifname: &str| ctr.sh(&format!("ip -o addr show dev {ifname} scope global"));
    assert!(addr("eth0").contains("10.78.1.50/24"), "{}", addr("eth0"));
    assert!(addr("eth1").contains("10.78.2.2/24"), "{}", addr("eth1"));
    assert!(addr("lan2").contains("10.78.1.2/24"), "{}", addr("lan2"));
    let eth1 = ctr.sh("ip -o link show dev eth1");
    assert!(eth1.contains("mtu 1400"), "{eth1}");
    if driver() == "macvlan" {
        assert!(eth1.contains("02:42:0a:4e:02:09"), "{eth1}");
    }
    assert_eq!(defaults(&ctr, "-4"), ["default via 10.78.2.1 dev eth1"]);
    let v6 = defaults(&ctr, "-6");
    assert_eq!(v6.len(), 1, "{v6:?}");
    assert!(
        v6[0].starts_with("default via fd00:78:2::1 dev eth1"),
        "{v6:?}"
    );
    // Every attachment has its subnet routes.
    let routes = ctr.sh("ip route");
    for want in [
        "10.78.1.0/24 dev eth0",
        "10.78.2.0/24 dev eth1",
        "10.78.1.0/24 dev lan2",
    ] {
        assert!(routes.contains(want), "{want} missing: {routes}");
    }
    // Every interface reaches its network at once, the link-local addresses are not
    // tentative.
    for (ifname, to) in [
        ("eth0", "10.78.1.1"),
        ("eth1", "10.78.2.1"),
        ("lan2", "10.78.1.1"),
    ] {
        assert!(
            ctr.try_sh(&format!("ping -c1 -W2 -I {ifname} {to}")),
            "no ping from {ifname} to {to}"
        );
    }
    assert!(ctr.try_sh("ping -6 -c1 -W2 -I eth1 fd00:78:2::1"));
    assert!(!ctr.sh("ip -6 addr").contains("tentative"));

    // One row per address of each attachment, each naming its interface.
    let rows = leases(&host);
    let mut seen: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["network"].as_str().unwrap().into(),
                r["ifname"].as_str().unwrap().into(),
            )
        })
        .collect();
    seen.sort();
    seen.dedup();
    let want: Vec<(String, String)> = [("a", "eth0"), ("a", "lan2"), ("b", "eth1")]
        .iter()
        .map(|(n, i)| (n.to_string(), i.to_string()))
        .collect();
    assert_eq!(seen, want);
    assert_eq!(rows.len(), 6, "two families x three attachments");

    poststop_releases_all(&host, "m1", &ann);
}

#[test]
fn short_form_names_interfaces_in_order_and_the_first_wins_a_tie() {
    let host = three_networks("short");
    let ctr = Ns::new();
    let ann = [("ipvlan.networks", "c, a")];
    let out = create(&host, "s1", &ctr, &ann);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(ctr.sh("ip -o -4 addr show dev eth0").contains("10.78.3."));
    assert!(ctr.sh("ip -o -4 addr show dev eth1").contains("10.78.1."));
    assert_eq!(defaults(&ctr, "-4"), ["default via 10.78.3.1 dev eth0"]);
    poststop_releases_all(&host, "s1", &ann);
}

/// The third of three attachments fails; the first two leave no link and no lease.
#[test]
fn a_failing_third_attachment_rolls_back_the_first_two() {
    let host = three_networks("rollback3");
    // Another container holds 10.78.3.50 on c.
    let holder = Ns::new();
    let held = [("ipvlan.networks", r#"[{"name":"c","ips":["10.78.3.50"]}]"#)];
    let out = create(&host, "holder", &holder, &held);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cases = [
        // Refused by IPAM after two attachments have their leases and links.
        (
            r#"[{"name":"a"},{"name":"b"},{"name":"c","ips":["10.78.3.50"]}]"#,
            "10.78.3.50 is leased to container holder on network c",
            "",
        ),
        // Refused while naming the links, after all three exist: eth2 belongs to someone else.
        (
            r#"[{"name":"a"},{"name":"b"},{"name":"c"}]"#,
            "interface eth2 already exists in netns",
            "ip link add eth2 type veth peer name other",
        ),
    ];
    for (list, want, prepare) in cases {
        let ctr = Ns::new();
        if !prepare.is_empty() {
            ctr.sh(prepare);
        }
        let before = ctr.sh("ip -o link | wc -l");
        let out = create(&host, "r3", &ctr, &[("ipvlan.networks", list)]);
        assert!(!out.status.success(), "{list}: should fail");
        let err = text(&out.stderr);
        assert!(err.contains(want), "{list}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert_eq!(
            host.lease_count(),
            2,
            "{list}: only the holder's leases stay"
        );
        assert_eq!(
            ctr.sh("ip -o link | wc -l"),
            before,
            "{list}: left a link: {}",
            ctr.sh("ip -o link")
        );
        assert!(
            !host.ns.sh("ip -o link").contains("ipvh"),
            "{list}: left a link in the host"
        );
    }
}

#[test]
fn the_same_interface_twice_is_refused_before_anything_is_made() {
    let host = three_networks("twice");
    let ctr = Ns::new();
    let out = create(&host, "t1", &ctr, &[("ipvlan.networks", "a,b@eth0")]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("interface eth0 is asked for twice (networks a and b)"),
        "{err}"
    );
    assert_eq!(host.lease_count(), 0);
    assert_eq!(ctr.sh("ip -o link").lines().count(), 1);
    // An address outside the network's subnets: refused before the first attachment.
    let list = r#"[{"name":"a"},{"name":"c","ips":["10.78.9.9"]}]"#;
    let out = create(&host, "t1", &ctr, &[("ipvlan.networks", list)]);
    let err = text(&out.stderr);
    assert!(
        err.contains("10.78.9.9 for eth1 lies outside every subnet of network c"),
        "{err}"
    );
    assert_eq!(host.lease_count(), 0);
    assert_eq!(ctr.sh("ip -o link").lines().count(), 1);
    // Both forms at once: which one is meant?
    let out = create(
        &host,
        "t1",
        &ctr,
        &[("ipvlan.networks", "a"), ("ipvlan.network", "b")],
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("annotation ipvlan.network with ipvlan.networks"),
        "{err}"
    );
}

#[test]
fn ipvlan_run_with_several_networks() {
    let host = three_networks("run2");
    let out = host.run(&[
        "--net", "a:ip=10.78.1.77,interface_name=one",
        "--network", "b:gw_priority=3",
        "--name", "job2", "--",
        "sh", "-c", "ip -o -4 addr show scope global; ip route show default; ping -c1 -W2 -I one 10.78.1.1 >/dev/null && echo pinged",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seen = text(&out.stdout);
    assert!(seen.contains("one    inet 10.78.1.77/24"), "{seen}");
    assert!(seen.contains("eth1    inet 10.78.2."), "{seen}");
    assert!(seen.contains("default via 10.78.2.1 dev eth1"), "{seen}");
    assert!(seen.contains("pinged"), "{seen}");
    assert_eq!(host.lease_count(), 0);
    for (args, want) in [
        (
            vec!["--net", "a", "--net", "b", "--ip", "10.78.1.5"],
            "are for one network",
        ),
        (vec!["--net", "a:colour=red"], "unknown key"),
        (vec!["--net", "a:ip=fd00::1"], "ip takes an IPv4 address"),
        (vec!["--net", "a:mac=01:00:00:00:00:01"], "multicast"),
    ] {
        let mut full = args.clone();
        full.extend(["--", "true"]);
        let out = host.run(&full);
        assert!(!out.status.success(), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains(want) && err.trim_end().lines().count() == 1,
            "{args:?}: {err}"
        );
        assert_eq!(host.lease_count(), 0);
    }
}

/// `ip netns add` namespaces: connect, refuse a second connect naming the holder, disconnect
/// (twice: gone is done), and gc of a connection whose namespace was deleted.
#[test]
fn connect_and_disconnect_an_ip_netns_namespace() {
    let host = three_networks("connect");
    let name = format!("ipvh-test-{}", std::process::id());
    let netns = Ns::new(); // only to run `ip netns` from a throwaway netns
    netns.sh(&format!("ip netns add {name}"));
    /// Deletes the named netns however the test ends.
    struct Named(String);
    impl Drop for Named {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &self.0])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
    let _named = Named(name.clone());
    let inside = |cmd: &str| netns.sh(&format!("ip netns exec {name} {cmd}"));
    host.ok(&["network", "connect", "a", "--netns", &name, "--id", &name]);
    host.ok(&[
        "network",
        "connect",
        "b",
        "--netns",
        &format!("/run/netns/{name}"),
        "--id",
        &name,
        "--ifname",
        "eth1",
        "--ip",
        "10.78.2.40",
    ]);
    assert!(inside("ip -o -4 addr show dev eth0").contains("10.78.1.2/24"));
    assert!(inside("ip -o -4 addr show dev eth1").contains("10.78.2.40/24"));
    // Connecting the same id and interface again names the holder.
    let out = host.hook(&["network", "connect", "c", "--netns", &name, "--id", &name]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("{name} is already connected as eth0 to network a with 10.78.1.2 (netns /run/netns/{name})")),
        "{err}"
    );
    // The second time, eth1 is already gone: still success.
    for _ in 0..2 {
        host.ok(&[
            "network",
            "disconnect",
            "b",
            "--id",
            &name,
            "--ifname",
            "eth1",
        ]);
        assert!(!inside("ip -o link").contains("eth1"));
        assert!(inside("ip -o link").contains("eth0"));
    }
    assert_eq!(host.lease_count(), 2, "eth0 keeps its addresses");
    // The namespace goes away without a disconnect: gc reclaims by path and inode.
    netns.sh(&format!("ip netns del {name}"));
    host.ok(&["gc"]);
    assert_eq!(host.lease_count(), 0);
    let out = host.hook(&["network", "connect", "a", "--id", "x"]);
    assert!(
        text(&out.stderr).contains("--netns"),
        "{}",
        text(&out.stderr)
    );
}
