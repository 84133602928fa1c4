"""deploy/kubernetes: the manifests validate offline against the Kubernetes schemas (strict:
an unknown or misspelt field fails) and hold the properties the deployment's security
rests on: sandbox pods reach nothing and are reached only by the orchestrator on the
sandbox port, the orchestrator may touch pods in the sandbox namespace and nothing else,
every container is non-root, read-only and without capabilities, the registry's URL
comes from a Secret, readiness asks the server's health service on the API port.

Every test runs on the base (rendered here) and on the example overlay (rendered with
``kubectl kustomize``): an overlay built from the example keeps those properties.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from pydantic import AliasChoices, BaseModel

from orchestrator.api.server import check_listen
from orchestrator.config import FLAT_NAMES, Settings
from tests.support.manifests import (
    BASE,
    EXAMPLE,
    KUBERNETES,
    ROOT,
    Obj,
    container,
    environment,
    find,
    kubectl_kustomize,
    literal,
    one,
    orchestrator,
    port_of,
    render,
)

# The oldest Kubernetes the manifests are for (gRPC and exec probes, PodSecurity
# admission, policy/v1 and node.k8s.io/v1 are all GA there) and the newest schemas
# kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.28.0", "1.37.0")
API_NAMESPACE = "latm"
SANDBOX_NAMESPACE = "latm-sandboxes"
ORCHESTRATOR_LABELS = {"app.kubernetes.io/name": "latm-orchestrator"}
# What the kubernetes backend labels sandbox pods with (orchestrator/sandboxes/pod_spec.py;
# checked against it where that module is there).
SANDBOX_LABELS = {"io.latm.platform": "latm", "io.latm.role": "sandbox"}
# The only objects without a namespace.
CLUSTER_KINDS = {"Namespace", "RuntimeClass"}
# The kubernetes backend's settings (group `kubernetes`), checked against Settings once it
# has that group; until then they must be these names, the ones the backend is built with.
KUBERNETES_SETTINGS = {"NAMESPACE", "RUNTIME_CLASS", "IMAGE", "SANDBOX_PORT", "IN_CLUSTER"}
POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Pod"}
HEALTHCHECK = "/opt/latm/healthcheck.py"


@pytest.fixture(scope="module", params=["base", "example overlay"])
def objects(request: pytest.FixtureRequest) -> list[Obj]:
    return render(BASE) if request.param == "base" else kubectl_kustomize(EXAMPLE)


def sandbox_port(objects: list[Obj]) -> int:
    return int(literal(objects, "LATM_KUBERNETES__SANDBOX_PORT"))


def api_ports(objects: list[Obj]) -> set[int]:
    return {
        port_of(literal(objects, name))
        for name in ("LATM_LISTEN", "LATM_HTTP_LISTEN")
        if name in environment(objects)
    }


def policy_ports(rule: Obj) -> set[tuple[str, Any]]:
    return {(port.get("protocol", "TCP"), port["port"]) for port in rule.get("ports", [])}


def pod_specs(objects: list[Obj]) -> list[Obj]:
    """The pod spec of every object that makes pods."""
    specs = []
    for obj in objects:
        if obj["kind"] == "Pod":
            specs.append(obj["spec"])
        elif obj["kind"] in POD_KINDS:
            specs.append(obj["spec"]["template"]["spec"])
    return specs


# --- schemas --------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_against_the_kubernetes_schema(
    objects: list[Obj], version: str
) -> None:
    assert len(objects) >= 10
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_strict_validation_refuses_a_misspelt_field() -> None:
    """The check above can fail: a field Kubernetes does not know is an error."""
    deployment = orchestrator(render(BASE))
    container(deployment)["securityContex"] = {"privileged": True}
    with pytest.raises(kubernetes_validate.ValidationError, match="securityContex"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def test_kubectl_renders_the_base_as_read_here() -> None:
    rendered = kubectl_kustomize(BASE)
    key = lambda obj: (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])  # noqa: E731
    assert sorted(rendered, key=key) == sorted(render(BASE), key=key)


def test_each_object_is_where_it_belongs(objects: list[Obj]) -> None:
    for obj in objects:
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in CLUSTER_KINDS:
            assert namespace is None, obj["metadata"]
        else:
            assert namespace in (API_NAMESPACE, SANDBOX_NAMESPACE), obj["metadata"]
    namespaces = {ns["metadata"]["name"] for ns in find(objects, "Namespace")}
    assert namespaces == {API_NAMESPACE, SANDBOX_NAMESPACE}


def test_both_namespaces_enforce_the_restricted_pod_security_standard(
    objects: list[Obj],
) -> None:
    for namespace in find(objects, "Namespace"):
        labels = namespace["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


# --- the sandbox namespace's network --------------------------------------------------


def test_the_sandbox_namespace_denies_all_traffic_by_default(objects: list[Obj]) -> None:
    deny = [
        policy
        for policy in find(objects, "NetworkPolicy", SANDBOX_NAMESPACE)
        if policy["spec"]["podSelector"] == {}
    ]
    assert len(deny) == 1
    spec = deny[0]["spec"]
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    assert not spec.get("ingress")
    assert not spec.get("egress")


def test_no_policy_lets_a_sandbox_pod_send_anything(objects: list[Obj]) -> None:
    for policy in find(objects, "NetworkPolicy", SANDBOX_NAMESPACE):
        assert not policy["spec"].get("egress"), policy["metadata"]["name"]


def test_sandbox_pods_accept_only_the_orchestrator_on_the_sandbox_port(
    objects: list[Obj],
) -> None:
    policies = find(objects, "NetworkPolicy", SANDBOX_NAMESPACE)
    rules = [rule for policy in policies for rule in policy["spec"].get("ingress", [])]
    assert rules, "sandbox pods accept nothing: the orchestrator cannot reach them"
    for policy in policies:
        if policy["spec"].get("ingress"):
            assert policy["spec"]["podSelector"] == {"matchLabels": SANDBOX_LABELS}
    deployment = orchestrator(objects)
    for rule in rules:
        assert policy_ports(rule) == {("TCP", sandbox_port(objects))}
        # Every source is the orchestrator's pods *and* its namespace, in one peer: two
        # peers would let any pod of that namespace, or such pods anywhere, in.
        for peer in rule["from"]:
            assert set(peer) == {"namespaceSelector", "podSelector"}, peer
            assert peer["namespaceSelector"] == {
                "matchLabels": {"kubernetes.io/metadata.name": deployment["metadata"]["namespace"]}
            }
            labels = peer["podSelector"]["matchLabels"]
            assert labels == ORCHESTRATOR_LABELS
            assert labels.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_the_policies_are_for_the_namespace_the_orchestrator_uses(objects: list[Obj]) -> None:
    assert literal(objects, "LATM_KUBERNETES__NAMESPACE") == SANDBOX_NAMESPACE


def test_sandbox_pods_name_no_owner_in_another_namespace(objects: list[Obj]) -> None:
    """An ownerReference from a sandbox pod to the orchestrator's pod would cross
    namespaces, which the garbage collector takes for a missing owner: it would delete
    every sandbox pod as soon as it is made."""
    assert orchestrator(objects)["metadata"]["namespace"] != SANDBOX_NAMESPACE
    assert "LATM_KUBERNETES__OWNER_UID" not in environment(objects)


def test_the_policies_select_the_pods_the_backend_makes() -> None:
    try:
        from orchestrator.sandboxes import pod_spec  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # the kubernetes backend is not merged yet: SANDBOX_LABELS stand
        return
    made = pod_spec.labels("acme", "pool", "instance")
    assert SANDBOX_LABELS.items() <= made.items()


# --- the orchestrator's network -------------------------------------------------------


def test_the_orchestrator_is_reached_only_on_its_api_ports(objects: list[Obj]) -> None:
    policy = one(objects, "NetworkPolicy", "latm-orchestrator")["spec"]
    assert policy["podSelector"] == {"matchLabels": ORCHESTRATOR_LABELS}
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    opened = {port for rule in policy["ingress"] for _, port in policy_ports(rule)}
    assert opened == api_ports(objects)
    assert all(rule.get("ports") for rule in policy["ingress"])


def test_the_orchestrator_reaches_sandboxes_dns_and_postgres_on_their_ports_only(
    objects: list[Obj],
) -> None:
    egress = one(objects, "NetworkPolicy", "latm-orchestrator")["spec"]["egress"]
    assert all(rule.get("ports") for rule in egress), "a rule opens every port"
    ports = set().union(*(policy_ports(rule) for rule in egress))
    assert {("UDP", 53), ("TCP", 53), ("TCP", 5432)} <= ports
    to_sandboxes = [
        rule
        for rule in egress
        for peer in rule.get("to", [])
        if peer.get("podSelector") == {"matchLabels": SANDBOX_LABELS}
    ]
    assert len(to_sandboxes) == 1
    assert policy_ports(to_sandboxes[0]) == {("TCP", sandbox_port(objects))}
    assert to_sandboxes[0]["to"][0]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": SANDBOX_NAMESPACE}
    }


# --- RBAC -----------------------------------------------------------------------------


def test_nothing_cluster_wide_is_granted(objects: list[Obj]) -> None:
    assert not find(objects, "ClusterRole")
    assert not find(objects, "ClusterRoleBinding")


def test_the_orchestrator_may_handle_pods_in_the_sandbox_namespace_only(
    objects: list[Obj],
) -> None:
    """In the sandbox namespace: pods and their credential Secrets; in its own: only
    reading pods (whether the replica that owned a sandbox still exists)."""
    roles = find(objects, "Role")
    assert {r["metadata"]["namespace"] for r in roles} == {SANDBOX_NAMESPACE, API_NAMESPACE}
    granted: dict[tuple[str, str], set[str]] = {}
    for role in roles:
        for rule in role["rules"]:
            assert rule["apiGroups"] == [""], rule
            assert "resourceNames" not in rule or rule["resourceNames"]
            for resource in rule["resources"]:
                key = (role["metadata"]["namespace"], resource)
                granted.setdefault(key, set()).update(rule["verbs"])
    # Secrets: the backend makes one per sandbox pod (its mutual-TLS credentials).
    assert granted == {
        (SANDBOX_NAMESPACE, "pods"): {"create", "get", "list", "watch", "delete"},
        (SANDBOX_NAMESPACE, "pods/status"): {"get"},
        (SANDBOX_NAMESPACE, "secrets"): {"create", "list", "delete"},
        (API_NAMESPACE, "pods"): {"get"},
    }


def test_the_role_is_bound_to_the_orchestrators_account_alone(objects: list[Obj]) -> None:
    bindings = find(objects, "RoleBinding")
    assert {b["metadata"]["namespace"] for b in bindings} == {SANDBOX_NAMESPACE, API_NAMESPACE}
    template = orchestrator(objects)["spec"]["template"]["spec"]
    account = {
        "kind": "ServiceAccount",
        "name": template["serviceAccountName"],
        "namespace": API_NAMESPACE,
    }
    for binding in bindings:
        assert binding["subjects"] == [account]
        assert binding["roleRef"]["kind"] == "Role"
    one(objects, "ServiceAccount", template["serviceAccountName"])


def test_sandbox_pods_get_no_api_token_by_default(objects: list[Obj]) -> None:
    accounts = find(objects, "ServiceAccount", SANDBOX_NAMESPACE)
    assert [a["metadata"]["name"] for a in accounts] == ["default"]
    assert accounts[0]["automountServiceAccountToken"] is False


def test_the_sandbox_namespace_has_a_pod_quota(objects: list[Obj]) -> None:
    (quota,) = find(objects, "ResourceQuota", SANDBOX_NAMESPACE)
    assert 0 < int(quota["spec"]["hard"]["pods"]) <= 1000


# --- the RuntimeClass -----------------------------------------------------------------


def test_sandboxes_run_under_the_gvisor_runtime_class(objects: list[Obj]) -> None:
    (runtime,) = find(objects, "RuntimeClass")
    assert runtime["handler"] == "runsc"
    assert literal(objects, "LATM_KUBERNETES__RUNTIME_CLASS") == runtime["metadata"]["name"]


# --- the Deployment -------------------------------------------------------------------


def test_at_least_two_replicas_and_one_always_available(objects: list[Obj]) -> None:
    deployment = orchestrator(objects)
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (budget,) = find(objects, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]


def health_port(probe: Obj, objects: list[Obj]) -> int:
    """The port a probe asks the gRPC health service (grpc.health.v1, the server's overall
    status) on: Kubernetes' own gRPC probe, or the image's health check, which asks the
    server at LATM_LISTEN (deploy/healthcheck.py)."""
    if "grpc" in probe:
        assert probe["grpc"].get("service", "") == ""
        return int(probe["grpc"]["port"])
    command = probe["exec"]["command"]
    assert command[-1] == HEALTHCHECK
    assert len(command) == 2
    assert "HEALTHCHECK_TARGET" not in environment(objects)
    return port_of(literal(objects, "LATM_LISTEN"))


def test_probes_ask_the_health_service_on_the_api_port(objects: list[Obj]) -> None:
    main = container(orchestrator(objects))
    grpc_port = next(p["containerPort"] for p in main["ports"] if p["name"] == "grpc")
    assert grpc_port == port_of(literal(objects, "LATM_LISTEN"))
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert health_port(main[kind], objects) == grpc_port, kind


def test_the_image_ships_the_health_check_the_probes_run(objects: list[Obj]) -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert f"COPY deploy/healthcheck.py {HEALTHCHECK}" in dockerfile
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        python = container(orchestrator(objects))[kind]["exec"]["command"][0]
        assert python == "/opt/latm/venv/bin/python"
        assert "python3 -m venv /opt/latm/venv" in dockerfile


def test_health_check_settings_are_ones_the_check_reads(objects: list[Obj]) -> None:
    source = (ROOT / "deploy" / "healthcheck.py").read_text()
    names = [name for name in environment(objects) if name.startswith("HEALTHCHECK_")]
    assert names
    for name in names:
        assert f'"{name}"' in source, name
    # The CA the check trusts is in the mounted TLS Secret, next to the server's pair.
    mounts = {m["mountPath"] for m in container(orchestrator(objects))["volumeMounts"]}
    for name in ("HEALTHCHECK_CA_FILE", "LATM_TLS_CERT_FILE", "LATM_TLS_KEY_FILE"):
        assert str(Path(literal(objects, name)).parent) in mounts, name


def test_a_stopping_replica_drains_within_its_grace_period(objects: list[Obj]) -> None:
    deployment = orchestrator(objects)
    pre_stop = container(deployment)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    # preStop, then SIGTERM: the calls in flight get LATM_SHUTDOWN_GRACE_S, then the
    # sandbox pods are deleted (10 s left for that).
    needed = int(pre_stop[1]) + float(literal(objects, "LATM_SHUTDOWN_GRACE_S")) + 10
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= needed


def test_the_service_serves_the_api_ports(objects: list[Obj]) -> None:
    service = one(objects, "Service", "latm")["spec"]
    deployment = orchestrator(objects)
    assert (
        service["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    named = {p["name"]: p["containerPort"] for p in container(deployment)["ports"]}
    assert {named[p["targetPort"]] for p in service["ports"]} == api_ports(objects)
    grpc = next(p for p in service["ports"] if p["name"] == "grpc")
    assert grpc["appProtocol"] == "grpc"


def test_the_database_url_comes_from_a_secret(objects: list[Obj]) -> None:
    url = environment(objects)["LATM_DATABASE_URL"]
    assert "value" not in url
    assert url["valueFrom"]["secretKeyRef"]["name"]
    for config in find(objects, "ConfigMap"):
        for name, value in config["data"].items():
            assert "DATABASE_URL" not in name, name
            assert "API_KEY" not in name, name
            assert not re.search(r"://[^/\s]*@", value), f"{name} holds credentials"
    assert not find(objects, "Secret"), "secrets are made on the cluster, not shipped"


def test_every_container_is_unprivileged(objects: list[Obj]) -> None:
    specs = pod_specs(objects)
    assert specs
    for spec in specs:
        pod = spec.get("securityContext", {})
        for main in spec["containers"] + spec.get("initContainers", []):
            context = main["securityContext"]
            assert context.get("runAsNonRoot", pod.get("runAsNonRoot")) is True
            assert context.get("runAsUser", pod.get("runAsUser", 1)) != 0
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context.get("privileged", False) is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert not context["capabilities"].get("add")
            seccomp = context.get("seccompProfile", pod.get("seccompProfile"))
            assert seccomp == {"type": "RuntimeDefault"}
        assert not spec.get("hostNetwork")
        assert not spec.get("hostPID")
        assert not any("hostPath" in volume for volume in spec.get("volumes", []))


def test_the_paths_the_server_writes_are_volumes(objects: list[Obj]) -> None:
    """The root filesystem is read-only: the image's TMPDIR and HOME, and /tmp, are not."""
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    writable = {"/tmp"} | {
        match.group(2) for match in re.finditer(r"\b(TMPDIR|HOME)=(\S+)", dockerfile)
    }
    assert len(writable) == 3
    main = container(orchestrator(objects))
    volumes = {v["name"]: v for v in orchestrator(objects)["spec"]["template"]["spec"]["volumes"]}
    mounted = {m["mountPath"]: volumes[m["name"]] for m in main["volumeMounts"]}
    for path in writable:
        assert "emptyDir" in mounted[path], path


# --- the settings ---------------------------------------------------------------------


def settings_names() -> set[str]:
    """Every variable name Settings reads for a top-level field."""
    names = {f"LATM_{flat.upper()}" for flat in FLAT_NAMES}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {choice.upper() for choice in alias.choices if isinstance(choice, str)}
        else:
            names.add(f"LATM_{name.upper()}")
    return names


def nested_field_exists(name: str) -> bool:
    """Whether ``LATM_GROUP__FIELD`` (any depth) names a field of Settings' groups."""
    model: type[BaseModel] = Settings
    for part in name.removeprefix("LATM_").lower().split("__"):
        field = model.model_fields.get(part)
        if field is None:
            return False
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            model = field.annotation
    return True


def test_every_latm_variable_is_a_setting(objects: list[Obj]) -> None:
    known = settings_names()
    names = [name for name in environment(objects) if name.startswith("LATM_")]
    assert len(names) >= 10
    for name in names:
        group = name.removeprefix("LATM_").split("__")[0]
        if group == "KUBERNETES" and "kubernetes" not in Settings.model_fields:
            # The kubernetes backend's group is not in Settings yet: its names are fixed,
            # and no setting of another shape may stand for them (they would be ignored).
            assert name.removeprefix("LATM_KUBERNETES__") in KUBERNETES_SETTINGS, name
            assert not [field for field in Settings.model_fields if "kubernetes" in field]
        elif "__" in name:
            assert nested_field_exists(name), name
        else:
            assert name in known, f"{name} is no setting (orchestrator/config.py)"


def test_the_settings_load_and_the_listeners_pass_the_servers_checks(
    objects: list[Obj], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The literal settings parse, and the server would listen with them: TLS on both
    listeners, as it refuses plaintext beyond loopback."""
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setenv("LATM_SECRETS_DIR", str(tmp_path))
    for name, entry in environment(objects).items():
        if name.startswith("LATM_") and "value" in entry:
            monkeypatch.setenv(name, entry["value"])
    settings = Settings()
    assert settings.backend == "kubernetes"
    assert settings.tls_cert_file
    assert settings.tls_key_file
    assert not settings.allow_insecure
    check_listen(settings, settings.listen)
    check_listen(settings, settings.http_listen)


def test_the_readme_names_the_image_and_the_secrets(objects: list[Obj]) -> None:
    readme = (KUBERNETES / "README.md").read_text()
    assert "latm-orchestrator:latest" in readme
    main = container(orchestrator(objects))
    secrets = {
        entry["valueFrom"]["secretKeyRef"]["name"]
        for entry in main["env"]
        if "secretKeyRef" in entry.get("valueFrom", {})
    }
    volumes = orchestrator(objects)["spec"]["template"]["spec"]["volumes"]
    secrets |= {v["secret"]["secretName"] for v in volumes if "secret" in v}
    for secret in secrets:
        assert secret in readme, secret
