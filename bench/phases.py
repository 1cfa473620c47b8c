"""The benchmark's phases, each a function of the one context (harness.Ctx): main (v4 setup and
teardown of every tool, interleaved), dual (dual stack), multi (two networks), scale (setup against existing
leases), concurrent (N setups at once) and strace (where our setup time goes). What each
measures and why: docs/benchmark-notes.md; how the numbers are taken: harness.py."""

import ipaddress
import os
import re
import shutil
import statistics
import subprocess
import time

from harness import cid, concurrent, die, log, must, settle, sh
from tools import (CNI_HOST_LOCAL, CNI_OUR_IPAM, CNI_OURS, CNI_SCALE_SUBNET, NET4, NET4_SECOND, NET4_TMPFS, NET_DUAL,
                   NET_DUAL_TMPFS, NET_SCALE, SCALE_SUBNET, TIGHT, populate_cni, populate_ours, template_lease)


def cycle(ctx, o, label, setup_op="setup", teardown_op="teardown (netns gone)", network=None):
    """One of ours, as a container whose netns dies with it: setup, the container ends,
    poststop. teardown_op None: the poststop is run but not recorded."""
    S = ctx.stats
    c = ctx.host.holder()
    id_ = cid()
    S.add((label, setup_op), must(o.setup(c, id_, network), f"{label}: {setup_op}"))
    c.kill()
    t = must(o.teardown(id_, network), f"{label}: poststop")
    if teardown_op:
        S.add((label, teardown_op), t)


def phase_main(ctx):
    """v4: setup and teardown of every tool, interleaved (and of a second build, ctx.ours_b)."""
    S, host, ours, cni, nv, ipb = ctx.stats, ctx.host, ctx.ours, ctx.cni, ctx.nv, ctx.ipb
    iters = ctx.args.iterations

    def t_ours():
        cycle(ctx, ours, "ours")

    def t_ours_b():
        cycle(ctx, ctx.ours_b, "ours, --compare-bin")

    def t_ours_tmpfs():
        cycle(ctx, ctx.ours_t, "ours, state on tmpfs")

    def t_ours_pre():
        # An engine-made netns (podman --network ns:, CRI-O): it outlives the container, so
        # poststop deletes the link too: the same work as CNI DEL.
        c = host.holder()
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
        c = host.holder()
        S.add(("ours, no annotations", "hook (nothing to do)"), must(ours.noop(c), "ours noop"))
        c.kill()

    def t_cni():
        c = host.holder()
        id_ = cid()
        S.add(("CNI macvlan+host-local", "setup"), must(cni.add(c, id_), "CNI ADD"))
        S.add(("CNI macvlan+host-local", "teardown (netns alive)"), must(cni.delete(c.path, id_), "CNI DEL"))
        c.kill()

    def t_cni_dead():
        c = host.holder()
        id_ = cid()
        S.add(("CNI macvlan+host-local", "setup"), must(cni.add(c, id_), "CNI ADD"))
        path = c.path
        c.kill()
        S.add(("CNI macvlan+host-local", "teardown (netns gone)"), must(cni.delete(path, id_), "CNI DEL (dead)"))

    def t_nv():
        c = host.holder()
        id_ = cid()
        opts = nv.next_options(id_)
        S.add(("netavark", "setup"), must(nv.setup(c, opts), "netavark setup"))
        S.add(("netavark", "teardown (netns alive)"), must(nv.teardown(c, opts), "netavark teardown"))
        c.kill()

    def t_ip():
        c = host.holder()
        S.add(("ip -batch (floor)", "setup"), must(ipb.setup(c, ipb.script()), "ip -batch"))
        S.add(("ip -batch (floor)", "teardown (netns alive)"), must(ipb.teardown(c), "ip link del"))
        c.kill()

    def t_tight():
        tight(ctx, ctx.ipt, TIGHT)

    def t_true():
        spawn_true(ctx)

    tasks = [t_ours, t_ours_tmpfs, t_ours_pre, t_ours_noop, t_cni, t_cni_dead, t_nv, t_ip, t_tight, t_true]
    if ctx.ours_b:
        tasks.append(t_ours_b)
    interleave(ctx, tasks, iters, "v4", lambda: (
        f"ours {S.med(('ours', 'setup')):.2f} ms, "
        f"CNI {S.med(('CNI macvlan+host-local', 'setup')):.2f} ms, "
        f"netavark {S.med(('netavark', 'setup')):.2f} ms, ip {S.med(('ip -batch (floor)', 'setup')):.2f} ms"))


def interleave(ctx, tasks, iters, what, progress):
    """The RSS runs, then `iters` iterations that each run every task once in a shuffled order
    (drift of the shared machine hits all alike); `progress()` is logged ten times."""
    ctx.timer.with_rss(ctx.args.rss_iterations, lambda: [t() for t in tasks])
    for i in range(iters):
        ctx.rng.shuffle(tasks)
        for t in tasks:
            t()
        ctx.host.reap()
        if (i + 1) % max(1, iters // 10) == 0:
            log(f"  {what} iteration {i + 1}/{iters}: {progress()}")


def spawn_true(ctx):
    """The harness's own spawn: /bin/true, started the way every tool is."""
    ctx.stats.add(("/bin/true (harness)", "spawn+wait"),
                  must(ctx.timer.timed([shutil.which("true")], b"{}", {}), "true"))


def tight(ctx, ipt, label, l3=False):
    """One tight-floor setup (tools.IpTight) in a fresh container, recorded as `label`."""
    c = ctx.host.holder()
    ipt.prepare(c)
    try:
        ctx.stats.add((label, "setup"), must(ipt.setup(c, ipt.script(l3=l3)), "ip -n -batch"))
    finally:
        ipt.release(c)
        c.kill()


def phase_cni(ctx):
    """CNI ADD and DEL (netns alive) as a CNI runtime runs them, interleaved: our plugin, the CNI
    macvlan plugin with our IPAM, and the same with host-local."""
    S, host = ctx.stats, ctx.host

    def add_del(tool, label):
        def t():
            c = host.holder()
            id_ = cid()
            S.add((label, "CNI ADD"), must(tool.add(c, id_), f"{label}: ADD"))
            S.add((label, "CNI DEL (netns alive)"), must(tool.delete(c.path, id_), f"{label}: DEL"))
            c.kill()
        return t

    tasks = [add_del(ctx.cni, CNI_HOST_LOCAL), add_del(ctx.cni_ours, CNI_OURS),
             add_del(ctx.cni_ipam, CNI_OUR_IPAM)]
    interleave(ctx, tasks, ctx.args.cni_iterations, "CNI", lambda: (
        f"ours {S.med((CNI_OURS, 'CNI ADD')):.2f} ms, "
        f"macvlan+ours {S.med((CNI_OUR_IPAM, 'CNI ADD')):.2f} ms, "
        f"macvlan+host-local {S.med((CNI_HOST_LOCAL, 'CNI ADD')):.2f} ms"))


def phase_dual(ctx):
    """Dual stack (v4+v6) next to our v4-only setup (state on disk, and on tmpfs)."""
    S, host, ours, ours_t, cnid, nvd, ipbd = ctx.stats, ctx.host, ctx.ours, ctx.ours_t, ctx.cnid, ctx.nvd, ctx.ipbd
    iters, cni_every = ctx.args.dual_iterations, ctx.args.dual_cni_every

    def t_ours4_t():
        cycle(ctx, ours_t, "ours, state on tmpfs", "setup v4 (dual-stack run)", None, NET4_TMPFS)

    def t_oursd_t():
        cycle(ctx, ours_t, "ours, state on tmpfs", "setup dual stack", None, NET_DUAL_TMPFS)

    def t_ours4():
        cycle(ctx, ours, "ours", "setup v4 (dual-stack run)", None, NET4)

    def t_oursd():
        cycle(ctx, ours, "ours", "setup dual stack", "teardown dual stack (netns gone)", NET_DUAL)

    def t_cnid():
        c = host.holder()
        id_ = cid()
        S.add(("CNI macvlan+host-local", "setup dual stack"), must(cnid.add(c, id_), "CNI dual ADD"))
        S.add(("CNI macvlan+host-local", "teardown dual stack (netns alive)"), must(cnid.delete(c.path, id_), "CNI dual DEL"))
        c.kill()

    def t_nvd():
        c = host.holder()
        id_ = cid()
        opts = nvd.next_options(id_)
        S.add(("netavark", "setup dual stack"), must(nvd.setup(c, opts), "netavark dual"))
        S.add(("netavark", "teardown dual stack (netns alive)"), must(nvd.teardown(c, opts), "netavark dual teardown"))
        c.kill()

    def t_ipd():
        c = host.holder()
        S.add(("ip -batch (floor)", "setup dual stack"), must(ipbd.setup(c, ipbd.script()), "ip -batch dual"))
        c.kill()

    ctx.timer.with_rss(ctx.args.rss_iterations, lambda: [t() for t in (t_ours4, t_oursd, t_nvd, t_ipd)])
    ctx.timer.with_rss(1, t_cnid)
    for i in range(iters):
        tasks = [t_ours4, t_oursd, t_ours4_t, t_oursd_t, t_nvd, t_ipd]
        if i % cni_every == 0:
            tasks.append(t_cnid)
        ctx.rng.shuffle(tasks)
        for t in tasks:
            t()
        if (i + 1) % max(1, iters // 5) == 0:
            log(f"  dual iteration {i + 1}/{iters}: ours v4 {S.med(('ours', 'setup v4 (dual-stack run)')):.2f} ms, "
                f"dual {S.med(('ours', 'setup dual stack')):.2f} ms")


def phase_multi(ctx):
    """A container on two v4 networks (`ipvlan.networks`) next to one on a single network,
    interleaved: what a second attachment adds to the hook's setup."""
    S, ours, iters = ctx.stats, ctx.ours, ctx.args.multi_iterations

    def t_one():
        cycle(ctx, ours, "ours", "setup, one network (two-network run)", None, NET4)

    def t_two():
        cycle(ctx, ours, "ours", "setup, two networks", "teardown, two networks (netns gone)",
              [NET4, NET4_SECOND])

    # What is timed is what it says: a container with an address on each of its two interfaces.
    c, id_ = ctx.host.holder(), cid()
    must(ours.setup(c, id_, [NET4, NET4_SECOND]), "two networks: setup")
    got = [ctx.host.addresses_in(c, dev=d) for d in ("eth0", "eth1")]
    c.kill()
    must(ours.teardown(id_, [NET4, NET4_SECOND]), "two networks: poststop")
    if not all(got):
        die(f"two networks: expected an address on eth0 and eth1, got {got}")
    ctx.timer.with_rss(ctx.args.rss_iterations, lambda: [t() for t in (t_one, t_two)])
    for i in range(iters):
        tasks = [t_one, t_two]
        ctx.rng.shuffle(tasks)
        for t in tasks:
            t()
        ctx.host.reap()
        if (i + 1) % max(1, iters // 5) == 0:
            log(f"  two-network iteration {i + 1}/{iters}: one {S.med(('ours', 'setup, one network (two-network run)')):.2f} ms, "
                f"two {S.med(('ours', 'setup, two networks')):.2f} ms")


def phase_scale(ctx):
    """Setup and teardown against `ctx.counts` existing leases, ours and host-local's."""
    S, host, ours, cni = ctx.stats, ctx.host, ctx.ours, ctx.cnis
    net, subnet = NET_SCALE, SCALE_SUBNET
    lease_tpl, index_tpl = template_lease(ours, net, host)
    for count in ctx.counts:
        t0 = time.time()
        cursor = populate_ours(ours, net, subnet, count, lease_tpl, index_tpl)
        populate_cni(cni, CNI_SCALE_SUBNET, count)
        log(f"  {count} leases written in {time.time() - t0:.1f} s")

        def t_ours():
            c = host.holder()
            id_ = cid()
            S.add(("ours", f"setup, {count} leases"), must(ours.setup(c, id_, net), f"ours setup at {count}"))
            c.kill()
            S.add(("ours", f"teardown, {count} leases"), must(ours.teardown(id_, net), f"ours poststop at {count}"))

        def t_ours_nocursor():
            # Worst case: the round-robin cursor is lost (it is not fsynced) or sits before a
            # run of taken addresses: the allocator walks every lease from the start.
            c = host.holder()
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
            c = host.holder()
            id_ = cid()
            S.add(("CNI macvlan+host-local", f"setup, {count} leases"), must(cni.add(c, id_), f"CNI ADD at {count}"))
            S.add(("CNI macvlan+host-local", f"teardown, {count} leases"), must(cni.delete(c.path, id_), f"CNI DEL at {count}"))
            c.kill()

        tasks = [t_ours, t_ours_nocursor, t_cni]
        ctx.timer.with_rss(min(ctx.args.rss_iterations, 2), lambda: [t() for t in tasks])
        for _ in range(ctx.args.scale_iterations):
            ctx.rng.shuffle(tasks)
            for t in tasks:
                t()
        log(f"  {count} leases: ours {S.med(('ours', f'setup, {count} leases')):.2f} ms, "
            f"cursor lost {S.med(('ours, cursor lost', f'setup, {count} leases')):.2f} ms, "
            f"CNI {S.med(('CNI macvlan+host-local', f'setup, {count} leases')):.2f} ms")
    shutil.rmtree(os.path.join(ours.state, "networks", net), ignore_errors=True)
    shutil.rmtree(os.path.join(cni.data_dir, cni.name), ignore_errors=True)


def phase_concurrent(ctx):
    """ctx.args.concurrent setups (and teardowns) of each tool at once; fills ctx.dups with the
    duplicate addresses found per round."""
    S, host, ours, cni, nv, ipb = ctx.stats, ctx.host, ctx.ours, ctx.cni, ctx.nv, ctx.ipb
    n = ctx.args.concurrent
    # The scale phase just wrote 60,000 lease files: let their writeback finish first, or it
    # lands on this phase's ext4 journal and in the numbers of whichever tool writes files.
    os.sync()
    dup_report = ctx.dups

    def record(tool, op, ns, fails, cpu_ns):
        if fails:
            raise RuntimeError(f"{tool} {op}: {len(fails)} of {n} failed, e.g.:\n{fails[0]}")
        S.t.setdefault((tool, op), []).append(ns)
        S.cpu.setdefault((tool, op), []).append(cpu_ns)

    def check_unique(tool, ctrs):
        addrs = []
        for c in ctrs:
            a = host.addresses_in(c)
            if len(a) != 1:
                raise RuntimeError(f"{tool}: container has addresses {a}")
            addrs.extend(a)
        dups = len(addrs) - len(set(addrs))
        dup_report.setdefault(tool, []).append(dups)
        if dups:
            raise RuntimeError(f"{tool}: {dups} duplicate addresses among {n} concurrent setups")

    def r_ours():
        ctrs = [host.holder() for _ in range(n)]
        ids = [cid() for _ in range(n)]
        jobs = [(ours.argv("createRuntime"), ours.state_json(i, c.pid, "creating"), ours.env()) for c, i in zip(ctrs, ids)]
        ns, fails, _, cpu = concurrent(jobs, [None] * n)
        record("ours", f"{n} setups at once", ns, fails, cpu)
        check_unique("ours", ctrs)
        for c in ctrs:
            c.kill()
        jobs = [(ours.argv("poststop"), ours.state_json(i, None, "stopped"), ours.env()) for i in ids]
        ns, fails, _, cpu = concurrent(jobs, [None] * n)
        record("ours", f"{n} teardowns at once (netns gone)", ns, fails, cpu)
        left = os.listdir(os.path.join(ours.state, "networks", ours.network, "leases"))
        if [x for x in left if not x.startswith(".")]:
            raise RuntimeError(f"ours: leases left after {n} poststops: {left[:5]}")

    def r_cni():
        ctrs = [host.holder() for _ in range(n)]
        ids = [cid() for _ in range(n)]
        jobs = [(cni.argv(), cni.conf, cni.env("ADD", i, c.path)) for c, i in zip(ctrs, ids)]
        ns, fails, _, cpu = concurrent(jobs, [None] * n)
        record("CNI macvlan+host-local", f"{n} setups at once", ns, fails, cpu)
        check_unique("CNI macvlan+host-local", ctrs)
        jobs = [(cni.argv(), cni.conf, cni.env("DEL", i, c.path)) for c, i in zip(ctrs, ids)]
        ns, fails, _, cpu = concurrent(jobs, [None] * n)
        record("CNI macvlan+host-local", f"{n} teardowns at once (netns alive)", ns, fails, cpu)
        for c in ctrs:
            c.kill()

    def r_nv():
        ctrs = [host.holder() for _ in range(n)]
        ids = [cid() for _ in range(n)]
        opts = [nv.options(i, 1000 + k) for k, i in enumerate(ids)]
        jobs = [(nv.argv("setup", c.path), o, nv.env()) for c, o in zip(ctrs, opts)]
        ns, fails, _, cpu = concurrent(jobs, [None] * n)
        record("netavark", f"{n} setups at once", ns, fails, cpu)
        jobs = [(nv.argv("teardown", c.path), o, nv.env()) for c, o in zip(ctrs, opts)]
        ns, fails, _, cpu = concurrent(jobs, [None] * n)
        record("netavark", f"{n} teardowns at once (netns alive)", ns, fails, cpu)
        for c in ctrs:
            c.kill()

    def r_ip():
        ctrs = [host.holder() for _ in range(n)]
        jobs = [(["ip", "-batch", "-"], ipb.script(1000 + k), ipb.env()) for k in range(n)]
        ns, fails, _, cpu = concurrent(jobs, [c.fd for c in ctrs])
        record("ip -batch (floor)", f"{n} setups at once", ns, fails, cpu)
        for c in ctrs:
            c.kill()

    def r_tight():
        ctrs = [host.holder() for _ in range(n)]
        for c in ctrs:
            ctx.ipt.prepare(c)
        jobs = [(ctx.ipt.argv(c), ctx.ipt.script(1000 + k), ctx.ipt.env()) for k, c in enumerate(ctrs)]
        ns, fails, _, cpu = concurrent(jobs, [None] * n)
        record(TIGHT, f"{n} setups at once", ns, fails, cpu)
        for c in ctrs:
            ctx.ipt.release(c)
            c.kill()

    tasks = [r_ours, r_cni, r_nv, r_ip, r_tight]
    waited = 0.0
    for i in range(ctx.args.concurrent_rounds):
        ctx.rng.shuffle(tasks)
        for t in tasks:
            waited += settle(ctx.netns_baseline)
            t()
            host.reap()
    log(f"  waited {waited:.1f} s in all for the kernel to destroy earlier namespaces")


# --------------------------------------------------------------------------------------------
# Where our setup time goes: one setup under strace


def phase_strace(ctx, runs=7):
    """Trace `runs` setups; keep the one with the median total, and the median of each phase.
    Sets ctx.strace (None when strace is missing or failed)."""
    ctx.strace = None
    if not shutil.which("strace"):
        return
    host, ours = ctx.host, ctx.ours
    results = []
    for k in range(runs):
        c = host.holder()
        id_ = cid()
        trace = os.path.join(host.base, f"strace-{k}.txt")
        argv = ["strace", "-f", "-ttt", "-T", "-o", trace] + ours.argv("createRuntime")
        p = subprocess.run(argv, input=ours.state_json(id_, c.pid, "creating"), capture_output=True,
                           env=ours.env())
        c.kill()
        must(ours.teardown(id_), "poststop after strace")
        if p.returncode != 0:
            log(f"strace run failed: {p.stderr.decode()}")
            return
        summary = summarize_strace(open(trace).read().splitlines())
        if summary:
            results.append((summary, trace))
    if not results:
        return
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
    with open(os.path.join(ctx.out_dir, "benchmark-strace.txt"), "w") as f:
        for line in open(trace):
            line = line.rstrip("\n")
            f.write((line[:197] + "..." if len(line) > 200 else line) + "\n")
    ctx.strace = summary


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


# --------------------------------------------------------------------------------------------
# ipvlan, in the VM's kernel (bench.py --vm)


def phase_vm(ctx):
    """ipvlan L2 and L3, interleaved: our setup and teardown (netns gone), CNI ipvlan ADD and DEL
    (netns alive, then gone), the tight floor, and /bin/true (the harness's spawn)."""
    S, host = ctx.stats, ctx.host
    tasks = []
    for mode, t in ctx.vm.items():
        def t_ours(t=t, mode=mode):
            cycle(ctx, t["ours"], f"ours, ipvlan {mode}")

        def t_cni(t=t, mode=mode):
            c = host.holder()
            id_ = cid()
            S.add((f"CNI ipvlan+host-local, {mode}", "setup"), must(t["cni"].add(c, id_), "CNI ipvlan ADD"))
            S.add((f"CNI ipvlan+host-local, {mode}", "teardown (netns alive)"),
                  must(t["cni"].delete(c.path, id_), "CNI ipvlan DEL"))
            c.kill()

        def t_tight(t=t, mode=mode):
            tight(ctx, t["tight"], f"{TIGHT}, {mode}", l3=mode != "l2")

        tasks += [t_ours, t_cni, t_tight]

    tasks.append(lambda: spawn_true(ctx))
    iters = ctx.args.iterations
    interleave(ctx, tasks, iters, "VM", lambda: "")
