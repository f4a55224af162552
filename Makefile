# Two commands set up a fresh machine: `make run` and `make test`. Everything they install goes
# into this folder (.venv for Python tools, target/ for Rust), at the versions pinned here.

VENV := .venv
PYTHON := $(VENV)/bin/python
CARGO := cargo
# SAM CLI, cargo-lambda and cfn-lint pin their own dependencies; they get a virtualenv of their own.
SAM_VENV := .venv-sam
SAM := PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam
# `sam build` here targets this machine's architecture; deployments default to arm64.
HOST_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)

.PHONY: run test build check template-check sam-build e2e bench clean

$(VENV)/.installed: infra/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	touch $@

$(SAM_VENV)/.installed: infra/requirements-sam.txt
	python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-sam.txt
	touch $@

build:
	$(CARGO) build --workspace --locked

## The whole system on the local stack: API on 127.0.0.1:3000, AWS endpoint on 127.0.0.1:4566.
run: $(VENV)/.installed build
	$(PYTHON) -m infra.devstack up --seed infra/demo-data.json

## Every test: formatting, lints, unit and property tests, the template checks, a `sam build`
## of every function, then end-to-end on the local stack (sample events included).
test: check template-check sam-build e2e

check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) test --workspace --locked

## `sam validate` and `sam validate --lint` catch different mistakes; cfn-lint adds the
## serverless rules. Suppressions are in template.yaml, each with its reason.
template-check: $(SAM_VENV)/.installed
	$(SAM) validate --region us-east-1
	$(SAM) validate --lint --region us-east-1
	$(SAM_VENV)/bin/cfn-lint template.yaml --append-rules cfn_lint_serverless.rules

## Debug binaries for the host: CI checks the build works; `sam build` alone makes release ones.
sam-build: $(SAM_VENV)/.installed
	SAM_BUILD_MODE=debug $(SAM) build --parameter-overrides Architecture=$(HOST_ARCH)

e2e: $(VENV)/.installed build
	$(PYTHON) -m pytest

## Benchmarks print figures; they are not pass/fail tests.
bench: $(VENV)/.installed build
	$(PYTHON) -m infra.bench.place_order
	$(PYTHON) -m infra.bench.relay

clean:
	rm -rf $(VENV) $(SAM_VENV) .local .aws-sam target
