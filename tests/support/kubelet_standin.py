"""A TEST STAND-IN for the kubelet: runs the pods of the emulated API server as real
containers of the real sandbox image, with the pods' own security settings.

It polls the emulated API server (:mod:`tests.support.kube_api`) for the pods of one
namespace. For a new pod it does what a kubelet with Docker as its runtime would:

* RuntimeClass: ``runtimeClassName`` is mapped to a Docker runtime handler
  (``gvisor`` -> ``runsc``, ``runc`` or none -> ``runc``); an unknown class fails the pod.
* Volumes: a ``secret`` volume is the Secret's files in a host folder (mode from
  ``defaultMode``, group ``fsGroup``), mounted read-only; an ``emptyDir`` is a tmpfs of
  its ``sizeLimit`` mounted on the host (as a kubelet does for medium ``Memory``) and
  bind-mounted into the pod's containers that use it; a service-account token is
  mounted at the usual path unless ``automountServiceAccountToken`` is false (a fake
  token: nothing here accepts it).
* Security: ``runAsUser``/``runAsGroup`` (container over pod), ``fsGroup`` as a
  supplementary group, ``runAsNonRoot`` (refused for uid 0), ``readOnlyRootFilesystem``,
  ``capabilities``, ``privileged``, ``allowPrivilegeEscalation: false`` as
  ``no-new-privileges``, and ``seccompProfile``: ``RuntimeDefault`` keeps Docker's
  default profile, anything else (or nothing, as on a kubelet without SeccompDefault)
  runs unconfined.
* Resources: ``limits.memory`` (swap equal), ``limits.cpu``; the node's pids limit
  (the kubelet's ``podPidsLimit``) is taken from the pod's ``io.latm/pids-limit``
  annotation, plus gVisor's own threads under runsc (see the docker backend).
* Init containers run to completion, in order, before the main container.
* Status: ``Running`` with ``podIP`` and a ``Ready`` condition once the container runs;
  ``Failed`` when a container exits; a deleted pod's containers and volumes are removed.

Pod network. Under runc the pod's containers join a Docker bridge network the
stand-in creates (``internal``: no route out, as the shipped NetworkPolicy gives no
egress); ``podIP`` is the container's address on it. gVisor's runsc on these machines
runs only with ``--network=none`` (see DESIGN.md), so under runsc the stand-in gives
the pod a loopback address of its own (``127.77.x.y``) as ``podIP`` and listens on
the pod's container port there; each connection is carried to the server's port inside
the sandbox through the reverse tunnel the docker backend uses (the stand-in appends
``--dial`` and ``--dial-token-file`` to the container's command, and bind-mounts the
tunnel's folder). Either way the orchestrator dials ``podIP:port`` over TCP and the
mutual TLS runs end to end between it and the sandbox server: the tunnel only relays
bytes. This is the stand-in's choice, not the backend's: a real cluster gives each pod
an address on the pod network and the backend dials it the same way.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.types import Mount
from kubernetes import client as k8s

from orchestrator.sandboxes.tunnel import TunnelHost, pipe

log = logging.getLogger(__name__)

LABEL = "io.latm.kubelet-standin"
RUNTIME_HANDLERS = {"gvisor": "runsc", "runsc": "runsc", "runc": "runc"}
GVISOR_PIDS_OVERHEAD = 256  # as orchestrator.sandboxes.docker: the Sentry's own threads
TUNNEL_MOUNT = "/run/latm-kubelet"
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
POLL_S = 0.05
_loopback = itertools.count(2)


@dataclass
class PodRun:
    """What the stand-in made for one pod."""

    name: str
    uid: str
    folder: Path
    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    tunnel: TunnelHost | None = None
    listener: asyncio.Server | None = None
    main: str = ""
    phase: str = "Pending"


def _memory_bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(float(quantity.removesuffix(suffix)) * factor)
    return int(quantity)


def _nano_cpus(quantity: str) -> int:
    if quantity.endswith("m"):
        return int(quantity.removesuffix("m")) * 1_000_000
    return int(float(quantity) * 1e9)


class KubeletStandin:
    """Runs the pods of ``namespace`` on the emulated API server at ``api_url``."""

    def __init__(self, api_url: str, namespace: str) -> None:
        configuration = k8s.Configuration()
        configuration.host = api_url
        self.api = k8s.CoreV1Api(k8s.ApiClient(configuration))
        self.namespace = namespace
        self.docker = docker.from_env(timeout=120)
        self.id = secrets.token_hex(4)
        self.root = Path(tempfile.mkdtemp(prefix="latm-kubelet-"))
        self.root.chmod(0o711)
        self.pods: dict[str, PodRun] = {}  # by pod uid
        self.events: list[str] = []  # what it did, for a failing test's report
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="kubelet-pod")
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()  # the runsc pods' TCP listeners and tunnels
        self._threads: list[threading.Thread] = []
        self.network = self.docker.networks.create(
            f"latm-kubelet-{self.id}", driver="bridge", internal=True, labels={LABEL: self.id}
        )

    def start(self) -> KubeletStandin:
        for target, name in ((self._loop.run_forever, "loop"), (self._watch, "watch")):
            thread = threading.Thread(target=target, name=f"kubelet-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True)
        for run in list(self.pods.values()):
            self._remove(run)
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_cancel_tasks(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        for thread in self._threads:
            thread.join(10)
        self._loop.close()
        for container in self.docker.containers.list(all=True, filters={"label": LABEL}):
            if container.labels.get(LABEL) == self.id:
                container.remove(force=True)
        with contextlib.suppress(docker.errors.APIError):
            self.network.remove()
        shutil.rmtree(self.root, ignore_errors=True)

    def containers_of(self, pod: str) -> list[Any]:
        """The Docker containers (running or not) of pod ``pod``, inspected."""
        labels = {"label": [f"{LABEL}={self.id}", f"{LABEL}.pod={pod}"]}
        while True:
            try:
                return list(self.docker.containers.list(all=True, filters=labels))
            except docker.errors.NotFound:
                continue  # one was removed between the listing and its inspection: again

    # --- the watch loop --------------------------------------------------------

    def _watch(self) -> None:
        next_check = 0.0
        while not self._stop.is_set():
            try:
                pods = self.api.list_namespaced_pod(self.namespace, _request_timeout=5).items
            except Exception as exc:
                self._note(f"cannot list pods: {exc.__class__.__name__}")
                self._stop.wait(0.5)
                continue
            raws: list[dict[str, Any]] = [
                self.api.api_client.sanitize_for_serialization(pod) for pod in pods
            ]
            seen = {raw["metadata"]["uid"]: raw for raw in raws}
            with self._lock:
                for uid, raw in seen.items():
                    if uid not in self.pods:
                        name = raw["metadata"]["name"]
                        run = PodRun(name, uid, self.root / name)
                        self.pods[uid] = run
                        self._pool.submit(self._guard, self._run_pod, run, raw)
                for uid in set(self.pods) - set(seen):
                    self._pool.submit(self._guard, self._remove, self.pods.pop(uid))
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + 0.3
                self._check_running()
            self._stop.wait(POLL_S)

    def _guard(self, function: Any, *args: Any) -> None:
        try:
            function(*args)
        except Exception as exc:
            log.exception("kubelet stand-in: %s failed", function.__name__)
            self._note(f"{function.__name__} failed: {exc}")

    def _note(self, text: str) -> None:
        self.events.append(f"{time.strftime('%H:%M:%S')} {text}")

    def _check_running(self) -> None:
        for run in list(self.pods.values()):
            if run.phase != "Running" or not run.main:
                continue
            try:
                container = self.docker.containers.get(run.main)
            except docker.errors.NotFound:
                state: dict[str, Any] = {"ExitCode": 137, "Status": "removed"}
            else:
                state = container.attrs["State"]
            if state.get("Status") in {"exited", "dead", "removed"}:
                run.phase = "Failed"
                logs = ""
                with contextlib.suppress(docker.errors.APIError):
                    logs = container.logs(tail=5).decode(errors="replace").strip()
                self._note(f"pod {run.name}: container exited {state.get('ExitCode')}: {logs}")
                self._set_status(
                    run, "Failed", terminated=int(state.get("ExitCode") or 0), message=logs
                )

    # --- one pod ---------------------------------------------------------------

    def _run_pod(self, run: PodRun, pod: dict[str, Any]) -> None:
        try:
            self._start_pod(run, pod)
        except (PermissionError, docker.errors.APIError) as exc:
            self._fail(run, "CreateContainerError", str(exc))

    def _start_pod(self, run: PodRun, pod: dict[str, Any]) -> None:
        spec = pod["spec"]
        handler = RUNTIME_HANDLERS.get(spec.get("runtimeClassName") or "runc")
        if handler is None:
            self._fail(run, "RuntimeClassNotFound", f"no RuntimeClass {spec['runtimeClassName']}")
            return
        run.folder.mkdir(mode=0o711)
        try:
            mounts = self._volumes(run, pod)
        except LookupError as exc:
            self._fail(run, "CreateContainerConfigError", str(exc))
            return
        tunnel_args: list[str] = []
        if handler == "runsc":
            tunnel_args = self._tunnel(run, mounts)
        for container in spec.get("initContainers") or []:
            config = self._config(run, pod, container, handler, mounts)
            started = self.docker.containers.run(**config)
            run.containers.append(str(started.id))
            code = started.wait(timeout=60)["StatusCode"]
            if code != 0:
                logs = started.logs().decode(errors="replace")[-500:]
                self._fail(run, "InitContainerFailed", f"{container['name']} exited {code}: {logs}")
                return
        main = spec["containers"][0]
        config = self._config(run, pod, main, handler, mounts)
        config["command"] = [*config["command"], *tunnel_args]
        started = self.docker.containers.run(**config)
        run.containers.append(str(started.id))
        run.main = str(started.id)
        if handler == "runsc":
            ip = self._listen(run, main)
        else:
            started.reload()
            ip = started.attrs["NetworkSettings"]["Networks"][self.network.name]["IPAddress"]
        run.phase = "Running"
        self._note(f"pod {run.name}: running under {handler} at {ip}")
        self._set_status(run, "Running", ip=ip)

    def _fail(self, run: PodRun, reason: str, message: str) -> None:
        run.phase = "Failed"
        self._note(f"pod {run.name}: {reason}: {message}")
        status = {"phase": "Failed", "reason": reason, "message": message}
        with contextlib.suppress(k8s.ApiException):
            self.api.patch_namespaced_pod_status(run.name, self.namespace, {"status": status})

    def _set_status(
        self, run: PodRun, phase: str, ip: str = "", terminated: int = 0, message: str = ""
    ) -> None:
        ready = "True" if phase == "Running" else "False"
        state: dict[str, Any] = (
            {"running": {"startedAt": _now()}}
            if phase == "Running"
            else {
                "terminated": {
                    "exitCode": terminated,
                    "reason": "Error",
                    "message": message[-1000:],
                    "finishedAt": _now(),
                }
            }
        )
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": [
                {"type": "Initialized", "status": "True"},
                {"type": "ContainersReady", "status": ready},
                {"type": "Ready", "status": ready},
            ],
            "containerStatuses": [
                {"name": "sandbox", "ready": phase == "Running", "restartCount": 0,
                 "image": "", "imageID": "", "state": state}
            ],
        }  # fmt: skip
        if ip:
            status |= {"podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "127.0.0.1"}
        with contextlib.suppress(k8s.ApiException):
            self.api.patch_namespaced_pod_status(run.name, self.namespace, {"status": status})

    def _volumes(self, run: PodRun, pod: dict[str, Any]) -> dict[str, Mount]:
        """A Docker mount for each of the pod's volumes, by volume name."""
        spec = pod["spec"]
        fs_group = (spec.get("securityContext") or {}).get("fsGroup", 0)
        mounts: dict[str, Mount] = {}
        for volume in spec.get("volumes") or []:
            name = volume["name"]
            if "secret" in volume:
                folder = run.folder / f"secret-{name}"
                folder.mkdir(mode=0o750)
                os.chown(folder, 0, fs_group)
                secret = self._secret(volume["secret"]["secretName"])
                mode = volume["secret"].get("defaultMode", 0o644)
                for key, value in (secret.data or {}).items():
                    path = folder / key
                    path.write_bytes(base64.b64decode(value))
                    os.chown(path, 0, fs_group)
                    path.chmod(mode)
                mounts[name] = Mount("", str(folder), type="bind", read_only=True)
            elif "emptyDir" in volume:
                # As a kubelet does for medium Memory: a tmpfs of the size limit on the
                # node, bind-mounted into each of the pod's containers that mount it.
                size = _memory_bytes(volume["emptyDir"].get("sizeLimit", "64Mi"))
                folder = run.folder / f"empty-{name}"
                folder.mkdir()
                subprocess.run(
                    ["mount", "-t", "tmpfs", "-o", f"size={size},mode=1777", "tmpfs", str(folder)],
                    check=True,
                )
                run.volumes.append(str(folder))
                mounts[name] = Mount("", str(folder), type="bind")
        if spec.get("automountServiceAccountToken") is not False:
            folder = run.folder / "serviceaccount"
            folder.mkdir()
            (folder / "token").write_text("emulated-service-account-token")
            mounts["__token"] = Mount(TOKEN_PATH, str(folder), type="bind", read_only=True)
        return mounts

    def _secret(self, name: str) -> Any:
        """The Secret, waiting for it a little as a kubelet does."""
        deadline = time.monotonic() + 10
        while True:
            try:
                return self.api.read_namespaced_secret(name, self.namespace)
            except k8s.ApiException as exc:
                if exc.status != 404 or time.monotonic() > deadline:
                    raise LookupError(f"secret {name} not found") from None
                time.sleep(0.1)

    def _config(
        self,
        run: PodRun,
        pod: dict[str, Any],
        container: dict[str, Any],
        handler: str,
        mounts: dict[str, Mount],
    ) -> dict[str, Any]:
        """Docker's options for one of the pod's containers."""
        spec = pod["spec"]
        pod_context = spec.get("securityContext") or {}
        context = {**pod_context, **(container.get("securityContext") or {})}
        uid, gid = context.get("runAsUser", 0), context.get("runAsGroup", 0)
        if context.get("runAsNonRoot") and uid == 0:
            raise PermissionError(f"{container['name']}: runAsNonRoot, but the user is root")
        security_opt = []
        if context.get("allowPrivilegeEscalation") is False:
            security_opt.append("no-new-privileges:true")
        if (context.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            security_opt.append("seccomp=unconfined")
        limits = (container.get("resources") or {}).get("limits") or {}
        memory = _memory_bytes(limits["memory"]) if "memory" in limits else None
        pids = int((pod["metadata"].get("annotations") or {}).get("io.latm/pids-limit", 0))
        if pids and handler == "runsc":
            pids += GVISOR_PIDS_OVERHEAD
        container_mounts = [
            Mount(m["mountPath"], mounts[m["name"]]["Source"], type=mounts[m["name"]]["Type"],
                  read_only=bool(m.get("readOnly")) or mounts[m["name"]].get("ReadOnly", False))
            for m in container.get("volumeMounts") or []
        ]  # fmt: skip
        if "__token" in mounts:
            container_mounts.append(mounts["__token"])
        if handler == "runsc" and container is spec["containers"][0]:
            container_mounts.append(Mount(TUNNEL_MOUNT, str(run.folder / "tunnel"), type="bind"))
        groups = [str(g) for g in [pod_context.get("fsGroup")] if g is not None]
        return {
            "image": container["image"],
            "command": [*(container.get("command") or []), *(container.get("args") or [])],
            "name": f"k8s-{run.name}-{container['name']}-{self.id}",
            "hostname": run.name,
            "user": f"{uid}:{gid}",
            "group_add": groups,
            "environment": {e["name"]: e.get("value", "") for e in container.get("env") or []},
            "read_only": bool(context.get("readOnlyRootFilesystem")),
            "privileged": bool(context.get("privileged")),
            "cap_drop": (context.get("capabilities") or {}).get("drop"),
            "cap_add": (context.get("capabilities") or {}).get("add"),
            "security_opt": security_opt,
            "mem_limit": memory,
            "memswap_limit": memory,
            "nano_cpus": _nano_cpus(limits["cpu"]) if "cpu" in limits else None,
            "pids_limit": pids or None,
            "runtime": handler,
            "network": self.network.name if handler == "runc" else None,
            "network_mode": "none" if handler == "runsc" else None,
            "mounts": container_mounts,
            "labels": {LABEL: self.id, f"{LABEL}.pod": run.name, f"{LABEL}.uid": run.uid},
            "detach": True,
        }

    # --- the runsc pods' network ---------------------------------------------------

    def _tunnel(self, run: PodRun, mounts: dict[str, Mount]) -> list[str]:
        """The reverse tunnel's host end, and the server arguments that dial it."""
        folder = run.folder / "tunnel"
        folder.mkdir(mode=0o700)
        token = secrets.token_hex(32).encode()
        (folder / "dial.token").write_bytes(token)
        uid = 10001
        for path in (folder, folder / "dial.token"):
            os.chown(path, uid, uid)
        run.tunnel = TunnelHost(folder / "tunnel.sock", run.folder / "client.sock", token)
        asyncio.run_coroutine_threadsafe(run.tunnel.start(), self._loop).result(10)
        os.chown(folder / "tunnel.sock", uid, uid)
        return [
            "--dial",
            f"unix:{TUNNEL_MOUNT}/tunnel.sock",
            "--dial-token-file",
            f"{TUNNEL_MOUNT}/dial.token",
        ]

    def _listen(self, run: PodRun, container: dict[str, Any]) -> str:
        """Listen on the pod's own loopback address and port; relay to the tunnel."""
        number = next(_loopback)
        ip = f"127.77.{number // 250}.{number % 250 + 1}"
        port = int(container["ports"][0]["containerPort"])
        assert run.tunnel is not None
        client_path = str(run.tunnel.client_path)

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.open_unix_connection(client_path)
            except OSError:
                writer.close()
                return
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        async def start() -> asyncio.Server:
            return await asyncio.start_server(relay, ip, port)

        run.listener = asyncio.run_coroutine_threadsafe(start(), self._loop).result(10)
        return ip

    def _remove(self, run: PodRun) -> None:
        for container_id in run.containers:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                self.docker.api.remove_container(container_id, force=True)
        for folder in run.volumes:
            subprocess.run(["umount", folder], check=False, capture_output=True)

        async def close() -> None:
            if run.listener is not None:
                run.listener.close()
            if run.tunnel is not None:
                await run.tunnel.close()

        if self._loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        shutil.rmtree(run.folder, ignore_errors=True)
        self._note(f"pod {run.name}: removed")


async def _cancel_tasks() -> None:
    """End the relays still waiting (a tunnel's clients whose pod is gone)."""
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
