# edgeapp: the front door. `make help` lists targets and variables.

SHELL := bash
.DEFAULT_GOAL := help

BOARD  ?= host-x86
VENV   ?= .venv
VENV38 ?= .venv38
ARGS   ?=

# The board profile sets LITE_TARGET (the Paddle Lite target the models are built for).
BOARD_MK := board/$(BOARD)/board.mk
ifeq ($(wildcard $(BOARD_MK)),)
$(error unknown BOARD=$(BOARD): no $(BOARD_MK). Boards: $(notdir $(wildcard board/*)))
endif
include $(BOARD_MK)
ifeq ($(LITE_TARGET),)
$(error $(BOARD_MK) does not set LITE_TARGET)
endif

MODEL_DIR := build/models/$(LITE_TARGET)
VPY := $(VENV)/bin/python

# Every python run sees the package from src/ (no install needed) and the built models.
export PYTHONPATH := $(CURDIR)/src
export EDGEAPP_MODEL_DIR := $(CURDIR)/$(MODEL_DIR)

# Shell code that prints the first CPython $(1) that really runs: python$(1) on PATH,
# then pyenv's installs. (A pyenv shim can be on PATH and still refuse to run.)
find_python = for p in python$(1) "$$(pyenv root 2>/dev/null)"/versions/$(1).*/bin/python; do \
	"$$p" -c 'import sys; assert "%d.%d" % sys.version_info[:2] == "$(1)"; print(sys.executable)' \
	2>/dev/null && break; done

# Searched for only when a recipe uses them, so `make help` and `make clean` stay instant.
PYTHON   ?= $(shell $(call find_python,3.10))
PYTHON38 ?= $(shell $(call find_python,3.8))

.PHONY: help setup deps models test check-py38 py38-imports run bench clean

help:
	@echo "edgeapp make targets (board $(BOARD), Paddle Lite target $(LITE_TARGET)):"
	@echo "  setup       create $(VENV), install requirements*.txt, build the models (idempotent)"
	@echo "  models      build the model bundles into $(MODEL_DIR)"
	@echo "  test        setup, check-py38, then run pytest over tests/"
	@echo "  check-py38  check that src/ compiles and imports on CPython 3.8 (in $(VENV38))"
	@echo "  run         setup, then serve on 0.0.0.0:9876 (python -m edgeapp serve \$$(ARGS)),"
	@echo "              memory budget from the board profile (MEMORY_BUDGET_MB=$(MEMORY_BUDGET_MB))"
	@echo "  bench       setup, then run the benchmarks in tests/bench"
	@echo "  clean       remove build/ (models, wheel cache), $(VENV) and $(VENV38)"
	@echo "Variables:"
	@echo "  BOARD=$(BOARD)     board profile, one of: $(notdir $(wildcard board/*))"
	@echo "  PYTHON=...         CPython 3.10 for $(VENV) (default: python3.10 on PATH, then pyenv)"
	@echo "  PYTHON38=...       CPython 3.8 for check-py38 (found the same way)"
	@echo "  VENV=$(VENV)  VENV38=$(VENV38)"
	@echo "  ARGS=...           extra arguments for 'run'"
	@echo "  PYTEST_ARGS=...    extra arguments for pytest in 'test' and 'bench'"
	@echo "  CI=true            make check-py38 fail (not skip) when there is no CPython 3.8"

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

$(VENV)/.installed: $(VENV)/.created requirements.txt requirements-dev.txt
	$(VPY) -m pip install -r requirements.txt -r requirements-dev.txt
	@touch $@

deps: $(VENV)/.installed

# No stamp here: the tool itself skips bundles that are already built from the same inputs.
models: deps
	$(VPY) tools/build_models.py --target $(LITE_TARGET) --out $(MODEL_DIR)

test: setup check-py38
	$(VPY) -m pytest tests --benchmark-disable $(PYTEST_ARGS)

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

$(VENV38)/.installed: $(VENV38)/.created requirements-py38.txt
	$(VENV38)/bin/python -m pip install -r requirements-py38.txt
	@touch $@

run: setup
	EDGEAPP_MEMORY_BUDGET_MB=$${EDGEAPP_MEMORY_BUDGET_MB:-$(MEMORY_BUDGET_MB)} $(VPY) -m edgeapp serve $(ARGS)

bench: setup
	$(VPY) -m pytest tests/bench --benchmark-only $(PYTEST_ARGS)

clean:
	rm -rf build $(VENV) $(VENV38)
