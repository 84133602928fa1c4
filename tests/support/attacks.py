"""The red-team suite's payloads: escapes from the restricted language (attack classes
1-10) and language-level resource exhaustion (class 12), with the statuses that mean an
attack was refused. The soak benchmark imports its hostile tools from here; no pytest.
"""

from __future__ import annotations

from orchestrator.sandboxes import Status

Payload = tuple[str, str, str]  # (id, tool source, call code)
REFUSED = frozenset({Status.POLICY_VIOLATION, Status.ERROR})

# A tool-defined str subclass that lies to the guard's checks about what it spells.
LYING_STR = (
    "class S(str):\n"
    "    def startswith(self, prefix):\n"
    "        return False\n"
    "    def __eq__(self, other):\n"
    "        return False\n"
    "    def __hash__(self):\n"
    "        return 7\n"
)
WRAP_CLOSE = (
    "subs = getattr(getattr(getattr((), S('__class__')), S('__base__')), S('__subclasses__'))()\n"
    "w = [c for c in subs if getattr(c, S('__name__')) == '_wrap_close'][0]\n"
    "g = getattr(getattr(w, S('__init__')), S('__globals__'))\n"
    "ans = 'ESCAPED' + str(g['getpid']())\n"
)
GLOBALS_THIEF = "import functools\nimport typing\n\ndef thief():\n    return sys\n"

# 1. Walking __subclasses__ / __bases__ / __mro__ to a process-spawning class.
SUBCLASS_WALKS: list[Payload] = [
    ("dunder-chain", "", "ans = ().__class__.__bases__[0].__subclasses__()"),
    ("mro", "", "ans = [c for c in int.__mro__[-1].__subclasses__() if 'Popen' in repr(c)]"),
    ("mro-method", "", "ans = int.mro()"),
    ("mro-getattr", "", "ans = getattr(int, 'mr' + 'o')()"),
    ("runtime-name", "", "ans = getattr(getattr((), '__cl' + 'ass__'), '__ba' + 'se__')"),
    ("lying-str-subclass", LYING_STR, WRAP_CLOSE),
    ("lying-str-setattr", LYING_STR, "class T:\n    pass\nsetattr(T, S('__class__'), int)\nans=1"),
    ("object-subclasses", "", "ans = object.__subclasses__()"),
    ("type-of-type", "", "ans = type(type(type))('X', (), {})"),
]

# 2. __globals__ / __builtins__ through functions and methods.
GLOBALS: list[Payload] = [
    ("func-globals", "def f():\n    return 1\n", "ans = f.__globals__"),
    ("func-globals-getattr", "import json\n", "ans = getattr(json.dumps, '__glo' + 'bals__')"),
    ("builtin-self", "", "ans = getattr(len, '__se' + 'lf__')"),
    ("builtins-name", "", "ans = __builtins__['eval']"),
    ("method-func", "class A:\n    def m(self):\n        return 1\n", "ans = A().m.__func__"),
    (
        "update-wrapper-updated",
        GLOBALS_THIEF,
        "functools.update_wrapper(thief, typing.cast, assigned=[], updated=['__globals__'])\n"
        "ans = 'ESCAPED' + str(thief().modules['os'].getpid())",
    ),
    (
        "wraps-updated",
        GLOBALS_THIEF,
        "functools.wraps(typing.cast, assigned=[], updated=['__globals__'])(thief)\n"
        "ans = 'ESCAPED' + str(thief().modules['os'].getpid())",
    ),
    (
        "update-wrapper-on-library",
        "import functools\nimport json\ndef f():\n    return 1\n",
        "functools.update_wrapper(json.dumps, f)\nans = 1",
    ),
]

# 3. Frames through generators, coroutines and tracebacks.
FRAMES: list[Payload] = [
    ("gi-frame", "", "g = (x for x in [1])\nans = g.gi_frame.f_back.f_globals"),
    ("gi-frame-getattr", "", "g = (x for x in [1])\nans = getattr(g, 'gi_' + 'frame')"),
    ("gi-code", "def gen():\n    yield 1\n", "ans = getattr(gen(), 'gi_co' + 'de')"),
    ("gi-yieldfrom", "def gen():\n    yield 1\n", "ans = getattr(gen(), 'gi_yield' + 'from')"),
    ("coroutine", "async def c():\n    return 1\n", "ans = c().cr_frame"),
    ("cr-frame-getattr", "", "ans = getattr(1, 'cr_' + 'frame')"),
    ("tb-frame", "", "try:\n    1 / 0\nexcept Exception as e:\n    ans = e.__traceback__.tb_frame"),
    (
        "tb-getattr",
        "",
        "try:\n    1 / 0\nexcept Exception as e:\n    ans = getattr(e, '__trace' + 'back__')",
    ),
    ("f-back", "", "ans = getattr(1, 'f_' + 'back')"),
]

# 4. Attribute access through str.format, format_map, string.Formatter and f-strings.
FORMATS: list[Payload] = [
    ("str-format", "", "ans = '{0.__class__.__mro__}'.format(1)"),
    ("format-map", "", "ans = '{x.__class__}'.format_map({'x': 1})"),
    ("unbound-format", "", "ans = str.format('{0.__class__}', 1)"),
    ("formatter-import", "", "from string import Formatter\nans = Formatter().format('{0}', 1)"),
    ("formatter-attr", "import string\n", "ans = string.Formatter().format('{0.__class__}', 1)"),
    (
        "userstring-format",
        "import collections\n",
        "u = collections.UserString\n"
        "ans = u('{0.__init__.__globals__[_sys].modules[os].environ}').format(u(''))",
    ),
    (
        "userstring-format-map",
        "import collections\n",
        "ans = collections.UserString('{x.__class__}').format_map({'x': 1})",
    ),
    (
        "super-format",
        "class S(str):\n    pass\n",
        "ans = super(S, S('{0.__init__.__globals__}')).format(len)",
    ),
    ("fstring", "", "ans = f'{().__class__}'"),
    ("fstring-spec", "", "ans = f'{1:{().__class__}}'"),
    ("format-builtin", "", "ans = format(1, '{0.__class__}')"),
]

# 5. Leaks through exception objects and except*.
EXCEPTIONS: list[Payload] = [
    ("attributeerror-obj", "", "try:\n    (1).nope\nexcept AttributeError as e:\n    ans = e.obj"),
    (
        "obj-getattr",
        "",
        "try:\n    (1).nope\nexcept AttributeError as e:\n    ans = getattr(e, 'ob' + 'j')",
    ),
    ("context", "", "try:\n    1 / 0\nexcept Exception as e:\n    ans = e.__context__"),
    (
        "context-getattr",
        "",
        "try:\n    1 / 0\nexcept Exception as e:\n    ans = getattr(e, '__cont' + 'ext__')",
    ),
    ("except-star", "", "try:\n    1 / 0\nexcept* ZeroDivisionError as g:\n    ans = g"),
    ("exception-group", "", "ans = ExceptionGroup('x', [ValueError()])"),
    ("base-group", "", "ans = BaseExceptionGroup"),
    ("system-exit", "", "raise SystemExit(0)"),
]

# 6. Shadowing RestrictedPython's guard hooks.
SHADOWING: list[Payload] = [
    ("parameter", "def f(_getattr_=getattr):\n    return ().__class__\n", "ans = f()"),
    ("lambda", "", "ans = (lambda _getattr_: 1)(None)"),
    ("local", "def f():\n    _getattr_ = getattr\n    return 1\n", "ans = f()"),
    ("comprehension", "", "ans = [1 for _getiter_ in [iter]]"),
    ("global", "", "global _write_\n_write_ = lambda o: o\nans = 1"),
    ("import-as", "from math import floor as _getitem_\n", "ans = 1"),
    ("for-target", "", "for _getitem_ in [1]:\n    pass\nans = 1"),
    ("walrus", "", "ans = (_getiter_ := iter)"),
    ("except-as", "", "try:\n    1 / 0\nexcept Exception as _getattr_:\n    ans = 1"),
    ("class-attribute", "class A:\n    _getattr_ = getattr\n", "ans = 1"),
    ("star-target", "", "*_write_, = [1]\nans = 1"),
    ("kw-only", "def f(*, _getiter_=iter):\n    return 1\n", "ans = f()"),
    ("vararg", "def f(*_getiter_):\n    return 1\n", "ans = f()"),
    ("delete", "", "del _getattr_\nans = 1"),
]

# 7. Attribute names built at run time, vars, dir, type with three arguments.
RUNTIME_NAMES: list[Payload] = [
    ("chr-join", "", "ans = getattr((), ''.join(chr(c) for c in [95, 95, 99, 108, 97, 115, 115]))"),
    ("hasattr", "", "ans = 'ESCAPED' if hasattr((), '_' * 2 + 'class' + '_' * 2) else 1 / 0"),
    ("setattr-module", "import math\n", "setattr(math, 'floor', len)\nans = 1"),
    ("delattr-module", "import math\n", "delattr(math, 'floor')\nans = 1"),
    ("vars", "", "ans = vars(1)"),
    ("dir", "", "ans = dir(1)"),
    ("type3", "", "ans = type('X', (object,), {'__getattr__': lambda s, n: n})"),
    ("type3-alias", "", "t = type\nans = t('X', (object,), {})"),
    ("typing-type3", "import typing\n", "ans = typing.Type('X', (), {})"),
    ("metaclass-keyword", "import typing\nclass A(metaclass=typing.Type):\n    pass\n", "ans = 1"),
    ("attrgetter", "import operator\n", "ans = operator.attrgetter('__class__')(1)"),
    ("methodcaller", "import operator\n", "ans = operator.methodcaller('__reduce__')(1)"),
    ("make-dataclass", "import dataclasses\n", "ans = dataclasses.make_dataclass('X', [])"),
]

# 8. Import bypasses.
IMPORTS: list[Payload] = [
    ("import-os", "", "import os\nans = 'ESCAPED' + str(os.getpid())"),
    ("dunder-import", "", "ans = __import__('os')"),
    ("importlib", "", "import importlib\nans = importlib.import_module('os')"),
    ("sys-modules", "", "import sys\nans = sys.modules['os']"),
    ("private-member", "import random\n", "ans = random._os"),
    ("private-getattr", "import random\n", "ans = getattr(random, '_' + 'os')"),
    ("private-from", "", "from random import _os\nans = _os"),
    ("submodule", "import json\n", "ans = json.decoder"),
    ("module-in-module", "import typing\n", "ans = typing.sys"),
    # A star import of an allowed module binds only the exported names the code uses, each
    # checked as if imported by name: neither a denied name nor a private one comes in.
    ("star-import-denied", "", "from operator import *\nans = attrgetter('__class__')(1)"),
    ("star-import-private", "", "from random import *\nans = _os.getpid()"),
    ("star-import-module", "", "from json import *\nans = decoder.scanstring"),
    ("relative", "", "from . import x\nans = 1"),
    ("help", "", "ans = help()"),
    ("breakpoint", "", "breakpoint()\nans = 1"),
    # eval is the sandbox's literal-expression evaluator: it compiles and looks up nothing.
    ("eval-import", "", "ans = eval(\"__import__('os').getpid()\")"),
    ("eval-walk", "", 'ans = eval("().__class__.__base__.__subclasses__()")'),
    ("eval-namespace", "", "ans = eval('x', {'x': print})"),
    ("eval-comprehension", "", 'ans = eval("[c for c in ().__class__.__mro__]")'),
    ("exec", "", "exec('ans = 1')"),
    ("open", "", "ans = open('/etc/passwd').read()"),
    ("globals", "", "ans = globals()"),
    ("module-index", "import math\n", "ans = math['floor']"),
]

# 9. ctypes, mmap, native code; code objects.
NATIVE: list[Payload] = [
    ("ctypes", "", "import ctypes\nans = ctypes.CDLL(None).getpid()"),
    ("private-ctypes", "", "import _ctypes\nans = 1"),
    ("mmap", "", "import mmap\nans = mmap.mmap(-1, 4096)"),
    ("marshal", "", "import marshal\nans = 1"),
    ("pickle", "", "import pickle\nans = pickle.loads(b'')"),
    ("dunder-code", "def f():\n    return 1\n", "ans = f.__code__"),
    ("code-getattr", "def f():\n    return 1\n", "ans = getattr(f, '__co' + 'de__')"),
    ("code-type", "", "import types\nans = types.CodeType"),
    ("co-code", "", "ans = getattr(1, 'co_' + 'code')"),
]

# 10. Unicode identifiers that NFKC-normalise to forbidden names; match statements.
UNICODE_AND_MATCH: list[Payload] = [
    ("fullwidth-eval", "", "ans = \uff45\uff56\uff41\uff4c('().__class__')"),
    ("bold-exec", "", "\U0001d41e\U0001d431\U0001d41e\U0001d41c('ans = 1')"),
    ("fullwidth-open", "", "ans = \uff4f\uff50\uff45\uff4e('/etc/passwd')"),
    ("fullwidth-class", "", "ans = ().__\uff43\uff4c\uff41\uff53\uff53__"),
    ("vertical-low-line", "", "ans = ()._\ufe33class\ufe33\ufe33"),
    ("fullwidth-import", "", "import \uff4f\uff53\nans = 1"),
    ("italic-getattr", "", "ans = \U0001d454\U0001d452\U0001d461attr((), '__class__')"),
    ("fullwidth-string", "", "ans = getattr((), '\uff3f\uff3fclass\uff3f\uff3f')"),
    ("match-class", "", "match 1:\n    case int(real=r):\n        ans = r"),
    ("match-dunder", "", "match 1:\n    case object(__class__=c):\n        ans = c"),
    ("match-mapping", "", "match {}:\n    case {'k': v}:\n        ans = v"),
]

CLASSES = {
    "1-subclass-walks": SUBCLASS_WALKS,
    "2-globals-builtins": GLOBALS,
    "3-frames": FRAMES,
    "4-format-strings": FORMATS,
    "5-exceptions": EXCEPTIONS,
    "6-hook-shadowing": SHADOWING,
    "7-runtime-names": RUNTIME_NAMES,
    "8-imports": IMPORTS,
    "9-native-and-code": NATIVE,
    "10-unicode-and-match": UNICODE_AND_MATCH,
}


# 12. Exhaustion under the shipped allow-list: (id, call, limits, accepted statuses).
LANGUAGE_LEVEL_EXHAUSTION = [
    ("cpu-spin", "while True:\n    pass", {"timeout_ms": 800}, {Status.TIMEOUT}),
    ("memory-bomb", "ans = bytearray(10 ** 10)", {"memory_mb": 64}, {Status.MEMORY_LIMIT}),
    (
        "memory-growth",
        "a = []\nwhile True:\n    a.append('x' * 10 ** 6)",
        {"memory_mb": 64},
        {Status.MEMORY_LIMIT},
    ),
    ("recursion", "def f(n):\n    return f(n + 1)\nans = f(0)", {}, REFUSED),
    (
        "c-recursion",
        "it = iter([])\nfor _ in range(1000000):\n    it = map(abs, it)\nans = next(it, None)",
        {},
        {Status.CRASHED, Status.ERROR},
    ),
    ("print-flood", "while True:\n    print('x' * 1000)", {}, {Status.OUTPUT_LIMIT}),
    ("huge-result", "ans = 'x' * (10 ** 7)", {}, {Status.OUTPUT_LIMIT}),
    (
        "deep-result",
        "x = []\nfor _ in range(100000):\n    x = [x]\nans = x",
        {},
        REFUSED,
    ),
    ("parser-parens", "ans = " + "(" * 5000 + "1" + ")" * 5000, {}, REFUSED),
    ("parser-unary", "ans = " + "-" * 60000 + "1", {}, REFUSED),
    ("parser-chain", "ans = " + "+".join(["1"] * 30000), {}, REFUSED),
    ("parser-not", "ans = " + "not " * 16000 + "1", {}, REFUSED),
    ("ast-depth", "ans = " + "[" * 150 + "]" * 150, {}, REFUSED),
    ("json-deep", "import json\nans = json.loads('[' * 100000 + ']' * 100000)", {}, REFUSED),
]
