# banshi — two commands: `make run` (the whole assistant) and `make test` (everything tested).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_WARN_20 := 0
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export PYTHONWARNINGS := ignore::DeprecationWarning
RESULTS := results

.PHONY: run test setup train validate test-stories test-py bench bench-models clean

setup:
	@bash scripts/bootstrap.sh

train: setup
	$(BIN)/banshi kb validate
	$(BIN)/banshi train

run: train
	$(BIN)/banshi run

validate: train
	$(BIN)/rasa data validate --config config.yml --domain domain.yml --data nlu_data --fail-on-warnings

test-stories: train
	$(BIN)/rasa test core --model $$(ls -t models/banshi-*.tar.gz | head -1) \
	  --stories tests/stories --fail-on-prediction-errors --out $(RESULTS)/stories

# Twice: on SQLite (the default), then every test again on throw-away PostgreSQL and
# Redis servers (Debian's packages, started by tests/conftest.py).
test-py: train
	$(BIN)/python -m pytest -q
	BANSHI_TEST_BACKEND=postgresql $(BIN)/python -m pytest -q

test: validate test-stories test-py

bench: train
	$(BIN)/python bench/nlu.py
	$(BIN)/python bench/scenarios.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/assist.py
	$(BIN)/python bench/voice.py
	$(BIN)/python bench/wechat.py
	$(BIN)/python bench/analytics.py

# Slower: trains one model per sentence model, and five cross-validation folds.
bench-models: train
	$(BIN)/python bench/nlu_models.py
	$(BIN)/python bench/crossval.py

clean:
	rm -rf $(RESULTS) .pytest_cache
