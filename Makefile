# The two commands of the contract: `make run` and `make test`. Both are idempotent and install what
# they need. Override TORCH_SPEC for a GPU machine, e.g.
#   make run TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed-$(shell echo '$(TORCH_SPEC)' | md5sum | cut -c1-8)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PG_INITDB := $(firstword $(wildcard /usr/lib/postgresql/*/bin/initdb))

.PHONY: run test quick setup services lint format unit bench-smoke clean

run: setup
	$(BIN)/rendercost serve

test: setup services lint
	$(BIN)/python -m pytest

# Fast feedback: lint, then every test not marked slow (pytest -m "not slow"); under 2 minutes here.
# A test that takes more than ~2 s gets @pytest.mark.slow (pytest prints the 15 slowest on every run).
quick: setup services lint
	$(BIN)/python -m pytest -m "not slow"

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH_SPEC)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $@

# Debian packages for the services the integration tests start on loopback (and stop after).
services:
	@if [ -z "$(PG_INITDB)" ] || ! command -v redis-server >/dev/null; then \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql redis-server >/dev/null; \
	fi

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

unit: setup
	$(BIN)/python -m pytest tests/unit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
