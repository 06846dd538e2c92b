#!/bin/sh
# The emulated board's root file system: Debian bookworm for arm64 (minbase) with what the
# image provides natively (board/qemu-aarch64/image-requirements.txt: numpy, OpenCV, ONNX
# Runtime) and the test tools (test-requirements.txt, under /opt/edgeapp-test/lib), built once
# into OUT and kept: a second run with the same inputs does nothing. Programs in it run with a
# plain `chroot OUT ...` through qemu-user-static and binfmt_misc.
#
#   tools/arm/rootfs.sh OUT HOST_PYTHON
#
# HOST_PYTHON is a Python with pip (the project's venv): it unpacks the aarch64 wheels into the
# root, so pip never runs under emulation. Needs root, mmdebstrap, qemu-user-static and
# binfmt-support (`make test-arm` installs them), and Debian's mirror. About 3-5 minutes, 510 MB.
set -eu
out=${1:?usage: rootfs.sh OUT HOST_PYTHON}
host_python=${2:?usage: rootfs.sh OUT HOST_PYTHON}
here=$(cd "$(dirname "$0")/../.." && pwd)
board=$here/board/qemu-aarch64
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# python3 is the image's interpreter; libpython3.11-dev gives the headers and libpython that
# Paddle Lite's Python module is cross-built against (tools/arm/paddle_lite.sh); libgomp1 is
# Paddle Lite's OpenMP runtime; procps gives ps and pgrep to the tests and edgeapp-diag.
packages=python3,libpython3.11-dev,libgomp1,procps

inputs=$(cat "$0" "$board/image-requirements.txt" "$board/test-requirements.txt" | sha256sum | cut -d' ' -f1)
stamp=$out/.edgeapp-rootfs
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ]; then
    echo "arm64 root $out is up to date"
    exit 0
fi
[ "$(id -u)" = 0 ] || { echo "rootfs.sh: building the arm64 root needs root (mmdebstrap, chroot)" >&2; exit 1; }

# binfmt_misc lets the kernel hand aarch64 programs to qemu-aarch64-static (its Debian
# registration has the F flag: the emulator need not be inside the root).
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64

# Built aside and renamed: an interrupted build never leaves a root that looks finished.
tmp=$out.new
rm -rf "$tmp"
mkdir -p "$(dirname "$out")"
start=$(date +%s)
mmdebstrap --arch=arm64 --variant=minbase --include=$packages --quiet "$suite" "$tmp" \
    "deb $mirror $suite main" "deb $mirror $suite-updates main"

# The wheels, for CPython 3.11 on aarch64; pip's --target writes plain site-packages folders.
wheels() {
    "$host_python" -m pip install --quiet --no-deps --require-hashes --only-binary :all: --no-compile \
        --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64 \
        --platform manylinux_2_27_aarch64 --platform manylinux_2_28_aarch64 \
        --python-version 3.11 --implementation cp --target "$2" -r "$1"
    rm -rf "$2/bin"
}
wheels "$board/image-requirements.txt" "$tmp/usr/local/lib/python3.11/dist-packages"
wheels "$board/test-requirements.txt" "$tmp/opt/edgeapp-test/lib"

# Proof that the runtime imports under emulation before the root is called built.
"$here/tools/arm/chroot.sh" "$tmp" /usr/bin/python3 -c 'import numpy, cv2, onnxruntime, platform; print("arm64 root:", platform.machine(), "python", platform.python_version(), "numpy", numpy.__version__, "opencv", cv2.__version__, "onnxruntime", onnxruntime.__version__)'
echo "$inputs" > "$tmp/.edgeapp-rootfs"
rm -rf "$out"
mv "$tmp" "$out"
echo "built the arm64 root $out in $(( $(date +%s) - start )) s ($(du -sm "$out" | cut -f1) MB)"
