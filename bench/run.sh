#!/bin/bash
# The benchmark of issue 6: ipvlan-hook side by side with the CNI plugins (macvlan + host-local),
# netavark and an `ip -batch` floor, on this machine's kernel (macvlan on a veth parent in a
# throwaway network namespace). Not part of the tests' pass/fail.
#
#   sudo bench/run.sh                      # full run (about 5 minutes on 2 vCPUs)
#   sudo bench/run.sh --iterations 50 --scale-counts 0,250,10000 --concurrent-rounds 3   # quicker
#   sudo IPVLAN_HOOK_BIN=/path/to/ipvlan-hook bench/run.sh   # measure a given binary
#   sudo bench/run.sh --compare-bin /tmp/old-ipvlan-hook --skip dual,scale,concurrent,strace --out /tmp/ab
#                                          # A/B: a second build in the same interleaving
#
# Installs the peers from Debian when missing, builds the release binary as the packages do
# (cargo build --release --features etcd),
# then runs bench/bench.py (options: bench/bench.py --help), which writes docs/benchmark.md (the
# results table and the targets), docs/benchmark.png (the plot), docs/benchmark.json (raw
# summary) and docs/benchmark-strace.txt (one traced setup).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "bench/run.sh: run as root (sudo bench/run.sh): it creates network namespaces and links" >&2
    exit 1
fi

need=()
{ [ -x /usr/lib/cni/macvlan ] && [ -x /usr/lib/cni/host-local ]; } || need+=(containernetworking-plugins)
[ -x /usr/lib/podman/netavark ] || need+=(netavark)
command -v iptables >/dev/null || need+=(iptables)   # netavark's default firewall driver runs it
command -v ip >/dev/null || need+=(iproute2)
[ -x /usr/bin/python3 ] || need+=(python3)
/usr/bin/python3 -c 'import matplotlib' 2>/dev/null || need+=(python3-matplotlib)
[ -x /usr/bin/time ] || need+=(time)
command -v strace >/dev/null || need+=(strace)
if ((${#need[@]})); then
    echo "bench/run.sh: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# .cargo/config.toml builds for the host tuple: binaries are in target/TUPLE/release.
if [ -n "${IPVLAN_HOOK_BIN:-}" ]; then
    bin=$IPVLAN_HOOK_BIN
elif command -v cargo >/dev/null; then
    cargo build --release --features etcd --bin ipvlan-hook >&2
    bin=${CARGO_TARGET_DIR:-target}/$(rustc --print host-tuple)/release/ipvlan-hook
elif bin=$(ls target/*/release/ipvlan-hook 2>/dev/null | head -n 1) && [ -x "$bin" ]; then
    echo "bench/run.sh: no cargo in root's PATH: using the existing $bin" >&2
else
    echo "bench/run.sh: no cargo in root's PATH: run 'cargo build --release --features etcd' first, or set IPVLAN_HOOK_BIN" >&2
    exit 1
fi

exec /usr/bin/python3 bench/bench.py --bin "$bin" "$@"
