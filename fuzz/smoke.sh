#!/usr/bin/env bash
# Build every cargo-fuzz target and run each one for a short, bounded time (CI smoke run).
#
#   fuzz/smoke.sh                 # every target, 20 s each
#   FUZZ_SECONDS=3600 fuzz/smoke.sh oci_state   # one target, an hour (a long run)
#
# Works on the stable toolchain: `--sanitizer none` needs no nightly flag. FUZZ_SANITIZER=address
# builds with AddressSanitizer instead, which needs a nightly flag (-Zsanitizer) and so
# RUSTC_BOOTSTRAP=1 on stable (set here). Installs cargo-fuzz (pinned) when it is missing.
# The committed seeds in fuzz/corpus/TARGET are only read; what the run finds goes to a temp
# dir (FUZZ_CORPUS_DIR=DIR keeps it), so the work tree stays clean. A crash fails the run and
# leaves the input under $FUZZ_ARTIFACTS (default: a temp dir), printed below.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-20}
sanitizer=${FUZZ_SANITIZER:-none}
cargo_fuzz_version=0.13.2

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/smoke.sh: installing cargo-fuzz $cargo_fuzz_version (takes about 2 minutes)"
    cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked
fi
if [ "$sanitizer" != none ]; then
    export RUSTC_BOOTSTRAP=1
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
    build=(cargo fuzz build --sanitizer "$sanitizer")
else
    build=(cargo fuzz build --sanitizer "$sanitizer" "${targets[0]}")
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
artifacts=${FUZZ_ARTIFACTS:-$work/artifacts}

start=$(date +%s)
"${build[@]}"
echo "fuzz/smoke.sh: built in $(($(date +%s) - start)) s"

failed=()
for t in "${targets[@]}"; do
    corpus=${FUZZ_CORPUS_DIR:+$FUZZ_CORPUS_DIR/$t}
    corpus=${corpus:-$work/corpus/$t}
    mkdir -p "$corpus" "$artifacts/$t"
    dict=()
    [ -f "fuzz/dicts/$t.dict" ] && dict=("-dict=fuzz/dicts/$t.dict")
    log=$work/$t.log
    if cargo fuzz run --sanitizer "$sanitizer" "$t" "$corpus" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$artifacts/$t/" "${dict[@]}" >"$log" 2>&1; then
        echo "fuzz/smoke.sh: $t: $(grep -E '^Done ' "$log" | tail -1), $(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)"
    else
        echo "fuzz/smoke.sh: $t FAILED; the end of its log:"
        tail -40 "$log"
        ls -l "$artifacts/$t"
        failed+=("$t")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    if [ -z "${FUZZ_ARTIFACTS:-}" ]; then
        # Keep the crashing inputs: the temp dir goes away on exit.
        kept=$(mktemp -d /tmp/ipvlan-hook-fuzz-artifacts.XXXXXX)
        cp -r "$artifacts"/. "$kept"/
        echo "fuzz/smoke.sh: crashing inputs kept in $kept"
    fi
    echo "fuzz/smoke.sh: failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz/smoke.sh: ${#targets[@]} targets, ${seconds} s each, no crash ($(($(date +%s) - start)) s in all)"
