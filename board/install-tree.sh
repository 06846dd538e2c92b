#!/bin/sh
# Install edgeapp into a root file system tree: `make install` and `make overlay` run this with
# the board profile's settings in the environment (see the Makefile), the package's wheel
# (WHEEL) and a host Python to unpack it (HOST_PYTHON). The tree mirrors the
# target: PREFIX (the app, its libraries, the models), /etc/default/edgeapp, the init script or
# systemd unit the profile asks for, and edgeapp + edgeapp-diag on the PATH. Nothing in it
# depends on where DEST is: every path inside is a target path.
set -eu
umask 022

for v in DEST BOARD VERSION PREFIX RUN_DIR IMAGE_PYTHON MODELS VENDOR WHEEL HOST_PYTHON INIT LOG LITE_TARGET \
         ENGINE ORT_THREADS LITE_THREADS WORKER_CPUS LITE_POWER_MODE HTTP_THREADS QUEUE_DEPTH MEMORY_BUDGET_MB MEMORY_CEILING_MB; do
    eval "[ -n \"\${$v+x}\" ]" || { echo "install-tree.sh: $v is not set" >&2; exit 2; }
done
SYSTEMD_CGROUP_V1=${SYSTEMD_CGROUP_V1:-}
here=$(cd "$(dirname "$0")/.." && pwd)
overlay=$here/rootfs-overlay
app=$DEST$PREFIX

case $LOG in
    file) log_target=$RUN_DIR/edgeapp.log ;;
    syslog|journal) log_target=$LOG ;;
    *) echo "install-tree.sh: LOG must be file, syslog or journal, not '$LOG'" >&2; exit 2 ;;
esac
# On cgroup v1 (systemd < 248 hybrid setups) only MemoryLimit= limits memory.
if [ "$SYSTEMD_CGROUP_V1" = yes ]; then cgroup_v1=; else cgroup_v1='#'; fi

# A template from rootfs-overlay with the board's values filled in.
subst() {
    sed -e "s|@VERSION@|$VERSION|g" -e "s|@BOARD@|$BOARD|g" -e "s|@PREFIX@|$PREFIX|g" \
        -e "s|@RUN_DIR@|$RUN_DIR|g" -e "s|@PYTHON@|$IMAGE_PYTHON|g" -e "s|@LOG@|$log_target|g" \
        -e "s|@ENGINE@|$ENGINE|g" -e "s|@ORT_THREADS@|$ORT_THREADS|g" -e "s|@LITE_THREADS@|$LITE_THREADS|g" -e "s|@WORKER_CPUS@|$WORKER_CPUS|g" -e "s|@LITE_POWER_MODE@|$LITE_POWER_MODE|g" -e "s|@HTTP_THREADS@|$HTTP_THREADS|g" \
        -e "s|@QUEUE_DEPTH@|$QUEUE_DEPTH|g" -e "s|@MEMORY_BUDGET_MB@|$MEMORY_BUDGET_MB|g" \
        -e "s|@MEMORY_CEILING_MB@|$MEMORY_CEILING_MB|g" -e "s|@CGROUP_V1@|$cgroup_v1|g" \
        "$overlay/$1" > "$DEST/$2.tmp"
    if grep -n '@[A-Z_0-9]*@' "$DEST/$2.tmp" >&2; then
        echo "install-tree.sh: unfilled placeholder in $1" >&2; exit 2
    fi
    chmod "$3" "$DEST/$2.tmp"
    mv -f "$DEST/$2.tmp" "$DEST/$2"
}

# The app: a fresh copy each time, so files of an older version never linger.
rm -rf "$app/lib" "$app/models" "$app/bin"
mkdir -p "$app/bin" "$app/lib/python" "$app/models" "$DEST/etc/default" "$DEST/usr/bin"
# The package from its wheel: the same files pip installs, the page's files included.
"$HOST_PYTHON" -m zipfile -e "$WHEEL" "$app/lib/python"
cp -R "$VENDOR/." "$app/lib/python/"
rm -rf "$app/lib/python/bin"  # console scripts of the vendored packages: not used
found=0
for b in "$MODELS"/*/; do
    [ -f "$b/bundle.json" ] || continue
    cp -R "$b" "$app/models/"
    found=$((found + 1))
done
[ "$found" -gt 0 ] || { echo "install-tree.sh: no model bundles in $MODELS (make models BOARD=$BOARD)" >&2; exit 1; }
find "$app/models" -name '.*' -exec rm -rf {} +   # leftovers of an interrupted build
subst opt/edgeapp/bin/edgeapp "${PREFIX#/}/bin/edgeapp" 755
ln -sf edgeapp "$app/bin/edgeapp-diag"
ln -sf "../..$PREFIX/bin/edgeapp" "$DEST/usr/bin/edgeapp"
ln -sf "../..$PREFIX/bin/edgeapp-diag" "$DEST/usr/bin/edgeapp-diag"
{
    echo "edgeapp $VERSION for board $BOARD"
    echo "models: Paddle Lite target $LITE_TARGET ($found bundles, each with model.onnx where it was built)"
    echo "engine: $ENGINE"
    echo "python: $IMAGE_PYTHON"
    echo "source: $(cd "$here" && git describe --always --dirty 2>/dev/null || echo unknown)"
} > "$app/BUILD"

# The config: a person may have edited the one already in the tree; keep it, put ours beside it.
conf=etc/default/edgeapp
if [ -f "$DEST/$conf" ]; then
    subst "$conf" "$conf.dist" 644
    if cmp -s "$DEST/$conf" "$DEST/$conf.dist"; then rm -f "$DEST/$conf.dist"
    else echo "kept the existing /$conf; the new defaults are in /$conf.dist"; fi
else
    subst "$conf" "$conf" 644
fi

for init in $INIT; do
    case $init in
    sysv)
        mkdir -p "$DEST/etc/init.d"
        subst etc/init.d/S95edgeapp etc/init.d/S95edgeapp 755
        # BusyBox init's rcS runs /etc/init.d/S??* itself; sysvinit (PetaLinux) runs rcN.d links.
        for n in 2 3 4 5; do mkdir -p "$DEST/etc/rc$n.d"; ln -sf ../init.d/S95edgeapp "$DEST/etc/rc$n.d/S95edgeapp"; done
        for n in 0 1 6; do mkdir -p "$DEST/etc/rc$n.d"; ln -sf ../init.d/S95edgeapp "$DEST/etc/rc$n.d/K05edgeapp"; done
        ;;
    systemd)
        # usr/lib, not lib: on a merged-/usr image /lib is a symlink that unpacking must not replace.
        mkdir -p "$DEST/usr/lib/systemd/system" "$DEST/etc/systemd/system/multi-user.target.wants"
        subst usr/lib/systemd/system/edgeapp.service usr/lib/systemd/system/edgeapp.service 644
        # What `systemctl enable edgeapp` would do, done in the tree.
        ln -sf ../../../../usr/lib/systemd/system/edgeapp.service \
            "$DEST/etc/systemd/system/multi-user.target.wants/edgeapp.service"
        ;;
    *) echo "install-tree.sh: unknown INIT '$init' (sysv, systemd)" >&2; exit 2 ;;
    esac
done
echo "installed edgeapp $VERSION for $BOARD into $DEST ($found models, init: $INIT)"
