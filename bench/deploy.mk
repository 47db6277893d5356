bench-deploy: $(VENV_STAMP) $(RUNTIME_DIST) ## ferry deploy vs a boto3 script and an AWS CLI loop (20 models x 10 versions, moto)
	$(CARGO) build --release --locked -p ferry
	$(PY) bench/deploy_bench.py --ferry target/release/ferry
