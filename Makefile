# Two commands get a newcomer from zero to results: `make quickstart` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: install quickstart test lint typecheck unit soak clean

# Install output is what a user needs: one line saying what is happening, then pip's errors if any.
# torch is pinned to the CPU wheel first so nothing resolves a CUDA build.
$(STAMP): pyproject.toml
	@echo "installing clinrlhf and its dependencies into $(VENV) (a few minutes the first time)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(PIP) install --upgrade pip
	@$(PIP) install torch==2.13.0
	@$(PIP) install -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

quickstart: install
	$(BIN)/clinrlhf quickstart

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -m "not slow"

test: install lint typecheck
	$(BIN)/pytest

# The long reliability runs (docs/reliability.md): 20,000 feedback entries under load, a crash and a
# database restart mid-load, and more fuzzing. PostgreSQL runs need CLINRLHF_TEST_POSTGRES_URL, or
# initdb for the restart; without them those runs are skipped.
soak: install
	CLINRLHF_SOAK=1 $(BIN)/pytest tests/services/reliability -m soak
	CLINRLHF_FUZZ_EXAMPLES=200 $(BIN)/pytest tests/services/reliability/test_schemathesis.py

clean:
	rm -rf $(VENV) .clinrlhf .pytest_cache .mypy_cache .ruff_cache
