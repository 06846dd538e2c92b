#!/bin/sh
# The emulated board's disk image for `make boot-test`: the arm64 root of tools/arm/rootfs.sh
# made bootable with sysvinit (or systemd), plus an install tree of `make install`, as an ext4
# image that qemu-system-aarch64 boots with the kernel and initrd of tools/arm/kernel.sh.
#
#   tools/arm/bootimage.sh OUT ROOTFS TREE [sysv|systemd]
#
# OUT/base-INIT (kept, rebuilt only when ROOTFS or this script change): a copy of ROOTFS with the
# init system, ifupdown, a getty on the serial console (ttyAMA0), the static address QEMU's
# user-mode network expects (10.0.2.15/24, gateway 10.0.2.2), the host name edgeboard-qemu, and
# the image's Python libraries byte-compiled as a vendor image ships them.
# OUT/rootfs-INIT.ext4 (made every run, about 10 s): OUT/base-INIT with TREE copied over it.
#
# FOR TESTS ONLY: root's password in this image is "edgeapp" (the boot test logs in with it on
# the serial console). Never put this image on a device on a network.
# Needs root, qemu-user-static + binfmt_misc (the chroot steps) and e2fsprogs; Debian's mirror
# for the first build.
set -eu
out=${1:?usage: bootimage.sh OUT ROOTFS TREE [sysv|systemd]}
rootfs=${2:?usage: bootimage.sh OUT ROOTFS TREE [sysv|systemd]}
tree=${3:?usage: bootimage.sh OUT ROOTFS TREE [sysv|systemd]}
init=${4:-sysv}
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
password=edgeapp
case $init in
    sysv) packages="sysvinit-core ifupdown" ;;
    # udev: systemd starts the serial getty only once udev has announced the device.
    systemd) packages="systemd-sysv udev ifupdown" ;;
    *) echo "bootimage.sh: init must be sysv or systemd, not '$init'" >&2; exit 2 ;;
esac
[ -f "$rootfs/.edgeapp-rootfs" ] || { echo "bootimage.sh: $rootfs is not a built arm64 root (tools/arm/rootfs.sh)" >&2; exit 2; }
[ -x "$tree/opt/edgeapp/bin/edgeapp" ] || { echo "bootimage.sh: $tree has no install tree (make install DESTDIR=$tree)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "bootimage.sh: needs root (chroot, file ownership in the image)" >&2; exit 1; }
base=$out/base-$init
image=$out/rootfs-$init.ext4

# Commands in a root run with /proc, /sys and /dev mounted for them alone (tools/arm/chroot.sh).
in_root="$(dirname "$0")/chroot.sh"

# Configuration files of the base, written into root $1.
configure() {
    _r=$1
    echo edgeboard-qemu > "$_r/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\tedgeboard-qemu\n' > "$_r/etc/hosts"
    # fsck pass 0: the kernel mounts the root read-write (root=/dev/vda rw).
    printf '/dev/vda\t/\text4\tdefaults\t0\t0\n' > "$_r/etc/fstab"
    # No udev: the kernel's names (eth0) stay; the initrd loads virtio_net.
    cat > "$_r/etc/network/interfaces" <<'EOF'
auto lo
iface lo inet loopback

# QEMU user-mode networking: the guest is 10.0.2.15, the host's side 10.0.2.2.
auto eth0
iface eth0 inet static
    address 10.0.2.15/24
    gateway 10.0.2.2
EOF
    echo "nameserver 10.0.2.3" > "$_r/etc/resolv.conf"
    echo "root:$password" | chroot "$_r" chpasswd
    case $init in
    sysv)
        # A getty on the serial console instead of the virtual terminals (there is no screen).
        sed -i -e 's/^\([1-6]:[0-9]*:respawn:\)/#\1/' "$_r/etc/inittab"
        echo 'T0:2345:respawn:/sbin/getty -L ttyAMA0 115200 vt100' >> "$_r/etc/inittab"
        # S-numbered order, as on PetaLinux: Debian's dependency-based order would leave out
        # scripts that insserv has not registered.
        touch "$_r/etc/init.d/.legacy-bootordering"
        # On the way down PetaLinux (OpenEmbedded's initscripts) runs every K script before
        # sendsigs, umountfs and reboot (its S20, S40, S90); Debian's insserv packed those into
        # K01-K06, ahead of the service's K05edgeapp, which then found it killed. Moved up by ten.
        for _k in "$_r"/etc/rc0.d/K0* "$_r"/etc/rc6.d/K0*; do
            mv "$_k" "${_k%/*}/K1${_k##*/K0}"
        done
        ;;
    systemd)
        # systemd starts serial-getty@ttyAMA0 from the console= argument by itself. The kernel's
        # name eth0 kept (no predictable names), as /etc/network/interfaces says.
        mkdir -p "$_r/etc/systemd/network"
        ln -sf /dev/null "$_r/etc/systemd/network/99-default.link"
        ;;
    esac
}

build_base() {
    start=$(date +%s)
    rm -rf "$base.new"
    cp -a --reflink=auto "$rootfs" "$base.new"
    # Nothing may start services inside the chroot while packages install.
    printf '#!/bin/sh\nexit 101\n' > "$base.new/usr/sbin/policy-rc.d"
    chmod 755 "$base.new/usr/sbin/policy-rc.d"
    cp /etc/resolv.conf "$base.new/etc/resolv.conf"
    printf 'deb %s %s main\ndeb %s %s-updates main\n' "$mirror" "$suite" "$mirror" "$suite" \
        > "$base.new/etc/apt/sources.list"
    sh "$in_root" "$base.new" apt-get update -q
    sh "$in_root" "$base.new" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages
    sh "$in_root" "$base.new" apt-get clean
    rm -rf "$base.new/var/lib/apt/lists/"* "$base.new/usr/sbin/policy-rc.d"
    # The image's own libraries get their .pyc files, as a distribution's packages do (the service
    # itself writes none: PYTHONDONTWRITEBYTECODE). sympy and mpmath are never imported by it.
    sh "$in_root" "$base.new" /usr/bin/python3 -m compileall -q -j 0 -x '/(sympy|mpmath)/' \
        /usr/local/lib/python3.11/dist-packages > /dev/null
    configure "$base.new"
    echo "$key" > "$base.new/.edgeapp-boot-base"
    rm -rf "$base"
    mv "$base.new" "$base"
    echo "built the $init base $base in $(( $(date +%s) - start )) s"
}

key=$( (cat "$0" "$rootfs/.edgeapp-rootfs"; echo "$init") | sha256sum | cut -d' ' -f1)
mkdir -p "$out"
if [ -f "$base/.edgeapp-boot-base" ] && [ "$(cat "$base/.edgeapp-boot-base")" = "$key" ]; then
    echo "the $init base $base is up to date"
else
    build_base
fi

# The image: the base with the install tree over it, never the base itself changed.
start=$(date +%s)
stage=$out/stage-$init
rm -rf "$stage" "$image"
cp -a --reflink=auto "$base" "$stage"
rm -f "$stage/.edgeapp-boot-base"
cp -a "$tree/." "$stage/"
mke2fs -q -t ext4 -L edgeroot -d "$stage" "$image" 4G
rm -rf "$stage"
echo "made $image in $(( $(date +%s) - start )) s"
