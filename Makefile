# capsa — the two commands a newcomer runs: `make demo` and `make test`.
SHELL := bash
CARGO ?= cargo

.PHONY: demo test lint setup test-rust test-postgres bench build help

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

# The staging suite on PostgreSQL (a throwaway server: tests/postgres/with-postgres.sh), plus
# the tests that need a server (ignored without one): several processes, a crash, the CLI.
test-postgres:
	bash tests/postgres/with-postgres.sh bash -c '\
	  $(CARGO) test -p capsa --features postgres --test "staging_*" -- --include-ignored && \
	  $(CARGO) test -p capsa-cli --test staging_cli -- --include-ignored postgres'

test: setup lint test-postgres test-rust

bench:
	$(CARGO) bench -p capsa-benches
