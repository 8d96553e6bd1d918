#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 60); exits non-zero as soon as a target
# crashes, times out or runs out of memory (libFuzzer's exit status), leaving the input in
# fuzz/artifacts/<target>/.
#
#   fuzz/run-all.sh 60                           # ASan build: the long runs
#   FUZZ_SANITIZER=none fuzz/run-all.sh 20       # no sanitizer: the CI smoke run (see README)
#   FUZZ_JOBS=2 fuzz/run-all.sh 600              # two targets at a time (one per core)
#
# The targets are the [[bin]] entries of fuzz/Cargo.toml, so a target added there is run
# without touching this script. The seeds in corpus/<target>/ are read but not written: new
# inputs go to a scratch corpus (FUZZ_WORK, default a temporary directory), so a smoke run does
# not change the repository. A summary line per target (runs, coverage) goes to stdout, the
# full log to FUZZ_WORK/<target>.log.
set -euo pipefail

seconds=${1:-60}
sanitizer=${FUZZ_SANITIZER:-address}
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1 # cargo-fuzz needs nightly flags (-Z sanitizer) on a stable toolchain
work=${FUZZ_WORK:-$(mktemp -d)}
mkdir -p "$work"

# The [[bin]] names, in file order.
targets=$(awk '
    /^\[\[bin\]\]/ { in_bin = 1; next }
    /^\[/ { in_bin = 0 }
    in_bin && $1 == "name" { gsub(/"/, "", $3); print $3 }
' Cargo.toml)
if [ -z "$targets" ]; then
    echo "no [[bin]] targets in fuzz/Cargo.toml" >&2
    exit 1
fi
echo "fuzz targets ($sanitizer sanitizer, ${seconds}s each):" $targets

start=$(date +%s)
cargo fuzz build -O -s "$sanitizer"
echo "build: $(($(date +%s) - start)) s"
jobs=${FUZZ_JOBS:-1}
# One target for SECONDS; its summary line, or its log tail and a FAILED line (status 1).
run_one() {
    local target=$1
    mkdir -p "$work/$target" "corpus/$target"
    echo "== $target: ${seconds}s ($(date -u +%H:%M:%S))"
    # -timeout: one input taking over 25 s is a bug (a hang), not a slow machine.
    if ! cargo fuzz run -O -s "$sanitizer" "$target" "$work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$work/$target.log" 2>&1; then
        tail -n 60 "$work/$target.log"
        echo "FAILED: $target (log: $work/$target.log; input in fuzz/artifacts/$target/)" >&2
        return 1
    fi
    echo "$target: $(grep -E '^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs' "$work/$target.log" | tr '\n' ' ')"
}
failed=0
running=0
for target in $targets; do
    if [ "$jobs" -le 1 ]; then
        run_one "$target" || exit 1
        continue
    fi
    run_one "$target" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || failed=1
        running=$((running - 1))
        [ "$failed" -eq 0 ] || break
    fi
done
while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
done
[ "$failed" -eq 0 ] || exit 1
echo "all $(echo $targets | wc -w) targets ran ${seconds}s without a crash ($(($(date +%s) - start)) s in all; logs in $work)"
