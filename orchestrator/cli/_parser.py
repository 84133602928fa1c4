"""The parsers of ``latm``: a flag a command shares with the root means the same on either side
of the command's name (``latm --tenant T tools import FILE`` is ``latm tools import FILE
--tenant T``), and a command that does not take it refuses it on either side.

argparse copies everything a command's parser holds, its defaults too, over what the root parsed
before the command's name. So a command's copy of a shared flag has no default (it sets a value
only when given), the root keeps what it parsed under a name of its own, and the command's
default is filled in once the whole line is parsed: a value after the command's name wins, then
one before it, then the command's default. The shared flags given at all, on either side, are
kept in ``given`` (``--tenant`` means something else with ``--server``: see ``_remote``).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

DEFAULT_TENANT = "default"
# Where a remote command reaches its server (``latm --server HOST:PORT tools list``).
REMOTE = {
    "server": ("HOST:PORT", "a latm server to talk to (default LATM_SERVER); else run locally"),
    "credentials": ("FILE", "a file holding the API key, mode 0600 (default LATM_CREDENTIALS)"),
    "tls_ca": ("PEM", "CA that signed the server's certificate (default LATM_TLS_CA)"),
    "tls_cert": ("PEM", "client certificate, for mutual TLS (default LATM_TLS_CERT)"),
    "tls_key": ("PEM", "client key, for mutual TLS (default LATM_TLS_KEY)"),
}
SHARED = ("tenant", "json", *REMOTE)  # besides -v/--verbose, which every parser takes
_COMMAND = "command_parser"  # in the parsed namespace: the parser of the command that runs
_BEFORE = "given_before_"  # in the parsed namespace: a shared flag the root parsed


class CommandParser(argparse.ArgumentParser):
    """A command's parser, or a group's such as ``latm tools``: takes ``-v`` as the root does,
    and the shared flags it declares with :meth:`take_tenant` and :meth:`take_json`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shared: dict[str, object] = {}  # shared flag -> this command's default
        self.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log to stderr"
        )
        self.set_defaults(**{_COMMAND: self})

    def take_tenant(self, default: str = DEFAULT_TENANT, *, hidden: bool = False) -> None:
        """``--tenant T``, also taken before the command's name."""
        shown = f"tenant namespace (default: {default})"
        self.add_argument(
            "--tenant", default=argparse.SUPPRESS, help=argparse.SUPPRESS if hidden else shown
        )
        self.shared["tenant"] = default

    def take_json(self, help_text: str = "print JSON") -> None:
        """``--json``, a switch, also taken before the command's name."""
        self.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=help_text)
        self.shared["json"] = False

    def take_remote(self) -> None:
        """``--server`` and how to reach it (key file, TLS), also taken before the command's
        name; each defaults to None (the environment fills it in, see ``_remote``)."""
        for flag, (metavar, help_text) in REMOTE.items():
            self.add_argument(
                _option(flag), default=argparse.SUPPRESS, metavar=metavar, help=help_text
            )
            self.shared[flag] = None


def _option(flag: str) -> str:
    return "--" + flag.replace("_", "-")


class LatmParser(argparse.ArgumentParser):
    """The root parser: ``-v`` and the shared flags, then a command (a :class:`CommandParser`
    made by :attr:`commands`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
        self.add_argument(
            "--tenant",
            dest=_BEFORE + "tenant",
            default=argparse.SUPPRESS,
            metavar="TENANT",
            help="tenant namespace, for the commands that take one",
        )
        self.add_argument(
            "--json",
            dest=_BEFORE + "json",
            action="store_true",
            default=argparse.SUPPRESS,
            help="print JSON, for the commands that can",
        )
        for flag, (metavar, help_text) in REMOTE.items():
            self.add_argument(
                _option(flag),
                dest=_BEFORE + flag,
                default=argparse.SUPPRESS,
                metavar=metavar,
                help=f"{help_text}, for the commands that can",
            )
        self.commands = self.add_subparsers(
            dest="command", required=True, parser_class=CommandParser
        )

    def parse_known_args(
        self, args: Iterable[str] | None = None, namespace: Any = None
    ) -> tuple[Any, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        self._fill_shared(parsed)
        return parsed, extras

    def _fill_shared(self, parsed: argparse.Namespace) -> None:
        found = vars(parsed)
        command = found.pop(_COMMAND, None)
        taken = command.shared if isinstance(command, CommandParser) else {}
        given = set()
        for flag in SHARED:
            before = found.pop(_BEFORE + flag, None)
            if before is not None and flag not in taken:
                said = command if isinstance(command, CommandParser) else self
                option = _option(flag)
                said.error(f"argument {option} (before the command's name): not an option of it")
            if flag in taken:
                if flag in found or before is not None:
                    given.add(flag)
                found.setdefault(flag, taken[flag] if before is None else before)
        if taken:
            found["given"] = frozenset(given)
