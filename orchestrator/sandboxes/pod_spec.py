"""The sandbox pod and its credentials Secret, as Kubernetes JSON (plain dicts).

The pod (one sandbox server, one tenant) runs:

* under ``runtimeClassName`` (gVisor by default), as a non-root user, with a read-only
  root filesystem, all capabilities dropped, no privilege escalation, the runtime's
  default seccomp profile, no service-account token, no service links, no host
  namespaces, and CPU / memory limits equal to its requests;
* with ``/tmp`` and ``/dev/shm`` as memory-backed, size-limited ``emptyDir`` volumes;
* with its mutual-TLS credentials (:mod:`orchestrator.sandboxes.pod_tls`) in a Secret
  that only its init container mounts. The init container copies them to a small
  memory-backed ``emptyDir``; the server reads them from there and removes them before
  any tool code runs, so tool code finds neither the Secret's volume (not mounted in
  its container), nor the files, nor a token to ask the API server for the Secret.

A pids limit is not a pod field: nodes set it (the kubelet's ``podPidsLimit``); the
pod carries the wanted value as the annotation :data:`ANNOTATION_PIDS` for the
operator's node configuration (and the tests' kubelet stand-in), and the sandbox's own
per-worker rlimits bound processes inside it regardless.

Labels name the platform, tenant, pool and backend instance; annotations carry the
full tenant name and the owning orchestrator process, which a restarted orchestrator
uses to find and remove its orphans. With ``owner_uid`` set, an ownerReference to the
orchestrator's pod lets the cluster's garbage collector remove them as well.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from orchestrator.sandboxes.kubernetes_options import KubernetesOptions

PLATFORM = "latm"
LABEL_PLATFORM = "io.latm.platform"
LABEL_TENANT = "io.latm.tenant"  # a label-safe slug; the annotation has the full name
LABEL_POOL = "io.latm.pool"
LABEL_INSTANCE = "io.latm.instance"  # one backend object
LABEL_ROLE = "io.latm.role"  # "sandbox": what the NetworkPolicy selects
ANNOTATION_TENANT = "io.latm/tenant"
ANNOTATION_OWNER = "io.latm/owner"  # the orchestrator process: HOST/PID/START
ANNOTATION_PIDS = "io.latm/pids-limit"
SANDBOX_UID = 10001
CONTAINER = "sandbox"
INIT_CONTAINER = "credentials"
SECRET_MOUNT = "/run/latm/secret"  # noqa: S105 - a path
TLS_DIR = "/run/latm/tls"
TLS_FILES = ("tls.key", "tls.crt", "ca.crt")
SLUG_MAX = 24


def slug(text: str) -> str:
    """``text`` as a piece of a label value or object name (lowercase, dashes)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:SLUG_MAX] or "t"


def labels(tenant: str, pool: str, instance: str) -> dict[str, str]:
    return {
        LABEL_PLATFORM: PLATFORM,
        LABEL_ROLE: "sandbox",
        LABEL_TENANT: slug(tenant),
        LABEL_POOL: pool,
        LABEL_INSTANCE: instance,
    }


def _security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": SANDBOX_UID,
        "runAsGroup": SANDBOX_UID,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _server_command(options: KubernetesOptions) -> list[str]:
    command = ["python", "-I", "-m", "sandbox", "--listen", f"0.0.0.0:{options.sandbox_port}"]
    command += ["--tls-dir", TLS_DIR, f"--prefork={options.prefork}"]
    # The pod's own memory-backed volumes: emptied between calls by the template. The
    # credentials' folder is one too, and writable: once the server has taken the files
    # out, nothing a call leaves there may reach the next call.
    command += ["--scratch=/tmp", "--scratch=/dev/shm", f"--scratch={TLS_DIR}"]
    command += [f"--allow-module={m}" for m in options.allow_modules]
    return command


def pod_manifest(  # noqa: PLR0917 - one pod's identity, all required
    options: KubernetesOptions,
    name: str,
    secret_name: str,
    tenant: str,
    pool: str,
    instance: str,
    owner: str,
) -> dict[str, Any]:
    """The sandbox pod ``name`` for ``tenant``, its credentials in Secret ``secret_name``."""
    limits = options.limits
    resources = {"cpu": f"{int(limits.cpus * 1000)}m", "memory": f"{limits.memory_mb}Mi"}
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": options.namespace,
        "labels": labels(tenant, pool, instance),
        "annotations": {
            ANNOTATION_TENANT: tenant,
            ANNOTATION_OWNER: owner,
            ANNOTATION_PIDS: str(limits.pids),
        },
    }
    if options.owner_uid:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": options.owner_name,
                "uid": options.owner_uid,
                "controller": False,
                "blockOwnerDeletion": False,
            }
        ]
    spec: dict[str, Any] = {
        "restartPolicy": "Never",  # a sandbox that stopped is replaced, never restarted
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "shareProcessNamespace": False,
        "terminationGracePeriodSeconds": 5,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": SANDBOX_UID,
            "runAsGroup": SANDBOX_UID,
            "fsGroup": SANDBOX_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [
            {
                "name": INIT_CONTAINER,
                "image": options.image,
                "imagePullPolicy": options.image_pull_policy,
                "command": ["cp", "-L", *(f"{SECRET_MOUNT}/{f}" for f in TLS_FILES), TLS_DIR],
                "securityContext": _security_context(),
                "resources": {"limits": {"cpu": "100m", "memory": "32Mi"}},
                "volumeMounts": [
                    {"name": "secret", "mountPath": SECRET_MOUNT, "readOnly": True},
                    {"name": "tls", "mountPath": TLS_DIR},
                ],
            }
        ],
        "containers": [
            {
                "name": CONTAINER,
                "image": options.image,
                "imagePullPolicy": options.image_pull_policy,
                "command": _server_command(options),
                "ports": [{"name": "grpc", "containerPort": options.sandbox_port}],
                "securityContext": _security_context(),
                "resources": {"limits": resources, "requests": resources},
                "volumeMounts": [
                    {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the pod's own
                    {"name": "shm", "mountPath": "/dev/shm"},  # noqa: S108
                    {"name": "tls", "mountPath": TLS_DIR},
                ],
            }
        ],
        "volumes": [
            _memory_dir("tmp", f"{limits.tmpfs_mb}Mi"),
            _memory_dir("shm", f"{limits.tmpfs_mb}Mi"),
            _memory_dir("tls", "1Mi"),
            {"name": "secret", "secret": {"secretName": secret_name, "defaultMode": 0o440}},
        ],
    }
    if options.runtime_class:
        spec["runtimeClassName"] = options.runtime_class
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def _memory_dir(name: str, size: str) -> dict[str, Any]:
    return {"name": name, "emptyDir": {"medium": "Memory", "sizeLimit": size}}


def secret_manifest(
    options: KubernetesOptions,
    name: str,
    files: dict[str, bytes],
    pod_labels: dict[str, str],
    owner: str,
) -> dict[str, Any]:
    """The Secret holding one pod's credentials (removed once the pod has copied them),
    labelled like its pod and annotated with the same owner, so a restarted orchestrator
    removes it too if it crashed before it could."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "immutable": True,
        "metadata": {
            "name": name,
            "namespace": options.namespace,
            "labels": pod_labels,
            "annotations": {ANNOTATION_OWNER: owner},
        },
        "data": {key: base64.b64encode(value).decode() for key, value in files.items()},
    }
