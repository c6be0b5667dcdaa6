#!/usr/bin/env bash
# Runs every cargo-fuzz target (or the ones named) for FUZZ_SECONDS each, one after the other,
# and prints a table of executions, executions per second and the outcome per target.
# Exits non-zero if any target crashed, timed out, ran out of memory or failed to build.
#
#   fuzz/run.sh [target...]          (make fuzz / make fuzz-smoke)
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 60)
#   FUZZ_SANITIZER  address (default) or none: cargo fuzz's --sanitizer
#   FUZZ_REPORT     also write the table as Markdown to this file
#   FUZZ_JOBS       cargo build jobs (default 2)
#
# Stable toolchain: cargo fuzz hands rustc -Z flags (-Zsanitizer=address and the like), which a
# stable rustc accepts only with RUSTC_BOOTSTRAP=1; the sanitizer runtimes ship with the stable
# standard library for x86_64-unknown-linux-gnu. Nothing here needs a nightly toolchain.
set -uo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
TOOLS="$PWD/.tools"
SECS="${FUZZ_SECONDS:-60}"
SANITIZER="${FUZZ_SANITIZER:-address}"
REPORT="${FUZZ_REPORT:-}"
export PATH="$TOOLS/bin:$PATH"
export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS="${FUZZ_JOBS:-2}"

if ! cargo fuzz --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\$"; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$TOOLS" || exit 1
fi

cd fuzz
if [ "$#" -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi

echo "== cargo fuzz build (sanitizer: $SANITIZER, rustc: $(rustc --version))"
if ! cargo fuzz build --sanitizer "$SANITIZER"; then
    [ "$SANITIZER" = none ] && exit 1
    echo "== the $SANITIZER sanitizer build failed; falling back to --sanitizer none"
    SANITIZER=none
    cargo fuzz build --sanitizer none || exit 1
fi

mkdir -p target/logs
rows=()
failed=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    log="target/logs/$t.log"
    echo "== fuzz $t for ${SECS}s (corpus/$t, seeds/$t)"
    start=$(date +%s.%N)
    # corpus/<t> (first) receives what the fuzzer finds; seeds/<t> is read only.
    cargo fuzz run --sanitizer "$SANITIZER" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$SECS" -dict=koogate.dict -max_len=8192 -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    units=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
    if [ "$rc" -eq 0 ]; then
        outcome="no crash"
    else
        failed=1
        outcome="FAILED (exit $rc): $(grep -m1 -oE 'ERROR: libFuzzer: [a-z -]+|panicked at [^,]*|error(\[E[0-9]+\])?: .*' "$log" || echo see log)"
        echo "---- last lines of fuzz/$log"
        tail -40 "$log"
        ls artifacts/"$t" 2>/dev/null | sed "s|^|crash input: fuzz/artifacts/$t/|"
    fi
    row=$(printf '| %s | %s | %s | %s | %s | %s | %s |' "$t" "${runs:-?}" "${rate:-?}" "$took" "${cov:-?}" "${units:-?}" "$outcome")
    echo "$row"
    rows+=("$row")
done

table=$(
    echo "| target | executions | exec/s | seconds | coverage (edges) | new corpus units | outcome |"
    echo "|---|---:|---:|---:|---:|---:|---|"
    printf '%s\n' "${rows[@]}"
)
echo
echo "== fuzz summary (${SECS}s per target, sanitizer $SANITIZER, $(nproc) cores)"
echo "$table"
if [ -n "$REPORT" ]; then
    mkdir -p "$(dirname "../$REPORT")"
    {
        echo "# Fuzz run $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)"
        echo
        echo "${SECS}s per target, sanitizer $SANITIZER, $(rustc --version), $(nproc) cores"
        echo
        echo "$table"
    } >"../$REPORT"
    echo "(written to $REPORT)"
fi
if [ "$failed" -ne 0 ]; then
    echo "fuzz: a target FAILED; the crashing input is under fuzz/artifacts/<target>/;"
    echo "reproduce with: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run <target> artifacts/<target>/<file>"
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, no crash"
