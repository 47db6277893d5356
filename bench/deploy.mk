bench-deploy: $(VENV_STAMP) $(RUNTIME_DIST) ## ferry deploy vs a boto3 script and an AWS CLI loop through the local Lambda with AWS's quotas (20 models x 10 versions, 20 ms round trip, 1 s settle; 2x and 4x)
	$(CARGO) build --release --locked -p ferry
	$(PY) bench/control_plane_bench.py --ferry target/release/ferry

bench-deploy-moto: $(VENV_STAMP) $(RUNTIME_DIST) ## the older figures: ferry deploy vs boto3 and the AWS CLI straight on moto (no quotas)
	$(CARGO) build --release --locked -p ferry
	$(PY) bench/deploy_bench.py --ferry target/release/ferry
