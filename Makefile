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

# --- C and C++ bindings (bindings-c): `make install-c PREFIX=DIR`, `make test-c` ---
.PHONY: setup-c install-c test-c
PREFIX ?= /usr/local
setup-c:
	bash bindings-c/scripts/setup.sh

install-c: setup-c
	cmake -S bindings-c -B target/cmake-c/release -DCAPSA_CARGO_PROFILE=release -DCMAKE_BUILD_TYPE=Release -DCAPSA_BUILD_TESTS=OFF
	cmake --build target/cmake-c/release -j2
	cmake --install target/cmake-c/release --prefix "$(PREFIX)"

test-c: setup-c
	bash bindings-c/scripts/test-c.sh

# capsa-c's build needs a C++ compiler (cxx), so lint and the Rust tests come after setup-c.
lint test-rust: setup-c
test: test-c
# --- end C and C++ bindings ---
