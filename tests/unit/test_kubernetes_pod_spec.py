"""The kubernetes backend's pod template, its per-pod credentials and its settings, with
no cluster and no container: what every sandbox pod asks the cluster for."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import Settings
from orchestrator.errors import InvalidRequest
from orchestrator.sandboxes.factory import BackendName, create_backend
from orchestrator.sandboxes.kubernetes_options import KubernetesOptions, KubernetesSettings
from orchestrator.sandboxes.pod_spec import (
    ANNOTATION_OWNER,
    ANNOTATION_PIDS,
    ANNOTATION_TENANT,
    LABEL_INSTANCE,
    LABEL_PLATFORM,
    LABEL_POOL,
    LABEL_TENANT,
    TLS_DIR,
    pod_manifest,
    secret_manifest,
    slug,
)
from orchestrator.sandboxes.pod_tls import SERVER_NAME, mint
from orchestrator.sandboxes.values import IsolationLevel

OPTIONS = KubernetesOptions(namespace="sandboxes", image="latm-sandbox:test")


def _pod(options: KubernetesOptions = OPTIONS, tenant: str = "Acme Corp") -> dict[str, Any]:
    return pod_manifest(options, "latm-acme-1", "latm-acme-1-tls", tenant, "acme-gvisor",
                        "abcd1234", "host/42/777")  # fmt: skip


pytestmark = pytest.mark.usefixtures("clean_latm_environment")


def test_every_container_is_hardened() -> None:
    spec = _pod()["spec"]
    for container in [*spec["initContainers"], *spec["containers"]]:
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["runAsUser"] == 10001
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["privileged"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert "limits" in container["resources"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_the_pod_gets_no_token_no_host_namespaces_and_gvisor_by_default() -> None:
    spec = _pod()["spec"]
    assert spec["runtimeClassName"] == "gvisor"
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert (spec["hostNetwork"], spec["hostPID"], spec["hostIPC"]) == (False, False, False)
    assert spec["restartPolicy"] == "Never"
    no_class = _pod(OPTIONS.model_copy(update={"runtime_class": ""}))["spec"]
    assert "runtimeClassName" not in no_class


def test_limits_and_memory_backed_scratch_volumes() -> None:
    options = OPTIONS.model_copy(
        update={"limits": OPTIONS.limits.model_copy(update={"memory_mb": 256, "cpus": 0.5,
                                                             "tmpfs_mb": 8, "pids": 64})}
    )  # fmt: skip
    pod = _pod(options)
    (server,) = pod["spec"]["containers"]
    assert server["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}
    assert server["resources"]["requests"] == server["resources"]["limits"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["tmp"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "8Mi"}
    assert volumes["shm"]["emptyDir"]["medium"] == "Memory"
    mounts = {m["mountPath"]: m["name"] for m in server["volumeMounts"]}
    assert mounts["/tmp"] == "tmp"
    assert pod["metadata"]["annotations"][ANNOTATION_PIDS] == "64"


def test_the_credentials_secret_is_mounted_in_the_init_container_only() -> None:
    spec = _pod()["spec"]
    (init,) = spec["initContainers"]
    (server,) = spec["containers"]
    assert "secret" in {m["name"] for m in init["volumeMounts"]}
    assert "secret" not in {m["name"] for m in server["volumeMounts"]}
    assert {m["name"] for m in server["volumeMounts"]} >= {"tls"}
    secret_volume = next(v for v in spec["volumes"] if v["name"] == "secret")
    assert secret_volume["secret"]["secretName"] == "latm-acme-1-tls"
    assert "--tls-dir" in server["command"]
    assert server["command"][server["command"].index("--tls-dir") + 1] == TLS_DIR
    assert "0.0.0.0:50051" in server["command"]
    # Every writable folder of the server's container is emptied between calls.
    writable = {m["mountPath"] for m in server["volumeMounts"] if not m.get("readOnly")}
    assert {f"--scratch={path}" for path in writable} <= set(server["command"])


def test_labels_and_annotations_name_platform_tenant_pool_and_owner() -> None:
    metadata = _pod()["metadata"]
    assert metadata["labels"][LABEL_PLATFORM] == "latm"
    assert metadata["labels"][LABEL_TENANT] == "acme-corp"  # label-safe
    assert metadata["labels"][LABEL_POOL] == "acme-gvisor"
    assert metadata["labels"][LABEL_INSTANCE] == "abcd1234"
    assert metadata["annotations"][ANNOTATION_TENANT] == "Acme Corp"
    assert metadata["annotations"][ANNOTATION_OWNER] == "host/42/777"
    assert "ownerReferences" not in metadata
    owned = _pod(OPTIONS.model_copy(update={"owner_uid": "u-1", "owner_name": "orch-0"}))
    (reference,) = owned["metadata"]["ownerReferences"]
    assert reference == {"apiVersion": "v1", "kind": "Pod", "name": "orch-0", "uid": "u-1",
                         "controller": False, "blockOwnerDeletion": False}  # fmt: skip


def test_each_pod_gets_its_own_ca_and_certificates_of_one_purpose() -> None:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    one, two = mint("a"), mint("b")
    assert one.ca_cert != two.ca_cert
    ca = x509.load_pem_x509_certificate(one.ca_cert)
    server = x509.load_pem_x509_certificate(one.server_cert)
    client = x509.load_pem_x509_certificate(one.client_cert)
    for leaf in (server, client):
        leaf.verify_directly_issued_by(ca)
    other_ca = x509.load_pem_x509_certificate(two.ca_cert)
    with pytest.raises(ValueError, match="issuer"):
        client.verify_directly_issued_by(other_ca)
    usage = x509.ExtendedKeyUsage
    assert list(server.extensions.get_extension_for_class(usage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    assert list(client.extensions.get_extension_for_class(usage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [SERVER_NAME]
    files = one.pod_files()
    assert set(files) == {"tls.key", "tls.crt", "ca.crt"}
    assert one.client_key not in files.values()  # the orchestrator's key stays home
    secret = secret_manifest(OPTIONS, "s", files, {"io.latm.platform": "latm"}, "host/42/777")
    assert secret["immutable"] is True
    assert secret["metadata"]["annotations"][ANNOTATION_OWNER] == "host/42/777"
    assert base64.b64decode(secret["data"]["tls.crt"]) == one.server_cert


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATM_BACKEND", "kubernetes")
    monkeypatch.setenv("LATM_KUBERNETES__NAMESPACE", "tools")
    monkeypatch.setenv("LATM_KUBERNETES__RUNTIME_CLASS", "kata")
    monkeypatch.setenv("LATM_KUBERNETES__IMAGE", "registry.example/latm-sandbox:1")
    monkeypatch.setenv("LATM_KUBERNETES__SANDBOX_PORT", "6000")
    monkeypatch.setenv("LATM_KUBERNETES__IN_CLUSTER", "true")
    monkeypatch.setenv("LATM_KUBERNETES__AGENT_SANDBOX", "false")
    monkeypatch.setenv("LATM_KUBERNETES__POOL__MIN_IDLE", "3")
    settings = Settings()
    assert settings.backend == BackendName.KUBERNETES
    group = settings.kubernetes
    assert (group.namespace, group.runtime_class, group.image) == (
        "tools", "kata", "registry.example/latm-sandbox:1")  # fmt: skip
    assert (group.sandbox_port, group.in_cluster, group.pool.min_idle) == (6000, True, 3)
    assert group.isolation == ("kubernetes+kata", IsolationLevel.CONTAINER)
    assert KubernetesSettings().isolation == ("kubernetes+gvisor", IsolationLevel.GVISOR)
    with pytest.raises(ValueError, match="runtime_class"):
        KubernetesSettings(runtime_class="Not a DNS name")
    with pytest.raises(ValueError, match="runtime_class"):
        KubernetesSettings(runtime_class="x" * 25)
    # The backend's pool label and pod names: latm-<tenant slug>-<class>-<8 hex>.
    longest = f"latm-{slug('t' * 200)}-{'x' * 24}-{'0' * 8}"
    assert len(longest) <= 63
    monkeypatch.setenv("LATM_KUBERNETES__KUBECONFIG", "/etc/kube/config")
    with pytest.raises(ValueError, match="either kubeconfig or in_cluster"):
        Settings()


def test_the_factory_refuses_what_the_kubernetes_backend_cannot_do() -> None:
    with pytest.raises(InvalidRequest, match="RUNTIME_CLASS"):
        create_backend("kubernetes", Settings(), runtime="runsc")
    agent = Settings(kubernetes=KubernetesSettings(agent_sandbox=True))
    with pytest.raises(InvalidRequest, match="not supported yet"):
        create_backend("kubernetes", agent)


def test_the_backend_refuses_to_run_below_the_minimum_isolation() -> None:
    from orchestrator.errors import IsolationTooWeak

    weak = Settings(
        kubernetes=KubernetesSettings(runtime_class=""), min_isolation=IsolationLevel.GVISOR
    )
    with pytest.raises(IsolationTooWeak):
        create_backend("kubernetes", weak)


def test_the_pod_and_secret_are_valid_kubernetes_objects() -> None:
    """Checked offline against the Kubernetes 1.37 OpenAPI schema (strict: no unknown field)."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    owned = OPTIONS.model_copy(update={"owner_uid": "u-1", "allow_modules": ["math"]})
    kubernetes_validate.validate(_pod(owned), "1.37", strict=True)
    secret = secret_manifest(
        OPTIONS, "s", mint("p").pod_files(), {"io.latm.platform": "latm"}, "h/1/2"
    )
    kubernetes_validate.validate(secret, "1.37", strict=True)


def test_the_shipped_network_policies_select_sandbox_pods_on_their_port() -> None:
    """deploy/kubernetes/base: every pod of the sandbox namespace denied in and out, and
    the backend's sandbox pods open only to the orchestrator, on the sandbox port."""
    import yaml

    path = (
        Path(__file__).resolve().parents[2] / "deploy/kubernetes/base/networkpolicy-sandboxes.yaml"
    )
    deny, ingress = yaml.safe_load_all(path.read_text())
    namespace = KubernetesSettings().namespace
    assert deny["metadata"]["namespace"] == ingress["metadata"]["namespace"] == namespace
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    labels = _pod()["metadata"]["labels"]
    assert ingress["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert ingress["spec"]["policyTypes"] == ["Ingress"]  # egress stays denied
    (rule,) = ingress["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": OPTIONS.sandbox_port}]


def test_an_owner_reference_across_namespaces_is_refused() -> None:
    """The garbage collector deletes a namespaced pod whose owner is in another namespace
    as soon as it is made; an owner in the sandboxes' own namespace is fine."""
    with pytest.raises(ValueError, match="across namespaces makes the cluster delete"):
        KubernetesSettings(namespace="latm-sandboxes", owner_uid="u-1", owner_namespace="latm")
    with pytest.raises(ValueError, match="owner_uid needs the sandboxes"):
        KubernetesSettings(namespace="latm-sandboxes", owner_uid="u-1")
    same = KubernetesSettings(namespace="latm", owner_uid="u-1", owner_namespace="latm")
    assert same.owner_uid == "u-1"
    assert KubernetesSettings(owner_namespace="latm").owner_uid == ""
