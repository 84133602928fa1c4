"""Container health check: ask the orchestrator's gRPC health service (grpc.health.v1).

Exit 0 when the server reports SERVING, 1 otherwise. Reads the same settings the
server does, from the environment:

- ``LATM_LISTEN``: where the server listens (``unix:PATH`` or ``HOST:PORT``; a
  wildcard host is asked on loopback). ``HEALTHCHECK_TARGET`` overrides it.
- ``LATM_TLS_CERT_FILE``: when set, the check speaks TLS and trusts
  ``HEALTHCHECK_CA_FILE`` (default ``/etc/latm/tls/ca.crt``), checking the server's
  certificate for the name ``HEALTHCHECK_SERVER_NAME`` (default ``localhost``).
- ``LATM_TLS_CLIENT_CA_FILE``: when set (mutual TLS), the check presents
  ``HEALTHCHECK_CERT_FILE`` / ``HEALTHCHECK_KEY_FILE`` (default
  ``/etc/latm/tls/health.crt`` / ``health.key``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

TIMEOUT_S = 4.0
# A server listening on every interface is asked on loopback (nothing binds here).
WILDCARDS = {
    "0.0.0.0": "127.0.0.1",  # noqa: S104
    "::": "::1",
    "[::]": "[::1]",
    "": "127.0.0.1",
}


def target() -> str:
    explicit = os.environ.get("HEALTHCHECK_TARGET")
    if explicit:
        return explicit
    listen = os.environ.get("LATM_LISTEN", "127.0.0.1:50051")
    if listen.startswith("unix:"):
        return listen
    host, _, port = listen.rpartition(":")
    return f"{WILDCARDS.get(host, host)}:{port}"


def channel(address: str) -> grpc.Channel:
    if address.startswith("unix:") or not os.environ.get("LATM_TLS_CERT_FILE"):
        return grpc.insecure_channel(address)
    env = os.environ.get
    ca = Path(env("HEALTHCHECK_CA_FILE", "/etc/latm/tls/ca.crt")).read_bytes()
    key = cert = None
    if env("LATM_TLS_CLIENT_CA_FILE"):
        cert = Path(env("HEALTHCHECK_CERT_FILE", "/etc/latm/tls/health.crt")).read_bytes()
        key = Path(env("HEALTHCHECK_KEY_FILE", "/etc/latm/tls/health.key")).read_bytes()
    credentials = grpc.ssl_channel_credentials(ca, key, cert)
    name = env("HEALTHCHECK_SERVER_NAME", "localhost")
    return grpc.secure_channel(address, credentials, [("grpc.ssl_target_name_override", name)])


def main() -> int:
    address = target()
    try:
        with channel(address) as chan:
            stub = health_pb2_grpc.HealthStub(chan)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT_S)
    except (grpc.RpcError, OSError) as exc:
        detail = exc.details() if isinstance(exc, grpc.Call) else str(exc)
        print(f"unhealthy: {address}: {detail}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{address}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
