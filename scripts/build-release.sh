#!/bin/sh
# Builds release binaries the way igmpd ships and prints the directory they are in.
#   scripts/build-release.sh [cargo build arguments]     e.g. -p igmpd --bin igmpd
#
# Static-pie (glibc linked in, `crt-static`): a daemon that maps libc.so and ld.so carries
# ~1.4 MiB of their pages in its RSS (the kernel maps the cached pages around every page it
# touches), which alone is a third of the 4 MiB `igmpd query` aims for. The explicit
# --target keeps the flag off build scripts and proc macros, which cannot be static.
set -eu
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --quiet --target "$host" "$@" >&2
echo "${CARGO_TARGET_DIR:-$PWD/target}/$host/release"
