"""The sandbox server's side of the Kubernetes backend's pod network, in-process: mutual
TLS from ``--tls-dir`` (files read, then removed) and the tunnel's relay to a TCP port."""

from __future__ import annotations

import socket
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from orchestrator.sandboxes.client import SandboxClient
from orchestrator.sandboxes.pod_tls import SERVER_NAME, PodCredentials, mint
from sandbox.__main__ import _take_tls
from sandbox.server import _listen
from sandbox.tunnel import _local_address


def test_the_tls_files_are_read_once_and_removed(tmp_path: Path) -> None:
    credentials = mint("pod")
    for name, data in credentials.pod_files().items():
        (tmp_path / name).write_bytes(data)
    key, cert, ca = _take_tls(str(tmp_path)) or (b"", b"", b"")
    assert (key, cert, ca) == (credentials.server_key, credentials.server_cert,
                               credentials.ca_cert)  # fmt: skip
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError):
        _take_tls(str(tmp_path))  # a server restarted in the same pod cannot serve again
    assert _take_tls(None) is None


def test_the_tunnel_relays_to_the_servers_own_loopback_port() -> None:
    assert _local_address("unix:/run/latm/sandbox.sock") == (
        socket.AF_UNIX,
        "/run/latm/sandbox.sock",
    )
    assert _local_address("unix-abstract:latm") == (socket.AF_UNIX, "\0latm")
    assert _local_address("0.0.0.0:50051") == (socket.AF_INET, ("127.0.0.1", 50051))
    assert _local_address("[::]:50051") == (socket.AF_INET6, ("::1", 50051))
    with pytest.raises(ValueError, match="HOST:PORT"):
        _local_address("localhost")


async def _served(credentials: PodCredentials) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)  # type: ignore[attr-defined]
    tls = (credentials.server_key, credentials.server_cert, credentials.ca_cert)
    port = _listen(server, "127.0.0.1:0", tls)
    await server.start()
    return server, port


async def test_only_a_client_of_the_pods_own_ca_is_served() -> None:
    credentials, other = mint("pod"), mint("other")
    server, port = await _served(credentials)
    target = f"127.0.0.1:{port}"
    try:
        own = grpc.ssl_channel_credentials(
            credentials.ca_cert, credentials.client_key, credentials.client_cert
        )
        client = SandboxClient(target, credentials=own, server_name=SERVER_NAME)
        assert await client.healthy()
        await client.close()
        refused = {
            "plaintext": grpc.aio.insecure_channel(target),
            "no client certificate": _channel(target, credentials.ca_cert),
            "another pod's client": _channel(
                target, credentials.ca_cert, other.client_key, other.client_cert
            ),
            # The pod's own server certificate is no client certificate.
            "the pod's server key": _channel(
                target, credentials.ca_cert, credentials.server_key, credentials.server_cert
            ),
        }
        for what, channel in refused.items():
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=5
                )
            assert caught.value.code() is grpc.StatusCode.UNAVAILABLE, what
            await channel.close(None)
        # And the orchestrator does not take another pod's server for this one.
        wrong = grpc.ssl_channel_credentials(other.ca_cert, other.client_key, other.client_cert)
        impostor = SandboxClient(target, credentials=wrong, server_name=SERVER_NAME)
        assert not await impostor.healthy()
        await impostor.close()
    finally:
        await server.stop(None)


def _channel(
    target: str, ca: bytes, key: bytes | None = None, cert: bytes | None = None
) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(ca, key, cert)
    return grpc.aio.secure_channel(
        target, credentials, options=[("grpc.ssl_target_name_override", SERVER_NAME)]
    )


async def test_the_server_takes_its_credentials_before_its_template_empties_them(
    tmp_path: Path,
) -> None:
    """``python -m sandbox --tls-dir D --scratch D`` (as in a pod, where the credentials'
    folder is a scratch folder too): the files are read before the template starts and
    empties its scratch folders, and the server serves mutual TLS."""
    import asyncio
    import subprocess
    import sys

    credentials = mint("pod")
    folder = tmp_path / "tls"
    folder.mkdir()
    for name, data in credentials.pod_files().items():
        (folder / name).write_bytes(data)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    server = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--listen", f"127.0.0.1:{port}",
         "--tls-dir", str(folder), f"--scratch={folder}", "--prefork=0"],
        cwd=root, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    own = grpc.ssl_channel_credentials(
        credentials.ca_cert, credentials.client_key, credentials.client_cert
    )
    client = SandboxClient(f"127.0.0.1:{port}", credentials=own, server_name=SERVER_NAME)
    try:
        await client.wait_ready(20)
        assert list(folder.iterdir()) == []
    finally:
        await client.close()
        server.terminate()
        _, errors = await asyncio.to_thread(server.communicate, timeout=20)
    assert "Traceback" not in errors, errors
