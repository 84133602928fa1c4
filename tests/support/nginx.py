"""nginx (Debian's package) as the gRPC load balancer in front of ``latm serve`` replicas:
a config written into a temporary folder (``grpc_pass`` to an upstream of the replicas, an
HTTP/2 listener on a free loopback port), run in the foreground as the current user and
stopped by its pid. Under ``CI=true`` a missing nginx fails the test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

INSTALL_HINT = "install the Debian package 'nginx' (apt-get install nginx)"

CONFIG = """\
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log info;
{user}
events {{
    worker_connections 512;
}}
http {{
    # Which replica served each request, and how it ended.
    log_format upstreams '$upstream_addr $status $request_time';
    access_log {root}/access.log upstreams;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    client_max_body_size 16m;
    upstream latm {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port} http2;
        location / {{
            grpc_pass grpc://latm;
            grpc_connect_timeout 2s;
            grpc_read_timeout 120s;
            grpc_send_timeout 120s;
            # A replica that refuses connections is skipped: the request goes to the next.
            grpc_next_upstream error timeout;
        }}
    }}
}}
"""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def require_nginx() -> str:
    """The nginx binary; skips the test (fails under CI=true) when it is missing."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if not found:
        pytest.skip(f"nginx was not found; {INSTALL_HINT}")
    return found


@dataclass
class Nginx:
    """A running nginx in front of the replicas."""

    process: subprocess.Popen[bytes]
    root: Path
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        log = self.root / "error.log"
        return log.read_text(errors="replace")[-4000:] if log.exists() else ""

    def stop(self) -> None:
        """QUIT (graceful) then KILL by pid, and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_nginx(root: Path, upstreams: list[str]) -> Nginx:
    """nginx balancing gRPC over ``upstreams`` (``HOST:PORT`` each), ready to accept."""
    binary = require_nginx()
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    servers = "\n".join(f"        server {u} max_fails=1 fail_timeout=2s;" for u in upstreams)
    # As root, nginx's workers would switch to 'nobody', who cannot write the temp folders.
    user = "user root;" if os.geteuid() == 0 else ""
    conf = root / "nginx.conf"
    conf.write_text(CONFIG.format(root=root, user=user, servers=servers, port=port))
    process = subprocess.Popen(
        [binary, "-p", str(root), "-c", str(conf), "-e", str(root / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    nginx = Nginx(process, root, port)
    deadline = time.monotonic() + 20
    while not _accepts(port):
        if process.poll() is not None or time.monotonic() > deadline:
            nginx.stop()
            pytest.fail(f"nginx did not start (exit {process.returncode}):\n{nginx.log_tail()}")
        time.sleep(0.05)
    return nginx


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
