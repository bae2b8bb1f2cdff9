#!/usr/bin/env bash
# igmpd's demo: runs in network namespaces it creates and deletes (also on Ctrl-C or
# failure); never touches this machine's own interfaces. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "demo.sh: run as root (it creates network namespaces)" >&2
    exit 1
fi
deps_log=$(mktemp)
if ! scripts/install-deps.sh >"$deps_log" 2>&1; then
    cat "$deps_log" >&2
    exit 1
fi
rm -f "$deps_log"

echo "building..."
cargo build -q --release -p igmpd -p igmpd-netns-tests --bins --examples
export IGMPD_MCAST_MEMBER=$PWD/target/release/mcast-member
export IGMPD_BIN=$PWD/target/release/igmpd

demo_pid=
cleanup() {
    # The demo removes its namespaces itself; this is for Ctrl-C and crashes. Its helper
    # and igmpd processes die with it (parent-death signal); namespaces named after its PID
    # go here.
    if [ -n "$demo_pid" ]; then
        kill "$demo_pid" 2>/dev/null || true
        wait "$demo_pid" 2>/dev/null || true
        for ns in $(ip netns list | awk '{print $1}' | grep "^igt${demo_pid}-" || true); do
            for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || true
        done
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RUST_BACKTRACE=0 target/release/examples/demo &
demo_pid=$!
wait "$demo_pid"
