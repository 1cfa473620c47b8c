//! Many hooks at once on one network: distinct addresses, no errors, nothing left; and locks
//! that are per network, so networks never serialise each other.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;

fn host(tag: &str, networks: &[(&str, &str)]) -> Arc<Host> {
    let host = Host::with_parent(tag);
    for (name, subnet) in networks {
        host.ok(&network_create(name, "p0", &["--subnet", subnet]));
    }
    Arc::new(host)
}

/// Run `f(i)` on `n` threads released at the same instant.
fn all_at_once<T: Send + 'static>(
    n: usize,
    f: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(n));
    let f = Arc::new(f);
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, f) = (barrier.clone(), f.clone());
            std::thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn sixty_four_setups_and_teardowns_at_once() {
    if !host_only("sixty_four_setups_and_teardowns_at_once") {
        return;
    }
    let host = host("c64", &[("net", "10.88.0.0/24")]);
    let containers: Arc<Vec<Ns>> = Arc::new((0..64).map(|_| Ns::new()).collect());
    let (h, c) = (host.clone(), containers.clone());
    let outs = all_at_once(64, move |i| h.create(&format!("c{i}"), &c[i], ON_NET));
    for (i, out) in outs.iter().enumerate() {
        assert!(out.status.success(), "setup c{i}: {}", text(&out.stderr));
    }
    let addrs: BTreeSet<String> = containers
        .iter()
        .map(|ns| ns.sh("ip -o -4 addr show dev eth0 | awk '{print $4}'"))
        .collect();
    assert_eq!(addrs.len(), 64, "addresses are not distinct: {addrs:?}");
    assert_eq!(host.lease_count(), 64);

    let h = host.clone();
    let outs = all_at_once(64, move |i| h.poststop(&format!("c{i}"), ON_NET));
    for (i, out) in outs.iter().enumerate() {
        assert!(out.status.success(), "teardown c{i}: {}", text(&out.stderr));
    }
    assert_eq!(host.lease_count(), 0);
}

#[test]
fn interleaved_setups_and_teardowns_keep_the_invariants() {
    if !host_only("interleaved_setups_and_teardowns_keep_the_invariants") {
        return;
    }
    let secs = 60;
    let host = host("soak", &[("net", "10.89.0.0/26")]);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let h = host.clone();
    let rounds = all_at_once(8, move |worker| {
        let mut n = 0;
        while Instant::now() < deadline {
            let id = format!("w{worker}-{n}");
            let ns = Ns::new();
            let out = h.create(&id, &ns, ON_NET);
            assert!(out.status.success(), "setup {id}: {}", text(&out.stderr));
            let addr = ns.sh("ip -o -4 addr show dev eth0 | awk '{print $4}'");
            assert!(addr.starts_with("10.89.0."), "{id}: {addr}");
            drop(ns);
            let out = h.poststop(&id, ON_NET);
            assert!(out.status.success(), "teardown {id}: {}", text(&out.stderr));
            n += 1;
        }
        n
    });
    let ls = host.hook(&["lease", "ls"]);
    assert!(text(&ls.stderr).is_empty(), "{}", text(&ls.stderr));
    assert_eq!(host.lease_count(), 0);
    eprintln!(
        "{} setup/teardown pairs in {secs} s on 8 workers",
        rounds.iter().sum::<usize>()
    );
}

#[test]
fn a_busy_network_does_not_hold_up_another() {
    let host = host("locks", &[("a", "10.90.0.0/24"), ("b", "10.91.0.0/24")]);
    let a = Ns::new();
    assert_ok(
        "first",
        &host.create("first", &a, &[("ipvlan.network", "a")]),
    );
    // Hold network a's lock, as a slow or stuck hook would.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(host.state.join("networks/a/lock"))
        .unwrap();
    lock.lock().unwrap();
    let b = Ns::new();
    let out = host.create("on-b", &b, &[("ipvlan.network", "b")]);
    assert!(
        out.status.success(),
        "network b waited for network a: {}",
        text(&out.stderr)
    );
    let c = Ns::new();
    let h = host.clone();
    let waiting = std::thread::spawn(move || h.create("on-a", &c, &[("ipvlan.network", "a")]));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !waiting.is_finished(),
        "network a's lock did not exclude a second writer"
    );
    drop(lock);
    let out = waiting.join().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}
