"""The kubernetes backend, with its control plane EMULATED and its data path real.

* Control plane (emulated): the API server is kmock's Kubernetes emulator
  (:mod:`tests.support.kube_api`), reached by the real ``kubernetes`` client through a
  real kubeconfig file; the kubelet is a test stand-in
  (:mod:`tests.support.kubelet_standin`) that runs each pod it sees.
* Data path (real): each pod is a real container of this checkout's sandbox image,
  under runc or gVisor (runsc), with the pod's security settings, and the backend
  calls its server over gRPC with the pod's mutual TLS.

Covered: pool fill, claim and a call; the pod's security settings as run; who can and
cannot call a sandbox; a fault and the pod's replacement; orphans of a crashed
orchestrator; refusal when the API server is unreachable.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from orchestrator.errors import SandboxUnavailable
from orchestrator.sandboxes import ExecRequest, Status
from orchestrator.sandboxes.kubernetes import KubernetesBackend, KubernetesSandbox, core_api
from orchestrator.sandboxes.kubernetes_options import KubernetesOptions
from orchestrator.sandboxes.owners import owner_id
from orchestrator.sandboxes.pod_spec import secret_manifest
from orchestrator.sandboxes.pod_tls import SERVER_NAME, mint
from orchestrator.sandboxes.pool import PoolConfig
from tests.support.backends import docker_problem

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.asyncio(loop_scope="module")]

NAMESPACE = "latm-test"
TOOL = "def double(x):\n    return x * 2\n"
RUNTIME_CLASSES = {"runc": "runc", "runsc": "gvisor"}  # docker runtime -> RuntimeClass


def _require(runtime: str) -> None:
    problem = docker_problem(runtime)
    if problem:
        pytest.skip(problem)
    if os.geteuid() != 0:
        pytest.skip(
            "the kubelet stand-in mounts a tmpfs per emptyDir, as a kubelet does: run as root"
        )
    try:
        import kmock  # noqa: F401
        import kubernetes  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"{exc.name} is not installed (pip install -e '.[dev,kubernetes]')")


@pytest.fixture(scope="module")
def image() -> str:
    _require("runc")
    import docker

    from orchestrator.images import OFFLINE_BASE
    from tests.support.kube_image import checkout_image

    try:
        docker.from_env().images.get(OFFLINE_BASE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"the base image {OFFLINE_BASE} is not built (latm image build --offline-base)")
    return checkout_image()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, image: str) -> Iterator[Any]:
    """The emulated API server, its kubeconfig, and the kubelet stand-in."""
    from tests.support.kube_api import EmulatedKubeApi
    from tests.support.kubelet_standin import KubeletStandin

    api = EmulatedKubeApi().start()
    kubeconfig = api.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config", NAMESPACE)
    kubelet = KubeletStandin(api.url, NAMESPACE).start()
    cluster = type("Cluster", (), {"api": api, "kubeconfig": kubeconfig, "kubelet": kubelet})
    try:
        yield cluster
    finally:
        for line in kubelet.events[-40:]:
            print("kubelet stand-in:", line)
        kubelet.stop()
        api.stop()


def _options(cluster: Any, image: str, runtime: str, **extra: Any) -> KubernetesOptions:
    return KubernetesOptions(
        namespace=NAMESPACE,
        runtime_class=RUNTIME_CLASSES[runtime],
        image=image,
        kubeconfig=cluster.kubeconfig,
        **{"pool": PoolConfig(min_idle=0, max_size=4), **extra},
    )


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=["runc", "runsc"])
async def backend(request: pytest.FixtureRequest, cluster: Any, image: str) -> AsyncIterator[Any]:
    runtime = request.param
    _require(runtime)
    shared = KubernetesBackend(
        _options(cluster, image, runtime, pool=PoolConfig(min_idle=2, max_size=4))
    )
    shared.runtime = runtime  # type: ignore[attr-defined]
    try:
        yield shared
    finally:
        await shared.close()


async def _until(condition: Any, timeout_s: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.1)


def _pod(backend: KubernetesBackend, name: str) -> Any:
    return backend.api.read_namespaced_pod(name, NAMESPACE)


def _gone(backend: KubernetesBackend, name: str) -> bool:
    from kubernetes.client import ApiException

    try:
        _pod(backend, name)
    except ApiException as exc:
        return exc.status == 404
    return False


async def test_pool_fills_with_pods_and_a_claimed_one_runs_a_call(backend: Any) -> None:
    pool = backend.pool("acme")
    await _until(lambda: pool.idle == 2, 90, "two warm pods")
    pods = backend.own_pods()
    assert len(pods) == 2
    for name in pods:
        pod = _pod(backend, name)
        assert pod.status.phase == "Running"
        assert pod.metadata.annotations["io.latm/tenant"] == "acme"
    result = await backend.execute("acme", ExecRequest(source=TOOL, call="double(21)"))
    assert result.status is Status.OK, result
    assert result.value == 42
    label = "kubernetes+gvisor" if backend.runtime == "runsc" else "kubernetes+runc"
    assert result.isolation == label
    # The credentials' Secrets are deleted once their pods run.
    secrets = backend.api.list_namespaced_secret(NAMESPACE).items
    assert not [s for s in secrets if s.metadata.name.removesuffix("-tls") in pods]


async def test_tenants_never_share_a_pod(backend: Any) -> None:
    first = await backend.acquire("acme")
    second = await backend.acquire("globex")
    try:
        assert isinstance(first, KubernetesSandbox)
        assert isinstance(second, KubernetesSandbox)
        assert first.pod != second.pod
        assert _pod(backend, second.pod).metadata.labels["io.latm.tenant"] == "globex"
    finally:
        await backend.release(first, faulted=False)
        await backend.release(second, faulted=False)


async def test_the_pod_runs_with_its_security_settings(backend: Any, cluster: Any) -> None:
    sandbox = await backend.acquire("acme")
    try:
        (container,) = [
            c for c in cluster.kubelet.containers_of(sandbox.pod) if c.name.endswith(
                f"-sandbox-{cluster.kubelet.id}")
        ]  # fmt: skip
        host = container.attrs["HostConfig"]
        assert container.attrs["Config"]["User"] == "10001:10001"
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert "no-new-privileges:true" in host["SecurityOpt"]
        assert "seccomp=unconfined" not in host["SecurityOpt"]  # RuntimeDefault kept
        assert host["Privileged"] is False
        assert host["Runtime"] == backend.runtime
        assert host["Memory"] == 512 * 2**20
        assert host["NanoCpus"] == 10**9
        assert host["PidsLimit"] >= 128
        targets = {m["Destination"] for m in container.attrs["Mounts"]}
        assert "/var/run/secrets/kubernetes.io/serviceaccount" not in targets  # no token
        # The server took its credentials out of the shared volume before serving.
        probe = await asyncio.to_thread(
            container.exec_run,
            ["python", "-I", "-c", "import os; print(sorted(os.listdir('/run/latm/tls')))"],
            user="10001:10001",
        )
        assert probe.output.decode().strip() == "[]", probe.output
    finally:
        await backend.release(sandbox, faulted=False)


async def test_only_the_orchestrator_with_the_pods_client_key_can_call_it(backend: Any) -> None:
    sandbox = await backend.acquire("acme")
    try:
        pod = _pod(backend, sandbox.pod)
        target = f"{pod.status.pod_ip}:50051"
        stranger = mint("stranger")  # a valid-looking CA and client of another pod
        own_ca = sandbox.client  # the backend's channel: works
        assert await own_ca.healthy()
        attempts = {
            "plaintext": grpc.aio.insecure_channel(target),
            "TLS without a client certificate": _secure(target, root=None),
            "another pod's client certificate": _secure(
                target, root=None, key=stranger.client_key, cert=stranger.client_cert
            ),
        }
        for what, channel in attempts.items():
            stub = health_pb2_grpc.HealthStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE, what
            await channel.close()
    finally:
        await backend.release(sandbox, faulted=False)


def _secure(target: str, root: bytes | None, key: bytes = b"", cert: bytes = b"") -> Any:
    """A TLS channel that skips checking the server (so only the server's check counts)."""
    del root
    credentials = grpc.ssl_channel_credentials(
        root_certificates=None, private_key=key or None, certificate_chain=cert or None
    )
    return grpc.aio.secure_channel(
        target, credentials, options=[("grpc.ssl_target_name_override", SERVER_NAME)]
    )


async def test_a_faulted_pod_is_deleted_and_replaced(backend: Any, cluster: Any) -> None:
    first = await backend.acquire("initech")
    name = first.pod
    spin = "def spin():\n    while True:\n        pass\n"
    result = await first.execute(ExecRequest(source=spin, call="spin()", timeout_ms=500))
    assert result.status is Status.TIMEOUT, result
    await backend.release(first, faulted=result.status.is_fault)  # as execute() does
    await _until(lambda: _gone(backend, name), 30, f"pod {name} deleted")
    await _until(lambda: not cluster.kubelet.containers_of(name), 30, "its containers removed")
    again = await backend.execute("initech", ExecRequest(source=TOOL, call="double(2)"))
    assert again.status is Status.OK
    assert again.value == 4
    sandbox = await backend.acquire("initech")
    try:
        assert sandbox.pod != name
    finally:
        await backend.release(sandbox, faulted=False)


async def test_a_pod_whose_container_died_is_replaced(backend: Any, cluster: Any) -> None:
    sandbox = await backend.acquire("hooli")
    name = sandbox.pod
    await backend.release(sandbox, faulted=False)
    for container in cluster.kubelet.containers_of(name):
        if container.status == "running":  # the server's (its init container has exited)
            container.kill()
    await _until(lambda: _pod(backend, name).status.phase == "Failed", 30, "pod Failed")
    result = await backend.execute("hooli", ExecRequest(source=TOOL, call="double(5)"))
    # The call hit the dead pod (crashed, and that pod is deleted), or the backend saw the
    # lost connection first and used a new pod: never a hang, never the dead pod again.
    assert result.status in {Status.OK, Status.CRASHED}, result
    await _until(lambda: _gone(backend, name), 30, f"dead pod {name} deleted")
    again = await backend.execute("hooli", ExecRequest(source=TOOL, call="double(6)"))
    assert again.status is Status.OK
    assert again.value == 12


CRASHING_ORCHESTRATOR = textwrap.dedent("""
    import asyncio, sys
    from orchestrator.sandboxes.kubernetes import KubernetesBackend
    from orchestrator.sandboxes.kubernetes_options import KubernetesOptions
    from orchestrator.sandboxes.pool import PoolConfig

    async def main():
        options = KubernetesOptions(namespace=sys.argv[1], runtime_class="runc",
                                    image=sys.argv[2], kubeconfig=sys.argv[3],
                                    pool=PoolConfig(min_idle=2, max_size=2))
        backend = KubernetesBackend(options)
        pool = backend.pool("umbrella")
        while pool.idle < 2:
            await asyncio.sleep(0.1)
        print("ready", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
""")


async def test_a_restarted_orchestrator_removes_the_pods_of_its_crashed_run(
    cluster: Any, image: str
) -> None:
    _require("runc")
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-c", CRASHING_ORCHESTRATOR, NAMESPACE, image, str(cluster.kubeconfig)],
        cwd=root, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    try:
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 90)  # type: ignore[union-attr]
        assert line.strip() == "ready"
        dead_owner = owner_id(process.pid)
    finally:
        process.send_signal(signal.SIGKILL)  # a crash: no clean-up of any kind
        process.wait()
    api = core_api(_options(cluster, image, "runc"))
    # A crash between a pod's Secret and the pod leaves a Secret alone; another live
    # orchestrator's (here: pid 1's) must stay.
    for name, owner in (("left-tls", dead_owner), ("alive-tls", owner_id(1))):
        labels = {"io.latm.platform": "latm", "io.latm.instance": "x"}
        body: Any = secret_manifest(_options(cluster, image, "runc"), name, {}, labels, owner)
        api.create_namespaced_secret(NAMESPACE, body)
    pods: list[Any] = api.list_namespaced_pod(NAMESPACE).items
    orphans = [p.metadata.name for p in pods if p.metadata.labels["io.latm.tenant"] == "umbrella"]
    assert len(orphans) == 2
    assert all(cluster.kubelet.containers_of(name) for name in orphans)
    restarted = KubernetesBackend(_options(cluster, image, "runc"))
    try:
        assert restarted.removed_orphans == 2
        for name in orphans:
            await _until(lambda n=name: _gone(restarted, n), 10, f"orphan {name} deleted")
            await _until(
                lambda n=name: not cluster.kubelet.containers_of(n), 30, f"{name} containers gone"
            )
        listed: list[Any] = api.list_namespaced_secret(NAMESPACE).items
        secrets = {secret.metadata.name for secret in listed}
        assert "left-tls" not in secrets
        assert "alive-tls" in secrets
    finally:
        api.delete_namespaced_secret("alive-tls", NAMESPACE)
        await restarted.close()


async def test_the_sandboxes_of_a_replica_pod_that_is_gone_are_swept(
    cluster: Any, image: str
) -> None:
    """With ``owner_namespace``, what an orchestrator pod that no longer exists there left
    (a replica scaled down) is removed by another replica, at start and by its sweep;
    what a live replica's pod owns stays; without it, another host's things are kept."""
    _require("runc")
    api = core_api(_options(cluster, image, "runc"))
    replica: Any = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "live-replica"},
        "spec": {"containers": [{"name": "latm", "image": "latm-orchestrator"}]},
    }
    api.create_namespaced_pod("latm-orchestrators", replica)  # fmt: skip
    labels = {"io.latm.platform": "latm", "io.latm.instance": "y"}

    def leave(name: str, owner: str) -> None:
        body: Any = secret_manifest(_options(cluster, image, "runc"), name, {}, labels, owner)
        api.create_namespaced_secret(NAMESPACE, body)

    def held() -> set[str]:
        listed: list[Any] = api.list_namespaced_secret(NAMESPACE).items
        return {item.metadata.name for item in listed}

    leave("gone-tls", "gone-replica/7/8")
    leave("live-tls", "live-replica/7/8")
    unaware = KubernetesBackend(_options(cluster, image, "runc"))
    await unaware.close()
    assert {"gone-tls", "live-tls"} <= held()  # another host's: not judged without the namespace
    swept = KubernetesBackend(
        _options(cluster, image, "runc", owner_namespace="latm-orchestrators", orphan_sweep_s=0.5)
    )
    try:
        assert "gone-tls" not in held()
        assert "live-tls" in held()
        leave("late-tls", "gone-replica/9/9")
        sandbox = await swept.acquire("umbrella")  # serving: the sweep runs
        await swept.release(sandbox, faulted=False)
        await _until(lambda: "late-tls" not in held(), 15, "the sweep removes a later orphan")
        assert "live-tls" in held()
    finally:
        api.delete_namespaced_secret("live-tls", NAMESPACE)
        api.delete_namespaced_pod("live-replica", "latm-orchestrators")
        await swept.close()


async def test_refused_when_the_api_server_is_unreachable(image: str, tmp_path: Path) -> None:
    _require("runc")
    from tests.support.kube_api import EmulatedKubeApi

    api = EmulatedKubeApi().start()
    kubeconfig = api.write_kubeconfig(tmp_path / "config", NAMESPACE)
    options = KubernetesOptions(
        namespace=NAMESPACE, runtime_class="runc", image=image, kubeconfig=kubeconfig,
        api_timeout_s=2, pool=PoolConfig(min_idle=0, acquire_timeout_s=10),
    )  # fmt: skip
    backend = KubernetesBackend(options)
    try:
        api.stop()  # the API server goes away under a running orchestrator
        started = time.monotonic()
        with pytest.raises(SandboxUnavailable, match="Kubernetes API server is unreachable"):
            await backend.acquire("acme")
        assert time.monotonic() - started < 10
    finally:
        await backend.close()
    # And an orchestrator that starts while it is unreachable refuses to start.
    with pytest.raises(SandboxUnavailable, match="Kubernetes API server is unreachable"):
        KubernetesBackend(options)


async def test_latm_exec_runs_in_a_pod_chosen_by_the_environment(
    cluster: Any, image: str, tmp_path: Path
) -> None:
    """``latm exec`` with LATM_BACKEND=kubernetes and the LATM_KUBERNETES__* names the
    deploy manifests use: the factory, the settings and the backend, end to end."""
    _require("runc")
    from tests.support.cli import ROOT, latm

    tool = tmp_path / "tool.py"
    tool.write_text(TOOL)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp_path),
        "LATM_BACKEND": "kubernetes",
        "LATM_KUBERNETES__NAMESPACE": NAMESPACE,
        "LATM_KUBERNETES__RUNTIME_CLASS": "runc",
        "LATM_KUBERNETES__IMAGE": image,
        "LATM_KUBERNETES__SANDBOX_PORT": "50051",
        "LATM_KUBERNETES__KUBECONFIG": str(cluster.kubeconfig),
        "LATM_KUBERNETES__POOL__MIN_IDLE": "0",
    }
    before = _pod_names(cluster, image)
    done = await asyncio.to_thread(latm, env, "exec", "--source", str(tool), "--call", "double(21)")
    assert done.returncode == 0, (done.stdout, done.stderr, cluster.kubelet.events[-10:])
    result = json.loads(done.stdout)
    assert (result["status"], result["value"]) == ("ok", 42)
    assert result["isolation"] == "kubernetes+runc"
    assert _pod_names(cluster, image) <= before  # the command deleted its pod on the way out


def _pod_names(cluster: Any, image: str) -> set[str]:
    pods: list[Any] = (
        core_api(_options(cluster, image, "runc")).list_namespaced_pod(NAMESPACE).items
    )
    return {pod.metadata.name for pod in pods}
