#!/usr/bin/env bash
# `make test-k8s`, C and C++ part: the Kubernetes backend through both APIs
# (tests/k8s/test_kubernetes.cpp, ctest label `k8s`) against the test control plane.
#   bash bindings-c/scripts/test-k8s.sh build   configure + build it (the same build as test-c)
#   bash bindings-c/scripts/test-k8s.sh run     run it (needs KUBECONFIG etc.: under
#                                               tests/k8s/with-control-plane.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=${CAPSA_CARGO_PROFILE:-dev}
build=$PWD/target/cmake-c/$profile
rust=$PWD/target/$([ "$profile" = dev ] && echo debug || echo "$profile")
case "${1:-}" in
  build)
    cmake -S bindings-c -B "$build" -DCAPSA_CARGO_PROFILE="$profile" -DCMAKE_BUILD_TYPE=Debug >/dev/null
    cmake --build "$build" -j2 --target test_kubernetes capsa_cxx
    # The README's Kubernetes example (its c++ block) compiles against this build.
    awk '/^## C and C\+\+/{on=1} on&&/^## Layout/{on=0} on' README.md |
      awk '/^```c\+\+$/{f=1;next} /^```/{f=0} f' > "$build/readme_k8s.cpp"
    grep -q open_kubernetes "$build/readme_k8s.cpp"
    g++ -std=c++17 -Wall -Wextra -Werror "$build/readme_k8s.cpp" -o "$build/readme_k8s" \
      -Ibindings-c/include -I"$build/include" "$build/libcapsa_cxx.a" \
      "$rust/libcapsa_c.a" -lstdc++ -lpthread -ldl -lm -lrt -lutil
    echo "test-k8s.sh: test_kubernetes and the README's Kubernetes example built" ;;
  run)
    [ -x "$build/test_kubernetes" ] ||
      { echo "test-k8s.sh: $build/test_kubernetes is not built: run '$0 build' first" >&2; exit 1; }
    (cd "$build" && ctest --output-on-failure -L k8s) ;;
  *) echo "usage: $0 build|run" >&2; exit 2 ;;
esac
