# The two commands a newcomer needs: `make demo` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
OUT    ?= out

.PHONY: all venv demo test test-fast lint bench clean

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)

## demo: validate and plan every example country, plans written to $(OUT)/
demo: venv
	$(BIN)/sovereign validate countries/Pulumi.*.yaml
	$(BIN)/sovereign fleet countries
	for f in countries/Pulumi.*.yaml; do $(BIN)/sovereign plan $$f --out $(OUT) > /dev/null || exit $$?; done
	@echo "plans written to $(OUT)/<stack>/plan.{json,txt}"

## test: every tier — fast tests, then the real lab tier (LXC nodes over SSH; needs root)
test: venv
	$(BIN)/python -m pytest -q

## test-fast: the fast tier only (no lab)
test-fast: venv
	$(BIN)/python -m pytest -q -m "not lab"

## lint: ruff and mypy (also run by the tests)
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: venv
	$(BIN)/python benchmarks/plan_fleet.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .hypothesis
