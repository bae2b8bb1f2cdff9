#!/usr/bin/env bash
# igmpd against the kernel's own snooping, side by side, in network namespaces of its own
# (never this machine's interfaces). Builds release binaries, runs the `igmpd-bench`
# driver (bench/), prints a summary (min/median/max, targets, pass/fail) and writes
# target/bench/results.json, target/bench/summary.txt and target/bench/convergence.svg.
#
#   scripts/bench.sh            3 runs, N = 1000/4000/10000, 10 s per sustained rate
#   scripts/bench.sh --quick    1 run, small sizes, short windows (< 2 minutes)
#   extra arguments go to the driver (--runs N, --sustain-secs S, --sizes N,N, --flood-secs S,
#   --only convergence|sustained|flood|status|restart|ports); IGMPD_BENCH_TRACE=1 prints when each tenth of the groups
#   reached the MDB
#
# Run as root. Cleans up its namespaces and processes also on failure or Ctrl-C.
#
# Environment: IGMPD_BENCH_IGMPD and IGMPD_BENCH_DRIVER use prebuilt binaries instead of
# building (the e2e_bench test does, with debug builds); IGMPD_BENCH_OUT changes the output
# directory.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "bench.sh: run as root (network namespaces, AF_PACKET)" >&2
    exit 1
fi

out=${IGMPD_BENCH_OUT:-$PWD/target/bench}
mkdir -p "$out"

igmpd=${IGMPD_BENCH_IGMPD:-}
driver=${IGMPD_BENCH_DRIVER:-}
if [ -z "$igmpd" ] || [ -z "$driver" ]; then
    echo "bench.sh: building release binaries (scripts/build-release.sh)" >&2
    rel=$(scripts/build-release.sh -p igmpd -p igmpd-bench --bin igmpd --bin igmpd-bench)
    igmpd=$rel/igmpd
    driver=$rel/igmpd-bench
fi

driver_pid=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$driver_pid" ] && kill -0 "$driver_pid" 2>/dev/null; then
        kill -TERM "$driver_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$driver_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$driver_pid" 2>/dev/null || true
    fi
    if [ -n "$driver_pid" ]; then
        # The lab names its namespaces igt<pid>-<n>; its helpers die with the driver
        # (parent-death signal). Kill what is left inside them by PID, then delete them.
        for ns in $(ip netns list | awk '{print $1}' | grep -E "^igt${driver_pid}-" || true); do
            for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || true
        done
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$driver" --igmpd "$igmpd" --out "$out" "$@" &
driver_pid=$!
wait "$driver_pid"
