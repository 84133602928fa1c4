"""Properties of the code base itself: generated code is fresh, protos lint clean,
and the orchestrator never evaluates model output."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_generated_protobuf_code_is_not_stale() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/gen_protos.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _buf() -> str:
    buf = shutil.which("buf") or str(Path(sys.executable).parent / "buf")
    if not Path(buf).exists():
        pytest.skip("buf is not installed (pip install buf-bin)")
    return buf


def test_buf_lint_is_clean() -> None:
    done = subprocess.run(
        [_buf(), "lint"], cwd=ROOT / "protos", capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_protos_make_no_breaking_change_against_the_released_baseline() -> None:
    """The committed image is the API as released; refresh it only with a compatible change
    (``cd protos && buf build -o api-baseline.image.json``)."""
    done = subprocess.run(
        [_buf(), "breaking", "--against", "api-baseline.image.json"],
        cwd=ROOT / "protos",
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_buf_breaking_does_catch_an_incompatible_change(tmp_path: Path) -> None:
    # The guard is real: renumbering a field of the baseline's API is reported.
    shutil.copytree(ROOT / "protos", tmp_path / "protos", ignore=shutil.ignore_patterns("*.py*"))
    proto = tmp_path / "protos/latm/orchestrator/v1/orchestrator.proto"
    text = proto.read_text()
    assert "  string question = 1;\n  // Tool name;" in text
    proto.write_text(text.replace("  string question = 1;\n  // Tool name;",
                                  "  string question = 7;\n  // Tool name;"))  # fmt: skip
    done = subprocess.run(
        [_buf(), "breaking", "--against", "api-baseline.image.json"],
        cwd=tmp_path / "protos",
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "SolveRequest" in done.stdout + done.stderr


FORBIDDEN_CALLS = {"exec", "eval", "compile", "__import__"}
FORBIDDEN_MODULES = {
    "pickle",
    "marshal",
    "dill",
    "cloudpickle",
    "shelve",
    "sandbox.worker",
    "sandbox.guards",
    "sandbox.restricted",
    "RestrictedPython",
}


def test_orchestrator_never_executes_or_unpickles_model_output() -> None:
    """The trusted side has no exec/eval/compile, no unpickling, and never imports the
    code that runs tools. A change that adds one fails here."""
    findings = []
    for path in sorted((ROOT / "orchestrator").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in FORBIDDEN_CALLS
            ):
                findings.append(f"{where} calls {node.func.id}")
            elif isinstance(node, ast.Import):
                findings += [
                    f"{where} imports {a.name}" for a in node.names if a.name in FORBIDDEN_MODULES
                ]
            elif isinstance(node, ast.ImportFrom) and node.module in FORBIDDEN_MODULES:
                findings.append(f"{where} imports from {node.module}")
    assert findings == []
