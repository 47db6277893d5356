test-terraform: ## Terraform checks (fmt, checkov, structural tests)
	@echo "terraform: no modules yet"
