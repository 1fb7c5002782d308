# Two commands on a fresh machine (Python 3.11+):
#   make serve     install into .venv, then serve every dialect on http://127.0.0.1:8080
#   make test      install into .venv, then run the test suite
# Options: make serve ARGS="--port 9000 --config cardgate.toml"; PYTHON=python3.11; VENV=.venv
#
# The install runs once and again only when pyproject.toml changes (a stamp file in the venv).
# torch is pinned to 2.13.0 and installed CPU-only: a local wheel when the machine has one,
# else the PyTorch CPU index, else the default index.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cardgate-installed
TORCH_VERSION := 2.13.0
TORCH_WHEEL := $(firstword $(wildcard /opt/wheels/torch-$(TORCH_VERSION)+cpu-*.whl))
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
ARGS ?=

.PHONY: serve test install bench clean

serve: $(STAMP)
	$(BIN)/cardgate serve $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

install: $(STAMP)

bench: $(STAMP)
	$(BIN)/python -m bench.run $(ARGS)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if $(BIN)/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$(TORCH_VERSION)')" 2>/dev/null; then \
		echo "torch $(TORCH_VERSION) already installed"; \
	elif [ -n "$(TORCH_WHEEL)" ]; then \
		$(BIN)/pip install -q "$(TORCH_WHEEL)"; \
	else \
		$(BIN)/pip install -q "torch==$(TORCH_VERSION)" --index-url "$(TORCH_INDEX)" --extra-index-url https://pypi.org/simple \
		|| $(BIN)/pip install -q "torch==$(TORCH_VERSION)"; \
	fi
	$(BIN)/pip install -q -e '.[test]'
	@touch $(STAMP)

clean:
	rm -rf $(VENV) *.egg-info
