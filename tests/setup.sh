#!/usr/bin/env bash
# Install what the test suite needs on a fresh machine (idempotent; quick when all is there).
set -euo pipefail
need=()
for pkg_cmd in "zip:zip" "unzip:unzip" "p7zip-full:7z" "time:/usr/bin/time" "bc:bc" "curl:curl"; do
  pkg=${pkg_cmd%%:*}; cmd=${pkg_cmd#*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo is missing (install Rust with rustup)"; exit 1; }
rustup component add rustfmt clippy >/dev/null 2>&1 || true
echo "setup: ok"
# A full run needs room for several feature sets of test binaries; say so before a linker dies
# of a full disk half an hour in.
free_kb=$(df -Pk . | awk 'NR==2 {print $4}')
echo "setup: $((free_kb / 1024 / 1024)) GiB free on $(df -P . | awk 'NR==2 {print $6}')"
[ "$free_kb" -ge $((15 * 1024 * 1024)) ] || echo "setup: warning: less than 15 GiB free; the build may run out of disk"
