//! SIGKILL at random instants: a runtime's hook timeout, the OOM killer, a node going down.
//! Hundreds of kills during setup and teardown, then the invariants: every lease file parses, no
//! address is leased or configured twice, and `gc` brings the state back to exactly the live
//! containers.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::time::{Duration, Instant};

use common::rng::{Rng, clock_seed, env_u64};
use common::*;

fn run_killed(host: &Host, stage: &str, state: &str, after: Duration) {
    let mut child = host.spawn_oci_hook(stage, state);
    std::thread::sleep(after);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn sigkill_at_random_instants_keeps_every_invariant() {
    if !host_only("sigkill_at_random_instants_keeps_every_invariant") {
        return;
    }
    let rounds: u64 = 300;
    let seed = env_u64("IPVLAN_CRASH_SEED").unwrap_or_else(clock_seed);
    eprintln!("crash test seed {seed} (IPVLAN_CRASH_SEED={seed} replays it)");
    let mut rng = Rng(seed);
    let host = Host::with_network(
        "crash",
        &["--subnet", "10.86.0.0/22", "--subnet", "fd00:86::/64"],
    );
    // Calibrate: how long one full setup takes here, so kills land inside it.
    let probe = Ns::new();
    let t = Instant::now();
    assert_ok("probe setup", &host.create("probe", &probe, ON_NET));
    let span = (t.elapsed().as_micros() as usize).max(1000) * 3 / 2;

    let mut containers: BTreeMap<String, Ns> = BTreeMap::new();
    containers.insert("probe".into(), probe);
    for i in 0..rounds {
        let id = format!("k{i}");
        let ns = Ns::new();
        let state = state_json(&id, Some(ns.pid()), host.dir(), ON_NET);
        run_killed(
            &host,
            "createRuntime",
            &state,
            Duration::from_micros(rng.below(span) as u64),
        );
        containers.insert(id.clone(), ns);
        // Now and then a teardown, killed too, of a container that stopped.
        if rng.below(3) == 0 {
            let victim = containers
                .keys()
                .nth(rng.below(containers.len()))
                .unwrap()
                .clone();
            containers.remove(&victim);
            let state = state_json(&victim, None, host.dir(), ON_NET);
            run_killed(
                &host,
                "poststop",
                &state,
                Duration::from_micros(rng.below(span) as u64),
            );
        }
    }

    // Every lease file parses.
    let ls = host.hook(&["lease", "ls", "--format", "json"]);
    assert!(
        !text(&ls.stderr).contains("unreadable"),
        "torn lease file: {}",
        text(&ls.stderr)
    );
    // No address is configured in two containers, and every configured address is leased to
    // the container that has it.
    let leases: Vec<serde_json::Value> = serde_json::from_str(&text(&ls.stdout)).unwrap();
    let leased: BTreeMap<String, String> = leases
        .iter()
        .map(|l| {
            (
                l["address"].as_str().unwrap().to_string(),
                l["container"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(leased.len(), leases.len(), "an address is leased twice");
    let mut seen = BTreeSet::new();
    let mut configured = 0;
    for (id, ns) in &containers {
        if ns.try_sh("ip -o -4 addr show dev eth0 | grep -q inet") {
            configured += 1;
        }
        for addr in ns
            .sh("ip -o addr show scope global | awk '{print $4}' | cut -d/ -f1")
            .lines()
        {
            assert!(
                seen.insert(addr.to_string()),
                "{addr} configured in two containers"
            );
            assert_eq!(
                leased.get(addr),
                Some(id),
                "{addr} in {id} is not leased to it"
            );
        }
    }
    // The kills must really have landed inside setups, or this test proves nothing.
    let leased_containers: BTreeSet<&String> = leased.values().collect();
    eprintln!(
        "{rounds} killed setups: {configured} of {} live containers fully configured, {} holding leases",
        containers.len(),
        leased_containers.len()
    );
    assert!(
        configured < containers.len(),
        "no kill landed inside a setup"
    );
    // gc: exactly the live containers keep leases.
    host.ok(&["gc"]);
    let after: Vec<serde_json::Value> =
        serde_json::from_str(&host.ok(&["lease", "ls", "--format", "json"])).unwrap();
    for l in &after {
        let owner = l["container"].as_str().unwrap();
        assert!(
            containers.contains_key(owner),
            "gc kept the lease of dead container {owner}"
        );
    }
    drop(containers);
    host.ok(&["gc"]);
    assert_eq!(host.lease_count(), 0, "gc left leases of dead containers");
}

#[test]
fn the_hook_leaves_no_process_holding_the_runtimes_pipes() {
    let host = Host::with_network("pipes", &["--subnet", "10.87.0.0/24"]);
    let ctr = Ns::new();
    for (stage, pid) in [("createRuntime", Some(ctr.pid())), ("poststop", None)] {
        let mut child = host.spawn_oci_hook(stage, &state_json("c", pid, host.dir(), ON_NET));
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        assert!(child.wait().unwrap().success());
        // Once the hook has exited, both pipes must be at EOF at once: a grandchild holding
        // them would make runc and podman wait for it (runtimes.md, section 2.4).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
            let _ = err.read_to_end(&mut sink);
            let _ = tx.send(());
        });
        assert!(
            rx.recv_timeout(Duration::from_secs(5)).is_ok(),
            "{stage}: pipes still held open after exit"
        );
    }
}
