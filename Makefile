# capsa — the two commands a newcomer runs: `make demo` and `make test`.
SHELL := bash
CARGO ?= cargo
# A clean build gains nothing from incremental state (gigabytes under target/); set
# CARGO_INCREMENTAL=1 in a working shell to keep it.
export CARGO_INCREMENTAL ?= 0

include tests/k8s/k8s.mk

.PHONY: demo test lint setup test-rust test-postgres bench bench-criterion bench-readme build help fuzz

help:
	@echo "make demo   - build and run the tour through a temporary store"
	@echo "make test   - install what the tests need, lint, run every test"
	@echo "make bench  - capsa against zip, find, fileseq...: target/bench/report.md (QUICK=1: small sizes)"
	@echo "make fuzz   - every property-based fuzz target for FUZZ_SECS seconds each (default 60), fresh seeds"

build:
	$(CARGO) build -p capsa-cli

demo: build
	bash examples/demo/demo.sh target/debug/capsa

setup:
	bash tests/setup.sh

# The second clippy also lints the suites built only under a server (PostgreSQL, MinIO, the
# control plane).
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p capsa -p capsa-cli --all-targets \
	  --features capsa/kubernetes-tests,capsa/postgres-tests,capsa/s3-tests,capsa-cli/kubernetes-tests,capsa-cli/postgres-tests,capsa-cli/s3-tests \
	  -- -D warnings

test-rust:
	$(CARGO) test --workspace

# The property-based fuzz targets (core/tests/fuzz_*.rs, harness core/tests/fuzz_support):
# `make test` runs each once with a fixed seed; `make fuzz` runs each for FUZZ_SECS seconds in
# a release build, starting from FUZZ_SEED (default: the time), and prints its cases per second.
FUZZ_SECS ?= 60
FUZZ_SEED ?= $(shell date +%s)
fuzz:
	CAPSA_FUZZ_SECS=$(FUZZ_SECS) CAPSA_FUZZ_SEED=$(FUZZ_SEED) $(CARGO) test -p capsa --release \
	  --test 'fuzz_*' -- --test-threads=1 --nocapture
	CAPSA_FUZZ_SECS=$(FUZZ_SECS) CAPSA_FUZZ_SEED=$(FUZZ_SEED) $(CARGO) test -p capsa-server --release \
	  --test 'fuzz_*' -- --test-threads=1 --nocapture

# The staging suite on PostgreSQL (a throwaway server: tests/postgres/with-postgres.sh), plus
# the suites built only for a server (feature postgres-tests): several processes, a crash, the CLI.
test-postgres:
	bash tests/postgres/with-postgres.sh bash -c '\
	  $(CARGO) test -p capsa --features postgres-tests --test staging_lifecycle \
	    --test staging_model --test staging_script --test staging_transitions \
	    --test staging_postgres --test staging_postgres_crash --test staging_secrets --test staging_race \
	    --test staging_updater && \
	  $(CARGO) test -p capsa-cli --features postgres-tests --test staging_cli --test staging_updater_cli postgres && \
	  $(CARGO) test -p capsa-cli --features postgres-tests --test serve_replicas'

# Archives in an S3-compatible bucket, against a real MinIO server (built once per machine from
# the Go module proxy into ~/.cache/capsa/minio/, started on loopback with a temporary data
# directory by tests/minio/with-minio.sh, stopped afterwards). One thread: a test stops and
# restarts the server. Short retry limits so the stopped-server test fails fast.
.PHONY: test-s3
test-s3:
	CAPSA_S3_MAX_RETRIES=3 CAPSA_S3_RETRY_TIMEOUT=20 bash tests/minio/with-minio.sh bash -c '\
	  $(CARGO) test -p capsa --features s3-tests --test archive_s3 -- --test-threads=1 && \
	  $(CARGO) test -p capsa-cli --features s3-tests --test archive_s3_cli -- --test-threads=1'

test: setup lint test-rust test-postgres test-s3 test-node

# The server's OpenAPI document (server/openapi.json, kept equal to the served one by
# server/tests/openapi.rs) checked by a real validator from PyPI, in its own venv.
OPENAPI_VALIDATOR ?= openapi-spec-validator==0.9.0
.PHONY: test-openapi
test-openapi:
	python3 -m venv target/openapi-venv
	target/openapi-venv/bin/pip install -q --disable-pip-version-check '$(OPENAPI_VALIDATOR)'
	target/openapi-venv/bin/openapi-spec-validator server/openapi.json
test: test-openapi

# `make bench`: one report comparing capsa with the tools people use today
# (target/bench/report.md, report.json, *.png). QUICK=1 runs the same code on small sizes.
# `make bench-readme` copies the report's figures into README.md's Performance section.
QUICK ?=
bench:
	bash benches/report/setup.sh
	QUICK=$(QUICK) target/bench/venv/bin/python benches/report/run.py

# capsa serve under wrk (Debian's): GET latest against a bare axum handler, create-and-wait,
# one change fanned out to 1,000 WebSockets; target/bench/serve.json and a table on stdout.
.PHONY: bench-serve
bench-serve:
	command -v wrk >/dev/null || { sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && $$sudo apt-get install -y -qq wrk; }
	$(CARGO) build --release -p capsa-cli --bin capsa
	$(CARGO) build --release -p capsa-benches --bin serve_bench
	target/release/serve_bench target/release/capsa target/bench/serve.json
bench: bench-serve

bench-readme:
	python3 benches/report/readme.py

# The criterion micro-benches and the archive memory/throughput scripts.
bench-criterion:
	$(CARGO) bench -p capsa-benches
	bash benches/archive_memory.sh
	bash benches/archive_compare.sh

# ---- Python binding (bindings-python/): steps in bindings-python/setup.sh ----
.PHONY: wheel test-python bench-python
wheel:          ## the abi3 wheel (cp39-abi3) into target/wheels/
	bash bindings-python/setup.sh wheel

test-python:    ## fresh venv in target/py-venv, wheel, ruff, mypy --strict, stubtest, pytest
	bash bindings-python/setup.sh test

bench-python:   ## per-call cost of the binding, sequences_in against fileseq
	bash bindings-python/setup.sh bench

test: test-python
bench-criterion: bench-python
# --- Node binding (bindings-node/, npm package `capsa`) ---------------------------------------
# `make node` installs the npm tools (@napi-rs/cli, typescript) from the lockfile and builds the
# addon in place, so `require('./bindings-node')` works; `make test-node` also type-checks the
# examples (tsc --strict) and runs the Node tests and the conformance scenarios (node --test).
# `npm install --no-save` rather than `npm ci`: npm 11 records only this platform's optional
# packages of @napi-rs/cli's dependencies, which `npm ci` then reports as missing.
NPM ?= npm
.PHONY: node test-node bench-node
node:
	cd bindings-node && $(NPM) install --no-audit --no-fund --no-save
	cd bindings-node && $(NPM) run build:debug

# Under a throw-away PostgreSQL server, so that the postgres:// test runs (it skips only when
# started by hand without CAPSA_TEST_POSTGRES_URL).
test-node: node
	cd bindings-node && $(NPM) run typecheck
	cd bindings-node && bash ../tests/postgres/with-postgres.sh $(NPM) test

bench-node:
	cd bindings-node && $(NPM) install --no-audit --no-fund --no-save
	cd bindings-node && $(NPM) run build && $(NPM) run bench
# --- C and C++ bindings (bindings-c): `make install-c PREFIX=DIR`, `make test-c` ---
.PHONY: setup-c install-c test-c
PREFIX ?= /usr/local
setup-c:
	bash bindings-c/scripts/setup.sh

install-c: setup-c
	cmake -S bindings-c -B target/cmake-c/release -DCAPSA_CARGO_PROFILE=release -DCMAKE_BUILD_TYPE=Release -DCAPSA_BUILD_TESTS=OFF
	cmake --build target/cmake-c/release -j2
	cmake --install target/cmake-c/release --prefix "$(PREFIX)"

# The C++ bridge (feature cpp, which needs a C++ compiler) is linted here, after setup-c; `make
# lint` and `make test-rust` build capsa-c without it.
test-c: setup-c
	$(CARGO) clippy -p capsa-c --all-targets --features cpp -- -D warnings
	bash bindings-c/scripts/test-c.sh

# Regenerate include/capsa.h from the sources (the header drift test only compares).
.PHONY: bless-header
bless-header:
	$(CARGO) run -q -p capsa-c --example bless_header

test: test-c
# --- end C and C++ bindings ---
# Kubernetes backend: its tests run under the test control plane (one thread: one test stops
# and restarts the API server). `make test` runs them after the other tests. The bindings'
# Kubernetes tests (bindings-python/tests_k8s, bindings-node/k8s-test, the C/C++ ctest label
# `k8s`) use the bindings built before the control plane starts (`wheel`, `node`,
# `k8s-build-c`: no-ops when test-python, test-node and test-c have just built them), and the
# stacks suite the `helm` that tests/helm/build.sh built.
K8S_TEST_CMD = sh -c 'CAPSA_HELM=$$(bash tests/helm/build.sh) $(CARGO) test -p capsa \
	--features kubernetes-tests --test staging_kubernetes --test staging_kubernetes_stacks && \
	$(CARGO) test -p capsa-cli \
	--features kubernetes-tests --test staging_kubernetes_cli && \
	bash bindings-python/setup.sh k8s && (cd bindings-node && $(NPM) run test:k8s) && \
	bash bindings-c/scripts/test-k8s.sh run'
.PHONY: k8s-build-c
k8s-build-c: setup-c
	bash bindings-c/scripts/test-k8s.sh build
# helm for the chart templates: built once per machine from the Go module proxy
# (~/.cache/capsa/helm/), like kube-apiserver and MinIO.
.PHONY: helm
helm:
	bash tests/helm/build.sh
test-k8s: wheel node k8s-build-c helm
test: test-k8s
