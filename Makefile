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

# Kubernetes backend: its tests run under the test control plane (one thread: one test stops
# and restarts the API server). `make test` runs them after the other tests.
K8S_TEST_CMD = env CAPSA_K8S_TESTS=1 sh -c '$(CARGO) test -p capsa --features kubernetes \
	--test staging_kubernetes -- --test-threads=1 && $(CARGO) test -p capsa-cli \
	--test staging_kubernetes_cli'
test: test-k8s
