#!/bin/bash
# ipvlan measured in the VM (issue 17): bench/bench.py --vm inside the VM that tests/vm/run.sh
# builds and boots (Debian's cloud kernel, qemu TCG), ipvlan L2 and L3 side by side with the CNI
# ipvlan plugin + host-local and the tight `ip -n -batch` floor. The CPU is emulated: the report
# gives ratios only. This host's kernel has no ipvlan, so this is the only ipvlan benchmark.
#
#   sudo bench/vm.sh                         # writes docs/benchmark-vm.md
#   sudo bench/vm.sh --iterations 20 --out /tmp/vm   # bench.py options after the script's name
#   sudo bench/vm.sh --no-aslr --out /tmp/vm-noaslr  # ASLR off in the VM (see below)
#   sudo IPVLAN_HOOK_BIN=/path/to/ipvlan-hook bench/vm.sh   # measure a given binary
#
# The binary measured is the one the packages ship: `cargo build --release --features etcd`
# (lto, codegen-units=1), not the quick-to-build vm-profile binaries of the test run, which
# tests/vm/run.sh still builds and puts in the image but the benchmark does not run. The report
# names the build (bench.py --bin-label) and ends with file(1) of each program measured.
#
# --no-aslr: the VM writes 0 to /proc/sys/kernel/randomize_va_space before the benchmark, so
# every program runs at the same addresses every time. qemu TCG keeps translated code by
# guest virtual address: with ASLR, a PIE (ours is a static PIE, iproute2's ip a dynamic one)
# lands elsewhere each run and has its code translated anew, while the CNI plugins (Go,
# non-PIE on Debian) keep their addresses and reuse translations. Comparing a run with and
# one without tells how much of a ratio that costs PIE code; real hardware has no such cost.
# Measured: with ASLR our setup took 3 to 5 times as long as without, a non-PIE build of ours
# (-C relocation-model=static, IPVLAN_HOOK_BIN) ran with ASLR as fast as the PIE without.
#
# The image is tests/vm/run.sh's (same kernel, modules, busybox, iproute2) plus the release
# binary, python3 with the standard library modules the benchmark imports, bench/ and the CNI
# ipvlan and host-local plugins (package containernetworking-plugins).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "bench/vm.sh: run as root (sudo bench/vm.sh)" >&2
    exit 1
fi
for p in /usr/lib/cni/ipvlan /usr/lib/cni/host-local; do
    [ -x "$p" ] || { echo "bench/vm.sh: $p missing: apt-get install containernetworking-plugins" >&2; exit 1; }
done

out=docs
aslr=on
args=(--iterations 40 --rss-iterations 0)  # later options win; no GNU time in the VM
while (($#)); do
    case $1 in
    --out) out=$2; shift 2 ;;
    --no-aslr) aslr=off; shift ;;
    *) args+=("$1"); shift ;;
    esac
done
mkdir -p "$out"

# The shipped build: the packages' `cargo build --release --features etcd` (packaging/).
if [ -n "${IPVLAN_HOOK_BIN:-}" ]; then
    bin=$(readlink -f "$IPVLAN_HOOK_BIN")
    label="$bin (IPVLAN_HOOK_BIN)"
else
    bin=$(cargo build --release --features etcd --bin ipvlan-hook --message-format=json-render-diagnostics |
        python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "ipvlan-hook":
        print(m["executable"])')
    [ -n "$bin" ] || { echo "bench/vm.sh: cargo built no ipvlan-hook" >&2; exit 1; }
    rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    git diff --quiet HEAD -- src build build.rs Cargo.toml Cargo.lock .cargo 2>/dev/null || rev="$rev, sources modified"
    label="ipvlan-hook release build (cargo build --release --features etcd, git $rev)"
fi
[ -x "$bin" ] || { echo "bench/vm.sh: $bin is not an executable" >&2; exit 1; }
ip_bin=$(readlink -f "$(command -v ip)")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The standard library files the benchmark loads (and their compiled forms), found by
# importing it here: the VM gets those, not all 50 MB of it.
/usr/bin/python3 - "$work/pyfiles" <<'PY'
import importlib.util, os, sys
sys.path.insert(0, "bench")
import bench, harness, phases, report, tools  # noqa: F401
import encodings.ascii, encodings.latin_1, encodings.utf_8  # noqa: F401
import resource, select, selectors, _posixsubprocess  # noqa: F401  (loaded lazily: os.wait4, subprocess)
files = set()
for m in list(sys.modules.values()):
    f = getattr(m, "__file__", None)
    if not f or not f.startswith(sys.base_prefix + "/lib/python3") or "-packages" in f:
        continue
    files.add(f)
    if f.endswith(".py"):
        files.add(importlib.util.cache_from_source(f))
files.add(os.path.join(os.path.dirname(os.__file__), "os.py"))  # the landmark of sys.prefix
open(sys.argv[1], "w").write("\n".join(sorted(f for f in files if os.path.exists(f))) + "\n")
PY
{
    echo 'python=$(readlink -f /usr/bin/python3)'
    echo 'copy_elf "$python"; ln -sf "$python" "$root/usr/bin/python3"'
    echo 'while read -r f; do case $f in *.so) copy_elf "$f" ;; *) copy_file "$f" ;; esac; done <' "$work/pyfiles"
    echo 'copy_elf /usr/lib/cni/ipvlan; copy_elf /usr/lib/cni/host-local'
    # Stripped of its symbol table too, as the packages strip their copies (no change at run time).
    printf 'copy_elf %q; strip "$root"%q\n' "$bin" "$bin"
    echo 'mkdir -p "$root$crate_dir/bench"; cp bench/*.py bench/oci-config.json "$root$crate_dir/bench/"'
    printf 'cat >"$root/etc/ipvlan-vm/command" <<%s\n' "'CMD'"
    [ "$aslr" = on ] || echo 'echo 0 >/proc/sys/kernel/randomize_va_space || exit 1'
    echo 'echo "=== bench-vm: running, kernel.randomize_va_space=$(cat /proc/sys/kernel/randomize_va_space)"'
    printf 'python3 -B bench/bench.py --vm --bin %q --bin-label %q --disk-dir /var/tmp --out /tmp/bench-vm %s || exit 1\n' \
        "$bin" "$label" "${args[*]:-}"
    echo 'echo "=== BENCH-VM-REPORT BEGIN"; cat /tmp/bench-vm/benchmark-vm.md; echo; echo "=== BENCH-VM-REPORT END"'
    echo 'CMD'
} >"$work/extra.sh"

IPVLAN_VM_EXTRA=$work/extra.sh IPVLAN_VM_TIMEOUT=${IPVLAN_VM_TIMEOUT:-3600} tests/vm/run.sh | tee "$work/console"
tr -d '\r' <"$work/console" | sed -n '/^=== BENCH-VM-REPORT BEGIN/,/^=== BENCH-VM-REPORT END/p' | sed '1d;$d' >"$out/benchmark-vm.md"
[ -s "$out/benchmark-vm.md" ] || { echo "bench/vm.sh: the VM wrote no report" >&2; exit 1; }
# What the programs are (PIE or not, static or not): file(1) has no place in the VM; the image's
# copies are these files, stripped of debug information (ours of its symbol table as well).
if command -v file >/dev/null; then
    {
        echo "The programs measured, by file(1) on the host (a PIE runs at a new address each time while ASLR is on):"
        echo
        echo "| program | file(1) |"
        echo "| --- | --- |"
        for p in "$bin" /usr/lib/cni/ipvlan /usr/lib/cni/host-local "$ip_bin"; do
            echo "| $p | $(file -b "$p" | sed 's/, BuildID\[[^]]*\]=[0-9a-f]*//') |"
        done
        echo
    } >>"$out/benchmark-vm.md"
fi
echo "bench/vm.sh: wrote $out/benchmark-vm.md" >&2
