#!/usr/bin/env bash
# Every test igmpd has: formatting, clippy, unit, property, golden-capture, tshark and
# network-namespace end-to-end tests, the Debian package (built, lintian, installed into a
# throw-away dpkg root), plus a short fuzz smoke run. Installs what is missing
# first (scripts/install-deps.sh, idempotent). Run as root: the end-to-end tests create
# network namespaces (never touching this machine's own interfaces).
#
#   scripts/test.sh            everything
#   FUZZ_SECONDS=0 scripts/test.sh   skip the fuzz smoke run
#   VM_KERNELS=6.12 scripts/test.sh  the kernel matrix on one kernel (all: 6.1 and 6.12,
#                                    the default; none: skip it)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: run as root (network namespaces, nftables, AF_PACKET)" >&2
    exit 1
fi

started=$(date +%s)
section() { printf '\n=== %s (%ds)\n' "$*" "$(( $(date +%s) - started ))"; }

# Snapshot before the tests. The leftover check at the end fails on namespaces named like
# the tests' (igt<pid>-<n>), on any other namespace new since this snapshot, and on new
# processes of the programs the tests run in their namespaces (each is stopped by PID when
# its test ends).
stray_names='igmpd mcast-member tcpdump zebra pimd'
netns_list() { ip netns list | awk '{print $1}' | sort; }
stray_pids() { for n in $stray_names; do pgrep -x "$n" || true; done | sort; }
netns_before=$(netns_list)
pids_before=$(stray_pids)

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

# The one release build of this script (nothing else here makes one): scripts/package.sh
# builds it with scripts/build-release.sh. Built twice: the second must give the same
# bytes (SOURCE_DATE_EPOCH); tests/package.rs skipped itself above, without IGMPD_PACKAGE.
section "Debian package: scripts/package.sh (twice, same bytes), tests/package.rs"
deb=$(scripts/package.sh)
first=$(sha256sum < "$deb")
scripts/package.sh >/dev/null
if [ "$(sha256sum < "$deb")" != "$first" ]; then
    echo "test.sh: scripts/package.sh built different bytes from the same tree" >&2
    exit 1
fi
IGMPD_PACKAGE=$deb cargo test --locked --test package

section "fuzz smoke run"
fuzz_secs=${FUZZ_SECONDS:-5}
if [ "$fuzz_secs" -gt 0 ]; then
    scripts/fuzz.sh "$fuzz_secs"
fi

# The end-to-end and kernel tests again, in QEMU guests booting Debian's own kernels:
# users run those, not this machine's.
vm_kernels=${VM_KERNELS:-all}
if [ "$vm_kernels" != none ]; then
    section "kernel matrix: scripts/vm-test.sh --kernel $vm_kernels"
    scripts/vm-test.sh --kernel "$vm_kernels"
fi

section "leftovers"
failed=0
left=$(ip netns list | awk '{print $1}' | grep -E '^igt[0-9]+-' || true)
if [ -n "$left" ]; then
    echo "test.sh: tests left network namespaces behind: $left" >&2
    failed=1
fi
new_netns=$(comm -13 <(printf '%s\n' "$netns_before") <(netns_list) | grep . || true)
if [ -n "$new_netns" ]; then
    echo "test.sh: network namespaces that were not there before the tests: $new_netns" >&2
    failed=1
fi
new_pids=$(comm -13 <(printf '%s\n' "$pids_before") <(stray_pids) | grep . || true)
if [ -n "$new_pids" ]; then
    echo "test.sh: tests left processes behind:" >&2
    ps -o pid=,args= -p "$(paste -sd, <<<"$new_pids")" >&2 || true
    failed=1
fi
if [ "$failed" -ne 0 ]; then
    exit 1
fi

section "all tests passed"
