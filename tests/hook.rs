//! The OCI hook end to end on this kernel: a "host" netns with a veth parent, "containers" that
//! are real processes in their own netns, the hook run as a runtime runs it. The slave driver is
//! ipvlan where the kernel has it (the VM run) and macvlan otherwise.

mod common;

use common::*;

#[test]
fn create_runtime_configures_the_container_and_poststop_releases() {
    let host = Host::with_network("basic", &["--subnet", "10.77.0.0/24"]);
    let ctr = Ns::new();
    let ann = [("ipvlan.network", "net")];
    assert_ok("hook", &host.create("c1", &ctr, &ann));

    let addr = ctr.sh("ip -o -4 addr show dev eth0");
    assert!(addr.contains("inet 10.77.0.2/24"), "{addr}");
    let link = ctr.sh("ip -d -o link show dev eth0");
    assert!(link.contains(",UP") && link.contains(driver()), "{link}");
    let routes = ctr.sh("ip route");
    assert!(
        routes.contains("default via 10.77.0.1 dev eth0"),
        "{routes}"
    );
    // IPv4-only network: no IPv6 on the interface at all (CVE-2024-32473).
    assert_eq!(
        ctr.sh("cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6")
            .trim(),
        "1"
    );
    assert!(ctr.sh("ip -6 addr show dev eth0").trim().is_empty());
    // Nothing leaked into the host namespace.
    assert!(!host.ns.sh("ip -o link").contains("ipvh"));
    assert_eq!(host.lease_count(), 1);

    assert_ok("hook", &host.poststop("c1", &ann));
    assert_eq!(host.lease_count(), 0);
    // Idempotent: a second poststop (runc after a failed create, a retry) succeeds.
    assert_ok("hook", &host.poststop("c1", &ann));
}

#[test]
fn crun_style_poststop_with_pid_zero_and_container_gone() {
    let host = Host::with_network("crun", &["--subnet", "10.77.1.0/24"]);
    let ann = [("ipvlan.network", "net")];
    {
        let ctr = Ns::new();
        assert_ok("hook", &host.create("c2", &ctr, &ann));
    } // the container and its netns are gone
    let state = state_json("c2", Some(0), host.dir(), &ann).replace("\"creating\"", "\"stopped\"");
    assert_ok("hook", &host.oci_hook("poststop", &state));
    assert_eq!(host.lease_count(), 0);
}

#[test]
fn dual_stack_addresses_are_usable_at_once() {
    let host = Host::with_network(
        "dual",
        &["--subnet", "10.77.2.0/24", "--subnet", "fd00:77:2::/64"],
    );
    let ctr = Ns::new();
    let ann = [("ipvlan.network", "net")];
    assert_ok("hook", &host.create("c3", &ctr, &ann));
    let v6 = ctr.sh("ip -6 addr show dev eth0 scope global");
    assert!(v6.contains("fd00:77:2::2/64"), "{v6}");
    assert!(!v6.contains("tentative"), "address must skip DAD: {v6}");
    // The link-local address too: DAD is off for the interface before it goes up.
    let local = ctr.sh("ip -6 addr show dev eth0 scope link");
    assert!(local.contains("fe80::"), "{local}");
    assert!(
        !local.contains("tentative"),
        "link-local must be usable at once: {local}"
    );
    let routes = ctr.sh("ip -6 route");
    assert!(
        routes.contains("default via fd00:77:2::1 dev eth0"),
        "{routes}"
    );
    assert!(ctr.sh("ip route").contains("default via 10.77.2.1"));
    assert_eq!(host.lease_count(), 2);
    // `lease ls` shows the attachment once, with both addresses.
    let ls = host.ok(&["lease", "ls"]);
    let rows: Vec<&str> = ls.lines().filter(|l| l.contains("c3")).collect();
    assert_eq!(rows.len(), 1, "{ls}");
    assert!(rows[0].contains("10.77.2.2/24,fd00:77:2::2/64"), "{ls}");
    assert_ok("hook", &host.poststop("c3", &ann));
    assert_eq!(host.lease_count(), 0);
}

#[test]
fn static_addresses_are_honoured_or_refused_with_the_holder() {
    let host = Host::with_network(
        "static",
        &["--subnet", "10.77.3.0/24", "--subnet", "fd00:77:3::/64"],
    );
    let a = Ns::new();
    let b = Ns::new();
    let ann = [
        ("ipvlan.network", "net"),
        ("ipvlan.ipv4", "10.77.3.50"),
        ("ipvlan.ipv6", "fd00:77:3::50"),
    ];
    assert_ok("hook", &host.create("ca", &a, &ann));
    assert!(a.sh("ip -o addr show dev eth0").contains("10.77.3.50/24"));
    assert!(
        a.sh("ip -o addr show dev eth0")
            .contains("fd00:77:3::50/64")
    );

    let out = host.create("cb", &b, &ann);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("10.77.3.50 is leased to container ca"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
    // The refused container got nothing: no lease, no link.
    assert_eq!(host.lease_count(), 2);
    assert!(!b.sh("ip -o link").contains("eth0"));

    // The two containers reach each other through the parent.
    let out = host.create(
        "cb",
        &b,
        &[("ipvlan.network", "net"), ("ipvlan.ipv4", "10.77.3.51")],
    );
    assert_ok("hook", &out);
    assert!(
        a.try_sh("ping -c1 -W2 10.77.3.51"),
        "container a cannot ping b"
    );

    // Released addresses can be taken again at once, IPv6 included (Docker's bug), even while
    // the kernel is still destroying the stopped container's namespace.
    drop(a);
    assert_ok("hook", &host.poststop("ca", &ann));
    let c = Ns::new();
    assert_ok("hook", &host.create("cc", &c, &ann));
    assert!(
        c.sh("ip -o addr show dev eth0")
            .contains("fd00:77:3::50/64")
    );
}

#[test]
fn setting_up_the_same_container_again_is_idempotent() {
    let host = Host::with_network("idem", &["--subnet", "10.77.4.0/24"]);
    let ctr = Ns::new();
    let ann = [("ipvlan.network", "net")];
    assert_ok("hook", &host.create("c4", &ctr, &ann));
    // Created under its final name, tagged with the container id once it is up.
    assert_eq!(alias(&ctr, "eth0").as_deref(), Some("c4"));
    let first = index(&ctr, "eth0");
    // The second run finds eth0 taken by c4's own link: it replaces it.
    assert_ok("hook", &host.create("c4", &ctr, &ann));
    assert_eq!(host.lease_count(), 1);
    let links = ctr.sh("ip -o link");
    assert_eq!(links.matches("eth0").count(), 1, "{links}");
    assert!(!links.contains("ipvh"), "temporary name left: {links}");
    assert_ne!(index(&ctr, "eth0"), first, "the old link was not replaced");
    assert_eq!(alias(&ctr, "eth0").as_deref(), Some("c4"));
    assert!(
        ctr.sh("ip -o -4 addr show dev eth0")
            .contains("10.77.4.2/24")
    );
}

/// The alias (`IFLA_IFALIAS`) of `ifname` in `ns`, if it has one.
fn alias(ns: &Ns, ifname: &str) -> Option<String> {
    let line = ns.sh(&format!("ip -o link show dev {ifname}"));
    let (_, rest) = line.split_once(" alias ")?;
    rest.split_whitespace().next().map(str::to_string)
}

/// The index of `ifname` in `ns`.
fn index(ns: &Ns, ifname: &str) -> String {
    ns.sh(&format!("ip -o link show dev {ifname} | cut -d: -f1"))
        .trim()
        .to_string()
}

/// A setup cut short between the link's creation and its link-up leaves it untagged under the
/// container's interface name, in a netns that outlives the container: the retry replaces it
/// when it is a slave of the network's kind on the network's parent, and refuses any other
/// untagged link of that name, leaving nothing of its own behind.
#[test]
fn a_retry_replaces_the_untagged_leftover_of_a_setup_cut_short_and_nothing_else() {
    let host = Host::with_network("leftover", &["--subnet", "10.77.14.0/24"]);
    let netns = Ns::new(); // pre-created: it outlives the container
    let bundle = precreated_bundle(&host, &netns);
    let ann = [("ipvlan.network", "net")];
    let create = || {
        host.oci_hook(
            "createRuntime",
            &state_json("c14", Some(netns.pid()), &bundle, &ann),
        )
    };
    let leftover = |parent: &str| {
        host.ns.sh(&format!(
            "ip link add link {parent} name eth0 netns {} type {}",
            netns.pid(),
            driver()
        ));
    };

    // Untagged, same kind, same parent, holding the address the lease gives (the first of the
    // subnet): the leftover is replaced.
    leftover("p0");
    netns.sh("ip addr add 10.77.14.2/24 dev eth0");
    let old = index(&netns, "eth0");
    assert_ok("hook", &create());
    let links = netns.sh("ip -o link");
    assert_eq!(links.matches("eth0").count(), 1, "{links}");
    assert!(!links.contains("ipvh"), "temporary name left: {links}");
    assert_ne!(index(&netns, "eth0"), old, "the leftover is still there");
    assert_eq!(alias(&netns, "eth0").as_deref(), Some("c14"));
    let addr = netns.sh("ip -o -4 addr show dev eth0");
    assert!(addr.contains("10.77.14.2/24"), "{addr}");
    let link = netns.sh("ip -o link show dev eth0");
    assert!(link.contains(",UP"), "{link}");
    assert_eq!(host.lease_count(), 1);

    assert_ok(
        "hook",
        &host.oci_hook("poststop", &state_json("c14", None, &bundle, &ann)),
    );
    assert!(!netns.sh("ip -o link").contains("eth0"));
    assert_eq!(host.lease_count(), 0);

    // Untagged, but on another parent (p1, the veth's other end): not ours to touch.
    leftover("p1");
    let before = netns.sh("ip -o link");
    let foreign = index(&netns, "eth0");
    let err = refused_for_a_foreign_eth0(&create());
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert_eq!(host.lease_count(), 0, "the lease must be released");
    assert_eq!(netns.sh("ip -o link"), before, "a link was left or touched");
    assert_eq!(index(&netns, "eth0"), foreign);
    assert_eq!(alias(&netns, "eth0"), None);
}

#[test]
fn failure_after_the_lease_rolls_everything_back() {
    let host = Host::with_network("rollback", &["--subnet", "10.77.5.0/24"]);
    let ctr = Ns::new();
    // eth0 is already taken in the container by a link that is not ours: renaming must fail.
    ctr.sh("ip link add eth0 type veth peer name other");
    let before = ctr.sh("ip -o link");
    refused_for_a_foreign_eth0(&host.create("c5", &ctr, &[("ipvlan.network", "net")]));
    assert_eq!(host.lease_count(), 0, "lease must be released on rollback");
    // No link made under a temporary name is left, and the veth that was there is untouched.
    let links = ctr.sh("ip -o link");
    assert_eq!(links, before, "temporary link left or the veth touched");
    assert!(links.contains("eth0@other"), "{links}");
}

#[test]
fn containers_without_ipvlan_annotations_are_left_alone() {
    let host = Host::new("none");
    let ctr = Ns::new();
    for stage in ["createRuntime", "poststop"] {
        let out = host.oci_hook(
            stage,
            &state_json("c6", Some(ctr.pid()), host.dir(), &[("org.example/x", "y")]),
        );
        assert_ok("hook", &out);
    }
    assert!(
        !host.state.exists(),
        "the hook must not write anything for foreign containers"
    );
}

#[test]
fn precreated_netns_loses_its_link_at_poststop() {
    let host = Host::with_network("prens", &["--subnet", "10.77.6.0/24"]);
    let netns = Ns::new(); // outlives the "container", like /run/netns/X
    let bundle = precreated_bundle(&host, &netns);
    let ann = [("ipvlan.network", "net")];
    let out = host.oci_hook(
        "createRuntime",
        &state_json("c7", Some(netns.pid()), &bundle, &ann),
    );
    assert_ok("hook", &out);
    assert!(
        netns
            .sh("ip -o addr show dev eth0")
            .contains("10.77.6.2/24")
    );
    let out = host.oci_hook("poststop", &state_json("c7", None, &bundle, &ann));
    assert_ok("hook", &out);
    assert!(
        !netns.sh("ip -o link").contains("eth0"),
        "link must be deleted from the surviving netns"
    );
    assert_eq!(host.lease_count(), 0);
}

#[test]
fn gc_releases_leases_of_containers_that_are_gone() {
    let host = Host::with_network("gc", &["--subnet", "10.77.7.0/24"]);
    let live = Ns::new();
    let ann = [("ipvlan.network", "net")];
    assert_ok("hook", &host.create("live", &live, &ann));
    {
        let dead = Ns::new();
        assert_ok("hook", &host.create("dead", &dead, &ann));
    } // killed without poststop: a crash, a reboot
    assert_eq!(host.lease_count(), 2);
    let dry = host.ok(&["gc", "--dry-run"]);
    assert!(
        dry.contains("would release 10.77.7.3") && dry.contains("container dead"),
        "{dry}"
    );
    assert_eq!(host.lease_count(), 2);
    let out = host.ok(&["gc"]);
    assert!(out.contains("released 10.77.7.3"), "{out}");
    assert_eq!(host.lease_count(), 1);
    let ls = host.ok(&["lease", "ls"]);
    assert!(ls.contains("live") && ls.contains("10.77.7.2/24"), "{ls}");
}

#[test]
fn annotation_only_network_when_the_policy_allows_it() {
    let host = Host::with_parent("adhoc");
    std::fs::create_dir_all(&host.config).unwrap();
    std::fs::write(
        host.config.join("policy.json"),
        r#"{"version":1,"allow_annotation_networks":true,"allowed_parents":["p0"]}"#,
    )
    .unwrap();
    let ctr = Ns::new();
    let mut ann = vec![
        ("ipvlan.parent", "p0"),
        ("ipvlan.ipv4", "10.77.10.5/24"),
        ("ipvlan.gateway", "10.77.10.254"),
    ];
    if driver() == "ipvlan" {
        ann.push(("ipvlan.mode", "l2"));
    } else {
        return skipped(
            "annotation_only_network_when_the_policy_allows_it",
            "annotation-only networks are ipvlan, this kernel has none (runs in the VM suite)",
        );
    }
    assert_ok("hook", &host.create("c10", &ctr, &ann));
    assert!(ctr.sh("ip route").contains("default via 10.77.10.254"));
    let out = host.create(
        "c11",
        &Ns::new(),
        &[("ipvlan.parent", "p1"), ("ipvlan.ipv4", "10.77.11.5/24")],
    );
    assert!(
        text(&out.stderr).contains("not in allowed_parents"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn kernel_without_ipvlan_gets_the_clear_message() {
    if kernel_has_ipvlan() {
        return skipped(
            "kernel_without_ipvlan_gets_the_clear_message",
            "this kernel has ipvlan",
        );
    }
    let host = Host::new("nokernel");
    host.ns.sh("ip link add p0 type veth peer name p1");
    let out = host.hook(&[
        "network",
        "create",
        "n",
        "--parent",
        "p0",
        "--subnet",
        "10.77.12.0/24",
    ]);
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stderr).trim(),
        "ipvlan-hook: kernel lacks ipvlan support (CONFIG_IPVLAN): load the ipvlan module (modprobe ipvlan)"
    );
    assert!(!host.config.join("networks/n.json").exists());
}

#[test]
fn containers_sharing_a_netns_never_touch_each_others_links() {
    let host = Host::with_network("pod", &["--subnet", "10.77.13.0/24"]);
    let pod = Ns::new(); // a pod's netns, joined by two containers
    let bundle = precreated_bundle(&host, &pod);
    let run = |stage: &str, id: &str, ann: &[(&str, &str)]| {
        let pid = (stage == "createRuntime").then(|| pod.pid());
        host.oci_hook(stage, &state_json(id, pid, &bundle, ann))
    };
    let a = [("ipvlan.network", "net")];
    let b = [("ipvlan.network", "net"), ("ipvlan.ifname", "eth1")];
    assert_ok("hook", &run("createRuntime", "a", &a));

    // B asking for A's interface name is refused, A's link and lease stay, and B leaves
    // nothing: no link under a temporary name, no lease.
    let before = pod.sh("ip -o link");
    let out = run("createRuntime", "b", &a);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("belongs to container a"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(pod.sh("ip -o link"), before);
    assert_eq!(alias(&pod, "eth0").as_deref(), Some("a"));
    assert!(
        pod.sh("ip -o -4 addr show dev eth0")
            .contains("10.77.13.2/24")
    );
    assert_eq!(host.lease_count(), 1);

    assert_ok("hook", &run("createRuntime", "b", &b));
    // Round robin: the refused attempt's address is not handed out again at once.
    let eth1 = pod.sh("ip -o -4 addr show dev eth1");
    assert!(eth1.contains("10.77.13.4/24"), "{eth1}");
    // B's poststop (told eth0 by a stale annotation or not) removes only B's link.
    assert_ok("hook", &run("poststop", "b", &a));
    assert_ok("hook", &run("poststop", "b", &b));
    let links = pod.sh("ip -o link");
    assert!(links.contains("eth0") && !links.contains("eth1"), "{links}");
    assert_eq!(host.lease_count(), 1);
    assert_ok("hook", &run("poststop", "a", &a));
    assert!(!pod.sh("ip -o link").contains("eth0"));
    assert_eq!(host.lease_count(), 0);
}

/// The binary starts without std's runtime (src/main.rs) and does for itself what a hook needs
/// of it: a runtime that closed the hook's stdio, or stopped reading its stderr, gets a clean
/// exit status, never a hook killed by SIGPIPE or writing into a file it opened.
#[test]
fn closed_stdio_and_a_reader_gone() {
    use std::io::Write;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::{Command, Stdio};

    // stdin, stdout and stderr all closed: stdin reads as empty, and says so on a stderr that
    // goes nowhere.
    let mut cmd = Command::new(hook_bin());
    cmd.args(["hook", "createRuntime"]);
    // SAFETY: close(2) is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            for fd in 0..3 {
                libc::close(fd);
            }
            Ok(())
        });
    }
    let status = cmd.status().expect("run the hook");
    assert_eq!(status.code(), Some(1), "{status:?}");

    // A reader gone: the error message meets EPIPE, and the hook still exits 1.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut child = Command::new(hook_bin())
        .args(["hook", "createRuntime"])
        .stdin(Stdio::piped())
        .stderr(writer)
        .spawn()
        .expect("run the hook");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"{not json")
        .expect("write the state");
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), None, "killed: {status:?}");
    assert_eq!(status.code(), Some(1), "{status:?}");
}

/// A bundle whose config.json names `netns`, a pre-created netns that outlives the container.
fn precreated_bundle(host: &Host, netns: &Ns) -> std::path::PathBuf {
    let bundle = host.dir().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "linux": {"namespaces": [{"type": "network", "path": netns.netns_path()}]}
    });
    std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();
    bundle
}

/// The refusal of a setup whose eth0 is taken by a link ipvlan-hook did not make: its stderr.
fn refused_for_a_foreign_eth0(out: &std::process::Output) -> String {
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("interface eth0 already exists in netns")
            && err.contains("ipvlan-hook did not create it"),
        "{err}"
    );
    err
}

/// A setup holds the container's netns (flock on the namespace file) until its links carry their
/// tags: another setup in the same netns, a pod's other container, waits for it instead of
/// taking its still untagged link for the leftover of a setup cut short.
#[test]
fn a_setup_waits_while_another_holds_the_netns() {
    let host = Host::with_network("nslock", &["--subnet", "10.77.15.0/24"]);
    let pod = Ns::new();
    let bundle = precreated_bundle(&host, &pod);
    let ann = [("ipvlan.network", "net")];
    let other = std::fs::File::open(pod.netns_path()).expect("open the pod's netns");
    other.lock().expect("hold the pod's netns");
    let child = host.spawn_oci_hook(
        "createRuntime",
        &state_json("c15", Some(pod.pid()), &bundle, &ann),
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        !pod.sh("ip -o link").contains("eth0"),
        "the setup went on while the netns was held"
    );
    other.unlock().expect("let go of the netns");
    let out = child.wait_with_output().expect("wait for the hook");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(alias(&pod, "eth0").as_deref(), Some("c15"));
    let out = host.oci_hook("poststop", &state_json("c15", None, &bundle, &ann));
    assert!(out.status.success(), "{}", text(&out.stderr));
}
