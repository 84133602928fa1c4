"""How many maker replies can be used, read by the old reader and by the new one.

``bench/maker_replies/`` holds replies in the shapes small models write for three BIG-Bench
Hard tasks (the paper's demos 0-2): the form the prompt shows, one block with everything,
calls without ``ans =``, prose around or between the blocks, ``if __name__`` guards, asserts,
too many or too few calls, no code. A reply is *usable* when the reader finds a function and
exactly one call per demo (the sandbox then judges them); for the others the new reader's
message to the maker is recorded. Each file is named ``TASK-NN-style.txt``.
Writes ``bench/results/maker_format.json``.

    .venv/bin/python bench/maker_format.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import write_report  # noqa: E402 - after the path set-up
from bench._legacy_reply import split_proposal  # noqa: E402
from orchestrator.latm.code import tool_shape  # noqa: E402
from orchestrator.latm.replies import (  # noqa: E402
    NO_FUNCTION,
    pick_calls,
    read_reply,
    reply_problems,
)
from orchestrator.latm.tasks import load_task  # noqa: E402

REPLIES = ROOT / "bench" / "maker_replies"
BBH = ROOT.parent / "shared" / "bbh"
DEFAULT_OUT = ROOT / "bench" / "results" / "maker_format.json"


def old_verdict(text: str, demos: int) -> str | None:
    """The old reader's problem with ``text`` (its wording then), or None if usable."""
    proposal = split_proposal(text)
    if proposal.source is None:
        return "the reply has no ```python block that defines the function"
    if len(proposal.calls) != demos:
        return f"expected {demos} call blocks, one per example; got {len(proposal.calls)}"
    return None


def new_verdict(text: str, questions: list[str]) -> str | None:
    """The new reader's problem with ``text``, as the maker would be told, or None."""
    reply = read_reply(text)
    if reply.source is None:
        return NO_FUNCTION
    shape = tool_shape(reply.source)
    if pick_calls(reply.calls, questions) is None:
        problems = reply_problems(reply, len(questions), "Example", shape.name if shape else None)
        return " ".join(problems)
    return None


def measure(folder: Path) -> dict[str, Any]:
    rows = []
    for path in sorted(folder.glob("*.txt")):
        task = load_task(BBH / f"{path.stem.split('-', 1)[0]}.json")
        questions = [demo.input for demo in task.split().demos]
        text = path.read_text(encoding="utf-8")
        old, new = old_verdict(text, len(questions)), new_verdict(text, questions)
        rows.append({"reply": path.name, "old": old or "usable", "new": new or "usable"})
    total = len(rows)
    old_ok = sum(row["old"] == "usable" for row in rows)
    new_ok = sum(row["new"] == "usable" for row in rows)
    return {
        "replies": total,
        "usable": {"old": old_ok, "new": new_ok},
        "format_failures": {"old": total - old_ok, "new": total - new_ok},
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=Path, default=REPLIES)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    report = measure(args.replies)
    write_report(report, args.out)
    for row in report["rows"]:
        print(f"{row['reply']:<52} old: {row['old'][:40]:<42} new: {row['new'][:60]}")
    print(
        f"usable: old {report['usable']['old']}/{report['replies']}, "
        f"new {report['usable']['new']}/{report['replies']} -> {args.out}"
    )


if __name__ == "__main__":
    main()
