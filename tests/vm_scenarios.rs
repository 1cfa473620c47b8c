//! Docker's ipvlan scenarios on a kernel with ipvlan, 802.1q and dummy links: the VM run
//! (tests/vm/run.sh) proves them for real; on a kernel without them each test says it skipped.
//! Every connectivity claim is checked with ping.

mod common;

use common::*;

/// A host with veth `p0`/`p1` (p0 is the base of VLAN parents) and the given networks.
fn host(tag: &str, networks: &[&[&str]]) -> Host {
    let host = Host::with_parent(tag);
    for args in networks {
        let mut full = vec!["network", "create"];
        full.extend_from_slice(args);
        host.ok(&full);
    }
    host
}

/// A container on `network` (plus extra annotations), set up by the hook.
fn container(host: &Host, id: &str, network: &str, extra: &[(&str, &str)]) -> Ns {
    let mut ann = vec![("ipvlan.network", network)];
    ann.extend_from_slice(extra);
    container_on(host, id, &ann)
}

/// A container with these annotations, set up by the hook.
fn container_on(host: &Host, id: &str, ann: &[(&str, &str)]) -> Ns {
    let ctr = Ns::new();
    let out = host.oci_hook(
        "createRuntime",
        &state_json(id, Some(ctr.pid()), host.dir(), ann),
    );
    assert!(
        out.status.success(),
        "createRuntime {id}: {}",
        text(&out.stderr)
    );
    ctr
}

fn addr4(ctr: &Ns) -> String {
    let out = ctr.sh("ip -o -4 addr show dev eth0");
    out.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

fn pings(from: &Ns, to: &str) -> bool {
    let fam = if to.contains(':') { "-6 " } else { "" };
    from.try_sh(&format!("ping {fam}-c1 -W2 {to}"))
}

#[test]
fn s1_l2_without_parent_uses_a_dummy_that_rm_deletes() {
    if !require_ipvlan("s1_l2_without_parent_uses_a_dummy_that_rm_deletes") {
        return;
    }
    let host = host("s1", &[&["l2net", "--subnet", "192.168.1.0/24"]]);
    let links = host.ns.sh("ip -d -o link show type dummy");
    assert!(links.contains("di-"), "dummy parent missing: {links}");
    let a = container(&host, "a", "l2net", &[]);
    let b = container(&host, "b", "l2net", &[]);
    for c in [&a, &b] {
        assert!(
            c.sh("ip route")
                .contains("default via 192.168.1.1 dev eth0")
        );
    }
    assert!(pings(&a, &addr4(&b)) && pings(&b, &addr4(&a)));
    drop((a, b));
    host.ok(&["gc"]);
    host.ok(&["network", "rm", "l2net"]);
    assert!(
        !host.ns.sh("ip -o link").contains("di-"),
        "dummy parent left behind"
    );
}

#[test]
fn s2_vlan_parent_is_created_and_removed_existing_one_is_kept() {
    if !require_ipvlan("s2_vlan_parent_is_created_and_removed_existing_one_is_kept") {
        return;
    }
    let host = host(
        "s2",
        &[&["v20", "--parent", "p0.20", "--subnet", "192.168.20.0/24"]],
    );
    let vlan = host.ns.sh("ip -d -o link show p0.20");
    assert!(vlan.contains("vlan protocol 802.1Q id 20"), "{vlan}");
    host.ns
        .sh("ip link add link p0 name p0.40 type vlan id 40 && ip link set p0.40 up");
    host.ok(&[
        "network",
        "create",
        "v40",
        "--parent",
        "p0.40",
        "--subnet",
        "192.168.40.0/24",
    ]);
    let a = container(&host, "a", "v20", &[]);
    let b = container(&host, "b", "v20", &[]);
    assert!(pings(&a, &addr4(&b)));
    drop((a, b));
    host.ok(&["gc"]);
    host.ok(&["network", "rm", "v20", "v40"]);
    let links = host.ns.sh("ip -o link");
    assert!(
        !links.contains("p0.20"),
        "created VLAN left behind: {links}"
    );
    assert!(
        links.contains("p0.40"),
        "pre-existing VLAN deleted: {links}"
    );
    assert!(links.contains("p0@"), "base link deleted: {links}");
}

#[test]
fn s3_vlans_are_isolated_from_each_other() {
    if !require_ipvlan("s3_vlans_are_isolated_from_each_other") {
        return;
    }
    // One subnet on two VLANs (disjoint ranges): only the 802.1q tag separates them.
    let host = host(
        "s3",
        &[
            &[
                "v20",
                "--parent",
                "p0.20",
                "--subnet",
                "10.50.0.0/24",
                "--ip-range",
                "10.50.0.0/25",
            ],
            &[
                "v30",
                "--parent",
                "p0.30",
                "--subnet",
                "10.50.0.0/24",
                "--ip-range",
                "10.50.0.128/25",
            ],
        ],
    );
    let a20 = container(&host, "a20", "v20", &[]);
    let b20 = container(&host, "b20", "v20", &[]);
    let c30 = container(&host, "c30", "v30", &[]);
    assert!(pings(&a20, &addr4(&b20)), "same VLAN must reach each other");
    assert!(!pings(&a20, &addr4(&c30)), "VLAN 20 reached VLAN 30");
    assert!(!pings(&c30, &addr4(&a20)), "VLAN 30 reached VLAN 20");
}

#[test]
fn s4_multi_subnet_l2_gives_each_container_its_subnet_gateway() {
    if !require_ipvlan("s4_multi_subnet_l2_gives_each_container_its_subnet_gateway") {
        return;
    }
    let host = host(
        "s4",
        &[&[
            "multi",
            "--parent",
            "p0",
            "--subnet",
            "192.168.40.0/24",
            "--subnet",
            "192.168.41.0/24",
            "--gateway",
            "192.168.41.254",
        ]],
    );
    let a = container(&host, "a", "multi", &[("ipvlan.ipv4", "192.168.40.10")]);
    let b = container(&host, "b", "multi", &[("ipvlan.ipv4", "192.168.41.10")]);
    assert!(
        a.sh("ip route")
            .contains("default via 192.168.40.1 dev eth0")
    );
    assert!(
        b.sh("ip route")
            .contains("default via 192.168.41.254 dev eth0")
    );
}

#[test]
fn s5_l3_routes_between_subnets_without_gateway() {
    if !require_ipvlan("s5_l3_routes_between_subnets_without_gateway") {
        return;
    }
    let host = host("s5", &[]);
    let out = host.hook(&[
        "network",
        "create",
        "l3net",
        "--parent",
        "p0",
        "--mode",
        "l3",
        "--subnet",
        "10.1.100.0/24",
        "--subnet",
        "10.1.101.0/24",
        "--gateway",
        "10.1.100.254",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--gateway ignored"),
        "{}",
        text(&out.stderr)
    );
    let a = container(&host, "a", "l3net", &[("ipvlan.ipv4", "10.1.100.10")]);
    let b = container(&host, "b", "l3net", &[("ipvlan.ipv4", "10.1.101.10")]);
    let routes = a.sh("ip route");
    assert!(routes.contains("default dev eth0"), "{routes}");
    assert!(!routes.contains("via"), "{routes}");
    assert!(pings(&a, "10.1.101.10") && pings(&b, "10.1.100.10"));
}

#[test]
fn s6_l3s_works_and_private_flag_isolates() {
    if !require_ipvlan("s6_l3s_works_and_private_flag_isolates") {
        return;
    }
    let host = host(
        "s6",
        &[&[
            "l3s",
            "--parent",
            "p0",
            "--mode",
            "l3s",
            "--subnet",
            "10.2.0.0/24",
        ]],
    );
    let a = container(&host, "a", "l3s", &[]);
    let b = container(&host, "b", "l3s", &[]);
    assert!(a.sh("ip -d link show eth0").contains("ipvlan  mode l3s"));
    assert!(pings(&a, &addr4(&b)));

    host.ns
        .sh("ip link add q0 type veth peer name q1 && ip link set q0 up && ip link set q1 up");
    host.ok(&[
        "network",
        "create",
        "priv",
        "--parent",
        "q0",
        "--flag",
        "private",
        "--subnet",
        "10.3.0.0/24",
    ]);
    let c = container(&host, "c", "priv", &[]);
    let d = container(&host, "d", "priv", &[]);
    let link = c.sh("ip -d link show eth0");
    assert!(
        link.contains("mode l2 private"),
        "flag not read back from the kernel: {link}"
    );
    assert!(
        !pings(&c, &addr4(&d)),
        "private ipvlan ports reached each other"
    );
}

#[test]
fn s7_dual_stack_and_ipv6_only_and_static_v6_reuse() {
    if !require_ipvlan("s7_dual_stack_and_ipv6_only_and_static_v6_reuse") {
        return;
    }
    let host = host(
        "s7",
        &[&[
            "dual",
            "--parent",
            "p0",
            "--subnet",
            "192.168.60.0/24",
            "--subnet",
            "2001:db8:abc8::/64",
        ]],
    );
    host.ns
        .sh("ip link add q0 type veth peer name q1 && ip link set q0 up && ip link set q1 up");
    host.ok(&[
        "network",
        "create",
        "v6only",
        "--parent",
        "q0",
        "--subnet",
        "2001:db8:abc9::/64",
    ]);
    let a = container(&host, "a", "dual", &[]);
    let b = container(&host, "b", "dual", &[("ipvlan.ipv6", "2001:db8:abc8::20")]);
    let v6 = a.sh("ip -6 addr show dev eth0 scope global");
    assert!(
        v6.contains("2001:db8:abc8::2/64") && !v6.contains("tentative"),
        "{v6}"
    );
    assert!(pings(&a, "2001:db8:abc8::20") && pings(&b, "2001:db8:abc8::2"));
    assert!(pings(&a, &addr4(&b)));
    let c = container(&host, "c", "v6only", &[]);
    let d = container(&host, "d", "v6only", &[]);
    assert!(c.sh("ip -4 addr show dev eth0").trim().is_empty());
    assert!(
        c.sh("ip -6 route")
            .contains("default via 2001:db8:abc9::1 dev eth0")
    );
    assert!(pings(&c, "2001:db8:abc9::3") && pings(&d, "2001:db8:abc9::2"));

    for i in 0..50 {
        let out = host.run(&[
            "--network",
            "v6only",
            "--ip6",
            "2001:db8:abc9::77",
            "--",
            "ip",
            "-6",
            "-o",
            "addr",
            "show",
            "dev",
            "eth0",
        ]);
        assert!(out.status.success(), "run {i}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("2001:db8:abc9::77/64"),
            "run {i}"
        );
    }
}

#[test]
fn s8_conflicting_networks_on_one_parent_are_refused() {
    if !require_ipvlan("s8_conflicting_networks_on_one_parent_are_refused") {
        return;
    }
    let host = host(
        "s8",
        &[&["l2", "--parent", "p0", "--subnet", "10.8.0.0/24"]],
    );
    let before = host.ok(&["network", "ls", "--format", "json"]);
    let out = host.hook(&[
        "network",
        "create",
        "l3",
        "--parent",
        "p0",
        "--mode",
        "l3",
        "--subnet",
        "10.9.0.0/24",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("one ipvlan mode per parent"),
        "{}",
        text(&out.stderr)
    );
    let out = host.hook(&[
        "network",
        "create",
        "mv",
        "--driver",
        "macvlan",
        "--parent",
        "p0",
        "--subnet",
        "10.10.0.0/24",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot mix macvlan and ipvlan"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(host.ok(&["network", "ls", "--format", "json"]), before);
}

#[test]
fn s9_host_cannot_reach_l2_slave_and_ipvlan_run_works() {
    if !require_ipvlan("s9_host_cannot_reach_l2_slave_and_ipvlan_run_works") {
        return;
    }
    let host = host(
        "s9",
        &[&["l2", "--parent", "p0", "--subnet", "10.11.0.0/24"]],
    );
    host.ns.sh("ip addr add 10.11.0.250/24 dev p0");
    let a = container(&host, "a", "l2", &[]);
    assert!(
        !host.ns.try_sh(&format!("ping -c1 -W2 {}", addr4(&a))),
        "host reached an ipvlan L2 slave through its parent"
    );

    // The README's main command: an isolated network on a dummy parent, nothing left after.
    let out = host.run(&["--subnet", "192.168.77.0/24", "--", "ip", "-o", "addr"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("inet 192.168.77.2/24"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        !host.ns.sh("ip -o link").contains("di-"),
        "ipvlan-run left its dummy parent"
    );
}

/// Every `docker network create` of Docker's ipvlan and macvlan driver pages
/// (docs.docker.com/engine/network/drivers/{ipvlan,macvlan}/), as printed there but for the
/// word `docker`, with the `ip link` commands the pages run before some of them. Each runs on a
/// host whose `eth0` is a veth; each network is inspected and removed before the next, as the
/// pages' examples are alternatives (several reuse a name, a subnet or a parent).
const DOCKER_DOC_EXAMPLES: &[&str] = &[
    // ipvlan.md
    "docker network create -d ipvlan \\
    --subnet=192.168.1.0/24 \\
    --gateway=192.168.1.1 \\
    -o ipvlan_mode=l2 \\
    -o parent=eth0 db_net",
    "docker network create -d ipvlan \\
    --subnet=192.168.1.0/24 \\
    -o parent=eth0 db_net_ipv",
    "docker network create -d ipvlan \\
    --subnet=192.168.10.0/24 isolated1",
    "docker network create -d ipvlan \\
    --subnet=192.168.11.0/24 --internal isolated2",
    "docker network create -d ipvlan isolated3",
    "docker network create -d ipvlan \\
    --subnet=192.168.20.0/24 \\
    --gateway=192.168.20.1 \\
    -o parent=eth0.20 ipvlan20",
    "docker network create -d ipvlan \\
    --subnet=192.168.30.0/24 \\
    --gateway=192.168.30.1 \\
    -o parent=eth0.30 \\
    -o ipvlan_mode=l2 ipvlan30",
    "docker network create -d ipvlan \\
    --subnet=192.168.114.0/24 --subnet=192.168.116.0/24 \\
    --gateway=192.168.114.254 --gateway=192.168.116.254 \\
    -o parent=eth0.114 \\
    -o ipvlan_mode=l2 ipvlan114",
    "docker network create -d ipvlan \\
    --subnet=192.168.214.0/24 \\
    --subnet=10.1.214.0/24 \\
    -o ipvlan_mode=l3 ipnet210",
    "docker network create -d ipvlan \\
    --ipv6 --subnet=2001:db8:abc2::/64 --gateway=2001:db8:abc2::22 \\
    -o parent=eth0.139 v6ipvlan139",
    "docker network create -d ipvlan \\
    --subnet=192.168.140.0/24 --subnet=192.168.142.0/24 \\
    --gateway=192.168.140.1 --gateway=192.168.142.1 \\
    --subnet=2001:db8:abc9::/64 --gateway=2001:db8:abc9::22 \\
    -o parent=eth0.140 \\
    -o ipvlan_mode=l2 ipvlan140",
    "docker network create -d ipvlan \\
    --subnet=192.168.110.0/24 \\
    --subnet=192.168.112.0/24 \\
    --ipv6 --subnet=2001:db8:abc6::/64 \\
    -o parent=eth0 \\
    -o ipvlan_mode=l3 ipnet110",
    "ip link add link eth0 name eth0.40 type vlan id 40
ip link set eth0.40 up
docker network create -d ipvlan \\
    --subnet=192.168.40.0/24 \\
    --gateway=192.168.40.1 \\
    -o parent=eth0.40 ipvlan40",
    "ip link add link eth0 name foo type vlan id 40
ip link set foo up
docker network create -d ipvlan \\
    --subnet=192.168.40.0/24 --gateway=192.168.40.1 \\
    -o parent=foo ipvlan40",
    // macvlan.md
    "docker network create -d macvlan \\
  --subnet=172.16.86.0/24 \\
  --gateway=172.16.86.1 \\
  -o parent=eth0 pub_net",
    "docker network create -d macvlan \\
  --subnet=192.168.32.0/24 \\
  --ip-range=192.168.32.128/25 \\
  --gateway=192.168.32.254 \\
  --aux-address=\"my-router=192.168.32.129\" \\
  -o parent=eth0 macnet32",
    "docker network create -d macvlan \\
    --subnet=192.168.50.0/24 \\
    --gateway=192.168.50.1 \\
    -o parent=eth0.50 macvlan50",
    "docker network create -d ipvlan \\
    --subnet=192.168.210.0/24 \\
    --subnet=192.168.212.0/24 \\
    --gateway=192.168.210.254 \\
    --gateway=192.168.212.254 \\
     -o ipvlan_mode=l2 -o parent=eth0 ipvlan210",
    "docker network create -d macvlan \\
    --subnet=192.168.216.0/24 --subnet=192.168.218.0/24 \\
    --gateway=192.168.216.1 --gateway=192.168.218.1 \\
    --subnet=2001:db8:abc8::/64 --gateway=2001:db8:abc8::10 \\
     -o parent=eth0.218 \\
     -o macvlan_mode=bridge macvlan216",
];

#[test]
fn docker_documentation_commands_run_verbatim() {
    if !require_ipvlan("docker_documentation_commands_run_verbatim") {
        return;
    }
    let host = Host::new("docs");
    host.ns
        .sh("ip link add eth0 type veth peer name eth0peer && ip link set eth0 up && ip link set eth0peer up");
    let links_before = host.ns.sh("ip -o link | wc -l");
    for example in DOCKER_DOC_EXAMPLES {
        // The page's text, `docker` being this build's ipvlan-hook (a shell function, so the
        // line itself stays as printed); the test's directories come from the environment.
        let script = format!("docker() {{ {:?} \"$@\"; }}\nset -e\n{example}", hook_bin());
        let out = host
            .ns
            .cmd("sh")
            .args(["-c", &script])
            .env("IPVLAN_HOOK_CONFIG_DIR", &host.config)
            .env("IPVLAN_HOOK_STATE_DIR", &host.state)
            .output()
            .expect("run sh");
        assert!(
            out.status.success(),
            "{example}\nfailed: {}",
            text(&out.stderr)
        );
        let name = text(&out.stdout).trim().to_string();
        let net: serde_json::Value =
            serde_json::from_str(&host.ok(&["network", "inspect", &name])).expect("inspect");
        let net = &net[0];
        let words: Vec<&str> = example.split_whitespace().collect();
        let driver = words[words.iter().position(|w| *w == "-d").unwrap() + 1];
        assert_eq!(net["driver"], driver, "{example}: {net}");
        let mode = if example.contains("ipvlan_mode=l3") {
            "l3"
        } else {
            "l2"
        };
        assert_eq!(net["mode"], mode, "{example}: {net}");
        for w in words.iter().filter_map(|w| w.strip_prefix("--subnet=")) {
            assert!(
                net.to_string().contains(w),
                "{example}: {w} missing from {net}"
            );
        }
        if let Some(p) = words.iter().find_map(|w| w.strip_prefix("parent=")) {
            assert_eq!(net["parent"], p, "{example}: {net}");
        }
        if example.contains("my-router") {
            assert_eq!(
                net["subnets"][0]["aux_addresses"]["my-router"], "192.168.32.129",
                "{net}"
            );
        }
        host.ok(&["network", "rm", &name]);
        // What the example made with `ip link` is the user's: take it away by hand.
        host.ns
            .sh("ip link del eth0.40 2>/dev/null || true; ip link del foo 2>/dev/null || true");
        assert_eq!(
            host.ns.sh("ip -o link | wc -l"),
            links_before,
            "{example}: left a link: {}",
            host.ns.sh("ip -o link")
        );
    }
}

/// Docker's everyday multi-tier case: one container on a web VLAN (two networks on VLAN 20)
/// and a database VLAN (30, dual stack), through `ipvlan.networks`. A router netns on the other
/// end of the trunk answers on every subnet. Each interface pings its own router address, and
/// each family has exactly one default route, from the network with the highest gw-priority.
#[test]
fn one_container_three_networks_on_two_vlans() {
    if !require_ipvlan("one_container_three_networks_on_two_vlans") {
        return;
    }
    let host = host(
        "vlans",
        &[
            &["web", "--parent", "p0.20", "--subnet", "192.168.20.0/24"],
            &["web2", "--parent", "p0.20", "--subnet", "192.168.21.0/24"],
            &[
                "db",
                "-o",
                "parent=p0.30",
                "--subnet",
                "192.168.30.0/24",
                "--subnet",
                "fd00:30::/64",
            ],
        ],
    );
    let router = Ns::new();
    host.ns
        .sh(&format!("ip link set p1 netns {}", router.pid()));
    router.sh("ip link set p1 up && \
         ip link add link p1 name p1.20 type vlan id 20 && ip link set p1.20 up && \
         ip link add link p1 name p1.30 type vlan id 30 && ip link set p1.30 up && \
         ip addr add 192.168.20.1/24 dev p1.20 && ip addr add 192.168.21.1/24 dev p1.20 && \
         ip addr add 192.168.30.1/24 dev p1.30 && ip -6 addr add fd00:30::1/64 dev p1.30 nodad");
    let list = r#"[{"name":"web"},{"name":"web2"},{"name":"db","gw-priority":5}]"#;
    let ctr = container_on(&host, "tiers", &[("ipvlan.networks", list)]);
    for (ifname, to) in [
        ("eth0", "192.168.20.1"),
        ("eth1", "192.168.21.1"),
        ("eth2", "192.168.30.1"),
        ("eth2", "fd00:30::1"),
    ] {
        let fam = if to.contains(':') { "-6 " } else { "" };
        assert!(
            ctr.try_sh(&format!("ping {fam}-c1 -W2 -I {ifname} {to}")),
            "no ping from {ifname} to {to}: {}",
            ctr.sh("ip addr; ip route; ip -6 route")
        );
    }
    let v4 = ctr.sh("ip -4 route show default");
    let v6 = ctr.sh("ip -6 route show default");
    assert_eq!(v4.lines().count(), 1, "{v4}");
    assert!(v4.starts_with("default via 192.168.30.1 dev eth2"), "{v4}");
    assert_eq!(v6.lines().count(), 1, "{v6}");
    assert!(v6.starts_with("default via fd00:30::1 dev eth2"), "{v6}");
    assert!(!ctr.sh("ip -6 addr").contains("tentative"));
    let out = host.oci_hook(
        "poststop",
        &state_json("tiers", None, host.dir(), &[("ipvlan.networks", list)]),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(host.lease_count(), 0);
}
