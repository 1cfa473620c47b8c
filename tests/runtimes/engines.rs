//! Fixtures of tests/runtimes.rs and tests/cni_clients.rs: a lab (a host netns with a parent
//! link and a network), the busybox rootfs, runc and crun driven with bundles wired from
//! hooks/config-json-hooks.json, and rootful podman with its own storage and the hooks.d files
//! of hooks/ (or its CNI backend).
#![allow(dead_code)] // each test file uses a different part

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};

use crate::common::*;

pub const SUBNET: &str = "10.78.0.0/24";
pub const GATEWAY: &str = "10.78.0.1";
pub const IMAGE: &str = "localhost/ipvh-busybox:latest";

/// The wiring this repository ships, compiled in: the VM has the test binaries, not the checkout.
const HOOKS_D: [(&str, &str); 2] = [
    (
        "ipvlan-hook-createRuntime.json",
        include_str!("../../hooks/ipvlan-hook-createRuntime.json"),
    ),
    (
        "ipvlan-hook-poststop.json",
        include_str!("../../hooks/ipvlan-hook-poststop.json"),
    ),
];
const CONFIG_JSON_HOOKS: &str = include_str!("../../hooks/config-json-hooks.json");

pub fn installed(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
            .map(PathBuf::from),
        )
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// An engine a test needs. On the host a missing one is a failure; only the VM, which carries
/// runc alone, may lack one, and then the test says loudly that it skipped.
pub fn engine(test: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = installed(name) {
        return Some(path);
    }
    assert!(
        std::env::var_os("IPVLAN_HOOK_VM").is_some(),
        "{test}: {name} is not installed: run tests/all.sh, which installs it (apt-get install {name})"
    );
    skipped(
        test,
        &format!("{name} is not in the VM; the host run tests it"),
    );
    None
}

/// busybox from busybox-static: the whole userland of the test containers.
fn static_busybox() -> PathBuf {
    let path = installed("busybox")
        .expect("busybox is not installed: run tests/all.sh (apt-get install busybox-static)");
    let elf = std::fs::read(&path).expect("read busybox");
    assert!(
        !has_interpreter(&elf),
        "{} is dynamically linked: the test containers need busybox-static",
        path.display()
    );
    path
}

/// Does this ELF64 file name a program interpreter (PT_INTERP), i.e. is it dynamically linked?
fn has_interpreter(elf: &[u8]) -> bool {
    let u = |at: usize, n: usize| {
        elf.get(at..at + n)
            .map(|b| b.iter().rev().fold(0usize, |acc, x| acc << 8 | *x as usize))
            .unwrap_or(0)
    };
    let (phoff, phentsize, phnum) = (u(0x20, 8), u(0x36, 2), u(0x38, 2));
    (0..phnum).any(|i| u(phoff + i * phentsize, 4) == 3)
}

/// A busybox root filesystem: `bin/busybox`, its applet links, and what `sh` and `ip` expect.
fn make_rootfs(dir: &Path) {
    let busybox = static_busybox();
    for sub in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::copy(&busybox, dir.join("bin/busybox")).unwrap();
    let list = Command::new(&busybox).arg("--list").output().unwrap();
    for applet in text(&list.stdout).split_whitespace() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
        }
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\n").unwrap();
}

fn write_script(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// One machine: a host netns with parent `p0` (a veth whose peer `p1` stays beside it), the
/// network `net` on it, and a busybox rootfs.
pub struct Lab {
    pub host: Host,
    driver: &'static str,
    rootfs: PathBuf,
}

impl Lab {
    pub fn new(tag: &str) -> Lab {
        let host = Host::new(tag);
        host.ns
            .sh("ip link add p0 type veth peer name p1 && ip link set p0 up && ip link set p1 up");
        let driver = driver();
        host.ok(&[
            "network", "create", "net", "--driver", driver, "--parent", "p0", "--subnet", SUBNET,
        ]);
        let rootfs = host.dir().join("rootfs");
        make_rootfs(&rootfs);
        Lab {
            host,
            driver,
            rootfs,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.host.dir().join(name)
    }

    /// The hook's directory flags: global flags, valid after `hook STAGE` too.
    pub fn dir_args(&self) -> [String; 4] {
        [
            "--config-dir".into(),
            self.host.config.display().to_string(),
            "--state-dir".into(),
            self.host.state.display().to_string(),
        ]
    }

    /// `(container, address)` of every lease, from `lease ls --format json`.
    pub fn leases(&self) -> Vec<(String, String)> {
        let out = self.host.ok(&["lease", "ls", "--format", "json"]);
        let v: Value = serde_json::from_str(&out).expect("lease ls json");
        v.as_array()
            .expect("lease ls json is an array")
            .iter()
            .map(|l| {
                (
                    l["container"].as_str().unwrap().to_string(),
                    l["address"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    pub fn assert_no_leases(&self, when: &str) {
        let out = self.host.ok(&["lease", "ls", "--format", "json"]);
        let v: Value = serde_json::from_str(&out).expect("lease ls json");
        assert_eq!(v, json!([]), "{when}: leases left: {out}");
    }

    /// No slave may ever be left in the host netns (the hook creates it in the container's).
    pub fn assert_no_slave_in_host(&self) {
        let links = self
            .host
            .ns
            .sh(&format!("ip -o link show type {}", self.driver));
        assert!(links.trim().is_empty(), "slave left in the host: {links}");
    }

    /// The hook entries of hooks/config-json-hooks.json, pointing at this build, with this
    /// lab's directories in the args or in the env.
    pub fn config_json_hooks(&self, dirs: Dirs) -> Value {
        let mut snippet: Value =
            serde_json::from_str(CONFIG_JSON_HOOKS).expect("hooks/config-json-hooks.json");
        let mut hooks = snippet["hooks"].take();
        for (stage, entries) in hooks.as_object_mut().expect("hooks object") {
            for entry in entries.as_array_mut().expect("array of hooks") {
                assert_eq!(
                    entry["args"],
                    json!(["ipvlan-hook", "hook", stage]),
                    "hooks/config-json-hooks.json: the {stage} entry runs another stage"
                );
                entry["path"] = json!(hook_bin());
                match dirs {
                    Dirs::Args => entry["args"]
                        .as_array_mut()
                        .unwrap()
                        .extend(self.dir_args().map(Value::from)),
                    Dirs::Env => {
                        entry["env"] = json!([
                            format!("IPVLAN_HOOK_CONFIG_DIR={}", self.host.config.display()),
                            format!("IPVLAN_HOOK_STATE_DIR={}", self.host.state.display()),
                        ])
                    }
                }
            }
        }
        hooks
    }
}

/// How the hook learns its config and state dirs: both ways are documented.
#[derive(Clone, Copy, Default)]
pub enum Dirs {
    #[default]
    Args,
    Env,
}

/// A container of a bundle: its command, annotations, and a pre-made netns to join.
#[derive(Default)]
pub struct Spec<'a> {
    pub args: &'a [&'a str],
    pub annotations: &'a [(&'a str, &'a str)],
    pub netns: Option<&'a Path>,
    pub dirs: Dirs,
}

/// The crun wrapper of docs/engines.md for hosts with hybrid cgroups: crun runs in a mount
/// namespace of its own in which the cgroup2 mount is made private and unmounted (the host
/// keeps it), while everything else, /run/netns included, keeps its propagation.
const CRUN_HYBRID_WRAPPER: &str = r#"#!/bin/sh
exec /usr/bin/unshare --mount --propagation unchanged /bin/sh -c '
    /bin/mount --make-rprivate /sys/fs/cgroup && /bin/umount /sys/fs/cgroup/unified &&
    exec /usr/bin/crun "$@"' crun "$@"
"#;

/// runc or crun, run inside the lab's host netns with its own state dir.
pub struct Runtime<'a> {
    pub lab: &'a Lab,
    /// What runs containers: the runtime, or the hybrid-cgroup wrapper around crun.
    bin: PathBuf,
    /// What writes `spec`: the runtime itself.
    spec_tool: PathBuf,
    root: PathBuf,
}

impl<'a> Runtime<'a> {
    pub fn runc(lab: &'a Lab, bin: PathBuf) -> Runtime<'a> {
        Runtime {
            lab,
            spec_tool: bin.clone(),
            bin,
            root: lab.path("runc-root"),
        }
    }

    /// crun 1.8 refuses hosts with hybrid cgroups ("cgroups in hybrid mode not supported"): there
    /// it runs through the wrapper of docs/engines.md, which hides the cgroup2 mount from it.
    pub fn crun(lab: &'a Lab, bin: PathBuf) -> Runtime<'a> {
        let mut rt = Runtime {
            lab,
            spec_tool: bin.clone(),
            bin: bin.clone(),
            root: lab.path("crun-root"),
        };
        let probe = rt.bundle(
            "probe",
            &Spec {
                args: &["true"],
                ..Spec::default()
            },
        );
        let out = rt.run("probe", &probe);
        if out.status.success() {
            return rt;
        }
        let err = text(&out.stderr);
        assert!(
            err.contains("hybrid mode"),
            "crun cannot run a container: {err}"
        );
        let wrapper = lab.path("crun-hybrid");
        write_script(
            &wrapper,
            &CRUN_HYBRID_WRAPPER.replace("/usr/bin/crun", &bin.display().to_string()),
        );
        rt.bin = wrapper;
        let out = rt.run("probe", &probe);
        assert!(
            out.status.success(),
            "crun fails even through the hybrid-cgroup wrapper: {}",
            text(&out.stderr)
        );
        rt
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = self.lab.host.ns.cmd(&self.bin);
        cmd.arg("--root").arg(&self.root).stdin(Stdio::null());
        cmd
    }

    /// A bundle from `RUNTIME spec`: the busybox rootfs, CAP_NET_RAW for ping, the hook wired
    /// as hooks/config-json-hooks.json says.
    pub fn bundle(&self, name: &str, spec: &Spec) -> PathBuf {
        let dir = self.lab.path(&format!("bundle-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new(&self.spec_tool)
            .arg("spec")
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "spec: {}", text(&out.stderr));
        let file = dir.join("config.json");
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).expect("spec config.json");
        config["root"] = json!({"path": self.lab.rootfs, "readonly": true});
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(spec.args);
        for set in config["process"]["capabilities"]
            .as_object_mut()
            .unwrap()
            .values_mut()
        {
            set.as_array_mut().unwrap().push(json!("CAP_NET_RAW"));
        }
        config["annotations"] = spec
            .annotations
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        config["hooks"] = self.lab.config_json_hooks(spec.dirs);
        if let Some(netns) = spec.netns {
            for ns in config["linux"]["namespaces"].as_array_mut().unwrap() {
                if ns["type"] == "network" {
                    ns["path"] = json!(netns);
                }
            }
        }
        std::fs::write(&file, config.to_string()).unwrap();
        dir
    }

    /// `RUNTIME run`: create, start, wait, delete; the container's output comes back.
    pub fn run(&self, id: &str, bundle: &Path) -> Output {
        self.cmd()
            .arg("run")
            .arg("--bundle")
            .arg(bundle)
            .arg(id)
            .output()
            .unwrap()
    }

    pub fn run_ok(&self, id: &str, bundle: &Path) -> String {
        let out = self.run(id, bundle);
        assert!(
            out.status.success(),
            "{} run {id} failed: {}{}",
            self.bin.display(),
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Runtime subcommand that must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{} {args:?} failed: {}",
            self.bin.display(),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    pub fn containers(&self) -> String {
        self.ok(&["list", "--quiet"])
    }
}

impl Drop for Runtime<'_> {
    fn drop(&mut self) {
        // Leftovers of a failed test only.
        let listed = self.cmd().args(["list", "--quiet"]).output();
        for id in listed.map(|o| text(&o.stdout)).unwrap_or_default().lines() {
            let _ = self.cmd().args(["delete", "--force", id]).output();
        }
    }
}

/// Rootful podman with storage, config and hooks.d of its own under the lab's directory, and the
/// busybox rootfs imported as IMAGE (no registry involved).
pub struct Podman<'a> {
    lab: &'a Lab,
    bin: PathBuf,
    dir: PathBuf,
    hooks_dir: PathBuf,
    /// Where the logging wrapper records every hook call (see `with_call_log`).
    call_log: PathBuf,
}

impl<'a> Podman<'a> {
    pub fn new(lab: &'a Lab, bin: PathBuf) -> Podman<'a> {
        Podman::setup(lab, bin, false, None)
    }

    /// Podman's CNI backend: conflists in `networks_dir()`, plugins looked up in `plugin_dir`
    /// (ours), then the CNI project's in /usr/lib/cni.
    pub fn with_cni(lab: &'a Lab, bin: PathBuf, plugin_dir: &Path) -> Podman<'a> {
        Podman::setup(lab, bin, false, Some(plugin_dir))
    }

    /// Like `new`, but the hooks.d entries run a wrapper that records each call's stage and exit
    /// status in `call_log`, then exits like the hook: podman discards what poststop hooks print
    /// and ignores their status.
    pub fn with_call_log(lab: &'a Lab, bin: PathBuf) -> Podman<'a> {
        Podman::setup(lab, bin, true, None)
    }

    fn setup(lab: &'a Lab, bin: PathBuf, log_calls: bool, cni: Option<&Path>) -> Podman<'a> {
        let dir = lab.path("podman");
        let hooks_dir = lab.path("hooks.d");
        let call_log = lab.path("hook-calls.log");
        std::fs::create_dir_all(&hooks_dir).unwrap();
        // No CAP_SYS_RESOURCE on some hosts: podman's default rlimits (1048576) cannot be set,
        // and podman lowers its own nproc to kernel.pid_max.
        let nofile = hard_limit("Max open files").unwrap_or(1 << 20);
        let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let nproc = hard_limit("Max processes").map_or(pid_max, |n| n.min(pid_max));
        let d = dir.display();
        std::fs::create_dir_all(dir.join("networks")).unwrap();
        let backend = cni.map_or(String::new(), |plugins| {
            format!(
                "network_backend = \"cni\"\n\
                 cni_plugin_dirs = [\"{}\", \"/usr/lib/cni\"]\n",
                plugins.display()
            )
        });
        std::fs::write(
            dir.join("containers.conf"),
            format!(
                "[containers]\n\
                 default_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\n\
                 [network]\n\
                 {backend}\
                 network_config_dir = \"{d}/networks\"\n\
                 [engine]\n\
                 cgroup_manager = \"cgroupfs\"\n\
                 events_logger = \"none\"\n\
                 runtime = \"runc\"\n\
                 tmp_dir = \"{d}/tmp\"\n\
                 volume_path = \"{d}/volumes\"\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\ngraphroot = \"{d}/root\"\nrunroot = \"{d}/runroot\"\n"
            ),
        )
        .unwrap();
        let hook_path = if log_calls {
            let wrapper = lab.path("logging-hook");
            write_script(
                &wrapper,
                &format!(
                    "#!/bin/sh\n{hook} \"$@\"\nrc=$?\necho \"$2 rc=$rc\" >>{log}\nexit $rc\n",
                    hook = hook_bin().display(),
                    log = call_log.display()
                ),
            );
            wrapper
        } else {
            hook_bin()
        };
        for (name, shipped) in HOOKS_D {
            let mut file: Value = serde_json::from_str(shipped).expect(name);
            let stage = file["stages"][0].as_str().unwrap().to_string();
            assert_eq!(
                file["stages"],
                json!([stage]),
                "hooks/{name}: one stage per file"
            );
            assert_eq!(
                file["hook"]["args"],
                json!(["ipvlan-hook", "hook", stage]),
                "hooks/{name}: must run the hook at its own stage"
            );
            file["hook"]["path"] = json!(hook_path);
            file["hook"]["args"]
                .as_array_mut()
                .unwrap()
                .extend(lab.dir_args().map(Value::from));
            std::fs::write(hooks_dir.join(name), file.to_string()).unwrap();
        }
        let podman = Podman {
            lab,
            bin,
            dir,
            hooks_dir,
            call_log,
        };
        let tar = podman.dir.join("busybox.tar");
        let out = Command::new("tar")
            .arg("-C")
            .arg(&lab.rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .expect("run tar");
        assert!(out.status.success(), "tar: {}", text(&out.stderr));
        podman.ok(&[
            "import",
            "--quiet",
            "--change",
            "CMD [\"/bin/sh\"]",
            tar.to_str().unwrap(),
            IMAGE,
        ]);
        podman
    }

    /// Where podman reads network definitions (conflists, for the CNI backend).
    pub fn networks_dir(&self) -> PathBuf {
        self.dir.join("networks")
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = self.lab.host.ns.cmd(&self.bin);
        cmd.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .arg("--hooks-dir")
            .arg(&self.hooks_dir)
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run podman")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "podman {args:?} failed: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `podman run -d` on the lab's network with `extra` flags; returns the container id.
    pub fn start(&self, extra: &[&str], command: &[&str]) -> String {
        let mut args = vec!["run", "-d", "--network", "none"];
        args.extend_from_slice(&["--annotation", "ipvlan.network=net"]);
        args.extend_from_slice(extra);
        args.push(IMAGE);
        args.extend_from_slice(command);
        self.ok(&args).trim().to_string()
    }

    /// One `STAGE rc=STATUS` line per hook call so far.
    pub fn calls(&self) -> String {
        std::fs::read_to_string(&self.call_log).unwrap_or_default()
    }

    pub fn containers(&self) -> String {
        self.ok(&["ps", "--all", "--quiet", "--no-trunc"])
    }
}

impl Drop for Podman<'_> {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "--all", "--force", "--time", "0"]);
        // Storage mounts of containers a failed test left behind: the directory goes next.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut under: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| Path::new(m).starts_with(&self.dir))
            .collect();
        under.reverse();
        for m in under {
            let c = std::ffi::CString::new(m).unwrap();
            // SAFETY: a valid C string; MNT_DETACH cannot leave anything half-done.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// The hard limit of `what` (a /proc/self/limits row), None when unlimited.
fn hard_limit(what: &str) -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let row = limits.lines().find(|l| l.starts_with(what))?;
    row[what.len()..].split_whitespace().nth(1)?.parse().ok()
}

/// A named netns (/run/netns/NAME) as `ip netns add` makes it, deleted on drop. /run/netns is
/// shared with the whole machine: the name is unique to this process and test.
pub struct NamedNetns {
    pub name: String,
}

static NETNS_COUNTER: AtomicU32 = AtomicU32::new(0);

impl NamedNetns {
    pub fn new(lab: &Lab) -> NamedNetns {
        let name = format!(
            "ipvh-rt-{}-{}",
            std::process::id(),
            NETNS_COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        lab.host.ns.sh(&format!("ip netns add {name}"));
        NamedNetns { name }
    }

    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    pub fn links(&self) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.name, "-o", "link"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    }
}

impl Drop for NamedNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .output();
    }
}

/// What `ip addr` and `ip route` print in a container attached at `addr`.
pub fn assert_attached(output: &str, addr: &str) {
    assert!(
        output.contains(&format!("inet {addr}/24")) && output.contains("eth0"),
        "eth0 with {addr}/24 expected: {output}"
    );
    assert!(
        output.contains(&format!("default via {GATEWAY} dev eth0")),
        "default route via the gateway expected: {output}"
    );
}

pub const SHOW: &[&str] = &["sh", "-c", "ip addr show eth0 && ip route"];
