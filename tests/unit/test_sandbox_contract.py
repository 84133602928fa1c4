"""The sandbox contract (``sandbox.contract``): one set of statuses and error names that
the worker, the template, the sandbox server, the orchestrator and both proto enums share."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from latm.orchestrator.v1 import orchestrator_pb2 as pb
from latm.sandbox.v1 import sandbox_pb2
from latm_client._results import _STATUSES

from orchestrator.sandboxes import Status as OrchestratorStatus
from orchestrator.sandboxes.client import STATUSES
from sandbox.contract import FAULTS, ErrorType, Status, failure, proto_values
from sandbox.server import STATUS


def test_the_orchestrator_uses_the_sandbox_statuses() -> None:
    assert OrchestratorStatus is Status
    assert [s.value for s in Status] == [
        "ok",
        "error",
        "policy_violation",
        "timeout",
        "memory_limit",
        "output_limit",
        "crashed",
    ]


def test_faults_are_the_statuses_that_end_a_container() -> None:
    assert {s for s in Status if s.is_fault} == FAULTS
    assert not Status.OK.is_fault
    assert not Status.POLICY_VIOLATION.is_fault
    assert Status.CRASHED.is_fault


def test_both_proto_enums_map_every_status_both_ways() -> None:
    assert set(STATUS) == set(Status)
    assert {STATUSES[number] for number in STATUS.values()} == set(Status)
    assert sandbox_pb2.STATUS_UNSPECIFIED not in STATUSES
    assert STATUS[Status.MEMORY_LIMIT] == sandbox_pb2.STATUS_MEMORY_LIMIT
    # The client names them with plain strings (it has no sandbox package): the same names.
    assert _STATUSES[pb.EXEC_STATUS_OUTPUT_LIMIT] == Status.OUTPUT_LIMIT
    assert set(_STATUSES.values()) == set(Status)


def test_a_status_a_proto_enum_lacks_fails_at_import() -> None:
    with pytest.raises(ValueError, match="EXEC_STATUS_OK"):
        proto_values(sandbox_pb2.Status.Value, "EXEC_STATUS_")


def test_a_failure_is_json_in_the_frames_shape() -> None:
    frame = failure(Status.TIMEOUT, ErrorType.CPU_TIME, "CPU limit of 1 s exceeded")
    assert json.loads(json.dumps(frame)) == {
        "status": "timeout",
        "error": {
            "type": "CpuTimeExceeded",
            "message": "CPU limit of 1 s exceeded",
            "line": 0,
            "origin": "",
        },
    }


def test_the_contract_is_standard_library_only_and_the_client_has_no_import_circle() -> None:
    """The worker imports the contract (it must stay light); the sandbox client imports
    the values it builds at module level, in either order."""
    code = (
        "import sys\n"
        "import sandbox.contract\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'grpc', 'google', 'pydantic', 'orchestrator'})\n"
        "assert not heavy, heavy\n"
        "import orchestrator.sandboxes.client\n"
        "import orchestrator.sandboxes.base\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
