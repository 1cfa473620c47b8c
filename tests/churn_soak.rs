//! Churn soak: containers started and stopped one after another on 20 lease-file networks of
//! one host, with the faults a busy host sees: the hook SIGKILLed at a random instant of its
//! setup (a runtime's hook timeout), the container killed before its poststop, poststop never
//! called (the runtime died), and some containers kept running across many cycles. Then one
//! `gc`, and every invariant: the only leases left are those of running containers (matching
//! their addresses), no link is left outside them, and once they stop, the state dir holds
//! exactly the files it held before the churn. Prints the median setup time of the first and
//! the last tenth of the run, and the same for a control network with plain starts and stops
//! interleaved with the churn (its state never grows, so it shows how the machine's load
//! drifted): growth is printed, not asserted, since timing on a shared machine is not a
//! pass/fail matter.
//!
//! Length: 300 cycles by default (10-20 s). The long run is one variable away:
//! `IPVLAN_SOAK_CYCLES=10000 cargo test --test churn_soak -- --nocapture` (about 10 minutes
//! on the 2-core development VM). Random choices print their seed; IPVLAN_TEST_SEED repeats
//! them.

mod common;

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::rng::Rng;
use common::*;

const NETWORKS: usize = 20;
/// Containers kept running at a time.
const RUNNING: usize = 8;

fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                todo.push(e.path());
            } else {
                n += 1;
            }
        }
    }
    n
}

fn state(host: &Host, id: &str, net: &str, ctr: Option<&Ns>) -> String {
    state_json(id, ctr.map(Ns::pid), host.dir(), &[("ipvlan.network", net)])
}

#[test]
fn churn_with_random_kills_then_one_gc_leaves_nothing() {
    if !host_only("churn_with_random_kills_then_one_gc_leaves_nothing") {
        return;
    }
    let cycles: usize = std::env::var("IPVLAN_SOAK_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let mut rng = Rng::from_env();
    let host = Host::with_parent("soak");
    let nets: Vec<String> = (0..NETWORKS).map(|n| format!("n{n}")).collect();
    for (n, net) in nets.iter().enumerate() {
        host.ok(&[
            "network",
            "create",
            net,
            "--driver",
            driver(),
            "--parent",
            "p0",
            "--subnet",
            &format!("10.86.{n}.0/24"),
        ]);
    }
    // The control: a network with plain starts and stops only, whose state never grows. Its
    // setups run interleaved with the churn's, so the machine's load drifts alike for both:
    // growth of the churn's setup time beyond the control's is the churn's own.
    host.ok(&[
        "network",
        "create",
        "ctl",
        "--driver",
        driver(),
        "--parent",
        "p0",
        "--subnet",
        "10.86.200.0/24",
    ]);
    // A first container on each network makes the network's directories and lock, once.
    for net in nets.iter().chain([&"ctl".to_string()]) {
        let ctr = Ns::new();
        assert_ok(
            "warm-up",
            &host.oci_hook("createRuntime", &state(&host, "w", net, Some(&ctr))),
        );
        assert_ok(
            "warm-up",
            &host.oci_hook("poststop", &state(&host, "w", net, None)),
        );
    }
    let files_before = count_files(&host.state);
    let host_links_before = host.ns.sh("ip -o link | wc -l");

    let mut running: Vec<(String, String, Ns)> = Vec::new();
    let mut setups: Vec<Duration> = Vec::new();
    let mut control: Vec<Duration> = Vec::new();
    let mut kinds = [0usize; 5];
    let started = Instant::now();
    for i in 0..cycles {
        if i % 4 == 0 {
            let ctr = Ns::new();
            let t = Instant::now();
            let out = host.oci_hook("createRuntime", &state(&host, "ctl", "ctl", Some(&ctr)));
            control.push(t.elapsed());
            assert_ok("control setup", &out);
            assert_ok(
                "control poststop",
                &host.oci_hook("poststop", &state(&host, "ctl", "ctl", None)),
            );
        }
        let net = &nets[rng.below(NETWORKS)];
        let id = format!("s{i}");
        let ctr = Ns::new();
        let kind = match rng.below(10) {
            0 | 1 => 0, // hook SIGKILLed during setup
            2 => 1,     // container killed before poststop
            3 => 2,     // poststop never called
            4 | 5 => 3, // kept running
            _ => 4,     // a plain start and stop
        };
        kinds[kind] += 1;
        if kind == 0 {
            let mut child =
                host.spawn_oci_hook("createRuntime", &state(&host, &id, net, Some(&ctr)));
            std::thread::sleep(rng.millis(0, 40));
            let _ = child.kill();
            let _ = child.wait();
            // The runtime gives up on the container: no poststop after a failed createRuntime.
            continue;
        }
        let t = Instant::now();
        let out = host.oci_hook("createRuntime", &state(&host, &id, net, Some(&ctr)));
        setups.push(t.elapsed());
        assert_ok(&format!("setup of {id} on {net}"), &out);
        match kind {
            1 => {
                drop(ctr);
                assert_ok(
                    "poststop",
                    &host.oci_hook("poststop", &state(&host, &id, net, None)),
                );
            }
            2 => drop(ctr),
            3 => {
                running.push((net.clone(), id, ctr));
                if running.len() > RUNNING {
                    let (net, id, ctr) = running.remove(rng.below(running.len()));
                    drop(ctr);
                    assert_ok(
                        "poststop",
                        &host.oci_hook("poststop", &state(&host, &id, &net, None)),
                    );
                }
            }
            _ => {
                assert_ok(
                    "poststop",
                    &host.oci_hook("poststop", &state(&host, &id, net, None)),
                );
                drop(ctr);
            }
        }
    }
    let churn = started.elapsed();

    let out = host.ok(&["gc"]);
    let released = out.lines().filter(|l| l.starts_with("released")).count();
    // Setup times once gc collected the dead owners' leases, churn and control interleaved:
    // what the churn left behind that gc does not clean would show here.
    let mut after_gc = Vec::new();
    let mut control_after_gc = Vec::new();
    for i in 0..40 {
        for (net, times) in [
            (nets[i % NETWORKS].as_str(), &mut after_gc),
            ("ctl", &mut control_after_gc),
        ] {
            let ctr = Ns::new();
            let t = Instant::now();
            let out = host.oci_hook("createRuntime", &state(&host, "g", net, Some(&ctr)));
            times.push(t.elapsed());
            assert_ok("setup after gc", &out);
            assert_ok(
                "poststop",
                &host.oci_hook("poststop", &state(&host, "g", net, None)),
            );
        }
    }
    // The leases left are exactly those of the running containers, at their addresses.
    let want: HashSet<(String, IpAddr)> = running
        .iter()
        .map(|(_, id, ctr)| {
            (
                id.clone(),
                address(ctr).expect("a running container has its address"),
            )
        })
        .collect();
    let got: HashSet<(String, IpAddr)> =
        leases(&host).into_iter().map(|(c, a, _)| (c, a)).collect();
    assert_eq!(got, want, "leases after gc");
    // No link outside the running containers; each of them has its one.
    assert_eq!(
        host.ns.sh("ip -o link | wc -l"),
        host_links_before,
        "links on the host"
    );
    for (_, id, ctr) in &running {
        assert_eq!(
            ctr.sh("ip -o link | grep -c eth0").trim(),
            "1",
            "{id}'s link"
        );
    }
    for (net, id, ctr) in running.drain(..) {
        drop(ctr);
        assert_ok(
            "poststop",
            &host.oci_hook("poststop", &state(&host, &id, &net, None)),
        );
    }
    assert_eq!(host.lease_count(), 0);
    assert_eq!(
        count_files(&host.state),
        files_before,
        "files in the state dir"
    );

    // Median of the first and the last tenth, in ms.
    let ends = |v: &[Duration]| {
        let tenth = (v.len() / 10).max(1);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        (
            ms(median(v[..tenth].to_vec())),
            ms(median(v[v.len() - tenth..].to_vec())),
        )
    };
    let (first, last) = ends(&setups);
    let (ctl_first, ctl_last) = ends(&control);
    let ms = |v: &[Duration]| median(v.to_vec()).as_secs_f64() * 1000.0;
    let (gc_churn, gc_ctl) = (ms(&after_gc), ms(&control_after_gc));
    eprintln!(
        "churn soak: {cycles} cycles in {:.0} s on {NETWORKS} networks ({} hook SIGKILLs, {} containers killed before poststop, {} without poststop, {} kept running a while, {} plain); gc released {released}; median setup of the first tenth {first:.1} ms, of the last {last:.1} ms ({:+.0}%); control network, interleaved: {ctl_first:.1} ms, {ctl_last:.1} ms ({:+.0}%); churn relative to control: {:+.0}%; after gc: churn networks {gc_churn:.1} ms, control {gc_ctl:.1} ms",
        churn.as_secs_f64(),
        kinds[0],
        kinds[1],
        kinds[2],
        kinds[3],
        kinds[4],
        (last / first - 1.0) * 100.0,
        (ctl_last / ctl_first - 1.0) * 100.0,
        ((last / ctl_last) / (first / ctl_first) - 1.0) * 100.0
    );
}
