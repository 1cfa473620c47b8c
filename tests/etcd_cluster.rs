//! The etcd lease store on a real three-member etcd cluster (Debian's etcd-server, TLS with
//! client certificates, etcd's default timings) while members die and one is partitioned away:
//! three simulated hosts (own namespace, config and state dirs, host id) share one `--ipam
//! etcd` network. Run by tests/all.sh as `cargo test --features etcd --test etcd_cluster`
//! (about 70 s).
//!
//! Partition method: member 3 runs in a network namespace of its own, joined to the namespace
//! of members 1 and 2 by a veth pair that carries only peer traffic; nftables drop rules on
//! that veth (input and output, in the namespace of members 1 and 2) cut it off silently, and
//! deleting the table heals it. Hosts keep reaching member 3's client port through the tests'
//! forwarder, so a host configured with member 3 alone is cut off from the majority. See
//! `Cluster` in tests/common/etcd.rs. Every byte stays in namespaces the test creates.
//!
//! The members run with etcd's default timings (heartbeat 100 ms, election timeout 1 s);
//! IPVLAN_ETCD_ELECTION_MS=2000 runs them as a cluster tuned for a slower network (heartbeat
//! 200 ms), whose elections take 2-4 s: the client before the election ride-through refused
//! setups and teardowns there ("no answer within 833 ms").
#![cfg(feature = "etcd")]

mod common;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use common::etcd::*;
use common::rng::Rng;
use common::*;
use ipvlan_hook::etcd::config::EtcdConfig;
use ipvlan_hook::ipam::{EtcdStore, LeaseEntry};

const SUBNET: &str = "10.83.0.0/24";

/// A runtime's hook timeout, as hooks/*.json set it: no setup may take longer.
const HOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// A host configured for the cluster as `id`, talking to `members` in that order, with network
/// `net` on SUBNET.
fn cluster_host(cluster: &mut Cluster, id: &str, members: &[usize]) -> Host {
    let host = Host::with_parent(id);
    cluster.serve_in(&host.ns);
    std::fs::create_dir_all(&host.config).expect("config dir");
    std::fs::write(host.config.join("etcd.json"), cluster.config(id, members)).expect("etcd.json");
    host.ok(&network_create(
        "net",
        "p0",
        &["--subnet", SUBNET, "--ipam", "etcd"],
    ));
    host
}

/// Every lease in etcd, read directly (not through a hook): (host, container, address).
fn etcd_leases(host: &Host) -> HashSet<(String, String, IpAddr)> {
    let cfg = EtcdConfig::load(&host.config).expect("etcd.json");
    let ns = std::fs::File::open(host.ns.netns_path()).expect("netns");
    in_ns(&ns, || {
        EtcdStore::new(&cfg, &host.state)
            .expect("store")
            .all_leases(Some("net"))
            .expect("read etcd")
            .into_iter()
            .map(|(h, e)| match e {
                LeaseEntry::Lease(l) => (h.unwrap_or_default(), l.container, l.address),
                LeaseEntry::Corrupt { path, reason } => {
                    panic!("corrupt lease {}: {reason}", path.display())
                }
            })
            .collect()
    })
}

/// After each fault: no address held by two containers, every running container holds the
/// lease of its address, etcd holds nothing else, and `lease ls` on every host says the same.
fn check_invariants(hosts: &[Host], live: &[(usize, String, IpAddr)], when: &str) {
    check_invariants_on(hosts, &hosts.iter().collect::<Vec<_>>(), live, when)
}

/// `check_invariants`, asking `lease ls` of `ask` only (hosts that can reach a majority).
fn check_invariants_on(
    hosts: &[Host],
    ask: &[&Host],
    live: &[(usize, String, IpAddr)],
    when: &str,
) {
    let mut addrs = HashSet::new();
    for (_, id, addr) in live {
        assert!(
            addrs.insert(*addr),
            "{when}: {addr} is on two containers ({id})"
        );
    }
    let want: HashSet<(String, String, IpAddr)> = live
        .iter()
        .map(|(h, id, a)| (format!("h{}", h + 1), id.clone(), *a))
        .collect();
    let in_etcd = etcd_leases(&hosts[0]);
    assert_eq!(
        in_etcd, want,
        "{when}: etcd holds other leases than the running containers"
    );
    for host in ask {
        let seen: HashSet<(String, String, IpAddr)> = leases(host)
            .into_iter()
            .map(|(c, a, h)| (h, c, a))
            .collect();
        assert_eq!(
            seen, in_etcd,
            "{when}: lease ls on a host disagrees with etcd"
        );
    }
}

/// One setup or teardown a stream made.
struct Step {
    host: usize,
    id: String,
    setup: bool,
    started: Instant,
    took: Duration,
    out: Output,
}

/// 1. Three hosts set containers up and tear them down in parallel, without pause, while a
///    random member is SIGKILLed at a random moment and restarted, then the leader is, then
///    another random member. A majority is always up, so nothing may be refused: every setup
///    and teardown succeeds, each within the runtime's hook timeout, riding through the
///    elections. After each restart, and at the end: no address twice, every running
///    container holds its lease, nothing else is in etcd, `lease ls` agrees on every host.
///    Prints setup median and p99 with all members up and with one down.
#[test]
fn a_member_or_the_leader_killed_never_refuses_a_setup() {
    let mut rng = Rng::from_env();
    let mut cluster = Cluster::start();
    let hosts: Vec<Host> = (0..3)
        .map(|h| {
            // Each host lists the members in another order: each prefers another member.
            let order: Vec<usize> = (0..MEMBERS).map(|i| (h + i) % MEMBERS).collect();
            cluster_host(&mut cluster, &format!("h{}", h + 1), &order)
        })
        .collect();
    let stop = AtomicBool::new(false);
    // Pauses the streams while the invariants are checked.
    let gate = RwLock::new(());
    let live: Mutex<Vec<(usize, String, IpAddr)>> = Mutex::new(Vec::new());
    // Every refused setup or teardown, as it happens (none is allowed).
    let refused: Mutex<Vec<String>> = Mutex::new(Vec::new());
    // (start, end) of each time a member was down.
    let mut down: Vec<(Instant, Instant, usize, bool)> = Vec::new();
    let steps: Vec<Step> = std::thread::scope(|s| {
        let streams: Vec<_> = (0..3)
            .map(|h| {
                let (hosts, stop, gate, live, refused) = (&hosts, &stop, &gate, &live, &refused);
                s.spawn(move || {
                    let host = &hosts[h];
                    let mut steps = Vec::new();
                    let mut mine: VecDeque<(String, Ns)> = VecDeque::new();
                    let mut i = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let ctr = Ns::new();
                        let id = format!("c{i}");
                        i += 1;
                        let _g = gate.read().expect("gate");
                        let started = Instant::now();
                        let out = host.create(&id, &ctr, ON_NET);
                        let took = started.elapsed();
                        if out.status.success() {
                            let addr = address(&ctr).expect("set up, so it has an address");
                            live.lock().expect("live").push((h, id.clone(), addr));
                            mine.push_back((id.clone(), ctr));
                        } else {
                            refused.lock().expect("refused").push(format!(
                                "setup of {id} on h{} after {took:?}: {}",
                                h + 1,
                                text(&out.stderr).trim()
                            ));
                        }
                        steps.push(Step {
                            host: h,
                            id,
                            setup: true,
                            started,
                            took,
                            out,
                        });
                        if mine.len() > 4 {
                            let (id, ctr) = mine.pop_front().expect("one");
                            drop(ctr); // the container exits, then the runtime calls poststop
                            let started = Instant::now();
                            let out = host.poststop(&id, ON_NET);
                            let took = started.elapsed();
                            if out.status.success() {
                                live.lock()
                                    .expect("live")
                                    .retain(|l| !(l.0 == h && l.1 == id));
                            } else {
                                refused.lock().expect("refused").push(format!(
                                    "teardown of {id} on h{} after {took:?}: {}",
                                    h + 1,
                                    text(&out.stderr).trim()
                                ));
                            }
                            steps.push(Step {
                                host: h,
                                id,
                                setup: false,
                                started,
                                took,
                                out,
                            });
                        }
                    }
                    // Kept running for the final check; torn down by the test afterwards.
                    (steps, mine)
                })
            })
            .collect();
        let check = |when: &str| {
            let _g = gate.write().expect("gate");
            let refused = refused.lock().expect("refused");
            if !refused.is_empty() {
                stop.store(true, Ordering::SeqCst);
                panic!("{when}: refused while a majority was up: {refused:#?}");
            }
            check_invariants(&hosts, &live.lock().expect("live"), when);
        };
        std::thread::sleep(Duration::from_secs(3));
        check("all members up");
        let victims = [
            (rng.below(MEMBERS), false),
            (usize::MAX, true),
            (rng.below(MEMBERS), false),
        ];
        for (victim, leader) in victims {
            std::thread::sleep(rng.millis(500, 2000));
            let m = if leader { cluster.leader() } else { victim };
            let was_leader = cluster.leader() == m;
            let from = Instant::now();
            cluster.kill(m);
            std::thread::sleep(rng.millis(3000, 5000));
            cluster.restart(m);
            down.push((from, Instant::now(), m, was_leader));
            check(&format!("member {} killed and restarted", m + 1));
        }
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::SeqCst);
        let mut steps = Vec::new();
        let mut running = Vec::new();
        for t in streams {
            let (s, m) = t.join().expect("stream");
            steps.extend(s);
            running.push(m);
        }
        check("the end");
        for (h, mine) in running.into_iter().enumerate() {
            for (id, ctr) in mine {
                drop(ctr);
                assert_ok("final teardown", &hosts[h].poststop(&id, ON_NET));
            }
        }
        steps
    });
    assert!(
        etcd_leases(&hosts[0]).is_empty(),
        "leases left after teardown"
    );

    if std::env::var_os("IPVLAN_TEST_TRACE").is_some() {
        for (from, to, m, _) in &down {
            for s in steps
                .iter()
                .filter(|s| s.started + s.took >= *from && s.started < *to)
            {
                eprintln!(
                    "member {} down: {} of {} on h{} at +{:?} took {:?}",
                    m + 1,
                    if s.setup { "setup" } else { "teardown" },
                    s.id,
                    s.host + 1,
                    s.started.saturating_duration_since(*from),
                    s.took
                );
            }
        }
    }
    let failed: Vec<String> = steps
        .iter()
        .filter(|s| !s.out.status.success())
        .map(|s| {
            format!(
                "{} of {} on h{} after {:?}: {}",
                if s.setup { "setup" } else { "teardown" },
                s.id,
                s.host + 1,
                s.took,
                text(&s.out.stderr).trim()
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "refused while a majority was up: {failed:#?}"
    );
    let slow: Vec<&Step> = steps.iter().filter(|s| s.took >= HOOK_TIMEOUT).collect();
    assert!(
        slow.is_empty(),
        "{} steps took the whole hook timeout",
        slow.len()
    );

    // A step overlapping a time a member was down counts as made with one member down.
    let during = |s: &Step| {
        down.iter()
            .any(|(from, to, _, _)| s.started + s.took >= *from && s.started < *to)
    };
    let (one_down, all_up): (Vec<&Step>, Vec<&Step>) =
        steps.iter().filter(|s| s.setup).partition(|s| during(s));
    let during_leader = |s: &Step| {
        down.iter().any(|(from, _, _, leader)| {
            *leader && s.started + s.took >= *from && s.started < *from + Duration::from_secs(3)
        })
    };
    let ms =
        |v: &[&Step], p| percentile(v.iter().map(|s| s.took).collect(), p).as_secs_f64() * 1000.0;
    let leader_window: Vec<&Step> = one_down
        .iter()
        .copied()
        .filter(|s| during_leader(s))
        .collect();
    assert!(!one_down.is_empty() && !all_up.is_empty());
    eprintln!(
        "etcd cluster: {} setups with all 3 members up: median {:.0} ms, p99 {:.0} ms; {} with one member down: median {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} of them overlapping the 3 s after the leader was killed: max {:.0} ms); {} teardowns; members killed: {:?}",
        all_up.len(),
        ms(&all_up, 50),
        ms(&all_up, 99),
        one_down.len(),
        ms(&one_down, 50),
        ms(&one_down, 99),
        ms(&one_down, 100),
        leader_window.len(),
        if leader_window.is_empty() {
            0.0
        } else {
            ms(&leader_window, 100)
        },
        steps.iter().filter(|s| !s.setup).count(),
        down.iter()
            .map(|d| (d.2 + 1, if d.3 { "leader" } else { "follower" }))
            .collect::<Vec<_>>()
    );
}

/// 2. Member 3 is partitioned away from members 1 and 2. Hosts h1 and h2 list member 3 first:
///    they ride past it to the majority, and every setup succeeds. Host h3 talks to member 3
///    alone, so it is cut off from the majority: its setup is refused in one line naming the
///    endpoint, leaving no link and no lease, and its teardown of a running container fails
///    the same way, keeping the lease. Once healed, h3 sets up again, its teardown goes
///    through, and etcd, `lease ls` on every host and the running containers agree throughout.
#[test]
fn a_host_cut_off_from_the_majority_is_refused_cleanly_and_recovers() {
    let mut cluster = Cluster::start();
    let orders: [&[usize]; 3] = [&[2, 0, 1], &[2, 1, 0], &[2]];
    let hosts: Vec<Host> = orders
        .iter()
        .enumerate()
        .map(|(h, order)| cluster_host(&mut cluster, &format!("h{}", h + 1), order))
        .collect();
    let mut live: Vec<(usize, String, IpAddr)> = Vec::new();
    let mut ctrs: HashMap<(usize, String), Ns> = HashMap::new();
    let mut up = |h: usize, id: &str, live: &mut Vec<(usize, String, IpAddr)>| -> Duration {
        let ctr = Ns::new();
        let start = Instant::now();
        let out = hosts[h].create(id, &ctr, ON_NET);
        let took = start.elapsed();
        assert_ok(&format!("setup of {id} on h{}", h + 1), &out);
        live.push((h, id.to_string(), address(&ctr).expect("address")));
        ctrs.insert((h, id.to_string()), ctr);
        took
    };
    for h in 0..3 {
        up(h, "before", &mut live);
    }
    check_invariants(&hosts, &live, "before the partition");

    cluster.partition();
    let mut rode = Vec::new();
    for i in 0..3 {
        for h in 0..2 {
            rode.push(up(h, &format!("during{i}"), &mut live));
        }
    }
    // h3: refused, one line, naming member 3's endpoint; nothing left behind.
    let refused = Ns::new();
    let start = Instant::now();
    let out = hosts[2].create("refused", &refused, ON_NET);
    let took = start.elapsed();
    assert!(
        !out.status.success(),
        "h3 cannot reach a majority, yet its setup succeeded"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("etcd at {} ", Cluster::endpoint(2))),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(took < HOOK_TIMEOUT, "took {took:?}");
    assert!(
        !refused.sh("ip -o link").contains("eth0"),
        "the refused setup left a link"
    );
    // h3's running container: its teardown fails clearly and its lease stays.
    let out = hosts[2].poststop("before", ON_NET);
    assert!(!out.status.success());
    let perr = text(&out.stderr);
    assert!(
        perr.contains("cannot release the leases of container before"),
        "{perr}"
    );
    assert_eq!(perr.trim().lines().count(), 1, "one line: {perr}");
    check_invariants_on(
        &hosts,
        &[&hosts[0], &hosts[1]],
        &live,
        "during the partition",
    );
    let out = hosts[2].hook(&["lease", "ls"]);
    let lerr = text(&out.stderr);
    assert!(
        !out.status.success() && lerr.trim().lines().count() == 1,
        "{lerr}"
    );

    cluster.heal();
    cluster.wait_ready(2);
    up(2, "after", &mut live);
    assert_ok(
        "teardown on h3 after healing",
        &hosts[2].poststop("before", ON_NET),
    );
    live.retain(|l| !(l.0 == 2 && l.1 == "before"));
    check_invariants(&hosts, &live, "after healing");
    let v: Vec<&Duration> = rode.iter().collect();
    eprintln!(
        "etcd partition: h1/h2 setups past the partitioned member (listed first): median {:.0} ms, max {:.0} ms; h3 refused after {:.1} s: {}",
        percentile(v.iter().map(|d| **d).collect(), 50).as_secs_f64() * 1000.0,
        percentile(v.iter().map(|d| **d).collect(), 100).as_secs_f64() * 1000.0,
        took.as_secs_f64(),
        err.trim()
    );
    for ((h, id), ctr) in ctrs {
        drop(ctr);
        if !(h == 2 && id == "before") {
            assert_ok("final teardown", &hosts[h].poststop(&id, ON_NET));
        }
    }
    assert!(etcd_leases(&hosts[0]).is_empty());
}

/// 3. `ipvlan-run` keeps its etcd client from setup to release: a command that runs longer
///    than the hook's whole time budget on etcd (8 s), with the leader killed and restarted
///    meanwhile, still gets its lease released when it ends (the budget counts only time spent
///    waiting for answers).
#[test]
fn a_launcher_outliving_the_budget_still_releases_its_lease() {
    let mut cluster = Cluster::start();
    let host = cluster_host(&mut cluster, "l1", &[0, 1, 2]);
    let child = host
        .run_cmd(&["--network", "net", "--name", "job", "--", "sleep", "10"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ipvlan-run");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(leases(&host).len(), 1, "the job's lease");
    let leader = cluster.leader();
    cluster.kill(leader);
    std::thread::sleep(Duration::from_secs(3));
    cluster.restart(leader);
    let out = child.wait_with_output().expect("ipvlan-run");
    assert_ok("ipvlan-run of a 10 s command", &out);
    assert!(
        etcd_leases(&host).is_empty(),
        "the job's lease was not released"
    );
}
