# Two commands set up a fresh machine: `make run` and `make test`. Everything they install goes
# into this folder (.venv for Python tools, target/ for Rust), at the versions pinned here.

VENV := .venv
PYTHON := $(VENV)/bin/python
CARGO := cargo
# SAM CLI, cargo-lambda and cfn-lint pin their own dependencies; they get a virtualenv of their own.
SAM_VENV := .venv-sam
# Through infra/sam_launcher.py: SAM CLI itself, without its weekly check of PyPI for a newer
# version (nothing the project runs talks to anything but 127.0.0.1).
SAM := PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/python -m infra.sam_launcher
# `sam build` here targets this machine's architecture; deployments default to arm64.
HOST_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
# One debug build serves the tests, the local stack and `sam build`: cargo lambda always names a
# target (its output goes to target/<triple>/), so every cargo command here names the same one,
# and `make sam-build` has cargo lambda build with plain cargo (CARGO_LAMBDA_COMPILER=cargo), not
# cargo-zigbuild, whose linker and C compiler would make a build of their own.
HOST_TRIPLE := $(if $(filter arm64,$(HOST_ARCH)),aarch64,x86_64)-unknown-linux-gnu
CARGO_TARGET := --target $(HOST_TRIPLE)

.PHONY: run test test-prerequisites test-build test-suites build browser check template-check sam-build sam-local sam-local-invoke e2e e2e-session-stack e2e-own-stacks soak soak-short bench bench-local-stack clean

# `make run PARAMS='QueueVisibilityTimeout=30'` overrides template parameters, as
# `sam deploy --parameter-overrides` does; `make run FAULTS='{"crashes": 0.05}'` starts with faults.
PARAMS ?=
FAULTS ?= {}
# `make soak ORDERS=N`: the size of the long soak, in requests.
ORDERS ?= 5000

$(VENV)/.installed: infra/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	touch $@

# checkov pins its own dependencies too: a virtualenv of its own.
CHECKOV_VENV := .venv-checkov
$(CHECKOV_VENV)/.installed: infra/requirements-checkov.txt
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-checkov.txt
	touch $@

$(SAM_VENV)/.installed: infra/requirements-sam.txt
	python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-sam.txt
	touch $@

build:
	$(CARGO) build --workspace --locked $(CARGO_TARGET)

# The console's one dependency, its chart library (uPlot), at the version package-lock.json pins.
CONSOLE_DIR := infra/devstack/console
$(CONSOLE_DIR)/node_modules/.installed: $(CONSOLE_DIR)/package-lock.json
	npm ci --prefix $(CONSOLE_DIR) --no-audit --no-fund --loglevel=error
	touch $@

## Debian's Chromium and ChromeDriver, for the console's browser test (tests/test_console.py),
## when they are missing and this user may install packages; else that test says it skipped, and why.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver \
		|| { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			chromium chromium-driver; } \
		|| echo "make browser: chromium could not be installed; the console's browser test will skip"; \
	else echo "make browser: chromium is missing and only root installs it; the console's browser test will skip"; fi

## The whole system on the local stack: API on 127.0.0.1:3000, AWS endpoint on 127.0.0.1:4566,
## the console on http://127.0.0.1:3999/console/ (the API allows its origin).
run: $(VENV)/.installed $(CONSOLE_DIR)/node_modules/.installed build
	$(PYTHON) -m infra.devstack --parameter-overrides "AllowLoopbackCallbacks=true CorsAllowedOrigins=http://localhost:5173,http://127.0.0.1:3999,http://localhost:3999 $(PARAMS)" up --demo-data infra/demo-data.json \
		--faults '$(FAULTS)'

## Every test: formatting, lints (ruff for the Python, mypy on devstack, clippy for the Rust), unit and property tests, the template checks, a `sam build`
## of every function, end-to-end on the local stack (sample events included), `sam local invoke`
## of every sample on what `sam build` made, a short soak.
test:
	$(MAKE) -j3 test-prerequisites
	$(MAKE) check sam-build build
	$(MAKE) -j2 --output-sync=line test-suites

## The suites, two at a time (`make -j2`), each on a local stack and ports of its own
## (`launcher.PORTS`): the end-to-end suite's session stack first, beside the end-to-end
## modules with stacks of their own, then `sam local`, the soak and the template checks as a
## slot frees. Most of each is waiting (warm, 175-188 s for all against about 300 s one after
## another). After `sam build` and `make build` only: cargo lambda moves the binaries the stacks
## run. Output by line, so that a suite that hangs is seen.
test-suites: e2e-session-stack e2e-own-stacks sam-local-invoke soak-short template-check

# End-to-end modules that start a stack of their own instead of the session's.
OWN_STACK_TESTS := tests/test_decision_deadline.py tests/test_iam_enforcement.py

## What the tests need, made side by side before they run: the tests' build (cargo, both cores)
## beside the Python tools (pip), the console's chart library and the browser; a fresh clone
## spends about 90 s in pip alone.
test-prerequisites: test-build $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed \
	$(CONSOLE_DIR)/node_modules/.installed browser

test-build:
	$(CARGO) test --workspace --locked $(CARGO_TARGET) --no-run

check: $(VENV)/.installed
	$(VENV)/bin/ruff check infra tests
	$(VENV)/bin/mypy
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked $(CARGO_TARGET) -- -D warnings
	$(CARGO) test --workspace --locked $(CARGO_TARGET)

## `sam validate` and `sam validate --lint` catch different mistakes; cfn-lint adds the
## serverless rules; checkov the security checks (offline: --skip-download). Suppressions are in
## template.yaml, each with its reason; a new finding fails the build.
template-check: $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed
	$(SAM) validate --region us-east-1
	$(SAM) validate --lint --region us-east-1
	$(SAM_VENV)/bin/cfn-lint template.yaml --append-rules cfn_lint_serverless.rules
	BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov -f template.yaml --framework cloudformation \
		--skip-download --compact --quiet

## Debug binaries for the host: CI checks the build works; `sam build` alone makes release ones
## (with cargo-zigbuild, for Lambda's glibc). These link against this machine's glibc: on Debian
## 12 they ask for GLIBC_2.34 at most (objdump -T), which Lambda's al2023 image has too. They
## reuse what `make check` built.
sam-build: $(SAM_VENV)/.installed
	SAM_BUILD_MODE=debug CARGO_LAMBDA_COMPILER=cargo $(SAM) build --parameter-overrides Architecture=$(HOST_ARCH)

## `sam local invoke` of every sample event in Lambda's container, against the local stack; it
## prepares a Docker daemon and base image in .local/docker when it can (root), else says so.
## `build` after `sam-build`: cargo lambda moves the binaries it built out of cargo's folder.
sam-local: sam-build build
	$(MAKE) sam-local-invoke

# `make sam-local` without building first: for `make test`, which has just built.
sam-local-invoke: $(VENV)/.installed
	$(PYTHON) -m infra.sam_local

e2e: $(VENV)/.installed $(CONSOLE_DIR)/node_modules/.installed browser build
	$(PYTHON) -m pytest

e2e-session-stack: $(VENV)/.installed $(CONSOLE_DIR)/node_modules/.installed browser build
	$(PYTHON) -m pytest -p no:cacheprovider $(addprefix --ignore=,$(OWN_STACK_TESTS))

# (Two pytest runs at once: neither writes .pytest_cache, which they would both rewrite.)
e2e-own-stacks: $(VENV)/.installed build
	$(PYTHON) -m pytest -p no:cacheprovider $(OWN_STACK_TESTS)

## The chaos soak: every fault on, validators stopped at random, then the invariant check.
soak: $(VENV)/.installed build
	$(PYTHON) -m infra.soak --orders $(ORDERS)

soak-short: $(VENV)/.installed build
	$(PYTHON) -m infra.soak --orders 300 --drain-seconds 150

## What an order costs in time, AWS requests, memory and money, each beside its limit, on a
## stack of its own running release builds: bench/results/latest.{json,md} and SVG charts.
## Figures, not pass/fail: it fails only when it cannot measure.
bench: $(VENV)/.installed
	$(CARGO) build --release --workspace --locked --bins
	target/release/bench

## The local stack's own speed: the emulator under the API, the relay, the whole flow.
bench-local-stack: $(VENV)/.installed build
	$(PYTHON) -m infra.bench.place_order
	$(PYTHON) -m infra.bench.relay
	$(PYTHON) -m infra.bench.flow
	$(PYTHON) -m infra.bench.replica_lag
	$(PYTHON) -m infra.bench.waiting_load

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .local .aws-sam target $(CONSOLE_DIR)/node_modules
