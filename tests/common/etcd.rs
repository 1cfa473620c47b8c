//! etcd for the tests that need a real one (feature "etcd"): a throwaway single member
//! (`Etcd`), a three-member cluster that can lose members and be partitioned (`Cluster`), and
//! the loopback forwarders that let simulated hosts reach them.
//!
//! `Etcd` listens on 127.0.0.1 of the test's own namespace, `Cluster`'s members on 127.0.0.1
//! of namespaces of their own; a simulated host reaches a member on 127.0.0.1 of its namespace
//! through a small forwarder (see `Etcd::serve_in`, `Cluster::serve_in`), so every byte stays
//! on loopback and the endpoint reads the same on every host.

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::*;
use ipvlan_hook::etcd::config::EtcdConfig;

/// A throwaway CA in `dir` (ca.pem), and the certificates it signed: server.pem/.key for
/// etcd (127.0.0.1), client.pem/.key for ipvlan-hook.
pub fn make_certs(dir: &Path) {
    // The server certificate also serves as client certificate: etcd's JSON gateway
    // connects to its own gRPC server with it when client-cert auth is on.
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    sh(
        &format!(
            "set -e
            openssl req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca
            openssl req {ec} -keyout server.key -out server.csr -subj /CN=etcd
            printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' > server.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext
            openssl req {ec} -keyout client.key -out client.csr -subj /CN=ipvlan-hook
            printf 'extendedKeyUsage=clientAuth\\n' > client.ext
            openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext
            chmod 600 *.key"
        ),
        dir,
    );
}

/// A throwaway single-member etcd on 127.0.0.1: free ports, its own CA, server and client
/// certificates (made with openssl), a data dir removed on drop; killed on drop.
/// etcd.json for `host` under `prefix`, with the client certificates `make_certs` wrote to `dir`.
fn etcd_json(dir: &Path, prefix: &str, host: &str, endpoints: &[impl serde::Serialize]) -> String {
    serde_json::json!({
        "version": 1,
        "endpoints": endpoints,
        "ca": dir.join("ca.pem"),
        "cert": dir.join("client.pem"),
        "key": dir.join("client.key"),
        "prefix": prefix,
        "host": host,
    })
    .to_string()
}

pub struct Etcd {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
    peer_port: u16,
    /// Namespaces of the hosts that reach etcd, and their forwarders while etcd runs.
    hosts: Vec<(std::fs::File, Option<Forwarder>)>,
}

/// 127.0.0.1:PORT in a host's namespace, forwarded to 127.0.0.1:PORT here, where etcd is.
/// Dropped while etcd is down, so hosts see what they would see: connection refused.
pub struct Forwarder {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A listener on 127.0.0.1:`port` (0: any) inside the namespace `ns`: the socket is made on
/// a short-lived thread that joined the namespace, and stays there.
pub fn bind_in(ns: &std::fs::File, port: u16) -> TcpListener {
    let fd = ns.as_raw_fd();
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns on a thread of our own that ends right after.
            assert_eq!(unsafe { libc::setns(fd, libc::CLONE_NEWNET) }, 0, "setns");
            TcpListener::bind(("127.0.0.1", port)).expect("bind in the host namespace")
        })
        .join()
        .expect("bind thread")
    })
}

impl Forwarder {
    pub fn start(ns: &std::fs::File, port: u16) -> Forwarder {
        Forwarder::start_into(ns, port, None)
    }

    /// 127.0.0.1:`port` in `ns` forwarded to 127.0.0.1:`port` in `target` (None: here).
    pub fn start_into(
        ns: &std::fs::File,
        port: u16,
        target: Option<Arc<std::fs::File>>,
    ) -> Forwarder {
        let listener = bind_in(ns, port);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                let mut pfd = libc::pollfd {
                    fd: listener.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                if unsafe { libc::poll(&mut pfd, 1, 50) } <= 0 {
                    continue;
                }
                let Ok((down, _)) = listener.accept() else {
                    continue;
                };
                let target = target.clone();
                std::thread::spawn(move || {
                    if let Some(t) = &target {
                        // SAFETY: setns on this connection's own thread.
                        if unsafe { libc::setns(t.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                            return;
                        }
                    }
                    let Ok(up) = TcpStream::connect(("127.0.0.1", port)) else {
                        return;
                    };
                    // No Nagle: small requests must not wait for delayed ACKs.
                    let _ = (down.set_nodelay(true), up.set_nodelay(true));
                    let (Ok(mut down2), Ok(mut up2)) = (down.try_clone(), up.try_clone()) else {
                        return;
                    };
                    let t = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut down2, &mut up2);
                        let _ = up2.shutdown(std::net::Shutdown::Write);
                    });
                    let (mut down, mut up) = (down, up);
                    let _ = std::io::copy(&mut up, &mut down);
                    let _ = down.shutdown(std::net::Shutdown::Both);
                    let _ = t.join();
                });
            }
        });
        Forwarder {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn sh(script: &str, dir: &Path) {
    let out = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "`{script}` failed: {}",
        text(&out.stderr)
    );
}

impl Etcd {
    pub fn start() -> Etcd {
        let dir = temp_dir("etcd");
        make_certs(&dir);
        let mut etcd = Etcd {
            child: None,
            dir,
            port: free_port(),
            peer_port: free_port(),
            hosts: Vec::new(),
        };
        etcd.resume();
        etcd
    }

    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// etcd.json for a host with id `host`.
    pub fn config(&self, host: &str) -> String {
        self.config_with(host, &self.endpoint())
    }

    pub fn config_with(&self, host: &str, endpoint: &str) -> String {
        self.config_endpoints(host, &[endpoint])
    }

    pub fn config_endpoints(&self, host: &str, endpoints: &[&str]) -> String {
        etcd_json(&self.dir, "/ipvh-test", host, endpoints)
    }

    /// Start (again, on the same ports and data) and wait until it serves requests.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "etcd already runs");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("etcd.log"))
            .expect("etcd log");
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let d = |f: &str| self.dir.join(f);
        let child = Command::new("etcd")
            .arg("--name=t")
            .arg(format!("--data-dir={}", d("data").display()))
            .arg(format!("--listen-client-urls={}", self.endpoint()))
            .arg(format!("--advertise-client-urls={}", self.endpoint()))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=t={peer}"))
            .arg(format!("--cert-file={}", d("server.pem").display()))
            .arg(format!("--key-file={}", d("server.key").display()))
            .arg(format!("--trusted-ca-file={}", d("ca.pem").display()))
            .arg("--client-cert-auth")
            .arg("--logger=zap")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start etcd (apt-get install etcd-server)");
        self.child = Some(child);
        let cfg_dir = temp_dir("etcd-probe");
        std::fs::write(cfg_dir.join("etcd.json"), self.config("probe")).expect("probe config");
        let cfg = EtcdConfig::load(&cfg_dir).expect("probe config");
        let start = Instant::now();
        loop {
            // A fresh client each time: a client that failed once refuses at once.
            let client = ipvlan_hook::etcd::client::Client::new(&cfg).expect("client");
            if client.get(b"/probe").is_ok() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "etcd did not come up; see {}",
                self.dir.join("etcd.log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_dir_all(cfg_dir);
        let port = self.port;
        for (ns, fwd) in &mut self.hosts {
            *fwd = Some(Forwarder::start(ns, port));
        }
    }

    /// Make etcd reachable from `ns` at the same address as here.
    pub fn serve_in(&mut self, ns: &Ns) {
        let file = std::fs::File::open(ns.netns_path()).expect("open netns");
        let fwd = self
            .child
            .is_some()
            .then(|| Forwarder::start(&file, self.port));
        self.hosts.push((file, fwd));
    }

    /// SIGKILL: no goodbye to clients, as in a crash or a partition.
    pub fn kill(&mut self) {
        for (_, fwd) in &mut self.hosts {
            *fwd = None;
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A host (netns with parent p0) configured for `etcd` as `id`, with network `net` defined on
/// `subnet` with --ipam etcd.
pub fn etcd_host(etcd: &mut Etcd, id: &str, subnet: &str) -> Host {
    let host = Host::with_parent(id);
    etcd.serve_in(&host.ns);
    std::fs::create_dir_all(&host.config).expect("config dir");
    std::fs::write(host.config.join("etcd.json"), etcd.config(id)).expect("etcd.json");
    host.ok(&network_create(
        "net",
        "p0",
        &["--subnet", subnet, "--ipam", "etcd"],
    ));
    host
}

/// Run `f` on a short-lived thread inside the namespace `ns`.
pub fn in_ns<T: Send>(ns: &std::fs::File, f: impl FnOnce() -> T + Send) -> T {
    let fd = ns.as_raw_fd();
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns on a thread of our own that ends right after.
            assert_eq!(unsafe { libc::setns(fd, libc::CLONE_NEWNET) }, 0, "setns");
            f()
        })
        .join()
        .expect("thread in a namespace")
    })
}

/// A three-member etcd cluster, TLS as in `Etcd`, etcd's default timings (heartbeat 100 ms,
/// election 1 s). Members 1 and 2 run in one namespace, member 3 in another; the two are
/// joined by a veth pair (`pm` 10.99.0.1 and .2 / `pp` 10.99.0.3) that carries only the
/// members' peer traffic (plain http, like `Etcd`). A member's client port is 127.0.0.1:23N9
/// in its own namespace, and in every host's (forwarded, see `serve_in`).
///
/// `partition` cuts member 3 off from the other two by nftables drop rules on the veth, in the
/// namespace of members 1 and 2 (both directions, silently, as a failed switch does); `heal`
/// deletes them. Clients keep reaching member 3: a host that talks to it is cut off from the
/// majority.
pub struct Cluster {
    dir: PathBuf,
    /// The namespaces: [members 1 and 2, member 3].
    nets: [Ns; 2],
    net_files: [Arc<std::fs::File>; 2],
    children: [Option<Child>; 3],
    /// The forwarders into every host, kept for the cluster's life (a killed member refuses
    /// the forwarded connection, as it would refuse a direct one).
    forwarders: Vec<Forwarder>,
}

pub const MEMBERS: usize = 3;

impl Cluster {
    pub fn start() -> Cluster {
        let dir = temp_dir("etcd-cluster");
        make_certs(&dir);
        let nets = [Ns::new(), Ns::new()];
        let p = nets[1].pid();
        nets[0].sh(&format!(
            "ip link add pm type veth peer name pp netns {p} && ip addr add 10.99.0.1/24 dev pm && ip addr add 10.99.0.2/24 dev pm && ip link set pm up"
        ));
        nets[1].sh("ip addr add 10.99.0.3/24 dev pp && ip link set pp up");
        let net_files = [0, 1]
            .map(|i| Arc::new(std::fs::File::open(nets[i].netns_path()).expect("open netns")));
        let mut cluster = Cluster {
            dir,
            nets,
            net_files,
            children: [None, None, None],
            forwarders: Vec::new(),
        };
        for m in 0..MEMBERS {
            cluster.spawn(m);
        }
        for m in 0..MEMBERS {
            cluster.wait_ready(m);
        }
        cluster
    }

    fn ns_of(m: usize) -> usize {
        if m < 2 { 0 } else { 1 }
    }

    pub fn client_port(m: usize) -> u16 {
        2319 + 10 * m as u16
    }

    fn metrics_port(m: usize) -> u16 {
        2318 + 10 * m as u16
    }

    fn peer_url(m: usize) -> String {
        format!("http://10.99.0.{}:2380", m + 1)
    }

    /// The client URL of member `m` (0-based), as every host sees it.
    pub fn endpoint(m: usize) -> String {
        format!("https://127.0.0.1:{}", Self::client_port(m))
    }

    /// etcd.json for host `host` talking to `members`, in that order.
    pub fn config(&self, host: &str, members: &[usize]) -> String {
        let endpoints: Vec<String> = members.iter().map(|m| Self::endpoint(*m)).collect();
        etcd_json(&self.dir, "/ipvh-cluster", host, &endpoints)
    }

    fn spawn(&mut self, m: usize) {
        assert!(self.children[m].is_none(), "member {m} already runs");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("etcd{m}.log")))
            .expect("etcd log");
        let d = |f: &str| self.dir.join(f);
        let cluster: Vec<String> = (0..MEMBERS)
            .map(|i| format!("m{i}={}", Self::peer_url(i)))
            .collect();
        let client = Self::endpoint(m);
        let child = self.nets[Self::ns_of(m)]
            .cmd("etcd")
            .arg(format!("--name=m{m}"))
            .arg(format!("--data-dir={}", d(&format!("data{m}")).display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!(
                "--listen-metrics-urls=http://127.0.0.1:{}",
                Self::metrics_port(m)
            ))
            .arg(format!("--listen-peer-urls={}", Self::peer_url(m)))
            .arg(format!(
                "--initial-advertise-peer-urls={}",
                Self::peer_url(m)
            ))
            .arg(format!("--initial-cluster={}", cluster.join(",")))
            .arg("--initial-cluster-token=ipvh-test")
            .arg(format!("--cert-file={}", d("server.pem").display()))
            .arg(format!("--key-file={}", d("server.key").display()))
            .arg(format!("--trusted-ca-file={}", d("ca.pem").display()))
            .arg("--client-cert-auth")
            .arg("--logger=zap")
            .args(election_flags())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start etcd (apt-get install etcd-server)");
        self.children[m] = Some(child);
    }

    /// Wait until member `m` serves a linearizable read (so it has a leader).
    pub fn wait_ready(&self, m: usize) {
        let cfg_dir = temp_dir("etcd-probe");
        std::fs::write(cfg_dir.join("etcd.json"), self.config("probe", &[m])).expect("probe");
        let cfg = EtcdConfig::load(&cfg_dir).expect("probe config");
        let start = Instant::now();
        loop {
            let ok = in_ns(&self.net_files[Self::ns_of(m)], || {
                ipvlan_hook::etcd::client::Client::new(&cfg)
                    .expect("client")
                    .get(b"/probe")
                    .is_ok()
            });
            if ok {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "etcd member {m} did not come up; see {}",
                self.dir.join(format!("etcd{m}.log")).display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_dir_all(cfg_dir);
    }

    /// Make every member reachable from `ns` at its endpoint.
    pub fn serve_in(&mut self, ns: &Ns) {
        let file = std::fs::File::open(ns.netns_path()).expect("open netns");
        for m in 0..MEMBERS {
            let target = self.net_files[Self::ns_of(m)].clone();
            self.forwarders.push(Forwarder::start_into(
                &file,
                Self::client_port(m),
                Some(target),
            ));
        }
    }

    pub fn is_up(&self, m: usize) -> bool {
        self.children[m].is_some()
    }

    /// SIGKILL member `m`.
    pub fn kill(&mut self, m: usize) {
        if let Some(mut c) = self.children[m].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start member `m` again on its data, and wait until it serves.
    pub fn restart(&mut self, m: usize) {
        self.spawn(m);
        self.wait_ready(m);
    }

    /// Does member `m` say it is the leader (etcd_server_is_leader of its metrics)?
    fn says_leader(&self, m: usize) -> bool {
        use std::io::{Read, Write};
        let port = Self::metrics_port(m);
        in_ns(&self.net_files[Self::ns_of(m)], || {
            let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                return false;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
            let mut body = String::new();
            let _ = s.read_to_string(&mut body);
            body.lines().any(|l| l == "etcd_server_is_leader 1")
        })
    }

    /// The member that leads now (waits for an election to end).
    pub fn leader(&self) -> usize {
        let start = Instant::now();
        loop {
            if let Some(m) = (0..MEMBERS).find(|m| self.is_up(*m) && self.says_leader(*m)) {
                return m;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no leader; see {}",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Cut member 3 off from members 1 and 2 (nftables drop rules on the veth between them).
    pub fn partition(&self) {
        self.nets[0].sh("nft -f - <<'EOF'
table inet ipvh_partition {
    chain input { type filter hook input priority 0; iifname \"pm\" drop; }
    chain output { type filter hook output priority 0; oifname \"pm\" drop; }
}
EOF");
    }

    pub fn heal(&self) {
        self.nets[0].sh("nft delete table inet ipvh_partition");
    }
}

/// etcd's defaults (heartbeat 100 ms, election timeout 1 s), or IPVLAN_ETCD_ELECTION_MS=N:
/// election timeout N ms and heartbeat N/10 ms, as operators tune clusters on slower networks.
fn election_flags() -> Vec<String> {
    match std::env::var("IPVLAN_ETCD_ELECTION_MS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        Some(ms) => vec![
            format!("--election-timeout={ms}"),
            format!("--heartbeat-interval={}", ms / 10),
        ],
        None => Vec::new(),
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for m in 0..MEMBERS {
            self.kill(m);
        }
        self.forwarders.clear();
        if std::env::var_os("IPVLAN_TEST_KEEP").is_some() {
            eprintln!("kept {} (IPVLAN_TEST_KEEP)", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
