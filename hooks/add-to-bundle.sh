#!/bin/sh
# add-to-bundle.sh - wire ipvlan-hook into an OCI bundle's config.json, for runc and crun
# (podman and CRI-O use the hooks.d files next to this script instead).
#
# usage: add-to-bundle.sh [--config-dir DIR] [--state-dir DIR] [--annotation KEY=VALUE]...
#                         BUNDLE [HOOK_PATH]
#
# Adds the createRuntime and poststop entries of config-json-hooks.json (next to this script)
# to BUNDLE/config.json, with HOOK_PATH as the hook's path (default /usr/bin/ipvlan-hook; after
# `cargo install` that is ~/.cargo/bin/ipvlan-hook of the user who ran it). --config-dir and
# --state-dir are appended to the hook's args (ipvlan-hook's defaults are /etc/ipvlan-hook and
# /var/lib/ipvlan-hook). --annotation sets an annotation of the container, e.g.
# --annotation ipvlan.network=db_net. Other hooks and annotations are kept; running it again
# replaces the entries it added before. Needs jq.
#
# example:
#   runc spec && add-to-bundle.sh --annotation ipvlan.network=db_net . && runc run ctr1
set -eu

usage() {
	sed -n '5,6s/^# \{0,1\}//p' "$0" >&2
	exit "${1:-2}"
}

here=$(cd "$(dirname "$0")" && pwd)
snippet=$here/config-json-hooks.json
extra=
annotations=
while [ $# -gt 0 ]; do
	case $1 in
	--config-dir | --state-dir)
		[ $# -ge 2 ] || usage
		extra="$extra$(jq -cn --arg k "$1" --arg v "$2" '[$k, $v]')"
		shift 2
		;;
	--annotation)
		[ $# -ge 2 ] || usage
		case $2 in
		?*=*) ;;
		*) echo "add-to-bundle.sh: --annotation wants KEY=VALUE, got '$2'" >&2; exit 2 ;;
		esac
		annotations="$annotations$(jq -cn --arg k "${2%%=*}" --arg v "${2#*=}" '{($k): $v}')"
		shift 2
		;;
	-h | --help) usage 0 ;;
	--) shift; break ;;
	-*) echo "add-to-bundle.sh: unknown option $1" >&2; usage ;;
	*) break ;;
	esac
done
if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
config=$1/config.json
hook=${2:-/usr/bin/ipvlan-hook}
command -v jq >/dev/null || { echo "add-to-bundle.sh: needs jq (apt-get install jq)" >&2; exit 1; }
[ -f "$config" ] || { echo "add-to-bundle.sh: no $config (create one with 'runc spec')" >&2; exit 1; }
[ -f "$snippet" ] || { echo "add-to-bundle.sh: $snippet is missing" >&2; exit 1; }
case $hook in
/*) ;;
*) echo "add-to-bundle.sh: HOOK_PATH must be absolute (runtimes run hooks without PATH): $hook" >&2; exit 1 ;;
esac

# The fragments collected above are concatenated JSON values: `jq -s add` joins them.
extra=$(printf '%s' "$extra" | jq -cs 'add // []')
annotations=$(printf '%s' "$annotations" | jq -cs 'add // {}')
tmp=$config.ipvlan-hook.tmp
jq --slurpfile snippet "$snippet" --arg hook "$hook" --argjson extra "$extra" \
	--argjson annotations "$annotations" '
	$snippet[0].hooks as $ours
	| reduce ($ours | keys_unsorted[]) as $stage (.;
		.hooks[$stage] = [(.hooks[$stage] // [])[] | select((.args // [])[0] != "ipvlan-hook" and .path != $hook)]
			+ [$ours[$stage][] | .path = $hook | .args += $extra])
	| .annotations = (.annotations // {}) + $annotations
	' "$config" >"$tmp"
mv "$tmp" "$config"
