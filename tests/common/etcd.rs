//! etcd for the tests that need a real one (feature "etcd"): a throwaway single member
//! (`Etcd`), and the loopback forwarders that let simulated hosts reach it.
//!
//! etcd listens on 127.0.0.1 of the test's own namespace; a simulated host reaches it on
//! 127.0.0.1 of its namespace through a small forwarder (see `Etcd::serve_in`), so every byte
//! stays on loopback and the endpoint reads the same on every host.

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::*;
use ipvlan_hook::hostconfig::EtcdConfig;

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
        serde_json::json!({
            "version": 1,
            "endpoints": endpoints,
            "ca": self.dir.join("ca.pem"),
            "cert": self.dir.join("client.pem"),
            "key": self.dir.join("client.key"),
            "prefix": "/ipvh-test",
            "host": host,
        })
        .to_string()
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
            let client = ipvlan_hook::etcd::Client::new(&cfg).expect("client");
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
        "p0",
        &["--subnet", subnet, "--ipam", "etcd"],
    ));
    host
}
