"""Custom Rasa NLU components of banshi, referenced by class path in config.yml (moving
one changes the model fingerprint: retrain). Their logic lives in ``knowledge``; only
the Rasa graph-component wrappers belong here."""
