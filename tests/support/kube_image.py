"""The sandbox image of this checkout, for the Kubernetes backend's tests.

The Kubernetes backend's pods start the sandbox server with ``--tls-dir`` (mutual TLS)
and, under the kubelet stand-in's gVisor pods, relay a TCP listen address through
the tunnel: both are newer than an image built from another checkout. So these tests
build this checkout's image under its own tag, ``latm-sandbox:k8s-test-HASH`` (HASH:
the build context's), and never retag ``latm-sandbox:VERSION``, which other suites
and developers run.
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

from orchestrator import images

TAG_PREFIX = f"{images.SANDBOX_REPOSITORY}:k8s-test-"


@cache
def checkout_image() -> str:
    """This checkout's sandbox image tag, built once if it is not there yet."""
    client = images.docker_client()
    base = client.images.get(images.OFFLINE_BASE)
    python_version = images._python_version_of(client, images.OFFLINE_BASE)
    with tempfile.TemporaryDirectory(prefix="latm-k8s-image-") as tmp:
        context = Path(tmp)
        images.assemble_context(context, python_version, lambda _line: None)
        digest = images.content_hash(context, base.id or "")
        tag = f"{TAG_PREFIX}{digest[:12]}"
        if images.has_image(client, tag):
            return tag
        for _line in images._build_stream(client, context, tag, images.OFFLINE_BASE, digest):
            pass
    return tag


if __name__ == "__main__":
    print(checkout_image())
