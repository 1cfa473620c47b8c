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
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

echo "== host kernel: unit and integration tests (ipvlan-only tests skip here, loudly)"
cargo test --all-targets 2>&1

echo "== VM kernel: integration tests with ipvlan, 802.1q and dummy"
tests/vm/run.sh
