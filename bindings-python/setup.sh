#!/usr/bin/env bash
# The Python binding's build and test steps, called by `make wheel` and `make test-python`.
# Installs everything it needs itself (a fresh virtual environment from PyPI) so it works on
# a fresh clone on a fresh machine.
#
#   bash bindings-python/setup.sh wheel   build the abi3 wheel into target/wheels/
#   bash bindings-python/setup.sh test    fresh venv, wheel, install, ruff, mypy --strict, pytest
#   bash bindings-python/setup.sh check   the test steps again, against the wheel already built
#   bash bindings-python/setup.sh bench   wheel + fileseq from PyPI, then benches/python/bench_binding.py
#   bash bindings-python/setup.sh k8s     pytest bindings-python/tests_k8s against the wheel already
#                                         built, under tests/k8s/with-control-plane.sh (make test-k8s)
#
# PYTHON picks the interpreter (default: python3, which must be 3.9 or newer).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
VENV=$ROOT/target/py-venv
WHEELS=$ROOT/target/wheels
# The tools, pinned below the next major so a release elsewhere cannot break CI overnight.
TOOLS=("maturin>=1.9,<2" "pytest>=8,<10" "mypy>=1.10,<3" "ruff>=0.6,<1" "typing_extensions>=4.6")

log() { echo "setup.sh: $*"; }

check_python() {
  command -v "$PYTHON" >/dev/null || { log "no $PYTHON on this machine (set PYTHON=...)"; exit 1; }
  "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' ||
    { log "$PYTHON is older than 3.9"; exit 1; }
  "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || {
    log "installing python3-venv"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
  }
}

fresh_venv() {
  check_python
  log "fresh virtual environment in target/py-venv ($("$PYTHON" --version))"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${TOOLS[@]}"
}

ensure_venv() {
  if [ ! -x "$VENV/bin/maturin" ]; then fresh_venv; fi
}

build_wheel() {
  mkdir -p "$WHEELS"
  rm -f "$WHEELS"/capsa-*.whl
  log "maturin build (profile 'wheel': optimised release build, abi3)"
  (cd bindings-python &&
    "$VENV/bin/maturin" build --profile wheel --out "$WHEELS" --interpreter "$VENV/bin/python")
  WHEEL=$(ls "$WHEELS"/capsa-*.whl)
  case "$(basename "$WHEEL")" in
    *-cp39-abi3-*.whl) log "wheel: $(basename "$WHEEL") (tag cp39-abi3)" ;;
    *) log "wrong wheel tag: $(basename "$WHEEL") (expected cp39-abi3)"; exit 1 ;;
  esac
}

run_tests() {
  local py=$VENV/bin/python
  "$py" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$WHEEL"
  log "ruff"
  "$VENV/bin/ruff" check --config bindings-python/pyproject.toml \
    bindings-python/python bindings-python/tests bindings-python/tests_k8s examples/python \
    benches/python benches/report
  log "mypy --strict (examples, tests, the installed package and its stubs)"
  local mypy=("$VENV/bin/mypy" --strict --config-file "$ROOT/bindings-python/pyproject.toml")
  (cd "$ROOT/target" && "${mypy[@]}" -p capsa)
  "${mypy[@]}" examples/python bindings-python/tests benches/python
  "${mypy[@]}" bindings-python/tests_k8s
  log "stubtest (the stubs match the compiled module)"
  (cd "$ROOT/target" && "$py" -m mypy.stubtest capsa --ignore-disjoint-bases \
    --allowlist "$ROOT/bindings-python/stubtest-allowlist.txt")
  log "pytest"
  (cd "$ROOT" && "$py" -m pytest -q bindings-python/tests)
  oldest_python
}

# The same wheel on the oldest CPython it claims (3.9): the abi3 promise checked, not assumed.
# A machine without a 3.9 fails here, naming how to provide one (CAPSA_PYTHON39=/path/python3.9).
oldest_python() {
  local py39=""
  if [ -n "${CAPSA_PYTHON39:-}" ]; then
    py39=$CAPSA_PYTHON39
  elif command -v python3.9 >/dev/null 2>&1 && python3.9 -c '' 2>/dev/null; then
    py39=$(command -v python3.9)
  elif command -v pyenv >/dev/null 2>&1; then
    local prefix
    prefix=$(pyenv prefix "$(pyenv versions --bare 2>/dev/null | grep -E '^3\.9(\.|$)' | tail -1)" 2>/dev/null || true)
    [ -n "$prefix" ] && [ -x "$prefix/bin/python3" ] && py39=$prefix/bin/python3
  fi
  if [ -z "$py39" ]; then
    log "error: no CPython 3.9 found (python3.9 on PATH, a pyenv 3.9.x, or CAPSA_PYTHON39)."
    log "The README promises every CPython from 3.9 on; install one (e.g. 'pyenv install 3.9')"
    log "or point CAPSA_PYTHON39 at its python3 binary, then run make test again."
    exit 1
  fi
  log "pytest again on $("$py39" --version) (the same cp39-abi3 wheel)"
  local venv39=$ROOT/target/py-venv-39
  rm -rf "$venv39"
  "$py39" -m venv "$venv39"
  "$venv39/bin/python" -m pip install -q --disable-pip-version-check "pytest>=8,<9"
  "$venv39/bin/python" -m pip install -q --disable-pip-version-check --no-deps "$WHEEL"
  (cd "$ROOT" && "$venv39/bin/python" -m pytest -q bindings-python/tests)
}

# The Kubernetes tests (bindings-python/tests_k8s): they need the test control plane, which
# `make test-k8s` starts (and it builds the wheel first, with `make wheel`).
run_k8s() {
  local py=$VENV/bin/python
  WHEEL=$(ls "$WHEELS"/capsa-*-cp39-abi3-*.whl 2>/dev/null) ||
    { log "no wheel in target/wheels: run 'make wheel' first"; exit 1; }
  "$py" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$WHEEL"
  log "pytest bindings-python/tests_k8s (KUBECONFIG=${KUBECONFIG:-unset})"
  (cd "$ROOT" && "$py" -m pytest -q bindings-python/tests_k8s)
}

run_bench() {
  local py=$VENV/bin/python
  "$py" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$WHEEL"
  "$py" -m pip install -q --disable-pip-version-check "fileseq>=1.15,<3"
  (cd "$ROOT/target" && "$py" "$ROOT/benches/python/bench_binding.py")
}

case "${1:-}" in
  wheel) ensure_venv; build_wheel ;;
  test) fresh_venv; build_wheel; run_tests ;;
  check) ensure_venv; WHEEL=$(ls "$WHEELS"/capsa-*-cp39-abi3-*.whl); run_tests ;;
  bench) ensure_venv; build_wheel; run_bench ;;
  k8s) run_k8s ;;
  *) echo "usage: $0 wheel|test|check|bench|k8s" >&2; exit 2 ;;
esac
