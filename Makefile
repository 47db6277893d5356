# Ferry — everything a developer or CI runs goes through these targets.
#   make demo   the whole thread on this machine: stand-ins, models, plan, deploy, predictions
#   make test   everything CI checks
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The development environment (moto, MLflow, the demo's and the tests' model training) runs the Python of the one
# Lambda runtime target, so that a model saved here loads on the functions: runtime/lambda-target.json names it,
# tools/find-python finds it (pyenv's builds on this machine image).
TARGET_RUNTIME := $(shell sed -nE 's/.*"runtime": *"(python3\.[0-9]+)".*/\1/p' runtime/lambda-target.json)
PYTHON ?= $(shell tools/find-python $(TARGET_RUNTIME))
CHECKOV_PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.stamp-$(TARGET_RUNTIME)
PY := $(VENV)/bin/python
CHECKOV_VENV := .venv-checkov
# What `make package-runtime` writes last (runtime/runtime.mk): the function zip, a layer per architecture, this report.
RUNTIME_DIST := dist/ferry-runtime-layer.json
LOCAL_DIR := .ferry-local
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: help venv lock-python build test test-rust test-reliability test-python lint-rust local-up local-down demo demo-down \
        bench-sync bench-deploy bench-deploy-moto bench-runtime bench-history clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{ printf "  %-22s %s\n", $$1, $$2 }'

# ---- environments -----------------------------------------------------------------------------------------
$(VENV_STAMP): requirements/dev.txt
	@test -n "$(PYTHON)" || { echo "make: no CPython for $(TARGET_RUNTIME) (tools/find-python $(TARGET_RUNTIME))" >&2; exit 1; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -r requirements/dev.txt
	touch $@

$(CHECKOV_VENV)/.stamp: requirements/checkov.txt
	$(CHECKOV_PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -r requirements/checkov.txt
	touch $@

venv: $(VENV_STAMP) $(CHECKOV_VENV)/.stamp ## create the Python environments from the pinned locks

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

# The integration tests start their own moto, local Lambda and MLflow (tools/standins.py) and stop them by PID; the
# local Lambda runs the runtime as built into dist/.
test-rust: $(VENV_STAMP) $(RUNTIME_DIST)
	FERRY_TEST_PYTHON=$(abspath $(PY)) $(CARGO) test --locked --workspace

# The reliability tests at more random-fault seeds and kill points than `make test` runs (4 and 8, one at a time),
# RUNS_AT_ONCE of them at a time, each on a stack of its own. `--workspace`: the features `make test` builds with, so
# nothing recompiles after it.
FAULT_SEEDS ?= 1-20
KILL_POINTS ?= 50
RUNS_AT_ONCE ?= 4
test-reliability: $(VENV_STAMP) $(RUNTIME_DIST) ## the reliability tests at FAULT_SEEDS seeds and KILL_POINTS kill points
	FERRY_TEST_PYTHON=$(abspath $(PY)) FERRY_FAULT_SEEDS=$(FAULT_SEEDS) FERRY_KILL_POINTS=$(KILL_POINTS) \
	  FERRY_TEST_RUNS_AT_ONCE=$(RUNS_AT_ONCE) $(CARGO) test --locked --workspace --test it -- --include-ignored reliability::

# The demo test drives target/debug/ferry as `cargo test --workspace` builds it (test-rust): `--no-run` compiles
# nothing after test-rust, where a plain `cargo build` would recompile the AWS SDK with other features (~5 min).
# tests/python/test_k8s_templates.py (and runtime/tests/test_server.py's rendered Deployment) drive the same binary's
# `ferry render --target eks`, and run checkov's kubernetes framework from its own environment on what it writes.
test-python: $(VENV_STAMP) $(CHECKOV_VENV)/.stamp $(RUNTIME_DIST)
	$(CARGO) test --locked --workspace --no-run --quiet
	FERRY_CHECKOV=$(abspath $(CHECKOV_VENV))/bin/checkov $(PY) -m pytest -q -p no:cacheprovider tests/python runtime/tests

# ---- local stand-ins --------------------------------------------------------------------------------------
local-up: $(VENV_STAMP) ## start moto, the local Lambda and MLflow on free ports; writes .ferry-local/env
	$(PY) tools/standins.py up --dir $(LOCAL_DIR)
	@echo "source $(LOCAL_DIR)/env to use them"

local-down: ## stop what local-up started
	@if [ -f $(LOCAL_DIR)/standins.json ]; then $(PY) tools/standins.py down --dir $(LOCAL_DIR); fi

# ---- the demo ---------------------------------------------------------------------------------------------
demo: $(VENV_STAMP) $(RUNTIME_DIST) ## run the whole thread locally
	$(CARGO) build --locked --workspace
	$(PY) tools/demo.py --dir $(LOCAL_DIR) --ferry target/debug/ferry

demo-down: local-down ## stop everything the demo started

clean:
	rm -rf $(LOCAL_DIR) target

-include terraform/terraform.mk runtime/runtime.mk examples/ci/ci.mk bench/bench.mk bench/deploy.mk
