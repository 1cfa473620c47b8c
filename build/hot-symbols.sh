#!/bin/bash
# Writes build/hot-symbols.txt: the functions the hook runs at every container start and stop, in
# the order valgrind first meets them, for build.rs to hand the linker (lld's
# --symbol-ordering-file), which puts them first and together in .text (issue 17,
# docs/benchmark-notes.md).
#
#   sudo build/hot-symbols.sh          # after changing the hook's path, or at a version bump
#
# Symbol names carry a hash of the crate's version, features and profile, so the list is read
# from the package build itself (release profile, feature etcd, unstripped), running: a hook with
# nothing to do; createRuntime in a runtime's netns and poststop after it is gone; both with a
# pre-created netns (the link is deleted at poststop); CNI ADD and DEL. Each runs once under
# callgrind in a throwaway network namespace (macvlan on a veth: this host's kernel may lack
# ipvlan). tests/package.sh fails when the list no longer matches the build. Needs root and
# valgrind (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "hot-symbols: run as root (it makes network namespaces)" >&2; exit 1; }
command -v valgrind >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >/dev/null
}

cargo build --release --locked --features etcd --bin ipvlan-hook
bin=target/$(rustc --print host-tuple)/release/ipvlan-hook

work=$(mktemp -d /tmp/hot-symbols.XXXXXX)
ns=hotsym$$
holder=
cleanup() {
    [ -z "$holder" ] || kill "$holder" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    umount "$work/ctr-ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link add p0 type veth peer name p1
ip -n "$ns" link set p0 up
ip -n "$ns" link set p1 up
export IPVLAN_HOOK_CONFIG_DIR=$work/etc IPVLAN_HOOK_STATE_DIR=$work/state
in_ns() { ip netns exec "$ns" "$@"; }
in_ns "$bin" network create hot --driver macvlan --parent p0 --subnet 10.99.0.0/24 >/dev/null
mkdir -p "$work/bundle"
printf '{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"network"}]}}' >"$work/bundle/config.json"
touch "$work/ctr-ns"

n=0
traced() {  # traced STDIN [VAR=VALUE...] [ARG...]: one run of the binary under callgrind, in $ns
    local input=$1 vars=()
    shift
    while [[ ${1:-} == *=* ]]; do vars+=("$1"); shift; done
    n=$((n + 1))
    in_ns env "${vars[@]}" valgrind --tool=callgrind --demangle=no \
        --callgrind-out-file="$work/run$n.out" "$bin" "$@" <"$input" >/dev/null 2>"$work/run$n.log" ||
        { cat "$work/run$n.log" >&2; exit 1; }
}
state() {  # state ID PID ANNOTATIONS
    printf '{"ociVersion":"1.0.2","id":"%s","status":"creating",%s"bundle":"%s","annotations":%s}' \
        "$1" "${2:+\"pid\":$2,}" "$work/bundle" "$3" >"$work/state.json"
    echo "$work/state.json"
}

traced "$(state idle "" '{}')" hook createRuntime
# A runtime-made netns: held by a process, gone at poststop.
in_ns unshare -n sleep 600 &
holder=$!
sleep 0.2
holder=$(pgrep -P "$holder" sleep || echo "$holder")
traced "$(state c1 "$holder" '{"ipvlan.network":"hot"}')" hook createRuntime
{ kill "$holder" && wait "$holder"; } 2>/dev/null || true
holder=
sleep 0.2
traced "$(state c1 "" '{"ipvlan.network":"hot"}')" hook poststop
# A pre-created netns, named in config.json: it outlives the container.
unshare --net="$work/ctr-ns" true
printf '{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"network","path":"%s"}]}}' \
    "$work/ctr-ns" >"$work/bundle/config.json"
traced "$(state c2 "" '{"ipvlan.network":"hot"}')" hook createRuntime
traced "$(state c2 "" '{"ipvlan.network":"hot"}')" hook poststop
# CNI ADD and DEL.
printf '{"cniVersion":"1.0.0","name":"hot","type":"ipvlan-hook","network":"hot"}' >"$work/cni.json"
for cmd in ADD DEL; do
    traced "$work/cni.json" CNI_COMMAND=$cmd CNI_CONTAINERID=c3 CNI_NETNS="$work/ctr-ns" \
        CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni
done

# Function names as callgrind defines them (fn= or cfn= with a name), first seen first;
# recursion marks ('2) and unnamed code dropped.
for f in $(seq 1 $n); do cat "$work/run$f.out"; done |
    sed -nE "s/^c?fn=\([0-9]+\) (.*)$/\1/p" | sed -E "s/'[0-9]+$//" |
    grep -vE '^(0x[0-9a-f]+|\(below main\))$' | awk '!seen[$0]++' >build/hot-symbols.txt
echo "hot-symbols: $(wc -l <build/hot-symbols.txt) functions in build/hot-symbols.txt"
