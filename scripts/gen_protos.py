"""Generate the Python code for every .proto under protos/ (the one way to do it).

Run from the repository root: ``python scripts/gen_protos.py``. With ``--check`` the
code is generated into a temporary folder and compared with the committed files;
the exit status is 1 when they differ.
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
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


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


def generated_files(base: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(base)): p
        for p in base.rglob("*")
        if p.is_file() and p.name.endswith(GENERATED_SUFFIXES)
    }


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        generate(out)
        fresh = generated_files(out)
        committed = generated_files(PROTOS)
        stale = sorted(
            name
            for name in fresh.keys() | committed.keys()
            if name not in fresh
            or name not in committed
            or not filecmp.cmp(fresh[name], committed[name], shallow=False)
        )
    for name in stale:
        print(f"stale generated file: protos/{name}", file=sys.stderr)
    return 1 if stale else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed code is stale")
    if parser.parse_args().check:
        return check()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        generate(out)
        for name, path in generated_files(out).items():
            shutil.copyfile(path, PROTOS / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
