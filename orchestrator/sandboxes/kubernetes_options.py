"""What the ``kubernetes`` backend runs with: data only, so the settings can hold it as a
group without importing the Kubernetes client. Each default and bound is stated here once.

The environment names (``LATM_KUBERNETES__NAMESPACE``, ``LATM_KUBERNETES__RUNTIME_CLASS``,
``LATM_KUBERNETES__IMAGE``, ``LATM_KUBERNETES__SANDBOX_PORT``,
``LATM_KUBERNETES__KUBECONFIG``, ``LATM_KUBERNETES__IN_CLUSTER``,
``LATM_KUBERNETES__AGENT_SANDBOX`` ...) are used by the manifests in ``deploy/kubernetes``.
"""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.images import sandbox_image_tag
from orchestrator.sandboxes.docker_options import IMAGE_HELP, ContainerLimits, SandboxImage
from orchestrator.sandboxes.pool import PoolConfig
from orchestrator.sandboxes.values import IsolationLevel

# RuntimeClass names whose handler is gVisor; any other class counts as a plain container.
GVISOR_CLASSES = frozenset({"gvisor", "runsc"})
LABEL_VALUE = r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$"


class KubernetesSettings(BaseModel):
    """The settings' ``kubernetes`` group: where sandbox pods go and what they look like."""

    model_config = ConfigDict(frozen=True)

    namespace: str = Field(
        default="latm-sandboxes", pattern=LABEL_VALUE, description="namespace of sandbox pods"
    )
    runtime_class: str = Field(
        default="gvisor",
        # Short enough for the pool's label value and the pods' names (63 characters).
        pattern=r"^([a-z0-9]([-a-z0-9.]{0,22}[a-z0-9])?)?$",
        description="runtimeClassName of sandbox pods (empty: the cluster's default runtime)",
    )
    image: SandboxImage = Field(default_factory=sandbox_image_tag, description=IMAGE_HELP)
    image_pull_policy: str = Field(
        default="IfNotPresent", description="imagePullPolicy of sandbox pods"
    )
    sandbox_port: int = Field(
        default=50051, ge=1, le=65535, description="port the sandbox server listens on"
    )
    kubeconfig: Path | None = Field(
        default=None, description="kubeconfig file (default: ~/.kube/config, or in-cluster)"
    )
    context: str | None = Field(default=None, description="kubeconfig context to use")
    in_cluster: bool = Field(
        default=False, description="use the pod's service account (the orchestrator in-cluster)"
    )
    agent_sandbox: bool = Field(
        default=False,
        description="use the agent-sandbox CRDs (SandboxTemplate/SandboxWarmPool/SandboxClaim) "
        "instead of bare pods; not supported yet",
    )
    owner_name: str = Field(
        default_factory=socket.gethostname,
        description="this orchestrator's identity on sandbox pods (in-cluster: its pod name, "
        "which a restarted container keeps, so it finds its orphans)",
    )
    owner_uid: str = Field(
        default="",
        description="the orchestrator pod's uid (downward API): sandbox pods get an "
        "ownerReference to it, so the cluster deletes them with it; only where sandboxes "
        "live in the orchestrator's own namespace (owner_namespace)",
    )
    owner_namespace: str = Field(
        default="",
        description="the orchestrator pod's namespace (downward API): sandboxes of an "
        "orchestrator pod that no longer exists there are orphans, removed by any replica",
    )
    orphan_sweep_s: float = Field(
        default=300.0, ge=0, le=86400, description="how often orphans are looked for (0: at start)"
    )
    api_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="timeout of each request to the API server"
    )
    start_timeout_s: float = Field(
        default=120.0, gt=0, le=3600, description="wait for a new sandbox pod to be ready"
    )
    limits: ContainerLimits = Field(default_factory=ContainerLimits)
    pool: PoolConfig = Field(default_factory=PoolConfig)

    @model_validator(mode="after")
    def _one_config_source(self) -> KubernetesSettings:
        if self.in_cluster and self.kubeconfig is not None:
            raise ValueError("set either kubeconfig or in_cluster, not both")
        if self.owner_uid and self.owner_namespace != self.namespace:
            # The garbage collector treats an owner in another namespace as absent and
            # deletes the dependents: every sandbox pod would go as soon as it is made.
            raise ValueError(
                "owner_uid needs the sandboxes in the orchestrator's own namespace "
                f"(owner_namespace {self.owner_namespace!r} is not {self.namespace!r}): an "
                "ownerReference across namespaces makes the cluster delete every sandbox pod"
            )
        return self

    @property
    def isolation(self) -> tuple[str, IsolationLevel]:
        """The label and level of this backend's sandboxes: gVisor's runtime class is the
        strongest; a cluster's default runtime (runc) is a hardened container."""
        runtime = self.runtime_class or "default"
        level = (
            IsolationLevel.GVISOR
            if self.runtime_class in GVISOR_CLASSES
            else IsolationLevel.CONTAINER
        )
        return f"kubernetes+{runtime}", level


class KubernetesOptions(KubernetesSettings):
    """A backend's options: its settings group, and what it shares with the other backends."""

    prefork: int = 2
    allow_modules: list[str] = Field(default_factory=list)
