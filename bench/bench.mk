# Ferry's sync benchmark and the sync function's package (included by the top-level Makefile).
#   make bench-sync              ferry sync vs aws s3 sync vs s5cmd sync against s3s-fs; bench/results/sync.json
#   make bench-history           ferry history vs a boto3 script over 10,000 audit records; bench/results/history.json
#   make package-sync-function   target/lambda/ferry-sync-lambda/bootstrap.zip for provided.al2023 (needs network)
BENCH_TOOLS := bench/.tools
S3_SERVER := $(BENCH_TOOLS)/bin/ferry-bench-s3-server
CARGO_LAMBDA := $(VENV)/bin/cargo-lambda

.PHONY: package-sync-function

# s3s-fs 0.14.1 with 1 MiB GetObject reads; its own Cargo.lock pins every crate (bench/s3-server/Cargo.toml says why).
$(S3_SERVER): bench/s3-server/Cargo.toml bench/s3-server/Cargo.lock bench/s3-server/src/main.rs
	$(CARGO) install --locked --path bench/s3-server --root $(BENCH_TOOLS) --force

/usr/bin/time:
	@echo "installing GNU time (peak RSS via /usr/bin/time -v)"
	apt-get install -y -qq time >/dev/null || sudo apt-get install -y -qq time >/dev/null

bench-sync: $(VENV_STAMP) $(S3_SERVER) /usr/bin/time ## ferry sync vs aws s3 sync vs s5cmd sync (1 GiB, local s3s-fs)
	$(CARGO) build --release --locked -p ferry
	$(PY) bench/bench_sync.py --ferry target/release/ferry --s3-server $(S3_SERVER) --venv $(VENV)

bench-history: $(VENV_STAMP) ## ferry history vs a serial boto3 script over 10,000 audit records (moto)
	$(CARGO) build --release --locked -p ferry
	$(PY) bench/history_bench.py --ferry target/release/ferry

$(CARGO_LAMBDA): $(VENV_STAMP)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check cargo-lambda

package-sync-function: $(CARGO_LAMBDA) ## build the sync function's zip for provided.al2023 with cargo-lambda (needs network)
	PATH="$(abspath $(VENV))/bin:$$PATH" $(CARGO_LAMBDA) lambda build --release --output-format zip -p ferry-sync-lambda
	@ls -l target/lambda/ferry-sync-lambda/bootstrap.zip
