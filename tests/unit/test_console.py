"""The console's pieces that need no server: sessions (idle and total lifetime, the bound,
CSRF tokens) and the rendering of untrusted text (highlighted source, diffs)."""

from __future__ import annotations

import pytest

from orchestrator.console import _render, _sessions
from orchestrator.console._sessions import IDLE_S, MAX_AGE_S, Sessions

HOSTILE = 'def f():\n    """</pre><script>alert(1)</script>"""\n    return "<b>&amp;"\n'


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_session_lapses_when_idle_and_at_its_age_limit(clock: Clock) -> None:
    sessions = Sessions(clock)
    sid, _ = sessions.open("key", "acme")
    clock.now += IDLE_S - 1
    assert sessions.get(sid) is not None  # and this use keeps it alive
    clock.now += IDLE_S - 1
    assert sessions.get(sid) is not None
    clock.now += IDLE_S + 1
    assert sessions.get(sid) is None
    sid, _ = sessions.open("key", "acme")
    for _ in range(MAX_AGE_S // (IDLE_S // 2)):
        clock.now += IDLE_S // 2
        assert sessions.get(sid) is not None  # used every half hour, until its age limit
    clock.now += 1
    assert sessions.get(sid) is None


def test_sessions_are_bounded_and_closed(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sessions, "MAX_SESSIONS", 3)
    sessions = Sessions(clock)
    ids = [sessions.open(f"key{i}", "acme")[0] for i in range(4)]
    assert sessions.get(ids[0]) is None  # the oldest made room
    assert all(sessions.get(sid) is not None for sid in ids[1:])
    sessions.close(ids[1])
    assert sessions.get(ids[1]) is None
    assert sessions.get(None) is None
    assert sessions.get("") is None


def test_each_session_has_its_own_csrf_token(clock: Clock) -> None:
    sessions = Sessions(clock)
    _, one = sessions.open("key", "acme")
    _, two = sessions.open("key", "acme")
    assert one.csrf != two.csrf
    assert one.csrf_ok(one.csrf)
    assert not one.csrf_ok(two.csrf)
    assert not one.csrf_ok(None)
    assert not one.csrf_ok("")
    assert "key" not in repr(one)


def test_highlighted_source_is_escaped() -> None:
    html = str(_render.highlighted(HOSTILE))
    assert "<script>" not in html
    assert "</pre><script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;&amp;amp;" in html


def test_a_diff_is_escaped() -> None:
    html = str(_render.diff_table("x = 1\n", HOSTILE, "v1", "v2"))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'class="diff_add"' in html
