#!/usr/bin/env bash
# Every test of the project: unit and integration tests on this host's kernel, then the same
# integration tests inside a VM whose kernel has ipvlan, 802.1q and dummy links. Run as root.
# Installs the Debian packages the tests need when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "tests/all.sh: run as root (the tests create network namespaces and links)" >&2
    exit 1
fi

missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v ping >/dev/null || missing+=(iputils-ping)
# tests/runtimes.rs: real engines, busybox-static for the containers, jq for hooks/add-to-bundle.sh
command -v runc >/dev/null || missing+=(runc)
command -v crun >/dev/null || missing+=(crun)
command -v podman >/dev/null || missing+=(podman)
command -v jq >/dev/null || missing+=(jq)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
# tests/docs.rs renders the man pages; tests/package.sh builds the RPM too
command -v groff >/dev/null || missing+=(groff-base)
command -v man >/dev/null || missing+=(man-db)
command -v rpmbuild >/dev/null || missing+=(rpm)
# tests/cni.rs, tests/cni_clients.rs: the CNI project's plugins (macvlan), and cnitool built
# from its source with Debian's Go toolchain and libcni
[ -x /usr/lib/cni/macvlan ] || missing+=(containernetworking-plugins)
command -v go >/dev/null || missing+=(golang-go)
dpkg -s golang-github-appc-cni-dev >/dev/null 2>&1 || missing+=(golang-github-appc-cni-dev)
# tests/etcd.rs: a real etcd, and openssl for its throwaway CA and certificates
command -v etcd >/dev/null || missing+=(etcd-server)
command -v openssl >/dev/null || missing+=(openssl)
# tests/announce.rs: BGP speakers (bird2 also goes into the VM image)
command -v bird >/dev/null || missing+=(bird2)
[ -x /usr/lib/frr/zebra ] || missing+=(frr)
# tests/etcd_cluster.rs partitions a member with nftables drop rules
command -v nft >/dev/null || missing+=(nftables)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

echo "== host kernel: unit and integration tests (ipvlan-only tests skip here, loudly)"
# tests/churn_soak.rs runs 300 start/stop cycles here (10-20 s); the long run is
# IPVLAN_SOAK_CYCLES=10000 cargo test --test churn_soak -- --nocapture (about 10 minutes).
cargo test --all-targets 2>&1

echo "== fuzzing smoke run: each cargo-fuzz target for 20 s (installs cargo-fuzz when missing)"
fuzz/smoke.sh

echo "== packages: build the .deb and the RPM, install the .deb, a podman container through it, purge"
tests/package.sh

echo "== etcd lease store (feature etcd): a real etcd on loopback, simulated hosts sharing a network"
cargo test --features etcd --test etcd 2>&1
# A three-member cluster losing members, its leader, and a partition (about 70 s), and the
# etcd store's local state on a full and a read-only state dir (tests/full_disk.rs; its
# lease-file case ran above with --all-targets).
cargo test --features etcd --test etcd_cluster --test full_disk 2>&1

echo "== benchmark (not pass/fail): container setup latency, etcd store against lease files"
# The release binary tests/package.sh built (cargo deb builds with the etcd feature).
bench_bin=target/$(rustc --print host-tuple)/release/ipvlan-hook
[ -x "$bench_bin" ] || bench_bin=
env ${bench_bin:+IPVLAN_HOOK_BIN=$PWD/$bench_bin} cargo test --features etcd --test etcd -- \
    --ignored --nocapture bench 2>&1 | grep -E '^bench:|panicked' || echo "bench: did not run"

echo "== VM kernel: integration tests with ipvlan, 802.1q and dummy"
tests/vm/run.sh
