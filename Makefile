# Two commands on a fresh machine: `make demo` and `make test`. Each installs what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
# jsii warns that Node 20 is past end-of-life; the CDK CLI and jsii still work with it, so the banner is muted.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export GIT_PYTHON_REFRESH := quiet
# Test processes (pytest-xdist): one per core of the 2-core machine `make test` is budgeted on. Whole files go to one
# process (`--dist loadfile`), so a module's fixtures (a sandbox, a synthesized template) are built once.
TEST_WORKERS ?= 2
PYTEST := pytest -n $(TEST_WORKERS) --dist loadfile

.PHONY: help wheelhouse deps test lint security unit integration infra reliability demo sandbox synth deploy lock bench docs clean

help:
	@echo "make demo    - train a few models in the local sandbox and watch them get registered"
	@echo "make test    - lint, type-check and run every test suite (unit, integration, infrastructure)"
	@echo "make reliability - fault, crash, load and hostile-input scenarios in fresh sandboxes (~45 min); reports/reliability.json"
	@echo "make sandbox - run the local sandbox until Ctrl-C"
	@echo "make synth   - synthesize the CloudFormation template (cdk-nag runs on every synth)"
	@echo "make deploy  - cdk deploy --all with the context in cdk.json (see README, Deploying)"
	@echo "make bench   - measure cold start, latency, throughput, MLflow requests, backfill, proof and bundle sizes (~1.5 h at the defaults; python -m bench --backfill-models 500 is shorter)"
	@echo "make docs    - regenerate docs/alarms.md (the alarm runbook) from stacks/alarms.py"
	@echo "make wheelhouse - download the dev venv's packages into .cache/wheelhouse for offline model-proof tests"
	@echo "make lock    - re-pin functions/requirements.lock (the Lambda bundle) after editing functions/requirements.txt"

$(VENV)/.installed: requirements.txt requirements-dev.txt functions/requirements-sagemaker.lock
	@command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 python3-venv python3-pip; }
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@# Beside the venv, not in it: the plugin would log a warning on every non-SageMaker MLflow request (see the file).
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --upgrade --target $(VENV)/plugins/sagemaker-mlflow \
		-r functions/requirements-sagemaker.lock
	@touch $@

node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

deps: $(VENV)/.installed node_modules/.installed

lint: $(VENV)/.installed
	ruff check .
	ruff format --check .
	mypy

# bandit: findings are fixed or carry `# nosec Bxxx: reason`. pip-audit: each pinned file on its own (the two
# files pin some packages twice); it fails on any known vulnerability in a pin.
security: $(VENV)/.installed
	bandit -r functions stacks replay sandbox ops reliability -q
	pip-audit --no-deps --disable-pip --progress-spinner off -r requirements.txt
	pip-audit --no-deps --disable-pip --progress-spinner off -r functions/requirements.lock

test: deps lint security
	$(PYTEST)

reliability: $(VENV)/.installed
	python -m reliability

unit: $(VENV)/.installed
	$(PYTEST) tests/unit

integration: $(VENV)/.installed
	$(PYTEST) tests/integration

infra: deps
	$(PYTEST) tests/infrastructure

demo: $(VENV)/.installed
	python -m demo

sandbox: $(VENV)/.installed
	python -m sandbox

synth: deps
	cdk synth --all

deploy: deps
	cdk deploy --all --strict

bench: deps wheelhouse
	python -m bench

lock: $(VENV)/.installed
	python -m stacks.bundling

# The runbook is generated from the alarm texts the stack uses; tests/infrastructure/test_runbook.py fails when stale.
docs: $(VENV)/.installed
	python -m stacks.runbook > docs/alarms.md.tmp && mv docs/alarms.md.tmp docs/alarms.md

# The packages a model logged with the dev venv declares (its pins, plus the build tools MLflow's python_env.yaml
# names), for proofs that build the model's environment offline (tests/integration/test_proof.py). ~190 MB.
WHEELHOUSE := .cache/wheelhouse
wheelhouse: $(WHEELHOUSE)/.complete
$(WHEELHOUSE)/.complete: $(VENV)/.installed
	@mkdir -p $(WHEELHOUSE)
	$(PY) -m pip freeze --exclude-editable | grep -v ' @ ' > $(WHEELHOUSE)/constraints.txt
	$(PY) -m pip download -q -d $(WHEELHOUSE) -c $(WHEELHOUSE)/constraints.txt mlflow scikit-learn rich
	$(PY) -m pip download -q -d $(WHEELHOUSE) --no-deps pip==23.2.1 setuptools==65.5.0 wheel
	@touch $@

clean:
	rm -rf cdk.out .sandbox .pytest_cache .ruff_cache .mypy_cache
