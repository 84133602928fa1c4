"""Calls of every allowed module that model-written tools typically make, as one tool.

``coverage()`` returns what each call gave (or the error it raised, as text), by name.
The coverage test runs it in every sandbox backend and natively, and the two must agree:
an allowed module behaves in the sandbox as in CPython.
"""

import bisect
import calendar
import cmath
import collections
import copy
import dataclasses
import datetime
import decimal
import fractions
import functools
import heapq
import itertools
import json
import math
import operator
import random
import re
import statistics
import string
import textwrap
import typing
import unicodedata


def dates():
    when = datetime.datetime.strptime("2021-03-04 10:20", "%Y-%m-%d %H:%M")
    day = datetime.datetime.strptime("03/04/21", "%m/%d/%y").date()
    return {
        "strptime": when.isoformat(),
        "strptime_date": day.isoformat(),
        "strptime_names": datetime.datetime.strptime("Mon, 5 Feb 2024", "%a, %d %b %Y").day,
        "strftime": datetime.date(2021, 3, 4).strftime("%A %d %B %Y"),
        "strftime_time": when.strftime("%I:%M %p on %j"),
        "format_spec": f"{when:%Y/%m/%d}",
        "fromisoformat": datetime.date.fromisoformat("2021-03-04").weekday(),
        "timedelta": str(datetime.timedelta(days=3, hours=4, minutes=5)),
        "difference": (datetime.date(2024, 3, 1) - datetime.date(2024, 2, 1)).days,
        "add": (when + datetime.timedelta(hours=30)).isoformat(),
        "timezone": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc).isoformat(),
        "replace": when.replace(year=2020).ctime(),
        "timetuple": list(when.timetuple())[:6],
        "isocalendar": list(datetime.date(2024, 12, 30).isocalendar()),
    }


def numbers():
    cents = decimal.Decimal("0.01")
    with decimal.localcontext() as context:
        context.prec = 5
        seventh = str(decimal.Decimal(1) / decimal.Decimal(7))
    return {
        "half_up": str(decimal.Decimal("2.675").quantize(cents, rounding=decimal.ROUND_HALF_UP)),
        "half_even": str(decimal.Decimal("2.665").quantize(cents)),
        "local_context": seventh,
        "decimal_format": format(decimal.Decimal("1234.5"), ",.2f"),
        "decimal_sqrt": str(decimal.Decimal(2).sqrt())[:12],
        "fraction": str(fractions.Fraction(3, 4) + fractions.Fraction("1/3")),
        "limit_denominator": str(fractions.Fraction(3.14159).limit_denominator(100)),
        "fraction_float": float(fractions.Fraction(7, 8)),
        "math": [math.gcd(12, 18), math.lcm(4, 6), math.comb(5, 2), math.isqrt(17)],
        "math_float": [round(math.log(8, 2), 9), math.floor(-2.5), math.hypot(3, 4)],
        "prod": math.prod([1, 2, 3, 4]),
        "cmath": str(cmath.sqrt(-4)),
        "int_base": [int("ff", 16), int("0b101", 0), bin(10), hex(255), oct(8)],
        "round": [round(2.5), round(3.14159, 2), divmod(17, 5)],
        "format_numbers": [format(1234567, ","), f"{0.5:.1%}", f"{42:08b}", f"{3.0:g}"],
        "str_format": "{:>6.2f}|{:<4}|{name!r}".format(3.14159, 7, name="x"),
        "percent": "%05.1f and %s" % (2.345, "s"),
    }


def statistics_calls():
    data = [2, 4, 4, 4, 5, 5, 7, 9]
    return {
        "mean": statistics.mean(data),
        "median": statistics.median(data),
        "mode": statistics.mode(data),
        "stdev": round(statistics.stdev(data), 9),
        "pstdev": statistics.pstdev(data),
        "quantiles": statistics.quantiles(data, n=4),
        "fmean": statistics.fmean([1, 2, 4]),
        "median_high": statistics.median_high([1, 3, 5, 7]),
        "harmonic": round(statistics.harmonic_mean([40, 60]), 9),
    }


def text():
    match = re.match(r"(?P<year>\d{4})-(\d{2})", "2021-03 and more")
    return {
        "groupdict": match.groupdict(),
        "groups": list(match.groups()),
        "sub": re.sub(r"\s+", " ", "a  b\t c"),
        "sub_function": re.sub(r"\d+", lambda m: str(int(m.group(0)) * 2), "a1 b22"),
        "findall": re.findall(r"(\w)(\d)", "a1 b2 c3"),
        "split": re.split(r"[,;]\s*", "a, b;c"),
        "flags": re.compile("hello", re.I | re.M).search("say HELLO").span(),
        "fullmatch": bool(re.fullmatch(r"[a-z]+", "abc")),
        "textwrap": textwrap.fill("the quick brown fox jumps over the lazy dog", 15),
        "dedent": textwrap.dedent("    a\n      b"),
        "shorten": textwrap.shorten("the quick brown fox jumps over the lazy dog", 20),
        "wrap": textwrap.wrap("aaa bbb ccc", 7),
        "unicodedata": [unicodedata.name("a"), unicodedata.category("1"),
                        unicodedata.numeric("½")],
        "normalize": unicodedata.normalize("NFKD", "é")[0],
        "strip_accents": "".join(
            c for c in unicodedata.normalize("NFD", "Crème Brûlée")
            if unicodedata.category(c) != "Mn"
        ),
        "string": [string.ascii_lowercase[:5], string.digits, string.capwords("a b")],
        "template": string.Template("$who likes $what").substitute(who="Ann", what="tea"),
        "methods": ["Hello".casefold().center(9, "*"), "a-b-c".rsplit("-", 1),
                    "Title case".title(), "  x ".strip(), "abc".zfill(5)],
        "translate": "hello".translate(str.maketrans("el", "ip")),
        "encode": list("é".encode("latin-1")) + list("é".encode("utf-8")),
        "idna": "bücher.example".encode("idna").decode("ascii"),
        "decode": b"\x93quoted\x94".decode("cp1252"),
        "utf16": len("abc".encode("utf-16")),
        "errors": b"caf\xe9".decode("utf-8", errors="replace"),
    }


@dataclasses.dataclass(order=True)
class Task:
    priority: int
    name: str = dataclasses.field(compare=False, default="")


Point = collections.namedtuple("Point", ["x", "y"])


def containers():
    heap = []
    for task in [Task(3, "c"), Task(1, "a"), Task(2, "b")]:
        heapq.heappush(heap, task)
    counts = collections.Counter("abracadabra")
    groups = collections.defaultdict(list)
    for word in ["apple", "avocado", "banana", "blueberry", "cherry"]:
        groups[word[0]].append(word)
    window = collections.deque([1, 2, 3], maxlen=3)
    window.append(4)
    scores = [10, 20, 30, 40]
    return {
        "heap": [heapq.heappop(heap).name for _ in range(3)],
        "nlargest": heapq.nlargest(2, [5, 1, 8, 3]),
        "merge": list(heapq.merge([1, 4], [2, 3])),
        "counter": counts.most_common(2),
        "counter_sum": sum(counts.values()),
        "defaultdict": dict(groups),
        "deque": list(window),
        "ordered": list(collections.OrderedDict(b=1, a=2)),
        "namedtuple": [list(Point(1, 2)), Point(3, 4).y, Point(5, 6) == (5, 6)],
        "chain_map": collections.ChainMap({"a": 1}, {"a": 2, "b": 3})["b"],
        "bisect": [bisect.bisect_left(scores, 20), bisect.bisect_right(scores, 20)],
        "insort": insort_demo(),
        "dataclass": dataclasses.asdict(Task(1, "a")),
        "dataclass_sort": [t.name for t in sorted([Task(2, "b"), Task(1, "a")])],
        "replace": dataclasses.replace(Task(1, "a"), priority=5).priority,
        "copy": copy.deepcopy({"a": [1, {"b": 2}]}),
        "json": json.loads(json.dumps({"a": [1, 2.5, None, "é"]}, sort_keys=True, indent=2)),
        "json_text": json.dumps({"b": 1, "a": [True, None]}, sort_keys=True),
        "typing": typing.get_args(typing.Optional[int]) == (int, type(None)),
    }


def insort_demo():
    values = [1, 3, 5]
    bisect.insort(values, 4)
    return values


def iteration():
    people = [("ann", 31), ("bob", 25), ("cy", 31)]

    @functools.lru_cache(maxsize=None)
    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    orders = [
        order for order in itertools.permutations("ABC")
        if order.index("A") < order.index("C")
    ]
    rng = random.Random(7)
    deck = list(range(10))
    rng.shuffle(deck)
    return {
        "permutations": ["".join(order) for order in orders],
        "product": len(list(itertools.product([0, 1], repeat=3))),
        "combinations": list(itertools.combinations("abc", 2)),
        "groupby": [(k, len(list(g))) for k, g in itertools.groupby("aaabbc")],
        "accumulate": list(itertools.accumulate([1, 2, 3], operator.mul)),
        "islice": list(itertools.islice(itertools.count(5, 2), 3)),
        "cycle": list(itertools.islice(itertools.cycle("ab"), 5)),
        "zip_longest": list(itertools.zip_longest([1, 2], "a", fillvalue=None)),
        "reduce": functools.reduce(lambda a, b: a * b, [1, 2, 3, 4]),
        "lru_cache": fib(60),
        "partial": functools.partial(int, base=2)("101"),
        "sorted_keys": sorted(people, key=lambda p: (-p[1], p[0])),
        "itemgetter": sorted(people, key=operator.itemgetter(1))[0],
        "cmp_to_key": sorted([3, 1, 2], key=functools.cmp_to_key(lambda a, b: b - a)),
        "random": [rng.randint(1, 100), rng.choice("xyz"), deck],
        "calendar": [calendar.monthrange(2024, 2), calendar.isleap(2100),
                     calendar.day_name[calendar.weekday(2024, 2, 29)],
                     list(calendar.month_name)[3], calendar.month_abbr[12]],
        "month_text": calendar.month(2024, 2).splitlines()[0].strip(),
        "monthcalendar": calendar.monthcalendar(2024, 2)[0],
    }


def coverage():
    """Every group of calls, by name."""
    found = {}
    for name, group in [("dates", dates), ("numbers", numbers), ("statistics", statistics_calls),
                        ("text", text), ("containers", containers), ("iteration", iteration)]:
        try:
            for key, value in group().items():
                found[f"{name}.{key}"] = value
        except Exception as exc:
            found[name] = f"{exc!r}"
    return found
