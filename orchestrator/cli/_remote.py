"""Where a remote ``latm`` command finds its server, its API key and its TLS files.

Each comes from a flag (``--server``, ``--credentials``, ``--tls-ca``, ``--tls-cert``,
``--tls-key``), else its environment variable (``LATM_SERVER``, ``LATM_CREDENTIALS``,
``LATM_TLS_CA``, ``LATM_TLS_CERT``, ``LATM_TLS_KEY``). The API key is the first line of the
``--credentials`` file, else ``LATM_API_KEY``, else the first line of the file
``LATM_CREDENTIALS`` names, else of ``~/.config/latm/credentials``; a credentials file must be
readable by its owner only. As the server refuses to listen in plaintext beyond loopback, the
CLI refuses to send a key that way.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from latm_client import TlsFiles

from orchestrator.errors import InvalidRequest
from orchestrator.secrets import register_secret

ENV = {
    "server": "LATM_SERVER",
    "tls_ca": "LATM_TLS_CA",
    "tls_cert": "LATM_TLS_CERT",
    "tls_key": "LATM_TLS_KEY",
}
API_KEY_ENV = "LATM_API_KEY"
CREDENTIALS_ENV = "LATM_CREDENTIALS"


class RemoteSetupError(InvalidRequest):
    """The server, key or TLS files of a remote command cannot be used as given."""


@dataclass(frozen=True)
class Remote:
    """A server to talk to and how: its address, the tenant's key, TLS files (or plaintext)."""

    server: str
    api_key: str
    tls: TlsFiles | None

    def __repr__(self) -> str:  # never the key
        return f"Remote(server={self.server!r}, tls={self.tls!r})"


def resolve(args: argparse.Namespace, environ: Mapping[str, str]) -> Remote | None:
    """The server ``args`` and ``environ`` name, or None to run locally.

    Raises:
        RemoteSetupError: no key, a credentials file others can read, half a TLS key
            pair, or plaintext to an address beyond loopback.
    """
    found = {name: getattr(args, name, None) or environ.get(env) for name, env in ENV.items()}
    server = found["server"]
    if not server:
        return None
    tls = _tls(found["tls_ca"], found["tls_cert"], found["tls_key"])
    check_target(server, tls is not None)
    key = api_key(getattr(args, "credentials", None), environ)
    register_secret(key)
    return Remote(server, key, tls)


def _tls(ca: str | None, cert: str | None, key: str | None) -> TlsFiles | None:
    if bool(cert) != bool(key):
        raise RemoteSetupError("mutual TLS needs both --tls-cert and --tls-key")
    if not (ca or cert):
        return None
    for path in (ca, cert, key):
        if path and not Path(path).is_file():
            raise RemoteSetupError(f"TLS file {path} does not exist")
    return TlsFiles(ca=ca, cert=cert, key=key)


def check_target(server: str, tls: bool) -> None:
    """Refuse a malformed address, and plaintext beyond loopback (the server's own rule)."""
    if server.startswith("unix:"):
        if not server.removeprefix("unix:").strip():
            raise RemoteSetupError("unix: needs a socket path, e.g. unix:/run/latm/latm.sock")
        return
    host, sep, port = server.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise RemoteSetupError(f"server {server!r} is not HOST:PORT or unix:PATH")
    if not tls and not is_loopback(host):
        raise RemoteSetupError(
            f"refusing plaintext to {server}: the API key would cross the network in the "
            "clear; give --tls-ca (LATM_TLS_CA), or reach the server on loopback or a Unix socket"
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, maybe in brackets) is this machine's loopback."""
    bare = host.strip("[]")
    try:
        return bare == "localhost" or ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def api_key(credentials: str | None, environ: Mapping[str, str]) -> str:
    """The key from ``--credentials``, else ``LATM_API_KEY``, else ``LATM_CREDENTIALS``,
    else the default credentials file (``$XDG_CONFIG_HOME/latm/credentials``)."""
    if credentials:
        return read_credentials(Path(credentials))
    if environ.get(API_KEY_ENV, "").strip():
        return environ[API_KEY_ENV].strip()
    if environ.get(CREDENTIALS_ENV):
        return read_credentials(Path(environ[CREDENTIALS_ENV]))
    default = default_credentials(environ)
    if default.exists():
        return read_credentials(default)
    raise RemoteSetupError(
        f"no API key for the server: set {API_KEY_ENV}, or put the key in {default} "
        "(chmod 600), or name a file with --credentials"
    )


def default_credentials(environ: Mapping[str, str]) -> Path:
    config = environ.get("XDG_CONFIG_HOME") or os.path.join(environ.get("HOME", "~"), ".config")
    return Path(config).expanduser() / "latm" / "credentials"


def read_credentials(path: Path) -> str:
    """The key in ``path`` (its first non-blank line), once the file is known to be private.

    Raises:
        RemoteSetupError: the file is missing, empty, or group/other may read or write it.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise RemoteSetupError(
                f"credentials file {path} has mode {mode:04o}: others may read the key; "
                f"run: chmod 600 {path}"
            )
        lines = path.read_text("utf-8").splitlines()
    except OSError as exc:
        raise RemoteSetupError(f"cannot read credentials file {path}: {exc.strerror}") from None
    key = next((line.strip() for line in lines if line.strip()), "")
    if not key:
        raise RemoteSetupError(f"credentials file {path} holds no key")
    return key
