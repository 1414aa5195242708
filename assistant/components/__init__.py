"""Custom Rasa NLU components of banshi (referenced by class path in config.yml)."""
