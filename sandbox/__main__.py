"""``python -m sandbox --listen unix:/run/latm/sandbox.sock``: start the sandbox server."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--listen", required=True, help="unix:/path/to.sock, or host:port (TCP)")
    parser.add_argument(
        "--allow-module",
        action="append",
        default=[],
        metavar="MODULE",
        help="allow one more module (an operator's choice; repeatable)",
    )
    parser.add_argument(
        "--prefork",
        type=int,
        default=2,
        help="spare worker processes kept forked (0: fork on demand)",
    )
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=16,
        help="calls running at once; more wait for a slot",
    )
    parser.add_argument(
        "--scratch",
        action="append",
        default=[],
        metavar="DIR",
        help="a scratch folder private to this sandbox (its own tmpfs), emptied between "
        "calls; never a folder the host shares (repeatable)",
    )
    parser.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="PATH",
        help="a path in a scratch folder that is the server's own (its Python install, "
        "when that lives under /tmp), never emptied (repeatable)",
    )
    parser.add_argument(
        "--dial",
        default=None,
        metavar="unix:PATH",
        help="also dial this host socket and relay it to --listen (a reverse tunnel, for "
        "runtimes whose sandboxes cannot be connected to, such as gVisor)",
    )
    parser.add_argument(
        "--dial-token-file",
        default=None,
        metavar="PATH",
        help="a file holding the token that opens each --dial connection; it is read and "
        "removed at start, before any tool code runs",
    )
    parser.add_argument(
        "--tls-dir",
        default=None,
        metavar="DIR",
        help="serve mutual TLS with DIR's tls.key, tls.crt (this server's) and ca.crt (the "
        "only issuer of accepted clients); the files are read and removed at start, before "
        "any tool code runs (the Kubernetes backend's pod credentials)",
    )
    args = parser.parse_args(argv)
    # First, before anything else runs: no worker may read or write this process's
    # memory through /proc (see sandbox.hardening).
    from sandbox.hardening import make_undumpable

    make_undumpable()
    # Then the credentials, before any other process of the sandbox exists: the files
    # are gone before the template starts (it empties scratch folders, which may hold
    # them) and long before any tool code runs.
    dial_token = _take_token(args.dial_token_file)
    tls = _take_tls(args.tls_dir)
    # The template starts first, before this process imports gRPC (most of a server's
    # start-up: about 0.45 s under gVisor), so that the two start-ups overlap.
    ours, theirs = socket.socketpair()
    # (Built here, not with sandbox.supervisor.template_args: importing that module
    # would import the template's own modules before the template starts.)
    keep = [args.listen.removeprefix("unix:")] if args.listen.startswith("unix:") else []
    keep += args.keep
    template = subprocess.Popen(
        [sys.executable, "-I", "-m", "sandbox.template", f"--fd={theirs.fileno()}",
         *(f"--allow-module={m}" for m in args.allow_module), f"--prefork={args.prefork}",
         *(f"--keep={path}" for path in keep),
         *(f"--scratch={path}" for path in args.scratch)],
        pass_fds=[theirs.fileno()],
    )  # fmt: skip
    theirs.close()

    import asyncio
    import logging

    from sandbox.server import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(
        serve(
            args.listen,
            args.allow_module,
            args.prefork,
            args.max_concurrency,
            dial=args.dial,
            dial_token=dial_token,
            tls=tls,
            early=(template, ours),
            scratch=args.scratch,
        )
    )


def _take_token(path: str | None) -> bytes:
    """Read the dial token and remove its file: afterwards it lives only in this
    process's memory, which no worker can read (not dumpable)."""
    if path is None:
        return b""
    return _take_file(path)


TLS_FILES = ("tls.key", "tls.crt", "ca.crt")


def _take_tls(folder: str | None) -> tuple[bytes, bytes, bytes] | None:
    """Read the server's key, its certificate and its clients' CA, and remove the files,
    like the dial token: the key then lives only in this (undumpable) process."""
    if folder is None:
        return None
    key, cert, ca = (_take_file(os.path.join(folder, name)) for name in TLS_FILES)
    return key, cert, ca


def _take_file(path: str) -> bytes:
    with open(path, "rb") as file:
        data = file.read()
    os.unlink(path)
    return data


if __name__ == "__main__":
    main()
