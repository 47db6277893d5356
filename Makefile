# Ferry — everything a developer or CI runs goes through these targets.
#   make demo   the whole thread on this machine: stand-ins, models, plan, deploy, predictions
#   make test   everything CI checks
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CHECKOV_VENV := .venv-checkov
LOCAL_DIR := .ferry-local
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: help venv lock-python build test test-rust test-python lint-rust local-up local-down demo demo-down \
        bench-sync bench-deploy bench-runtime clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{ printf "  %-22s %s\n", $$1, $$2 }'

# ---- environments -----------------------------------------------------------------------------------------
$(VENV)/.stamp: requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -r requirements/dev.txt
	touch $@

$(CHECKOV_VENV)/.stamp: requirements/checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -r requirements/checkov.txt
	touch $@

venv: $(VENV)/.stamp $(CHECKOV_VENV)/.stamp ## create the Python environments from the pinned locks

lock-python: ## re-resolve requirements/*.txt from requirements/*.in
	rm -rf /tmp/ferry-lock && $(PYTHON) -m venv /tmp/ferry-lock && /tmp/ferry-lock/bin/pip install -q -r requirements/dev.in
	/tmp/ferry-lock/bin/pip freeze --exclude-editable > requirements/dev.txt
	rm -rf /tmp/ferry-lock && $(PYTHON) -m venv /tmp/ferry-lock && /tmp/ferry-lock/bin/pip install -q -r requirements/checkov.in
	/tmp/ferry-lock/bin/pip freeze --exclude-editable > requirements/checkov.txt

build: ## build the agent (release)
	$(CARGO) build --release --locked -p ferry

# ---- tests ------------------------------------------------------------------------------------------------
test: lint-rust test-rust test-python test-terraform test-ci-workflow ## everything CI runs
	@echo "make test: all checks passed"

lint-rust:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

# The integration tests start their own moto and MLflow (tools/standins.py) and stop them by PID.
test-rust: $(VENV)/.stamp
	FERRY_TEST_PYTHON=$(abspath $(PY)) $(CARGO) test --locked --workspace

# The demo test drives target/debug/ferry as `cargo test --workspace` builds it (test-rust): `--no-run` compiles
# nothing after test-rust, where a plain `cargo build` would recompile the AWS SDK with other features (~5 min).
test-python: $(VENV)/.stamp
	$(CARGO) test --locked --workspace --no-run --quiet
	$(PY) -m pytest -q -p no:cacheprovider tests/python runtime/tests

# ---- local stand-ins --------------------------------------------------------------------------------------
local-up: $(VENV)/.stamp ## start moto and MLflow on free ports; writes .ferry-local/env
	$(PY) tools/standins.py up --dir $(LOCAL_DIR)
	@echo "source $(LOCAL_DIR)/env to use them"

local-down: ## stop what local-up started
	@if [ -f $(LOCAL_DIR)/standins.json ]; then $(PY) tools/standins.py down --dir $(LOCAL_DIR); fi

# ---- the demo ---------------------------------------------------------------------------------------------
demo: $(VENV)/.stamp ## run the whole thread locally
	$(CARGO) build --locked --workspace
	$(PY) tools/demo.py --dir $(LOCAL_DIR) --ferry target/debug/ferry

demo-down: local-down ## stop everything the demo started

clean:
	rm -rf $(LOCAL_DIR) target

-include terraform/terraform.mk runtime/runtime.mk examples/ci/ci.mk bench/bench.mk bench/deploy.mk
