#!/usr/bin/env bash
# Runs the crate's test executables inside a qemu VM that boots a stock Debian
# cloud kernel.  The development and CI hosts' kernel has no ipvlan, 802.1q or
# dummy links and cannot load modules, so the tests that need them can only
# really run here.
#
# usage: tests/vm/run.sh [-- TEST-BINARY-ARGS...]
#   e.g. tests/vm/run.sh -- ipvlan      (a libtest name filter)
# env:
#   IPVLAN_VM_CARGO_DIR  crate to build and test (default: this repository)
#   IPVLAN_VM_CACHE      where kernels are kept (default: /var/cache/ipvlan-hook-vm)
#   IPVLAN_VM_TIMEOUT    seconds before the VM is killed (default: 600)
#   IPVLAN_VM_MEM        VM memory in MiB (default: 1024)
#   IPVLAN_VM_EXTRA      a bash file sourced while the image is built, after the binaries
#                        are in it: it may copy more (copy_elf, copy_file, $root) and write
#                        $root/etc/ipvlan-vm/command, a script the VM runs instead of the test
#                        executables (no tests are built then); bench/vm.sh uses it
# Exits 0 only when the VM reports that every test executable (or the command) passed.
set -Eeuo pipefail  # -E: the ERR trap below also fires inside functions

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
crate_dir=$(cd "${IPVLAN_VM_CARGO_DIR:-$here/../..}" && pwd)
cache=${IPVLAN_VM_CACHE:-/var/cache/ipvlan-hook-vm}
vm_timeout=${IPVLAN_VM_TIMEOUT:-600}
vm_mem=${IPVLAN_VM_MEM:-1024}
# The link types the tests create; their dependencies are resolved by kmods.py.
modules=(ipvlan 8021q dummy macvlan veth)
# dummy would otherwise create a dummy0 link that no test asked for.
declare -A module_params=([dummy]=numdummies=0)
# Programs the tests run besides iproute2, copied with their libraries.
extra_bins=(bird birdc)

die() { echo "vm: error: $*" >&2; exit 1; }
log() { echo "vm: $*" >&2; }
# Any other failing command still ends the run with a message saying where.
trap 'die "command failed (line $LINENO): $BASH_COMMAND"' ERR

test_args=()
case ${1-} in
"") ;;
--) shift; test_args=("$@") ;;
*) die "unexpected argument '$1'; test-binary arguments go after --" ;;
esac
[[ $vm_timeout =~ ^[0-9]+$ ]] || die "IPVLAN_VM_TIMEOUT must be a number of seconds"

apt_updated=
apt_update_once() {
	[[ -n $apt_updated ]] && return
	apt_updated=1
	apt-get update -qq
}

# Other sessions on the same machine may be running apt too: wait for the lock.
apt_install() {
	apt_update_once
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		-o DPkg::Lock::Timeout=300 "$@"
}

install_host_tools() {
	local missing=()
	command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
	dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
	command -v cpio >/dev/null || missing+=(cpio)
	command -v ip >/dev/null || missing+=(iproute2)
	command -v xz >/dev/null || missing+=(xz-utils)
	command -v zstd >/dev/null || missing+=(zstd)
	command -v python3 >/dev/null || missing+=(python3)
	command -v strip >/dev/null || missing+=(binutils)
	command -v bird >/dev/null || missing+=(bird2)
	if ((${#missing[@]})); then
		log "installing ${missing[*]}"
		apt_install "${missing[@]}"
	fi
}

# Prints the package that Debian's cloud kernel metapackage currently pulls in
# and its version, as "NAME VERSION", or nothing when apt does not know it.
# The metapackage pins the exact version, so one (slow) apt-cache call will do.
kernel_package() {
	{ apt-cache show --no-all-versions linux-image-cloud-amd64 2>/dev/null || true; } | awk '
		$1 == "Depends:" {
			for (i = 2; i < NF; i++)
				if ($i ~ /^linux-image-/ && $(i + 1) == "(=") {
					sub(/[),].*/, "", $(i + 2))
					print $i, $(i + 2)
					exit
				}
		}'
}

newest_cached_kernel() {
	[[ -d $cache ]] || return 0
	find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f\n' |
		sort -V | tail -n 1
}

# Sets kernel_dir to the extracted package of the cloud kernel apt offers now,
# downloading it unless it is cached.  Fails when apt cannot tell or download.
fetch_kernel() {
	local found pkg version tmp
	found=$(kernel_package)
	[[ -n $found ]] || return 1
	read -r pkg version <<<"$found"
	kernel_dir=$cache/${pkg#linux-image-}_$version
	[[ -d $kernel_dir ]] && return 0

	log "downloading $pkg $version"
	mkdir -p "$cache"
	tmp=$(mktemp -d "$cache/.download.XXXXXX")
	if (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$version") &&
		dpkg -x "$tmp"/*.deb "$tmp/root"; then
		mv "$tmp/root" "$kernel_dir"
		rm -rf "$tmp"
		return 0
	fi
	rm -rf "$tmp"
	return 1
}

# Reruns need no network: apt's local lists name the current kernel, which is
# then found in the cache, and when apt cannot help any cached kernel will do.
prepare_kernel() {
	local cached
	cached=$(newest_cached_kernel)
	fetch_kernel && return
	if [[ -n $cached ]]; then
		log "apt cannot provide the current cloud kernel; using cached $cached"
		kernel_dir=$cache/$cached
		return
	fi
	# With nothing cached, apt's lists may be missing, or stale and naming a
	# kernel the mirror no longer has: refresh them once.
	apt_update_once
	fetch_kernel || die "cannot get Debian's cloud kernel (linux-image-cloud-amd64) from apt"
}

# Sets hook_bin, run_bin and test_exes (KIND/NAME<TAB>PATH lines) from cargo's
# JSON output, so that target-dir settings and file-name hashes need no guessing.
# Only integration tests go into the VM: unit tests touch no kernel and already
# ran on the host, where they are many times faster than under emulation.
build_crate() {
	local build_json test_json executables
	# Optimised binaries (profile vm): the tests run them hundreds of times on an emulated CPU.
	build_json=$(cd "$crate_dir" && cargo build --profile vm --bins --message-format=json-render-diagnostics) ||
		die "cargo build failed"
	if [[ -n ${IPVLAN_VM_EXTRA:-} ]]; then
		test_json=
	else
		test_json=$(cd "$crate_dir" && cargo test --no-run --message-format=json-render-diagnostics) ||
			die "cargo test --no-run failed"
	fi
	# One "bin<TAB>NAME<TAB>PATH" or "test<TAB>KIND/NAME<TAB>PATH" line each: binaries
	# from the vm-profile build only (cargo test builds debug ones too), tests from cargo test.
	executables=$(python3 -c '
import json, sys
found = set()
for line in filter(str.strip, sys.stdin):
    source, _, text = line.partition("\t")
    if not text.strip():
        continue  # no tests built (IPVLAN_VM_EXTRA)
    msg = json.loads(text)
    exe = msg.get("executable")
    if msg.get("reason") != "compiler-artifact" or not exe:
        continue
    target = msg["target"]
    if source == "test" and msg["profile"]["test"] and target["kind"][0] == "test":
        found.add(("test", "test/" + target["name"], exe))
    elif source == "build" and "bin" in target["kind"]:
        found.add(("bin", target["name"], exe))
for row in sorted(found):
    print("\t".join(row))
' < <(sed 's/^/build\t/' <<<"$build_json"; sed 's/^/test\t/' <<<"$test_json"))
	hook_bin=$(awk -F '\t' '$1 == "bin" && $2 == "ipvlan-hook" { print $3 }' <<<"$executables")
	run_bin=$(awk -F '\t' '$1 == "bin" && $2 == "ipvlan-run" { print $3 }' <<<"$executables")
	test_exes=$(awk -F '\t' '$1 == "test" { print $2 "\t" $3 }' <<<"$executables")
	[[ -n $hook_bin && -n $run_bin ]] || die "cargo built no ipvlan-hook or ipvlan-run binary"
	[[ $hook_bin$run_bin != *$'\n'* ]] || die "cargo reported several ipvlan-hook or ipvlan-run binaries"
	[[ -n $test_exes || -n ${IPVLAN_VM_EXTRA:-} ]] || die "cargo built no test executable"
}

# Copies a file to the same absolute path under $root.  Its directory is
# resolved first because cp --parents will not descend through the merged-/usr
# symlinks (lib -> usr/lib) that $root mirrors.
copy_file() {
	local dir
	dir=$root$(readlink -f "$(dirname "$1")")
	mkdir -p "$dir"
	cp -L "$1" "$dir/"
}

# Copies an ELF file with the shared libraries and dynamic loader it needs.
# Debug info is stripped from the copy: it only slows down packing and
# unpacking under emulation, while panics keep their locations and backtraces
# keep function names.
copy_elf() {
	local lib
	copy_file "$1"
	strip --strip-debug "$root$1"
	while read -r lib; do
		[[ -e $root$lib ]] || copy_file "$lib"
	done < <({ ldd "$1" 2>/dev/null || true; } | awk '
		$2 == "=>" && $3 ~ /^\// { print $3 }
		$1 ~ /^\// { print $1 }')
}

build_initramfs() {
	local kver=$1 moddir busybox name path
	root=$vm_dir/root
	rm -rf "$root"
	mkdir -p "$root"/{dev,proc,sys,run,tmp,root,etc/ipvlan-vm,var/lib,var/tmp,usr/bin,usr/sbin}
	ln -s ../run "$root/var/run"
	# Mirror the host's merged-/usr symlinks so library paths from ldd resolve.
	for name in bin sbin lib lib64; do
		if [[ -L /$name ]]; then
			ln -s "$(readlink "/$name")" "$root/$name"
		else
			mkdir -p "$root/$name"
		fi
	done
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
	printf 'root:x:0:\n' >"$root/etc/group"

	copy_elf "$hook_bin"
	copy_elf "$run_bin"
	while IFS=$'\t' read -r name path; do
		[[ -z $path ]] || copy_elf "$path"
	done <<<"$test_exes"
	# Tests run iproute2: busybox's ip lacks ipvlan, vlan and most options.
	copy_elf "$(command -v ip)"
	# Debian's busybox ash runs its own applets before anything in PATH, so
	# the tests' `sh -c "ip ..."` would get busybox's ip: /bin/sh is the host's.
	copy_elf /bin/sh
	# Optional: tests that need runc skip without it, and busybox's ping stands
	# in for iputils' one.
	for name in runc ping; do
		if command -v "$name" >/dev/null; then copy_elf "$(command -v "$name")"; fi
	done
	# BGP speakers of tests/announce.rs (bird2), which fails without them.
	for name in "${extra_bins[@]}"; do
		command -v "$name" >/dev/null || die "$name is missing: apt-get install bird2"
		copy_elf "$(command -v "$name")"
	done

	busybox=$(readlink -f "$(command -v busybox)")
	copy_file "$busybox"
	# Applet links go only where no real program was copied, so iproute2's ip
	# is not shadowed.  (One process: a fork per link would cost a second.)
	"$busybox" --list-full | python3 -c '
import os, sys
root, busybox = sys.argv[1:]
for applet in sys.stdin.read().split():
    link = os.path.join(root, applet)
    if not os.path.lexists(link):
        os.symlink(busybox, link)
' "$root" "$busybox"

	moddir=$(find "$kernel_dir" -path "*/lib/modules/$kver" -type d | head -n 1)
	[[ -n $moddir ]] || die "no modules for $kver in $kernel_dir"
	python3 "$here/kmods.py" "$moddir" "$root/lib/modules/$kver" "${modules[@]}" |
		while read -r ko; do
			echo "/lib/modules/$kver/$ko ${module_params[${ko%.ko}]-}"
		done >"$root/etc/ipvlan-vm/modules"

	mkdir -p "$root$crate_dir"
	{
		printf 'export IPVLAN_HOOK_BIN=%q\n' "$hook_bin"
		printf 'export IPVLAN_RUN_BIN=%q\n' "$run_bin"
		printf 'export CARGO_MANIFEST_DIR=%q\n' "$crate_dir"
	} >"$root/etc/ipvlan-vm/env"
	printf '%s\n' "$test_exes" >"$root/etc/ipvlan-vm/tests"
	if ((${#test_args[@]})); then
		printf '%s\n' "${test_args[@]}" >"$root/etc/ipvlan-vm/args"
	else
		: >"$root/etc/ipvlan-vm/args"
	fi
	install -m 755 "$here/init" "$root/init"
	if [[ -n ${IPVLAN_VM_EXTRA:-} ]]; then
		# shellcheck source=/dev/null
		. "$IPVLAN_VM_EXTRA"
	fi

	(cd "$root" && find . -print0 | cpio --null -o -H newc --owner=0:0 --quiet) |
		gzip -1 >"$vm_dir/initrd.gz"
}

install_host_tools
build_crate
vm_dir=$(cd "$crate_dir" && cargo metadata --format-version 1 --no-deps |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/vm
mkdir -p "$vm_dir"
prepare_kernel
vmlinuz=$(find "$kernel_dir/boot" -name 'vmlinuz-*' | head -n 1)
[[ -n $vmlinuz ]] || die "no vmlinuz in $kernel_dir/boot"
kver=${vmlinuz##*/vmlinuz-}
log "kernel $kver from $kernel_dir"
build_initramfs "$kver"
log "initramfs $(du -h "$vm_dir/initrd.gz" | cut -f1); booting (timeout ${vm_timeout}s)"

console=$vm_dir/console.log
# KVM is not usable on these hosts, so the VM is fully emulated (TCG).  A
# second vCPU measured no faster on the project's suite (tests run one at a
# time).  qboot boots a little faster than SeaBIOS and writes nothing to the
# console.
# stdin is /dev/null so that qemu leaves the terminal alone and Ctrl-C works.
vm_start=$SECONDS
set +e
timeout --foreground -k 10 "$vm_timeout" qemu-system-x86_64 \
	-accel tcg -m "$vm_mem" -smp 1 -bios qboot.rom -nographic -no-reboot -nic none \
	-kernel "$vmlinuz" -initrd "$vm_dir/initrd.gz" \
	-append "console=ttyS0 quiet panic=-1" </dev/null | tee "$console"
qemu_status=${PIPESTATUS[0]}
set -e
log "VM ran for $((SECONDS - vm_start))s"

result=$(tr -d '\r' <"$console" | grep -a '^IPVLAN-VM-RESULT: ' | tail -n 1) || true
if [[ $qemu_status == 124 || $qemu_status == 137 ]]; then
	die "VM timed out after ${vm_timeout}s (console: $console)"
elif [[ -z $result ]]; then
	die "VM printed no result line (qemu exit $qemu_status; it did not boot or crashed; console: $console)"
elif [[ $result != *" status=pass "* ]]; then
	die "tests failed in the VM: ${result#IPVLAN-VM-RESULT: }"
fi
log "all tests passed in the VM: ${result#IPVLAN-VM-RESULT: }"
