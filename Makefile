# The two commands a newcomer needs: `make demo` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
OUT    ?= out

.PHONY: all venv tools report-tools bmc-tools catalogs demo test test-fast lint bench clean

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)

## tools: build the pinned Pulumi engine, kubernetes plugin, kube binaries, etcd, kwok (cached)
tools: venv
	$(BIN)/sovereign tools install

## report-tools: Debian packages the report needs: headless Chromium (PDF, the browser tests),
## poppler-utils (pdftotext/pdfinfo in the tests), Noto fonts (Devanagari, Arabic)
REPORT_PACKAGES := chromium poppler-utils fonts-noto-core
report-tools:
	@dpkg -s $(REPORT_PACKAGES) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" != 0 ]; then echo "report-tools: as root, install: $(REPORT_PACKAGES)" >&2; exit 3; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(REPORT_PACKAGES); }

## bmc-tools: Debian's xorriso, which packs the lab's install media and the nodes' seed ISOs
BMC_PACKAGES := xorriso
bmc-tools:
	@dpkg -s $(BMC_PACKAGES) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" != 0 ]; then echo "bmc-tools: as root, install: $(BMC_PACKAGES)" >&2; exit 3; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(BMC_PACKAGES); }

## catalogs: merge new report strings into every language's .po (then translate; a test checks)
catalogs: venv
	$(BIN)/python -m report.catalogs update

## demo: the main job on the embedded lab — plans and reports of every example country, the lab
## (Kubernetes with 64 simulated GPU nodes, the chart mirror, 3 Debian nodes), the staging stack with
## its platform layer (GPU/Network Operator, monitoring, tenants, policies) applied by the real
## engine, what the country must mirror, the lab's nodes configured and verified
DEMO_STACK ?= ke-staging
demo: tools report-tools
	$(BIN)/sovereign validate countries/Pulumi.*.yaml
	$(BIN)/sovereign fleet countries
	for f in countries/Pulumi.*.yaml; do $(BIN)/sovereign plan $$f --out $(OUT) > /dev/null || exit $$?; done
	for f in countries/Pulumi.*.yaml; do $(BIN)/sovereign report $$f --out $(OUT) > /dev/null || exit $$?; done
	$(BIN)/sovereign lab up --stack $(DEMO_STACK) --gpu-nodes 64 --nodes 3
	$(BIN)/sovereign up $(DEMO_STACK) --lab default --allow-unapproved
	$(BIN)/sovereign artifacts $(DEMO_STACK) --lab default --allow-unapproved
	$(BIN)/sovereign configure $(DEMO_STACK) --lab default
	$(BIN)/sovereign verify $(DEMO_STACK) --lab default
	@echo
	@echo "plans, reports: $(OUT)/<stack>/plan.{json,txt}, $(OUT)/<stack>/report.<lang>.{html,pdf}"
	@echo "lab:            sovereign lab status   (kubeconfig: ~/.local/state/sovereign/lab/default/kube/kubeconfig)"
	@echo "stack:          sovereign preview $(DEMO_STACK) --lab default --allow-unapproved --expect-no-changes"
	@echo "by hand:        eval \"\$$(.venv/bin/sovereign tools env --lab default --allow-unapproved)\"; pulumi stack output -s $(DEMO_STACK)"
	@echo "tear down:      sovereign destroy $(DEMO_STACK) --lab default --yes; sovereign lab down"

## test: every tier — fast tests, then the real lab tier (LXC nodes over SSH; needs root)
test: tools report-tools bmc-tools
	$(BIN)/python -m pytest -q --durations=30

## test-fast: the fast tier only (no lab)
test-fast: venv report-tools bmc-tools
	$(BIN)/python -m pytest -q -m "not lab"

## lint: ruff and mypy (also run by the tests)
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: venv
	$(BIN)/python benchmarks/plan_fleet.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .hypothesis
