#!/usr/bin/env bash
# Builds the guests' initramfs: the static busybox, the modules the guest needs before it
# can reach the host's root (virtio-pci, 9pnet_virtio, 9p, overlay and what they depend
# on, decompressed so busybox's insmod takes them) and scripts/vm/init as /init.
#
#   scripts/vm/mkinitramfs.sh KERNEL_ROOT RELEASE OUT.cpio.gz
#
# KERNEL_ROOT is a kernel unpacked by scripts/vm/kernel.sh (its modules indexed by depmod).
set -euo pipefail

root=${1:?usage: mkinitramfs.sh KERNEL_ROOT RELEASE OUT}
release=${2:?}
out=${3:?}
here=$(cd "$(dirname "$0")" && pwd)
busybox=/bin/busybox

log() { printf 'vm-initramfs: %s\n' "$*" >&2; }

file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || {
    log "$busybox is not the static busybox (install busybox-static: scripts/install-deps.sh)"
    exit 1
}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,dev,proc,sys,lib/modules,host,out,ovl,newroot}
cp "$busybox" "$stage/bin/busybox"
for app in $("$busybox" --list); do
    [ "$app" = busybox ] || ln -s busybox "$stage/bin/$app"
done

# Modules in load order, once each; "builtin" lines (virtio_pci on 6.12) need nothing.
: > "$stage/modules"
n=0
for m in virtio_pci 9pnet_virtio 9p overlay; do
    modprobe -d "$root" -S "$release" --show-depends "$m"
done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' | while read -r ko; do
    n=$((n + 1))
    base=$(basename "$ko")
    base=${base%.xz}
    base=${base%.zst}
    dst=$(printf '%02d-%s' "$n" "$base")
    case "$ko" in
        *.xz) xz -dc "$ko" > "$stage/lib/modules/$dst" ;;
        *.zst) zstd -qdc "$ko" > "$stage/lib/modules/$dst" ;;
        *) cp "$ko" "$stage/lib/modules/$dst" ;;
    esac
    echo "$dst" >> "$stage/modules"
done
[ -s "$stage/modules" ] || { log "found no modules for $release under $root"; exit 1; }

install -m 755 "$here/init" "$stage/init"
# The kernel's module autoloader (kernel.modprobe) runs in the initramfs root, where PID 1
# stays: hand the request to the host's modprobe inside the guest's view of the host root,
# where the unpacked modules are bound at /usr/lib/modules/RELEASE.
printf '#!/bin/sh\nexec /bin/chroot /newroot /sbin/modprobe "$@"\n' > "$stage/sbin/vm-modprobe"
chmod 755 "$stage/sbin/vm-modprobe"

mkdir -p "$(dirname "$out")"
(cd "$stage" && find . | LC_ALL=C sort | "$busybox" cpio -o -H newc 2>/dev/null) | gzip -1 > "$out.new"
mv "$out.new" "$out"
