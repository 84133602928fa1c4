"""An EMULATED Kubernetes API server for the kubernetes backend's tests.

No real cluster can run on these machines (no kube-apiserver, kubelet or k3s can be
installed here), so the control plane is emulated: PyPI ``kmock``'s
``KubernetesEmulator``, an aiohttp server on a loopback port that speaks the
Kubernetes HTTP/JSON API (create, get, list, patch, delete of pods and Secrets, with
``Status`` errors) and keeps objects in memory. The backend under test talks to it
with the real ``kubernetes`` client, configured from a real kubeconfig file.

Two gaps of kmock 0.8 are filled here, so that the emulation is not more lenient
than a real API server: it ignored ``labelSelector`` on lists (it returned every
object), and it gave created objects no ``uid``, ``creationTimestamp`` or
``resourceVersion``. Everything a real API server adds beyond that (admission,
validation of the pod spec, RBAC, garbage collection of owned objects) is NOT
emulated; the pod spec is checked by the unit tests and by the kubelet stand-in
(:mod:`tests.support.kubelet_standin`), which runs it for real.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import threading
import uuid
from pathlib import Path
from typing import Any

import kmock
from kmock._internal import enums, rendering

_versions = itertools.count(1)


def _selected(obj: dict[str, Any], selector: str) -> bool:
    """Equality-based label selectors (``a=b,c!=d,e``): what the backend sends."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.strip() not in labels:
            return False
    return True


class _Emulator(kmock.KubernetesEmulator):
    async def _handle(self, request: rendering.Request) -> Any:
        if request.resource is not None and request.action == enums.action.CREATE:
            metadata = request.data.setdefault("metadata", {})
            metadata.setdefault("uid", str(uuid.uuid4()))
            now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            metadata.setdefault("creationTimestamp", now)
            metadata["resourceVersion"] = str(next(_versions))
            if request.namespace and "namespace" not in metadata:
                metadata["namespace"] = request.namespace
        return await super()._handle(request)

    async def _serve_list(self, request: rendering.Request) -> Any:
        listed: Any = await super()._serve_list(request)
        selector = request.params.get("labelSelector", "")
        if selector:
            listed["items"] = [obj for obj in listed["items"] if _selected(obj, selector)]
        listed.setdefault("kind", "List")
        listed.setdefault("apiVersion", "v1")
        return listed


class EmulatedKubeApi:
    """The emulated API server, served from its own thread and event loop (like a
    separate process: the backend's and the stand-in's clients reach it over TCP)."""

    def __init__(self) -> None:
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> EmulatedKubeApi:
        self._thread = threading.Thread(target=self._run, name="emulated-kube-api", daemon=True)
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError("the emulated Kubernetes API server did not start")
        if self._error is not None:
            raise RuntimeError(f"the emulated API server failed: {self._error}")
        return self

    def _run(self) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with _Emulator() as handler, kmock.Server(handler) as server:
                resources: Any = handler.resources
                resources["v1/pods"] = {}
                resources["v1/secrets"] = {}
                self.url = str(server.url).rstrip("/")
                self._ready.set()
                await self._stop.wait()

        try:
            asyncio.run(serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def stop(self) -> None:
        """Stop serving: the port is closed, so clients see the API server unreachable."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def write_kubeconfig(self, path: Path, namespace: str) -> Path:
        """A kubeconfig file for this server (plain HTTP on loopback, no credentials)."""
        path.write_text(kubeconfig_text(self.url, namespace))
        return path


def kubeconfig_text(url: str, namespace: str) -> str:
    return f"""apiVersion: v1
kind: Config
clusters:
- name: emulated
  cluster:
    server: {url}
users:
- name: tests
  user: {{}}
contexts:
- name: emulated
  context:
    cluster: emulated
    user: tests
    namespace: {namespace}
current-context: emulated
"""
