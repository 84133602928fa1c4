"""The ``kubernetes`` backend: each sandbox server is a hardened pod, pooled per tenant.

A pod is made from :func:`~orchestrator.sandboxes.pod_spec.pod_manifest` (gVisor's
runtime class by default; non-root, read-only root, no capabilities, no privilege
escalation, RuntimeDefault seccomp, no service-account token, memory-backed ``/tmp``,
CPU and memory limits). Its server listens on the pod network, on
``sandbox_port``, with mutual TLS made for that pod alone
(:mod:`orchestrator.sandboxes.pod_tls`): the orchestrator dials the pod's IP and
accepts only that pod's certificate; the pod accepts only the orchestrator's client
certificate for it. The NetworkPolicy shipped in ``deploy/kubernetes`` adds that
sandbox pods have no egress and take ingress only from orchestrator pods.

The official ``kubernetes`` client is synchronous; its calls run in worker threads,
each with :attr:`~KubernetesSettings.api_timeout_s`, and a new pod is followed by
polling its status until it is Running and Ready with an IP (or failed). Any failure
to reach the API server is :class:`~orchestrator.errors.SandboxUnavailable`: the
backend refuses to start (it checks the API at construction) or to start a sandbox.

Pools. One :class:`~orchestrator.sandboxes.pool.WarmPool` per (tenant, image,
runtime class): pods are never shared across tenants, and one whose call hit a fault
is deleted, never handed out again.

Orphans. Each pod carries its orchestrator process (``HOST/PID/START``) as an
annotation; a starting backend deletes the pods (and credential Secrets) of a process
of its host (its pod name, in-cluster) that is gone, e.g. an orchestrator container
that crashed and was restarted in the same pod. With ``owner_namespace`` (the
orchestrator pod's namespace), the pods of an orchestrator pod that no longer exists there
(a replica scaled down or deleted) are orphans too, removed by any replica's sweep, every
``orphan_sweep_s``. With ``owner_uid``, possible only where the sandboxes live in the
orchestrator's namespace, pods also carry an ownerReference to the orchestrator's pod, so
the cluster removes them with that pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from orchestrator.errors import InvalidRequest, MissingDependencyError, SandboxUnavailable
from orchestrator.sandboxes import pod_spec
from orchestrator.sandboxes.base import Sandbox, SandboxBackend, acquire_connected
from orchestrator.sandboxes.client import SandboxClient
from orchestrator.sandboxes.kubernetes_options import KubernetesOptions
from orchestrator.sandboxes.owners import owner_id, owner_is_gone
from orchestrator.sandboxes.pod_tls import SERVER_NAME, PodCredentials, mint
from orchestrator.sandboxes.pool import WarmPool
from orchestrator.sandboxes.values import IsolationLevel
from orchestrator.telemetry import SANDBOX_STARTS

if TYPE_CHECKING:
    from kubernetes.client import CoreV1Api

log = logging.getLogger(__name__)

POLL_S = 0.05  # how often a starting pod's status is read
T = TypeVar("T")


class _PodGone(SandboxUnavailable):
    """A sandbox pod vanished or stopped while it was being started."""


class KubernetesSandbox(Sandbox):
    """One pooled pod and the TLS channel to its server."""

    def __init__(self, tenant: str, client: SandboxClient, isolation: str, pod: str) -> None:
        super().__init__(tenant, client, isolation)
        self.pod = pod
        self.started_at = time.monotonic()


def core_api(options: KubernetesOptions) -> CoreV1Api:
    """A CoreV1Api configured from the settings: in-cluster, or a kubeconfig file."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise MissingDependencyError.for_extra("kubernetes", "kubernetes") from None
    configuration = client.Configuration()
    try:
        if options.in_cluster:
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(
                config_file=str(options.kubeconfig) if options.kubeconfig else None,
                context=options.context,
                client_configuration=configuration,
            )
    except config.ConfigException as exc:
        raise SandboxUnavailable(f"no Kubernetes API configuration: {exc}") from None
    configuration.retries = 0  # the backend's own callers retry; fail fast here
    return client.CoreV1Api(client.ApiClient(configuration))


class KubernetesBackend(SandboxBackend):
    """Hardened sandbox pods from warm pools, one pool per (tenant, image, runtime class)."""

    name = "kubernetes"

    def __init__(
        self,
        options: KubernetesOptions | None = None,
        min_isolation: IsolationLevel = IsolationLevel.RLIMITS,
        api: CoreV1Api | None = None,
    ) -> None:
        super().__init__(min_isolation)
        self.options = options or KubernetesOptions()
        if self.options.agent_sandbox:
            raise InvalidRequest(
                "LATM_KUBERNETES__AGENT_SANDBOX=true (agent-sandbox CRDs) is not supported "
                "yet; sandbox pools are kept by the orchestrator (bare pods)"
            )
        self.check_isolation()
        self.api = api or core_api(self.options)
        self.owner = owner_id()
        self.instance = secrets.token_hex(4)
        self._pools: dict[tuple[str, str, str], WarmPool[KubernetesSandbox]] = {}
        self._closed = False
        self._sweeper: asyncio.Task[None] | None = None
        self._gone_hosts: dict[str, bool] = {}
        self._check_api()
        self.removed_orphans = self.remove_orphans()

    @property
    def isolation(self) -> tuple[str, IsolationLevel]:
        return self.options.isolation

    # --- the API server ----------------------------------------------------------

    def _call(self, what: str, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One API request with the settings' timeout; unreachable is SandboxUnavailable."""
        import urllib3.exceptions

        try:
            return method(*args, _request_timeout=self.options.api_timeout_s, **kwargs)
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # refused, timed out, TLS
            raise SandboxUnavailable(
                f"the Kubernetes API server is unreachable ({what}): {exc}"
            ) from None

    async def _acall(self, what: str, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(self._call, what, method, *args, **kwargs)

    def _check_api(self) -> None:
        from kubernetes.client import ApiException

        try:
            self._call(
                "listing sandbox pods",
                self.api.list_namespaced_pod,
                self.options.namespace,
                limit=1,
            )
        except ApiException as exc:
            raise SandboxUnavailable(
                f"the Kubernetes API server refused to list pods in namespace "
                f"{self.options.namespace}: {exc.status} {exc.reason}"
            ) from None

    def _ours(self, items: list[Any]) -> list[Any]:
        """``items`` that carry the platform's label. The label selector is also sent to the
        API server; checking here too keeps a server that ignores it from costing a pod."""
        return [
            item
            for item in items
            if (item.metadata.labels or {}).get(pod_spec.LABEL_PLATFORM) == pod_spec.PLATFORM
        ]

    def remove_orphans(self) -> int:
        """Delete the pods and Secrets of orchestrator processes of this host that are gone."""
        selector = f"{pod_spec.LABEL_PLATFORM}={pod_spec.PLATFORM}"
        namespace = self.options.namespace
        pods = self._call(
            "listing sandbox pods", self.api.list_namespaced_pod, namespace, label_selector=selector
        )
        removed = 0
        self._gone_hosts = {}  # each other host is looked up once per sweep
        for pod in self._ours(pods.items):
            if self._orphaned(pod):
                log.info("removing orphaned sandbox pod %s", pod.metadata.name)
                self._delete("pods", pod.metadata.name)
                removed += 1
        secrets_list = self._call(
            "listing sandbox secrets",
            self.api.list_namespaced_secret,
            namespace,
            label_selector=selector,
        )
        for secret in self._ours(secrets_list.items):
            if self._orphaned(secret):
                self._delete("secrets", secret.metadata.name)
        return removed

    def _orphaned(self, item: Any) -> bool:
        owner = (item.metadata.annotations or {}).get(pod_spec.ANNOTATION_OWNER, "")
        return owner != self.owner and (owner_is_gone(owner) or self._owner_pod_gone(owner))

    def _owner_pod_gone(self, owner: str) -> bool:
        """Whether ``owner``'s host is an orchestrator pod that no longer exists in
        ``owner_namespace`` (another replica's pod, scaled down or deleted)."""
        host = owner.split("/", 1)[0]
        if not self.options.owner_namespace or not host or host == self.owner.split("/", 1)[0]:
            return False
        if host not in self._gone_hosts:
            from kubernetes.client import ApiException

            try:
                self._call(
                    f"looking up orchestrator pod {host}",
                    self.api.read_namespaced_pod,
                    host,
                    self.options.owner_namespace,
                )
                self._gone_hosts[host] = False
            except ApiException as exc:
                self._gone_hosts[host] = exc.status == 404  # refused (403...): not ours to judge
        return self._gone_hosts[host]

    async def _sweep(self) -> None:
        """Look for orphans every ``orphan_sweep_s`` while serving."""
        while True:
            await asyncio.sleep(self.options.orphan_sweep_s)
            try:
                removed = await asyncio.to_thread(self.remove_orphans)
            except SandboxUnavailable as exc:
                log.warning("could not look for orphaned sandbox pods: %s", exc)
                continue
            if removed:
                log.info("removed %d orphaned sandbox pods", removed)

    def _delete(self, kind: str, name: str) -> None:
        from kubernetes.client import ApiException

        method = (
            self.api.delete_namespaced_pod if kind == "pods" else self.api.delete_namespaced_secret
        )
        try:
            self._call(f"deleting {kind} {name}", method, name, self.options.namespace,
                       grace_period_seconds=0)  # fmt: skip
        except ApiException as exc:
            if exc.status != 404:
                log.warning("could not delete %s %s: %s %s", kind, name, exc.status, exc.reason)

    def own_pods(self) -> list[str]:
        """The names of this backend's pods, as the API server lists them."""
        selector = f"{pod_spec.LABEL_INSTANCE}={self.instance}"
        pods = self._call(
            "listing sandbox pods",
            self.api.list_namespaced_pod,
            self.options.namespace,
            label_selector=selector,
        )
        return [
            pod.metadata.name
            for pod in self._ours(pods.items)
            if pod.metadata.labels.get(pod_spec.LABEL_INSTANCE) == self.instance
        ]

    async def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        pools, self._pools = self._pools, {}
        await asyncio.gather(*(pool.close() for pool in pools.values()))
        try:
            left = await asyncio.to_thread(self.own_pods)
        except SandboxUnavailable as exc:
            log.warning("could not list this backend's pods to delete them: %s", exc)
            left = []
        for name in left:
            with contextlib.suppress(SandboxUnavailable):
                await asyncio.to_thread(self._delete, "pods", name)

    # --- pools -----------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        pools = list(self._pools.values())
        return {"idle": sum(p.idle for p in pools), "busy": sum(p.busy for p in pools)}

    def pool(self, tenant: str) -> WarmPool[KubernetesSandbox]:
        if not tenant:
            raise InvalidRequest("a tenant is required")
        if self._closed:
            raise SandboxUnavailable("the kubernetes backend is closed")
        key = (tenant, self.options.image, self.options.runtime_class)
        pool = self._pools.get(key)
        if pool is None:
            name = f"{pod_spec.slug(tenant)}-{self.options.runtime_class or 'default'}"

            async def create() -> KubernetesSandbox:
                return await self._start(tenant, name)

            pool = WarmPool(name, self.options.pool, create, self._stop, self._healthy)
            self._pools[key] = pool
        return pool

    async def acquire(self, tenant: str) -> Sandbox:
        pool = self.pool(tenant)
        if self._sweeper is None and self.options.orphan_sweep_s > 0:
            self._sweeper = asyncio.create_task(self._sweep(), name="latm-orphan-sweep")
        return await acquire_connected(pool)

    async def release(self, sandbox: Sandbox, faulted: bool) -> None:
        assert isinstance(sandbox, KubernetesSandbox)
        key = (sandbox.tenant, self.options.image, self.options.runtime_class)
        pool = self._pools.get(key)
        if pool is None:  # backend closed meanwhile
            await self._stop(sandbox)
            return
        await pool.release(sandbox, faulted)

    # --- one pod ---------------------------------------------------------------

    async def _start(self, tenant: str, pool: str) -> KubernetesSandbox:
        """Create one pod and its Secret; return once its server answers over mutual TLS."""
        SANDBOX_STARTS.labels(self.name).inc()
        name = f"latm-{pool}-{secrets.token_hex(4)}"
        secret = f"{name}-tls"
        credentials = mint(name)
        labels = pod_spec.labels(tenant, pool, self.instance)
        secret_body = pod_spec.secret_manifest(
            self.options, secret, credentials.pod_files(), labels, self.owner
        )
        pod_body = pod_spec.pod_manifest(
            self.options, name, secret, tenant, pool, self.instance, self.owner
        )
        namespace = self.options.namespace
        client: SandboxClient | None = None
        try:
            await self._acall("creating a Secret", self.api.create_namespaced_secret,
                              namespace, secret_body)  # fmt: skip
            await self._create_pod(pod_body)
            ip = await self._wait_running(name)
            client = _tls_client(f"{ip}:{self.options.sandbox_port}", credentials)
            await self._wait_ready(client, name)
        except BaseException:
            if client is not None:
                await client.close()
            # A pod whose creation timed out may exist all the same: delete it by name.
            await asyncio.shield(self._discard(name, secret))
            raise
        # Copied into the pod by its init container and read by its server: not needed again.
        await asyncio.to_thread(self._delete_quietly, "secrets", secret)
        return KubernetesSandbox(tenant, client, self.options.isolation[0], name)

    async def _create_pod(self, body: dict[str, Any]) -> None:
        from kubernetes.client import ApiException

        try:
            await self._acall("creating a pod", self.api.create_namespaced_pod,
                              self.options.namespace, body)  # fmt: skip
        except ApiException as exc:
            raise SandboxUnavailable(
                f"the Kubernetes API server refused the sandbox pod: {exc.status} {exc.reason}"
            ) from None

    async def _wait_running(self, name: str) -> str:
        """Poll the pod until it runs, is Ready and has an IP; fail if it fails or vanishes."""
        deadline = time.monotonic() + self.options.start_timeout_s
        while time.monotonic() < deadline:
            status = await self._live_status(name)
            running = status is not None and status.phase == "Running"
            if running and status.pod_ip and _ready(status):
                return str(status.pod_ip)
            await asyncio.sleep(POLL_S)
        raise SandboxUnavailable(
            f"sandbox pod {name} was not ready within {self.options.start_timeout_s:.0f} s"
        )

    async def _wait_ready(self, client: SandboxClient, name: str) -> None:
        """Wait for the server's health check over mutual TLS; fail early if the pod stops."""
        ready = asyncio.ensure_future(client.wait_ready(min(self.options.start_timeout_s, 30.0)))
        try:
            while not ready.done():
                await asyncio.wait({ready}, timeout=0.5)
                if not ready.done():
                    await self._live_status(name)
            ready.result()
        except _PodGone:
            raise
        except SandboxUnavailable:
            raise SandboxUnavailable(
                f"sandbox pod {name} runs, but its server did not answer over mutual TLS"
            ) from None
        finally:
            ready.cancel()

    async def _live_status(self, name: str) -> Any:
        """The pod's status (None before it has one).

        Raises:
            _PodGone: the pod vanished, or stopped (failed or succeeded), during start-up.
        """
        from kubernetes.client import ApiException

        try:
            pod = await self._acall("reading a pod", self.api.read_namespaced_pod_status,
                                    name, self.options.namespace)  # fmt: skip
        except ApiException as exc:
            raise _PodGone(
                f"sandbox pod {name} was lost during start-up: {exc.status} {exc.reason}"
            ) from None
        if pod.status is not None and pod.status.phase in {"Failed", "Succeeded"}:
            raise _PodGone(f"sandbox pod {name} stopped during start-up: {_why(pod.status)}")
        return pod.status

    async def _healthy(self, sandbox: KubernetesSandbox) -> bool:
        return await sandbox.client.healthy()

    async def _stop(self, sandbox: KubernetesSandbox) -> None:
        await sandbox.client.close()
        await self._discard(sandbox.pod, None)

    async def _discard(self, pod: str | None, secret: str | None) -> None:
        if pod is not None:
            await asyncio.to_thread(self._delete_quietly, "pods", pod)
        if secret is not None:
            await asyncio.to_thread(self._delete_quietly, "secrets", secret)

    def _delete_quietly(self, kind: str, name: str) -> None:
        """Delete, logging (not raising) when the API server is unreachable: a pod left
        behind is removed as an orphan by the next start of this orchestrator."""
        try:
            self._delete(kind, name)
        except SandboxUnavailable as exc:
            log.warning("could not delete %s %s: %s", kind, name, exc)


def _tls_client(target: str, credentials: PodCredentials) -> SandboxClient:
    import grpc

    channel_credentials = grpc.ssl_channel_credentials(
        root_certificates=credentials.ca_cert,
        private_key=credentials.client_key,
        certificate_chain=credentials.client_cert,
    )
    return SandboxClient(
        target, fast_reconnect=True, credentials=channel_credentials, server_name=SERVER_NAME
    )


def _ready(status: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in status.conditions or [])


def _why(status: Any) -> str:
    """What the pod's status says about its stop: reason, message, the containers' ends."""
    parts = [p for p in (status.reason, status.message) if p]
    for container in [*(status.init_container_statuses or []), *(status.container_statuses or [])]:
        terminated = container.state.terminated if container.state else None
        if terminated is not None:
            parts.append(
                f"{container.name} exited {terminated.exit_code}: "
                f"{terminated.reason or ''} {terminated.message or ''}".strip()
            )
    return "; ".join(parts) or f"phase {status.phase}"
