# The two commands of the contract: `make run` and `make test`. Both are idempotent and install what
# they need. Override TORCH_SPEC for a GPU machine, e.g.
#   make run TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
# Installs are reproducible: torch from TORCH_SPEC first, then every other package from $(LOCK), pinned
# with hashes (`make lock` regenerates it), then rendercost itself without dependencies.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
LOCK := requirements.lock
PIP := $(BIN)/python -m pip --disable-pip-version-check
STAMP := $(VENV)/.installed-$(shell echo '$(TORCH_SPEC)' | md5sum | cut -c1-8)
LOCK_TOOLS := /tmp/rendercost-lock-tools
PIP_TOOLS_SPEC ?= pip-tools==7.6.2
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PG_INITDB := $(firstword $(wildcard /usr/lib/postgresql/*/bin/initdb))

.PHONY: run test quick setup services lint format unit bench-smoke clean lock audit sbom notice

run: setup
	$(BIN)/rendercost serve

test: setup services lint
	$(BIN)/python -m pytest

# Fast feedback: lint, then every test not marked slow (pytest -m "not slow"); under 2 minutes here.
# A test that takes more than ~2 s gets @pytest.mark.slow (pytest prints the 15 slowest on every run).
quick: setup services lint
	$(BIN)/python -m pytest -m "not slow"

setup: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q $(TORCH_SPEC)
	$(PIP) install -q --require-hashes --no-deps -r $(LOCK)
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(PIP) check
	rm -f $(VENV)/.installed-*
	touch $@

# Re-resolve the lock after a change to pyproject's dependencies (current pins are kept where they still
# fit; `make lock LOCK_ARGS=--upgrade` takes the newest allowed). pip-tools lives in a throwaway venv.
lock:
	test -x $(LOCK_TOOLS)/bin/pip-compile || \
		($(PYTHON) -m venv $(LOCK_TOOLS) && $(LOCK_TOOLS)/bin/pip install -q $(PIP_TOOLS_SPEC))
	PATH=$(LOCK_TOOLS)/bin:$$PATH $(PYTHON) tools/lock.py $(LOCK_ARGS)

# Known advisories in every locked package (PyPI's advisory data; needs https://pypi.org). torch comes
# from TORCH_SPEC, outside the lock: it is audited from the venv on the second line.
audit: setup
	$(BIN)/pip-audit --strict --disable-pip --require-hashes -r $(LOCK)
	$(PIP) freeze | grep -i '^torch==' | sed 's/+.*//' > $(VENV)/torch-audit.txt
	$(BIN)/pip-audit --strict --disable-pip --no-deps -r $(VENV)/torch-audit.txt

# CycloneDX SBOM of what is installed (torch included), as JSON.
sbom: setup
	$(BIN)/cyclonedx-py environment --output-format JSON --output-file sbom.cdx.json $(BIN)/python
	@echo "wrote sbom.cdx.json"

# NOTICE: rendercost's runtime dependencies (torch's included) and their licences, from the venv.
notice: setup
	$(BIN)/python tools/notice.py > NOTICE

# Debian packages for the services the integration tests start on loopback (and stop after), and the
# Chromium the browser tests drive.
services:
	@if [ -z "$(PG_INITDB)" ] || ! command -v redis-server >/dev/null || [ ! -x /usr/bin/chromium ]; then \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql redis-server chromium >/dev/null; \
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
