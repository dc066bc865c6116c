#!/bin/sh
# Fails when the shared library exports a symbol that is neither capsa_* (the C ABI) nor one
# of the cxx bridge's own (`capsa$cxxbridge1$...` for our bridge, `cxxbridge1$...` for cxx's
# runtime: String, Vec, Box, exceptions).
set -eu
lib=$1
all=$(nm -D --defined-only "$lib" | awk '{print $3}')
n=$(printf '%s\n' "$all" | grep -c '^capsa_' || true)
bad=$(printf '%s\n' "$all" | grep -v -E '^(capsa_|capsa\$cxxbridge1\$|cxxbridge1\$)' | grep -v '^$' || true)
if [ -n "$bad" ]; then
  echo "unexpected exported symbols in $lib:"
  printf '%s\n' "$bad"
  exit 1
fi
if [ "$n" -lt 40 ]; then
  echo "only $n capsa_ symbols exported from $lib"
  exit 1
fi
echo "ok: $n capsa_ symbols, nothing else but cxx's"
