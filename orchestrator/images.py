"""Build and list the sandbox container images (``latm image build`` / ``latm image list``).

The sandbox image is built from ``tool_images/sandbox/Dockerfile`` with a context
assembled here: the ``sandbox`` package, the generated protocol code, and every
Python dependency as a wheel fetched on the host, so the build itself runs with no
network. Its base is a build argument: a public slim Python image, or an offline
base imported from a Debian ``debootstrap`` root when no registry can be reached.

Images are tagged ``latm-sandbox:VERSION`` and ``latm-sandbox:VERSION-HASH``, where
HASH covers the whole build context and the base image's id: an unchanged context
is not rebuilt.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latm.sandbox import v1 as sandbox_protocol

import sandbox
from orchestrator.errors import LatmError, MissingDependencyError, SandboxUnavailable

if TYPE_CHECKING:
    import docker

SANDBOX_REPOSITORY = "latm-sandbox"
OFFLINE_BASE = "latm-base:bookworm"
PUBLIC_BASE = "python:3.11-slim-bookworm"
PLATFORM_LABEL = "io.latm.platform"
HASH_LABEL = "io.latm.content-hash"
KIND_LABEL = "io.latm.image"
DEBIAN_SUITE = "bookworm"
# python3-venv and python-is-python3 are not needed by the sandbox itself; they make
# the same image usable by peers measured beside it (llm-sandbox wants `python`
# and the venv module).
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3")
# What the sandbox server imports, pinned to the versions the orchestrator runs with.
SANDBOX_REQUIREMENTS = (
    "grpcio",
    "grpcio-health-checking",
    "grpcio-reflection",
    "protobuf",
    "RestrictedPython",
)
DOCKERFILE = Path(__file__).resolve().parent.parent / "tool_images" / "sandbox" / "Dockerfile"

Progress = Callable[[str], None]


class ImageBuildError(LatmError):
    """An image could not be built; the message says which step failed and why."""


@dataclass(frozen=True)
class ImageInfo:
    tags: list[str]
    id: str
    size_mb: float
    created: str
    kind: str
    content_hash: str


def docker_client() -> docker.DockerClient:
    """A client for the local engine, with clear errors when it is missing."""
    try:
        import docker
        import docker.errors
    except ImportError:
        raise MissingDependencyError.for_extra("docker", "docker") from None
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as exc:
        raise SandboxUnavailable(
            f"no Docker engine is reachable ({exc}); start one (scripts/docker_engine.sh)"
        ) from None
    return client


def package_version() -> str:
    return sandbox.__version__


def sandbox_image_tag() -> str:
    """The default image the Docker backend runs: this package version's build."""
    return f"{SANDBOX_REPOSITORY}:{package_version()}"


# --- the offline base -------------------------------------------------------------


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 or one-line sources)."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in path.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split(":", 1)[1].split()[0]
    sources = Path("/etc/apt/sources.list")
    if sources.exists():
        for line in sources.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[1]:
                return parts[1]
    raise ImageBuildError("no Debian mirror found in /etc/apt; pass --mirror URL")


def build_offline_base(
    client: docker.DockerClient,
    progress: Progress,
    name: str = OFFLINE_BASE,
    mirror: str | None = None,
) -> str:
    """Make a Debian base image with Python from ``debootstrap``; no registry needed."""
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("debootstrap is not installed (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise ImageBuildError("building the offline base needs root (debootstrap)")
    mirror = mirror or debian_mirror()
    with tempfile.TemporaryDirectory(prefix="latm-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        progress(f"debootstrap {DEBIAN_SUITE} (minbase + {', '.join(BASE_PACKAGES)})")
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                DEBIAN_SUITE,
                str(root),
                mirror,
            ],
            "debootstrap",
        )
        for junk in ("usr/share/doc", "usr/share/man", "usr/share/info", "var/cache/apt"):
            shutil.rmtree(root / junk, ignore_errors=True)
        for lists in (root / "var/lib/apt/lists").glob("*_*"):
            lists.unlink()
        archive = Path(tmp) / "rootfs.tar"
        progress("packing the root filesystem")
        _run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(archive), "."], "tar")
        progress(f"importing it as {name}")
        repository, _, tag = name.partition(":")
        client.api.import_image_from_file(
            str(archive),
            repository=repository,
            tag=tag or "latest",
            changes=[
                f"LABEL {PLATFORM_LABEL}=latm {KIND_LABEL}=base",
                'CMD ["/bin/bash"]',
            ],
        )
    return name


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-1500:]
        raise ImageBuildError(f"{what} failed (exit {done.returncode}): {tail}")


# --- the sandbox image -------------------------------------------------------------


def requirements() -> list[str]:
    """Pinned requirements for the image, taken from this environment's versions."""
    pins = []
    for name in SANDBOX_REQUIREMENTS:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            raise ImageBuildError(f"{name} is not installed here; cannot pin it") from None
    return pins


def fetch_wheels(dest: Path, python_version: str, progress: Progress) -> list[str]:
    """Download the image's wheels (and pip's own) for the image's Python and CPU."""
    pins = requirements()
    pip_pin = f"pip=={importlib.metadata.version('pip')}"
    cache = _cache_dir() / "wheels" / f"cp{python_version.replace('.', '')}-{platform.machine()}"
    stamp = cache / "requirements.txt"
    wanted = "\n".join([*pins, pip_pin]) + "\n"
    if not (stamp.exists() and stamp.read_text() == wanted):
        progress(f"fetching {len(pins) + 1} wheels for Python {python_version}")
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--only-binary=:all:",
                f"--platform=manylinux2014_{platform.machine()}",
                f"--python-version={python_version}",
                "--implementation=cp",
                f"--dest={cache}",
                pip_pin,
                *pins,
            ],
            "pip download",
        )
        stamp.write_text(wanted)
    else:
        progress("wheels are cached")
    dest.mkdir(parents=True, exist_ok=True)
    for wheel in cache.glob("*.whl"):
        shutil.copy2(wheel, dest / wheel.name)
    (dest / "requirements.txt").write_text("\n".join(pins) + "\n")
    return pins


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "latm"


def _copy_package(package_dir: Path, dest: Path) -> None:
    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyi"))}

    shutil.copytree(package_dir, dest, ignore=ignore)


def assemble_context(context: Path, python_version: str, progress: Progress) -> None:
    """Everything the Dockerfile copies: wheels/, app/sandbox, app/latm."""
    shutil.copy2(DOCKERFILE, context / "Dockerfile")
    fetch_wheels(context / "wheels", python_version, progress)
    app = context / "app"
    app.mkdir()
    _copy_package(Path(sandbox.__file__ or "").resolve().parent, app / "sandbox")
    # Only the sandbox protocol's generated code (`latm` is a namespace package there too):
    # the orchestrator and its API stay out of the image.
    protocol = Path(sandbox_protocol.__file__ or "").resolve().parent
    _copy_package(protocol.parent, app / "latm" / "sandbox")
    for proto in (app / "latm").rglob("*.proto"):
        proto.unlink()


def content_hash(context: Path, base_id: str) -> str:
    digest = hashlib.sha256(base_id.encode())
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(context)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _python_version_of(client: docker.DockerClient, base: str) -> str:
    """The CPython version (major.minor) of ``python3`` in the base image."""
    output = client.containers.run(
        base,
        ["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        entrypoint=[],
        network_mode="none",
        remove=True,
    )
    return bytes(output).decode().strip()


def build_sandbox_image(
    client: docker.DockerClient,
    progress: Progress,
    base: str = OFFLINE_BASE,
    force: bool = False,
) -> str:
    """Build the sandbox image on ``base``; returns its version-and-hash tag."""
    import docker.errors

    try:
        base_image = client.images.get(base)
    except docker.errors.ImageNotFound:
        hint = (
            "run `latm image build --offline-base`"
            if base == OFFLINE_BASE
            else f"pull it (docker pull {base}), or use --offline-base without a registry"
        )
        raise ImageBuildError(f"base image {base} is not here; {hint}") from None
    python_version = _python_version_of(client, base)
    progress(f"base {base} has Python {python_version}")
    with tempfile.TemporaryDirectory(prefix="latm-image-") as tmp:
        context = Path(tmp)
        assemble_context(context, python_version, progress)
        digest = content_hash(context, base_image.id or "")
        version = package_version()
        tag = f"{SANDBOX_REPOSITORY}:{version}-{digest[:12]}"
        if not force and has_image(client, tag):
            progress(f"{tag} is up to date")
            client.images.get(tag).tag(SANDBOX_REPOSITORY, version)
            return tag
        progress(f"building {tag}")
        for line in _build_stream(client, context, tag, base, digest):
            progress(line)
    image = client.images.get(tag)
    image.tag(SANDBOX_REPOSITORY, version)
    progress(f"tagged {tag} and {SANDBOX_REPOSITORY}:{version}")
    return tag


def _build_stream(
    client: docker.DockerClient, context: Path, tag: str, base: str, digest: str
) -> Iterator[str]:
    stream = client.api.build(
        path=str(context),
        tag=tag,
        buildargs={"BASE": base},
        labels={PLATFORM_LABEL: "latm", KIND_LABEL: "sandbox", HASH_LABEL: digest},
        network_mode="none",  # the build needs no network, and gets none
        rm=True,
        forcerm=True,
        decode=True,
    )
    for chunk in stream:
        if "error" in chunk:
            raise ImageBuildError(f"docker build failed: {chunk['error'].strip()}")
        text = str(chunk.get("stream", "")).strip()
        if text:
            yield text


def has_image(client: docker.DockerClient, name: str) -> bool:
    import docker.errors

    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def list_images(client: docker.DockerClient) -> list[ImageInfo]:
    """The platform's images on this engine (sandbox images and offline bases)."""
    found = []
    for image in client.images.list(filters={"label": f"{PLATFORM_LABEL}=latm"}):
        labels: dict[str, str] = image.labels or {}
        attrs: dict[str, Any] = image.attrs
        found.append(
            ImageInfo(
                tags=sorted(image.tags),
                id=(image.id or "").removeprefix("sha256:")[:12],
                size_mb=round(attrs.get("Size", 0) / 1e6, 1),
                created=str(attrs.get("Created", ""))[:19],
                kind=labels.get(KIND_LABEL, "?"),
                content_hash=labels.get(HASH_LABEL, "")[:12],
            )
        )
    return sorted(found, key=lambda i: (i.kind, i.created), reverse=True)


def images_as_json(images: list[ImageInfo]) -> str:
    return json.dumps([i.__dict__ for i in images], indent=2)
