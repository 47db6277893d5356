"""Ferry's own checkov checks (checkov loads a folder of checks only when it is a package)."""
