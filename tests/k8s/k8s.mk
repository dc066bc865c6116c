# Make targets for the test control plane; include from the top-level Makefile:
#   include tests/k8s/k8s.mk
# and make `test` depend on running the Kubernetes tests through K8S_WRAP, e.g.
#   test: ... ; $(K8S_WRAP) cargo test --workspace
K8S_DIR := tests/k8s
K8S_WRAP := $(K8S_DIR)/with-control-plane.sh
# What `make test-k8s` runs under the control plane (override on the command line).
K8S_TEST_CMD ?= $(K8S_DIR)/smoke.sh --running

.PHONY: k8s-build k8s-up k8s-down k8s-smoke test-k8s
k8s-build:
	$(K8S_DIR)/build.sh
k8s-up:
	$(K8S_DIR)/up.sh
	@echo "export KUBECONFIG=$${CAPSA_K8S_DIR:-/tmp/capsa-k8s}/kubeconfig"
k8s-down:
	$(K8S_DIR)/down.sh
k8s-smoke:
	$(K8S_DIR)/smoke.sh
test-k8s:
	$(K8S_WRAP) $(K8S_TEST_CMD)
