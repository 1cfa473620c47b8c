//! Route announcement (`network create --announce`, issue 15): the table follows the leases,
//! and real BIRD 2 daemons, with the configuration the packages ship, carry the routes to a
//! router. Two hosts and a router are network namespaces joined by veth links; each host has
//! an L3 ipvlan network (macvlan on a kernel without ipvlan, with the link to its containers
//! that host access gives it) and runs BIRD, and so does the router. The hosts have a default
//! route to the router, as hosts do; the router knows containers only from BGP.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::*;

const TABLE: &str = "251";

// The speakers' configurations as the packages ship them, built in: the VM has no checkout.
const BIRD_SNIPPET: &str = include_str!("../packaging/announce/bird.conf");
const FRR_SNIPPET: &str = include_str!("../packaging/announce/frr.conf");

/// A container on `host`'s network `net`, set up by the hook; returns it and its address.
fn container(host: &Host, id: &str) -> (Ns, String) {
    let ctr = Ns::new();
    assert_ok(
        &format!("createRuntime {id}"),
        &host.create(id, &ctr, ON_NET),
    );
    let addr = container_ip(&ctr, false);
    (ctr, addr)
}

fn poststop(host: &Host, id: &str) {
    assert_ok(&format!("poststop {id}"), &host.poststop(id, ON_NET));
}

/// The addresses in the host's announcement table, as `ip route` shows them.
fn table(host: &Host) -> String {
    // `ip -6` refuses to show a table without IPv6 routes.
    host.ns.sh(&format!(
        "ip -4 route show table {TABLE}; ip -6 route show table {TABLE} 2>/dev/null; true"
    ))
}

#[test]
fn routes_follow_leases_and_bad_tables_are_refused() {
    let host = Host::with_parent("ann-table");
    // Reserved tables, and one that holds another protocol's routes.
    for (table, says) in [
        ("254", "table main (254)"),
        ("255", "table local (255)"),
        ("253", "table default (253)"),
        ("0", "table unspec (0)"),
    ] {
        let out = host.hook(&network_create(
            "net",
            "p0",
            &["--subnet", "10.1.1.0/24", &format!("--announce={table}")],
        ));
        let err = text(&out.stderr);
        assert!(
            !out.status.success() && err.contains(says) && err.lines().count() == 1,
            "{err}"
        );
    }
    host.ns.sh("ip route add 10.9.0.0/24 dev p0 table 100");
    let out = host.hook(&network_create(
        "net",
        "p0",
        &["--subnet", "10.1.1.0/24", "--announce=100"],
    ));
    let err = text(&out.stderr);
    assert!(
        !out.status.success() && err.contains("10.9.0.0/24 proto 3"),
        "{err}"
    );
    assert!(
        host.ok(&["network", "ls"]).lines().count() == 1,
        "a refused network was written"
    );

    host.ok(&network_create(
        "net",
        "p0",
        &[
            "--subnet",
            "10.1.1.0/24",
            "--subnet",
            "fd00:1::/64",
            "--announce",
        ],
    ));
    let inspect: serde_json::Value =
        serde_json::from_str(&host.ok(&["network", "inspect", "net"])).unwrap();
    assert_eq!(
        inspect[0]["announce"],
        serde_json::json!({"table": 251, "protocol": 158})
    );
    let rules = host.ns.sh("ip rule; ip -6 rule");

    let (a, addr) = container(&host, "a");
    let routes = table(&host);
    assert!(
        routes.contains(&format!("{addr} dev p0 proto 158 scope link")),
        "{routes}"
    );
    assert!(routes.contains("fd00:1::2 dev p0 proto 158"), "{routes}");
    assert!(
        !host.ns.sh("ip route show table main").contains(&addr),
        "route in main"
    );
    assert_eq!(
        host.ns.sh("ip rule; ip -6 rule"),
        rules,
        "an ip rule changed"
    );

    // doctor sees drift, gc repairs it both ways.
    host.ns.sh(&format!("ip route del {addr} table {TABLE} && ip route add 10.1.1.99/32 dev p0 table {TABLE} proto 158"));
    let doctor = text(&host.hook(&["doctor", "--hooks-dir", "/nonexistent"]).stdout);
    assert!(
        doctor.contains(&format!(
            "missing routes [{addr}], stale routes [10.1.1.99]"
        )),
        "{doctor}"
    );
    let gc = host.ok(&["gc"]);
    assert!(
        gc.contains(&format!("added route {addr} to table 251"))
            && gc.contains("removed stale route 10.1.1.99"),
        "{gc}"
    );
    assert!(table(&host).contains(&addr) && !table(&host).contains("10.1.1.99"));
    let doctor = text(&host.hook(&["doctor", "--hooks-dir", "/nonexistent"]).stdout);
    assert!(
        doctor.contains("2 route(s) of proto ipvlan-hook (158), as leased"),
        "{doctor}"
    );

    poststop(&host, "a");
    drop(a);
    assert_eq!(table(&host).trim(), "", "poststop left routes");

    // A setup failing at its last step (no IPv6 on the parent, so no IPv6 route) rolls back
    // the IPv4 route, the link and both leases.
    host.ns.sh("sysctl -qw net.ipv6.conf.p0.disable_ipv6=1");
    let b = Ns::new();
    let out = host.create("b", &b, ON_NET);
    let err = text(&out.stderr);
    assert!(
        !out.status.success() && err.contains("cannot add route fd00:1::"),
        "{err}"
    );
    assert_eq!(table(&host).trim(), "", "rollback left routes");
    assert_eq!(host.lease_count(), 0, "rollback left leases");
    assert!(
        !b.sh("ip -o link").contains("eth0"),
        "rollback left the link"
    );
    host.ns.sh("sysctl -qw net.ipv6.conf.p0.disable_ipv6=0");

    // network rm withdraws every route of the network, even of a running container.
    let (_c, addr) = container(&host, "c");
    assert!(table(&host).contains(&addr));
    host.ok(&["network", "rm", "--force", "net"]);
    assert_eq!(table(&host).trim(), "", "network rm left routes");
}

/// A BIRD 2 daemon in a namespace, killed when dropped.
struct Bird {
    child: Child,
    socket: PathBuf,
    conf: PathBuf,
    log: PathBuf,
}

fn bird_bin(name: &str) -> PathBuf {
    let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists());
    found.unwrap_or_else(|| panic!("{name} not found: install bird2 (tests/all.sh does; tests/vm/run.sh copies it into the VM)"))
}

impl Bird {
    fn start(ns: &Ns, dir: &Path, name: &str, conf: &str) -> Bird {
        let conf_path = dir.join(format!("{name}.conf"));
        let log = dir.join(format!("{name}.log"));
        let full = format!("log \"{}\" all;\n{conf}", log.display());
        std::fs::write(&conf_path, full).unwrap();
        let mut bird = Bird {
            child: Command::new("true").spawn().unwrap(),
            socket: dir.join(format!("{name}.ctl")),
            conf: conf_path,
            log,
        };
        bird.restart(ns);
        bird
    }

    /// (Re)start the daemon with its configuration; the old process must be gone.
    fn restart(&mut self, ns: &Ns) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = ns
            .cmd(bird_bin("bird"))
            .arg("-f")
            .arg("-c")
            .arg(&self.conf)
            .arg("-s")
            .arg(&self.socket)
            .arg("-P")
            .arg(self.socket.with_extension("pid"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start bird");
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn birdc(&self, cmd: &str) -> String {
        let out = Command::new(bird_bin("birdc"))
            .arg("-s")
            .arg(&self.socket)
            .args(cmd.split_whitespace())
            .output()
            .expect("run birdc");
        text(&out.stdout)
    }

    /// Wait until `n` BGP sessions are established.
    fn wait_established(&self, n: usize) {
        let start = Instant::now();
        loop {
            let protocols = self.birdc("show protocols");
            if protocols.matches("Established").count() >= n {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "BGP sessions not established after 60 s:\n{protocols}\nlog:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The shipped BIRD snippet with this host's values: the defines and the neighbour replaced,
/// each of which must be found (a reshaped snippet fails the test, not silently passes).
fn host_bird_conf(n: u8, local_as: u32) -> String {
    let shipped = BIRD_SNIPPET;
    let mut conf = format!("router id 10.99.{n}.1;\nprotocol device {{}}\n");
    let mut found = 0;
    for line in shipped.lines() {
        let t = line.trim_start();
        let replaced = if t.starts_with("define IPVH_TABLE =") {
            format!("define IPVH_TABLE = {TABLE};")
        } else if t.starts_with("define IPVH_NETS4 =") {
            format!("define IPVH_NETS4 = [ 10.1.{n}.0/24{{32,32}} ];")
        } else if t.starts_with("define IPVH_NETS6 =") {
            format!("define IPVH_NETS6 = [ fd00:{n}::/64{{128,128}} ];")
        } else if t.starts_with("define IPVH_LOCAL_AS =") {
            format!("define IPVH_LOCAL_AS = {local_as};")
        } else if t.starts_with("neighbor ") {
            format!("neighbor 10.99.{n}.2 as 65000;")
        } else {
            conf.push_str(line);
            conf.push('\n');
            continue;
        };
        found += 1;
        conf.push_str(&replaced);
        conf.push('\n');
    }
    assert_eq!(
        found, 5,
        "the shipped snippet no longer has the lines this test sets"
    );
    conf
}

/// The router: every host a BGP peer whose container routes it accepts (up to a limit, the
/// peer's max-prefix) and installs in its kernel.
fn router_bird_conf(peers: &[(&str, &str, u32)]) -> String {
    let mut conf = String::from(
        "router id 10.99.0.254;\nprotocol device {}\nprotocol kernel { ipv4 { import none; export where source = RTS_BGP; }; }\nprotocol kernel { ipv6 { import none; export where source = RTS_BGP; }; }\n",
    );
    for (name, addr, asn) in peers {
        conf.push_str(&format!(
            "protocol bgp {name} {{ local as 65000; neighbor {addr} as {asn}; graceful restart on;\n  ipv4 {{ import where net ~ [ 10.1.0.0/16{{32,32}} ]; import limit 1000 action restart; export none; }};\n  ipv6 {{ import where net ~ [ fd00::/16{{128,128}} ]; import limit 1000 action restart; export none; }}; }}\n"
        ));
    }
    conf
}

/// Route changes in a namespace as `ip monitor route` reports them, with when they arrived.
struct Monitor {
    child: Child,
    lines: Receiver<(Instant, String)>,
}

impl Monitor {
    fn start(ns: &Ns) -> Monitor {
        let mut child = ns
            .cmd("ip")
            .args(["monitor", "route"])
            .stdout(Stdio::piped())
            // It complains about netns ids it cannot resolve, which do not matter here.
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .expect("ip monitor");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        // ip monitor subscribes before it prints anything: give it a moment to be listening.
        std::thread::sleep(Duration::from_millis(200));
        Monitor { child, lines }
    }

    /// When the next route change about `addr` (added, or with `deleted` removed) arrived.
    fn wait(&self, addr: &str, deleted: bool, limit: Duration) -> Option<Instant> {
        let end = Instant::now() + limit;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            let Ok((at, line)) = self.lines.recv_timeout(left) else {
                return None;
            };
            let about = line
                .split_whitespace()
                .any(|w| w == addr || w == format!("{addr}/32"));
            if about && line.starts_with("Deleted") == deleted {
                return Some(at);
            }
        }
        None
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two hosts (A: AS 65001, containers 10.1.1.0/24; B: AS 65002, 10.1.2.0/24) and a router,
/// each running BIRD; sessions established, networks defined.
struct Lab {
    router: Ns,
    a: Host,
    b: Host,
    bird_a: Bird,
    _bird_b: Bird,
    bird_r: Bird,
    dir: PathBuf,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let router = Ns::new();
        let a = Host::new(&format!("{tag}-a"));
        let b = Host::new(&format!("{tag}-b"));
        let dir = a.dir().to_path_buf();
        router.sh("sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1");
        for (host, name, n) in [(&a, "ra", 1), (&b, "rb", 2)] {
            router.sh(&format!(
                "ip link add {name} type veth peer name up0 netns {} && ip addr add 10.99.{n}.2/24 dev {name} && ip addr add fd99:{n}::2/64 dev {name} nodad && ip link set {name} up",
                host.ns.pid()
            ));
            host.ns.sh(&format!(
                "ip addr add 10.99.{n}.1/24 dev up0 && ip addr add fd99:{n}::1/64 dev up0 nodad && ip link set up0 up && ip route add default via 10.99.{n}.2 && ip -6 route add default via fd99:{n}::2"
            ));
            let (v4, v6) = (format!("10.1.{n}.0/24"), format!("fd00:{n}::/64"));
            if driver() == "ipvlan" {
                host.ok(&network_create(
                    "net",
                    "up0",
                    &[
                        "--mode",
                        "l3",
                        "--subnet",
                        &v4,
                        "--subnet",
                        &v6,
                        "--announce",
                    ],
                ));
            } else {
                // macvlan containers have MAC addresses of their own: the host reaches them
                // through a macvlan link of its own on the parent (what --host-access makes),
                // holds their gateways, and forwards.
                host.ok(&network_create(
                    "net",
                    "up0",
                    &["--subnet", &v4, "--subnet", &v6, "--announce"],
                ));
                host.ns.sh(&format!(
                    "ip link add shim link up0 type macvlan mode bridge && ip addr add 10.1.{n}.1/32 dev shim && ip addr add fd00:{n}::1/128 dev shim nodad && ip link set shim up && ip route add {v4} dev shim && ip -6 route add {v6} dev shim && sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1"
                ));
            }
        }
        let bird_r = Bird::start(
            &router,
            &dir,
            "router",
            &router_bird_conf(&[("hostA", "10.99.1.1", 65001), ("hostB", "10.99.2.1", 65002)]),
        );
        let bird_a = Bird::start(&a.ns, &dir, "a", &host_bird_conf(1, 65001));
        let bird_b = Bird::start(&b.ns, &dir, "b", &host_bird_conf(2, 65002));
        bird_r.wait_established(2);
        Lab {
            router,
            a,
            b,
            bird_a,
            _bird_b: bird_b,
            bird_r,
            dir,
        }
    }

    /// The router's route to `addr`, or an empty string.
    fn router_route(&self, addr: &str) -> String {
        let (family, len) = if addr.contains(':') {
            (6, 128)
        } else {
            (4, 32)
        };
        self.router
            .sh(&format!("ip -{family} route show {addr}/{len}"))
    }

    fn wait_router_route(&self, addr: &str, present: bool, limit: Duration) {
        let start = Instant::now();
        while self.router_route(addr).is_empty() == present {
            assert!(
                start.elapsed() < limit,
                "router: route {addr} {} after {limit:?}; router's BIRD:\n{}",
                if present { "missing" } else { "still there" },
                self.bird_r.birdc("show route all")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn pings(from: &Ns, to: &str) -> bool {
    let fam = if to.contains(':') { "-6 " } else { "" };
    from.try_sh(&format!("ping {fam}-c1 -W2 {to}"))
}

/// How long the issue gives a withdrawal to reach the router. The VM's CPU is emulated (TCG)
/// and shared: there the bound gets slack, and the measured medians say what it really takes.
fn withdrawal_bound() -> Duration {
    if std::env::var_os("IPVLAN_HOOK_VM").is_some() {
        Duration::from_secs(5)
    } else {
        Duration::from_secs(2)
    }
}

#[test]
fn bgp_two_hosts_and_a_router() {
    let mut lab = Lab::new("ann-bgp");
    let (a1, addr_a1) = container(&lab.a, "a1");
    let (b1, addr_b1) = container(&lab.b, "b1");
    // Each family: the router learns both containers over BGP (IPv6 through the snippet's
    // ipv6 half, over the same IPv4 session), via B's address, and they reach each other.
    let a1_v6 = container_ip(&a1, true);
    for (a, b, b_host) in [
        (addr_a1.clone(), addr_b1.clone(), "10.99.2.1"),
        (a1_v6.clone(), container_ip(&b1, true), "fd99:2::1"),
    ] {
        lab.wait_router_route(&a, true, Duration::from_secs(10));
        lab.wait_router_route(&b, true, Duration::from_secs(10));
        let route = lab.router_route(&b);
        assert!(
            route.contains(&format!("via {b_host}")) && route.contains("proto bird"),
            "{route}"
        );
        assert!(
            pings(&a1, &b) && pings(&b1, &a),
            "{a} and {b} do not reach each other"
        );
    }

    // Stopping a container withdraws its route at the router.
    let monitor = Monitor::start(&lab.router);
    let stopped = Instant::now();
    poststop(&lab.a, "a1");
    drop(a1);
    let gone = monitor.wait(&addr_a1, true, withdrawal_bound());
    assert!(
        gone.is_some(),
        "route {addr_a1} not withdrawn at the router within {:?}",
        withdrawal_bound()
    );
    let took = gone.unwrap() - stopped;
    lab.wait_router_route(&a1_v6, false, withdrawal_bound());
    let _ = writeln!(
        std::io::stderr(),
        "announce: withdrawal of {addr_a1} seen at the router {took:?} after poststop started"
    );
    drop(monitor);

    // BIRD dies; a container starts while it is down; the new BIRD reads the table back.
    lab.bird_a.kill();
    let (a2, addr_a2) = container(&lab.a, "a2");
    lab.bird_a.restart(&lab.a.ns);
    lab.wait_router_route(&addr_a2, true, Duration::from_secs(60));
    assert!(
        pings(&a2, &addr_b1),
        "a2 does not reach b1 after BIRD's restart"
    );

    // A teardown killed after the lease went and before the route did: gc removes the route.
    drop(a2);
    let lease = lab.a.state.join(format!("networks/net/leases/{addr_a2}"));
    std::fs::remove_file(&lease).unwrap_or_else(|e| panic!("remove {}: {e}", lease.display()));
    assert!(table(&lab.a).contains(&addr_a2));
    let gc = lab.a.ok(&["gc"]);
    assert!(
        gc.contains(&format!("removed stale route {addr_a2}")),
        "{gc}"
    );
    lab.wait_router_route(&addr_a2, false, withdrawal_bound());

    poststop(&lab.b, "b1");
    drop(b1);
    lab.wait_router_route(&addr_b1, false, withdrawal_bound());
    let _ = &lab.dir;
}

/// Milliseconds from `from` to `to`, negative when `to` came first.
fn ms(from: Instant, to: Instant) -> f64 {
    match to.checked_duration_since(from) {
        Some(d) => d.as_secs_f64() * 1e3,
        None => -(from - to).as_secs_f64() * 1e3,
    }
}

/// Median and maximum, in milliseconds.
fn summary(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() - 1])
}

/// The measurement: from createRuntime returning to the route at the router, and from
/// poststop to the withdrawal there; medians of IPVLAN_ANNOUNCE_RUNS (default 20). Route
/// changes at the router are timed by `ip monitor route` as they arrive.
#[test]
fn bgp_announce_and_withdrawal_latency() {
    let runs: usize = std::env::var("IPVLAN_ANNOUNCE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let lab = Lab::new("ann-lat");
    let monitor = Monitor::start(&lab.router);
    let (mut up, mut up_start, mut down, mut down_end) = (vec![], vec![], vec![], vec![]);
    for i in 0..runs {
        let id = format!("lat{i}");
        let ctr = Ns::new();
        let started = Instant::now();
        let out = lab.a.create(&id, &ctr, ON_NET);
        let returned = Instant::now();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let addr = container_ip(&ctr, false);
        let seen = monitor
            .wait(&addr, false, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("route {addr} never reached the router"));
        up.push(ms(returned, seen));
        up_start.push(ms(started, seen));
        let stopping = Instant::now();
        poststop(&lab.a, &id);
        let stopped = Instant::now();
        drop(ctr);
        let gone = monitor
            .wait(&addr, true, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("route {addr} never withdrawn"));
        down.push(ms(stopping, gone));
        down_end.push(ms(stopped, gone));
    }
    let line = |what: &str, v: &[f64]| {
        let (median, max) = summary(v.to_vec());
        format!("{what}: median {median:.1} ms, max {max:.1} ms")
    };
    let _ = writeln!(
        std::io::stderr(),
        "announce latency, {runs} runs on the {}:\n  {}\n  {}\n  {}\n  {}\n  (negative: the router had the route before the hook process was reaped)",
        if std::env::var_os("IPVLAN_HOOK_VM").is_some() {
            "VM (emulated CPU)"
        } else {
            "host kernel"
        },
        line("createRuntime returned -> route at the router", &up),
        line("createRuntime started  -> route at the router", &up_start),
        line("poststop started       -> withdrawn at the router", &down),
        line(
            "poststop returned      -> withdrawn at the router",
            &down_end
        ),
    );
    let (_, worst) = summary(down);
    let bound = withdrawal_bound();
    assert!(
        worst <= bound.as_secs_f64() * 1e3,
        "a withdrawal took {worst:.0} ms, more than {bound:?}"
    );
}

/// The container's global address of one family on eth0.
fn container_ip(ctr: &Ns, v6: bool) -> String {
    let (family, word) = if v6 { (6, "inet6") } else { (4, "inet") };
    let out = ctr.sh(&format!("ip -o -{family} addr show dev eth0 scope global"));
    out.split_whitespace()
        .skip_while(|w| *w != word)
        .nth(1)
        .and_then(|a| a.split('/').next())
        .expect("container address")
        .to_string()
}

/// FRR's zebra and bgpd in a namespace, under a path space of their own in /var/run/frr;
/// killed, and the path space removed, when dropped.
struct Frr {
    daemons: Vec<Child>,
    run_dir: PathBuf,
}

impl Frr {
    fn start(ns: &Ns, conf: &Path, pathspace: &str) -> Frr {
        let run_dir = Path::new("/var/run/frr").join(pathspace);
        std::fs::create_dir_all(&run_dir).unwrap();
        Command::new("chown")
            .args(["frr:frr"])
            .arg(&run_dir)
            .status()
            .expect("chown");
        let daemons = ["zebra", "bgpd"]
            .iter()
            .map(|d| {
                let child = ns
                    .cmd(Path::new("/usr/lib/frr").join(d))
                    .arg("-N")
                    .arg(pathspace)
                    .arg("-f")
                    .arg(conf)
                    .arg("-i")
                    .arg(run_dir.join(format!("{d}.pid")))
                    .arg("--log")
                    .arg(format!(
                        "file:{}",
                        run_dir.join(format!("{d}.log")).display()
                    ))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap_or_else(|e| panic!("start {d}: {e}"));
                // bgpd connects to zebra's socket: let zebra make it first.
                std::thread::sleep(Duration::from_millis(500));
                child
            })
            .collect();
        Frr { daemons, run_dir }
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        for d in &mut self.daemons {
            let _ = d.kill();
            let _ = d.wait();
        }
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// The shipped FRR snippet, on this host's kernel (FRR is not in the VM image): a container's
/// route reaches the router through zebra's import-table and bgpd, a route of the table
/// outside the prefix-list does not, and poststop withdraws it.
#[test]
fn frr_snippet_announces_the_table() {
    if std::env::var_os("IPVLAN_HOOK_VM").is_some() {
        skipped(
            "frr_snippet_announces_the_table",
            "FRR is not in the VM image; this runs in the host suite",
        );
        return;
    }
    assert!(
        Path::new("/usr/lib/frr/zebra").exists(),
        "FRR is missing: apt-get install frr (tests/all.sh does)"
    );
    let router = Ns::new();
    let a = Host::new("ann-frr");
    router.sh(&format!(
        "ip link add ra type veth peer name up0 netns {} && ip addr add 10.99.1.2/24 dev ra && ip link set ra up",
        a.ns.pid()
    ));
    a.ns.sh("ip addr add 10.99.1.1/24 dev up0 && ip link set up0 up");
    a.ok(&network_create(
        "net",
        "up0",
        &["--subnet", "10.1.1.0/24", "--announce"],
    ));
    let shipped = FRR_SNIPPET;
    assert!(shipped.contains("10.1.100.0/24") && shipped.contains("192.0.2.1"));
    let conf = a.dir().join("frr.conf");
    std::fs::write(
        &conf,
        shipped
            .replace("10.1.100.0/24", "10.1.1.0/24")
            .replace("192.0.2.1", "10.99.1.2"),
    )
    .unwrap();
    let bird_r = Bird::start(
        &router,
        a.dir(),
        "router",
        &router_bird_conf(&[("hostA", "10.99.1.1", 65001)]),
    );
    let _frr = Frr::start(&a.ns, &conf, &format!("ipvh-test-{}", std::process::id()));
    bird_r.wait_established(1);

    // Another program's route in the table, outside the networks' subnets: never announced.
    a.ns.sh(&format!(
        "ip route add 10.2.0.7/32 dev up0 table {TABLE} proto 158"
    ));
    let monitor = Monitor::start(&router);
    let (ctr, addr) = container(&a, "a1");
    let returned = Instant::now();
    let seen = monitor.wait(&addr, false, Duration::from_secs(30));
    assert!(
        seen.is_some(),
        "FRR did not announce {addr}: {}",
        bird_r.birdc("show route all")
    );
    let stopping = Instant::now();
    poststop(&a, "a1");
    drop(ctr);
    let gone = monitor.wait(&addr, true, Duration::from_secs(30));
    assert!(gone.is_some(), "FRR did not withdraw {addr}");
    let _ = writeln!(
        std::io::stderr(),
        "announce (FRR): route at the router {:.1} ms after createRuntime returned, withdrawn {:.1} ms after poststop started",
        ms(returned, seen.unwrap()),
        ms(stopping, gone.unwrap())
    );
    assert!(
        router.sh("ip route show 10.2.0.7/32").is_empty(),
        "FRR announced a route outside the prefix-list"
    );
}
