#!/usr/bin/env bash
# What `make bench` needs, installed on a fresh machine (idempotent, quick when all is there):
# the Debian tools it compares against, the release binaries, the Python wheel, and a bench
# virtual environment (target/bench/venv) with the PyPI peers and matplotlib.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
need=()
for pkg_cmd in "zip:zip" "unzip:unzip" "p7zip-full:7z" "tar:tar" "findutils:find"; do
  pkg=${pkg_cmd%%:*}; cmd=${pkg_cmd#*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "bench setup: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  # Newer Debian names 7-Zip `7zip` (command 7zz); p7zip-full is the older package.
  if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null; then
    need=("${need[@]/p7zip-full/7zip}")
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi
echo "bench setup: release build of capsa and capsa_bench"
cargo build --release -q -p capsa-cli -p capsa-benches --bin capsa --bin capsa_bench --bin archive_fixture
# The wheel: rebuilt when a Rust or binding source is newer than it.
WHEEL=$(ls "$ROOT"/target/wheels/capsa-*.whl 2>/dev/null | head -1 || true)
if [ -z "$WHEEL" ] || [ -n "$(find core/src bindings-python/src bindings-python/python -newer "$WHEEL" -type f | head -1)" ]; then
  bash bindings-python/setup.sh wheel
  WHEEL=$(ls "$ROOT"/target/wheels/capsa-*.whl | head -1)
fi
VENV=$ROOT/target/bench/venv
PEERS=("fileseq>=2,<4" "pyseq>=0.8,<1" "clique>=1.6,<3" "matplotlib>=3.5,<4")
if [ ! -x "$VENV/bin/python" ]; then
  echo "bench setup: virtual environment in target/bench/venv"
  "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PEERS[@]}"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$WHEEL"
echo "bench setup: ok"
