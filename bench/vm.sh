#!/bin/bash
# ipvlan measured in the VM (issue 17): bench/bench.py --vm inside the VM that tests/vm/run.sh
# builds and boots (Debian's cloud kernel, qemu TCG), ipvlan L2 and L3 side by side with the CNI
# ipvlan plugin + host-local and the tight `ip -n -batch` floor. The CPU is emulated: the report
# gives ratios only. This host's kernel has no ipvlan, so this is the only ipvlan benchmark.
#
#   sudo bench/vm.sh                         # writes docs/benchmark-vm.md
#   sudo bench/vm.sh --iterations 20 --out /tmp/vm   # bench.py options after the script's name
#
# The image is tests/vm/run.sh's (same kernel, modules, busybox, iproute2, the vm-profile
# binaries) plus python3 with the standard library modules the benchmark imports, bench/ and the
# CNI ipvlan and host-local plugins (package containernetworking-plugins).
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
args=(--iterations 40 --rss-iterations 0)  # later options win; no GNU time in the VM
while (($#)); do
    case $1 in
    --out) out=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
    esac
done
mkdir -p "$out"

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
    echo 'mkdir -p "$root$crate_dir/bench"; cp bench/*.py bench/oci-config.json "$root$crate_dir/bench/"'
    printf 'cat >"$root/etc/ipvlan-vm/command" <<%s\n' "'CMD'"
    echo 'echo "=== bench-vm: running"'
    printf 'python3 -B bench/bench.py --vm --bin "$IPVLAN_HOOK_BIN" --bin-label "ipvlan-hook (profile vm)" --disk-dir /var/tmp --out /tmp/bench-vm %s || exit 1\n' "${args[*]:-}"
    echo 'echo "=== BENCH-VM-REPORT BEGIN"; cat /tmp/bench-vm/benchmark-vm.md; echo; echo "=== BENCH-VM-REPORT END"'
    echo 'CMD'
} >"$work/extra.sh"

IPVLAN_VM_EXTRA=$work/extra.sh IPVLAN_VM_TIMEOUT=${IPVLAN_VM_TIMEOUT:-3600} tests/vm/run.sh | tee "$work/console"
tr -d '\r' <"$work/console" | sed -n '/^=== BENCH-VM-REPORT BEGIN/,/^=== BENCH-VM-REPORT END/p' | sed '1d;$d' >"$out/benchmark-vm.md"
[ -s "$out/benchmark-vm.md" ] || { echo "bench/vm.sh: the VM wrote no report" >&2; exit 1; }
echo "bench/vm.sh: wrote $out/benchmark-vm.md" >&2
