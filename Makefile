# Two entry points do all set-up: `make demo` and `make test`. Both create or refresh .venv first;
# the stamp makes a second run instant unless pyproject.toml or requirements.lock changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.meshpilot-installed
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: venv demo test lint pytest bench clean

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

pytest: venv
	$(BIN)/python -m pytest

test: lint pytest

bench: venv
	$(BIN)/meshpilot bench ingest --json

clean:
	rm -rf $(VENV) .meshpilot .pytest_cache .mypy_cache .ruff_cache
