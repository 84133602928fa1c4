"""``latm report`` and ``latm repair`` with ``--server``: through the server's
ReportOutcome and RepairTool over TLS, with typed failures as exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_remote_cli import QUESTION, Served, remote, served
from tests.support.api import ADD_CARD

pytestmark = pytest.mark.integration
__all__ = ["served"]  # the fixture test_remote_cli defines: a latm serve over TLS


def test_report_and_repair_over_tls(served: Served, tmp_path: Path) -> None:
    card = tmp_path / "add.json"
    card.write_text(ADD_CARD)
    server = ("--server", served.address)
    assert remote(served, *server, "tools", "import", str(card)).code == 0
    solved = remote(served, *server, "solve", QUESTION, "--tool", "add", "--json")
    assert solved.code == 0, solved.err
    request_id = json.loads(solved.out)["request_id"]

    reported = remote(served, *server, "report", "--request", request_id, "--answer", "6", "--json")
    assert reported.code == 0, reported.err
    kept = json.loads(reported.out)
    assert (kept["tool"], kept["version"], kept["expected"], kept["repairing"]) == (
        "add",
        1,
        "6",
        False,
    )
    assert kept["suite"] >= 1
    missing = remote(served, *server, "report", "--request", "nope", "--wrong")
    assert missing.code == 1
    assert "no request 'nope'" in missing.err
    unnamed = remote(served, *server, "report", "--answer", "6")
    assert unnamed.code == 1
    assert "the tool and the question" in unnamed.err

    unknown = remote(served, *server, "repair", "nope")
    assert unknown.code == 1
    assert "no tool 'nope'" in unknown.err
