#!/usr/bin/env bash
# Builds the Debian package: target/debian/igmpd_VERSION_amd64.deb (VERSION: the root
# package's version in Cargo.toml), and prints its path.
#   scripts/package.sh [BINARY]      (default: the static release build of
#                                     scripts/build-release.sh, built if missing)
#
# Built without debhelper, by hand, the way dh would lay it out for Debian 12:
#   /usr/sbin/igmpd                               stripped as dh_strip strips (no -dbgsym)
#   /lib/systemd/system/igmpd.service             dist/igmpd.service running /usr/sbin/igmpd
#                                                 (bookworm keeps units out of /usr/lib: the
#                                                 usrmerge moratorium; lintian knows)
#   /etc/igmpd/igmpd.toml                         dist/igmpd.toml, a conffile
#   /usr/share/man/man8/igmpd.8.gz                `igmpd generate man`, gzip -9n
#   /usr/share/bash-completion/completions/igmpd  `igmpd generate completions bash`
#   /usr/share/zsh/vendor-completions/_igmpd      ... zsh (Debian's zsh searches here)
#   /usr/share/fish/vendor_completions.d/igmpd.fish ... fish
#   /usr/share/doc/igmpd/{copyright,changelog.gz} dist/debian/copyright; a generated entry
#   /usr/share/lintian/overrides/igmpd            dist/debian/lintian-overrides (why: there)
# DEBIAN/: control, conffiles, md5sums, and dist/debian/{postinst,prerm,postrm} (the unit
# is not enabled or started on install; see postinst).
#
# Reproducible: every mtime is SOURCE_DATE_EPOCH (default: the last commit's time), files
# are root:root (--root-owner-group), gzip -n; the same commit gives the same bytes.
# Maintainer: DEBFULLNAME and DEBEMAIL, as dch takes them, else the project's address.
#
# lintian 2.116 (Debian 12) reports no error and no warning. One override
# (dist/debian/lintian-overrides says why: a static-pie is no shared library); infos left:
# package-supports-alternative-init-but-no-init.d-script (igmpd needs systemd's sd_notify,
# watchdog and RuntimeDirectory) and spelling-error-in-binary "onthe" (two strings the
# compiler laid end to end: "... back on" "the bridge's ...").
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022

log() { printf 'package.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

BIN=${1:-}
if [ -z "$BIN" ]; then
    BIN=$(scripts/build-release.sh -p igmpd --bin igmpd)/igmpd
fi
[ -x "$BIN" ] || die "no executable $BIN"

version=$(cargo metadata --no-deps --format-version 1 --offline |
    jq -r '.packages[] | select(.name == "igmpd") | .version')
[ -n "$version" ] || die "no version for igmpd in cargo metadata"
# A semver pre-release (0.2.0-rc.1) sorts before its release; in Debian "~" does that, and
# a version without a Debian revision must not contain "-". The package is native: it is
# built from igmpd's own tree, with no upstream tarball and no separate Debian revision.
debversion=${version//-/\~}
[ "$("$BIN" --version)" = "igmpd $version" ] ||
    die "$BIN says '$("$BIN" --version)', Cargo.toml says $version (a stale binary?)"

# Depends: none, because there is nothing to depend on: the release build is static-pie
# (glibc linked in; Built-Using names it, as Debian's static packages do). A dynamically
# linked binary would need dpkg-shlibdeps, which this script does not run.
file -b "$BIN" | grep -Eq 'static-pie linked|statically linked' ||
    die "$BIN is not statically linked ($(file -b "$BIN")); use scripts/build-release.sh"
[ "$(dpkg --print-architecture)" = amd64 ] || die "builds amd64 packages only"
[ "$(file -b "$BIN" | grep -c 'x86-64')" = 1 ] || die "$BIN is not an x86-64 binary"
glibc=$(dpkg-query -W -f '${source:Package} (= ${source:Version})' libc6-dev) ||
    die "libc6-dev (the static glibc the binary links) is not installed"

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null) ||
        die "not a git checkout: set SOURCE_DATE_EPOCH"
fi
export SOURCE_DATE_EPOCH
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
maintainer="${DEBFULLNAME:-igmpd maintainers} <${DEBEMAIL:-igmpd@example.invalid}>"

out=${CARGO_TARGET_DIR:-$PWD/target}/debian
name=igmpd_${debversion}_amd64
stage=$out/$name
deb=$out/$name.deb
rm -rf "$stage" "$deb"
mkdir -p "$stage"

install -d "$stage/usr/sbin" "$stage/lib/systemd/system" "$stage/etc/igmpd" \
    "$stage/usr/share/man/man8" "$stage/usr/share/doc/igmpd" \
    "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
    "$stage/usr/share/fish/vendor_completions.d" "$stage/usr/share/lintian/overrides" \
    "$stage/DEBIAN"

install -m 0755 "$BIN" "$stage/usr/sbin/igmpd"
# dh_strip's flags for an executable. The line tables of the release profile stay in the
# build (target/), not in the package.
strip --remove-section=.comment --remove-section=.note "$stage/usr/sbin/igmpd"
sed 's#/usr/local/sbin/igmpd#/usr/sbin/igmpd#g' dist/igmpd.service \
    > "$stage/lib/systemd/system/igmpd.service"
grep -q '^ExecStart=/usr/sbin/igmpd ' "$stage/lib/systemd/system/igmpd.service" ||
    die "dist/igmpd.service does not run /usr/local/sbin/igmpd any more: update package.sh"
install -m 0644 dist/igmpd.toml "$stage/etc/igmpd/igmpd.toml"
# Generated by the binary being packaged, as scripts/install.sh does.
"$BIN" generate man | gzip -9n > "$stage/usr/share/man/man8/igmpd.8.gz"
"$BIN" generate completions bash > "$stage/usr/share/bash-completion/completions/igmpd"
"$BIN" generate completions zsh > "$stage/usr/share/zsh/vendor-completions/_igmpd"
"$BIN" generate completions fish > "$stage/usr/share/fish/vendor_completions.d/igmpd.fish"
# The years of the history: the first commit's to SOURCE_DATE_EPOCH's.
last_year=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y)
first_year=$(git log --max-parents=0 --format=%cd --date=format:%Y HEAD 2>/dev/null | sort | sed -n 1p || true)
years=${first_year:-$last_year}
[ "$years" = "$last_year" ] || years="$years-$last_year"
sed "s/@YEARS@/$years/" dist/debian/copyright > "$stage/usr/share/doc/igmpd/copyright"
install -m 0644 dist/debian/lintian-overrides "$stage/usr/share/lintian/overrides/igmpd"
# A native package's changelog is changelog.gz (lintian: wrong-name-for-changelog-of-
# native-package otherwise).
{
    printf 'igmpd (%s) unstable; urgency=medium\n\n' "$debversion"
    printf '  * Built by scripts/package.sh from igmpd %s (git %s).\n\n' "$version" "$commit"
    printf ' -- %s  %s\n' "$maintainer" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n > "$stage/usr/share/doc/igmpd/changelog.gz"

install -m 0755 dist/debian/postinst dist/debian/prerm dist/debian/postrm "$stage/DEBIAN/"
echo /etc/igmpd/igmpd.toml > "$stage/DEBIAN/conffiles"
# Like dh_md5sums: every file but the conffiles (dpkg keeps their sums itself).
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print | sed 's#^\./##' |
    grep -vxF -f <(sed 's#^/##' DEBIAN/conffiles) | LC_ALL=C sort |
    xargs -d '\n' md5sum) > "$stage/DEBIAN/md5sums"

# Installed-Size as dpkg-gencontrol computes it: the bytes of files and symlinks plus
# 1 KiB for each other object (directories), in KiB rounded up once.
installed_size=$(cd "$stage" && find . -path ./DEBIAN -prune -o -mindepth 1 -printf '%y %s\n' |
    awk '{ n += ($1 == "f" || $1 == "l") ? $2 : 1024 } END { printf "%d", (n + 1023) / 1024 }')

cat > "$stage/DEBIAN/control" <<EOF
Package: igmpd
Version: $debversion
Architecture: amd64
Maintainer: $maintainer
Installed-Size: $installed_size
Suggests: nftables | iptables
Built-Using: $glibc
Section: net
Priority: optional
Description: userspace IGMP/MLD querier and snooping daemon for Linux
 igmpd keeps multicast flowing on LANs without a working querier. It is an
 RFC-correct IGMPv1/2/3 and MLDv1/2 querier (igmpd query), does IGMP/MLD
 snooping for a Linux bridge in userspace and programs the kernel's multicast
 database (igmpd snoop), and finds the host that stopped answering queries
 (igmpd doctor).
 .
 The systemd unit runs igmpd run with /etc/igmpd/igmpd.toml; it is not
 enabled on installation: edit the example configuration first, then run
 systemctl enable --now igmpd.
EOF
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
log "built $deb ($(stat -c %s "$deb") bytes)"
echo "$deb"
