"""Configuration, the lowest layer: typed settings from the environment, the dialogue's
tunables, service hours and the sentence-model spec. Pure values and their validation
only; nothing here reads the database, loads a model or imports another banshi package."""
