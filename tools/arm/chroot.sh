#!/bin/sh
# Run a command inside an arm64 root as on a booted board: /proc, /sys, /dev, a fresh /dev/shm
# (the worker's slots) and /tmp are mounted in a mount namespace of the command's own, so
# nothing stays mounted when it ends, however it ends. aarch64 programs run through qemu-user
# (binfmt_misc; tools/arm/rootfs.sh sets it up). ONNX Runtime aborts at import without /sys.
#
#   tools/arm/chroot.sh ROOT COMMAND [ARGS...]
set -eu
root=$(cd "${1:?usage: chroot.sh ROOT COMMAND [ARGS...]}" && pwd)
shift
exec unshare --mount --propagation private --fork sh -eu -c '
    root=$1; shift
    mount -t proc proc "$root/proc"
    mount -t sysfs sysfs "$root/sys"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs -o size=512m tmpfs "$root/dev/shm"
    mount -t tmpfs -o size=512m tmpfs "$root/tmp"
    exec chroot "$root" "$@"
' sh "$root" "$@"
