# Board profile: an emulated arm64 board (QEMU's "virt" machine, Cortex-A53), for tests only: the
# Debian bookworm arm64 root that `make test-arm` runs the tests in and `make boot-test` boots
# (tools/arm/). Settings only; README.md beside this file says what the root holds.
BOARD_DESC        := QEMU arm64 virt (emulated, for tests), Debian bookworm, sysvinit, Python 3.11, ONNX Runtime
ARCH              := aarch64
LITE_TARGET       := arm
LITE_DEVICE       := none
LITE_FROM         := built from Paddle Lite's source (make paddle-lite-arm); no aarch64 wheels on PyPI
IMAGE_PYTHON      := /usr/bin/python3
IMAGE_PYTHON_VERSION := 3.11
# ONNX Runtime has aarch64 wheels (board/qemu-aarch64/image-requirements.txt); Paddle Lite only
# when built from source: `make test-arm ENGINE=paddlelite`.
ENGINE            := onnxruntime
# The emulated machine has 2 CPUs: one thread for inference, the other for HTTP.
ORT_THREADS       := 1
LITE_POWER_MODE   := no_bind
LITE_THREADS      := 1
WORKER_CPUS       :=
HTTP_THREADS      := 4
QUEUE_DEPTH       := 2
MEMORY_BUDGET_MB  := 1024
MEMORY_CEILING_MB := 1536
INIT              := sysv
LOG               := file
PREFIX            := /opt/edgeapp
