//! The etcd lease store against a real etcd (Debian's etcd-server) on loopback, with TLS and
//! client-certificate auth as in production: several simulated hosts (each a netns with its own
//! veth parent, its own config and state dirs and host id) share one `--ipam etcd` network.
//! Run by tests/all.sh as `cargo test --features etcd --test etcd`.
//! The etcd and forwarder fixtures are in tests/common/etcd.rs.
#![cfg(feature = "etcd")]

mod common;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::etcd::*;
use common::*;
use ipvlan_hook::etcd::config::EtcdConfig;
use ipvlan_hook::ipam::{self, EtcdStore, LeaseStore, Owner, Pool, Request};

const SUBNET: &str = "10.80.0.0/24";

/// 1. Three hosts start 30 containers each, all at the same moment, on one network: 90
///    distinct addresses and no error. Container ids repeat across hosts (c0..c29 on each):
///    a container is known by host and id. Everything is released after teardown.
#[test]
fn three_hosts_start_ninety_containers_at_once() {
    if !host_only("three_hosts_start_ninety_containers_at_once") {
        return;
    }
    let mut etcd = Etcd::start();
    let hosts: Vec<Host> = ["h1", "h2", "h3"]
        .iter()
        .map(|id| etcd_host(&mut etcd, id, SUBNET))
        .collect();
    let ctrs: Vec<Vec<Ns>> = hosts
        .iter()
        .map(|_| (0..30).map(|_| Ns::new()).collect())
        .collect();
    let start = Instant::now();
    let children: Vec<(usize, usize, Child)> = (0..30)
        .flat_map(|i| (0..3).map(move |h| (h, i)))
        .map(|(h, i)| {
            let child = spawn_hook(
                &hosts[h],
                "createRuntime",
                &format!("c{i}"),
                Some(&ctrs[h][i]),
            );
            (h, i, child)
        })
        .collect();
    for (h, i, child) in children {
        let out = child.wait_with_output().expect("hook");
        assert_ok(&format!("createRuntime of c{i} on h{}", h + 1), &out);
    }
    let setup = start.elapsed();
    let addrs: Vec<IpAddr> = ctrs
        .iter()
        .flatten()
        .map(|c| address(c).expect("every container has an address"))
        .collect();
    let distinct: HashSet<&IpAddr> = addrs.iter().collect();
    assert_eq!(
        distinct.len(),
        90,
        "an address was handed out twice: {addrs:?}"
    );
    // Every host sees the same 90 leases, 30 of each host, matching the interfaces.
    for host in &hosts {
        let all = leases(host);
        assert_eq!(all.len(), 90);
        let mut per_host: HashMap<&str, usize> = HashMap::new();
        for (_, _, h) in &all {
            *per_host.entry(h.as_str()).or_default() += 1;
        }
        assert_eq!(
            per_host,
            HashMap::from([("h1", 30), ("h2", 30), ("h3", 30)])
        );
    }
    let held: HashSet<IpAddr> = leases(&hosts[0]).into_iter().map(|l| l.1).collect();
    assert_eq!(held, addrs.iter().copied().collect());

    let start = Instant::now();
    let children: Vec<Child> = (0..30)
        .flat_map(|i| (0..3).map(move |h| (h, i)))
        .map(|(h, i)| spawn_hook(&hosts[h], "poststop", &format!("c{i}"), None))
        .collect();
    for child in children {
        assert_ok("poststop", &child.wait_with_output().expect("hook"));
    }
    let teardown = start.elapsed();
    for host in &hosts {
        assert_eq!(host.lease_count(), 0, "leases left after teardown");
    }
    eprintln!(
        "etcd: 90 concurrent createRuntime on 3 hosts in {:.2} s, 90 poststop in {:.2} s",
        setup.as_secs_f64(),
        teardown.as_secs_f64()
    );
}

/// Allocation straight through the store, four "hosts" (separate state dirs, so no shared
/// local lock) racing on one /24: only etcd's compare-and-swap keeps them apart.
#[test]
fn compare_and_swap_alone_keeps_racing_hosts_apart() {
    let etcd = Etcd::start();
    let pools = vec![Pool {
        subnet: "10.81.0.0/24".parse().expect("subnet"),
        ip_range: None,
        gateway: Some("10.81.0.1".parse().expect("gateway")),
        aux: Vec::new(),
    }];
    let dirs: Vec<PathBuf> = (0..4)
        .map(|i| {
            let dir = temp_dir(&format!("cas{i}"));
            std::fs::write(dir.join("etcd.json"), etcd.config(&format!("h{i}"))).expect("cfg");
            dir
        })
        .collect();
    let got: Vec<IpAddr> = std::thread::scope(|s| {
        let threads: Vec<_> = dirs
            .iter()
            .map(|dir| {
                let pools = &pools;
                s.spawn(move || {
                    let cfg = EtcdConfig::load(dir).expect("config");
                    let store = EtcdStore::for_network(&cfg, &dir.join("state"), "net", pools)
                        .expect("store");
                    (0..40)
                        .flat_map(|i| {
                            let req = Request {
                                network: "net",
                                container: &format!("c{i}"),
                                ifname: "eth0",
                                pools: pools.clone(),
                                want_v4: true,
                                want_v6: false,
                                static_v4: None,
                                static_v6: None,
                                owner: Owner::default(),
                            };
                            ipam::allocate(&store, &req).expect("allocate")
                        })
                        .map(|l| l.address)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("thread"))
            .collect()
    });
    assert_eq!(got.len(), 160);
    assert_eq!(
        got.iter().collect::<HashSet<_>>().len(),
        160,
        "duplicates: {got:?}"
    );

    // The store's own operations: create is exclusive, a retried create of the very same
    // record (its answer lost) is a success, and a host removes only its own leases.
    let cfg = EtcdConfig::load(&dirs[0]).expect("config");
    let store = EtcdStore::for_network(&cfg, &dirs[0].join("state"), "net", &pools).expect("store");
    let other = EtcdStore::for_network(
        &EtcdConfig::load(&dirs[1]).expect("config"),
        &dirs[1].join("state"),
        "net",
        &pools,
    )
    .expect("store");
    let mut net = store.lock("net").expect("lock");
    let mine = net.of_container("c0").expect("of_container");
    assert_eq!(mine.len(), 1);
    assert!(net.create(&mine[0]).expect("retry of the same record"));
    let mut stolen = mine[0].clone();
    stolen.container = "thief".into();
    assert!(!net.create(&stolen).expect("taken"));
    let mut theirs = other.lock("net").expect("lock");
    theirs
        .remove(&mine[0])
        .expect("not its lease: nothing to do");
    assert!(!net.is_free(mine[0].address).expect("still held"));
    net.remove(&mine[0]).expect("remove");
    assert!(net.is_free(mine[0].address).expect("released"));
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// A container restarted under the same id on a full network, through the etcd store: the
/// collection of dead owners that makes room spares the lease it keeps (whose recorded owner is
/// its old, dead process); a failed allocation puts that lease's old owner back.
#[test]
fn restart_on_a_full_network_keeps_its_own_lease() {
    let etcd = Etcd::start();
    let dir = temp_dir("restart");
    std::fs::write(dir.join("etcd.json"), etcd.config("h0")).expect("cfg");
    let pools = vec![
        Pool {
            subnet: "10.82.0.0/30".parse().expect("subnet"),
            ip_range: None,
            gateway: Some("10.82.0.1".parse().expect("gateway")),
            aux: Vec::new(),
        },
        Pool {
            subnet: "fd00:82::/64".parse().expect("subnet"),
            ip_range: None,
            gateway: None,
            aux: Vec::new(),
        },
    ];
    let cfg = EtcdConfig::load(&dir).expect("config");
    let store = EtcdStore::for_network(&cfg, &dir.join("state"), "net", &pools).expect("store");
    let mut child = Command::new("true").spawn().expect("spawn true");
    let dead = Owner::of_pid(child.id()).expect("child's stat");
    child.wait().expect("wait");
    let me = Owner::of_pid(std::process::id()).expect("own stat");
    let req = |container, want_v4, static_v4, owner: &Owner| Request {
        network: "net",
        container,
        ifname: "eth0",
        pools: pools.clone(),
        want_v4,
        want_v6: true,
        static_v4,
        static_v6: None,
        owner: owner.clone(),
    };
    let addrs = |leases: &[ipam::Lease]| -> Vec<String> {
        leases.iter().map(|l| l.address.to_string()).collect()
    };
    let c0 = ipam::allocate(&store, &req("c0", false, None, &dead)).expect("c0");
    assert_eq!(addrs(&c0), ["fd00:82::1"]);
    ipam::allocate(&store, &req("c1", true, None, &dead)).expect("c1");

    // c1's address asked for statically: refused (a static request never collects), and
    // c0's lease is as it was, old owner included.
    let taken = ipam::allocate(
        &store,
        &req("c0", true, Some("10.82.0.2".parse().expect("ip")), &me),
    );
    let err = taken.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("is leased to container c1"), "{err}");
    let held: Vec<ipam::Lease> = ipam::leases(&store, Some("net"))
        .expect("leases")
        .into_iter()
        .filter_map(|e| match e {
            ipam::LeaseEntry::Lease(l) if l.container == "c0" => Some(l),
            _ => None,
        })
        .collect();
    assert_eq!(held, c0, "the old owner is back");

    let got = ipam::allocate(&store, &req("c0", true, None, &me)).expect("restart collects c1");
    assert_eq!(addrs(&got), ["10.82.0.2", "fd00:82::1"]);
    assert!(got.iter().all(|l| l.owner == me));
    let all: Vec<String> = ipam::leases(&store, None)
        .expect("leases")
        .iter()
        .map(|e| match e {
            ipam::LeaseEntry::Lease(l) => format!("{} {}", l.container, l.address),
            ipam::LeaseEntry::Corrupt { path, .. } => format!("corrupt {}", path.display()),
        })
        .collect();
    assert_eq!(all, ["c0 10.82.0.2", "c0 fd00:82::1"]);
    let _ = std::fs::remove_dir_all(dir);
}

/// 2. etcd killed and restarted in the middle of a stream of setups on two hosts: setups during
///    the outage fail closed, and afterwards every container that was set up holds a lease of
///    its own address, no address is held twice, and nothing else is left once gc ran.
#[test]
fn etcd_restart_in_the_middle_of_a_stream_of_setups() {
    if !host_only("etcd_restart_in_the_middle_of_a_stream_of_setups") {
        return;
    }
    let mut etcd = Etcd::start();
    let hosts: Vec<Host> = ["r1", "r2"]
        .iter()
        .map(|id| etcd_host(&mut etcd, id, SUBNET))
        .collect();
    struct Attempt {
        host: usize,
        seq: usize,
        id: String,
        ctr: Ns,
        out: Output,
    }
    // Each stream sets containers up one after the other until, after etcd is back, five of
    // its own have gone through (at most 150 attempts).
    let done = std::sync::atomic::AtomicUsize::new(0);
    let restarted = AtomicBool::new(false);
    let attempts: Vec<Attempt> = std::thread::scope(|s| {
        let streams: Vec<_> = (0..2)
            .map(|h| {
                let (hosts, done, restarted) = (&hosts, &done, &restarted);
                s.spawn(move || {
                    let mut attempts = Vec::new();
                    let mut after = 0;
                    for i in 0..150 {
                        let back = restarted.load(Ordering::SeqCst);
                        let ctr = Ns::new();
                        let id = format!("s{i}");
                        let out = hosts[h].create(&id, &ctr, ON_NET);
                        done.fetch_add(1, Ordering::SeqCst);
                        if back && out.status.success() {
                            after += 1;
                        }
                        attempts.push(Attempt {
                            host: h,
                            seq: i,
                            id,
                            ctr,
                            out,
                        });
                        if after == 5 {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(30));
                    }
                    attempts
                })
            })
            .collect();
        while done.load(Ordering::SeqCst) < 16 {
            std::thread::sleep(Duration::from_millis(5));
        }
        etcd.kill();
        std::thread::sleep(Duration::from_millis(1500));
        etcd.resume();
        restarted.store(true, Ordering::SeqCst);
        streams
            .into_iter()
            .flat_map(|t| t.join().expect("stream"))
            .collect()
    });
    let (ok, failed): (Vec<&Attempt>, Vec<&Attempt>) =
        attempts.iter().partition(|a| a.out.status.success());
    assert!(!failed.is_empty(), "no setup fell into the outage");
    assert!(ok.len() >= 16, "too few setups went through: {}", ok.len());
    // Each stream went on after the outage: a success follows its first failure.
    for f in &failed {
        assert!(
            ok.iter().any(|a| a.host == f.host && a.seq > f.seq),
            "host {} never recovered after {}",
            f.host,
            f.id
        );
    }
    for a in &failed {
        let err = text(&a.out.stderr);
        assert!(err.contains("etcd"), "{}: {err}", a.id);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert_eq!(address(&a.ctr), None, "{} failed but has an address", a.id);
        assert!(
            !a.ctr.sh("ip -o link").contains("eth0"),
            "{} kept a link",
            a.id
        );
    }
    // No lease lost: every container that was set up holds the lease of its address.
    let held = leases(&hosts[0]);
    let by_addr: HashMap<IpAddr, (String, String)> = held
        .iter()
        .map(|(c, a, h)| (*a, (c.clone(), h.clone())))
        .collect();
    assert_eq!(by_addr.len(), held.len(), "an address is leased twice");
    let mut addrs = HashSet::new();
    for a in &ok {
        let addr = address(&a.ctr).expect("set up, so it has an address");
        assert!(addrs.insert(addr), "{addr} handed out twice");
        let host = ["r1", "r2"][a.host].to_string();
        assert_eq!(
            by_addr.get(&addr),
            Some(&(a.id.clone(), host)),
            "lease of {addr}"
        );
    }
    // A request cut off by the kill may have committed although its hook failed: such a lease
    // belongs to a failed container, and gc releases it once that container is gone.
    eprintln!(
        "etcd restart: {} setups went through, {} failed closed during the outage (e.g. {:?}), {} lease(s) of cut-off requests left for gc",
        ok.len(),
        failed.len(),
        text(&failed[0].out.stderr).trim(),
        held.len() - ok.len()
    );
    let failed_ids: Vec<(usize, String)> = failed.iter().map(|a| (a.host, a.id.clone())).collect();
    let ok_count = ok.len();
    let (running, gone): (Vec<Attempt>, Vec<Attempt>) =
        attempts.into_iter().partition(|a| a.out.status.success());
    drop(gone); // the failed containers exit
    for host in &hosts {
        host.ok(&["gc"]);
    }
    let left = leases(&hosts[1]);
    assert_eq!(left.len(), ok_count, "{left:?} (failed: {failed_ids:?})");
    drop(running);
}

/// 3. etcd stopped: a setup fails closed within the time bound, names the endpoint in one line
///    and leaves nothing; a silent endpoint is given up on in time too; the teardown of a
///    container set up before fails clearly, and gc completes it once etcd is back.
#[test]
fn etcd_down_fails_closed_and_gc_finishes_the_teardown() {
    let mut etcd = Etcd::start();
    let host = etcd_host(&mut etcd, "d1", SUBNET);
    let a = Ns::new();
    assert_ok("setup of a", &host.create("a", &a, ON_NET));
    let a_addr = address(&a).expect("a has an address");

    etcd.kill();
    let b = Ns::new();
    let start = Instant::now();
    let out = host.create("b", &b, ON_NET);
    let took = start.elapsed();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("etcd at {} is unreachable (", etcd.endpoint())),
        "{err}"
    );
    assert!(err.contains("connection refused"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(!b.sh("ip -o link").contains("eth0"), "b kept a link");

    // A listener that never answers (a partitioned member): bounded by timeout_ms.
    let netns = std::fs::File::open(host.ns.netns_path()).expect("netns");
    let silent = bind_in(&netns, 0);
    let silent_url = format!("https://{}", silent.local_addr().expect("addr"));
    std::fs::write(
        host.config.join("etcd.json"),
        etcd.config_with("d1", &silent_url),
    )
    .expect("etcd.json");
    let start = Instant::now();
    let out = host.create("b", &b, ON_NET);
    let took = start.elapsed();
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("etcd at {silent_url} is unreachable")),
        "{err}"
    );
    assert!(err.contains("no answer within"), "{err}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(!b.sh("ip -o link").contains("eth0"), "b kept a link");
    drop(silent);
    std::fs::write(host.config.join("etcd.json"), etcd.config("d1")).expect("etcd.json");

    // Teardown while etcd is down: a clear failure; the lease stays.
    drop(a); // the container is gone
    let out = host.poststop("a", ON_NET);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot release the leases of container a"),
        "{err}"
    );
    assert!(err.contains(&etcd.endpoint()), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    // The network cannot be removed without etcd, unless forced; its lease stays in etcd.
    let out = host.hook(&["network", "rm", "net"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(&etcd.endpoint()));
    let out = host.hook(&["network", "rm", "--force", "net"]);
    assert_ok("network rm --force without etcd", &out);
    assert!(text(&out.stderr).contains("removed anyway (--force)"));
    assert!(!host.config.join("networks/net.json").exists());

    etcd.resume();
    assert_eq!(
        leases(&host),
        [("a".to_string(), a_addr, "d1".to_string())],
        "b got nothing"
    );
    let out = host.ok(&["gc"]);
    assert!(
        out.contains(&format!("released {a_addr} on network net (container a")),
        "{out}"
    );
    assert_eq!(host.lease_count(), 0);
}

/// A cluster whose first members are dead or silent still serves, within the time bound.
#[test]
fn dead_and_silent_members_are_skipped() {
    let mut etcd = Etcd::start();
    let host = etcd_host(&mut etcd, "m1", SUBNET);
    let netns = std::fs::File::open(host.ns.netns_path()).expect("netns");
    let silent = bind_in(&netns, 0);
    let silent_url = format!("https://{}", silent.local_addr().expect("addr"));
    let dead_url = format!("https://127.0.0.1:{}", free_port());
    let real = etcd.endpoint();
    std::fs::write(
        host.config.join("etcd.json"),
        etcd.config_endpoints("m1", &[&silent_url, &dead_url, &real]),
    )
    .expect("etcd.json");
    let ctr = Ns::new();
    let start = Instant::now();
    assert_ok(
        "setup past a silent and a dead member",
        &host.create("c", &ctr, ON_NET),
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );
    assert!(address(&ctr).is_some());
    assert_ok("teardown", &host.poststop("c", ON_NET));
    assert_eq!(host.lease_count(), 0);
    // A proxy meant for the internet is not used for etcd.
    let out = host
        .hook_cmd(&["lease", "ls"])
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("ALL_PROXY", "http://127.0.0.1:9")
        .output()
        .expect("lease ls");
    assert_ok("lease ls with HTTPS_PROXY set", &out);
}

/// 4. A host's gc judges only its own leases, even where another host's owner looks dead from
///    here (these hosts share one pid namespace); `lease drain` releases a gone host's leases.
#[test]
fn gc_never_touches_another_hosts_leases_and_drain_does() {
    let mut etcd = Etcd::start();
    let h1 = etcd_host(&mut etcd, "g1", SUBNET);
    let h2 = etcd_host(&mut etcd, "g2", SUBNET);
    let h3 = etcd_host(&mut etcd, "g3", SUBNET);
    // ipvlan-run on an etcd network: leased from etcd, released when the command ends.
    let out = h2.run(&[
        "--network",
        "net",
        "--name",
        "job",
        "--",
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "dev",
        "eth0",
    ]);
    assert_ok("ipvlan-run", &out);
    assert!(
        text(&out.stdout).contains("inet 10.80.0."),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(h1.lease_count(), 0);
    let live1 = Ns::new();
    assert_ok("live1", &h1.create("live", &live1, ON_NET));
    for (host, id) in [(&h1, "dead"), (&h2, "dead")] {
        let ctr = Ns::new();
        assert_ok(id, &host.create(id, &ctr, ON_NET));
    } // both "dead" containers are gone, neither was stopped
    let live3 = Ns::new();
    assert_ok("live3", &h3.create("live", &live3, ON_NET));
    assert_eq!(leases(&h1).len(), 4);

    let dry = h1.ok(&["gc", "--dry-run"]);
    assert_eq!(dry.lines().count(), 1, "{dry}");
    let out = h1.ok(&["gc"]);
    assert_eq!(out.lines().count(), 1, "only h1's own dead lease: {out}");
    let left = leases(&h1);
    assert_eq!(left.len(), 3);
    assert!(
        left.iter().any(|l| l.0 == "dead" && l.2 == "g2"),
        "{left:?}"
    );
    assert!(!left.iter().any(|l| l.0 == "dead" && l.2 == "g1"));
    // `lease ls` says whose each lease is, and cannot judge other hosts' owners.
    let table = h1.ok(&["lease", "ls"]);
    assert!(
        table.lines().next().unwrap_or_default().ends_with("HOST"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("dead") && l.contains("remote") && l.ends_with("g2")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("live") && l.ends_with("g1")),
        "{table}"
    );

    let out = h2.ok(&["gc"]);
    assert!(out.contains("(container dead, eth0)"), "{out}");
    assert_eq!(leases(&h1).len(), 2);

    // g3 is gone for good (its container still looks alive from here: drain does not ask).
    let err = text(&h1.hook(&["lease", "drain", "--host", "g1"]).stderr);
    assert!(err.contains("g1 is this host"), "{err}");
    let dry = h1.ok(&["lease", "drain", "--host", "g3", "--dry-run"]);
    assert!(
        dry.starts_with("would release") && dry.contains("host g3"),
        "{dry}"
    );
    assert_eq!(leases(&h1).len(), 2);
    let out = h1.ok(&["lease", "drain", "--host", "g3"]);
    assert!(out.contains("(container live, eth0, host g3)"), "{out}");
    assert_eq!(
        leases(&h1),
        [("live".into(), address(&live1).expect("addr"), "g1".into())]
    );
    drop(live3);
}

/// Every host must define an etcd network the same way: a different subnet is refused by
/// `network create`, and a hand-edited definition is refused by the hook, leaving nothing.
#[test]
fn definitions_must_agree_across_hosts() {
    let mut etcd = Etcd::start();
    let h1 = etcd_host(&mut etcd, "a1", SUBNET);
    let h2 = Host::with_parent("a2");
    etcd.serve_in(&h2.ns);
    std::fs::create_dir_all(&h2.config).expect("config");
    std::fs::write(h2.config.join("etcd.json"), etcd.config("a2")).expect("etcd.json");
    let out = h2.hook(&network_create(
        "net",
        "p0",
        &["--subnet", "10.80.0.0/23", "--ipam", "etcd"],
    ));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("network net is recorded in etcd (/ipvh-test/v1/networks/net) with subnets 10.80.0.0/24 (gateway 10.80.0.1), but this host defines it with 10.80.0.0/23"),
        "{err}"
    );
    assert!(!h2.config.join("networks/net.json").exists());
    // The same definition is fine (the parent may have another name on each host).
    h2.ns.sh("ip link set p0 name uplink");
    h2.ok(&network_create(
        "net",
        "uplink",
        &["--subnet", SUBNET, "--ipam", "etcd"],
    ));
    // Edited by hand behind the tool's back: the hook refuses before any address is taken.
    let file = h2.config.join("networks/net.json");
    let text_ = std::fs::read_to_string(&file).expect("definition");
    std::fs::write(&file, text_.replace("10.80.0.1", "10.80.0.254")).expect("edit");
    let ctr = Ns::new();
    let out = h2.create("x", &ctr, ON_NET);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("every host must define an etcd network identically"),
        "{err}"
    );
    assert!(!ctr.sh("ip -o link").contains("eth0"));
    assert_eq!(h1.lease_count(), 0);
    // Without etcd.json the hook says what is missing.
    std::fs::remove_file(h2.config.join("etcd.json")).expect("rm");
    let err = text(&h2.create("x", &ctr, ON_NET).stderr);
    assert!(err.contains("etcd.json does not exist"), "{err}");
    std::fs::write(h2.config.join("etcd.json"), etcd.config("a2")).expect("etcd.json");

    // Redefining: once the network is removed and no host holds a lease on it, its record
    // goes; the next host to use it records its own plan, and the old plan is refused.
    h1.ok(&["network", "rm", "net"]);
    assert_ok("first use records the plan", &h2.create("x", &ctr, ON_NET));
    assert_eq!(h2.lease_count(), 1);
    let out = h1.hook(&network_create(
        "net",
        "p0",
        &["--subnet", SUBNET, "--ipam", "etcd"],
    ));
    let err = text(&out.stderr);
    assert!(
        err.contains("with subnets 10.80.0.0/24 (gateway 10.80.0.254), but this host defines it with 10.80.0.0/24 (gateway 10.80.0.1)"),
        "{err}"
    );
}

/// Benchmark (not pass/fail): createRuntime and poststop latency, etcd store (TLS, one member
/// on loopback) against lease files, on one host. `cargo test --features etcd --test etcd --
/// --ignored --nocapture bench`; tests/all.sh runs it and prints the line.
#[test]
#[ignore]
fn bench_setup_latency_etcd_vs_files() {
    let mut etcd = Etcd::start();
    let host = etcd_host(&mut etcd, "b1", SUBNET);
    host.ok(&[
        "network",
        "create",
        "fnet",
        "--driver",
        driver(),
        "--parent",
        "p0",
        "--subnet",
        "10.82.0.0/24",
    ]);
    // Files and etcd alternate, so drift on a busy machine hits both alike; the first ten
    // rounds warm caches and are not counted.
    let n = 40;
    let mut times: HashMap<(&str, &str), Vec<Duration>> = HashMap::new();
    for i in 0..n + 10 {
        for (name, net) in [("files", "fnet"), ("etcd", "net")] {
            let ann = [("ipvlan.network", net)];
            let ctr = Ns::new();
            let id = format!("{name}{i}");
            let t = Instant::now();
            let out = host.oci_hook(
                "createRuntime",
                &state_json(&id, Some(ctr.pid()), host.dir(), &ann),
            );
            let setup = t.elapsed();
            assert_ok("bench setup", &out);
            let t = Instant::now();
            let out = host.oci_hook("poststop", &state_json(&id, None, host.dir(), &ann));
            let stop = t.elapsed();
            assert_ok("bench poststop", &out);
            if i >= 10 {
                times.entry((name, "setup")).or_default().push(setup);
                times.entry((name, "stop")).or_default().push(stop);
            }
        }
    }
    let ms = |name, stage| median(times[&(name, stage)].clone()).as_secs_f64() * 1000.0;
    eprintln!(
        "bench: median of {n} (one host, {}, hook binary {}): createRuntime files {:.1} ms, etcd {:.1} ms; poststop files {:.1} ms, etcd {:.1} ms (etcd: TLS with client certificate, one member, through the tests' loopback forwarder)",
        driver(),
        hook_bin().display(),
        ms("files", "setup"),
        ms("etcd", "setup"),
        ms("files", "stop"),
        ms("etcd", "stop")
    );
}

/// Our CNI IPAM plugin (issue 16) on an etcd network, run as the CNI macvlan plugin runs it:
/// the address it leases is in etcd, seen from another host; STATUS answers 50 while etcd is
/// down, ADD fails closed, and DEL after etcd is back releases the lease for every host.
#[test]
fn cni_ipam_leases_from_etcd() {
    let mut etcd = Etcd::start();
    let h1 = etcd_host(&mut etcd, "cni1", SUBNET);
    let h2 = etcd_host(&mut etcd, "cni2", SUBNET);
    let ctr = Ns::new();
    let netns = ctr.netns_path();
    let conf = serde_json::json!({
        "cniVersion": "1.1.0", "name": "mv", "type": "macvlan", "master": "p0",
        "ipam": {"type": "ipvlan-hook", "network": "net",
                 "config_dir": h1.config, "state_dir": h1.state},
    })
    .to_string();
    let plugin = |command: &str| {
        let mut child = h1
            .ns
            .cmd(hook_bin())
            .env_clear()
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", "cni-c1")
            .env("CNI_NETNS", &netns)
            .env("CNI_IFNAME", "net1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the plugin");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(conf.as_bytes())
            .expect("stdin");
        child.wait_with_output().expect("plugin")
    };
    let out = plugin("ADD");
    assert_ok("CNI ADD", &out);
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("result");
    let cidr = result["ips"][0]["address"].as_str().expect("address");
    let addr: IpAddr = cidr
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("ip");
    assert!(
        leases(&h2).contains(&("cni-c1".to_string(), addr, "cni1".to_string())),
        "{:?}",
        leases(&h2)
    );
    assert_ok("CNI STATUS", &plugin("STATUS"));

    etcd.kill();
    let status = plugin("STATUS");
    assert!(!status.status.success());
    let err: serde_json::Value = serde_json::from_slice(&status.stdout).expect("error JSON");
    assert_eq!(err["code"], 50, "{err}");
    assert!(!plugin("ADD").status.success(), "ADD must fail closed");

    etcd.resume();
    assert_ok("CNI DEL", &plugin("DEL"));
    assert!(leases(&h2).is_empty(), "{:?}", leases(&h2));
}
