"""Shared test configuration.

Under ``CI=true`` a skipped test is a failed test: every skip in this suite means a
real component (bubblewrap, a Docker engine) was missing, and CI must provide it.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"

# Failed asserts in the shared helpers (the registry contract, the attack checks) explain
# themselves as a test's do; the shared fixtures (start_api, model_server, the session's
# leftover-container check) are registered for every suite.
pytest.register_assert_rewrite("tests.support")
pytest_plugins = ["tests.support.fixtures"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which needs every real component: {reason}"
