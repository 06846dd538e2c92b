# Board profile: EdgeBoard FZ3/FZ5/FZ9 (Xilinx Zynq UltraScale+), PetaLinux image, BusyBox and
# sysvinit, aarch64, Paddle Lite with the FPGA target provided by the image. Settings only.
# Read README.md beside this file before flashing: it says what the image must provide.
BOARD_DESC        := EdgeBoard FZ3/FZ5/FZ9, Zynq UltraScale+, PetaLinux, aarch64, Paddle Lite FPGA (from the image)
ARCH              := aarch64
# The pip wheel's paddle_lite_opt cannot build for the FPGA ("Wrong target 'fpga'"): we build
# arm .nb files, which the image's FPGA build of Paddle Lite also runs (on the ARM cores).
LITE_TARGET       := arm
LITE_DEVICE       := fpga
LITE_FROM         := the board image (no aarch64 paddlelite wheels exist on PyPI)
IMAGE_PYTHON      := /usr/bin/python3
IMAGE_PYTHON_VERSION := 3.8
# 4 Cortex-A53 cores: two for Paddle Lite's ARM kernels, the rest for HTTP, decoding and the OS.
# Paddle Lite is the engine of the FZ images (their FPGA build); ONNX Runtime is not on them.
ENGINE            := paddlelite
ORT_THREADS       := 0
LITE_POWER_MODE   := high
LITE_THREADS      := 2
# CPUs reserved for the accelerator worker (empty: not pinned; the power mode binds Paddle Lite's
# threads). Not measured on the board yet.
WORKER_CPUS       :=
HTTP_THREADS      := 4
QUEUE_DEPTH       := 2
# FZ3 has 2 GB DDR4 shared with the PL and the CMA pool of the FPGA driver. From the ARM build of
# Paddle Lite (it reuses buffers; x86's does not): all 8 bundled models took 664 MB in the emulated
# arm64 root, an upper bound (the emulator is in every process's RSS; BENCHMARKS.md, "The whole
# service's memory on ARM"). Not measured on the board yet: check with `edgeapp-diag` there.
MEMORY_BUDGET_MB  := 768
MEMORY_CEILING_MB := 1024
INIT              := sysv
LOG               := file
PREFIX            := /opt/edgeapp
