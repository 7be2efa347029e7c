"""Model contracts (YAML) and the Python functions that some of them name."""
