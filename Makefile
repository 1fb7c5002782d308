# Two commands on a fresh machine (Python 3.11+):
#   make serve     install into .venv, then serve every dialect on http://127.0.0.1:8080
#   make test      install into .venv, then run the test suite
# Options: make serve ARGS="--port 9000 --config cardgate.toml"; PYTHON=python3.11; VENV=.venv
#
# The install runs once and again only when pyproject.toml changes (a stamp file in the venv,
# made only once every step has succeeded). Makes started together (`make serve &` then
# `make test`) take turns: the install holds a lock next to the venv, and a make that waited
# for it finds the stamp already made and installs nothing.
#
# torch is pinned to 2.13.0: a local CPU wheel when the machine has one (/opt/wheels), else
# whatever pip's configured index serves, which on Linux is usually the much larger CUDA build.
# For the CPU-only wheel, point pip at an index that has it before the first run, with
# PIP_EXTRA_INDEX_URL or pip.conf.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cardgate-installed
LOCK := $(VENV).lock
TORCH_VERSION := 2.13.0
TORCH_WHEEL := $(firstword $(wildcard /opt/wheels/torch-$(TORCH_VERSION)+cpu-*.whl))
ARGS ?=

.PHONY: serve test install bench clean

serve: $(STAMP)
	$(BIN)/cardgate serve $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

install: $(STAMP)

bench: $(STAMP)
	$(BIN)/python -m bench.run $(ARGS)

ifndef CARDGATE_INSTALL_LOCKED
# Take the lock, then let a sub-make decide afresh whether the stamp is out of date.
$(STAMP): pyproject.toml
	@flock $(LOCK) $(MAKE) --no-print-directory CARDGATE_INSTALL_LOCKED=1 $@
else
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if $(BIN)/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$(TORCH_VERSION)')" 2>/dev/null; then \
		echo "torch $(TORCH_VERSION) already installed"; \
	elif [ -n "$(TORCH_WHEEL)" ]; then \
		$(BIN)/pip install -q "$(TORCH_WHEEL)"; \
	else \
		$(BIN)/pip install -q "torch==$(TORCH_VERSION)"; \
	fi
	$(BIN)/pip install -q -e '.[test]'
	@touch $@
endif

clean:
	rm -rf $(VENV) *.egg-info
