"""Ferry's inference runtime: loads one frozen MLflow model version from its local (EFS) folder once per process
and serves it from AWS Lambda (`ferry_runtime.lambda_handler.handler`) and from the EKS service
(`python -m ferry_runtime.server`). Both share the loader (`loader`) and the request handling (`service`)."""

__version__ = "0.1.0"
