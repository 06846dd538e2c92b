# Board profile: the development host (x86_64). Settings only, no code (board/README.md lists them).
# Used by the tests and by `make run`; `make install BOARD=host-x86` makes a tree that runs here.
BOARD_DESC        := Development host, x86_64, Paddle Lite from the pip wheel
ARCH              := x86_64
# Paddle Lite: what tools/build_models.py converts for, what the runtime drives, where it comes from.
LITE_TARGET       := x86
LITE_DEVICE       := none
LITE_FROM         := pip wheel (requirements.txt, in $(VENV))
# The "image" is this checkout: its venv has numpy, OpenCV and Paddle Lite.
IMAGE_PYTHON       = $(CURDIR)/$(VENV)/bin/python
IMAGE_PYTHON_VERSION := 3.10
# Paddle Lite threads: the x86 wheel has no set_threads, so this becomes the worker's OMP_NUM_THREADS
# (0: its OpenMP default, 2 here). One thread on a CPU of its own (WORKER_CPUS), the HTTP process on
# the other: the text-direction model served 4-26% faster (median 8%) than unpinned (BENCHMARKS.md).
# Needs 2 CPUs or more.
# The inference engine of bundles that name none: paddlelite (model.nb), so that the host runs what
# the FZ boards run; `make run ENGINE=onnxruntime` tries the other. ORT_THREADS: ONNX Runtime's
# intra-op threads (0: the worker's CPUs, WORKER_CPUS, else all CPUs but one).
ENGINE            := paddlelite
ORT_THREADS       := 0
LITE_POWER_MODE   := default
LITE_THREADS      := 1
WORKER_CPUS       := 1
HTTP_THREADS      := 8
QUEUE_DEPTH       := 4
# Memory for all edgeapp processes (MB): `make run` passes it as EDGEAPP_MEMORY_BUDGET_MB.
# Measured total on this host with the bundled models: about 1000 MB (README, Memory).
MEMORY_BUDGET_MB  := 1536
# Hard ceiling the kernel enforces (systemd MemoryMax=), above the budget the service checks.
MEMORY_CEILING_MB := 2048
# Init integrations to install: sysv (/etc/init.d/S95edgeapp + rc links) and/or systemd.
INIT              := sysv systemd
# Where the service's output goes: file (RUN_DIR/edgeapp.log, in RAM), syslog or journal.
LOG               := file
PREFIX            := /opt/edgeapp
