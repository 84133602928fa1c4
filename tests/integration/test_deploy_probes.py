"""The Kubernetes Deployment's probes (deploy/kubernetes/base/deployment.yaml) against a
real server listening with TLS as the Deployment configures it: the probe command, run
with the Deployment's environment (its TLS Secret's files in a folder here), passes while
the server serves and fails once it drains, or when the certificate lacks the name the
probe checks."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from tests.support.api import Api, StartApi
from tests.support.manifests import BASE, ROOT, container, environment, orchestrator, render
from tests.support.tls import Pki, make_pki

pytestmark = pytest.mark.integration

HEALTHCHECK = ROOT / "deploy" / "healthcheck.py"
# Where the image keeps the check (deploy/Dockerfile) and its interpreter.
IMAGE_PATHS = {"/opt/latm/healthcheck.py": str(HEALTHCHECK), "/opt/latm/venv/bin/python": ""}


def tls_secret(pki: Pki, folder: Path) -> Path:
    """The Secret latm-tls as Kubernetes mounts it: its keys as file names."""
    folder.mkdir()
    shutil.copy(pki.server_cert, folder / "tls.crt")
    shutil.copy(pki.server_key, folder / "tls.key")
    shutil.copy(pki.ca, folder / "ca.crt")
    return folder


def probe_run(port: int, secret: Path, **overrides: str) -> tuple[list[str], dict[str, str]]:
    """The readiness probe's command and the container's environment, for a server on
    ``port`` here and the TLS Secret mounted at ``secret``."""
    objects = render(BASE)
    main = container(orchestrator(objects))
    (mount,) = [m["mountPath"] for m in main["volumeMounts"] if m["name"] == "tls"]
    env = {"PATH": "/usr/bin:/bin"}
    for name, entry in environment(objects).items():
        if "value" in entry:
            env[name] = entry["value"].replace(mount, str(secret))
    env["LATM_LISTEN"] = f"{env['LATM_LISTEN'].rpartition(':')[0]}:{port}"
    env.update(overrides)
    command = [
        IMAGE_PATHS[part] or sys.executable for part in main["readinessProbe"]["exec"]["command"]
    ]
    return command, env


async def probe(api: Api, secret: Path, **overrides: str) -> tuple[int, str]:
    """Run the probe as the kubelet would; its exit status and output."""
    command, env = probe_run(api.server.port, secret, **overrides)
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, output.decode()


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki", server_names=["latm.latm.svc"])


async def test_the_probe_passes_while_the_server_serves_and_fails_once_it_drains(
    start_api: StartApi, pki: Pki, tmp_path: Path
) -> None:
    api = await start_api(
        listen="127.0.0.1:0", tls_cert_file=pki.server_cert, tls_key_file=pki.server_key
    )
    secret = tls_secret(pki, tmp_path / "secret")
    status, output = await probe(api, secret)
    assert (status, output.split()[-1]) == (0, "SERVING"), output
    # The probe asked over TLS: with the check's TLS off, it cannot talk to the server.
    status, output = await probe(api, secret, LATM_TLS_CERT_FILE="")
    assert status == 1, output

    await api.server.health.enter_graceful_shutdown()  # what SIGTERM starts with
    status, output = await probe(api, secret)
    assert (status, output.split()[-1]) == (1, "NOT_SERVING"), output


async def test_the_probe_checks_the_certificate_name(start_api: StartApi, tmp_path: Path) -> None:
    """A certificate without latm.latm.svc (the name the Deployment's probe checks) fails
    the probe: the README says the certificate must carry it."""
    pki = make_pki(tmp_path / "pki")  # localhost and 127.0.0.1 only
    api = await start_api(
        listen="127.0.0.1:0", tls_cert_file=pki.server_cert, tls_key_file=pki.server_key
    )
    secret = tls_secret(pki, tmp_path / "secret")
    status, output = await probe(api, secret)
    assert status == 1, output
    assert "unhealthy" in output
    status, output = await probe(api, secret, HEALTHCHECK_SERVER_NAME="localhost")
    assert status == 0, output
