"""The maker's reply protocol: every form small models write is read, as text, into the
same function and calls; a reply that cannot be used says what to change."""

from __future__ import annotations

import pytest

from orchestrator.latm.replies import NO_FUNCTION, pick_calls, read_reply, reply_problems

F = "```"
TOOL = '''def sort_words(question: str) -> str:
    """Sort the words after 'List:'."""
    return " ".join(sorted(question.split("List:", 1)[-1].split()))
'''
QUESTIONS = ["Sort: List: b a", "Sort: List: d c e", "Sort: List: z y"]
CALLS = [f"ans = sort_words({q!r})" for q in QUESTIONS]

FORMS = {
    "blocks (the form the prompt shows)": f"{F}python\n{TOOL}{F}\n"
    + "\n".join(f"{F}python\n{call}\n{F}" for call in CALLS),
    "one block with everything": f"{F}python\n{TOOL}\n" + "\n".join(CALLS) + f"\n{F}",
    "calls without ans": f"{F}python\n{TOOL}\n"
    + "\n".join(f"sort_words({q!r})" for q in QUESTIONS)
    + f"\n{F}",
    "print calls": f"{F}python\n{TOOL}\n"
    + "\n".join(f"print(sort_words({q!r}))" for q in QUESTIONS)
    + f"\n{F}",
    "prose around and between": f"Sure! Here is the function:\n\n{F}python\n{TOOL}{F}\n"
    + "\n".join(f"Example {n}:\n{F}python\n{c}\n{F}\n" for n, c in enumerate(CALLS, 1))
    + "\nThis sorts the words.",
    "no fences, prose lines": f"Here is the function:\n\n{TOOL}\n"
    + "\n".join(f"Example {n}:\n{c}" for n, c in enumerate(CALLS, 1)),
    "a __main__ guard": f"{F}python\n{TOOL}\nif __name__ == '__main__':\n"
    + "\n".join(f"    print(sort_words({q!r}))" for q in QUESTIONS)
    + f"\n{F}",
    "a main() scaffold": f"{F}python\n{TOOL}\ndef main():\n"
    + "\n".join(f"    print(sort_words({q!r}))" for q in QUESTIONS)
    + f"\n\nmain()\n{F}",
    "asserts": f"{F}python\n{TOOL}\n"
    + "\n".join(f"assert sort_words({q!r}) == 'x'" for q in QUESTIONS)
    + f"\n{F}",
    "extra test calls": f"{F}python\n{TOOL}{F}\n"
    + "\n".join(f"{F}python\n{c}\nprint(ans)\n{F}" for c in CALLS)
    + f"\n{F}python\nprint(sort_words('List: banana apple'))\n{F}",
    "an unclosed last fence": f"{F}python\n{TOOL}\n" + "\n".join(CALLS) + "\n",
}


@pytest.mark.parametrize("form", FORMS)
def test_every_accepted_form_reads_as_the_same_function_and_calls(form: str) -> None:
    reply = read_reply(FORMS[form])
    assert reply.source is not None
    assert [line for line in reply.source.splitlines() if line] == [
        line for line in TOOL.splitlines() if line
    ]
    assert pick_calls(reply.calls, QUESTIONS) == CALLS


def test_a_call_with_steps_stays_one_call() -> None:
    steps = "\n".join(f"{F}python\nwords = {q!r}\nans = sort_words(words)\n{F}" for q in QUESTIONS)
    reply = read_reply(f"{F}python\n{TOOL}{F}\n{steps}")
    assert reply.calls == [f"words = {q!r}\nans = sort_words(words)" for q in QUESTIONS]
    named = read_reply(f"{F}python\n{TOOL}\nresult = sort_words({QUESTIONS[0]!r})\n{F}")
    assert named.calls == [f"result = sort_words({QUESTIONS[0]!r})\nans = result"]


def test_a_verification_reply_of_calls_only_uses_the_known_function() -> None:
    reply = read_reply("\n".join(f"sort_words({q!r})" for q in QUESTIONS), known=["sort_words"])
    assert reply.source is None
    assert pick_calls(reply.calls, QUESTIONS) == CALLS


def test_too_few_calls_say_how_many_and_in_what_form() -> None:
    reply = read_reply(f"{F}python\n{TOOL}\n{CALLS[0]}\n{F}")
    assert pick_calls(reply.calls, QUESTIONS) is None
    (problem,) = reply_problems(reply, 3, "Example", "sort_words")
    assert "has 1 call(s) of `sort_words` but there are 3 examples" in problem
    assert "Write exactly 3 calls, one per example in order" in problem
    assert "`ans = sort_words(<arguments taken from that example>)`" in problem


def test_calls_that_match_no_question_are_refused_with_the_reason() -> None:
    tests = "\n".join(f"print(sort_words('List: t{n} s{n}'))" for n in range(5))
    reply = read_reply(f"{F}python\n{TOOL}\n{tests}\n{F}")
    assert len(reply.calls) == 5
    assert pick_calls(reply.calls, QUESTIONS) is None
    (problem,) = reply_problems(reply, 3, "Example", "sort_words")
    assert "5 calls of `sort_words` for 3 examples" in problem
    assert "no tests, no other examples" in problem


def test_answers_written_by_hand_are_named() -> None:
    reply = read_reply(f"{F}python\n{TOOL}{F}\n{F}python\nans = 'a b'\n{F}")
    problems = reply_problems(reply, 3, "Example", "sort_words")
    assert problems[0].startswith("The reply has no call of `sort_words`")
    assert "`ans = 'a b'` does not call `sort_words`" in problems[1]


def test_prose_alone_has_no_function() -> None:
    reply = read_reply("The answer to example 1 is 24, example 2 is 63.")
    assert reply.source is None
    assert "def <name>(<arguments>):" in NO_FUNCTION
