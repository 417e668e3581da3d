#!/usr/bin/env bash
# Runs every race-dependent test of the project many times in a row, the
# later half beside busy processes, and summarizes what the verdicts rest
# on: the controls' loss rates, the phases' times, the stress floors, the
# run times.  docs/race-tests.md says what each test's bound is and quotes
# this script's numbers.
#
# The set, each run:
#   - the C litmus and stress tests (ctest/c/test_litmus.c, test_stress.c)
#     in every C-test executable: the library (DEBUG), the release
#     staticlib, both kernel objects, the original DEBUG and non-DEBUG;
#   - the harvest litmus test (difftest/tests/harvest_litmus.rs) over every
#     opt-in copy;
#   - the consumer's concurrent scenario (consumer/tests/concurrent.rs) over
#     every copy.
#
# Usage: scripts/race-repeat.sh [--runs N] [--busy-from K] [--busy-procs P]
#                               [--out DIR] [--stress-ms MS]
#                               [--suites c,harvest,consumer]
#                               [--consumer-seeds N]
#        scripts/race-repeat.sh --summary DIR
#   --runs N        runs in all (default 200)
#   --busy-from K   runs K..N have P busy processes beside them (default
#                   N/2 + 1: the second half)
#   --busy-first    the busy runs first instead: runs 1..N/2 are beside
#                   the busy processes, the rest not
#   --busy-procs P  busy processes (default 2: both CPUs of the test machine)
#   --out DIR       where the logs and the summary go (default
#                   target/race-repeat)
#   --stress-ms MS  each stress phase's minimum (VTEST_STRESS_MS; default
#                   200, a third of the test command's 600 ms: the A/D
#                   race's activity floors are waited for, so a shorter
#                   phase only makes them harder to meet)
#   --suites LIST   which of the three to run (default all: c,harvest,consumer)
#   --consumer-seeds N  seeds per format of each consumer run (default 4,
#                   as in the test command); run i takes the N seeds after
#                   run i - 1's, so the runs together cover seeds 1 to
#                   N x runs
#   --summary DIR   only summarize the logs in DIR
#
# Needs ILLUMOS_GATE (the original, for its C-test executables and the
# consumer); stops at the first failed run, whose log it names.
set -euo pipefail
# Paths given relative to the caller's directory, resolved before the cd.
abs() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
caller_gate="${ILLUMOS_GATE:+$(abs "$ILLUMOS_GATE")}"
caller_dir="$PWD"
abs_from_caller() { case "$1" in /*) echo "$1" ;; *) echo "$caller_dir/$1" ;; esac; }
cd "$(dirname "$0")/.."

runs=200 busy_from="" busy_first="" busy_procs=2 out=target/race-repeat stress_ms=200 summary_only="" suites=c,harvest,consumer consumer_seeds=4
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --busy-from) busy_from="$2"; shift 2 ;;
    --busy-first) busy_first=1; shift ;;
    --busy-procs) busy_procs="$2"; shift 2 ;;
    --out) out="$(abs_from_caller "$2")"; shift 2 ;;
    --stress-ms) stress_ms="$2"; shift 2 ;;
    --suites) suites="$2"; shift 2 ;;
    --consumer-seeds) consumer_seeds="$2"; shift 2 ;;
    --summary) summary_only="$(abs_from_caller "$2")"; shift 2 ;;
    *) echo "race-repeat.sh: unknown argument $1 (see the comment at the top)" >&2; exit 2 ;;
    esac
done
busy_from="${busy_from:-$((runs / 2 + 1))}"
for s in ${suites//,/ }; do
    case "$s" in c | harvest | consumer) ;; *) echo "race-repeat.sh: unknown suite $s (c, harvest, consumer)" >&2; exit 2 ;; esac
done
[ -n "${suites//,/}" ] || { echo "race-repeat.sh: --suites names none" >&2; exit 2; }
# A skipped stress case would pass silently.
unset VTEST_SKIP_SLOW

# The summary of the logs in $1: one line per fact, then the verdict.
summarize() {
    local dir="$1"
    if [ -z "$(find "$dir" -maxdepth 1 -name 'run-*.log' 2>/dev/null)" ]; then
        echo "race-repeat: no run logs in $dir"
        return 0
    fi
    awk '
    function num(s) { gsub(/[^0-9.]/, "", s); return s + 0 }
    function minmax(key, v) {
        if (!(key in lo) || v < lo[key]) lo[key] = v
        if (!(key in hi) || v > hi[key]) hi[key] = v
        sum[key] += v; cnt[key]++
    }
    FNR == 1 { busy = (FILENAME ~ /-busy\.log$/) ? "busy" : "idle" }
    # test_litmus.c: phase 1, the natural control, the reordered control.
    /\| litmus: (DEBUG|non-DEBUG) .*trials in/ {
        match($0, /: [0-9]+ trials in [0-9.]+ s/); split(substr($0, RSTART, RLENGTH), a, " ")
        minmax("C phase 1 seconds, " busy, a[5]); next
    }
    /\| litmus: natural control/ {
        match($0, /\(([0-9.]+)%\)/); minmax("C natural control loss %, " busy, num(substr($0, RSTART, RLENGTH))); next
    }
    /\| litmus: reordered control/ {
        match($0, /: [0-9]+ trials in [0-9.]+ s, [0-9]+ lost/); split(substr($0, RSTART, RLENGTH), a, " ")
        minmax("C reordered control trials, " busy, a[2]); minmax("C reordered control seconds, " busy, a[5])
        if (a[5] > 0) minmax("C reordered control trials per second, " busy, a[2] / a[5])
        match($0, /\(([0-9.]+)%\)/); minmax("C reordered control loss %, " busy, num(substr($0, RSTART, RLENGTH))); next
    }
    /\| [0-9]+ hardware, [0-9]+ kernel operations/ {
        minmax("C A/D stress hardware ops, " busy, $2 + 0)
        minmax("C A/D stress kernel ops, " busy, $4 + 0)
        minmax("C A/D stress A or D events, " busy, $7 + 0)
        minmax("C A/D stress mixed access events, " busy, $12 + 0)
        match($0, /in [0-9.]+ s/); minmax("C A/D stress seconds, " busy, num(substr($0, RSTART + 3, RLENGTH - 3))); next
    }
    /\| [0-9]+ rounds, [0-9]+ lost map races/ { minmax("C map race rounds, " busy, $2 + 0); next }
    # harvest_litmus.rs
    /^harvest_litmus: natural control/ {
        match($0, /\(([0-9.]+)%;/); minmax("harvest natural control loss %, " busy, num(substr($0, RSTART, RLENGTH))); next
    }
    /^harvest_litmus: reordered control/ {
        match($0, /: [0-9]+ trials in [0-9.]+ s, [0-9]+ lost/); split(substr($0, RSTART, RLENGTH), a, " ")
        minmax("harvest reordered control trials, " busy, a[2]); minmax("harvest reordered control seconds, " busy, a[5])
        if (a[5] > 0) minmax("harvest reordered control trials per second, " busy, a[2] / a[5])
        # Each shape has half the trials: its own loss rate, in %.
        if (match($0, /; [0-9]+ the page alone, [0-9]+ 32 pages/)) {
            split(substr($0, RSTART, RLENGTH), b, " ")
            minmax("harvest reordered control loss % per shape, " busy, 100 * b[2] / (a[2] / 2))
            minmax("harvest reordered control loss % per shape, " busy, 100 * b[6] / (a[2] / 2))
        }
        match($0, /\(([0-9.]+)%;/); minmax("harvest reordered control loss %, " busy, num(substr($0, RSTART, RLENGTH))); next
    }
    /^harvest_litmus: .*: [0-9]+ trials in [0-9.]+ s, [0-9]+ lost/ {
        match($0, /: [0-9]+ trials in [0-9.]+ s/); split(substr($0, RSTART, RLENGTH), a, " ")
        minmax("harvest phase 1 seconds, " busy, a[5]); next
    }
    /^[0-9]+ runs \([0-9]+ copies x [0-9]+ parameter sets\)/ {
        match($0, /transcripts, in [0-9.]+ s/); minmax("consumer concurrent runs seconds, " busy, num(substr($0, RSTART + 16, RLENGTH - 16)))
        if (match($0, /slowest run took [0-9.]+ s/)) minmax("consumer slowest run seconds, " busy, num(substr($0, RSTART + 17, RLENGTH - 17)))
        if (match($0, /most CPU time [0-9.]+ s/)) minmax("consumer most CPU seconds in a run, " busy, num(substr($0, RSTART + 14, RLENGTH - 14)))
        next
    }
    /^race-repeat: run [0-9]+ .* seconds$/ { minmax("run seconds, " busy, $(NF - 1) + 0); next }
    END {
        for (k in lo)
            printf "%-46s min %10.4f  mean %10.4f  max %10.4f  (%d)\n", k, lo[k], sum[k] / cnt[k], hi[k], cnt[k]
    }' "$dir"/run-*.log | sort
    local passed failed
    passed=$( (grep -l "^race-repeat: run [0-9]* passed" "$dir"/run-*.log 2>/dev/null || true) | wc -l)
    failed=$( (grep -l "^race-repeat: run [0-9]* FAILED" "$dir"/run-*.log 2>/dev/null || true) | wc -l)
    echo "race-repeat: $passed passed, $failed failed"
}

if [ -n "$summary_only" ]; then
    summarize "$summary_only"
    exit 0
fi

test -n "$caller_gate" || { echo "race-repeat.sh: set ILLUMOS_GATE (e.g. ../shared/illumos-gate)" >&2; exit 2; }
ILLUMOS_GATE="$(cd "$caller_gate" && pwd)"
export ILLUMOS_GATE VMM_GPT_REQUIRE_REFERENCE=1 VMM_GPT_REQUIRE_KERNEL_OBJECT=1 VMM_GPT_REQUIRE_HARVEST=1

echo "race-repeat: building the kernel objects, the staticlibs and the tests"
bash illumos-build/build.sh >/dev/null
bash illumos-build/build.sh --harvest >/dev/null
cargo build -q --release -p vmm-gpt
cargo build -q --release -p vmm-gpt --features harvest-dirty --target-dir target/harvest
export VMM_GPT_KERNEL_OBJECT="$PWD/target/kernel/vmm_gpt.o"
export VMM_GPT_KERNEL_OBJECT_DEBUG="$PWD/target/kernel/vmm_gpt.debug.o"
export VMM_GPT_HARVEST_STATICLIB="$PWD/target/harvest/release/libvmm_gpt.a"
export VMM_GPT_KERNEL_OBJECT_HARVEST="$PWD/target/kernel/vmm_gpt.harvest.o"
export VMM_GPT_KERNEL_OBJECT_HARVEST_DEBUG="$PWD/target/kernel/vmm_gpt.harvest.debug.o"
export VMM_GPT_RELEASE_STATICLIB="$PWD/target/release/libvmm_gpt.a"
c_tests=(--test c_unit --test c_unit_release --test c_unit_kernel_object
    --test c_unit_reference --test c_unit_reference_ndebug)
has() { [[ ",$suites," == *",$1,"* ]]; }
if has c; then cargo test -q -p vmm-gpt-ctest "${c_tests[@]}" --no-run; fi
if has harvest; then cargo test -q -p vmm-gpt-difftest --test harvest_litmus --no-run; fi
if has consumer; then cargo test -q -p vmm-gpt-consumer --test concurrent --no-run; fi

rm -rf "$out"
mkdir -p "$out"
busy_pids=()
stop_busy() {
    [ ${#busy_pids[@]} -gt 0 ] && kill "${busy_pids[@]}" 2>/dev/null || true
    busy_pids=()
}
trap stop_busy EXIT
trap 'stop_busy; exit 130' INT
trap 'stop_busy; exit 143' TERM
start_busy() {
    for ((p = 0; p < busy_procs; p++)); do
        (while :; do :; done) &
        busy_pids+=($!)
    done
}

# One run of the set; its output goes to $1; fails when any test fails.
run_set() {
    if has c; then
        VTEST_VERBOSE=1 VMM_GPT_VALGRIND=0 VTEST_STRESS_MS="$stress_ms" \
            cargo test -q -p vmm-gpt-ctest "${c_tests[@]}" -- litmus stress >>"$1" 2>&1 || return 1
    fi
    if has harvest; then
        cargo test -q -p vmm-gpt-difftest --test harvest_litmus >>"$1" 2>&1 || return 1
    fi
    if has consumer; then
        VMM_GPT_CONSUMER_THREAD_SEEDS="$consumer_seeds" \
            VMM_GPT_CONSUMER_SEED=$(((i - 1) * consumer_seeds + 1)) \
            cargo test -q -p vmm-gpt-consumer --test concurrent >>"$1" 2>&1 || return 1
    fi
}

if [ -n "$busy_first" ]; then
    echo "race-repeat: $runs runs of $suites, $busy_procs busy processes for runs 1 to $((runs / 2)), logs in $out"
else
    echo "race-repeat: $runs runs of $suites, $busy_procs busy processes from run $busy_from, logs in $out"
fi
for ((i = 1; i <= runs; i++)); do
    if [ -n "$busy_first" ]; then
        [ "$i" -eq 1 ] && start_busy
        [ "$i" -eq $((runs / 2 + 1)) ] && stop_busy
        kind=idle
        [ "$i" -le $((runs / 2)) ] && kind=busy
    else
        [ "$i" -eq "$busy_from" ] && start_busy
        kind=idle
        [ "$i" -ge "$busy_from" ] && kind=busy
    fi
    log="$out/run-$(printf %03d "$i")-$kind.log"
    start=$(date +%s.%N)
    if run_set "$log"; then
        verdict=passed
    else
        verdict=FAILED
    fi
    secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    echo "race-repeat: run $i $verdict ($kind, load $(cut -d' ' -f1 /proc/loadavg)) in $secs seconds" | tee -a "$log"
    if [ "$verdict" = FAILED ]; then
        echo "race-repeat: run $i failed: see $log" >&2
        stop_busy
        summarize "$out" | tee "$out/summary.txt"
        exit 1
    fi
done
stop_busy
summarize "$out" | tee "$out/summary.txt"
