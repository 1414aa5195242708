"""The dialogue engine's glue: Rasa loaded in-process (``runtime``), its tracker store,
patches of Rasa internals (``tuning``), training with a data fingerprint
(``training``) and the custom NLU components (``components``, named by class path in
config.yml). Nothing about HTTP, channels or domain services belongs here."""
