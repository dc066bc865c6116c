#!/usr/bin/env bash
# `make test-c`: the whole C/C++ check, as CI runs it.
#  1. cargo test -p capsa-c --features cpp (the header drift check: include/capsa.h == a fresh
#     cbindgen run; the C++ bridge's Rust side)
#  2. CMake build of bindings-c, ctest: header compiles (C99 pedantic, C++17), C tests (shared
#     and static), C tests under valgrind, exported-symbol check, C++ tests, C++ conformance
#     (not the `k8s` label: bindings-c/scripts/test-k8s.sh runs it under the control plane)
#  3. install into a temporary prefix, then build examples/cpp-plugin-host against the
#     INSTALLED package with find_package(capsa CONFIG), with the default libstdc++ ABI and
#     with -D_GLIBCXX_USE_CXX11_ABI=0, and run both; build a C program with pkg-config.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
cargo=${CARGO:-cargo}
profile=${CAPSA_CARGO_PROFILE:-dev}
build=$root/target/cmake-c/$profile

echo "== cargo test -p capsa-c --features cpp"
$cargo test -p capsa-c --features cpp

echo "== cmake build + ctest ($profile)"
cmake -S bindings-c -B "$build" -DCAPSA_CARGO_PROFILE="$profile" -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j2
(cd "$build" && ctest --output-on-failure -LE k8s)

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
echo "== install into $prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null

for abi in 1 0; do
  echo "== examples/cpp-plugin-host against the installed package (_GLIBCXX_USE_CXX11_ABI=$abi)"
  cmake -S examples/cpp-plugin-host -B "$tmp/host-$abi" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_CXX_FLAGS="-D_GLIBCXX_USE_CXX11_ABI=$abi" >/dev/null
  cmake --build "$tmp/host-$abi" -j2
  "$tmp/host-$abi/capsa-plugin-host" "$tmp/show-$abi" | tee "$tmp/host-$abi.out"
  grep -q "published v001" "$tmp/host-$abi.out"
  grep -q "staging event: review-v001 CreatePending -> Running" "$tmp/host-$abi.out"
done

echo "== a C program built with pkg-config against the installed package"
cat > "$tmp/pc.c" <<'C'
#include <capsa.h>
#include <stdio.h>
int main(void) {
  capsa_store *s = NULL;
  if (capsa_store_open("/nonexistent", &s) != CAPSA_STATUS_INVALID_STORE &&
      capsa_last_error_code() != CAPSA_STATUS_IO) {
    return 1;
  }
  printf("capsa %s via pkg-config: %s\n", capsa_version(), capsa_last_error_message());
  return 0;
}
C
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
gcc -std=c99 -Wall -Wextra -Werror -pedantic "$tmp/pc.c" -o "$tmp/pc" $(pkg-config --cflags --libs capsa) \
  -Wl,-rpath,"$prefix/lib"
"$tmp/pc"
echo "== the README's C and C++ examples, against the installed package"
awk '/^## C and C\+\+/{on=1} on&&/^## Layout/{on=0} on' README.md > "$tmp/readme.md"
awk '/^```c$/{f=1;next} /^```/{f=0} f' "$tmp/readme.md" | sed "s|/tmp/show|$tmp/readme-show|" > "$tmp/readme.c"
awk '/^```cpp$/{f=1;next} /^```/{f=0} f' "$tmp/readme.md" | sed "s|/tmp/show-cpp|$tmp/readme-show-cpp|" > "$tmp/readme.cpp"
gcc -std=c99 -Wall -Wextra -Werror -pedantic "$tmp/readme.c" -o "$tmp/readme-c" $(pkg-config --cflags --libs capsa) \
  -Wl,-rpath,"$prefix/lib"
"$tmp/readme-c" | grep -q "bumped to v001"
"$tmp/readme-c" | grep -q "bumped to v002"
g++ -std=c++17 -Wall -Wextra "$tmp/readme.cpp" -o "$tmp/readme-cpp" -I"$prefix/include" \
  "$prefix/lib/libcapsa_cxx.a" "$prefix/lib/libcapsa_c.a" -lstdc++ -lpthread -ldl -lm -lrt -lutil
"$tmp/readme-cpp" | grep -q "^v001$"
echo "test-c: ok"
