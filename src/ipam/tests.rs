//! The IPAM glue's unit tests: allocation, release, gc and their failures, over the lease files.

use std::collections::HashSet;
use std::process::Command;

use super::*;
use test_dir::TestDir;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn pool(subnet: &str, range: Option<&str>, gateway: Option<&str>) -> Pool {
    Pool {
        subnet: subnet.parse().expect("test subnet"),
        ip_range: range.map(|r| r.parse().expect("test range")),
        gateway: gateway.map(ip),
        aux: Vec::new(),
    }
}

fn dual() -> Vec<Pool> {
    vec![
        pool("10.1.0.0/24", None, Some("10.1.0.1")),
        pool("fd00::/64", None, Some("fd00::1")),
    ]
}

fn req<'a>(container: &'a str, pools: &[Pool]) -> Request<'a> {
    Request {
        network: "net",
        container,
        ifname: "eth0",
        pools: pools.to_vec(),
        want_v4: pools.iter().any(|p| p.subnet.is_ipv4()),
        want_v6: pools.iter().any(|p| p.subnet.is_ipv6()),
        static_v4: None,
        static_v6: None,
        owner: Owner::default(),
    }
}

fn addrs(leases: &[Lease]) -> Vec<String> {
    leases.iter().map(|l| l.address.to_string()).collect()
}

fn err(r: Result<Vec<Lease>>) -> String {
    r.err()
        .map(|e| e.to_string())
        .unwrap_or_else(|| "no error".into())
}

fn all_leases(store: &dyn LeaseStore) -> Vec<String> {
    let entries = leases(store, None).expect("leases");
    entries
        .iter()
        .map(|e| match e {
            LeaseEntry::Lease(l) => format!("{} {} {}", l.network, l.container, l.address),
            LeaseEntry::Corrupt { path, .. } => format!("corrupt {}", path.display()),
        })
        .collect()
}

/// The owner record of a process that has exited.
fn dead_owner() -> Owner {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let owner = Owner::of_pid(child.id()).expect("child's stat");
    child.wait().expect("wait");
    owner
}

#[test]
fn allocate_is_idempotent_and_release_frees() {
    let dir = TestDir::new();
    let store = LeaseFiles::new(dir.path());
    let pools = dual();
    let first = allocate(&store, &req("c1", &pools)).expect("allocate");
    assert_eq!(addrs(&first), ["10.1.0.2", "fd00::2"]);
    assert_eq!(first[0].prefix_len, 24);
    assert_eq!(first[1].prefix_len, 64);
    assert_eq!(allocate(&store, &req("c1", &pools)).expect("again"), first);
    assert_eq!(
        addrs(&allocate(&store, &req("c2", &pools)).expect("c2")),
        ["10.1.0.3", "fd00::3"]
    );
    // Another interface of the same container gets its own addresses.
    let eth1 = Request {
        ifname: "eth1",
        ..req("c1", &pools)
    };
    assert_eq!(
        addrs(&allocate(&store, &eth1).expect("eth1")),
        ["10.1.0.4", "fd00::4"]
    );

    let eth1_only = release_interface(&store, "c1", "net", "eth1").expect("release eth1");
    assert_eq!(addrs(&eth1_only), ["10.1.0.4", "fd00::4"]);
    assert!(
        release_interface(&store, "c1", "net", "eth1")
            .expect("release eth1 again")
            .is_empty()
    );
    allocate(&store, &eth1).expect("eth1 again");

    let released = release(&store, "c1").expect("release");
    assert_eq!(released.len(), 4);
    assert!(release(&store, "c1").expect("release again").is_empty());
    assert_eq!(all_leases(&store), ["net c2 10.1.0.3", "net c2 fd00::3"]);
    assert!(
        release(&store, "never-seen")
            .expect("unknown container")
            .is_empty()
    );
    assert!(
        release(&LeaseFiles::new(&dir.path().join("none")), "c1")
            .expect("no state")
            .is_empty()
    );
}

#[test]
fn allocate_again_records_the_new_owner() {
    let dir = TestDir::new();
    let store = LeaseFiles::new(dir.path());
    let pools = dual();
    let old = Owner {
        pid: Some(1),
        pid_start: Some(5),
        ..Owner::default()
    };
    let new = Owner::of_pid(std::process::id()).expect("own pid");
    let before = allocate(
        &store,
        &Request {
            owner: old,
            ..req("c1", &pools)
        },
    )
    .expect("allocate");
    let after = allocate(
        &store,
        &Request {
            owner: new.clone(),
            ..req("c1", &pools)
        },
    )
    .expect("again");
    assert_eq!(addrs(&after), addrs(&before));
    assert_eq!(after[0].created, before[0].created);
    for entry in leases(&store, Some("net")).expect("leases") {
        assert!(matches!(entry, LeaseEntry::Lease(l) if l.owner == new));
    }
}

#[test]
fn static_addresses_conflict_with_a_clear_message() {
    let dir = TestDir::new();
    let store = LeaseFiles::new(dir.path());
    let pools = vec![pool("10.1.0.0/24", Some("10.1.0.128/25"), Some("10.1.0.1"))];
    let mine = Request {
        static_v4: Some(ip("10.1.0.7")),
        ..req("abc", &pools)
    };
    // Outside the ip-range is fine for a static address.
    assert_eq!(
        addrs(&allocate(&store, &mine).expect("static")),
        ["10.1.0.7"]
    );
    assert_eq!(
        addrs(&allocate(&store, &mine).expect("static again")),
        ["10.1.0.7"]
    );
    let theirs = Request {
        static_v4: Some(ip("10.1.0.7")),
        ..req("def", &pools)
    };
    assert_eq!(
        err(allocate(&store, &theirs)),
        "10.1.0.7 is leased to container abc on network net (release it with 'ipvlan-hook gc' if that container is gone)"
    );
    assert!(
        leases(&store, None).expect("leases").len() == 1,
        "nothing left by the failed request"
    );
    let gateway = Request {
        static_v4: Some(ip("10.1.0.1")),
        ..req("def", &pools)
    };
    assert!(err(allocate(&store, &gateway)).contains("is the gateway"));
    let family = Request {
        static_v4: Some(ip("fd00::1")),
        ..req("def", &pools)
    };
    assert!(err(allocate(&store, &family)).contains("is not an IPv4 address"));
    // Dynamic allocation stays inside the range.
    assert_eq!(
        addrs(&allocate(&store, &req("dyn", &pools)).expect("dynamic")),
        ["10.1.0.128"]
    );
}

#[test]
fn a_new_static_address_replaces_the_old_one() {
    let dir = TestDir::new();
    let store = LeaseFiles::new(dir.path());
    let pools = dual();
    assert_eq!(
        addrs(&allocate(&store, &req("c1", &pools)).expect("dynamic")),
        ["10.1.0.2", "fd00::2"]
    );
    let moved = Request {
        static_v4: Some(ip("10.1.0.50")),
        ..req("c1", &pools)
    };
    assert_eq!(
        addrs(&allocate(&store, &moved).expect("static")),
        ["10.1.0.50", "fd00::2"]
    );
    assert_eq!(all_leases(&store), ["net c1 10.1.0.50", "net c1 fd00::2"]);
    // No longer wanted: IPv6 is released.
    let v4_only = Request {
        want_v6: false,
        ..moved
    };
    assert_eq!(
        addrs(&allocate(&store, &v4_only).expect("v4 only")),
        ["10.1.0.50"]
    );
    assert_eq!(all_leases(&store), ["net c1 10.1.0.50"]);
}

/// The state a SIGKILL leaves between creating the new lease of a move to a static address
/// and removing the old one: both held by c1/eth0, recorded for a process that is gone.
fn torn_move(store: &LeaseFiles, pools: &[Pool]) {
    let dead = Request {
        want_v6: false,
        owner: dead_owner(),
        ..req("c1", pools)
    };
    let old = allocate(store, &dead).expect("old lease");
    let new = Lease {
        address: ip("10.1.0.50"),
        ..old[0].clone()
    };
    assert!(store.lock("net").expect("lock").create(&new).expect("new"));
    assert_eq!(all_leases(store), ["net c1 10.1.0.2", "net c1 10.1.0.50"]);
}

#[test]
fn a_move_killed_halfway_is_cleaned_by_the_next_allocate_release_or_gc() {
    let pools = dual();
    let moved = Request {
        want_v6: false,
        static_v4: Some(ip("10.1.0.50")),
        owner: Owner::of_pid(std::process::id()).expect("own stat"),
        ..req("c1", &pools)
    };
    let dir = TestDir::new();
    let store = LeaseFiles::new(dir.path());
    torn_move(&store, &pools);
    assert_eq!(
        addrs(&allocate(&store, &moved).expect("again")),
        ["10.1.0.50"]
    );
    assert_eq!(all_leases(&store), ["net c1 10.1.0.50"]);

    let dir = TestDir::new();
    let store = LeaseFiles::new(dir.path());
    torn_move(&store, &pools);
    assert_eq!(release(&store, "c1").expect("release").len(), 2);
    assert!(all_leases(&store).is_empty());

    let dir = TestDir::new();
    let store = LeaseFiles::new(dir.path());
    torn_move(&store, &pools);
    assert_eq!(
        addrs(&gc(&store, false).expect("gc")),
        ["10.1.0.2", "10.1.0.50"]
    );
    assert!(all_leases(&store).is_empty());
}

#[test]
fn failure_in_the_second_family_releases_the_first() {
    let dir = TestDir::new();
    let store = LeaseFiles::new(dir.path());
    let pools = dual();
    let holder = Request {
        want_v4: false,
        static_v6: Some(ip("fd00::9")),
        ..req("holder", &pools)
    };
    allocate(&store, &holder).expect("holder");
    let clash = Request {
        static_v6: Some(ip("fd00::9")),
        ..req("c1", &pools)
    };
    assert!(err(allocate(&store, &clash)).starts_with("fd00::9 is leased to container holder"));
    assert_eq!(all_leases(&store), ["net holder fd00::9"]);
    let index = dir.path().join("networks/net/containers/c1");
    assert!(!index.exists(), "no index left for c1");
}

#[test]
fn released_static_v6_can_be_taken_again_at_once() {
    let dir = TestDir::new();
    let store = LeaseFiles::new(dir.path());
    let pools = dual();
    for i in 0..50 {
        let id = format!("c{i}");
        let r = Request {
            static_v6: Some(ip("fd00::10")),
            ..req(&id, &pools)
        };
        let got = allocate(&store, &r).expect("static v6 after release");
        assert_eq!(got[1].address, ip("fd00::10"));
        assert_eq!(release(&store, &id).expect("release").len(), 2);
    }
}

#[test]
fn exhaustion_names_the_network_and_subnets() {
    let dir = TestDir::new();
    let store = LeaseFiles::new(dir.path());
    let pools = vec![pool("10.9.0.0/30", None, Some("10.9.0.1"))];
    assert_eq!(
        addrs(&allocate(&store, &req("c1", &pools)).expect("only address")),
        ["10.9.0.2"]
    );
    assert_eq!(
        err(allocate(&store, &req("c2", &pools))),
        "no free IPv4 address left on network net (subnets 10.9.0.0/30): release leases ('ipvlan-hook gc') or add a subnet"
    );
    release(&store, "c1").expect("release");
    assert_eq!(
        addrs(&allocate(&store, &req("c2", &pools)).expect("freed")),
        ["10.9.0.2"]
    );
    let no_v6 = Request {
        want_v4: false,
        want_v6: true,
        ..req("c3", &pools)
    };
    assert_eq!(
        err(allocate(&store, &no_v6)),
        "network net has no IPv6 subnet to allocate an address from"
    );
}

#[test]
fn next_pool_when_the_first_is_full_and_round_robin_within() {
    let dir = TestDir::new();
    let store = LeaseFiles::new(dir.path());
    let pools = vec![
        pool("10.9.0.0/29", None, Some("10.9.0.1")),
        pool("10.8.0.0/24", None, None),
    ];
    let mut got = Vec::new();
    for i in 0..7 {
        got.extend(addrs(
            &allocate(&store, &req(&format!("c{i}"), &pools)).expect("allocate"),
        ));
    }
    assert_eq!(
        got,
        [
            "10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6", "10.8.0.1", "10.8.0.2"
        ]
    );
    // Round-robin: a released address is not the next one handed out...
    release(&store, "c6").expect("release");
    assert_eq!(
        addrs(&allocate(&store, &req("c7", &pools)).expect("allocate")),
        ["10.8.0.3"]
    );
    // ...and after a wrap the first pool's free address is found again.
    release(&store, "c1").expect("release");
    assert_eq!(
        addrs(&allocate(&store, &req("c8", &pools)).expect("allocate")),
        ["10.9.0.3"]
    );
}

#[test]
fn corrupt_lease_is_occupied_and_reported() {
    let dir = TestDir::new();
    let store = LeaseFiles::new(dir.path());
    let pools = vec![pool("10.1.0.0/24", None, Some("10.1.0.1"))];
    allocate(&store, &req("c0", &pools)).expect("creates the network's state");
    release(&store, "c0").expect("release");
    let bad = dir.path().join("networks/net/leases/10.1.0.3");
    std::fs::write(&bad, "{\"version\":1,\"network\":\"ne").expect("torn lease");
    // The cursor (10.1.0.2) makes .3 the next candidate: it is skipped.
    assert_eq!(
        addrs(&allocate(&store, &req("c1", &pools)).expect("allocate")),
        ["10.1.0.4"]
    );
    let want = Request {
        static_v4: Some(ip("10.1.0.3")),
        ..req("c2", &pools)
    };
    let msg = err(allocate(&store, &want));
    assert!(
        msg.starts_with("10.1.0.3 on network net is blocked by the unreadable lease file"),
        "{msg}"
    );
    assert!(msg.contains(&bad.display().to_string()), "{msg}");
    assert_eq!(
        all_leases(&store),
        [
            "net c1 10.1.0.4".to_string(),
            format!("corrupt {}", bad.display())
        ]
    );
    // gc reports it but leaves it there.
    assert!(gc(&store, false).expect("gc").is_empty());
    assert!(bad.exists());
    // Unless it dates from before this boot: then a power cut tore it, and its owner died.
    let status = Command::new("touch").args(["-d", "@1"]).arg(&bad).status();
    assert!(status.expect("touch").success());
    assert!(gc(&store, false).expect("gc").is_empty());
    assert!(!bad.exists(), "pre-boot unreadable lease must be removed");
    assert_eq!(all_leases(&store), ["net c1 10.1.0.4".to_string()]);
}

#[test]
fn leftover_temp_file_is_ignored_and_collected() {
    let dir = TestDir::new();
    let store = LeaseFiles::new(dir.path());
    let pools = dual();
    allocate(&store, &req("c1", &pools)).expect("allocate");
    let tmp = dir.path().join("networks/net/leases/.tmp-999999-0");
    std::fs::write(&tmp, "{\"version\":1,").expect("killed writer's temp file");
    assert_eq!(all_leases(&store).len(), 2);
    assert_eq!(
        addrs(&allocate(&store, &req("c2", &pools)).expect("allocate")),
        ["10.1.0.3", "fd00::3"]
    );
    gc(&store, true).expect("dry run");
    assert!(tmp.exists(), "dry run changes nothing");
    gc(&store, false).expect("gc");
    assert!(!tmp.exists());
}

#[test]
fn a_full_network_collects_dead_owners_before_giving_up() {
    let dir = TestDir::new();
    let store = LeaseFiles::new(dir.path());
    let pools = vec![pool("10.9.1.0/30", None, Some("10.9.1.1"))];
    let dead = dead_owner();
    let crashed = Request {
        owner: dead,
        ..req("crashed", &pools)
    };
    assert_eq!(
        addrs(&allocate(&store, &crashed).expect("only address")),
        ["10.9.1.2"]
    );
    // The crashed container never released; the next one still gets the address.
    assert_eq!(
        addrs(&allocate(&store, &req("next", &pools)).expect("collected")),
        ["10.9.1.2"]
    );
    // A live (or unknown) holder is never collected: the network is really full.
    assert!(err(allocate(&store, &req("third", &pools))).contains("no free IPv4 address"));
}

/// A restart under the same id on a full network: the collection of dead owners makes room
/// but spares the lease the container keeps (its recorded owner is the dead old process).
#[test]
fn restart_on_a_full_network_keeps_its_own_lease() {
    let dir = TestDir::new();
    let store = LeaseFiles::new(dir.path());
    let pools = vec![
        pool("10.9.1.0/30", None, Some("10.9.1.1")),
        pool("fd00::/64", None, None),
    ];
    let dead = dead_owner();
    let v6_only = Request {
        want_v4: false,
        owner: dead.clone(),
        ..req("c0", &pools)
    };
    assert_eq!(addrs(&allocate(&store, &v6_only).expect("c0")), ["fd00::1"]);
    let other = Request {
        owner: dead,
        ..req("c1", &pools)
    };
    assert_eq!(
        addrs(&allocate(&store, &other).expect("c1")),
        ["10.9.1.2", "fd00::2"]
    );
    let me = Owner::of_pid(std::process::id()).expect("own stat");
    let restart = Request {
        owner: me.clone(),
        ..req("c0", &pools)
    };
    let got = allocate(&store, &restart).expect("restart collects c1");
    assert_eq!(addrs(&got), ["10.9.1.2", "fd00::1"]);
    assert!(got.iter().all(|l| l.owner == me));
    assert_eq!(all_leases(&store), ["net c0 10.9.1.2", "net c0 fd00::1"]);
}

#[test]
fn a_failed_allocation_restores_the_kept_leases_owner() {
    let dir = TestDir::new();
    let store = LeaseFiles::new(dir.path());
    let pools = dual();
    let dead = dead_owner();
    let v6_only = Request {
        want_v4: false,
        owner: dead.clone(),
        ..req("c0", &pools)
    };
    allocate(&store, &v6_only).expect("c0");
    let holder = Request {
        want_v6: false,
        static_v4: Some(ip("10.1.0.9")),
        ..req("holder", &pools)
    };
    allocate(&store, &holder).expect("holder");
    let clash = Request {
        static_v4: Some(ip("10.1.0.9")),
        owner: Owner::of_pid(std::process::id()).expect("own stat"),
        ..req("c0", &pools)
    };
    assert!(err(allocate(&store, &clash)).starts_with("10.1.0.9 is leased to container holder"));
    let c0: Vec<Lease> = leases(&store, None)
        .expect("leases")
        .into_iter()
        .filter_map(|e| match e {
            LeaseEntry::Lease(l) if l.container == "c0" => Some(l),
            _ => None,
        })
        .collect();
    assert_eq!(addrs(&c0), ["fd00::2"]);
    assert_eq!(c0[0].owner, dead, "the old owner is back");
}

#[test]
fn gc_releases_dead_owners_only() {
    let dir = TestDir::new();
    let store = LeaseFiles::new(dir.path());
    let pools = dual();
    let dead = dead_owner();
    let alive = Owner::of_pid(std::process::id()).expect("own stat");
    allocate(
        &store,
        &Request {
            owner: dead,
            ..req("dead", &pools)
        },
    )
    .expect("dead");
    allocate(
        &store,
        &Request {
            owner: alive,
            ..req("alive", &pools)
        },
    )
    .expect("alive");
    allocate(&store, &req("unknown", &pools)).expect("no owner recorded");

    let found = gc(&store, true).expect("dry run");
    assert_eq!(
        found
            .iter()
            .map(|l| l.container.as_str())
            .collect::<Vec<_>>(),
        ["dead", "dead"]
    );
    assert_eq!(all_leases(&store).len(), 6, "dry run changes nothing");

    let released = gc(&store, false).expect("gc");
    assert_eq!(addrs(&released), ["10.1.0.2", "fd00::2"]);
    let left = all_leases(&store);
    assert_eq!(left.len(), 4);
    assert!(left.iter().all(|l| !l.contains("dead")), "{left:?}");
    assert!(!dir.path().join("networks/net/containers/dead").exists());
    assert!(gc(&store, false).expect("gc again").is_empty());
}

#[test]
fn names_are_checked_before_touching_the_filesystem() {
    let dir = TestDir::new();
    let state = dir.path().join("state");
    let store = LeaseFiles::new(&state);
    let pools = dual();
    for bad in ["", ".", "..", "a/b", "a\0b"] {
        assert!(err(allocate(&store, &req(bad, &pools))).starts_with("invalid container id"));
        assert!(release(&store, bad).is_err());
        assert!(
            err(allocate(
                &store,
                &Request {
                    network: bad,
                    ..req("c", &pools)
                }
            ))
            .starts_with("invalid network name")
        );
    }
    assert!(!state.exists());
}

#[test]
fn leases_of_one_network_and_remove_network() {
    let dir = TestDir::new();
    let store = LeaseFiles::new(dir.path());
    let pools = dual();
    allocate(&store, &req("c1", &pools)).expect("net");
    allocate(
        &store,
        &Request {
            network: "other",
            ..req("c1", &pools)
        },
    )
    .expect("other");
    assert_eq!(leases(&store, Some("other")).expect("other").len(), 2);
    assert!(
        leases(&store, Some("typo"))
            .expect("unknown network")
            .is_empty()
    );
    assert!(
        !dir.path().join("networks/typo").exists(),
        "listing creates nothing"
    );
    remove_network(&store, "other").expect("remove");
    assert_eq!(all_leases(&store), ["net c1 10.1.0.2", "net c1 fd00::2"]);
    assert_eq!(release(&store, "c1").expect("release").len(), 2);
}

/// Allocations of one container each, from separate store instances (separate lock file
/// descriptions), so only the flock keeps them apart.
fn allocate_many(state: &std::path::Path, prefix: &str, n: usize) -> Vec<IpAddr> {
    let store = LeaseFiles::new(state);
    let pools = vec![pool("10.5.0.0/24", None, Some("10.5.0.1"))];
    (0..n)
        .flat_map(|i| {
            let id = format!("{prefix}-{i}");
            allocate(&store, &req(&id, &pools)).expect("concurrent allocate")
        })
        .map(|l| l.address)
        .collect()
}

fn assert_unique(state: &std::path::Path, expect: usize) {
    let all = leases(&LeaseFiles::new(state), None).expect("leases");
    let set: HashSet<IpAddr> = all
        .iter()
        .map(|e| match e {
            LeaseEntry::Lease(l) => l.address,
            LeaseEntry::Corrupt { path, reason } => {
                panic!("corrupt {}: {reason}", path.display())
            }
        })
        .collect();
    assert_eq!(all.len(), expect);
    assert_eq!(set.len(), expect, "duplicate addresses");
}

#[test]
fn concurrent_threads_never_share_an_address() {
    let dir = TestDir::new();
    let got: Vec<IpAddr> = std::thread::scope(|s| {
        let a = s.spawn(|| allocate_many(dir.path(), "a", 100));
        let b = s.spawn(|| allocate_many(dir.path(), "b", 100));
        [a, b]
            .into_iter()
            .flat_map(|t| t.join().expect("allocating thread"))
            .collect()
    });
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), 200);
    assert_unique(dir.path(), 200);
}

const CHILD_ENV: &str = "IPVLAN_HOOK_IPAM_TEST_STATE";
const CHURN_ENV: &str = "IPVLAN_HOOK_IPAM_TEST_CHURN";

/// The worker of the multi-process tests, which run it (`spawn_child`) with CHILD_ENV set:
/// ignored in a normal run, and it fails when run without its parent. Allocates 100 times, or
/// with CHURN_ENV allocates and releases until it is killed.
#[test]
#[ignore = "helper process of the multi-process tests, run by them"]
fn child_allocates() {
    let state = std::env::var_os(CHILD_ENV)
        .expect("child_allocates runs only as the helper process of the multi-process tests");
    let state = std::path::Path::new(&state);
    let prefix = format!("p{}", std::process::id());
    if std::env::var_os(CHURN_ENV).is_none() {
        allocate_many(state, &prefix, 100);
        return;
    }
    let store = LeaseFiles::new(state);
    let pools = dual();
    for i in 0.. {
        let id = format!("{prefix}-{i}");
        allocate(&store, &req(&id, &pools)).expect("churn allocate");
        if i % 2 == 0 {
            release(&store, &id).expect("churn release");
        }
    }
}

fn spawn_child(state: &std::path::Path, churn: bool) -> std::process::Child {
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = Command::new(exe);
    cmd.args([
        "--ignored",
        "--exact",
        "ipam::tests::child_allocates",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, state)
    .stdout(std::process::Stdio::null());
    if churn {
        cmd.env(CHURN_ENV, "1");
    }
    cmd.spawn().expect("spawn test binary")
}

#[test]
fn concurrent_processes_never_share_an_address() {
    let dir = TestDir::new();
    let children: Vec<_> = (0..2).map(|_| spawn_child(dir.path(), false)).collect();
    for mut child in children {
        assert!(
            child.wait().expect("wait").success(),
            "child allocation failed"
        );
    }
    assert_unique(dir.path(), 200);
}

/// SIGKILL at arbitrary instants of allocate/release (a hook timeout does that): no torn
/// or unreachable lease is left, and gc clears the temp files.
#[test]
fn sigkill_at_any_instant_leaves_consistent_state() {
    let dir = TestDir::new();
    for round in 0..12u64 {
        let mut child = spawn_child(dir.path(), true);
        std::thread::sleep(std::time::Duration::from_millis(30 + round * 7 % 40));
        child.kill().expect("kill");
        child.wait().expect("reap");
    }
    let net = dir.path().join("networks/net");
    let entries = leases(&LeaseFiles::new(dir.path()), None).expect("leases");
    assert!(!entries.is_empty(), "the children got to allocate");
    for entry in &entries {
        let LeaseEntry::Lease(l) = entry else {
            panic!("torn lease: {entry:?}");
        };
        let index = std::fs::read_to_string(net.join("containers").join(&l.container))
            .expect("every lease has an index");
        assert!(
            index.contains(&format!("\"{}\"", l.address)),
            "{index} lacks {}",
            l.address
        );
    }
    gc(&LeaseFiles::new(dir.path()), false).expect("gc");
    for sub in ["", "leases", "containers"] {
        for e in std::fs::read_dir(net.join(sub)).expect("read dir") {
            let name = e.expect("entry").file_name();
            assert!(
                !name.to_string_lossy().starts_with('.'),
                "{name:?} left after gc"
            );
        }
    }
    assert_eq!(
        leases(&LeaseFiles::new(dir.path()), None)
            .expect("leases")
            .len(),
        entries.len()
    );
}

/// Counts the store calls an allocation makes, to check the cost does not grow with the
/// number of leases (the benchmark: 60,000 leases in a /16 may cost at most 1.5x zero).
struct Counting<'a> {
    inner: &'a dyn LeaseStore,
    calls: std::cell::Cell<usize>,
}

struct CountingNet<'a> {
    inner: Box<dyn NetworkLeases + 'a>,
    calls: &'a std::cell::Cell<usize>,
}

impl LeaseStore for Counting<'_> {
    fn lock(&self, network: &str) -> Result<Box<dyn NetworkLeases + '_>> {
        Ok(Box::new(CountingNet {
            inner: self.inner.lock(network)?,
            calls: &self.calls,
        }))
    }
    fn networks(&self) -> Result<Vec<String>> {
        self.inner.networks()
    }
    fn remove_network(&self, network: &str) -> Result<()> {
        self.inner.remove_network(network)
    }
}

impl NetworkLeases for CountingNet<'_> {
    fn is_free(&self, addr: IpAddr) -> Result<bool> {
        self.calls.set(self.calls.get() + 1);
        self.inner.is_free(addr)
    }
    fn get(&self, addr: IpAddr) -> Result<Slot> {
        self.calls.set(self.calls.get() + 1);
        self.inner.get(addr)
    }
    fn create(&mut self, lease: &Lease) -> Result<bool> {
        self.inner.create(lease)
    }
    fn replace(&mut self, lease: &Lease) -> Result<()> {
        self.inner.replace(lease)
    }
    fn remove(&mut self, lease: &Lease) -> Result<()> {
        self.inner.remove(lease)
    }
    fn of_container(&self, container: &str) -> Result<Vec<Lease>> {
        self.inner.of_container(container)
    }
    fn list(&self) -> Result<Vec<LeaseEntry>> {
        panic!("allocation and release must not list the leases")
    }
    fn taken(&self) -> Result<Taken> {
        self.calls.set(self.calls.get() + 1);
        self.inner.taken()
    }
    fn cursor(&self, pool: &ipnetwork::IpNetwork) -> Option<IpAddr> {
        self.inner.cursor(pool)
    }
    fn set_cursor(&mut self, pool: &ipnetwork::IpNetwork, last: IpAddr) {
        self.inner.set_cursor(pool, last)
    }
    fn tidy(&mut self) -> Result<()> {
        self.inner.tidy()
    }
}

fn counting(files: &LeaseFiles) -> Counting<'_> {
    Counting {
        inner: files,
        calls: std::cell::Cell::new(0),
    }
}

#[test]
fn cost_does_not_grow_with_the_number_of_leases() {
    let dir = TestDir::new();
    let files = LeaseFiles::new(dir.path());
    let store = counting(&files);
    let pools = vec![pool("10.6.0.0/16", None, Some("10.6.0.1"))];
    for i in 0..300 {
        store.calls.set(0);
        allocate(&store, &req(&format!("c{i}"), &pools)).expect("allocate");
        assert_eq!(
            store.calls.get(),
            1,
            "allocation {i} looked at more than one address"
        );
    }
    // Release by container id reads its index, nothing else (Counting panics on list).
    assert_eq!(release(&store, "c100").expect("release").len(), 1);
    // Idempotent allocate: no address lookups beyond the container's own.
    store.calls.set(0);
    allocate(&store, &req("c5", &pools)).expect("again");
    assert_eq!(store.calls.get(), 0);
}

#[test]
fn a_lost_cursor_costs_one_listing_not_a_lookup_per_lease() {
    let dir = TestDir::new();
    let files = LeaseFiles::new(dir.path());
    let store = counting(&files);
    let pools = vec![pool("10.6.0.0/16", None, Some("10.6.0.1"))];
    for i in 0..100 {
        allocate(&store, &req(&format!("c{i}"), &pools)).expect("allocate");
    }
    std::fs::remove_file(dir.path().join("networks/net/cursor-10.6.0.0_16")).expect("cursor");
    store.calls.set(0);
    let got = allocate(&store, &req("late", &pools)).expect("allocate");
    // .1 is the gateway, .2 to .101 are taken.
    assert_eq!(addrs(&got), ["10.6.0.102"]);
    assert_eq!(
        store.calls.get(),
        LIST_AFTER + 1,
        "lookups, then one listing"
    );
}

pub mod test_dir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A fresh directory under the system temp dir, removed again on drop.
    pub struct TestDir(PathBuf);

    impl TestDir {
        pub fn new() -> TestDir {
            static N: AtomicU64 = AtomicU64::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let name = format!(
                "ipvlan-hook-test-{}-{}-{nanos}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            );
            let path = std::env::temp_dir().join(name);
            std::fs::create_dir_all(&path).expect("create test dir");
            TestDir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
