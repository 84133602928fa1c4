"""Every prompt the engine sends, in one place.

Worked examples go in as chat turns (a user question, then the assistant's answer) rather than
quoted inside one prompt: small models follow a turn they have "made" far more reliably.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.latm.cards import ToolCard
from orchestrator.latm.tasks import Example, SuiteExample
from orchestrator.models import Message

ALLOWED_MODULES = (
    "math, re, itertools, functools, collections, datetime, fractions, decimal, statistics, "
    "heapq, bisect, json, copy, string, operator, dataclasses, typing"
)

MAKER_SYSTEM = f"""\
You are a tool maker. From a few solved examples of a task you write ONE reusable, generic \
Python function that solves every question of that kind, then you use it on each example.

Rules for the function:
- It must compute the answer from its arguments. Never hard-code the examples' answers or \
branch on their exact inputs: it will be tested on questions you have not seen.
- Plain Python 3 only. Imports allowed: {ALLOWED_MODULES}. No file, network or OS access. \
No names that start with an underscore.
- Give it a short docstring saying what it does and what it returns.

Reply with code only: first the function (with its imports and helpers) in a ```python \
block, then, for each example in order, one line that calls it on that example: \
`ans = <function>(<arguments taken from the question>)`. No tests, no prints, no other calls."""

VERIFY_INSTRUCTIONS = """\
Now call your function for each of these new questions. Reply with one ```python block per \
question, in order, each a call like the ones above: `ans = <function>(<arguments taken from \
the question>)`. Write no new function; only if yours needs a fix, give the whole corrected \
function first, in its own block."""

USER_SYSTEM = """\
You answer a question by calling a Python tool. Reply with Python code only: usually one line \
that calls the tool with arguments taken from the question and assigns the final answer to \
`ans`. The worked examples show the form of a call; take every argument from the question \
you are answering, copied exactly.

The tool:
```python
{source}
```"""

DISPATCH_SYSTEM = """\
You route questions to tools. Given a question and a list of tools, reply with the name of \
the ONE tool that answers this kind of question, or with `none` if no tool fits. Reply with \
the name only."""

COT_SYSTEM = """\
Answer the question. Think step by step, then end with a line of the form \
"So the answer is <answer>." """


# A worked exchange on another task shows the form better than any description of it.
SHOWN_TASK = (
    "letter_counting",
    [
        ("How many times does the letter r appear in the word strawberry?", "3"),
        ("How many times does the letter s appear in the word Mississippi?", "4"),
    ],
)
SHOWN_REPLY = '''\
```python
def count_letter(word: str, letter: str) -> int:
    """Count how many times `letter` occurs in `word`, ignoring case."""
    return word.lower().count(letter.lower())
```
```python
ans = count_letter("strawberry", "r")
```
```python
ans = count_letter("Mississippi", "s")
```'''
SHOWN_QUESTIONS = [
    "How many times does the letter e appear in the word excellence?",
    "How many times does the letter o appear in the word bookworm?",
]
SHOWN_CALLS = """\
```python
ans = count_letter("excellence", "e")
```
```python
ans = count_letter("bookworm", "o")
```"""


def _verify_prompt(questions: Sequence[str]) -> str:
    shown = "\n\n".join(f"Question {n}: {q}" for n, q in enumerate(questions, 1))
    return f"{VERIFY_INSTRUCTIONS}\n\n{shown}"


def _task_prompt(task_name: str, pairs: Sequence[tuple[str, str]]) -> str:
    shown = "\n\n".join(
        f"Example {number}:\nQuestion: {question}\nAnswer: {answer}"
        for number, (question, answer) in enumerate(pairs, 1)
    )
    return f"Task: {task_name}\n\n{shown}\n\nWrite the function and the {len(pairs)} calls."


def maker_propose(task_name: str, demos: Sequence[Example]) -> list[Message]:
    return [
        Message(role="system", content=MAKER_SYSTEM),
        Message(role="user", content=_task_prompt(*SHOWN_TASK)),
        Message(role="assistant", content=SHOWN_REPLY),
        Message(role="user", content=_verify_prompt(SHOWN_QUESTIONS)),
        Message(role="assistant", content=SHOWN_CALLS),
        Message(role="user", content=_task_prompt(task_name, [(d.input, d.target) for d in demos])),
    ]


def maker_verify(history: list[Message], questions: Sequence[Example]) -> list[Message]:
    prompt = _verify_prompt([example.input for example in questions])
    return [*history, Message(role="user", content=prompt)]


def feedback(history: list[Message], reply: str, problems: Sequence[str]) -> list[Message]:
    """The maker's last reply and what went wrong with it, exactly, for another attempt."""
    listed = "\n".join(f"- {problem}" for problem in problems)
    return [
        *history,
        Message(role="assistant", content=reply),
        Message(
            role="user",
            content=f"That did not work:\n{listed}\n\nFix it and reply again with every part: "
            "the whole function if it changes, then one `ans = ...` call per question, in order.",
        ),
    ]


def user_messages(card: ToolCard, question: str) -> list[Message]:
    messages = [Message(role="system", content=USER_SYSTEM.format(source=card.source.strip()))]
    for demo in card.usage_demos:
        messages += [
            Message(role="user", content=f"Question: {demo.question}"),
            Message(role="assistant", content=demo.solution),
        ]
    return [*messages, Message(role="user", content=f"Question: {question}")]


def user_retry(messages: list[Message], reply: str, error: str) -> list[Message]:
    return user_feedback(messages, reply, [f"Running that failed: {error}"])


def user_feedback(messages: list[Message], reply: str, problems: Sequence[str]) -> list[Message]:
    """The user's last reply and exactly what to change in it, for another try."""
    listed = "\n".join(f"- {problem}" for problem in problems)
    return [
        *messages,
        Message(role="assistant", content=reply),
        Message(role="user", content=f"{listed}\nReply with the corrected call only."),
    ]


def dispatch_messages(question: str, tools: Sequence[tuple[str, str]]) -> list[Message]:
    listed = "\n".join(f"- {name}: {description}" for name, description in tools)
    return [
        Message(role="system", content=DISPATCH_SYSTEM),
        Message(role="user", content=f"Tools:\n{listed}\n\nQuestion: {question}\n\nTool:"),
    ]


def cot_messages(question: str) -> list[Message]:
    return [
        Message(role="system", content=COT_SYSTEM),
        Message(role="user", content=question),
    ]


REPAIR_INSTRUCTIONS = """\
This tool gives wrong answers on some questions of its task. Fix it: keep the function's \
name and what it already gets right, and make it compute the right answer for every \
example below.

The tool:
```python
{source}
```"""


def maker_repair(source: str, task_name: str, examples: Sequence[Example]) -> list[Message]:
    """The repair prompt: the current source, then the examples to solve (its usage demos
    and the failing cases), each with the right answer or what is known of it; cases with
    a fixed call (reported entrypoint arguments) are listed apart and need no call."""
    asked = [e for e in examples if not (isinstance(e, SuiteExample) and e.call)]
    fixed = [e for e in examples if isinstance(e, SuiteExample) and e.call]
    shown = "\n\n".join(
        f"Example {number}:\nQuestion: {example.input}\nAnswer: {_repair_answer(example)}"
        for number, example in enumerate(asked, 1)
    )
    if fixed:
        listed = "\n".join(f"- `{e.call}`: {_repair_answer(e)}" for e in fixed)
        shown += f"\n\nThese calls (no call of yours needed) must work too:\n{listed}"
    return [
        Message(role="system", content=MAKER_SYSTEM),
        Message(role="user", content=_task_prompt(*SHOWN_TASK)),
        Message(role="assistant", content=SHOWN_REPLY),
        Message(
            role="user",
            content=f"{REPAIR_INSTRUCTIONS.format(source=source.strip())}\n\nTask: {task_name}"
            f"\n\n{shown}\n\nWrite the whole corrected function and the {len(asked)} calls.",
        ),
    ]


def verify_questions(history: list[Message], questions: Sequence[Example]) -> list[Message]:
    """The verify prompt for the questions that need a call (not those with a fixed one)."""
    return maker_verify(
        history, [e for e in questions if not (isinstance(e, SuiteExample) and e.call)]
    )


def _repair_answer(example: Example) -> str:
    if not (isinstance(example, SuiteExample) and example.open):
        return example.target
    if example.wrong is not None:
        return f"not known, but {example.wrong!r} is wrong"
    return "not known, but the tool raised an error on it: it must return a value"
