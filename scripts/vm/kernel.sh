#!/usr/bin/env bash
# Fetches one Debian kernel for the VM matrix into a cache under target/vm/, never into the
# system: the versioned image package that `linux-image-amd64` depends on in the suite is
# resolved at run time, `apt-get download`ed and unpacked with `dpkg-deb -x`, then
# `depmod -b` builds its module index. Installing it would pull udev and initramfs-tools
# and upgrade systemd, so nothing here ever calls apt-get install or dpkg -i.
#
#   scripts/vm/kernel.sh 6.1     Debian 12's own kernel (bookworm, with its security updates)
#   scripts/vm/kernel.sh 6.12    bookworm-backports
#
# Prints one line: "<unpacked root> <kernel release>", e.g.
#   target/vm/kernels/linux-image-6.12.95+deb12-amd64_6.12.95-1~bpo12+1 6.12.95+deb12-amd64
# Reuses what is cached; when apt cannot resolve or download (offline), falls back to the
# newest kernel cached for that label and says so on stderr.
set -euo pipefail
cd "$(dirname "$0")/../.."

CACHE=${VM_CACHE:-$PWD/target/vm}
log() { printf 'vm-kernel: %s\n' "$*" >&2; }

label=${1:?usage: kernel.sh 6.1|6.12}
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$codename" ] || { log "cannot tell the Debian codename"; exit 1; }
case "$label" in
    6.1) apt_opts=() ;;                                   # the default candidate: bookworm + -security
    6.12) apt_opts=(-t "${codename}-backports") ;;
    *) log "unknown kernel label $label (want 6.1 or 6.12)"; exit 2 ;;
esac

mkdir -p "$CACHE/debs" "$CACHE/kernels"

# The newest unpacked kernel recorded for this label, as "<dir> <release>".
cached() {
    local link="$CACHE/kernels/$label"
    [ -L "$link" ] && [ -f "$link/.release" ] || return 1
    printf '%s %s\n' "$(readlink -f "$link")" "$(cat "$link/.release")"
}

fallback() {
    log "$*"
    if cached; then
        log "using the cached kernel for $label"
        exit 0
    fi
    exit 1
}

# linux-image-amd64 -> linux-image-6.12.95+deb12-amd64 (the first linux-image-* it depends on)
pkg=$(apt-cache "${apt_opts[@]}" depends linux-image-amd64 2>/dev/null \
    | sed -n 's/^ *|\{0,1\}Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1)
[ -n "$pkg" ] || fallback "apt-cache knows no linux-image-amd64 for $label (apt-get update?)"
version=$(apt-cache "${apt_opts[@]}" policy "$pkg" | sed -n 's/^ *Candidate: //p')
[ -n "$version" ] && [ "$version" != "(none)" ] || fallback "no candidate version of $pkg"
case "$version" in
    "$label".*) ;;
    *) log "note: the $label suite now carries $pkg $version" ;;
esac

name="${pkg}_${version}"
dir="$CACHE/kernels/$name"
if [ ! -f "$dir/.release" ]; then
    # apt-get download names the file <package>_<version, ':' as %3a>_<arch>.deb
    deb="$CACHE/debs/${pkg}_${version//:/%3a}_amd64.deb"
    if [ ! -f "$deb" ]; then
        log "apt-get download $pkg=$version"
        tmp=$(mktemp -d "$CACHE/debs/.dl.XXXXXX")
        # apt drops to _apt for downloads: let it write here (else it warns and runs as root).
        chown _apt "$tmp" 2>/dev/null || true
        if ! (cd "$tmp" && apt-get download -qq "${apt_opts[@]}" "$pkg=$version" >/dev/null); then
            rm -rf "$tmp"
            fallback "apt-get download $pkg=$version failed"
        fi
        mv "$tmp/$(basename "$deb")" "$deb"
        rm -rf "$tmp"
    fi
    log "unpacking $(basename "$deb")"
    rm -rf "$dir.new"
    dpkg-deb -x "$deb" "$dir.new"
    release=$(cd "$dir.new/lib/modules" && ls | head -n1)
    [ -f "$dir.new/boot/vmlinuz-$release" ] || { log "no vmlinuz-$release in $deb"; exit 1; }
    log "depmod -b $dir.new $release"
    depmod -b "$dir.new" "$release"
    echo "$release" > "$dir.new/.release"
    rm -rf "$dir"
    mv "$dir.new" "$dir"
fi

# Point the label at this kernel and drop the kernels (and packages) it replaces.
old=$(readlink "$CACHE/kernels/$label" 2>/dev/null || true)
ln -sfn "$name" "$CACHE/kernels/$label"
if [ -n "$old" ] && [ "$old" != "$name" ]; then
    log "dropping the replaced $old"
    rm -rf "${CACHE:?}/kernels/$old" "$CACHE/debs/${old%%_*}_"*.deb
fi
cached
