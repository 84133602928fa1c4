"""The Kubernetes manifests of ``deploy/kubernetes``, rendered as lists of objects, and
accessors for the parts the tests look at.

The base is rendered here without kustomize: its kustomization lists resource files and
nothing else (checked), so reading those files in order is what kustomize does with it.
Overlays need kustomize itself (``kubectl kustomize``): :func:`kubectl_kustomize` skips
the test where kubectl is missing, which fails it under ``CI=true``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
EXAMPLE = KUBERNETES / "overlays" / "example"
# The keys of a kustomization that render() understands; any other needs kustomize.
PLAIN_KEYS = {"apiVersion", "kind", "resources"}

Obj = dict[str, Any]


def render(folder: Path) -> list[Obj]:
    """The objects of a resources-only kustomization in ``folder``, in order."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    extra = set(kustomization) - PLAIN_KEYS
    assert not extra, f"{folder} uses {sorted(extra)}: render it with kubectl_kustomize"
    objects: list[Obj] = []
    for resource in kustomization["resources"]:
        path = folder / resource
        if path.is_dir():
            objects += render(path)
        else:
            objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return objects


def kubectl_kustomize(folder: Path) -> list[Obj]:
    """The objects ``kubectl kustomize`` renders from ``folder`` (offline: local files)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: overlays are rendered with `kubectl kustomize`")
    done = subprocess.run(
        [kubectl, "kustomize", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def find(objects: list[Obj], kind: str, namespace: str | None = None) -> list[Obj]:
    """The objects of ``kind`` (in ``namespace``, when given)."""
    return [
        obj
        for obj in objects
        if obj["kind"] == kind
        and (namespace is None or obj["metadata"].get("namespace") == namespace)
    ]


def one(objects: list[Obj], kind: str, name: str) -> Obj:
    """The object of ``kind`` named ``name``."""
    found = [obj for obj in find(objects, kind) if obj["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} objects named {name}"
    return found[0]


def orchestrator(objects: list[Obj]) -> Obj:
    """The orchestrator's Deployment."""
    return one(objects, "Deployment", "latm-orchestrator")


def container(deployment: Obj) -> Obj:
    """The orchestrator container of the Deployment."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "orchestrator")


def environment(objects: list[Obj]) -> dict[str, Obj]:
    """The orchestrator's environment: each variable's entry (``value`` or ``valueFrom``),
    with the ConfigMaps of ``envFrom`` folded in as literal values (``env`` wins, as in
    Kubernetes)."""
    main = container(orchestrator(objects))
    found: dict[str, Obj] = {}
    for source in main.get("envFrom", []):
        config = one(objects, "ConfigMap", source["configMapRef"]["name"])
        found.update({name: {"value": value} for name, value in config["data"].items()})
    found.update({entry["name"]: entry for entry in main.get("env", [])})
    return found


def literal(objects: list[Obj], name: str) -> str:
    """The literal value the orchestrator's environment gives ``name``."""
    value = environment(objects)[name].get("value")
    assert isinstance(value, str), f"{name} has no literal value"
    return value


def port_of(address: str) -> int:
    """The port of a ``HOST:PORT`` listen address."""
    return int(address.rpartition(":")[2])
