#!/usr/bin/env bash
# Every test igmpd has: formatting, clippy, unit, property, golden-capture, tshark and
# network-namespace end-to-end tests, plus a short fuzz smoke run. Installs what is missing
# first (scripts/install-deps.sh, idempotent). Run as root: the end-to-end tests create
# network namespaces (never touching this machine's own interfaces).
#
#   scripts/test.sh            everything
#   FUZZ_SECONDS=0 scripts/test.sh   skip the fuzz smoke run
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: run as root (network namespaces, nftables, AF_PACKET)" >&2
    exit 1
fi

started=$(date +%s)
section() { printf '\n=== %s (%ds)\n' "$*" "$(( $(date +%s) - started ))"; }

section "install missing tools"
scripts/install-deps.sh

section "cargo fmt --check"
cargo fmt --all -- --check

section "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

section "build (tests of other packages use the mcast-member helper binary)"
cargo build --workspace --all-targets --locked
export IGMPD_MCAST_MEMBER=$PWD/target/debug/mcast-member

section "cargo test"
cargo test --workspace --locked

section "fuzz smoke run"
fuzz_secs=${FUZZ_SECONDS:-5}
if [ "$fuzz_secs" -gt 0 ]; then
    scripts/fuzz.sh "$fuzz_secs"
fi

section "leftovers"
left=$(ip netns list | awk '{print $1}' | grep -E '^igt[0-9]+-' || true)
if [ -n "$left" ]; then
    echo "test.sh: tests left network namespaces behind: $left" >&2
    exit 1
fi
if pgrep -x igmpd >/dev/null || pgrep -x mcast-member >/dev/null; then
    echo "test.sh: tests left processes behind:" >&2
    pgrep -a -x igmpd >&2 || true
    pgrep -a -x mcast-member >&2 || true
    exit 1
fi

section "all tests passed"
