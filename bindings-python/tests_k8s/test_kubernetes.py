"""``capsa.KubernetesBackend`` against the real API server of ``tests/k8s``.

Not part of ``make test-python`` (no server there): ``make test-k8s`` runs this directory
through ``tests/k8s/with-control-plane.sh`` (``bindings-python/setup.sh k8s``). Run without
the control plane's environment (``KUBECONFIG``, ``CAPSA_K8S_SERVER``, ``CAPSA_K8S_TOKEN``,
``CAPSA_K8S_CA``), every test fails, saying so.

No controllers run: the test plays them over the REST API (urllib), patching ``/status``,
creating the StatefulSet's claim, removing ``pvc-protection`` finalizers and finalizing the
namespace.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

import capsa

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "examples" / "kubernetes"
T = TypeVar("T")


class Kube:
    """The controllers' side: plain REST calls with the control plane's token."""

    def __init__(self) -> None:
        env = {
            k: os.environ.get(k)
            for k in ("KUBECONFIG", "CAPSA_K8S_SERVER", "CAPSA_K8S_TOKEN", "CAPSA_K8S_CA")
        }
        missing = [k for k, v in env.items() if not v]
        if missing:
            pytest.fail(
                f"{', '.join(missing)} not set: run through tests/k8s/with-control-plane.sh "
                "(make test-k8s)"
            )
        self.kubeconfig = str(env["KUBECONFIG"])
        self.server = str(env["CAPSA_K8S_SERVER"])
        if not self.server.startswith("https://127.0.0.1:"):
            pytest.fail(f"{self.server} is not the loopback test API server: refusing to run")
        self.token = str(env["CAPSA_K8S_TOKEN"])
        self.tls = ssl.create_default_context(cafile=str(env["CAPSA_K8S_CA"]))

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any] | None:
        """The answer's JSON, or ``None`` for 404."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self.tls, timeout=30) as r:
                answer: dict[str, Any] = json.loads(r.read())
                return answer
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise AssertionError(f"{method} {path}: {e.code} {e.read()!r}") from e

    def get(self, path: str) -> dict[str, Any] | None:
        return self.call("GET", path)

    def merge_patch(self, path: str, body: dict[str, Any]) -> None:
        self.call("PATCH", path, body, "application/merge-patch+json")

    def names(self, path: str) -> list[str]:
        listed = self.get(path)
        assert listed is not None, path
        return [str(i["metadata"]["name"]) for i in listed["items"]]


def wait_for(what: str, f: Callable[[], T | None], secs: float = 60) -> T:
    deadline = time.monotonic() + secs
    while True:
        v = f()
        if v is not None:
            return v
        assert time.monotonic() < deadline, f"timed out after {secs} s waiting for {what}"
        time.sleep(0.1)


def play_ready(k: Kube, ns: str) -> None:
    """The deployment and StatefulSet controllers: `web` and `db` rolled out, `db`'s claim made."""
    apps = f"/apis/apps/v1/namespaces/{ns}"
    d = wait_for("Deployment web", lambda: k.get(f"{apps}/deployments/web"))
    r = d["spec"].get("replicas", 1)
    k.merge_patch(
        f"{apps}/deployments/web/status",
        {
            "status": {
                "observedGeneration": d["metadata"]["generation"],
                "replicas": r,
                "updatedReplicas": r,
                "readyReplicas": r,
                "availableReplicas": r,
            }
        },
    )
    s = wait_for("StatefulSet db", lambda: k.get(f"{apps}/statefulsets/db"))
    pvcs = f"/api/v1/namespaces/{ns}/persistentvolumeclaims"
    if k.get(f"{pvcs}/data-db-0") is None:
        claim = s["spec"]["volumeClaimTemplates"][0]
        k.call("POST", pvcs, {"metadata": {"name": "data-db-0"}, "spec": claim["spec"]})
    rev = f"db-{s['metadata']['generation']}"
    k.merge_patch(
        f"{apps}/statefulsets/db/status",
        {
            "status": {
                "observedGeneration": s["metadata"]["generation"],
                "replicas": 1,
                "readyReplicas": 1,
                "currentReplicas": 1,
                "updatedReplicas": 1,
                "availableReplicas": 1,
                "currentRevision": rev,
                "updateRevision": rev,
            }
        },
    )


def play_namespace_deletion(k: Kube, ns: str) -> None:
    """The PVC-protection and namespace controllers, until the namespace is gone."""

    def step() -> bool | None:
        listed = k.get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims")
        for p in listed["items"] if listed else []:
            meta = p["metadata"]
            if meta.get("deletionTimestamp") and meta.get("finalizers"):
                k.merge_patch(
                    f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{meta['name']}",
                    {"metadata": {"finalizers": None}},
                )
        n = k.get(f"/api/v1/namespaces/{ns}")
        if n is None:
            return True
        if n["metadata"].get("deletionTimestamp"):
            n["spec"]["finalizers"] = []
            k.call("PUT", f"/api/v1/namespaces/{ns}/finalize", n)
        return None

    wait_for(f"namespace {ns} gone", step)


class InThread:
    """A blocking capsa call run in a thread (as a caller's worker thread would)."""

    def __init__(self, f: Callable[[], object]) -> None:
        self.result: object = None
        self.error: Exception | None = None

        def run() -> None:
            try:
                self.result = f()
            except Exception as e:  # handed to the test thread
                self.error = e

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self, secs: float = 120) -> object:
        self.thread.join(secs)
        assert not self.thread.is_alive(), "the capsa call did not return"
        if self.error is not None:
            raise self.error
        return self.result


@pytest.fixture(scope="module")
def kube() -> Kube:
    return Kube()


def test_lifecycle_against_the_api_server(kube: Kube, tmp_path: Path) -> None:
    name = f"py-{os.getpid()}"
    backend = capsa.KubernetesBackend(TEMPLATE, kubeconfig=kube.kubeconfig, ready_timeout=120)
    assert backend.template_dir == TEMPLATE
    m = capsa.StagingManager.open(tmp_path / "state.db", backend, check_interval=0)
    assert m.backend == "kubernetes"
    apps = f"/apis/apps/v1/namespaces/{name}"

    # create: applied at once, then pending until the workloads are ready.
    create = InThread(
        lambda: m.create(
            name,
            "1.0.0",
            [
                capsa.Override("LOG_LEVEL", "debug"),
                capsa.Override("REPLICAS", "2", scope="staging"),
            ],
        )
    )
    web = wait_for("Deployment web", lambda: kube.get(f"{apps}/deployments/web"))
    assert web["spec"]["replicas"] == 2
    assert web["spec"]["template"]["spec"]["containers"][0]["image"].endswith("/web:1.0.0")
    cm = kube.get(f"/api/v1/namespaces/{name}/configmaps/capsa-app-env")
    assert cm is not None and cm["data"] == {"LOG_LEVEL": "debug"}
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert m.get(name).status == capsa.Status.CreatePending
        time.sleep(0.1)
    play_ready(kube, name)
    s = create.join()
    assert isinstance(s, capsa.Staging)
    assert s.status == capsa.Status.Running, s.reason

    # check: the backend is asked, and answers ready.
    report = m.reconcile()
    assert report.checked == 1 and report.transient_errors == 0, report
    assert m.get(name).status == capsa.Status.Running
    assert m.get(name).checked_at is not None

    # delete (archive): workloads gone, the volume claim kept.
    archived = m.delete(name)
    assert archived.status == capsa.Status.Archived, archived.reason
    assert kube.names(f"{apps}/deployments") == []
    assert kube.names(f"{apps}/statefulsets") == []
    assert kube.names(f"/api/v1/namespaces/{name}/persistentvolumeclaims") == ["data-db-0"]

    # cleanup: volumes and namespace gone (the test finalizes them), then the record.
    cleanup = InThread(lambda: m.cleanup(name))
    play_namespace_deletion(kube, name)
    assert cleanup.join() is None
    assert kube.get(f"/api/v1/namespaces/{name}") is None
    with pytest.raises(capsa.NotFoundError):
        m.get(name)
    actions = [(e.action, e.outcome) for e in m.log(name=name)]
    assert actions == [
        ("create", "Success"),
        ("delete", "Success"),
        ("cleanup", "Success"),
    ], actions


def test_the_readme_example_runs(kube: Kube, tmp_path: Path) -> None:
    """The README's KubernetesBackend example, as written, while the test plays the cluster."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Python") :]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    code = next((b for b in blocks if "KubernetesBackend" in b), None)
    assert code, "no KubernetesBackend example in the README's Python section"
    name = f"pyreadme-{os.getpid()}"
    code = code.replace('"review-42"', repr(name)).replace(
        '"/tmp/stagings.db"', repr(str(tmp_path / "stagings.db"))
    )
    assert name in code
    out: list[str] = []
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        run = InThread(lambda: exec(code, {"print": lambda *a: out.append(" ".join(map(str, a)))}))
        play_ready(kube, name)
        play_namespace_deletion(kube, name)
        run.join()
    finally:
        os.chdir(cwd)
    assert out == [f"{name} Running", "Archived", "None"], out
