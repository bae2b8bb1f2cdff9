#!/usr/bin/env bash
# Boots one Debian kernel under QEMU (TCG, 2 vCPUs, no NIC) with this machine's root
# mounted read-only (guest writes stay in guest memory), runs one command in it as root
# and powers off. The command's output and exit status come back through OUT.
#
#   scripts/vm/run.sh [--timeout SECS] [--out DIR] [--script FILE] 6.1|6.12 [COMMAND...]
#
#   --timeout   bound on the whole guest (default 600); the command gets 30 s less so its
#               output still comes back
#   --out       the results directory (default target/vm/run-LABEL); emptied first. After the
#               run: cmd.log (the command's output), status (its exit code), console.log
#               (the guest's serial console), qemu.log
#   --script    a sh script to run instead of COMMAND (it starts in /, root of the guest)
#
# Exits with the command's status, 124 when the guest timed out, 125 when it never ran it.
# /dev/kvm here is a PVM module that cannot run stock kernels, hence -accel tcg.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

timeout=600
out=""
script=""
mem=${VM_MEM:-2048}
while [ $# -gt 0 ]; do
    case "$1" in
        --timeout) timeout=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --script) script=$2; shift 2 ;;
        --) shift; break ;;
        -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
label=${1:?usage: run.sh [--timeout S] [--out DIR] [--script FILE] 6.1|6.12 [COMMAND...]}
shift
[ -n "$out" ] || out=$repo/target/vm/run-$label
[ "$timeout" -gt 60 ] || { echo "run.sh: --timeout must be over 60 s" >&2; exit 2; }

read -r kroot release < <(scripts/vm/kernel.sh "$label")
[ -n "${release:-}" ] || exit 125
initrd=$repo/target/vm/initramfs-$release.cpio.gz
scripts/vm/mkinitramfs.sh "$kroot" "$release" "$initrd"

mkdir -p "$out"
out=$(cd "$out" && pwd)
find "$out" -mindepth 1 -delete
if [ -n "$script" ]; then
    cp "$script" "$out/cmd.sh"
else
    [ $# -gt 0 ] || { echo "run.sh: no COMMAND and no --script" >&2; exit 2; }
    { printf 'cd %q || exit 125\nexec' "$PWD"; printf ' %q' "$@"; printf '\n'; } > "$out/cmd.sh"
fi
cat > "$out/guest.conf" <<EOF
VM_RELEASE='$release'
VM_MODULES='$kroot/lib/modules/$release'
VM_TIMEOUT='$((timeout - 30))'
EOF

# The whole-guest bound: timeout(1) signals QEMU (our child) at the deadline, kills it 10 s on.
set +e
timeout -k 10 "$timeout" qemu-system-x86_64 \
    -accel tcg -M q35 -cpu max -smp 2 -m "$mem" \
    -nodefaults -no-user-config -nic none -display none -no-reboot \
    -kernel "$kroot/boot/vmlinuz-$release" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 loglevel=4 rdinit=/init" \
    -serial "file:$out/console.log" \
    -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
    -virtfs "local,path=$out,mount_tag=out,security_model=none,multidevs=remap" \
    > "$out/qemu.log" 2>&1
qrc=$?
set -e
if [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
    echo "run.sh: $release: the guest did not finish within ${timeout}s" >&2
    exit 124
fi
status=$(cat "$out/status" 2>/dev/null || true)
case "$status" in
    '' ) echo "run.sh: $release: the guest never ran the command (qemu exit $qrc; see $out/console.log)" >&2; exit 125 ;;
    *[!0-9]*) echo "run.sh: $release: $status (see $out/console.log)" >&2; exit 125 ;;
    *) exit "$status" ;;
esac
