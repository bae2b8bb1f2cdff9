#!/usr/bin/env bash
# Installs what igmpd's tests, demo and fuzzing need on a Debian 12 machine, idempotently.
# Safe to run again: each step checks first and does nothing when its tool is already there.
#
#   tshark, tcpdump    second decoder and captures in tests
#   iputils-ping       ping -6 across the bridge (neighbour discovery, tests/e2e_flood.rs)
#   nftables           host firewalls in the netns tests, snooping's report-drop table
#   iproute2 >= 6.15   Debian 12's 6.1 ignores `bridge mdb ... proto`; taken from
#                      bookworm-backports, enabled by copying the system's own Debian apt
#                      source entry with the suite changed (no registry host is written here)
#   cargo-fuzz         fuzz targets (scripts/fuzz.sh)
#   frr                interop peer (zebra + pimd, run by the tests inside namespaces only);
#                      installed with its service kept from starting, and disabled
#   pimd (troglobit)   interop peer; conflicts with frr in apt, so it is only downloaded
#                      and unpacked (dpkg -x) into $PIMD_CACHE, never installed
#   qemu-system-x86    the VM kernel matrix (scripts/vm-test.sh); from bookworm-backports,
#                      since bookworm's 7.2 conflicts with the installed (backports) qemu-utils
#   busybox-static     the guests' initramfs (scripts/vm/mkinitramfs.sh)
#   kmod               depmod/modprobe for the unpacked guest kernels' modules (the guest
#                      kernels themselves are only downloaded and unpacked, never installed)
#   prometheus         the metrics test scrapes igmpd with a real Prometheus (and checks the
#                      output with its promtool), started inside a test namespace only;
#                      installed like frr, its service kept from starting and disabled
#   jq, file, xz-utils vm-test.sh picks the test binaries from cargo's JSON; mkinitramfs.sh
#                      checks busybox is static and unpacks the 6.12 modules (.ko.xz)
#   lintian, binutils  scripts/package.sh (strip; jq and file too) and tests/package.rs,
#                      which runs lintian on the .deb and `systemctl --root` (systemd) in
#                      its throw-away dpkg root
set -euo pipefail

PIMD_CACHE=/var/cache/igmpd-test/pimd

log() { printf 'install-deps: %s\n' "$*" >&2; }

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        log "must run as root (apt-get, network namespaces)"
        exit 1
    fi
}

apt_updated=0
apt_update_once() {
    if [ "$apt_updated" -eq 0 ]; then
        log "apt-get update"
        apt-get update -qq >/dev/null
        apt_updated=1
    fi
}

apt_install() {
    apt_update_once
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

iproute2_version() {
    # "ip utility, iproute2-6.1.0, libbpf 1.1.2" -> 6.1.0 ; "iproute2-6.15.0" -> 6.15.0
    ip -V 2>/dev/null | sed -n 's/.*iproute2-\([0-9][0-9.]*\).*/\1/p' | head -n1
}

iproute2_is_modern() {
    local v major minor
    v=$(iproute2_version)
    [ -n "$v" ] || return 1
    major=${v%%.*}
    minor=${v#*.}
    minor=${minor%%.*}
    [ "$major" -gt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -ge 15 ]; }
}

# Enable bookworm-backports by copying the system's own Debian source entry (deb822 or
# one-line format) with the suite changed. Never names a host of its own.
enable_backports() {
    local codename
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ -n "$codename" ] || { log "cannot tell the Debian codename"; return 1; }
    if grep -rqs "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null; then
        return 0
    fi
    local src=/etc/apt/sources.list.d/debian.sources
    if [ -f "$src" ]; then
        # First deb822 stanza whose Suites list the plain codename: keep its URIs and keyring.
        awk -v cn="$codename" '
            BEGIN { RS=""; FS="\n" }
            {
                found = 0
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^Suites:/) {
                        n = split($i, w, /[ \t]+/)
                        for (j = 2; j <= n; j++) if (w[j] == cn) found = 1
                    }
                }
                if (found && !done) {
                    for (i = 1; i <= NF; i++) {
                        if ($i ~ /^#/) continue
                        if ($i ~ /^Suites:/) print "Suites: " cn "-backports"
                        else print $i
                    }
                    done = 1
                }
            }' "$src" > /etc/apt/sources.list.d/igmpd-backports.sources
        if [ -s /etc/apt/sources.list.d/igmpd-backports.sources ]; then
            apt_updated=0
            return 0
        fi
        rm -f /etc/apt/sources.list.d/igmpd-backports.sources
    fi
    if [ -f /etc/apt/sources.list ]; then
        local line
        line=$(grep -E "^deb[[:space:]].*[[:space:]]${codename}[[:space:]]" /etc/apt/sources.list | head -n1 || true)
        if [ -n "$line" ]; then
            echo "$line" | sed "s/[[:space:]]${codename}[[:space:]]/ ${codename}-backports /" \
                > /etc/apt/sources.list.d/igmpd-backports.list
            apt_updated=0
            return 0
        fi
    fi
    log "found no Debian apt source entry to copy for ${codename}-backports"
    return 1
}

# Installs package $1 without letting its maintainer scripts start its service $2 in the
# root namespace: a policy-rc.d that denies every start is in place during the install (any
# existing one is put back afterwards), and the service is disabled for later boots.
install_stopped() {
    local pkg=$1 service=$2
    local policy=/usr/sbin/policy-rc.d backup=""
    if [ -e "$policy" ]; then
        backup=$(mktemp /usr/sbin/policy-rc.d.igmpd.XXXXXX)
        cp -p "$policy" "$backup"
    fi
    # Put the old policy back (or remove ours) however this ends.
    if [ -n "$backup" ]; then
        trap "mv -f '$backup' '$policy'" EXIT
    else
        trap "rm -f '$policy'" EXIT
    fi
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    apt_install "$pkg"
    if [ -n "$backup" ]; then
        mv -f "$backup" "$policy"
    else
        rm -f "$policy"
    fi
    trap - EXIT
    if [ -d /run/systemd/system ]; then
        systemctl disable --now --quiet "$service.service" 2>/dev/null || true
    else
        update-rc.d "$service" disable >/dev/null 2>&1 || true
    fi
}

# The root namespace must not run FRR daemons (the tests start their own in namespaces).
frr_running_in_root() {
    local f
    for f in /run/frr/*.pid; do
        [ -e "$f" ] || continue
        if kill -0 "$(cat "$f")" 2>/dev/null; then
            return 0
        fi
    done
    return 1
}

# troglobit pimd, unpacked only: its package conflicts with frr.
fetch_pimd() {
    [ -x "$PIMD_CACHE/usr/sbin/pimd" ] && return 0
    apt_update_once
    log "apt-get download pimd -> $PIMD_CACHE"
    local tmp
    tmp=$(mktemp -d)
    # apt drops to _apt for downloads: let it write here (else it warns and runs as root).
    chown _apt "$tmp" 2>/dev/null || true
    (cd "$tmp" && apt-get download -qq pimd >/dev/null)
    mkdir -p "$(dirname "$PIMD_CACHE")"
    rm -rf "$PIMD_CACHE.new"
    dpkg -x "$tmp"/pimd_*.deb "$PIMD_CACHE.new"
    rm -rf "$tmp" "$PIMD_CACHE"
    mv "$PIMD_CACHE.new" "$PIMD_CACHE"
    "$PIMD_CACHE/usr/sbin/pimd" -v >/dev/null
}

pkg_installed() {
    [ "$(dpkg-query -W -f '${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# What scripts/vm-test.sh needs on the host. No kernel is installed here: vm-test.sh
# downloads and unpacks the guests' kernels into target/vm/.
install_vm_host() {
    local pkgs=()
    pkg_installed busybox-static || pkgs+=(busybox-static)
    { command -v depmod >/dev/null || [ -x /usr/sbin/depmod ] || [ -x /sbin/depmod ]; } || pkgs+=(kmod)
    command -v jq >/dev/null || pkgs+=(jq)
    command -v file >/dev/null || pkgs+=(file)
    command -v xz >/dev/null || pkgs+=(xz-utils)
    if [ "${#pkgs[@]}" -gt 0 ]; then
        apt_install "${pkgs[@]}"
    fi
    if ! command -v qemu-system-x86_64 >/dev/null; then
        local codename
        codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
        enable_backports || { log "qemu-system-x86 needs ${codename}-backports"; exit 1; }
        apt_update_once
        log "apt-get install -t ${codename}-backports qemu-system-x86"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            -t "${codename}-backports" qemu-system-x86 >/dev/null
    fi
}

# What scripts/package.sh and tests/package.rs need (dpkg-deb and dpkg are Debian's own).
install_package_tools() {
    local pkgs=()
    command -v lintian >/dev/null || pkgs+=(lintian)
    command -v strip >/dev/null || pkgs+=(binutils)
    command -v jq >/dev/null || pkgs+=(jq)
    command -v file >/dev/null || pkgs+=(file)
    command -v systemctl >/dev/null || pkgs+=(systemd)
    if [ "${#pkgs[@]}" -gt 0 ]; then
        apt_install "${pkgs[@]}"
    fi
}

main() {
    need_root
    local pkgs=()
    command -v tshark >/dev/null || pkgs+=(tshark)
    command -v tcpdump >/dev/null || pkgs+=(tcpdump)
    command -v nft >/dev/null || pkgs+=(nftables)
    command -v strace >/dev/null || pkgs+=(strace)
    command -v ping >/dev/null || pkgs+=(iputils-ping)
    if [ "${#pkgs[@]}" -gt 0 ]; then
        # tshark asks whether non-root users may capture; answer no without a prompt.
        echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
        apt_install "${pkgs[@]}"
    fi
    if ! iproute2_is_modern; then
        local codename
        codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
        if enable_backports; then
            apt_update_once
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                -t "${codename}-backports" iproute2 >/dev/null
        fi
        iproute2_is_modern || { log "iproute2 is $(iproute2_version), need >= 6.15"; exit 1; }
    fi
    if [ ! -x /usr/lib/frr/pimd ] || ! command -v vtysh >/dev/null; then
        install_stopped frr frr
    fi
    if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
        install_stopped prometheus prometheus
    fi
    if frr_running_in_root; then
        log "FRR is running in the root namespace; stopping its service"
        if [ -d /run/systemd/system ]; then
            systemctl disable --now --quiet frr.service || true
        else
            /etc/init.d/frr stop >/dev/null 2>&1 || true
        fi
    fi
    fetch_pimd
    install_vm_host
    install_package_tools
    if ! cargo fuzz --version >/dev/null 2>&1; then
        log "cargo install cargo-fuzz"
        cargo install --locked --quiet cargo-fuzz
    fi
    log "ok: tshark $(tshark -v 2>/dev/null | head -n1 | awk '{print $3}'), iproute2 $(iproute2_version), frr $(dpkg-query -W -f '${Version}' frr), $("$PIMD_CACHE/usr/sbin/pimd" -v), $(prometheus --version 2>&1 | head -n1), $(cargo fuzz --version), $(qemu-system-x86_64 --version | head -n1), $(lintian --version)"
}

main "$@"
