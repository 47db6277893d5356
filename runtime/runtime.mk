# The Python inference runtime (runtime/). Included by the top-level Makefile, which defines VENV and PY.
# Its tests run in `make test` (test-python: runtime/tests).

RUNTIME_LAYER_FLAGS ?=
RUNTIME_BENCH_FLAGS ?=

.PHONY: package-runtime bench-runtime

package-runtime: $(VENV)/.stamp ## build the Lambda layer + function zips of the runtime into dist/ (downloads wheels from PyPI)
	$(PY) runtime/packaging/build_layer.py --dist dist $(RUNTIME_LAYER_FLAGS)

bench-runtime: $(VENV)/.stamp ## cold load from EFS vs models:/ through MLflow+S3, and handler overhead; writes bench/results/runtime.json
	$(PY) runtime/bench/bench_runtime.py --out bench/results/runtime.json $(RUNTIME_BENCH_FLAGS)
