//! Shared fixtures of the integration tests: throwaway network namespaces held by a sleeping
//! process (never the machine's real links), and the project's binaries run inside them.
#![allow(dead_code)] // each test file uses a different part

pub mod rng;

use std::io::Write;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

#[cfg(feature = "etcd")]
pub mod etcd;

/// A network namespace kept alive by a `sleep` inside it: a "host" or a "container".
pub struct Ns {
    pub holder: Child,
    fd: OwnedFd,
}

impl Ns {
    pub fn new() -> Ns {
        let mut cmd = Command::new("sleep");
        cmd.arg("3600").stdin(Stdio::null());
        // SAFETY: unshare is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let holder = cmd
            .spawn()
            .expect("spawn netns holder (tests must run as root)");
        let fd = std::fs::File::open(format!("/proc/{}/ns/net", holder.id()))
            .expect("open netns")
            .into();
        let ns = Ns { holder, fd };
        ns.sh("ip link set lo up");
        ns
    }

    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.pid()))
    }

    /// A command that runs inside this namespace.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        let fd = self.fd.as_raw_fd();
        // SAFETY: setns is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd
    }

    /// Run a shell command inside; panics with its output when it fails.
    pub fn sh(&self, script: &str) -> String {
        let out = self
            .cmd("sh")
            .args(["-c", script])
            .output()
            .expect("run sh");
        assert!(
            out.status.success(),
            "`{script}` failed: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Run a shell command inside; true when it succeeds.
    pub fn try_sh(&self, script: &str) -> bool {
        self.cmd("sh")
            .args(["-c", script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn hook_bin() -> PathBuf {
    bin("IPVLAN_HOOK_BIN", env!("CARGO_BIN_EXE_ipvlan-hook"))
}

pub fn run_bin() -> PathBuf {
    bin("IPVLAN_RUN_BIN", env!("CARGO_BIN_EXE_ipvlan-run"))
}

/// The binary `var` names (a release or installed build), else the one cargo built.
fn bin(var: &str, built: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(built), PathBuf::from)
}

/// A host namespace with its own config and state dirs: what one machine running the tool is.
pub struct Host {
    pub ns: Ns,
    pub config: PathBuf,
    pub state: PathBuf,
    dir: PathBuf,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ipvh-{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Host {
    pub fn new(tag: &str) -> Host {
        let dir = temp_dir(tag);
        Host {
            ns: Ns::new(),
            config: dir.join("etc"),
            state: dir.join("state"),
            dir,
        }
    }

    /// A host whose parent link is `p0`, one end of a veth pair (`p1`), both up.
    pub fn with_parent(tag: &str) -> Host {
        let host = Host::new(tag);
        host.ns
            .sh("ip link add p0 type veth peer name p1 && ip link set p0 up && ip link set p1 up");
        host
    }

    /// `with_parent`, plus network `net` on p0 with the test driver and `args` (subnets…).
    pub fn with_network(tag: &str, args: &[&str]) -> Host {
        let host = Host::with_parent(tag);
        host.ok(&network_create("net", "p0", args));
        host
    }

    /// `ipvlan-hook ARGS` inside the host namespace, with this host's directories.
    pub fn hook_cmd(&self, args: &[&str]) -> Command {
        self.tool_cmd(hook_bin(), args)
    }

    /// `ipvlan-run ARGS` inside the host namespace, with this host's directories.
    pub fn run_cmd(&self, args: &[&str]) -> Command {
        self.tool_cmd(run_bin(), args)
    }

    fn tool_cmd(&self, bin: PathBuf, args: &[&str]) -> Command {
        let mut cmd = self.ns.cmd(bin);
        cmd.arg("--config-dir")
            .arg(&self.config)
            .arg("--state-dir")
            .arg(&self.state)
            .args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_cmd(args).output().expect("run ipvlan-run")
    }

    pub fn hook(&self, args: &[&str]) -> Output {
        self.hook_cmd(args).output().expect("run ipvlan-hook")
    }

    /// Like `hook`, but panics with stderr when it fails; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.hook(args);
        assert!(
            out.status.success(),
            "ipvlan-hook {args:?} failed: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Run the OCI hook at `stage` with `state` on stdin, as a runtime does.
    pub fn oci_hook(&self, stage: &str, state: &str) -> Output {
        self.spawn_oci_hook(stage, state)
            .wait_with_output()
            .expect("wait for hook")
    }

    /// createRuntime of container `id`, whose process is the one holding `ctr`.
    pub fn create(&self, id: &str, ctr: &Ns, ann: &[(&str, &str)]) -> Output {
        self.oci_hook(
            "createRuntime",
            &state_json(id, Some(ctr.pid()), self.dir(), ann),
        )
    }

    /// poststop of container `id`: no pid, as runc and podman send it.
    pub fn poststop(&self, id: &str, ann: &[(&str, &str)]) -> Output {
        self.oci_hook("poststop", &state_json(id, None, self.dir(), ann))
    }

    /// `oci_hook`, started but not waited for (to run many at once).
    pub fn spawn_oci_hook(&self, stage: &str, state: &str) -> Child {
        let mut child = self
            .hook_cmd(&["hook", stage])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hook");
        // The hook may stop reading early (oversized input): EPIPE here is its business.
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(state.as_bytes());
        child
    }

    pub fn lease_count(&self) -> usize {
        let out = self.ok(&["lease", "ls", "--format", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("lease ls json");
        v.as_array().expect("array").len()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `network create NAME` on `parent` with the test driver, then `args` (subnets…).
pub fn network_create<'a>(name: &'a str, parent: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut full = vec![
        "network",
        "create",
        name,
        "--driver",
        driver(),
        "--parent",
        parent,
    ];
    full.extend_from_slice(args);
    full
}

/// The annotation of a container on the network `Host::with_network` defines.
pub const ON_NET: &[(&str, &str)] = &[("ipvlan.network", "net")];

pub fn assert_ok(what: &str, out: &Output) {
    assert!(out.status.success(), "{what} failed: {}", text(&out.stderr));
}

/// The OCI state JSON a runtime writes for `id` at createRuntime (`pid` given) or poststop.
pub fn state_json(
    id: &str,
    pid: Option<u32>,
    bundle: &Path,
    annotations: &[(&str, &str)],
) -> String {
    let ann: serde_json::Map<String, serde_json::Value> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    let mut s = serde_json::json!({"ociVersion": "1.0.2-dev", "id": id, "status": "creating", "bundle": bundle, "annotations": ann});
    if let Some(pid) = pid {
        s["pid"] = pid.into();
    }
    s.to_string()
}

/// Does this kernel have ipvlan, 802.1q and dummy links? Probed once, in a scratch namespace.
pub fn kernel_has_ipvlan() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(probe_ipvlan)
}

fn probe_ipvlan() -> bool {
    let ns = Ns::new();
    ns.try_sh("ip link add d0 type dummy && ip link add link d0 name d0.5 type vlan id 5 && ip link add link d0 name iv0 type ipvlan mode l2")
}

/// Skip loudly where the kernel cannot run a test; in the VM run (IPVLAN_HOOK_VM=1) a missing
/// feature is a failure, so CI proves these paths for real.
pub fn require_ipvlan(test: &str) -> bool {
    if kernel_has_ipvlan() {
        return true;
    }
    assert!(
        std::env::var_os("IPVLAN_HOOK_VM").is_none(),
        "{test}: the VM kernel must have ipvlan, 802.1q and dummy"
    );
    skipped(
        test,
        "this kernel has no ipvlan/802.1q/dummy links; it runs in the VM suite (tests/vm/run.sh)",
    );
    false
}

/// Tests of the tool's own logic (input handling, concurrency, kill timing) gain nothing from
/// the VM's kernel and take minutes under its emulated CPU: they run on the host only.
pub fn host_only(test: &str) -> bool {
    if std::env::var_os("IPVLAN_HOOK_VM").is_none() {
        return true;
    }
    skipped(
        test,
        "kernel-independent logic, run by the host suite (tests/all.sh); minutes under the VM's emulated CPU",
    );
    false
}

/// Say loudly that a test did not run. Written to stderr directly: the test harness captures
/// `eprintln!` of passing tests, and a skip must never pass silently.
pub fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// The slave driver to test with: ipvlan where the kernel has it, macvlan otherwise.
pub fn driver() -> &'static str {
    if kernel_has_ipvlan() {
        "ipvlan"
    } else {
        "macvlan"
    }
}

/// The OCI hook at `stage` for container `id` on `net`, started but not waited for.
pub fn spawn_hook(host: &Host, stage: &str, id: &str, ctr: Option<&Ns>) -> Child {
    host.spawn_oci_hook(stage, &state_json(id, ctr.map(Ns::pid), host.dir(), ON_NET))
}

/// The IPv4 address on the container's eth0, if it has one.
pub fn address(ctr: &Ns) -> Option<IpAddr> {
    let out = ctr
        .cmd("ip")
        .args(["-o", "-4", "addr", "show", "dev", "eth0"])
        .output()
        .ok()?;
    let text = text(&out.stdout);
    let inet = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)?;
    inet.split('/').next()?.parse().ok()
}

/// `lease ls --format json` on `host`: every lease of every host, as (container, address, host).
pub fn leases(host: &Host) -> Vec<(String, IpAddr, String)> {
    let out = host.ok(&["lease", "ls", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("lease ls json");
    v.as_array()
        .expect("array")
        .iter()
        .map(|l| {
            (
                l["container"].as_str().expect("container").to_string(),
                l["address"]
                    .as_str()
                    .and_then(|a| a.parse().ok())
                    .expect("address"),
                l["host"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

pub fn median(v: Vec<Duration>) -> Duration {
    percentile(v, 50)
}

/// The `p`th percentile (nearest rank) of `v`, which must not be empty.
pub fn percentile(mut v: Vec<Duration>, p: usize) -> Duration {
    v.sort();
    let rank = (v.len() * p).div_ceil(100).max(1);
    v[rank - 1]
}
