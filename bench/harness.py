"""The benchmark's harness: the throwaway test host, the containers, the timed spawn of every
tool, the samples, and the one context object every phase and the report receive. Why one
object: the phases used to take 10-15 parameters each plus module globals (the output file,
the RSS switch, the host netns fd); now whatever a phase needs is a field of `Ctx`.

How it measures
- The script unshares a private mount namespace, makes a throwaway "host" network namespace
  (`ip netns add bench-host-PID`, veth p0/p1 inside, both up) and enters it itself (setns), so
  every tool is a direct child of this loop, started the same way (subprocess, vfork+exec, state
  or config written to a stdin pipe) and timed from before the spawn to the return of wait4(),
  which also gives the child's CPU time and its voluntary context switches (sleeps). Nothing
  is subtracted; the cost of spawning /bin/true the same way is reported as the harness
  baseline. Peak RSS comes from a few extra runs of each tool under GNU time (`time -f %M`):
  wait4's ru_maxrss would include this Python's RSS, which the kernel carries over at execve.
- Every container gets a fresh network namespace, held by a `sleep` child that unshared it
  (its pid goes into the OCI state, /proc/PID/ns/net is CNI_NETNS and netavark's path).
- Tools run interleaved: each iteration runs every tool once, in a shuffled order (fixed seed),
  so drift of the shared machine hits all of them alike; medians, p90 and ratios come from the
  same run.
- macvlan (mode bridge) on the veth p0 for everyone; each tool has its own subnets.
"""

import ctypes
import dataclasses
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000

SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HERE = os.path.dirname(os.path.abspath(__file__))


def die(msg):
    sys.stderr.write(f"bench: {msg}\n")
    sys.exit(1)


def log(msg):
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def setns(fd, nstype):
    if libc.setns(fd, nstype) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


def unshare(flags):
    if libc.unshare(flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"unshare: {os.strerror(e)}")


def sh(*argv, check=True, data=None):
    """Untimed helper command; raises with its output when it fails."""
    p = subprocess.run(argv, input=data, capture_output=True)
    if check and p.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, argv))} failed ({p.returncode}): {p.stdout.decode()}{p.stderr.decode()}"
        )
    return p.stdout.decode()


def cid():
    return os.urandom(32).hex()


# --------------------------------------------------------------------------------------------
# Timed execution


class Run:
    __slots__ = ("ns", "rc", "maxrss_kb", "out", "cpu_ns", "vcsw")

    def __init__(self, ns, rc, maxrss_kb, out, cpu_ns=0, vcsw=0):
        self.ns, self.rc, self.maxrss_kb, self.out, self.cpu_ns = ns, rc, maxrss_kb, out, cpu_ns
        self.vcsw = vcsw


class Timer:
    """Spawns and times the tools. Holds the one scratch file their output goes to, and the RSS
    switch: when `rss_mode` is set, every tool runs under GNU time (`/usr/bin/time -f %M`) and
    only its peak RSS is kept. wait4()'s ru_maxrss cannot be used from here: the kernel folds the
    RSS of the forking process (this Python, ~18 MiB) into the child's at execve. GNU time's own
    share is what /bin/true shows under it (~1 MiB), a floor below the tools' own numbers."""

    def __init__(self):
        self.out = tempfile.TemporaryFile()
        self.rss_mode = False

    def timed(self, argv, data=None, env=None):
        """Spawn argv, feed `data` on a stdin pipe, wait with wait4: the wall time (or, in RSS
        mode, the peak RSS that GNU time reports)."""
        self.out.seek(0)
        self.out.truncate()
        stdin = subprocess.PIPE if data is not None else subprocess.DEVNULL
        rss_file = None
        if self.rss_mode:
            rss_file = tempfile.NamedTemporaryFile(prefix="rss-")
            argv = ["/usr/bin/time", "-f", "%M", "-o", rss_file.name] + list(argv)
        t0 = time.perf_counter_ns()
        p = subprocess.Popen(argv, stdin=stdin, stdout=self.out, stderr=self.out, env=env)
        if data is not None:
            try:
                p.stdin.write(data)
                p.stdin.close()
            except BrokenPipeError:
                pass
        _, status, ru = os.wait4(p.pid, 0)
        t1 = time.perf_counter_ns()
        p.returncode = os.waitstatus_to_exitcode(status)
        out = ""
        if p.returncode != 0:
            self.out.seek(0)
            out = self.out.read().decode(errors="replace")
        rss = None
        if rss_file is not None:
            text = open(rss_file.name).read().split()
            rss = int(text[-1]) if text and text[-1].isdigit() else None
            rss_file.close()
        cpu = int((ru.ru_utime + ru.ru_stime) * 1e9)
        return Run(t1 - t0, p.returncode, rss, out, cpu, ru.ru_nvcsw)

    def with_rss(self, n, body):
        """Run `body` n times in RSS mode (under GNU time, wall times discarded)."""
        self.rss_mode = True
        try:
            for _ in range(n):
                body()
        finally:
            self.rss_mode = False


def must(run, what):
    if run.rc != 0:
        raise RuntimeError(f"{what} failed with status {run.rc}:\n{run.out}")
    return run


def concurrent(argvs_data_env, netns_fds):
    """Start len(argvs) processes at once: each child is forked, enters its netns (where given)
    and blocks on a barrier pipe; when all are forked the pipe is closed and they all exec.
    Returns the wall time from the release to the last exit, the outputs of failures, the peak
    RSS of each and their CPU time (user+sys) in all."""
    r, w = os.pipe()
    kids = []
    for (argv, data, env), fd in zip(argvs_data_env, netns_fds):
        exe = argv[0] if "/" in argv[0] else shutil.which(argv[0])
        inp = tempfile.TemporaryFile()
        inp.write(data or b"")
        inp.flush()
        inp.seek(0)
        out = tempfile.TemporaryFile()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(w)
                if fd is not None:
                    setns(fd, CLONE_NEWNET)
                os.dup2(inp.fileno(), 0)
                os.dup2(out.fileno(), 1)
                os.dup2(out.fileno(), 2)
                os.read(r, 1)
                os.execve(exe, argv, env)
            finally:
                os._exit(127)
        inp.close()
        kids.append((pid, out))
    os.close(r)
    t0 = time.perf_counter_ns()
    os.close(w)
    fails = []
    rss = []
    cpu = 0.0
    for pid, out in kids:
        _, status, ru = os.wait4(pid, 0)
        rss.append(ru.ru_maxrss)
        cpu += ru.ru_utime + ru.ru_stime
        if os.waitstatus_to_exitcode(status) != 0:
            fails.append(out)
    t1 = time.perf_counter_ns()
    msgs = []
    for out in fails:
        out.seek(0)
        msgs.append(out.read().decode(errors="replace"))
    for _, out in kids:
        out.close()
    return t1 - t0, msgs, rss, int(cpu * 1e9)


# --------------------------------------------------------------------------------------------
# The test host and its containers


class Holder:
    """A fresh network namespace held by a sleeping child: one container."""

    def __init__(self):
        self.proc = subprocess.Popen(
            ["sleep", "100000"],
            stdin=subprocess.DEVNULL,
            preexec_fn=lambda: unshare(CLONE_NEWNET),
        )
        self.pid = self.proc.pid
        self.path = f"/proc/{self.pid}/ns/net"
        self.fd = os.open(self.path, os.O_RDONLY)
        self.name = None  # a name under /run/netns, where a tool needs one (IpTight)

    def kill(self):
        if self.proc.returncode is None:
            self.proc.kill()
            self.proc.wait()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Host:
    """The throwaway host: a private mount namespace, a network namespace with veth p0/p1 (and
    more parents where asked: q0/q1) that this process enters, a scratch directory on disk
    (`base`) and a tmpfs inside it."""

    def __init__(self, disk_dir, parents=("p0",)):
        self.name = f"bench-host-{os.getpid()}"
        self.parents = {p: None for p in parents}  # name -> ifindex, each a veth to PEER 1
        self.base = tempfile.mkdtemp(prefix="ipvlan-hook-bench.", dir=disk_dir)
        self.tmpfs = os.path.join(self.base, "tmpfs")
        self.holders = []
        self.host_fd = None
        self.parent_index = None

    def start(self):
        # A private mount namespace: the netns bind mounts, the tmpfs and /sys of the host netns
        # vanish with this process.
        unshare(CLONE_NEWNS)
        sh("mount", "--make-rprivate", "/")
        sh("ip", "netns", "add", self.name)
        self.host_fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        setns(self.host_fd, CLONE_NEWNET)
        sh("umount", "-l", "/sys")
        sh("mount", "-t", "sysfs", "sysfs", "/sys")
        sh("ip", "link", "set", "lo", "up")
        for p in self.parents:
            peer = p[:-1] + "1"
            sh("ip", "link", "add", p, "type", "veth", "peer", "name", peer)
            sh("ip", "link", "set", p, "up")
            sh("ip", "link", "set", peer, "up")
            self.parents[p] = int(open(f"/sys/class/net/{p}/ifindex").read())
        self.parent_index = self.parents["p0"]
        os.makedirs(self.tmpfs)
        sh("mount", "-t", "tmpfs", "-o", "size=512m", "bench-tmpfs", self.tmpfs)

    def holder(self):
        h = Holder()
        self.holders.append(h)
        return h

    def reap(self):
        for h in self.holders:
            h.kill()
        self.holders = []

    def stop(self):
        self.reap()
        subprocess.run(["umount", "-l", self.tmpfs], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)

    def addresses_in(self, ctr, family="-4", dev="eth0"):
        setns(ctr.fd, CLONE_NEWNET)
        try:
            out = sh("ip", "-o", family, "addr", "show", "dev", dev, "scope", "global")
        finally:
            setns(self.host_fd, CLONE_NEWNET)
        return re.findall(r"inet6? (\S+)/", out)


def fs_type(path):
    return sh("findmnt", "-n", "-o", "FSTYPE", "-T", path).strip()


def fsync_cost(directory, n=50):
    """What one crash-safe file write costs on this disk: write+fsync+rename+fsync(dir)."""
    samples = []
    d = os.path.join(directory, "fsync-probe")
    os.makedirs(d, exist_ok=True)
    for i in range(n):
        t0 = time.perf_counter_ns()
        fd = os.open(os.path.join(d, ".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, b'{"version":1}')
        os.fsync(fd)
        os.close(fd)
        os.rename(os.path.join(d, ".tmp"), os.path.join(d, f"f{i}"))
        dfd = os.open(d, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)
        samples.append(time.perf_counter_ns() - t0)
    shutil.rmtree(d)
    return statistics.median(samples) / 1e6


def drop_caches():
    """Not used for timing runs (leases are hot in production too); kept for experiments."""
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")


def netns_objects():
    """Network namespaces the kernel holds, live or waiting for its cleanup worker."""
    with open("/proc/slabinfo") as f:
        for line in f:
            if line.startswith("net_namespace "):
                return int(line.split()[1])
    return None


def settle(baseline):
    """Wait (up to a minute) until the kernel has destroyed the namespaces of earlier runs: the
    count is back near the baseline, or has stopped falling for a second (some stay referenced
    for longer). Its cleanup worker holds the rtnl lock in batches, so a backlog of dead
    namespaces slows every link change, and hurts the tool that makes more of them most."""
    start = time.monotonic()
    history = []
    while time.monotonic() - start < 60:
        n = netns_objects()
        if n is None or n <= baseline + 8:
            break
        history.append(n)
        if len(history) > 5 and min(history[-5:]) >= history[-6]:
            break
        time.sleep(0.2)
    return time.monotonic() - start


# --------------------------------------------------------------------------------------------
# Samples


class Stats:
    """Samples per (tool, op): wall times in nanoseconds; peak RSS in KiB from RSS-mode runs."""

    def __init__(self):
        self.t = {}
        self.rss = {}
        self.cpu = {}
        self.vcsw = {}

    def add(self, key, run):
        if run.maxrss_kb is not None:
            self.rss.setdefault(key, []).append(run.maxrss_kb)
        else:
            self.t.setdefault(key, []).append(run.ns)
            self.cpu.setdefault(key, []).append(run.cpu_ns)
            self.vcsw.setdefault(key, []).append(run.vcsw)

    def med(self, key):
        return statistics.median(self.t[key]) / 1e6

    def p90(self, key):
        v = sorted(self.t[key])
        return v[min(len(v) - 1, int(round(0.9 * (len(v) - 1))))] / 1e6

    def summary(self):
        return {
            k: {
                "n": len(v),
                "median_ms": statistics.median(v) / 1e6,
                "p10_ms": sorted(v)[int(0.1 * (len(v) - 1))] / 1e6,
                "p90_ms": sorted(v)[int(round(0.9 * (len(v) - 1)))] / 1e6,
                "min_ms": min(v) / 1e6,
                "max_ms": max(v) / 1e6,
                "cpu_median_ms": statistics.median(self.cpu[k]) / 1e6 if self.cpu.get(k) else None,
                "voluntary_switches_median": statistics.median(self.vcsw[k]) if self.vcsw.get(k) else None,
                "rss_median_kib": statistics.median(self.rss[k]) if self.rss.get(k) else None,
                "rss_max_kib": max(self.rss[k]) if self.rss.get(k) else None,
            }
            for k, v in self.t.items()
        }


# --------------------------------------------------------------------------------------------
# The context


@dataclasses.dataclass
class Ctx:
    """Everything a phase or the report needs, in one place: the options as parsed (`args`),
    the paths and the binary, the host and the timer, the contenders (tools.py, set up by
    tools.make_tools) and the results as they come in."""

    args: object                      # argparse.Namespace of bench.py
    binary: str                       # the ipvlan-hook under test (absolute path)
    out_dir: str                      # where benchmark.{md,png,json} and benchmark-strace.txt go
    skip: set                         # phases not to run
    counts: list                      # lease counts of the scale phase
    rng: random.Random                # the interleaving's shuffle (fixed seed)
    host: Host
    timer: Timer = dataclasses.field(default_factory=Timer)
    stats: Stats = dataclasses.field(default_factory=Stats)
    netns_baseline: int = 0           # net_namespace objects at the start (settle waits for it)
    # Our state: one config dir, a state dir on disk and one on the tmpfs.
    etc: str = ""
    state: str = ""
    state_tmpfs: str = ""
    # The contenders (tools.py): ours, ours on tmpfs, a second build (--compare-bin), and the
    # peers, each for v4, dual stack (d) and the scale phase (s).
    ours: object = None
    ours_t: object = None
    ours_b: object = None
    cni: object = None
    cnid: object = None
    cnis: object = None
    nv: object = None
    nvd: object = None
    ipb: object = None
    ipbd: object = None
    ipt: object = None
    vm: dict = None                   # bench.py --vm: per ipvlan mode, ours, CNI and the tight floor
    # Ours run by a CNI runtime: the plugin, and the macvlan plugin's IPAM (the CNI phase).
    cni_ours: object = None
    cni_ipam: object = None
    # Results besides the samples in `stats`.
    meta: dict = dataclasses.field(default_factory=dict)
    targets: list = dataclasses.field(default_factory=list)
    dups: dict = dataclasses.field(default_factory=dict)
    strace: dict = None
