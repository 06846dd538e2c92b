#!/bin/sh
# Paddle Lite's Python module for armv8 (aarch64 Linux), cross-built on an x86_64 host with
# Debian's cross compilers against the Python of an arm64 root, packed as a wheel:
#
#   tools/arm/paddle_lite.sh SRC OUT ROOT
#
#   SRC   the Paddle-Lite source tree with its six submodules (see below)
#   OUT   where the wheel goes: OUT/paddlelite-2.13rc0-cp311-cp311-linux_aarch64.whl
#         (the build itself happens in OUT/work: a copy of SRC and the cmake build folder)
#   ROOT  an arm64 Debian root with python3.11 and libpython3.11-dev (tools/arm/rootfs.sh)
#
# Once: a second run with the same inputs does nothing; an interrupted build resumes where make
# stopped. Needs gcc-aarch64-linux-gnu, g++-aarch64-linux-gnu, cmake (>= 3.10), make, a host
# Python >= 3.11 with pip (PYTHON=..., default python3: Debian bookworm's python3 + python3-pip;
# the build's cmake asks for an interpreter of at least ROOT's version and runs code generators and
# pip with it), network to PyPI once (pybind11, below). make runs under nice with MAKE_JOBS
# (default 2) jobs: about 730 objects (protobuf twice: host protoc and target library, then Lite);
# measured here 54 min of make on 2 cores shared with emulated test runs, over three resumed runs.
#
# The source tree: Paddle Lite v2.13-rc, the release whose opt (the paddlelite 2.13rc0 x86 wheel)
# writes our model.nb files. With internet:
#   git clone --recursive -b v2.13-rc https://github.com/PaddlePaddle/Paddle-Lite
# which gives this commit and these submodule commits (third-party/<name>):
#   Paddle-Lite      102697b54f58bbc775f82945c14cf7f16027ddd4  (tag v2.13-rc)
#   gflags           77592648e3f3be87d6c7123eb81cbad75f9aef5a  github.com/gflags/gflags
#   glog             a6a166db069520dbbd653c97c2e5b12e08a8bb26  github.com/google/glog
#   googletest       ec44c6c1675c25b9827aacd08c02433cccde7780  github.com/google/googletest
#   protobuf-host    9f75c5aa851cd877fb0d93ccc31b8567a6706546  github.com/protocolbuffers/protobuf
#   protobuf-mobile  0bccaabfc6fda5b04d7460110ae075b7eebe9d2a  github.com/tensor-tang/protobuf
#   pybind           59a2ac2745d8a57ac94c6accced73620d59fb844  github.com/pybind/pybind11 (v2.6.0)
# Where SRC and its submodules are git checkouts the commits are checked; a tree without .git
# (an export) is checked for the files the build needs.
#
# Deviation from upstream: pybind11 v2.6.0 does not compile against Python 3.11's headers
# (PyFrameObject became opaque in 3.11: "invalid use of incomplete type 'PyFrameObject'" in
# pybind11/cast.h). The build copy's third-party/pybind is replaced by pybind11 2.10.4's headers
# (the first 2.10 release with the 3.11 fixes settled), taken from PyPI's hash-pinned
# pybind11-2.10.4-py3-none-any.whl: same headers as the v2.10.4 tag, 5b0a6fc2.
#
# Build choices: full publish (tiny publish has no Python API), LITE_BUILD_EXTRA=ON (the OCR and
# detection ops our bundles use), no tests, only the lite_pybind target (lite.so). Upstream's
# lite/tools/build_linux.sh downloads a third-party tarball from a host not reachable from
# everywhere, so cmake and make run here directly; with SRC's submodules in place nothing is
# downloaded. CC and CXX stay unset: the armlinux cmake picks aarch64-linux-gnu-gcc/g++ for the
# target and the host compiler builds the host tools (protoc).
set -eu
usage="usage: paddle_lite.sh SRC OUT ROOT (see the header of $0)"
src=${1:?$usage}
out=${2:?$usage}
root=${3:?$usage}
here=$(cd "$(dirname "$0")/../.." && pwd)
python=${PYTHON:-python3}
jobs=${MAKE_JOBS:-2}

lite_commit=102697b54f58bbc775f82945c14cf7f16027ddd4
submodules="gflags:77592648e3f3be87d6c7123eb81cbad75f9aef5a
glog:a6a166db069520dbbd653c97c2e5b12e08a8bb26
googletest:ec44c6c1675c25b9827aacd08c02433cccde7780
protobuf-host:9f75c5aa851cd877fb0d93ccc31b8567a6706546
protobuf-mobile:0bccaabfc6fda5b04d7460110ae075b7eebe9d2a
pybind:59a2ac2745d8a57ac94c6accced73620d59fb844"
# A file of each submodule the build reads: proof the submodule was checked out, not left empty.
submodule_files="gflags/CMakeLists.txt glog/CMakeLists.txt googletest/CMakeLists.txt
protobuf-host/cmake/CMakeLists.txt protobuf-mobile/cmake/CMakeLists.txt pybind/include/pybind11/pybind11.h"
pybind11_wheel=pybind11-2.10.4-py3-none-any.whl
pybind11_sha256=ec9be0c45061c829648d7e8c98a7d041768b768c934acd15196e0f1943d9a818
py=3.11
wheel_name=paddlelite-2.13rc0-cp311-cp311-linux_aarch64.whl

get_tree="get it with: git clone --recursive -b v2.13-rc https://github.com/PaddlePaddle/Paddle-Lite"
fail() { echo "paddle_lite.sh: $*" >&2; exit 1; }

# The tree must be Paddle Lite v2.13-rc with every submodule checked out.
check_source() {
    [ -f "$src/lite/api/python/pybind/pybind.cc" ] && [ -f "$src/cmake/os/armlinux.cmake" ] ||
        fail "$src is not a Paddle-Lite source tree (no lite/api/python/pybind/pybind.cc); $get_tree"
    for f in $submodule_files; do
        [ -f "$src/third-party/$f" ] ||
            fail "$src/third-party/$f is missing: the submodules are not checked out; $get_tree (or git submodule update --init in it)"
    done
    if git -C "$src" rev-parse --git-dir >/dev/null 2>&1 && [ -e "$src/.git" ]; then
        head=$(git -C "$src" rev-parse HEAD)
        [ "$head" = "$lite_commit" ] || fail "$src is at $head, expected v2.13-rc = $lite_commit"
    fi
    echo "$submodules" | while IFS=: read -r name commit; do
        dir=$src/third-party/$name
        [ -e "$dir/.git" ] || continue
        head=$(git -C "$dir" rev-parse HEAD)
        [ "$head" = "$commit" ] || fail "$dir is at $head, expected $commit"
    done
}

# ROOT's Python: headers, the arch's pyconfig.h and libpython, all for 3.11 on aarch64.
check_root() {
    for f in usr/include/python$py/Python.h usr/include/aarch64-linux-gnu/python$py/pyconfig.h \
             usr/lib/aarch64-linux-gnu/libpython$py.so; do
        [ -e "$root/$f" ] || fail "$root/$f is missing: ROOT must be an arm64 root with libpython$py-dev (tools/arm/rootfs.sh)"
    done
    command -v aarch64-linux-gnu-g++ >/dev/null || fail "no aarch64-linux-gnu-g++: apt-get install g++-aarch64-linux-gnu gcc-aarch64-linux-gnu"
    command -v cmake >/dev/null || fail "no cmake: apt-get install cmake"
    "$python" -c 'import sys, pip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
        fail "PYTHON=$python is not a Python >= 3.11 with pip (Debian: apt-get install python3 python3-pip)"
}

# The build copy: SRC without .git (the build writes generated headers into its source tree),
# pybind11 2.10.4 in place of 2.6.0, and a Python include folder whose pyconfig.h is ROOT's
# aarch64 one (Debian's /usr/include/python3.11/pyconfig.h only forwards to the multiarch one).
prepare() {
    [ -f "$work/.prepared" ] && return 0
    rm -rf "$work/src" "$work/python"
    mkdir -p "$work/src" "$work/python"
    tar -C "$src" --exclude=.git -cf - . | tar -C "$work/src" -xf -
    "$python" -m pip download --quiet --no-deps --only-binary :all: --dest "$work/pybind11" "pybind11==2.10.4"
    echo "$pybind11_sha256  $work/pybind11/$pybind11_wheel" | sha256sum -c --quiet
    rm -rf "$work/src/third-party/pybind"
    mkdir -p "$work/src/third-party/pybind"
    "$python" -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith("pybind11/include/")])' \
        "$work/pybind11/$pybind11_wheel" "$work/pybind11"
    mv "$work/pybind11/pybind11/include" "$work/src/third-party/pybind/include"
    cp -a "$root/usr/include/python$py" "$work/python/include"
    cp "$root/usr/include/aarch64-linux-gnu/python$py/pyconfig.h" "$work/python/include/pyconfig.h"
    cp -L "$root/usr/lib/aarch64-linux-gnu/libpython$py.so" "$work/python/libpython$py.so"
    touch "$work/.prepared"
}

# Second deviation, for time: upstream compiles a do-nothing "faked" kernel class for every kernel
# of the targets this build leaves out (x86, OpenCL, XPU, Metal, NNAdapter: 747 of the ~1,470
# objects, half the build), so that the Python module's Opt (the model converter) can plan for
# those targets too. On the board only the light API runs, and our .nb files hold ARM and host
# kernels only: the build copy's cmake/functions.cmake stops recording them (one line deleted),
# the module's Opt then knows the ARM and host kernels alone. (Also applied to a build configured
# before: make re-runs cmake when functions.cmake changes; the old faked sources are removed.)
skip_faked_kernels() {
    f=$work/src/cmake/functions.cmake
    grep -q 'file(APPEND ${fake_kernels_src_list}' "$f" || return 0
    sed -i '/file(APPEND ${fake_kernels_src_list}/d' "$f"
    rm -rf "$work/build/all_kernel_faked_dir"
}

configure() {
    [ -f "$work/build/Makefile" ] && return 0
    mkdir -p "$work/build/lite/gen_code"
    # upstream's build_linux.sh makes this placeholder: some targets list it before it is generated
    touch "$work/build/lite/gen_code/__generated_code__.cc"
    # The light API refuses (LOG(FATAL)) a model.nb whose opt version differs from its own, and
    # its own comes from `git describe` of the source folder: the copy has no .git, so the values
    # a v2.13-rc checkout gives are passed in, and git must not find a repository around OUT
    # (GIT_CEILING_DIRECTORIES, PADDLE_VERSION below: also for the cmake runs make starts).
    (cd "$work/build" && cmake "$work/src" \
        -DLITE_WITH_CODE_META_INFO=OFF -DPADDLE_LITE_TAG=v2.13-rc -DPADDLE_LITE_BRANCH=HEAD \
        -DPADDLE_LITE_COMMIT=${lite_commit%${lite_commit#???????}} \
        -DCMAKE_BUILD_TYPE=Release -DWITH_MKLDNN=OFF -DWITH_MKL=OFF -DWITH_TESTING=OFF \
        -DLITE_WITH_ARM=ON -DLITE_WITH_X86=OFF -DARM_TARGET_OS=armlinux \
        -DARM_TARGET_ARCH_ABI=armv8 -DARM_TARGET_LANG=gcc -DWITH_ARM_DOTPROD=ON \
        -DLITE_WITH_ARM82_FP16=OFF -DLITE_ON_TINY_PUBLISH=OFF -DLITE_BUILD_EXTRA=ON \
        -DLITE_WITH_LOG=ON -DLITE_WITH_EXCEPTION=OFF -DLITE_WITH_CV=OFF \
        -DLITE_WITH_PYTHON=ON -DPY_VERSION=$py -DPYTHON_EXECUTABLE="$(command -v "$python")" \
        -DPYTHON_INCLUDE_DIR="$work/python/include" \
        -DPYTHON_LIBRARY="$work/python/libpython$py.so" \
        ${LITE_CMAKE_ARGS:-})
}

# The host protoc (protobuf 3.3, third-party/protobuf-host) is configured by make with no flags of
# its own, so it takes CXXFLAGS from the environment: gcc 12 defaults to C++17, where libstdc++
# rejects its std::set comparator ("static assertion failed: comparison object must be invocable as
# const", compiler/java/java_file.cc); it is C++11 code. The cross-built projects set their flags.
compile() {
    start=$(date +%s)
    (cd "$work/build" && CXXFLAGS=-std=c++11 nice -n 10 make -j"$jobs" lite_pybind)
    echo "paddle_lite.sh: make lite_pybind took $(( $(date +%s) - start )) s"
}

inputs=$( (cat "$0"; echo "$src"; cat "$root/usr/include/python$py/patchlevel.h") | sha256sum | cut -d' ' -f1)
stamp=$out/.paddle-lite-arm
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ] && [ -f "$out/$wheel_name" ]; then
    echo "Paddle Lite for armv8: $out/$wheel_name is up to date"
    exit 0
fi
check_source
check_root
mkdir -p "$out"
out=$(cd "$out" && pwd -P)
work=$out/work
export GIT_CEILING_DIRECTORIES=$work PADDLE_VERSION=0.0.0
prepare
skip_faked_kernels
configure
compile
# stripped, as PyPI's lite.so is
aarch64-linux-gnu-strip --strip-unneeded -o "$work/lite.so" "$work/build/lite/api/liblite_pybind.so"
"$python" "$here/tools/arm/lite_wheel.py" "$work/lite.so" \
    "$work/src/lite/api/python/__init__.py" "$out/$wheel_name"
echo "$inputs" > "$stamp"
echo "Paddle Lite for armv8: $out/$wheel_name"
