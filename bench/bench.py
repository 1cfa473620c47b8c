#!/usr/bin/python3
"""Side-by-side benchmark of ipvlan-hook against the CNI plugins, netavark and an `ip -batch`
floor (project issue 6). Run it through bench/run.sh, which installs the peers and builds the
release binary; this script needs root, the Debian packages containernetworking-plugins,
netavark, iproute2, strace and python3-matplotlib, and writes docs/benchmark.{md,png,json}.

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

import argparse
import ctypes
import datetime
import ipaddress
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000

CNI_DIR = "/usr/lib/cni"
NETAVARK = "/usr/lib/podman/netavark"
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


# --------------------------------------------------------------------------------------------
# Timed execution


class Run:
    __slots__ = ("ns", "rc", "maxrss_kb", "out", "cpu_ns", "vcsw")

    def __init__(self, ns, rc, maxrss_kb, out, cpu_ns=0, vcsw=0):
        self.ns, self.rc, self.maxrss_kb, self.out, self.cpu_ns = ns, rc, maxrss_kb, out, cpu_ns
        self.vcsw = vcsw


_OUT = None
# When set, every tool runs under GNU time (`/usr/bin/time -f %M`) and only its peak RSS is
# kept. wait4()'s ru_maxrss cannot be used from here: the kernel folds the RSS of the forking
# process (this Python, ~18 MiB) into the child's at execve. GNU time's own share is what
# /bin/true shows under it (~1 MiB), a floor below the tools' own numbers.
RSS_MODE = [False]


def timed(argv, data=None, env=None):
    """Spawn argv, feed `data` on a stdin pipe, wait with wait4: the wall time (or, in RSS mode,
    the peak RSS that GNU time reports)."""
    _OUT.seek(0)
    _OUT.truncate()
    stdin = subprocess.PIPE if data is not None else subprocess.DEVNULL
    rss_file = None
    if RSS_MODE[0]:
        rss_file = tempfile.NamedTemporaryFile(prefix="rss-")
        argv = ["/usr/bin/time", "-f", "%M", "-o", rss_file.name] + list(argv)
    t0 = time.perf_counter_ns()
    p = subprocess.Popen(argv, stdin=stdin, stdout=_OUT, stderr=_OUT, env=env)
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
        _OUT.seek(0)
        out = _OUT.read().decode(errors="replace")
    rss = None
    if rss_file is not None:
        text = open(rss_file.name).read().split()
        rss = int(text[-1]) if text and text[-1].isdigit() else None
        rss_file.close()
    cpu = int((ru.ru_utime + ru.ru_stime) * 1e9)
    return Run(t1 - t0, p.returncode, rss, out, cpu, ru.ru_nvcsw)


def must(run, what):
    if run.rc != 0:
        raise RuntimeError(f"{what} failed with status {run.rc}:\n{run.out}")
    return run


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

    def kill(self):
        if self.proc.returncode is None:
            self.proc.kill()
            self.proc.wait()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


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
# The tools


def cid():
    return os.urandom(32).hex()


class Ours:
    def __init__(self, bin_path, config, state, network, bundle_config):
        self.bin, self.config, self.state, self.network = bin_path, config, state, network
        self.bundle_config = bundle_config
        self.bundle = tempfile.mkdtemp(prefix="bundle-", dir=os.path.dirname(config))
        self._write_bundle(None)

    def _write_bundle(self, netns_path):
        cfg = json.loads(json.dumps(self.bundle_config))
        for ns in cfg["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns.pop("path", None)
                if netns_path:
                    ns["path"] = netns_path
        with open(os.path.join(self.bundle, "config.json"), "w") as f:
            json.dump(cfg, f, indent="\t")

    def argv(self, stage):
        return [self.bin, "--config-dir", self.config, "--state-dir", self.state, "hook", stage]

    def state_json(self, id_, pid, status, network=None):
        s = {
            "ociVersion": "1.0.2-dev",
            "id": id_,
            "status": status,
            "bundle": self.bundle,
            "annotations": {"ipvlan.network": network or self.network},
        }
        if pid:
            s["pid"] = pid
        return json.dumps(s).encode()

    def setup(self, ctr, id_, network=None):
        return timed(self.argv("createRuntime"), self.state_json(id_, ctr.pid, "creating", network), env={})

    def teardown(self, id_, network=None):
        return timed(self.argv("poststop"), self.state_json(id_, None, "stopped", network), env={})

    def noop(self, ctr):
        s = json.dumps({"ociVersion": "1.0.2-dev", "id": cid(), "status": "creating",
                        "pid": ctr.pid, "bundle": self.bundle, "annotations": {}}).encode()
        return timed(self.argv("createRuntime"), s, env={})


class Cni:
    def __init__(self, name, data_dir, v4, v6=None):
        ranges = [[{"subnet": v4, "gateway": str(ipaddress.ip_network(v4)[1])}]]
        routes = [{"dst": "0.0.0.0/0"}]
        if v6:
            ranges.append([{"subnet": v6, "gateway": str(ipaddress.ip_network(v6)[1])}])
            routes.append({"dst": "::/0"})
        self.name = name
        self.data_dir = data_dir
        self.conf = json.dumps({
            "cniVersion": "1.0.0",
            "name": name,
            "type": "macvlan",
            "master": "p0",
            "mode": "bridge",
            "ipam": {"type": "host-local", "dataDir": data_dir, "ranges": ranges, "routes": routes},
        }).encode()

    def env(self, cmd, id_, netns):
        return {"CNI_COMMAND": cmd, "CNI_CONTAINERID": id_, "CNI_NETNS": netns,
                "CNI_IFNAME": "eth0", "CNI_PATH": CNI_DIR, "PATH": SYS_PATH}

    def add(self, ctr, id_):
        return timed([f"{CNI_DIR}/macvlan"], self.conf, self.env("ADD", id_, ctr.path))

    def delete(self, netns_path, id_):
        return timed([f"{CNI_DIR}/macvlan"], self.conf, self.env("DEL", id_, netns_path))


class Netavark:
    def __init__(self, name, config_dir, v4, v6=None):
        self.name, self.config_dir = name, config_dir
        self.v4, self.v6 = ipaddress.ip_network(v4), ipaddress.ip_network(v6) if v6 else None
        self.n = 0

    def options(self, id_, k):
        ips = [str(self.v4[2 + k])]
        subnets = [{"subnet": str(self.v4), "gateway": str(self.v4[1])}]
        if self.v6:
            ips.append(str(self.v6[2 + k]))
            subnets.append({"subnet": str(self.v6), "gateway": str(self.v6[1])})
        return json.dumps({
            "container_id": id_,
            "container_name": "c" + id_[:12],
            "networks": {self.name: {"static_ips": ips, "interface_name": "eth0"}},
            "network_info": {self.name: {
                "name": self.name,
                "id": "f" * 64,
                "driver": "macvlan",
                "network_interface": "p0",
                "subnets": subnets,
                "ipv6_enabled": bool(self.v6),
                "internal": False,
                "dns_enabled": False,
                "ipam_options": {"driver": "host-local"},
            }},
        }).encode()

    def next_options(self, id_):
        self.n = (self.n + 1) % 60000
        return self.options(id_, self.n)

    def argv(self, cmd, path):
        return [NETAVARK, "--config", self.config_dir, cmd, path]

    def setup(self, ctr, opts):
        return timed(self.argv("setup", ctr.path), opts, {"PATH": SYS_PATH})

    def teardown(self, ctr, opts):
        return timed(self.argv("teardown", ctr.path), opts, {"PATH": SYS_PATH})


class IpBatch:
    """The floor: one `ip -batch` process, started inside the container's netns, that creates the
    macvlan on the host's p0 (by ifindex, through the host netns' nsid), adds the addresses,
    brings the link up and adds the default routes."""

    def __init__(self, host_name, host_fd, parent_index, v4, v6=None):
        self.host_name, self.host_fd, self.parent = host_name, host_fd, parent_index
        self.v4, self.v6 = ipaddress.ip_network(v4), ipaddress.ip_network(v6) if v6 else None
        self.n = 0

    def script(self, k=None):
        if k is None:
            self.n = (self.n + 1) % 60000
            k = self.n
        lines = [
            f"netns set {self.host_name} 1",
            f"link add link if{self.parent} link-netnsid 1 name eth0 type macvlan mode bridge",
            f"addr add {self.v4[2 + k]}/{self.v4.prefixlen} dev eth0",
        ]
        if self.v6:
            lines.append(f"addr add {self.v6[2 + k]}/{self.v6.prefixlen} dev eth0 nodad")
        lines.append("link set eth0 up")
        lines.append(f"route add default via {self.v4[1]} dev eth0")
        if self.v6:
            lines.append(f"route add default via {self.v6[1]} dev eth0")
        return ("\n".join(lines) + "\n").encode()

    def _in(self, ctr, argv, data):
        setns(ctr.fd, CLONE_NEWNET)
        try:
            return timed(argv, data, {"PATH": SYS_PATH})
        finally:
            setns(self.host_fd, CLONE_NEWNET)

    def setup(self, ctr, script):
        return self._in(ctr, ["ip", "-batch", "-"], script)

    def teardown(self, ctr):
        return self._in(ctr, ["ip", "link", "del", "dev", "eth0"], None)


# --------------------------------------------------------------------------------------------
# Environment


class Env:
    def __init__(self, args):
        self.args = args
        self.name = f"bench-host-{os.getpid()}"
        self.base = tempfile.mkdtemp(prefix="ipvlan-hook-bench.", dir=args.disk_dir)
        self.tmpfs = os.path.join(self.base, "tmpfs")
        self.holders = []
        self.host_fd = None

    def start(self):
        # A private mount namespace: the netns bind mounts, the tmpfs and /sys of the host netns
        # vanish with this process.
        unshare(CLONE_NEWNS)
        sh("mount", "--make-rprivate", "/")
        sh("ip", "netns", "add", self.name)
        self.host_fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        host_fd_for_checks[0] = self.host_fd
        setns(self.host_fd, CLONE_NEWNET)
        sh("umount", "-l", "/sys")
        sh("mount", "-t", "sysfs", "sysfs", "/sys")
        sh("ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", "p0", "type", "veth", "peer", "name", "p1")
        sh("ip", "link", "set", "p0", "up")
        sh("ip", "link", "set", "p1", "up")
        self.parent_index = int(open("/sys/class/net/p0/ifindex").read())
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


def fs_type(path):
    return sh("findmnt", "-n", "-o", "FSTYPE", "-T", path).strip()


# --------------------------------------------------------------------------------------------
# Pre-populated leases


def template_lease(ours, net, env):
    """Lease one address with the real binary and return its files, as a format template."""
    ctr = env.holder()
    id_ = "template-" + cid()[:16]
    must(ours.setup(ctr, id_, net), "template setup")
    d = os.path.join(ours.state, "networks", net)
    names = [n for n in os.listdir(os.path.join(d, "leases")) if not n.startswith(".")]
    assert len(names) == 1, names
    lease = json.load(open(os.path.join(d, "leases", names[0])))
    index = json.load(open(os.path.join(d, "containers", id_)))
    ctr.kill()
    must(ours.teardown(id_, net), "template teardown")
    return lease, index


def populate_ours(ours, net, subnet, count, lease_tpl, index_tpl):
    """Write `count` leases (10.x.0.2 upward, one container each) in exactly the store's format:
    leases/ADDR (the JSON lease), containers/ID (the index), cursor-SUBNET (last address)."""
    d = os.path.join(ours.state, "networks", net)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "leases"))
    os.makedirs(os.path.join(d, "containers"))
    net_ = ipaddress.ip_network(subnet)
    last = None
    for i in range(count):
        addr = str(net_[2 + i])
        c = f"fill{i:06d}"
        lease = dict(lease_tpl, container=c, address=addr, network=net)
        with open(os.path.join(d, "leases", addr), "w") as f:
            f.write(json.dumps(lease, separators=(",", ":")))
        with open(os.path.join(d, "containers", c), "w") as f:
            f.write(json.dumps(dict(index_tpl, addresses=[addr]), separators=(",", ":")))
        last = addr
    cursor = os.path.join(d, "cursor-" + str(net_).replace("/", "_"))
    if last:
        with open(cursor, "w") as f:
            f.write(last)
    return cursor


def populate_cni(cni, subnet, count):
    """host-local's disk format: DATADIR/NET/ADDR = "ID\\r\\nIFNAME", last_reserved_ip.0."""
    d = os.path.join(cni.data_dir, cni.name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    net_ = ipaddress.ip_network(subnet)
    last = None
    for i in range(count):
        addr = str(net_[2 + i])
        with open(os.path.join(d, addr), "w") as f:
            f.write(f"fill{i:06d}\r\neth0")
        last = addr
    if last:
        with open(os.path.join(d, "last_reserved_ip.0"), "w") as f:
            f.write(last)


def drop_caches():
    """Not used for timing runs (leases are hot in production too); kept for experiments."""
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")


# --------------------------------------------------------------------------------------------
# Phases


def with_rss(n, body):
    """Run `body` n times in RSS mode (under GNU time, wall times discarded)."""
    RSS_MODE[0] = True
    try:
        for _ in range(n):
            body()
    finally:
        RSS_MODE[0] = False


def cycle(env, S, o, label, setup_op="setup", teardown_op="teardown (netns gone)", network=None):
    """One of ours, as a container whose netns dies with it: setup, the container ends,
    poststop. teardown_op None: the poststop is run but not recorded."""
    c = env.holder()
    id_ = cid()
    S.add((label, setup_op), must(o.setup(c, id_, network), f"{label}: {setup_op}"))
    c.kill()
    t = must(o.teardown(id_, network), f"{label}: poststop")
    if teardown_op:
        S.add((label, teardown_op), t)


def phase_main(env, S, ours, ours_t, cni, nv, ipb, iters, rng, rss_iters, ours_b=None):
    """v4: setup and teardown of every tool, interleaved (and of a second build, ours_b)."""
    true_bin = shutil.which("true")

    def t_ours():
        cycle(env, S, ours, "ours")

    def t_ours_b():
        cycle(env, S, ours_b, "ours, --compare-bin")

    def t_ours_tmpfs():
        cycle(env, S, ours_t, "ours, state on tmpfs")

    def t_ours_pre():
        # An engine-made netns (podman --network ns:, CRI-O): it outlives the container, so
        # poststop deletes the link too: the same work as CNI DEL.
        c = env.holder()
        name = f"bench-ctr-{os.getpid()}"
        sh("ip", "netns", "attach", name, str(c.pid))
        ours._write_bundle(f"/run/netns/{name}")
        id_ = cid()
        try:
            S.add(("ours, pre-created netns", "setup"), must(ours.setup(c, id_), "ours(pre) setup"))
            S.add(("ours, pre-created netns", "teardown (netns alive)"),
                  must(ours.teardown(id_), "ours(pre) poststop"))
        finally:
            ours._write_bundle(None)
            sh("ip", "netns", "del", name)
            c.kill()

    def t_ours_noop():
        c = env.holder()
        S.add(("ours, no annotations", "hook (nothing to do)"), must(ours.noop(c), "ours noop"))
        c.kill()

    def t_cni():
        c = env.holder()
        id_ = cid()
        S.add(("CNI macvlan+host-local", "setup"), must(cni.add(c, id_), "CNI ADD"))
        S.add(("CNI macvlan+host-local", "teardown (netns alive)"), must(cni.delete(c.path, id_), "CNI DEL"))
        c.kill()

    def t_cni_dead():
        c = env.holder()
        id_ = cid()
        S.add(("CNI macvlan+host-local", "setup"), must(cni.add(c, id_), "CNI ADD"))
        path = c.path
        c.kill()
        S.add(("CNI macvlan+host-local", "teardown (netns gone)"), must(cni.delete(path, id_), "CNI DEL (dead)"))

    def t_nv():
        c = env.holder()
        id_ = cid()
        opts = nv.next_options(id_)
        S.add(("netavark", "setup"), must(nv.setup(c, opts), "netavark setup"))
        S.add(("netavark", "teardown (netns alive)"), must(nv.teardown(c, opts), "netavark teardown"))
        c.kill()

    def t_ip():
        c = env.holder()
        S.add(("ip -batch (floor)", "setup"), must(ipb.setup(c, ipb.script()), "ip -batch"))
        S.add(("ip -batch (floor)", "teardown (netns alive)"), must(ipb.teardown(c), "ip link del"))
        c.kill()

    def t_true():
        S.add(("/bin/true (harness)", "spawn+wait"), must(timed([true_bin], b"{}", {}), "true"))

    tasks = [t_ours, t_ours_tmpfs, t_ours_pre, t_ours_noop, t_cni, t_cni_dead, t_nv, t_ip, t_true]
    if ours_b:
        tasks.append(t_ours_b)
    with_rss(rss_iters, lambda: [t() for t in tasks])
    for i in range(iters):
        rng.shuffle(tasks)
        for t in tasks:
            t()
        env.reap()
        if (i + 1) % max(1, iters // 10) == 0:
            log(f"  v4 iteration {i + 1}/{iters}: ours {S.med(('ours', 'setup')):.2f} ms, "
                f"CNI {S.med(('CNI macvlan+host-local', 'setup')):.2f} ms, "
                f"netavark {S.med(('netavark', 'setup')):.2f} ms, ip {S.med(('ip -batch (floor)', 'setup')):.2f} ms")


def phase_dual(env, S, ours, ours_t, net4, netd, net4t, netdt, cnid, nvd, ipbd, iters, cni_every, rng, rss_iters):
    """Dual stack (v4+v6) next to our v4-only setup (state on disk, and on tmpfs)."""

    def t_ours4_t():
        cycle(env, S, ours_t, "ours, state on tmpfs", "setup v4 (dual-stack run)", None, net4t)

    def t_oursd_t():
        cycle(env, S, ours_t, "ours, state on tmpfs", "setup dual stack", None, netdt)

    def t_ours4():
        cycle(env, S, ours, "ours", "setup v4 (dual-stack run)", None, net4)

    def t_oursd():
        cycle(env, S, ours, "ours", "setup dual stack", "teardown dual stack (netns gone)", netd)

    def t_cnid():
        c = env.holder()
        id_ = cid()
        S.add(("CNI macvlan+host-local", "setup dual stack"), must(cnid.add(c, id_), "CNI dual ADD"))
        S.add(("CNI macvlan+host-local", "teardown dual stack (netns alive)"), must(cnid.delete(c.path, id_), "CNI dual DEL"))
        c.kill()

    def t_nvd():
        c = env.holder()
        id_ = cid()
        opts = nvd.next_options(id_)
        S.add(("netavark", "setup dual stack"), must(nvd.setup(c, opts), "netavark dual"))
        S.add(("netavark", "teardown dual stack (netns alive)"), must(nvd.teardown(c, opts), "netavark dual teardown"))
        c.kill()

    def t_ipd():
        c = env.holder()
        S.add(("ip -batch (floor)", "setup dual stack"), must(ipbd.setup(c, ipbd.script()), "ip -batch dual"))
        c.kill()

    with_rss(rss_iters, lambda: [t() for t in (t_ours4, t_oursd, t_nvd, t_ipd)])
    with_rss(1, t_cnid)
    for i in range(iters):
        tasks = [t_ours4, t_oursd, t_ours4_t, t_oursd_t, t_nvd, t_ipd]
        if i % cni_every == 0:
            tasks.append(t_cnid)
        rng.shuffle(tasks)
        for t in tasks:
            t()
        if (i + 1) % max(1, iters // 5) == 0:
            log(f"  dual iteration {i + 1}/{iters}: ours v4 {S.med(('ours', 'setup v4 (dual-stack run)')):.2f} ms, "
                f"dual {S.med(('ours', 'setup dual stack')):.2f} ms")


def phase_scale(env, S, ours, cni, net, subnet, cni_subnet, counts, iters, rng, rss_iters):
    lease_tpl, index_tpl = template_lease(ours, net, env)
    for count in counts:
        t0 = time.time()
        cursor = populate_ours(ours, net, subnet, count, lease_tpl, index_tpl)
        populate_cni(cni, cni_subnet, count)
        log(f"  {count} leases written in {time.time() - t0:.1f} s")

        def t_ours():
            c = env.holder()
            id_ = cid()
            S.add(("ours", f"setup, {count} leases"), must(ours.setup(c, id_, net), f"ours setup at {count}"))
            c.kill()
            S.add(("ours", f"teardown, {count} leases"), must(ours.teardown(id_, net), f"ours poststop at {count}"))

        def t_ours_nocursor():
            # Worst case: the round-robin cursor is lost (it is not fsynced) or sits before a
            # run of taken addresses: the allocator walks every lease from the start.
            c = env.holder()
            id_ = cid()
            try:
                os.unlink(cursor)
            except FileNotFoundError:
                pass
            S.add(("ours, cursor lost", f"setup, {count} leases"),
                  must(ours.setup(c, id_, net), f"ours setup (no cursor) at {count}"))
            c.kill()
            must(ours.teardown(id_, net), "ours poststop")
            if count:
                with open(cursor, "w") as f:
                    f.write(str(ipaddress.ip_network(subnet)[1 + count]))

        def t_cni():
            c = env.holder()
            id_ = cid()
            S.add(("CNI macvlan+host-local", f"setup, {count} leases"), must(cni.add(c, id_), f"CNI ADD at {count}"))
            S.add(("CNI macvlan+host-local", f"teardown, {count} leases"), must(cni.delete(c.path, id_), f"CNI DEL at {count}"))
            c.kill()

        tasks = [t_ours, t_ours_nocursor, t_cni]
        with_rss(rss_iters, lambda: [t() for t in tasks])
        for _ in range(iters):
            rng.shuffle(tasks)
            for t in tasks:
                t()
        log(f"  {count} leases: ours {S.med(('ours', f'setup, {count} leases')):.2f} ms, "
            f"cursor lost {S.med(('ours, cursor lost', f'setup, {count} leases')):.2f} ms, "
            f"CNI {S.med(('CNI macvlan+host-local', f'setup, {count} leases')):.2f} ms")
    shutil.rmtree(os.path.join(ours.state, "networks", net), ignore_errors=True)
    shutil.rmtree(os.path.join(cni.data_dir, cni.name), ignore_errors=True)


def concurrent(argvs_data_env, netns_fds, host_fd):
    """Start len(argvs) processes at once: each child is forked, enters its netns (where given)
    and blocks on a barrier pipe; when all are forked the pipe is closed and they all exec.
    Returns the wall time from the release to the last exit, and the outputs of failures."""
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
    for pid, out in kids:
        _, status, ru = os.wait4(pid, 0)
        rss.append(ru.ru_maxrss)
        if os.waitstatus_to_exitcode(status) != 0:
            fails.append(out)
    t1 = time.perf_counter_ns()
    msgs = []
    for out in fails:
        out.seek(0)
        msgs.append(out.read().decode(errors="replace"))
    for _, out in kids:
        out.close()
    return t1 - t0, msgs, rss


def addresses_in(ctr, family="-4"):
    setns(ctr.fd, CLONE_NEWNET)
    try:
        out = sh("ip", "-o", family, "addr", "show", "dev", "eth0", "scope", "global")
    finally:
        setns(host_fd_for_checks[0], CLONE_NEWNET)
    return re.findall(r"inet6? (\S+)/", out)


host_fd_for_checks = [None]


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


def phase_concurrent(env, S, ours, cni, nv, ipb, n, rounds, rng, netns_baseline):
    # The scale phase just wrote 60,000 lease files: let their writeback finish first, or it
    # lands on this phase's ext4 journal and in the numbers of whichever tool writes files.
    os.sync()
    results = {}
    dup_report = {}

    def record(tool, op, ns, fails):
        if fails:
            raise RuntimeError(f"{tool} {op}: {len(fails)} of {n} failed, e.g.:\n{fails[0]}")
        S.t.setdefault((tool, op), []).append(ns)

    def check_unique(tool, ctrs):
        addrs = []
        for c in ctrs:
            a = addresses_in(c)
            if len(a) != 1:
                raise RuntimeError(f"{tool}: container has addresses {a}")
            addrs.extend(a)
        dups = len(addrs) - len(set(addrs))
        dup_report.setdefault(tool, []).append(dups)
        if dups:
            raise RuntimeError(f"{tool}: {dups} duplicate addresses among {n} concurrent setups")

    def r_ours():
        ctrs = [env.holder() for _ in range(n)]
        ids = [cid() for _ in range(n)]
        jobs = [(ours.argv("createRuntime"), ours.state_json(i, c.pid, "creating"), {}) for c, i in zip(ctrs, ids)]
        ns, fails, _ = concurrent(jobs, [None] * n, env.host_fd)
        record("ours", f"{n} setups at once", ns, fails)
        check_unique("ours", ctrs)
        for c in ctrs:
            c.kill()
        jobs = [(ours.argv("poststop"), ours.state_json(i, None, "stopped"), {}) for i in ids]
        ns, fails, _ = concurrent(jobs, [None] * n, env.host_fd)
        record("ours", f"{n} teardowns at once (netns gone)", ns, fails)
        left = os.listdir(os.path.join(ours.state, "networks", ours.network, "leases"))
        if [x for x in left if not x.startswith(".")]:
            raise RuntimeError(f"ours: leases left after {n} poststops: {left[:5]}")

    def r_cni():
        ctrs = [env.holder() for _ in range(n)]
        ids = [cid() for _ in range(n)]
        jobs = [([f"{CNI_DIR}/macvlan"], cni.conf, cni.env("ADD", i, c.path)) for c, i in zip(ctrs, ids)]
        ns, fails, _ = concurrent(jobs, [None] * n, env.host_fd)
        record("CNI macvlan+host-local", f"{n} setups at once", ns, fails)
        check_unique("CNI macvlan+host-local", ctrs)
        jobs = [([f"{CNI_DIR}/macvlan"], cni.conf, cni.env("DEL", i, c.path)) for c, i in zip(ctrs, ids)]
        ns, fails, _ = concurrent(jobs, [None] * n, env.host_fd)
        record("CNI macvlan+host-local", f"{n} teardowns at once (netns alive)", ns, fails)
        for c in ctrs:
            c.kill()

    def r_nv():
        ctrs = [env.holder() for _ in range(n)]
        ids = [cid() for _ in range(n)]
        opts = [nv.options(i, 1000 + k) for k, i in enumerate(ids)]
        jobs = [(nv.argv("setup", c.path), o, {"PATH": SYS_PATH}) for c, o in zip(ctrs, opts)]
        ns, fails, _ = concurrent(jobs, [None] * n, env.host_fd)
        record("netavark", f"{n} setups at once", ns, fails)
        jobs = [(nv.argv("teardown", c.path), o, {"PATH": SYS_PATH}) for c, o in zip(ctrs, opts)]
        ns, fails, _ = concurrent(jobs, [None] * n, env.host_fd)
        record("netavark", f"{n} teardowns at once (netns alive)", ns, fails)
        for c in ctrs:
            c.kill()

    def r_ip():
        ctrs = [env.holder() for _ in range(n)]
        jobs = [(["ip", "-batch", "-"], ipb.script(1000 + k), {"PATH": SYS_PATH}) for k in range(n)]
        ns, fails, _ = concurrent(jobs, [c.fd for c in ctrs], env.host_fd)
        record("ip -batch (floor)", f"{n} setups at once", ns, fails)
        for c in ctrs:
            c.kill()

    tasks = [r_ours, r_cni, r_nv, r_ip]
    waited = 0.0
    for i in range(rounds):
        rng.shuffle(tasks)
        for t in tasks:
            waited += settle(netns_baseline)
            t()
            env.reap()
    log(f"  waited {waited:.1f} s in all for the kernel to destroy earlier namespaces")
    return dup_report


# --------------------------------------------------------------------------------------------
# Where our setup time goes: one setup under strace


def phase_strace(env, ours, out_dir, runs=7):
    """Trace `runs` setups; keep the one with the median total, and the median of each phase."""
    if not shutil.which("strace"):
        return None
    results = []
    for k in range(runs):
        c = env.holder()
        id_ = cid()
        trace = os.path.join(env.base, f"strace-{k}.txt")
        argv = ["strace", "-f", "-ttt", "-T", "-o", trace] + ours.argv("createRuntime")
        p = subprocess.run(argv, input=ours.state_json(id_, c.pid, "creating"), capture_output=True, env={})
        c.kill()
        must(ours.teardown(id_), "poststop after strace")
        if p.returncode != 0:
            log(f"strace run failed: {p.stderr.decode()}")
            return None
        summary = summarize_strace(open(trace).read().splitlines())
        if summary:
            results.append((summary, trace))
    if not results:
        return None
    results.sort(key=lambda r: r[0]["total_ms"])
    summary, trace = results[len(results) // 2]
    names = [n for n, _ in summary["phases"]]
    per_phase = {n: [] for n in names}
    for r, _ in results:
        for n, ms in r["phases"]:
            if n in per_phase:
                per_phase[n].append(ms)
    summary["phases"] = [(n, statistics.median(per_phase[n])) for n in names]
    summary["runs"] = len(results)
    with open(os.path.join(out_dir, "benchmark-strace.txt"), "w") as f:
        for line in open(trace):
            line = line.rstrip("\n")
            f.write((line[:197] + "..." if len(line) > 200 else line) + "\n")
    return summary


SYSCALL_RE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(?:<\.\.\. )?(\w+)(.*?)(?:<(\d+\.\d+)>)?$")


def summarize_strace(lines):
    """Per-syscall totals, and the time between landmarks of the setup (strace inflates every
    syscall, so read shares, not absolute times)."""
    by_call = {}
    events = []
    for line in lines:
        m = SYSCALL_RE.match(line)
        if not m:
            continue
        pid, ts, call, rest, dur = m.groups()
        if "resumed>" in line and "<..." in line:
            call = re.search(r"<\.\.\. (\w+) resumed", line).group(1)
        ts = float(ts)
        if dur:
            d = by_call.setdefault(call, [0, 0.0])
            d[0] += 1
            d[1] += float(dur)
        events.append((ts, pid, call, line))
    if not events:
        return None
    start, end = events[0][0], events[-1][0]

    def first(pred, after=0.0):
        for ts, pid, call, line in events:
            if ts >= after and pred(call, line):
                return ts
        return None

    def last(pred):
        found = None
        for ts, pid, call, line in events:
            if pred(call, line):
                found = ts
        return found

    marks = [("process start: execve, dynamic loader, Rust runtime, argument parsing", start)]
    t = first(lambda c, l: c == "read" and re.search(r"read\(0,", l))
    if t:
        marks.append(("OCI state, bundle config.json, network definition, capabilities, owner", t))
    t = first(lambda c, l: c == "socket" and "AF_NETLINK" in l)
    if t:
        marks.append(("tokio runtime, host netlink socket, parent link lookup", t))
    lock = None
    for ts, pid, call, line in events:
        m = re.search(r'open(?:at)?\(.*/lock", .*\) = (\d+)', line)
        if m:
            lock = (ts, m.group(1))
            break
    if lock:
        marks.append(("IPAM under the network lock: index, lease file, cursor", lock[0]))
        t = first(lambda c, l: c == "close" and re.search(rf"close\({lock[1]}\)", l), after=lock[0])
        if t:
            marks.append(("link: create in the netns, rename, sysctls, addresses, up, routes", t))
    t = last(lambda c, l: c == "write" and re.search(r"write\(2,", l))
    if t:
        marks.append(("message on stderr, exit", t))
    marks.sort(key=lambda m: m[1])
    phases = []
    # exit_group is the last event; its time is when the process asked to exit.
    for (name, ts), (_, nts) in zip(marks, marks[1:] + [("end", end)]):
        phases.append((name, (nts - ts) * 1e3))
    fsyncs = sum(v[0] for k, v in by_call.items() if k in ("fsync", "fdatasync"))
    fsync_ms = sum(v[1] for k, v in by_call.items() if k in ("fsync", "fdatasync")) * 1e3
    top = sorted(by_call.items(), key=lambda kv: -kv[1][1])[:12]
    return {
        "total_ms": (end - start) * 1e3,
        "syscalls": sum(v[0] for v in by_call.values()),
        "fsyncs": fsyncs,
        "fsync_ms": fsync_ms,
        "phases": phases,
        "top": [(k, v[0], v[1] * 1e3) for k, v in top],
        "threads": len({e[1] for e in events}),
    }


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


# --------------------------------------------------------------------------------------------
# Report


def ratio_row(S, name, num, den, target, note=""):
    a, b = S.med(num), S.med(den)
    r = a / b
    cpu = None
    if S.cpu.get(num) and S.cpu.get(den):
        cpu = statistics.median(S.cpu[num]) / max(1, statistics.median(S.cpu[den]))
    return {"target": name, "ours_ms": a, "ref_ms": b, "ratio": r, "limit": target,
            "pass": r <= target, "note": note, "num": num, "den": den, "cpu_ratio": cpu}


def fmt_ms(x):
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def write_report(out_dir, S, meta, targets, strace, dups, counts, n_conc, plot_ok):
    s = S.summary()
    L = []
    L.append("# Benchmark: ipvlan-hook against the CNI plugins, netavark and `ip -batch`")
    L.append("")
    L.append("Generated by `bench/run.sh` (issue 6). Medians of interleaved runs on this machine; "
             "absolute times drift with the shared host, the ratios (same run) are what the targets "
             "judge. Raw numbers: `benchmark.json`; one strace of our setup: `benchmark-strace.txt`. "
             "What the numbers mean, the experiments behind that and the suggested changes: "
             "`benchmark-notes.md` (written by hand, not by this script).")
    L.append("")
    L.append("| | |")
    L.append("| --- | --- |")
    for k, v in meta.items():
        L.append(f"| {k} | {v} |")
    L.append("")
    L.append("## Targets")
    L.append("")
    L.append("The targets judge the ratio of median wall times. The CPU ratio (user+sys time of the "
             "process and its children, from wait4) is shown beside it: on a loaded machine a process "
             "waits for a CPU in proportion to the CPU it needs, so the two ratios move together.")
    L.append("")
    L.append("| target | ours | reference | ratio | limit | result | CPU ratio |")
    L.append("| --- | --- | --- | --- | --- | --- | --- |")
    for t in targets:
        if "ratio" in t:
            cpu = f"{t['cpu_ratio']:.2f}x" if t.get("cpu_ratio") else ""
            L.append(f"| {t['target']} | {fmt_ms(t['ours_ms'])} ms | {fmt_ms(t['ref_ms'])} ms | "
                     f"{t['ratio']:.2f}x | ≤{t['limit']}x | {'PASS' if t['pass'] else '**MISS**'} | {cpu} |")
        else:
            L.append(f"| {t['target']} | {t['value']} | | | {t['limit']} | "
                     f"{'PASS' if t['pass'] else '**MISS**'} | |")
    L.append("")
    L.append("## All measurements")
    L.append("")
    have_ref = ("ours", "setup") in S.t and ("ours", "teardown (netns gone)") in S.t
    L.append("Wall time of the whole process as a runtime starts it (spawn to wait4); "
             "CPU time (user+sys) from wait4; peak RSS from separate runs under GNU time." + (" Ratio: median against our v4 `setup` "
             f"({fmt_ms(S.med(('ours', 'setup')))} ms) or our `teardown (netns gone)` "
             f"({fmt_ms(S.med(('ours', 'teardown (netns gone)')))} ms)." if have_ref else ""))
    L.append("")
    L.append("| tool | operation | n | median ms | p90 ms | ratio to ours | CPU ms (user+sys, median) | sleeps (voluntary context switches, median) | peak RSS KiB, GNU time (median / max) |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    ref_setup = S.med(("ours", "setup")) if have_ref else None
    ref_td = S.med(("ours", "teardown (netns gone)")) if have_ref else None
    for (tool, op), v in s.items():
        base = ref_td if op.startswith("teardown") else ref_setup
        ratio = f"{v['median_ms'] / base:.2f}x" if base and "at once" not in op and "nothing" not in op and "spawn" not in op else ""
        rss = f"{v['rss_median_kib']:.0f} / {v['rss_max_kib']}" if v["rss_max_kib"] else ""
        cpu = fmt_ms(v["cpu_median_ms"]) if v.get("cpu_median_ms") else ""
        sw = f"{v['voluntary_switches_median']:.0f}" if v.get("voluntary_switches_median") is not None and "at once" not in op else ""
        L.append(f"| {tool} | {op} | {v['n']} | {fmt_ms(v['median_ms'])} | {fmt_ms(v['p90_ms'])} | {ratio} | {cpu} | {sw} | {rss} |")
    L.append("")
    if dups:
        L.append(f"Concurrent setups ({n_conc} at once): duplicate addresses found per round: "
                 + ", ".join(f"{k} {v}" for k, v in dups.items()) + ".")
        L.append("")
    if strace:
        L.append("## Where our setup time goes (one `createRuntime` under `strace -f -ttt -T`)")
        L.append("")
        L.append(f"{strace['runs']} traced setups; the median one took {strace['total_ms']:.1f} ms under strace with {strace['syscalls']} "
                 f"syscalls on {strace['threads']} threads; {strace['fsyncs']} fsyncs took "
                 f"{strace['fsync_ms']:.1f} ms of it. strace slows every syscall down: read the "
                 "shares, not the absolute times.")
        L.append("")
        L.append("| phase (from landmarks in the trace) | ms under strace (median of the runs) | share |")
        L.append("| --- | --- | --- |")
        for name, ms in strace["phases"]:
            L.append(f"| {name} | {ms:.2f} | {100 * ms / sum(m for _, m in strace['phases']):.0f}% |")
        L.append("")
        L.append("Syscalls of the median run:")
        L.append("")
        L.append("| syscall | calls | time in call, ms |")
        L.append("| --- | --- | --- |")
        for name, n, ms in strace["top"]:
            L.append(f"| {name} | {n} | {ms:.2f} |")
        L.append("")
    if plot_ok:
        L.append("![setup latency per tool, and against the number of existing leases](benchmark.png)")
        L.append("")
    L.append("## How it is measured")
    L.append("")
    L.append(__doc__.split("How it measures", 1)[1].strip().replace("\n- ", "\n\n- "))
    L.append("")
    L.append("- ours: `ipvlan-hook --config-dir C --state-dir S hook createRuntime` with the OCI state "
             "(pid of the netns holder, `ipvlan.network=NET`, a bundle whose config.json is `runc spec`'s) "
             "on stdin and an empty environment, as runc runs a hook; `hook poststop` after the holder "
             "was killed (the runtime-made netns died with the container: only the lease is left to "
             "release). `ours, pre-created netns`: the bundle names a netns bind mount (`ip netns attach`), "
             "which outlives the container, so poststop deletes the link as well: the same work as CNI DEL. "
             "Networks: `network create NET --driver macvlan --parent p0 --subnet 10.10.0.0/16` "
             "(dual: `--subnet 10.11.0.0/16 --subnet fd11::/64`). State directory on the root "
             f"filesystem ({meta.get('state dir (ours)', '')}), and once more on a tmpfs.")
    L.append("- CNI: `/usr/lib/cni/macvlan` (master p0, mode bridge) with `host-local` IPAM "
             "(dataDir next to our state directory), ADD and DEL with CNI_COMMAND, CNI_CONTAINERID, "
             "CNI_NETNS=/proc/PID/ns/net, CNI_IFNAME=eth0, CNI_PATH; DEL with the netns alive (what "
             "engines do) and after the netns is gone.")
    L.append("- netavark: `/usr/lib/podman/netavark --config DIR setup|teardown /proc/PID/ns/net` with a "
             "macvlan network on p0 and static IPs (netavark 1.4 JSON on stdin, default firewall driver).")
    L.append("- floor: `ip -batch -` started inside the container netns: `netns set HOST 1`, "
             "`link add link ifN link-netnsid 1 name eth0 type macvlan mode bridge`, `addr add` "
             "(IPv6 `nodad`), `link set eth0 up`, `route add default via GW`.")
    L.append(f"- IPAM scale: before each count, the lease files are written directly in the stores' "
             f"formats (ours: `leases/ADDR` with the JSON lease copied from one the binary wrote, "
             f"`containers/ID` index, `cursor-SUBNET` set to the last lease; host-local: `ADDR` holding "
             f"`ID\\r\\neth0` and `last_reserved_ip.0`), one /16 each, counts {', '.join(map(str, counts))}. "
             "`ours, cursor lost` deletes the cursor before each setup: the worst case, a walk over every lease.")
    L.append(f"- concurrency: {n_conc} children are forked, each blocks on a pipe (after entering its netns "
             "for `ip`), all are released at once; wall time from the release to the last exit. Every "
             "container's address is read back and checked for duplicates. Before each tool's round the "
             "benchmark waits until the kernel has destroyed the namespaces of earlier runs "
             "(`net_namespace` in /proc/slabinfo back near its count at the start): its cleanup worker "
             "takes the rtnl lock in batches and would slow whichever round comes next.")
    L.append("")
    with open(os.path.join(out_dir, "benchmark.md"), "w") as f:
        f.write("\n".join(L))


def plain_log_axis(axis):
    """Log axis ticks as plain milliseconds: 1 2 5 10 20 50 ..."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
    ticks = [m * 10 ** e for e in range(-1, 5) for m in (1, 2, 5)]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_minor_locator(NullLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def plot(out_dir, S, counts):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing: no plot (apt-get install python3-matplotlib)")
        return False
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 6.2), gridspec_kw={"width_ratios": [1.35, 1]})
    rows = [
        ("ours", "setup", "ours"),
        ("ours, state on tmpfs", "setup", "ours (state on tmpfs)"),
        ("ours, pre-created netns", "setup", "ours (pre-created netns)"),
        ("ip -batch (floor)", "setup", "ip -batch floor"),
        ("netavark", "setup", "netavark"),
        ("CNI macvlan+host-local", "setup", "CNI macvlan ADD"),
        ("ours", "teardown (netns gone)", "ours poststop (netns gone)"),
        ("ours, pre-created netns", "teardown (netns alive)", "ours poststop (netns alive)"),
        ("ip -batch (floor)", "teardown (netns alive)", "ip link del"),
        ("netavark", "teardown (netns alive)", "netavark teardown"),
        ("CNI macvlan+host-local", "teardown (netns gone)", "CNI DEL (netns gone)"),
        ("CNI macvlan+host-local", "teardown (netns alive)", "CNI DEL (netns alive)"),
        ("ours", "setup dual stack", "ours dual stack"),
        ("ip -batch (floor)", "setup dual stack", "ip -batch dual stack"),
        ("netavark", "setup dual stack", "netavark dual stack"),
        ("CNI macvlan+host-local", "setup dual stack", "CNI ADD dual stack (DAD)"),
    ]
    rows = [r for r in rows if (r[0], r[1]) in S.t]
    labels = [r[2] for r in rows]
    meds = [S.med((r[0], r[1])) for r in rows]
    lo = [sorted(S.t[(r[0], r[1])])[int(0.1 * (len(S.t[(r[0], r[1])]) - 1))] / 1e6 for r in rows]
    hi = [S.p90((r[0], r[1])) for r in rows]
    colors = ["tab:green" if l.startswith("ours") else "tab:gray" if l.startswith("ip") else
              "tab:orange" if l.startswith("netavark") else "tab:blue" for l in labels]
    y = list(range(len(rows)))[::-1]
    ax1.barh(y, meds, color=colors, xerr=[[m - a for m, a in zip(meds, lo)], [b - m for m, b in zip(meds, hi)]],
             capsize=2)
    for yy, m, h in zip(y, meds, hi):
        ax1.text(max(m, h) * 1.12, yy, f"{fmt_ms(m)} ms", va="center", fontsize=8)
    # Separate setup, teardown and dual-stack groups.
    groups = [i for i in range(1, len(labels)) if
              ("poststop" in labels[i] or "del" in labels[i].lower() or "teardown" in labels[i])
              != ("poststop" in labels[i - 1] or "del" in labels[i - 1].lower() or "teardown" in labels[i - 1])
              or ("dual" in labels[i]) != ("dual" in labels[i - 1])]
    for g in groups:
        ax1.axhline(y[g] + 0.5, color="black", linewidth=0.6)
    ax1.set_yticks(y)
    ax1.set_yticklabels(labels, fontsize=9)
    ax1.set_xscale("log")
    ax1.set_xlabel("median wall time, ms (log scale; whiskers p10-p90)")
    ax1.set_title("Setup and teardown per tool (macvlan on veth, host kernel)")
    ax1.grid(axis="x", which="both", alpha=0.3)
    ax1.set_xlim(right=max(hi) * 4)
    plain_log_axis(ax1.xaxis)

    xs = list(range(len(counts)))
    for tool, label, color, marker in [
        ("ours", "ours", "tab:green", "o"),
        ("ours, cursor lost", "ours, cursor lost (worst case)", "tab:olive", "s"),
        ("CNI macvlan+host-local", "CNI host-local ADD", "tab:blue", "^"),
    ]:
        ys = [S.med((tool, f"setup, {c} leases")) for c in counts if (tool, f"setup, {c} leases") in S.t]
        if len(ys) == len(counts):
            ax2.plot(xs, ys, marker=marker, color=color, label=label)
            for x, v in zip(xs, ys):
                ax2.annotate(f"{fmt_ms(v)}", (x, v), textcoords="offset points", xytext=(4, 6), fontsize=8, color=color)
    ax2.set_xticks(xs)
    ax2.set_xticklabels([f"{c:,}" for c in counts])
    ax2.set_yscale("log")
    ax2.set_xlabel("existing leases on the /16 network")
    ax2.set_ylabel("median setup wall time, ms (log scale)")
    ax2.set_title("Setup against lease count")
    ax2.grid(which="both", alpha=0.3)
    plain_log_axis(ax2.yaxis)
    ax2.margins(x=0.12)
    ax2.legend(fontsize=9, loc="center left")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "benchmark.png"), dpi=110)
    return True


# --------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the ipvlan-hook release binary")
    ap.add_argument("--iterations", type=int, default=200, help="interleaved v4 iterations")
    ap.add_argument("--dual-iterations", type=int, default=100)
    ap.add_argument("--dual-cni-every", type=int, default=5,
                    help="CNI dual stack waits ~2 s for DAD: run it in every Nth dual iteration")
    ap.add_argument("--scale-counts", default="0,250,10000,60000")
    ap.add_argument("--scale-iterations", type=int, default=30)
    ap.add_argument("--rss-iterations", type=int, default=5, help="runs under GNU time per tool, for peak RSS")
    ap.add_argument("--concurrent", type=int, default=64)
    ap.add_argument("--concurrent-rounds", type=int, default=10)
    ap.add_argument("--disk-dir", default="/var/lib", help="where the on-disk state dirs go (ext4 in production)")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "docs"))
    ap.add_argument("--skip", default="", help="comma list of phases to skip: main,dual,scale,concurrent,strace")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--compare-bin", default=None,
                    help="a second ipvlan-hook build, run in the same v4 interleaving (A/B of a change)")
    ap.add_argument("--bin-label", default=None, help="how the report names the binary (default: its path and git HEAD)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        die("run as root (bench/run.sh)")
    for p in (f"{CNI_DIR}/macvlan", f"{CNI_DIR}/host-local", NETAVARK):
        if not os.access(p, os.X_OK):
            die(f"{p} missing: bench/run.sh installs it")
    skip = set(filter(None, args.skip.split(",")))
    counts = [int(c) for c in args.scale_counts.split(",")]
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    binary = os.path.abspath(args.bin)
    rng = random.Random(args.seed)

    global _OUT
    env = Env(args)
    _OUT = tempfile.TemporaryFile()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    S = Stats()
    targets = []
    dups = {}
    strace = None
    try:
        env.start()
        netns_baseline = netns_objects() or 0
        etc = os.path.join(env.base, "etc")
        state = os.path.join(env.base, "state")
        state_t = os.path.join(env.tmpfs, "state")
        bundle_cfg = json.load(open(os.path.join(HERE, "oci-config.json")))
        hook = [binary, "--config-dir", etc, "--state-dir", state]
        sh(*hook, "network", "create", "bench4", "--driver", "macvlan", "--parent", "p0", "--subnet", "10.10.0.0/16")
        sh(*hook, "network", "create", "bench4t", "--driver", "macvlan", "--parent", "p0", "--subnet", "10.12.0.0/16")
        sh(*hook, "network", "create", "benchd", "--driver", "macvlan", "--parent", "p0",
           "--subnet", "10.11.0.0/16", "--subnet", "fd11::/64")
        sh(*hook, "network", "create", "benchdt", "--driver", "macvlan", "--parent", "p0",
           "--subnet", "10.13.0.0/16", "--subnet", "fd13::/64")
        sh(*hook, "network", "create", "scale", "--driver", "macvlan", "--parent", "p0", "--subnet", "10.50.0.0/16")
        ours = Ours(binary, etc, state, "bench4", bundle_cfg)
        ours_t = Ours(binary, etc, state_t, "bench4t", bundle_cfg)
        cni_dir = os.path.join(env.base, "cni")
        cni = Cni("cni4", cni_dir, "10.20.0.0/16")
        cnid = Cni("cnid", cni_dir, "10.21.0.0/16", "fd21::/64")
        cnis = Cni("cniscale", cni_dir, "10.60.0.0/16")
        nv_dir = os.path.join(env.base, "netavark")
        os.makedirs(nv_dir)
        nv = Netavark("nv4", nv_dir, "10.30.0.0/16")
        nvd = Netavark("nvd", nv_dir, "10.31.0.0/16", "fd31::/64")
        ipb = IpBatch(env.name, env.host_fd, env.parent_index, "10.40.0.0/16")
        ipbd = IpBatch(env.name, env.host_fd, env.parent_index, "10.41.0.0/16", "fd41::/64")

        meta = {
            "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "machine": f"{os.cpu_count()} vCPUs, kernel {platform.release()}",
            "ipvlan-hook": f"{args.bin_label or binary + git_head()} ({os.path.getsize(binary):,} bytes)",
            "peers": f"containernetworking-plugins {pkg_version('containernetworking-plugins')}, "
                     f"netavark {pkg_version('netavark')}, iproute2 {pkg_version('iproute2')}",
            "state dir (ours)": f"{state} ({fs_type(state if os.path.exists(state) else env.base)}); "
                                f"tmpfs run: {state_t} ({fs_type(env.tmpfs)})",
            "for reference, one fsynced file write (write+fsync+rename+fsync dir)":
                f"{fsync_cost(env.base):.2f} ms on {fs_type(env.base)}, {fsync_cost(env.tmpfs):.3f} ms on tmpfs",
            "iterations": f"v4 {args.iterations}, dual {args.dual_iterations} (CNI every {args.dual_cni_every}th), "
                          f"scale {args.scale_iterations} per count, concurrency {args.concurrent_rounds} rounds of {args.concurrent}",
        }
        meta["load average (1 min) at start"] = open("/proc/loadavg").read().split()[0]
        log(f"state {state}, meta {meta}")
        if "main" not in skip:
            log(f"v4 setup/teardown, {args.iterations} interleaved iterations")
            ours_b = args.compare_bin and Ours(os.path.abspath(args.compare_bin), etc, state, "bench4", bundle_cfg)
            phase_main(env, S, ours, ours_t, cni, nv, ipb, args.iterations, rng, args.rss_iterations, ours_b)
        if "dual" not in skip:
            log(f"dual stack, {args.dual_iterations} iterations")
            phase_dual(env, S, ours, ours_t, "bench4", "benchd", "bench4t", "benchdt", cnid, nvd, ipbd,
                       args.dual_iterations, args.dual_cni_every, rng,
                       args.rss_iterations)
        if "scale" not in skip:
            log(f"IPAM scale at {counts} leases")
            phase_scale(env, S, ours, cnis, "scale", "10.50.0.0/16", "10.60.0.0/16", counts, args.scale_iterations, rng,
                        min(args.rss_iterations, 2))
        if "concurrent" not in skip:
            log(f"{args.concurrent} setups at once, {args.concurrent_rounds} rounds")
            dups = phase_concurrent(env, S, ours, cni, nv, ipb, args.concurrent, args.concurrent_rounds, rng,
                                    netns_baseline)
        if "strace" not in skip:
            strace = phase_strace(env, ours, out_dir)

        meta["load average (1 min) at the end"] = open("/proc/loadavg").read().split()[0]
        have = S.t.keys()
        O, C, N, I = "ours", "CNI macvlan+host-local", "netavark", "ip -batch (floor)"
        if (O, "setup") in have:
            targets.append(ratio_row(S, "setup ≤0.5x CNI ADD", (O, "setup"), (C, "setup"), 0.5))
            targets.append(ratio_row(S, "setup ≤0.8x netavark setup", (O, "setup"), (N, "setup"), 0.8))
            targets.append(ratio_row(S, "setup ≤1.0x `ip -batch` floor", (O, "setup"), (I, "setup"), 1.0))
            targets.append(ratio_row(S, "teardown, netns gone ≤0.1x CNI DEL (netns alive)",
                                     (O, "teardown (netns gone)"), (C, "teardown (netns alive)"), 0.1))
            targets.append(ratio_row(S, "(same, against CNI DEL with the netns gone too)",
                                     (O, "teardown (netns gone)"), (C, "teardown (netns gone)"), 0.1))
        if (O, "setup dual stack") in have:
            targets.append(ratio_row(S, "dual stack ≤1.2x our v4 setup",
                                     (O, "setup dual stack"), (O, "setup v4 (dual-stack run)"), 1.2))
            OT = "ours, state on tmpfs"
            targets.append(ratio_row(S, "(same, state on tmpfs)",
                                     (OT, "setup dual stack"), (OT, "setup v4 (dual-stack run)"), 1.2))
        if counts and (O, f"setup, {counts[-1]} leases") in have:
            targets.append(ratio_row(S, f"setup at {counts[-1]:,} leases ≤1.5x at {counts[0]}",
                                     (O, f"setup, {counts[-1]} leases"), (O, f"setup, {counts[0]} leases"), 1.5))
            targets.append(ratio_row(S, f"(same, cursor lost: worst case)",
                                     ("ours, cursor lost", f"setup, {counts[-1]} leases"),
                                     ("ours, cursor lost", f"setup, {counts[0]} leases"), 1.5))
        n = args.concurrent
        if (O, f"{n} setups at once") in have:
            targets.append(ratio_row(S, f"{n} setups at once ≤1.5x {n} `ip -batch` at once",
                                     (O, f"{n} setups at once"), (I, f"{n} setups at once"), 1.5))
        rss = [v for (t, op), vs in S.rss.items() if t.startswith("ours") for v in vs if v]
        if rss:
            floor = S.rss.get(("/bin/true (harness)", "spawn+wait"))
            setup_rss = S.rss.get((O, "setup"))
            detail = []
            if setup_rss:
                detail.append(f"v4 setup median {statistics.median(setup_rss):.0f} KiB")
            if floor:
                detail.append(f"/bin/true under GNU time: {statistics.median(floor):.0f} KiB")
            targets.append({"target": "peak RSS ≤3 MiB (max over all our runs)",
                            "value": f"{max(rss)} KiB ({'; '.join(detail)})",
                            "limit": "3072 KiB", "pass": max(rss) <= 3072})
        targets.append({"target": "release binary size", "value": f"{os.path.getsize(binary):,} bytes",
                        "limit": "report", "pass": True})
        for t in targets:
            if "ratio" in t:
                log(f"{t['target']}: {t['ratio']:.2f}x ({fmt_ms(t['ours_ms'])} vs {fmt_ms(t['ref_ms'])} ms) "
                    f"{'PASS' if t['pass'] else 'MISS'}")
            else:
                log(f"{t['target']}: {t['value']} {'PASS' if t['pass'] else 'MISS'}")
        plot_ok = plot(out_dir, S, counts) if "scale" not in skip and "main" not in skip else False
        write_report(out_dir, S, meta, targets, strace, dups, counts, n, plot_ok)
        with open(os.path.join(out_dir, "benchmark.json"), "w") as f:
            json.dump({"meta": meta, "summary": {f"{k[0]} | {k[1]}": v for k, v in S.summary().items()},
                       "targets": [{k: (list(v) if isinstance(v, tuple) else v) for k, v in t.items()} for t in targets],
                       "strace": strace, "duplicates": dups}, f, indent=1)
        log(f"wrote {out_dir}/benchmark.md, benchmark.png, benchmark.json")
    finally:
        env.stop()


def git_head():
    try:
        rev = subprocess.run(["git", "-C", HERE, "describe", "--always", "--dirty"], capture_output=True, text=True)
        return f", tree {rev.stdout.strip()}" if rev.returncode == 0 else ""
    except OSError:
        return ""


def pkg_version(pkg):
    try:
        return sh("dpkg-query", "-W", "-f", "${Version}", pkg).strip()
    except Exception:
        return "?"


if __name__ == "__main__":
    main()
