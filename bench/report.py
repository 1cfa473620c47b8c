"""The benchmark's report, from the context the phases filled (harness.Ctx): the meta table, the
targets and their verdicts (ratios of medians of one interleaved run), docs/benchmark.md,
docs/benchmark.json and the plot docs/benchmark.png. Kept apart from the phases so that a
change to the wording or the layout of the report cannot change a measurement."""

import datetime
import json
import os
import platform
import statistics
import subprocess

import harness
from harness import HERE, fs_type, fsync_cost, log, sh
from tools import CNI_HOST_LOCAL, CNI_OUR_IPAM, CNI_OURS, TIGHT


def describe(ctx):
    """The meta table: date, machine, binary, peers, state dirs, fsync cost, iterations."""
    args, binary, host = ctx.args, ctx.binary, ctx.host
    state, state_t = ctx.state, ctx.state_tmpfs
    meta = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": f"{os.cpu_count()} vCPUs, kernel {platform.release()}",
        "ipvlan-hook": f"{args.bin_label or binary + git_head()} ({os.path.getsize(binary):,} bytes)",
        "peers": f"containernetworking-plugins {pkg_version('containernetworking-plugins')}, "
                 f"netavark {pkg_version('netavark')}, iproute2 {pkg_version('iproute2')}",
        "state dir (ours)": f"{state} ({fs_type(state if os.path.exists(state) else host.base)}); "
                            f"tmpfs run: {state_t} ({fs_type(host.tmpfs)})",
        "for reference, one fsynced file write (write+fsync+rename+fsync dir)":
            f"{fsync_cost(host.base):.2f} ms on {fs_type(host.base)}, {fsync_cost(host.tmpfs):.3f} ms on tmpfs",
        "iterations": f"v4 {args.iterations}, dual {args.dual_iterations} (CNI every {args.dual_cni_every}th), "
                      f"two networks {args.multi_iterations}, "
                      f"scale {args.scale_iterations} per count, concurrency {args.concurrent_rounds} rounds of {args.concurrent}",
    }
    meta["load average (1 min) at start"] = open("/proc/loadavg").read().split()[0]
    ctx.meta = meta


def judge(ctx):
    """The targets of issue 6 for whatever the phases measured, into ctx.targets, and logged."""
    S, counts, binary, targets = ctx.stats, ctx.counts, ctx.binary, ctx.targets
    args = ctx.args
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
        targets.append(ratio_row(S, "(same, cursor lost: worst case)",
                                 ("ours, cursor lost", f"setup, {counts[-1]} leases"),
                                 ("ours, cursor lost", f"setup, {counts[0]} leases"), 1.5))
    if (CNI_OURS, "CNI ADD") in have:
        targets.append(ratio_row(S, "our CNI ADD ≤0.35x CNI macvlan+host-local ADD",
                                 (CNI_OURS, "CNI ADD"), (CNI_HOST_LOCAL, "CNI ADD"), 0.35))
        targets.append(ratio_row(S, "CNI macvlan with our IPAM ADD ≤1.0x with host-local",
                                 (CNI_OUR_IPAM, "CNI ADD"), (CNI_HOST_LOCAL, "CNI ADD"), 1.0))
    n = args.concurrent
    if (O, f"{n} setups at once") in have:
        targets.append(ratio_row(S, f"{n} setups at once ≤1.5x {n} `ip -batch` at once",
                                 (O, f"{n} setups at once"), (I, f"{n} setups at once"), 1.5))
    # Issue 17: against the tight floor and /bin/true, wall and CPU time both judged.
    T, TRUE = TIGHT, ("/bin/true (harness)", "spawn+wait")
    if (O, "setup") in have and (T, "setup") in have:
        targets.append(ratio_row(S, "setup ≤1.1x the tight floor, the harness's spawn of /bin/true subtracted",
                                 (O, "setup"), (T, "setup"), 1.1, minus=TRUE, cpu_judged=True))
    if (O, f"{n} setups at once") in have and (T, f"{n} setups at once") in have:
        targets.append(ratio_row(S, f"{n} setups at once ≤1.3x {n} tight floors at once",
                                 (O, f"{n} setups at once"), (T, f"{n} setups at once"), 1.3, cpu_judged=True))
    if (O, "teardown (netns gone)") in have and TRUE in have:
        targets.append(ratio_row(S, "teardown, netns gone ≤1.3x /bin/true",
                                 (O, "teardown (netns gone)"), TRUE, 1.3, cpu_judged=True))
    if ("ours, no annotations", "hook (nothing to do)") in have and TRUE in have:
        targets.append(ratio_row(S, "hook with nothing to do ≤1.2x /bin/true",
                                 ("ours, no annotations", "hook (nothing to do)"), TRUE, 1.2, cpu_judged=True))
    # The two-network phase (Docker parity, issue 13), when this bench has it.
    if (O, "setup, two networks") in have and (O, "setup, one network (two-network run)") in have:
        targets.append(ratio_row(S, "two networks ≤1.6x one",
                                 (O, "setup, two networks"), (O, "setup, one network (two-network run)"), 1.6,
                                 cpu_judged=True))
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
            cpu = f", CPU {t['cpu_ratio']:.2f}x" if t.get("cpu_ratio") else ""
            log(f"{t['target']}: {t['ratio']:.2f}x ({fmt_ms(t['ours_ms'])} vs {fmt_ms(t['ref_ms'])} ms{cpu}) "
                f"{'PASS' if t['pass'] else 'MISS'}")
        else:
            log(f"{t['target']}: {t['value']} {'PASS' if t['pass'] else 'MISS'}")


def judge_vm(ctx):
    """The ipvlan targets of issue 17, per mode, into ctx.targets: ratios only."""
    S, TRUE = ctx.stats, ("/bin/true (harness)", "spawn+wait")
    for mode in ctx.vm:
        O, C, T = f"ours, ipvlan {mode}", f"CNI ipvlan+host-local, {mode}", f"{TIGHT}, {mode}"
        ctx.targets.append(ratio_row(S, f"ipvlan {mode}: setup ≤0.35x CNI ipvlan ADD", (O, "setup"), (C, "setup"),
                                     0.35, cpu_judged=True))
        ctx.targets.append(ratio_row(S, f"ipvlan {mode}: setup ≤1.1x the tight floor, /bin/true subtracted",
                                     (O, "setup"), (T, "setup"), 1.1, minus=TRUE, cpu_judged=True))
        ctx.targets.append(ratio_row(S, f"ipvlan {mode}: teardown, netns gone ≤0.1x CNI DEL (netns alive)",
                                     (O, "teardown (netns gone)"), (C, "teardown (netns alive)"), 0.1))
    for t in ctx.targets:
        log(f"{t['target']}: {t['ratio']:.2f}x (CPU {t['cpu_ratio']:.2f}x) {'PASS' if t['pass'] else 'MISS'}")


def write_vm_report(ctx):
    """benchmark-vm.md: the VM's targets and every measurement as a ratio to /bin/true (the
    VM's CPU is emulated: absolute times mean nothing)."""
    S, meta = ctx.stats, ctx.meta
    true_ms = S.med(("/bin/true (harness)", "spawn+wait"))
    L = ["# Benchmark in the VM: ipvlan L2 and L3 against the CNI ipvlan plugin and the tight floor", "",
         "Generated by `bench/vm.sh` (issue 17): bench/bench.py --vm inside the VM of tests/vm/run.sh "
         "(qemu TCG, one emulated CPU, Debian's cloud kernel). Ratios of medians of one interleaved "
         "run only: the emulated CPU makes absolute times meaningless. Targets marked † judge the CPU "
         "ratio (user+sys from wait4) as well.", "", "| | |", "| --- | --- |"]
    L += [f"| {k} | {v} |" for k, v in meta.items()]
    L += ["", "## Targets", "", "| target | ratio | limit | result | CPU ratio | note |", "| --- | --- | --- | --- | --- | --- |"]
    for t in ctx.targets:
        L.append(f"| {t['target']}{' †' if t.get('cpu_judged') else ''} | {t['ratio']:.2f}x | ≤{t['limit']}x | "
                 f"{'PASS' if t['pass'] else '**MISS**'} | {t['cpu_ratio']:.2f}x | {t.get('note', '')} |")
    L += ["", "## All measurements, as multiples of the harness spawning /bin/true", "",
          "| tool | operation | n | median / /bin/true | p90 / /bin/true | CPU / /bin/true's CPU |",
          "| --- | --- | --- | --- | --- | --- |"]
    true_cpu = statistics.median(S.cpu[("/bin/true (harness)", "spawn+wait")])
    for (tool, op), v in S.summary().items():
        L.append(f"| {tool} | {op} | {v['n']} | {v['median_ms'] / true_ms:.2f} | {v['p90_ms'] / true_ms:.2f} | "
                 f"{v['cpu_median_ms'] * 1e6 / max(1, true_cpu):.2f} |")
    L += ["", "How each tool is run: `benchmark.md`; here every tool uses ipvlan: L2 on the veth p0, L3 on "
          "the veth q0 (the slaves of one parent share its mode). The floor's L3 route is "
          "`route add default dev eth0`.", ""]
    with open(os.path.join(ctx.out_dir, "benchmark-vm.md"), "w") as f:
        f.write("\n".join(L))
    log(f"wrote {ctx.out_dir}/benchmark-vm.md")


def ratio_row(S, name, num, den, target, note="", minus=None, cpu_judged=False):
    """The ratio of medians num/den against `target`. `minus`: a sample subtracted from both
    sides first (the harness's own spawn). `cpu_judged`: the CPU ratio must pass as well."""
    a, b = S.med(num), S.med(den)
    cpu_a = statistics.median(S.cpu[num]) if S.cpu.get(num) else None
    cpu_b = statistics.median(S.cpu[den]) if S.cpu.get(den) else None
    if minus:
        m = S.med(minus)
        raw = a / b
        a, b = a - m, b - m
        note = note or f"{raw:.2f}x before subtracting {fmt_ms(m)} ms"
        if cpu_a is not None and cpu_b is not None and S.cpu.get(minus):
            cm = statistics.median(S.cpu[minus])
            cpu_a, cpu_b = cpu_a - cm, cpu_b - cm
    r = a / b
    cpu = cpu_a / max(1, cpu_b) if cpu_a is not None and cpu_b is not None else None
    ok = r <= target and (not cpu_judged or (cpu is not None and cpu <= target))
    return {"target": name, "ours_ms": a, "ref_ms": b, "ratio": r, "limit": target,
            "pass": ok, "note": note, "num": num, "den": den, "cpu_ratio": cpu, "cpu_judged": cpu_judged}


def fmt_ms(x):
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def write_report(ctx, plot_ok):
    """docs/benchmark.md: the meta table, the targets, every measurement, the strace phases and
    how it is measured."""
    out_dir, S, meta, targets, strace, dups = ctx.out_dir, ctx.stats, ctx.meta, ctx.targets, ctx.strace, ctx.dups
    counts, n_conc = ctx.counts, ctx.args.concurrent
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
    L.append("Targets marked † (issue 17) judge the CPU ratio too: both must be within the limit. "
             "Against the tight floor, the median wall and CPU time of the harness spawning /bin/true "
             "are subtracted from both sides (every process is started the same way).")
    L.append("")
    L.append("| target | ours | reference | ratio | limit | result | CPU ratio | note |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for t in targets:
        if "ratio" in t:
            cpu = f"{t['cpu_ratio']:.2f}x" if t.get("cpu_ratio") else ""
            mark = " †" if t.get("cpu_judged") else ""
            L.append(f"| {t['target']}{mark} | {fmt_ms(t['ours_ms'])} ms | {fmt_ms(t['ref_ms'])} ms | "
                     f"{t['ratio']:.2f}x | ≤{t['limit']}x | {'PASS' if t['pass'] else '**MISS**'} | {cpu} | "
                     f"{t.get('note', '')} |")
        else:
            L.append(f"| {t['target']} | {t['value']} | | | {t['limit']} | "
                     f"{'PASS' if t['pass'] else '**MISS**'} | | |")
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
    L.append(harness.__doc__.split("How it measures", 1)[1].strip().replace("\n- ", "\n\n- "))
    L.append("")
    L.append("- ours: `ipvlan-hook hook createRuntime`, the command line of the packaged hooks.d and "
             "config.json hooks, with the OCI state (pid of the netns holder, `ipvlan.network=NET`, a bundle "
             "whose config.json is `runc spec`'s) on stdin and an environment of just "
             "`IPVLAN_HOOK_CONFIG_DIR` and `IPVLAN_HOOK_STATE_DIR` (a hooks.d file's `env`), as runc runs a "
             "hook; `hook poststop` after the holder "
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
    L.append("- tight floor (issue 17): `ip -n CONTAINER -batch -` started in the host netns like ours, "
             "with exactly `link add link ifN link-netnsid 1 name eth0 type macvlan mode bridge`, "
             "`addr add`, `link set eth0 up`, `route add default via GW`; before the timing the "
             "container's netns is named (`ip netns attach`) and given the host netns' id "
             "(`ip -n CONTAINER netns set HOST 1`).")
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


def plot(ctx):
    """docs/benchmark.png: setup and teardown per tool, and setup against the lease count."""
    out_dir, S, counts = ctx.out_dir, ctx.stats, ctx.counts
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
        (TIGHT, "setup", "ip -n -batch tight floor"),
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


def write_all(ctx):
    """benchmark.png (when the main and scale phases ran), benchmark.md and benchmark.json."""
    out_dir, skip = ctx.out_dir, ctx.skip
    plot_ok = plot(ctx) if "scale" not in skip and "main" not in skip else False
    write_report(ctx, plot_ok)
    with open(os.path.join(out_dir, "benchmark.json"), "w") as f:
        json.dump({"meta": ctx.meta, "summary": {f"{k[0]} | {k[1]}": v for k, v in ctx.stats.summary().items()},
                   "targets": [{k: (list(v) if isinstance(v, tuple) else v) for k, v in t.items()} for t in ctx.targets],
                   "strace": ctx.strace, "duplicates": ctx.dups}, f, indent=1)
    log(f"wrote {out_dir}/benchmark.md, benchmark.png, benchmark.json")


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
