# Board profile: EdgeBoard DK-1A, Ubuntu 20.04-based image, systemd, Python 3.8, aarch64. The
# image ships ONNX Runtime, which is the engine here (model.onnx on the ARM CPU); Paddle Lite
# (model.nb) stays installed as the other choice. Its NPU runtime (PPNC) is neither: edgeapp does
# not use the NPU (README.md beside this file). Settings only.
BOARD_DESC        := EdgeBoard DK-1A, Ubuntu 20.04-based, systemd, aarch64, ONNX Runtime on the ARM CPU (NPU not used)
ARCH              := aarch64
LITE_TARGET       := arm
LITE_DEVICE       := none
LITE_FROM         := the board image, or built from Paddle Lite's source (no aarch64 wheels on PyPI)
IMAGE_PYTHON      := /usr/bin/python3
IMAGE_PYTHON_VERSION := 3.8
# ONNX Runtime 1.19.2 (the last release for Python 3.8, which the image has). Two intra-op
# threads, like Paddle Lite's below; the HTTP process keeps the other cores. Not measured on the
# board yet.
ENGINE            := onnxruntime
ORT_THREADS       := 2
LITE_POWER_MODE   := high
LITE_THREADS      := 2
# CPUs reserved for the accelerator worker (empty: not pinned; the power mode binds Paddle Lite's
# threads). Not measured on the board yet.
WORKER_CPUS       :=
HTTP_THREADS      := 4
QUEUE_DEPTH       := 2
# From ONNX Runtime on aarch64: all 8 bundled models took 618 MB in the emulated arm64 root, an
# upper bound (the emulator is in every process's RSS; BENCHMARKS.md, "The whole service's memory
# on ARM"). Not measured on the board yet: check with `edgeapp-diag` there.
MEMORY_BUDGET_MB  := 768
MEMORY_CEILING_MB := 1024
INIT              := systemd
# Ubuntu 20.04's systemd (245) runs the hybrid cgroup hierarchy, where MemoryMax= has no effect:
# the unit also gets the cgroup v1 MemoryLimit=.
SYSTEMD_CGROUP_V1 := yes
LOG               := journal
PREFIX            := /opt/edgeapp
