#!/bin/sh
# The whole service's memory on the emulated arm64 board: `edgeapp serve` started inside ROOT
# (a root with the service installed: make test-arm leaves one in build/arm/test-root) with every
# bundle of MODELS (a folder of arm bundles, e.g. build/models/arm) on ENGINE, its /api/status
# memory figures once it is ready (every model warmed at its input shape), then stopped.
#
#   tools/arm/service_memory.sh ROOT MODELS ENGINE
#
# Under qemu-user each process's RSS also holds the emulator and its translated code (python3
# alone: 34 MB emulated, 8 MB native), so the figures are upper bounds for a board's. Needs root.
set -eu
usage="usage: service_memory.sh ROOT MODELS ENGINE"
root=$(cd "${1:?$usage}" && pwd)
models=${2:?$usage}
engine=${3:?$usage}
here=$(cd "$(dirname "$0")/../.." && pwd)
port=${PORT:-19876}

rm -rf "$root/opt/models-measured"
cp -R "$models" "$root/opt/models-measured"
"$here/tools/arm/chroot.sh" "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root \
    EDGEAPP_MODEL_DIR=/opt/models-measured EDGEAPP_ENGINE="$engine" EDGEAPP_ORT_THREADS=1 \
    EDGEAPP_LITE_THREADS=1 EDGEAPP_MEMORY_BUDGET_MB=4096 EDGEAPP_FACE_DB=/tmp/faces.db \
    /bin/sh -c '
        /opt/edgeapp/bin/edgeapp serve --host 127.0.0.1 --port "$1" > /tmp/serve.log 2>&1 &
        pid=$!
        for i in $(seq 600); do
            python3 -c "import urllib.request, sys; urllib.request.urlopen(\"http://127.0.0.1:$1/api/health\", timeout=2)" 2>/dev/null && break
            kill -0 $pid 2>/dev/null || { cat /tmp/serve.log; exit 1; }
            sleep 1
        done
        python3 - "$1" <<EOF
import json, sys, urllib.request
status = json.load(urllib.request.urlopen("http://127.0.0.1:%s/api/status" % sys.argv[1], timeout=10))["data"]
models = json.load(urllib.request.urlopen("http://127.0.0.1:%s/api/models" % sys.argv[1], timeout=10))["data"]
print(json.dumps({"memory": status["memory"],
                  "models": {"%d %s" % (m["id"], m["name"]): m["memory_mb"] for m in models},
                  "ready": sum(m["ready"] for m in models), "of": len(models)}))
EOF
        kill $pid; wait $pid || true
    ' sh "$port"
rm -rf "$root/opt/models-measured"
