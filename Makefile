# capsa — the two commands a newcomer runs: `make demo` and `make test`.
SHELL := bash
CARGO ?= cargo

include tests/k8s/k8s.mk

.PHONY: demo test lint setup test-rust bench build help

help:
	@echo "make demo   - build and run the tour through a temporary store"
	@echo "make test   - install what the tests need, lint, run every test"
	@echo "make bench  - run the benches"

build:
	$(CARGO) build -p capsa-cli

demo: build
	bash examples/demo/demo.sh target/debug/capsa

setup:
	bash tests/setup.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test-rust:
	$(CARGO) test --workspace

test: setup lint test-rust

bench:
	$(CARGO) bench -p capsa-benches

# ---- Python binding (bindings-python/): steps in bindings-python/setup.sh ----
.PHONY: wheel test-python bench-python
wheel:          ## the abi3 wheel (cp39-abi3) into target/wheels/
	bash bindings-python/setup.sh wheel

test-python:    ## fresh venv in target/py-venv, wheel, ruff, mypy --strict, stubtest, pytest
	bash bindings-python/setup.sh test

bench-python:   ## per-call cost of the binding, sequences_in against fileseq
	bash bindings-python/setup.sh bench

test: test-python
bench: bench-python
