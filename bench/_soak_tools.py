"""The tools every soak tenant imports through ``ImportTool``: a few legitimate ones whose
answers the soak checks, the tenant's private one, and the hostile ones.

``ImportTool`` checks a card's form and its sha256, not what its source does, so hostile
tools get in the way a tenant's own tools do: the language-escape payloads and the
resource-exhaustion payloads of the red-team suite (``tests/support/attacks.py``,
imported rather than copied), each turned into a tool module, plus a few the soak adds
(``/proc/self/environ``, a fork, a subprocess, a socket, a CPU spin).
"""

from __future__ import annotations

import functools
import textwrap
from dataclasses import dataclass, field

from tests.support.cards import card_json

REFUSED = frozenset({"policy_violation", "error"})

LEGIT_TOOLS = {
    "add": "def add(a, b):\n    return a + b\n",
    "sort_words": (
        "def sort_words(question):\n"
        "    words = question.split('List:', 1)[-1].split()\n"
        "    return ' '.join(sorted(words))\n"
    ),
    "word_stats": (
        "import collections\nimport math\n\n\n"
        "def word_stats(text):\n"
        "    words = text.split()\n"
        "    counts = collections.Counter(words)\n"
        "    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]\n"
        "    lengths = [len(w) for w in words]\n"
        "    return {'words': len(words), 'distinct': len(counts), 'top': [top[0], top[1]],\n"
        "            'gcd': math.gcd(*lengths)}\n"
    ),
    "echo": "def echo(value):\n    return value\n",
    "shout": "def shout(text):\n    print(text.upper())\n    return len(text)\n",
}


def private_tool(tenant: str, token: str) -> tuple[str, str]:
    """Each tenant's own tool, which only it may see: returns the tenant's token."""
    return f"private_{tenant}", f"def private_{tenant}():\n    return {token!r}\n"


# Hostile tools the platform refused to import: an import runs the card's demos in the
# sandbox, and a source the policy refuses defines no entrypoint (filled by the soak).
REFUSED_AT_IMPORT: set[str] = set()


def tool_names(tenant: str) -> set[str]:
    """The names of every tool ``tenant`` has (imported, and not refused)."""
    return {*LEGIT_TOOLS, f"private_{tenant}", *hostile_tools()} - REFUSED_AT_IMPORT


@dataclass(frozen=True)
class HostileTool:
    """A tool module that attacks from inside; it may end only in ``accepted``."""

    label: str  # where it comes from, e.g. "1-subclass-walks/dunder-chain"
    source: str
    accepted: frozenset[str]
    limits: dict[str, int] = field(default_factory=dict)


# Beyond the red-team suite: what the issue names explicitly, and a plain CPU spin.
EXTRA_ESCAPES = [
    ("proc-environ", "", "ans = open('/proc/self/environ').read()"),
    ("fork", "", "import os\nans = os.fork()"),
    ("subprocess", "", "import subprocess\nans = subprocess.run(['id'])"),
    ("socket", "", "import socket\nans = socket.socket()"),
]
EXTRA_EXHAUSTION = [
    ("spin", "while True:\n    pass", {"timeout_ms": 500}, frozenset({"timeout"})),
]


def _module(tool: str, call: str, name: str) -> str:
    """A payload as a tool: the payload's tool part at module level, its call in the
    entrypoint, which returns ``ans`` (an import runs the module, not the entrypoint)."""
    body = textwrap.indent(call, "    ")
    return f"{tool}\n\n\ndef {name}():\n{body}\n    return ans\n"


@functools.cache
def hostile_tools() -> dict[str, HostileTool]:
    """The hostile tools by name: ``escape_N`` and ``exhaust_N``."""
    # The red-team suite's payloads, imported rather than copied (it needs the dev extra).
    from tests.support.attacks import CLASSES, LANGUAGE_LEVEL_EXHAUSTION

    tools: dict[str, HostileTool] = {}
    escapes = [(f"{cls}/{n}", t, c) for cls, items in CLASSES.items() for n, t, c in items]
    escapes += [(f"soak/{n}", t, c) for n, t, c in EXTRA_ESCAPES]
    for label, tool, call in escapes:
        name = f"escape_{len(tools)}"
        tools[name] = HostileTool(label, _module(tool, call, name), REFUSED)
    exhaustion = [
        (n, c, limits, frozenset(s.value for s in statuses))
        for n, c, limits, statuses in LANGUAGE_LEVEL_EXHAUSTION
    ]
    for label, call, limits, accepted in exhaustion + EXTRA_EXHAUSTION:
        name = f"exhaust_{len(tools)}"
        tools[name] = HostileTool(f"exhaustion/{label}", _module("", call, name), accepted, limits)
    return tools


def tool_cards(tenant: str, token: str) -> dict[str, str]:
    """Every card a tenant imports, by name: the legit tools, its private one, the hostile
    ones."""
    demo = ("", "ans = 1", "1")
    private, source = private_tool(tenant, token)
    sources = {**LEGIT_TOOLS, private: source}
    sources |= {name: tool.source for name, tool in hostile_tools().items()}
    return {
        name: card_json(source, name, *demo, description=f"soak tool {name}", maker="bench")
        for name, source in sources.items()
    }


def spin_tool() -> str:
    """The name of the tool that spins until its timeout."""
    return next(n for n, tool in hostile_tools().items() if tool.label == "exhaustion/spin")
