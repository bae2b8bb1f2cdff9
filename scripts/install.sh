#!/bin/sh
# Installs igmpd: binary, systemd unit, man page, shell completions, example config.
#   scripts/install.sh [BINARY]          (default: the static release build of
#                                         scripts/build-release.sh, built if missing)
# DESTDIR (staging root, default empty) and PREFIX (default /usr/local) as usual; the unit
# goes to $DESTDIR/etc/systemd/system (it runs $PREFIX/sbin/igmpd) and the config to
# $DESTDIR/etc/igmpd/igmpd.toml, never overwriting one that exists.
set -eu
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
BIN=${1:-}
if [ -z "$BIN" ]; then
    BIN=$(scripts/build-release.sh -p igmpd --bin igmpd)/igmpd
fi
root="$DESTDIR"
install -d "$root$PREFIX/sbin" "$root$PREFIX/share/man/man8" "$root/etc/systemd/system" \
    "$root/etc/igmpd" "$root$PREFIX/share/doc/igmpd" \
    "$root$PREFIX/share/bash-completion/completions" "$root$PREFIX/share/zsh/site-functions" \
    "$root$PREFIX/share/fish/vendor_completions.d"
install -m 0755 "$BIN" "$root$PREFIX/sbin/igmpd"
# The man page from the binary itself: the same text as dist/igmpd.8 (a test keeps that
# file fresh), and right for the binary being installed.
"$BIN" generate man > "$root$PREFIX/share/man/man8/igmpd.8"
sed "s#/usr/local/sbin/igmpd#$PREFIX/sbin/igmpd#g" dist/igmpd.service > "$root/etc/systemd/system/igmpd.service"
chmod 0644 "$root/etc/systemd/system/igmpd.service"
"$BIN" generate completions bash > "$root$PREFIX/share/bash-completion/completions/igmpd"
"$BIN" generate completions zsh > "$root$PREFIX/share/zsh/site-functions/_igmpd"
"$BIN" generate completions fish > "$root$PREFIX/share/fish/vendor_completions.d/igmpd.fish"
install -m 0644 dist/igmpd.toml "$root$PREFIX/share/doc/igmpd/igmpd.toml"
if [ ! -e "$root/etc/igmpd/igmpd.toml" ]; then
    install -m 0644 dist/igmpd.toml "$root/etc/igmpd/igmpd.toml"
fi
echo "installed igmpd into ${DESTDIR:-/}${PREFIX}"
