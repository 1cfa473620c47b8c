#!/usr/bin/python3
"""Side-by-side benchmark of ipvlan-hook against the CNI plugins, netavark and an `ip -batch`
floor (project issue 6). Run it through bench/run.sh, which installs the peers and builds the
release binary; this script needs root, the Debian packages containernetworking-plugins,
netavark, iproute2, strace and python3-matplotlib, and writes docs/benchmark.{md,png,json}.

This file is the command line: it parses the options into one context object (harness.Ctx)
and hands that to the rest, which is split by concern so that each reads on its own:
- harness.py: the throwaway test host, containers, timed spawning, samples, the context; its
  docstring says how the benchmark measures (the report quotes it);
- tools.py: how each contender is driven (ours, CNI macvlan+host-local, ours as a CNI plugin
  and as its IPAM, netavark, ip -batch and its tight form);
- phases.py: what is measured (main, cni, dual, scale, concurrent, strace; vm: ipvlan in the VM);
- report.py: the targets, docs/benchmark.md, docs/benchmark.json and docs/benchmark.png.
"""

import argparse
import os
import platform
import random
import signal
import sys

import phases
import report
import tools
from harness import HERE, Ctx, Host, die, log, netns_objects


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the ipvlan-hook release binary")
    ap.add_argument("--iterations", type=int, default=200, help="interleaved v4 iterations")
    ap.add_argument("--cni-iterations", type=int, default=100,
                    help="interleaved CNI ADD/DEL iterations (our plugin, our IPAM, host-local)")
    ap.add_argument("--dual-iterations", type=int, default=100)
    ap.add_argument("--dual-cni-every", type=int, default=5,
                    help="CNI dual stack waits ~2 s for DAD: run it in every Nth dual iteration")
    ap.add_argument("--multi-iterations", type=int, default=100, help="interleaved one/two-network iterations")
    ap.add_argument("--scale-counts", default="0,250,10000,60000")
    ap.add_argument("--scale-iterations", type=int, default=30)
    ap.add_argument("--rss-iterations", type=int, default=5, help="runs under GNU time per tool, for peak RSS")
    ap.add_argument("--concurrent", type=int, default=64)
    ap.add_argument("--concurrent-rounds", type=int, default=10)
    ap.add_argument("--disk-dir", default="/var/lib", help="where the on-disk state dirs go (ext4 in production)")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "docs"))
    ap.add_argument("--skip", default="", help="comma list of phases to skip: main,cni,dual,multi,scale,concurrent,strace")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--compare-bin", default=None,
                    help="a second ipvlan-hook build, run in the same v4 interleaving (A/B of a change)")
    ap.add_argument("--bin-label", default=None, help="how the report names the binary (default: its path and git HEAD)")
    ap.add_argument("--vm", action="store_true",
                    help="ipvlan L2 and L3 against the CNI ipvlan plugin and the tight floor, ratios only "
                         "(inside the VM of bench/vm.sh); writes benchmark-vm.md")
    return ap.parse_args()


PHASES = [
    ("main", lambda c: f"v4 setup/teardown, {c.args.iterations} interleaved iterations", phases.phase_main),
    ("cni", lambda c: f"CNI ADD/DEL, {c.args.cni_iterations} interleaved iterations", phases.phase_cni),
    ("dual", lambda c: f"dual stack, {c.args.dual_iterations} iterations", phases.phase_dual),
    ("multi", lambda c: f"two networks, {c.args.multi_iterations} iterations", phases.phase_multi),
    ("scale", lambda c: f"IPAM scale at {c.counts} leases", phases.phase_scale),
    ("concurrent", lambda c: f"{c.args.concurrent} setups at once, {c.args.concurrent_rounds} rounds",
     phases.phase_concurrent),
    ("strace", None, phases.phase_strace),
]


def main():
    args = parse_args()
    if os.geteuid() != 0:
        die("run as root (bench/run.sh)")
    peers = ("ipvlan", "host-local") if args.vm else ("macvlan", "host-local")
    for p in [f"{tools.CNI_DIR}/{p}" for p in peers] + ([] if args.vm else [tools.NETAVARK]):
        if not os.access(p, os.X_OK):
            die(f"{p} missing: bench/run.sh installs it")
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    ctx = Ctx(
        args=args,
        binary=os.path.abspath(args.bin),
        out_dir=out_dir,
        skip=set(filter(None, args.skip.split(","))),
        counts=[int(c) for c in args.scale_counts.split(",")],
        rng=random.Random(args.seed),
        host=Host(args.disk_dir, ("p0", "q0") if args.vm else ("p0",)),
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        ctx.host.start()
        if args.vm:
            return vm(ctx)
        ctx.netns_baseline = netns_objects() or 0
        tools.make_tools(ctx)
        report.describe(ctx)
        log(f"state {ctx.state}, meta {ctx.meta}")
        for name, what, run in PHASES:
            if name in ctx.skip:
                continue
            if what:
                log(what(ctx))
            run(ctx)
        ctx.meta["load average (1 min) at the end"] = open("/proc/loadavg").read().split()[0]
        report.judge(ctx)
        report.write_all(ctx)
    finally:
        ctx.host.stop()


def vm(ctx):
    """--vm: the ipvlan phase alone and its report, ratios only."""
    tools.make_vm_tools(ctx)
    ctx.meta = {"kernel": platform.release(), "ipvlan-hook": ctx.args.bin_label or ctx.binary,
                "iterations": ctx.args.iterations,
                "kernel.randomize_va_space (0: no ASLR)": open("/proc/sys/kernel/randomize_va_space").read().strip(),
                "load average (1 min) in the VM at start": open("/proc/loadavg").read().split()[0]}
    log(f"ipvlan L2 and L3 in the VM, {ctx.args.iterations} interleaved iterations")
    phases.phase_vm(ctx)
    report.judge_vm(ctx)
    report.write_vm_report(ctx)


if __name__ == "__main__":
    main()
