#!/usr/bin/env bash
# The packages, for real. Builds the Debian package with cargo-deb ([package.metadata.deb] in
# Cargo.toml) and the RPM with rpmbuild (packaging/rpm/ipvlan-hook.spec), checks that both carry
# the same files, installs the .deb on this machine, runs a podman container that the INSTALLED
# hooks.d file attaches (podman's default hooks dir, no --hooks-dir) with the installed binary and
# its default directories, then purges the package and checks that nothing it brought is left.
#
# Run as root; tests/all.sh runs it. It installs what it needs (cargo-deb from crates.io; rpm,
# podman, runc, busybox-static and jq from Debian) and leaves the machine as it found it. It
# refuses to run where ipvlan-hook is installed, or where files or directories the package owns
# exist already: it would replace or purge them.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
step() { echo "== package [$((SECONDS - start))s]: $*"; }
die() {
	echo "package: FAILED: $*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "run as root (it installs and purges a package)"

CARGO_DEB_VERSION=3.8.0
NET=pkgtest$$
SUBNET=10.79.0.0/24
PEER=10.79.0.1
IMAGE=localhost/ipvh-pkg-busybox:latest

# --- The machine as found ---------------------------------------------------------------------
if dpkg -s ipvlan-hook >/dev/null 2>&1; then
	die "ipvlan-hook is installed on this machine; this test installs and purges it: remove it first (apt-get purge ipvlan-hook)"
fi
for path in /usr/bin/ipvlan-hook /usr/bin/ipvlan-run /usr/lib/cni/ipvlan-hook /etc/ipvlan-hook \
	/var/lib/ipvlan-hook \
	/usr/share/containers/oci/hooks.d/ipvlan-hook-createRuntime.json \
	/usr/share/containers/oci/hooks.d/ipvlan-hook-poststop.json \
	/etc/iproute2/rt_protos.d/ipvlan-hook.conf; do
	[ ! -e "$path" ] || die "$path exists and the package would replace or purge it: move it away first"
done

# --- Tools -------------------------------------------------------------------------------------
missing=()
command -v rpmbuild >/dev/null || missing+=(rpm)
command -v rpm2cpio >/dev/null || missing+=(rpm2cpio)
command -v cpio >/dev/null || missing+=(cpio)
command -v nm >/dev/null || missing+=(binutils)
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
command -v jq >/dev/null || missing+=(jq)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
	step "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		-o DPkg::Lock::Timeout=300 "${missing[@]}"
fi
if ! cargo deb --version 2>/dev/null | grep -qx "cargo-deb $CARGO_DEB_VERSION"; then
	step "installing cargo-deb $CARGO_DEB_VERSION from crates.io"
	cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked
fi

work=$(mktemp -d /tmp/ipvh-package.XXXXXX)
chmod 755 "$work"
holder=
net_created=
installed=

# apt and dpkg chatter goes to a log, shown when they fail.
apt_get() {
	if ! DEBIAN_FRONTEND=noninteractive apt-get -y -qq -o DPkg::Lock::Timeout=300 "$@" \
		>"$work/apt.log" 2>&1; then
		cat "$work/apt.log" >&2
		return 1
	fi
}
in_ns() { nsenter --net="/proc/$holder/ns/net" "$@"; }
pod() {
	in_ns env CONTAINERS_CONF="$work/podman/containers.conf" \
		CONTAINERS_STORAGE_CONF="$work/podman/storage.conf" podman "$@" </dev/null
}

cleanup() {
	local status=$? mounts
	set +e
	if [ -d "$work/podman" ] && [ -n "$holder" ]; then
		pod rm --all --force --time 0 >/dev/null 2>&1
	fi
	if [ -n "$net_created" ]; then
		in_ns /usr/bin/ipvlan-hook network rm --force "$NET" "${NET}keep" >/dev/null 2>&1
	fi
	[ -z "$holder" ] || kill "$holder" 2>/dev/null
	if [ -n "$installed" ] && dpkg -s ipvlan-hook >/dev/null 2>&1; then
		echo "package: purging ipvlan-hook after a failure" >&2
		apt_get purge ipvlan-hook
	fi
	# Neither directory was there before (checked above).
	if [ -n "$installed" ]; then
		rm -f "/etc/ipvlan-hook/networks/$NET.json" "/etc/ipvlan-hook/networks/${NET}keep.json" \
			/etc/ipvlan-hook/networks/.lock
		rmdir /etc/ipvlan-hook/networks /etc/ipvlan-hook 2>/dev/null
		rm -rf /var/lib/ipvlan-hook
	fi
	# podman's storage mounts (overlay keeps one on its own directory), innermost first.
	mounts=$(awk -v w="$work/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
	for m in $mounts; do umount -l "$m"; done
	rm -rf "$work"
	exit $status
}
trap cleanup EXIT

# --- Build -------------------------------------------------------------------------------------
step "building the Debian package (cargo deb: the release build, with LTO)"
deb=$(cargo deb --locked --target "$(rustc --print host-tuple)" | tail -n 1)
[ -f "$deb" ] || die "cargo deb made no package (it printed '$deb')"

# build.rs has lld put the functions of build/hot-symbols.txt first in .text: a list that no
# longer names this build's functions (another rustc, version or profile) lays the hook's path out
# over the whole binary again, silently; say so here.
step "checking that build/hot-symbols.txt still lays out this build"
bin=target/$(rustc --print host-tuple)/release/ipvlan-hook
listed=$(grep -c . build/hot-symbols.txt)
addrs=$(nm "$bin" | awk 'NR == FNR { hot[$1] = 1; next } ($3 in hot) && $2 ~ /^[tTwW]$/ { print $1 }' \
	build/hot-symbols.txt - | sort -u)
found=$(grep -c . <<<"$addrs" || true)
stale="run 'sudo build/hot-symbols.sh' and commit build/hot-symbols.txt"
((found * 10 >= listed * 9)) || die "only $found of the $listed functions in build/hot-symbols.txt are in $bin: $stale"
span=$((0x$(tail -n 1 <<<"$addrs") - 0x$(head -n 1 <<<"$addrs")))
text=$((0x$(readelf -SW "$bin" | awk '$2 == ".text" { print $6 }')))
((span * 2 <= text)) || die "the listed functions span $span of the $text bytes of .text in $bin: not packed ($stale)"

# Regular files, and symlinks as "LINK -> TARGET".
files_of_deb() {
	dpkg-deb -c "$1" | awk '$1 ~ /^-/ { sub(/^\./, "", $6); print $6 }
		$1 ~ /^l/ { sub(/^\./, "", $6); print $6 " -> " $8 }' | sort
}
deb_files=$(files_of_deb "$deb")
for f in /usr/bin/ipvlan-hook /usr/bin/ipvlan-run \
	/usr/share/containers/oci/hooks.d/ipvlan-hook-createRuntime.json \
	/usr/share/containers/oci/hooks.d/ipvlan-hook-poststop.json \
	/etc/ipvlan-hook/policy.json /usr/lib/tmpfiles.d/ipvlan-hook.conf \
	/etc/iproute2/rt_protos.d/ipvlan-hook.conf /usr/share/doc/ipvlan-hook/examples/announce-bird.conf \
	/usr/share/doc/ipvlan-hook/examples/announce-frr.conf \
	/usr/share/man/man8/ipvlan-hook.8.gz /usr/share/man/man8/ipvlan-run.8.gz \
	/usr/share/man/man5/ipvlan-hook.5.gz \
	/usr/share/bash-completion/completions/ipvlan-hook /usr/share/zsh/vendor-completions/_ipvlan-hook \
	/usr/share/fish/vendor_completions.d/ipvlan-hook.fish \
	"/usr/lib/cni/ipvlan-hook -> ../../bin/ipvlan-hook"; do
	grep -qxF "$f" <<<"$deb_files" || die "$deb lacks $f"
done
# Config files: the policy, and the name of the announcement routes' protocol number.
conffiles=$'/etc/ipvlan-hook/policy.json\n/etc/iproute2/rt_protos.d/ipvlan-hook.conf'
[ "$(dpkg-deb -I "$deb" conffiles | sort)" = "$(sort <<<"$conffiles")" ] ||
	die "the conffiles of $deb are not exactly $(tr '\n' ' ' <<<"$conffiles"): $(dpkg-deb -I "$deb" conffiles)"
policy=$(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./etc/ipvlan-hook/policy.json | jq -c .)
[ "$policy" = '{"version":1,"allow_annotation_networks":false}' ] || die "default policy is $policy"
for f in ipvlan-hook-createRuntime.json ipvlan-hook-poststop.json; do
	dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/share/containers/oci/hooks.d/$f" | cmp -s - "hooks/$f" ||
		die "$deb: hooks.d/$f differs from hooks/$f"
done

step "building the RPM (rpmbuild --build-in-place, reusing the release build)"
mkdir -p "$work/rpm"
if ! rpmbuild -bb --build-in-place --nodeps --define "_topdir $work/rpm" \
	packaging/rpm/ipvlan-hook.spec >"$work/rpm/build.log" 2>&1; then
	tail -n 40 "$work/rpm/build.log" >&2
	die "rpmbuild failed"
fi
rpm=$(find "$work/rpm/RPMS" -name 'ipvlan-hook-*.rpm')
[ -f "$rpm" ] || die "rpmbuild made no package"
# Same files, but for what each distribution does its own way: compressed man pages and the
# copyright file (Debian), zsh's directory, build-id links (Fedora's rpm).
rpm_files=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES} %{FILELINKTOS}\n]' "$rpm" |
	awk '$1 ~ /^-/ { print $2 } $1 ~ /^l/ { print $2 " -> " $3 }' |
	grep -v '^/usr/lib/\.build-id/' | sed -e 's|^\(/usr/share/man/.*\)\.gz$|\1|' \
	-e 's|^/usr/share/zsh/site-functions/|/usr/share/zsh/vendor-completions/|' | sort)
deb_like=$(grep -vxF /usr/share/doc/ipvlan-hook/copyright <<<"$deb_files" |
	sed -e 's|^\(/usr/share/man/.*\)\.gz$|\1|' | sort)
if [ "$rpm_files" != "$deb_like" ]; then
	diff <(echo "$deb_like") <(echo "$rpm_files") >&2 || true
	die "the RPM and the Debian package carry different files (< deb, > rpm)"
fi
rpm2cpio "$rpm" | (mkdir -p "$work/rpm/root" && cd "$work/rpm/root" && cpio -idm --quiet ./usr/bin/ipvlan-hook)
[ -z "$(nm "$work/rpm/root/usr/bin/ipvlan-hook" 2>/dev/null)" ] || die "the RPM's /usr/bin/ipvlan-hook is not stripped"
[ "$(rpm -qp --configfiles "$rpm" | sort)" = "$(sort <<<"$conffiles")" ] ||
	die "the RPM's config files are not exactly $(tr '\n' ' ' <<<"$conffiles")"

# --- Install -----------------------------------------------------------------------------------
# Which of the package's paths (directories too) are there before it: the rest must go again.
deb_paths=$(dpkg-deb -c "$deb" | awk '{ sub(/^\./, "", $6); sub(/\/$/, "", $6); if ($6 != "") print $6 }')
absent_before=$(while read -r p; do [ -e "$p" ] || echo "$p"; done <<<"$deb_paths")

step "installing $(basename "$deb")"
cp "$deb" "$work/"
chmod 644 "$work/$(basename "$deb")"
installed=1
apt_get install "$work/$(basename "$deb")"
[ -d /var/lib/ipvlan-hook ] || die "the package made no state directory /var/lib/ipvlan-hook"
# The release profile keeps the symbol table (build/hot-symbols.sh reads it); packages do not.
for b in /usr/bin/ipvlan-hook /usr/bin/ipvlan-run; do
	[ -z "$(nm "$b" 2>/dev/null)" ] || die "the package's $b is not stripped"
done
for page in "8 ipvlan-hook" "5 ipvlan-hook" "8 ipvlan-run"; do
	# shellcheck disable=SC2086 # section and name
	man -w $page >/dev/null || die "man does not find the installed page $page"
done

# The CNI plugin where CNI runtimes look for it: VERSION without any other variable.
version=$(echo '{"cniVersion":"1.0.0"}' | env -i CNI_COMMAND=VERSION /usr/lib/cni/ipvlan-hook) ||
	die "/usr/lib/cni/ipvlan-hook VERSION failed: $version"
[ "$(jq -c .supportedVersions <<<"$version")" = '["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]' ] ||
	die "/usr/lib/cni/ipvlan-hook VERSION answered $version"

# --- A container through the installed hook ----------------------------------------------------
step "a podman container on a macvlan network, attached by the installed hooks.d file"
# The machine in a network namespace of its own: veth p0 (the parent) and p1 (a peer at $PEER).
unshare --net sleep 3600 &
holder=$!
for _ in $(seq 100); do
	[ "$(readlink "/proc/$holder/ns/net")" != "$(readlink /proc/self/ns/net)" ] && break
	sleep 0.05
done
[ "$(readlink "/proc/$holder/ns/net")" != "$(readlink /proc/self/ns/net)" ] ||
	die "the scratch network namespace did not come up"
in_ns ip link set lo up
in_ns ip link add p0 type veth peer name p1
in_ns ip link set p0 up
in_ns ip link set p1 up
in_ns ip addr add "$PEER/24" dev p1

net_created=1
in_ns /usr/bin/ipvlan-hook network create "$NET" --driver macvlan --parent p0 --subnet "$SUBNET" >/dev/null
[ -f "/etc/ipvlan-hook/networks/$NET.json" ] || die "network create wrote no /etc/ipvlan-hook/networks/$NET.json"

# doctor, installed: the package's files check out (the kernel rows depend on the kernel).
in_ns /usr/bin/ipvlan-hook doctor || true
in_ns /usr/bin/ipvlan-hook doctor --format json >"$work/doctor.json" 2>/dev/null || true
for check in "hooks.d /usr/share/containers/oci/hooks.d/ipvlan-hook-createRuntime.json" \
	"hooks.d /usr/share/containers/oci/hooks.d/ipvlan-hook-poststop.json" \
	"network $NET" "policy /etc/ipvlan-hook/policy.json" "state dir /var/lib/ipvlan-hook" \
	"config dir /etc/ipvlan-hook" "cni plugin /usr/lib/cni/ipvlan-hook"; do
	jq -e --arg c "$check" 'any(.[]; .check == $c and .status == "pass")' "$work/doctor.json" >/dev/null ||
		die "doctor: no PASS for '$check': $(jq -c --arg c "$check" '.[] | select(.check == $c)' "$work/doctor.json")"
done

# podman as tests/runtimes uses it here (runc, rlimits it may set, storage of its own), but with
# no hooks_dir and no --hooks-dir: it reads /usr/share/containers/oci/hooks.d.
mkdir -p "$work/podman" "$work/rootfs"
nofile=$(ulimit -Hn)
[ "$nofile" != unlimited ] || nofile=1048576
nproc=$(cat /proc/sys/kernel/pid_max)
hard_nproc=$(ulimit -Hu)
[ "$hard_nproc" = unlimited ] || [ "$hard_nproc" -ge "$nproc" ] || nproc=$hard_nproc
cat >"$work/podman/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[network]
network_config_dir = "$work/podman/networks"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "none"
runtime = "runc"
tmp_dir = "$work/podman/tmp"
volume_path = "$work/podman/volumes"
EOF
cat >"$work/podman/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$work/podman/root"
runroot = "$work/podman/runroot"
EOF
busybox=$(dpkg -L busybox-static | grep -m1 '/bin/busybox$')
mkdir -p "$work"/rootfs/{bin,proc,sys,dev,tmp,etc,root}
cp "$busybox" "$work/rootfs/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$work/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/rootfs/etc/passwd"
echo 'root:x:0:' >"$work/rootfs/etc/group"
tar -C "$work/rootfs" -cf "$work/busybox.tar" .
pod import --quiet --change 'CMD ["/bin/sh"]' "$work/busybox.tar" "$IMAGE" >/dev/null

out=$(pod run --rm --network none --cap-add NET_RAW --annotation "ipvlan.network=$NET" "$IMAGE" \
	sh -c "ip -o -4 addr show dev eth0 && ping -c 1 -W 5 $PEER >/dev/null && echo ping-ok") ||
	die "podman run failed: $out"
echo "$out"
grep -q "inet 10.79.0.2/24" <<<"$out" || die "the container has no 10.79.0.2/24 on eth0: $out"
grep -qx ping-ok <<<"$out" || die "the container cannot reach $PEER: $out"
leases=$(in_ns /usr/bin/ipvlan-hook lease ls --format json | jq -c .)
[ "$leases" = "[]" ] || die "leases left after the container exited (poststop): $leases"

in_ns /usr/bin/ipvlan-hook network rm "$NET" >/dev/null
[ ! -e "/etc/ipvlan-hook/networks/$NET.json" ] || die "network rm left /etc/ipvlan-hook/networks/$NET.json"
[ ! -e "/var/lib/ipvlan-hook/networks/$NET" ] || die "network rm left /var/lib/ipvlan-hook/networks/$NET"
# A definition the operator keeps: purge must leave it (and its directories) alone.
in_ns /usr/bin/ipvlan-hook network create "${NET}keep" --driver macvlan --parent p0 \
	--subnet 10.79.1.0/24 >/dev/null
pod rm --all --force --time 0 >/dev/null
kill "$holder"
holder=
net_created=

# --- Purge -------------------------------------------------------------------------------------
step "purging the package"
apt_get purge ipvlan-hook
! dpkg -s ipvlan-hook >/dev/null 2>&1 || die "ipvlan-hook is still installed after purge"
[ -f "/etc/ipvlan-hook/networks/${NET}keep.json" ] || die "purge removed a network definition"
[ ! -e /etc/ipvlan-hook/policy.json ] || die "purge left /etc/ipvlan-hook/policy.json"
rm -f "/etc/ipvlan-hook/networks/${NET}keep.json" /etc/ipvlan-hook/networks/.lock
rmdir /etc/ipvlan-hook/networks /etc/ipvlan-hook
installed=
left=$(while read -r p; do [ ! -e "$p" ] || echo "$p"; done <<<"$absent_before")
[ -z "$left" ] || die "purge left: $left"

step "done: $(basename "$deb") $(stat -c %s "$deb") bytes, $(basename "$rpm") $(stat -c %s "$rpm") bytes"
