# Two commands set up a fresh machine: `make run` and `make test`. Everything they install goes
# into this folder (.venv for Python tools, target/ for Rust), at the versions pinned here.

VENV := .venv
PYTHON := $(VENV)/bin/python
CARGO := cargo

.PHONY: run test build check e2e bench clean

$(VENV)/.installed: infra/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	touch $@

build:
	$(CARGO) build --workspace --locked

## The whole system on the local stack: API on 127.0.0.1:3000, AWS endpoint on 127.0.0.1:4566.
run: $(VENV)/.installed build
	$(PYTHON) -m infra.devstack up --seed infra/demo-data.json

## Every test: formatting, lints, unit and property tests, then end-to-end on the local stack.
test: check e2e

check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) test --workspace --locked

e2e: $(VENV)/.installed build
	$(PYTHON) -m pytest

## Benchmarks print figures; they are not pass/fail tests.
bench: $(VENV)/.installed build
	$(PYTHON) -m infra.bench.place_order
	$(PYTHON) -m infra.bench.relay

clean:
	rm -rf $(VENV) .local target
