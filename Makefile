# Two entry points do all set-up: `make demo` and `make test`. Both create or refresh .venv first;
# the stamp makes a second run instant unless pyproject.toml or requirements.lock changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.meshpilot-installed
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: venv demo test lint pytest system-tools judge bench bench-serve clean

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing meshpilot and its dependencies into $(VENV) (first run takes a few minutes)" >&2
	# torch first and alone: pinned to the CPU build; any other resolution could pull the CUDA one.
	$(PIP) -c requirements.lock torch==2.13.0
	$(PIP) -c requirements.lock -e '.[dev]'
	@touch $@

venv: $(STAMP)

demo: venv
	$(BIN)/meshpilot demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The external judge of drafted contracts: datacontract-cli in a virtualenv of its own (its pins clash
# with ours), inside .venv so git, ruff and `make clean` treat it like the main one. Tests skip without it.
JUDGE_VENV := $(VENV)/judge
JUDGE_STAMP := $(JUDGE_VENV)/.datacontract-cli-1.2.8
$(JUDGE_STAMP):
	@test -x $(JUDGE_VENV)/bin/python || $(PYTHON) -m venv $(JUDGE_VENV)
	$(JUDGE_VENV)/bin/python -m pip install -q --disable-pip-version-check 'datacontract-cli[duckdb]==1.2.8'
	@touch $@

judge: $(JUDGE_STAMP)

pytest: venv system-tools judge
	$(BIN)/python -m pytest

# Chromium (the web page's browser tests) and docker-compose (`docker-compose config` on
# docker-compose.yml) come from Debian; without root and apt-get their tests are skipped, with a reason.
SYSTEM_TOOLS := chromium:/usr/bin/chromium docker-compose:/usr/bin/docker-compose
system-tools:
	@missing=""; for tool in $(SYSTEM_TOOLS); do test -x "$${tool#*:}" || missing="$$missing $${tool%%:*}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing with apt-get (browser and compose tests)" >&2; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	  else \
	    echo "warning:$$missing missing and not installable here (needs root and apt-get); their tests will skip" >&2; \
	  fi; \
	fi

test: lint pytest

bench: venv
	$(BIN)/meshpilot bench ingest --json

bench-serve: venv
	$(BIN)/meshpilot bench serve --json

clean:
	rm -rf $(VENV) .meshpilot .pytest_cache .mypy_cache .ruff_cache
