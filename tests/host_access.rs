//! `network create --host-access`: the host reaches its containers through a slave of its own
//! on the parent, and they reach it. Each connectivity claim is a ping, in both families, and
//! the same host on a network without host access cannot reach its container (the feature, not
//! the kernel, makes the difference). The driver is ipvlan where the kernel has it (the VM run)
//! and macvlan otherwise; the L3 and mode tests need ipvlan and say when they skipped.

mod common;

use common::*;
use serde_json::Value;

const V4: &str = "10.84.0.0/24";
const V6: &str = "fd00:84::/64";
const SHIM4: &str = "10.84.0.254";
const SHIM6: &str = "fd00:84::ffff:ffff:ffff:ffff";

/// A host with veth p0/p1 and network `net` on p0: both families, host access, then `args`.
fn host(tag: &str, args: &[&str]) -> Host {
    let mut full = vec!["--subnet", V4, "--subnet", V6, "--host-access"];
    full.extend_from_slice(args);
    Host::with_network(tag, &full)
}

/// A container on network `net` (plus `extra` annotations), set up by the hook.
fn container(host: &Host, id: &str, extra: &[(&str, &str)]) -> Ns {
    let ctr = Ns::new();
    let out = create(host, "net", id, &ctr, extra);
    assert!(
        out.status.success(),
        "createRuntime {id}: {}",
        text(&out.stderr)
    );
    ctr
}

/// createRuntime for container `id` in `ctr` on `network`, plus `extra` annotations.
fn create(
    host: &Host,
    network: &str,
    id: &str,
    ctr: &Ns,
    extra: &[(&str, &str)],
) -> std::process::Output {
    let mut ann = vec![("ipvlan.network", network)];
    ann.extend_from_slice(extra);
    host.oci_hook(
        "createRuntime",
        &state_json(id, Some(ctr.pid()), host.dir(), &ann),
    )
}

fn poststop(host: &Host, id: &str) {
    let ann = [("ipvlan.network", "net")];
    let out = host.oci_hook("poststop", &state_json(id, None, host.dir(), &ann));
    assert!(out.status.success(), "poststop {id}: {}", text(&out.stderr));
}

/// The container's address of one family.
fn addr(ctr: &Ns, v6: bool) -> String {
    let fam = if v6 { "-6" } else { "-4" };
    let out = ctr.sh(&format!("ip -o {fam} addr show dev eth0 scope global"));
    let word = out
        .split_whitespace()
        .skip_while(|w| !w.starts_with("inet"))
        .nth(1)
        .unwrap_or_else(|| panic!("no {fam} address on eth0: {out}"));
    word.split('/').next().unwrap().to_string()
}

fn pings(from: &Ns, to: &str) -> bool {
    let fam = if to.contains(':') { "-6 " } else { "" };
    from.try_sh(&format!("ping {fam}-c1 -W2 {to}"))
}

/// Our routes in the host namespace, both families.
fn routes(host: &Host) -> String {
    host.ns
        .sh("ip route show proto 73; ip -6 route show proto 73")
}

/// The host pings the container in both families, and the container the host's addresses.
fn assert_reachable(host: &Host, ctr: &Ns) {
    for v6 in [false, true] {
        let a = addr(ctr, v6);
        assert!(pings(&host.ns, &a), "host cannot ping container at {a}");
    }
    for shim in [SHIM4, SHIM6] {
        assert!(pings(ctr, shim), "container cannot ping the host at {shim}");
    }
}

/// Network `name` on a second veth parent p2, subnet 10.85.0.0/24, then `args`.
fn on_second_parent(host: &Host, name: &str, args: &[&str]) {
    host.ns
        .sh("ip link add p2 type veth peer name p3 && ip link set p2 up && ip link set p3 up");
    let mut full = network_create(name, "p2", &["--subnet", "10.85.0.0/24"]);
    full.extend_from_slice(args);
    host.ok(&full);
}

fn has_link(host: &Host, name: &str) -> bool {
    host.ns.try_sh(&format!("ip link show dev {name}"))
}

#[test]
fn host_access_lets_the_host_and_its_containers_reach_each_other() {
    let host = host("reach", &[]);
    let c1 = container(&host, "c1", &[]);
    assert_reachable(&host, &c1);
    let (a4, a6) = (addr(&c1, false), addr(&c1, true));
    let r = routes(&host);
    assert!(
        r.contains(&format!("{a4} dev ha-net scope link src {SHIM4}"))
            && r.contains(&format!("{a6} dev ha-net src {SHIM6}")),
        "{r}"
    );
    let shim = host.ns.sh("ip -d addr show dev ha-net");
    assert!(
        shim.contains(&format!("inet {SHIM4}/32"))
            && shim.contains(&format!("inet6 {SHIM6}/128"))
            && shim.contains("alias ipvlan-hook host access for network net"),
        "{shim}"
    );
    // Only the link's own sysctls, and nothing taken from router advertisements.
    assert_eq!(
        host.ns
            .sh("cat /proc/sys/net/ipv6/conf/ha-net/accept_ra /proc/sys/net/ipv6/conf/ha-net/autoconf /proc/sys/net/ipv4/conf/ha-net/rp_filter"),
        "0\n0\n2\n"
    );
    if driver() == "ipvlan" {
        // The host's link keeps the parent in the network's mode: the container is still L2.
        for link in [c1.sh("ip -d link show dev eth0"), shim] {
            assert!(link.contains("ipvlan  mode l2 bridge"), "{link}");
        }
    }

    // The same host, a network on another parent without host access: no way through.
    on_second_parent(&host, "plain", &["--subnet", "fd00:85::/64"]);
    let plain = Ns::new();
    let out = create(&host, "plain", "p1", &plain, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for v6 in [false, true] {
        let a = addr(&plain, v6);
        assert!(!pings(&host.ns, &a), "host reached {a} without host access");
    }

    poststop(&host, "c1");
    assert_eq!(routes(&host), "", "routes left after poststop");
    // Left: the network's own reservation (2), and the leases of p1 on network plain (2).
    assert_eq!(host.lease_count(), 2 + 2);
}

#[test]
fn host_access_on_an_l3_network() {
    if !require_ipvlan("host_access_on_an_l3_network") {
        return;
    }
    let host = host("l3", &["--mode", "l3"]);
    let c1 = container(&host, "c1", &[]);
    let c2 = container(&host, "c2", &[]);
    for ctr in [&c1, &c2] {
        assert_reachable(&host, ctr);
        let link = ctr.sh("ip -d link show dev eth0");
        assert!(link.contains("ipvlan  mode l3 bridge"), "{link}");
    }
    let gone = addr(&c1, false);
    poststop(&host, "c1");
    assert!(
        !routes(&host).contains(&format!("{gone} dev")),
        "c1's route left"
    );
    assert_reachable(&host, &c2);
}

#[test]
fn host_access_with_an_ip_range_routes_the_range_once() {
    let host = host("range", &["--ip-range", "10.84.0.0/25"]);
    let inside = container(&host, "in", &[]);
    let outside = container(&host, "out", &[("ipvlan.ipv4", "10.84.0.200")]);
    let r = routes(&host);
    assert!(
        r.contains(&format!("10.84.0.0/25 dev ha-net scope link src {SHIM4}"))
            && r.contains("10.84.0.200 dev ha-net")
            && !r.contains(&format!("{} dev", addr(&inside, false))),
        "{r}"
    );
    assert_reachable(&host, &inside);
    assert_reachable(&host, &outside);
}

#[test]
fn host_access_inspect_rm_and_names() {
    let host = host("inspect", &[]);
    let nets: Value = serde_json::from_str(&host.ok(&["network", "inspect", "net"])).unwrap();
    assert_eq!(
        nets[0]["host_access"],
        serde_json::json!({"name": "ha-net", "addresses": [SHIM4, SHIM6]})
    );
    // A name longer than 12 characters: ha- and the network id's first 12 characters.
    on_second_parent(&host, "a-rather-long-name", &["--host-access=10.85.0.9"]);
    let nets: Value =
        serde_json::from_str(&host.ok(&["network", "inspect", "a-rather-long-name"])).unwrap();
    let id = nets[0]["id"].as_str().unwrap();
    let ha = &nets[0]["host_access"];
    assert_eq!(ha["name"], format!("ha-{}", &id[..12]));
    assert_eq!(ha["addresses"], serde_json::json!(["10.85.0.9"]));
    assert!(has_link(&host, ha["name"].as_str().unwrap()));

    host.ok(&["network", "rm", "net", "a-rather-long-name"]);
    let links = host.ns.sh("ip -o link");
    assert!(!links.contains("ha-"), "{links}");
    assert_eq!(host.lease_count(), 0);
}

#[test]
fn host_access_comes_back_after_a_reboot_and_gc_repairs_routes() {
    let host = host("reboot", &[]);
    let c1 = container(&host, "c1", &[]);
    // A reboot takes the link and its routes; the next container start makes it again.
    host.ns.sh("ip link del ha-net");
    let c2 = container(&host, "c2", &[]);
    assert_reachable(&host, &c2);
    assert!(
        !pings(&host.ns, &addr(&c1, false)),
        "c1's route survived its link"
    );
    // gc puts c1's routes back.
    let out = host.ok(&["gc"]);
    assert!(
        out.contains(&format!("routed {} through ha-net again", addr(&c1, false)))
            && out.contains(&format!("routed {} through ha-net again", addr(&c1, true))),
        "{out}"
    );
    assert_reachable(&host, &c1);
    // gc also makes a missing link again, and is quiet when there is nothing to repair.
    host.ns.sh("ip link del ha-net");
    host.ok(&["gc"]);
    assert!(has_link(&host, "ha-net"));
    assert_reachable(&host, &c2);
    assert_eq!(host.ok(&["gc"]), "");
}

#[test]
fn host_access_route_failure_rolls_the_container_back() {
    let host = host("rollback", &[]);
    // The link lost its IPv6 address: the container's IPv6 route (src that address) fails
    // after its IPv4 route was added.
    host.ns.sh(&format!("ip addr del {SHIM6}/128 dev ha-net"));
    let ctr = Ns::new();
    let out = create(&host, "net", "c1", &ctr, &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot add route fd00:84::2 dev ha-net"),
        "{err}"
    );
    assert_eq!(routes(&host), "", "rollback left a route");
    assert_eq!(host.lease_count(), 2, "only the reservation may be left");
    assert!(!ctr.try_sh("ip link show dev eth0"), "rollback left eth0");
    // gc completes the link; the container then starts.
    host.ok(&["gc"]);
    let ctr = container(&host, "c1", &[]);
    assert_reachable(&host, &ctr);
}

#[test]
fn host_access_refuses_bad_input_and_leaves_nothing() {
    let host = Host::with_parent("bad");
    let define = |extra: &[&str]| {
        let mut args = network_create("net", "p0", &["--subnet", V4, "--subnet", V6]);
        args.extend_from_slice(extra);
        host.hook(&args)
    };
    for (extra, want) in [
        (
            vec!["--internal", "--host-access"],
            "--host-access cannot be used on internal network net",
        ),
        (
            vec!["--host-access=10.9.9.9"],
            "--host-access 10.9.9.9 lies outside every subnet of network net",
        ),
        (
            vec!["--host-access=10.84.0.7,10.84.0.8"],
            "--host-access gives two addresses of one family",
        ),
        (
            vec!["--host-access=10.84.0.1"],
            "is the network, broadcast or gateway address of 10.84.0.0/24",
        ),
        (
            vec!["--flag", "private", "--host-access"],
            "flag private forbids traffic between the slaves of a parent",
        ),
    ] {
        let out = define(&extra);
        let err = text(&out.stderr);
        assert!(
            !out.status.success() && err.contains(want),
            "{extra:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // An address a container holds (its network's file was removed by hand, its leases
    // stayed).
    host.ok(&network_create("net", "p0", &["--subnet", V4]));
    let ctr = Ns::new();
    let out = create(&host, "net", "c1", &ctr, &[("ipvlan.ipv4", "10.84.0.50")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::remove_file(host.config.join("networks/net.json")).unwrap();
    let out = define(&["--host-access=10.84.0.50"]);
    let err = text(&out.stderr);
    assert!(
        !out.status.success() && err.contains("10.84.0.50 is leased to container c1"),
        "{err}"
    );
    assert_eq!(host.lease_count(), 1, "only c1's lease");
    assert!(!host.config.join("networks/net.json").exists());
    let links = host.ns.sh("ip -o link");
    assert!(!links.contains("ha-"), "{links}");
}

#[test]
fn host_access_refuses_a_parent_whose_slaves_run_another_mode() {
    if !require_ipvlan("host_access_refuses_a_parent_whose_slaves_run_another_mode") {
        return;
    }
    let host = Host::with_parent("mode");
    host.ns
        .sh("ip link add link p0 name other type ipvlan mode l3");
    let out = host.hook(&network_create(
        "net",
        "p0",
        &["--subnet", V4, "--host-access"],
    ));
    let err = text(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("parent p0 already has ipvlan slave other in mode l3 flag bridge"),
        "{err}"
    );
    // Nothing made, and the slave that was there is still L3.
    assert!(!has_link(&host, "ha-net"));
    assert_eq!(host.lease_count(), 0);
    assert!(!host.config.join("networks/net.json").exists());
    let other = host.ns.sh("ip -d link show dev other");
    assert!(other.contains("mode l3"), "{other}");
}

#[test]
fn host_access_doctor_says_what_keeps_the_host_out() {
    if !Ns::new().try_sh("nft --version") {
        return skipped(
            "host_access_doctor_says_what_keeps_the_host_out",
            "nft is not installed here",
        );
    }
    let host = host("doctor", &[]);
    host.ns.sh("nft add table inet filter && nft add chain inet filter input '{ type filter hook input priority 0; policy drop; }'");
    host.ns.sh("sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.ha-net.rp_filter=1 net.ipv4.conf.all.rp_filter=1");
    let hooks = host.dir().join("hooks.d");
    let doctor = || {
        let args = [
            "doctor",
            "--format",
            "json",
            "--hooks-dir",
            hooks.to_str().unwrap(),
        ];
        text(&host.hook(&args).stdout)
    };
    let rows: Value = serde_json::from_str(&doctor()).unwrap();
    let row = |check: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["check"] == check)
            .unwrap_or_else(|| panic!("no {check} row: {rows:#}"))
            .clone()
    };
    assert_eq!(row("host access net")["status"], "pass");
    for (check, want) in [
        (
            "host access net: firewall",
            "nftables chain inet filter input has policy drop",
        ),
        (
            "host access net: arp_ignore",
            "containers reach this host at 10.84.0.254 only",
        ),
        (
            "host access net: rp_filter",
            "net.ipv4.conf.ha-net.rp_filter=2",
        ),
    ] {
        let r = row(check);
        assert!(
            r["status"] == "warn" && r["detail"].as_str().unwrap().contains(want),
            "{r:#}"
        );
    }
    // Without the link, doctor says how it comes back.
    host.ns.sh("ip link del ha-net");
    assert!(doctor().contains(
        "ha-net is missing: it is made again when a container attaches, or by 'ipvlan-hook gc'"
    ));
}

#[test]
fn host_access_failed_create_leaves_nothing() {
    if !require_ipvlan("host_access_failed_create_leaves_nothing") {
        return;
    }
    let host = Host::with_parent("failed");
    // A hand-made slave in the same mode holds the address: the kernel refuses it to a second
    // ipvlan slave of the parent once the link exists.
    host.ns.sh(
        "ip link add link p0 name other type ipvlan mode l2 && ip addr add 10.84.0.77/32 dev other",
    );
    let out = host.hook(&network_create(
        "net",
        "p0",
        &["--subnet", V4, "--host-access=10.84.0.77"],
    ));
    let err = text(&out.stderr);
    assert!(
        !out.status.success() && err.contains("cannot add 10.84.0.77/32 to ha-net"),
        "{err}"
    );
    assert!(
        !has_link(&host, "ha-net"),
        "the failed create left its link"
    );
    assert_eq!(
        host.lease_count(),
        0,
        "the failed create left its reservation"
    );
    assert!(!host.config.join("networks/net.json").exists());
}
