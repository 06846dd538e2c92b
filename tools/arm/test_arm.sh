#!/bin/sh
# Run the tests marked `arm` (but not `not_arm`) inside an arm64 root that the service was installed into (`make
# test-arm` builds that root: a copy of build/arm/rootfs with `make install BOARD=qemu-aarch64`).
#
#   tools/arm/test_arm.sh ROOT ENGINE [PYTEST ARGS...]
#
# The tests run as they do on the host, but with the board's Python (3.11, aarch64, through
# qemu-user), the board's native packages, and edgeapp from the installed tree (/opt/edgeapp/lib/
# python), not from src/: what is tested is what `make install` puts on a board. ENGINE is the
# engine every server and in-process model of the tests runs on (EDGEAPP_TEST_ENGINE).
set -eu
root=$(cd "${1:?usage: test_arm.sh ROOT ENGINE [PYTEST ARGS...]}" && pwd)
engine=${2:?usage: test_arm.sh ROOT ENGINE [PYTEST ARGS...]}
shift 2
here=$(cd "$(dirname "$0")/../.." && pwd)
[ -f "$root/opt/edgeapp/BUILD" ] || { echo "test_arm.sh: no installed edgeapp in $root (make install DESTDIR=$root)" >&2; exit 2; }

# The tests, the tools they import and the pinned package they read photos from, as in a
# checkout; src/ is left out on purpose.
repo=$root/opt/edgeapp-test/repo
rm -rf "$repo"
mkdir -p "$repo/build/cache"
cp -R "$here/tests" "$here/pytest.ini" "$repo/"
cp -R "$here/tools" "$here/models" "$repo/"
# the photos of the `photos` fixture (make test-arm downloads the wheel first)
cp "$here"/build/cache/scikit_image-*.whl "$repo/build/cache/"
find "$repo" -name __pycache__ -prune -exec rm -rf {} +
# Only the modules with tests marked arm are collected (the others import what the board lacks),
# unless the arguments name test files themselves.
case " $* " in
    *" tests/"*) ;;
    *) set -- "$@" $(cd "$here" && grep -l 'pytest.mark.arm' tests/test_*.py) ;;
esac

"$here/tools/arm/chroot.sh" "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
    PYTHONPATH=/opt/edgeapp/lib/python:/opt/edgeapp-test/lib PYTHONDONTWRITEBYTECODE=1 \
    EDGEAPP_MODEL_DIR=/opt/edgeapp/models EDGEAPP_TEST_ENGINE="$engine" \
    HYPOTHESIS_STORAGE_DIRECTORY=/tmp/hypothesis EDGEAPP_TEST_EXAMPLES=30 \
    /bin/sh -c 'cd /opt/edgeapp-test/repo && exec python3 -m pytest -m "arm and not not_arm" -p no:cacheprovider "$@"' sh "$@"
