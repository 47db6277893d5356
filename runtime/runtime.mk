# The Python inference runtime (runtime/). Included by the top-level Makefile, which defines VENV, VENV_STAMP and PY.
# Its tests run in `make test` (test-python: runtime/tests); the layer it builds is what the local Lambda runs in
# the integration tests and the demo.

RUNTIME_LAYER_FLAGS ?=
RUNTIME_BENCH_FLAGS ?=
RUNTIME_SOURCES := $(wildcard runtime/ferry_runtime/*.py) runtime/packaging/build_layer.py runtime/lambda-target.json \
                   requirements/dev.txt

.PHONY: package-runtime bench-runtime

package-runtime: $(RUNTIME_DIST) ## build the Lambda function zip and one runtime layer per architecture into dist/ (wheels from PyPI)

$(RUNTIME_DIST): $(RUNTIME_SOURCES) $(VENV_STAMP)
	$(PY) runtime/packaging/build_layer.py --dist dist $(RUNTIME_LAYER_FLAGS)

bench-runtime: $(VENV_STAMP) $(RUNTIME_DIST) ## cold start and warm latency through the local Lambda vs load_model("models:/") from the registry; writes bench/results/runtime.json
	$(PY) runtime/bench/bench_runtime.py --out bench/results/runtime.json $(RUNTIME_BENCH_FLAGS)
