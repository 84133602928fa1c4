"""Generate the Python code for every .proto under protos/ (the one way to do it).

The code of the public API (``latm.orchestrator.v1``) belongs to the client distribution and
goes to clients/python/src; the rest (the sandbox's own protocol) stays beside its .proto
under protos/. Run from the repository root: ``python scripts/gen_protos.py``. With
``--check`` the code is generated into a temporary folder and compared with the committed
files; the exit status is 1 when they differ.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.resources
import os
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
CLIENT_SRC = ROOT / "clients" / "python" / "src"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
# Where the code of each proto package is committed (the longest matching prefix wins).
DESTINATIONS = {"": PROTOS, "latm/orchestrator/": CLIENT_SRC}


def proto_files() -> list[Path]:
    return sorted(PROTOS.rglob("*.proto"))


def generate(out: Path) -> None:
    # protoc finds the mypy plugins by name; they live beside this interpreter.
    bindir = str(Path(sys.executable).parent)
    os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    files = [str(p.relative_to(PROTOS)) for p in proto_files()]
    args = [
        "protoc",
        f"-I{PROTOS}",
        # The well-known types (google/protobuf/*.proto) ship with grpc_tools.
        f"-I{importlib.resources.files('grpc_tools') / '_proto'}",
        f"--python_out={out}",
        f"--mypy_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_grpc_out={out}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def destination(name: str) -> Path:
    """The folder the generated file ``name`` (relative to the output) is committed under."""
    prefix = max((p for p in DESTINATIONS if name.startswith(p)), key=len)
    return DESTINATIONS[prefix]


def generated_files(base: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(base)): p
        for p in base.rglob("*")
        if p.is_file() and p.name.endswith(GENERATED_SUFFIXES)
    }


def placed(base: Path) -> dict[str, Path]:
    """The files generated into ``base``, keyed by where they are committed (from ROOT)."""
    return {
        str((destination(name) / name).relative_to(ROOT)): path
        for name, path in generated_files(base).items()
    }


def committed() -> dict[str, Path]:
    """Every committed generated file (also one left where it no longer belongs)."""
    return {
        str(path.relative_to(ROOT)): path
        for folder in set(DESTINATIONS.values())
        for path in generated_files(folder).values()
    }


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        generate(out)
        fresh = placed(out)
        found = committed()
        stale = sorted(
            name
            for name in fresh.keys() | found.keys()
            if name not in fresh
            or name not in found
            or not filecmp.cmp(fresh[name], found[name], shallow=False)
        )
    for name in stale:
        print(f"stale generated file: {name}", file=sys.stderr)
    return 1 if stale else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed code is stale")
    if parser.parse_args().check:
        return check()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        generate(out)
        for name, path in placed(out).items():
            (ROOT / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, ROOT / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
