#!/bin/sh
# The emulated board's kernel and initrd: Debian bookworm's arm64 kernel (linux-image-arm64) and
# an initrd made by initramfs-tools, built once into OUT (OUT/vmlinuz, OUT/initrd.img,
# OUT/version) and kept: a second run with the same inputs does nothing. `make boot-test` boots
# them in qemu-system-aarch64 with the root file system of tools/arm/bootimage.sh.
#
#   tools/arm/kernel.sh OUT
#
# They come from a root of their own (minbase + the kernel, thrown away at the end), so they do
# not change when the service's root does. The initrd is generated under emulation, the slow part:
# MODULES=list keeps it to the few modules the "virt" machine needs (virtio disk and network,
# ext4) instead of every storage driver, and gzip compresses faster there than the default zstd.
# The same modules are loaded by the initrd at boot: the image needs no udev to find them.
# Needs root, mmdebstrap, qemu-user-static, binfmt-support and Debian's mirror.
set -eu
out=${1:?usage: kernel.sh OUT}
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# virtio over MMIO and PCI (QEMU's virt machine has both), the disk, the network card, ext4 and
# the checksum ext4 asks for by name (crc32c), the entropy source.
modules="virtio_mmio virtio_pci virtio_blk virtio_net virtio_rng ext4 crc32c_generic"

inputs=$(cat "$0" | sha256sum | cut -d' ' -f1)
stamp=$out/.edgeapp-kernel
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ]; then
    echo "kernel and initrd in $out are up to date ($(cat "$out/version"))"
    exit 0
fi
[ "$(id -u)" = 0 ] || { echo "kernel.sh: building the kernel's root needs root (mmdebstrap, chroot)" >&2; exit 1; }
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64

start=$(date +%s)
work=$out.root
rm -rf "$work" "$out.new"
mkdir -p "$out.new"
# initramfs-tools first, then its settings, then the kernel: its postinst makes the one initrd.
mmdebstrap --arch=arm64 --variant=minbase --include=initramfs-tools --quiet \
    --customize-hook='printf "MODULES=list\nCOMPRESS=gzip\n" > "$1/etc/initramfs-tools/conf.d/edgeapp-virt.conf"' \
    --customize-hook="printf '%s\n' $modules >> \"\$1/etc/initramfs-tools/modules\"" \
    --customize-hook='chroot "$1" apt-get install -y -q --no-install-recommends linux-image-arm64' \
    --customize-hook="cp \"\$1\"/boot/vmlinuz-* '$out.new/vmlinuz'" \
    --customize-hook="cp \"\$1\"/boot/initrd.img-* '$out.new/initrd.img'" \
    --customize-hook="ls \"\$1/lib/modules\" > '$out.new/version'" \
    "$suite" "$work" "deb $mirror $suite main" "deb $mirror $suite-updates main"
rm -rf "$work"
echo "$inputs" > "$out.new/.edgeapp-kernel"
rm -rf "$out"
mv "$out.new" "$out"
echo "built the kernel $(cat "$out/version") and its initrd into $out in $(( $(date +%s) - start )) s"
