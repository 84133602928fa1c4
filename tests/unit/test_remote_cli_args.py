"""How a remote ``latm`` command finds its server, key and TLS files (``--server`` and
friends, or the environment), what it refuses, and how a making's stream is shown."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from latm.orchestrator.v1 import orchestrator_pb2 as pb
from latm_client import TlsFiles

from orchestrator.cli import build_parser
from orchestrator.cli._remote import RemoteSetupError, is_loopback, resolve
from orchestrator.cli._remote_session import Making
from orchestrator.latm.progress import CaseGraded, MakeEvent, Relayed, Stage, Verified

KEY = "latm_0123456789abcdef_" + "k" * 43


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def private(path: Path, text: str = KEY + "\n") -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_without_a_server_the_command_runs_locally() -> None:
    assert resolve(args("tools", "list"), {"LATM_API_KEY": KEY}) is None


@pytest.mark.parametrize(
    "argv",
    [
        ("--server", "localhost:50051", "tools", "list"),
        ("tools", "list", "--server", "localhost:50051"),
        ("tools", "--server", "localhost:50051", "list"),
        ("usage", "--server", "localhost:50051"),
    ],
)
def test_the_server_flag_is_taken_on_either_side(argv: tuple[str, ...]) -> None:
    remote = resolve(args(*argv), {"LATM_API_KEY": KEY})
    assert remote is not None
    assert (remote.server, remote.api_key, remote.tls) == ("localhost:50051", KEY, None)
    assert KEY not in repr(remote)


def test_a_flag_beats_the_environment(tmp_path: Path) -> None:
    ca = private(tmp_path / "ca.pem", "pem")
    environ = {"LATM_SERVER": "10.0.0.1:1", "LATM_TLS_CA": "/absent.pem", "LATM_API_KEY": KEY}
    remote = resolve(args("--server", "unix:/run/l.sock", "--tls-ca", str(ca), "usage"), environ)
    assert remote is not None
    assert (remote.server, remote.tls) == ("unix:/run/l.sock", TlsFiles(ca=str(ca)))


def test_the_environment_names_the_server_and_its_tls_files(tmp_path: Path) -> None:
    ca, cert, key = (private(tmp_path / name, "pem") for name in ("ca", "cert", "key"))
    environ = {
        "LATM_SERVER": "latm.example.com:443",
        "LATM_TLS_CA": str(ca),
        "LATM_TLS_CERT": str(cert),
        "LATM_TLS_KEY": str(key),
        "LATM_API_KEY": f"  {KEY}\n",
    }
    remote = resolve(args("solve", "2+2?"), environ)
    assert remote is not None
    assert remote.tls == TlsFiles(ca=str(ca), cert=str(cert), key=str(key))
    assert remote.api_key == KEY


def test_the_key_comes_from_the_flag_then_the_variable_then_the_files(tmp_path: Path) -> None:
    flagged = private(tmp_path / "flagged", "latm_from_flag\n")
    named = private(tmp_path / "named", "\n  latm_from_named  \n")
    default = tmp_path / "config" / "latm" / "credentials"
    default.parent.mkdir(parents=True)
    private(default, "latm_from_default")
    environ = {
        "LATM_SERVER": "localhost:1",
        "LATM_API_KEY": "latm_from_variable",
        "LATM_CREDENTIALS": str(named),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }

    def key(*argv: str) -> str:
        remote = resolve(args("tools", "list", *argv), environ)
        assert remote is not None
        return remote.api_key

    assert key("--credentials", str(flagged)) == "latm_from_flag"
    assert key() == "latm_from_variable"
    del environ["LATM_API_KEY"]
    assert key() == "latm_from_named"
    del environ["LATM_CREDENTIALS"]
    assert key() == "latm_from_default"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_credentials_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    credentials = private(tmp_path / "credentials")
    credentials.chmod(mode)
    with pytest.raises(RemoteSetupError) as refused:
        resolve(args("--server", "localhost:1", "--credentials", str(credentials), "usage"), {})
    assert f"has mode {mode:04o}" in str(refused.value)
    assert f"chmod 600 {credentials}" in str(refused.value)


def test_no_key_at_all_says_where_one_goes(tmp_path: Path) -> None:
    environ = {"LATM_SERVER": "localhost:1", "XDG_CONFIG_HOME": str(tmp_path)}
    with pytest.raises(RemoteSetupError) as refused:
        resolve(args("usage"), environ)
    message = str(refused.value)
    assert "LATM_API_KEY" in message
    assert str(tmp_path / "latm" / "credentials") in message


def test_an_empty_or_missing_credentials_file_is_refused(tmp_path: Path) -> None:
    empty = private(tmp_path / "empty", "\n \n")
    for path, words in ((empty, "holds no key"), (tmp_path / "absent", "cannot read")):
        with pytest.raises(RemoteSetupError, match=words):
            resolve(args("--server", "localhost:1", "--credentials", str(path), "usage"), {})


@pytest.mark.parametrize(
    "server", ["10.0.0.5:50051", "latm.example.com:443", "0.0.0.0:50051", "[2001:db8::1]:1"]
)
def test_plaintext_beyond_loopback_is_refused(server: str) -> None:
    with pytest.raises(RemoteSetupError, match=re.escape(f"refusing plaintext to {server}")):
        resolve(args("--server", server, "tools", "list"), {"LATM_API_KEY": KEY})


@pytest.mark.parametrize(
    "server", ["127.0.0.1:1", "127.8.9.1:1", "localhost:1", "[::1]:1", "unix:/tmp/latm.sock"]
)
def test_plaintext_to_loopback_or_a_socket_is_allowed(server: str) -> None:
    remote = resolve(args("--server", server, "tools", "list"), {"LATM_API_KEY": KEY})
    assert remote is not None
    assert remote.tls is None


@pytest.mark.parametrize(
    ("server", "words"),
    [("nohost", "is not HOST:PORT"), (":1", "is not HOST:PORT"), ("unix:", "needs a socket")],
)
def test_a_malformed_server_is_refused(server: str, words: str) -> None:
    with pytest.raises(RemoteSetupError, match=words):
        resolve(args("--server", server, "usage"), {"LATM_API_KEY": KEY})


def test_tls_needs_both_halves_of_a_client_pair_and_files_that_exist(tmp_path: Path) -> None:
    cert = private(tmp_path / "cert", "pem")
    with pytest.raises(RemoteSetupError, match="needs both --tls-cert and --tls-key"):
        resolve(args("--server", "h:1", "--tls-cert", str(cert), "usage"), {"LATM_API_KEY": KEY})
    with pytest.raises(RemoteSetupError, match="does not exist"):
        resolve(args("--server", "h:1", "--tls-ca", "/absent.pem", "usage"), {"LATM_API_KEY": KEY})


def test_loopback_names() -> None:
    assert all(map(is_loopback, ["localhost", "[::1]", "127.0.0.2"]))
    assert not any(map(is_loopback, ["example.com", "192.168.1.1", "localhost.evil.com"]))


def test_commands_that_cannot_run_remotely_refuse_the_server_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (("--server", "h:1", "tenants", "list"), ("demo", "--server", "h:1")):
        with pytest.raises(SystemExit) as exited:
            args(*argv)
        assert exited.value.code == 2
    assert "--server" in capsys.readouterr().err


def test_the_given_shared_flags_are_kept() -> None:
    assert args("tools", "list").given == frozenset()
    assert args("--tenant", "t", "tools", "list", "--json").given == {"tenant", "json"}
    assert args("tools", "--tenant", "t", "list").given == {"tenant"}


# --- exec: a file and call locally, a tool by name on a server ---------------------------


def exec_refusal(capsys: pytest.CaptureFixture[str], remote: bool, *argv: str) -> str:
    parsed = args("exec", *argv)
    parsed.remote = object() if remote else None
    with pytest.raises(SystemExit) as exited:
        parsed.run(parsed)
    assert exited.value.code == 2
    return capsys.readouterr().err


def test_exec_keeps_its_local_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    err = exec_refusal(capsys, False, "--call", "1")
    assert "latm exec: error: the following arguments are required: --source" in err
    err = exec_refusal(capsys, False)
    assert "the following arguments are required: --source, --call" in err
    err = exec_refusal(capsys, False, "add", "--args", "{}")
    assert "TOOL, --args: only with --server" in err


def test_exec_on_a_server_takes_a_tool_not_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    err = exec_refusal(capsys, True, "--source", "t.py", "--call", "1")
    assert "--source, --call: not with --server" in err
    assert "required: TOOL" in exec_refusal(capsys, True, "--args", "{}")


# --- a making's stream, shown as the local maker shows it ---------------------------------


def test_a_making_stream_becomes_the_local_events() -> None:
    shown: list[MakeEvent | Relayed] = []
    making = Making("sums", shown.append)
    stream = [
        pb.MakeToolResponse(attempt=pb.Attempt(stage="propose", number=1, message="asking")),
        pb.MakeToolResponse(attempt=pb.Attempt(stage="propose", number=2, message="again")),
        pb.MakeToolResponse(attempt=pb.Attempt(stage="verify", number=1, message="calls")),
        pb.MakeToolResponse(
            case_result=pb.CaseResult(question="1+1", expected="2", got="2", passed=True)
        ),
        pb.MakeToolResponse(
            tool=pb.ToolCard(
                name="sums", version=3, verification=pb.Verification(passed=1, total=1)
            ),
            usage=pb.Usage(prompt_tokens=10, completion_tokens=5, cost_usd=0.5),
        ),
    ]
    for event in stream:
        making.take(event)
    assert shown[:3] == [
        Relayed(Stage.PROPOSE, 1, "asking"),
        Relayed(Stage.PROPOSE, 2, "again"),
        Relayed(Stage.VERIFY, 1, "calls"),
    ]
    assert isinstance(shown[3], CaseGraded)
    assert shown[3].case.passed
    assert shown[4] == Verified("sums", 1, 1)
    result = making.result(1.5)
    assert (making.published, result.reason, result.attempts) == (
        ("sums", 3),
        None,
        {"propose": 2, "verify": 1},
    )
    assert (result.usage.prompt_tokens, result.usage.cost_usd, result.wall_s) == (10, 0.5, 1.5)


def test_a_failed_making_keeps_the_servers_reason() -> None:
    shown: list[MakeEvent | Relayed] = []
    making = Making("sums", shown.append)
    making.take(pb.MakeToolResponse(failure=pb.MakeFailure(reason="no tool after 3 attempts")))
    assert making.result(0.1).reason == "no tool after 3 attempts"
    assert [event.message for event in shown] == ["no tool after 3 attempts"]
