"""Tasks: loading BBH JSON and JSONL files, the paper's split, and every malformed case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import InvalidRequest
from orchestrator.latm import tasks
from orchestrator.latm.tasks import Example, Split, Task, load_task, task_from_examples

BBH = Path(__file__).resolve().parents[2].parent / "shared" / "bbh"

needs_bbh = pytest.mark.skipif(not BBH.is_dir(), reason=f"BBH task files not found at {BBH}")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- real BBH files ---------------------------------------------------------------------


@needs_bbh
def test_a_bbh_file_loads_in_order_with_its_stem_as_name() -> None:
    task = load_task(BBH / "word_sorting.json")
    assert task.name == "word_sorting"
    assert task.source == str(BBH / "word_sorting.json")
    assert len(task.examples) == 250
    assert task.examples[0] == Example(
        index=0,
        input="Sort the following words alphabetically: List: syndrome therefrom",
        target="syndrome therefrom",
    )
    assert [e.index for e in task.examples] == list(range(250))


@needs_bbh
def test_a_file_with_extra_keys_loads_its_examples() -> None:
    task = load_task(BBH / "chinese_remainder_theorem.json", name="crt")
    assert task.name == "crt"
    assert len(task.examples) == 250
    assert task.examples[0].target == "14687"


@needs_bbh
def test_the_paper_split_on_a_real_file() -> None:
    split = load_task(BBH / "dyck_languages.json").split()
    assert [e.index for e in split.demos] == [0, 1, 2]
    assert [e.index for e in split.validation] == [5, 6, 7]
    assert len(split.test) == 240
    assert split.test[0].index == 10
    assert split.test[-1].index == 249


@needs_bbh
def test_a_smaller_bbh_file_gives_a_shorter_test_set() -> None:
    split = load_task(BBH / "causal_judgement.json").split()
    assert len(split.test) == 187 - 10


def test_a_task_too_small_for_the_split_names_both_sizes() -> None:
    task = task_from_examples("tiny", [(f"q{i}", f"a{i}") for i in range(5)])
    with pytest.raises(InvalidRequest, match=r"tiny has 5 examples; split 0-2/5-7/10 needs.* 11"):
        task.split()


def test_a_custom_split_picks_the_named_examples() -> None:
    task = task_from_examples("t", [(f"q{i}", f"a{i}") for i in range(6)])
    split = task.split(Split.parse("0/1,3/4"))
    assert [e.target for e in split.demos] == ["a0"]
    assert [e.target for e in split.validation] == ["a1", "a3"]
    assert [e.target for e in split.test] == ["a4", "a5"]


# --- Split ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0-2/5-7/10", Split()),
        ("0,1,2/5-7/10", Split()),
        (" 0-1,2 / 5,6-7 / 10- ", Split()),
        ("0-4/5-9/10", Split(demos=(0, 1, 2, 3, 4), validation=(5, 6, 7, 8, 9))),
        ("0-2//3", Split(validation=(), test_start=3)),
        ("3,0/1/4", Split(demos=(3, 0), validation=(1,), test_start=4)),
    ],
)
def test_split_parse_reads_ranges_and_lists(text: str, expected: Split) -> None:
    assert Split.parse(text) == expected


def test_a_split_prints_as_it_parses() -> None:
    assert str(Split()) == "0-2/5-7/10"
    assert Split.parse(str(Split(demos=(0, 4), validation=(), test_start=5))) == Split(
        demos=(0, 4), validation=(), test_start=5
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0-2/5-7", "expected DEMOS/VALIDATION/TEST_START"),
        ("0-2/5-7/10/12", "expected DEMOS/VALIDATION/TEST_START"),
        ("a/5-7/10", "'a' is not an index"),
        ("/5-7/10", "'' is not an index"),
        ("0-2/5-/10", "'5-' is not an index"),
        ("2-0/5/10", "range '2-0' runs backwards"),
        ("0-2/5-7/x", "test start 'x' is not an index"),
        ("0-2/2-4/10", r"share indices \[2\]"),
        ("0-2/5-7/7", "must start after index 7, not at 7"),
        ("0,0/5/10", "demos repeats an index"),
        ("0/5,5/10", "validation repeats an index"),
        ("-1/5/10", "'-1' is not an index"),
    ],
)
def test_split_parse_refuses_malformed_splits(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        Split.parse(text)


def test_a_split_built_in_code_is_checked_too() -> None:
    with pytest.raises(InvalidRequest, match="demos must name at least one example"):
        Split(demos=())
    with pytest.raises(InvalidRequest, match="negative index"):
        Split(demos=(-1, 0))
    with pytest.raises(InvalidRequest, match="must start after index 7"):
        Split(test_start=3)


# --- JSON and JSONL ---------------------------------------------------------------------


def test_jsonl_loads_one_object_per_line_and_skips_blank_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sums.jsonl",
        '{"input": "1+1", "target": "2"}\n\n   \n{"input": "2+3", "target": 5}\n'
        '{"input": "half", "target": 0.5, "extra": "ignored"}\n',
    )
    task = load_task(path)
    assert task.name == "sums"
    assert task.examples == (
        Example(index=0, input="1+1", target="2"),
        Example(index=1, input="2+3", target="5"),
        Example(index=2, input="half", target="0.5"),
    )


def test_a_bare_json_list_loads(tmp_path: Path) -> None:
    path = write(tmp_path, "t.json", json.dumps([{"input": "q", "target": "a"}]))
    assert load_task(path).examples == (Example(index=0, input="q", target="a"),)


def test_task_from_examples_numbers_the_pairs() -> None:
    task = task_from_examples("pairs", [("q0", "a0"), ("q1", "a1")])
    assert task == Task(
        name="pairs",
        examples=(Example(0, "q0", "a0"), Example(1, "q1", "a1")),
        source="<examples given in code>",
    )


def test_task_from_examples_refuses_empty_and_malformed_pairs() -> None:
    with pytest.raises(InvalidRequest, match="no examples given"):
        task_from_examples("t", [])
    with pytest.raises(InvalidRequest, match="example 1 is not an"):
        task_from_examples("t", [("q", "a"), ("q", 3)])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.json", '{"examples": [', "invalid JSON at line 1"),
        ("lines.json", '{"input": "q", "target": "a"}\n{"input": "q", "target": "a"}', ".jsonl"),
        ("nokey.json", '{"canary": "x"}', "expected"),
        ("empty.json", '{"examples": []}', "holds no examples"),
        ("empty.jsonl", "\n\n", "holds no examples"),
        ("noinput.json", '[{"input": "q", "target": "a"}, {"target": "a"}]', "item 1: missing"),
        ("nulltarget.json", '[{"input": "q", "target": null}]', "item 0: missing or non-scalar"),
        ("listtarget.json", '[{"input": "q", "target": ["a"]}]', "non-scalar 'target' \\(list"),
        ("notobject.json", '["q"]', "item 0: expected an object"),
        ("intinput.json", '[{"input": 3, "target": "a"}]', "non-string 'input'"),
        ("badline.jsonl", '{"input": "q", "target": "a"}\n\n{"input": "q"', "line 3: invalid JSON"),
        ("notarget.jsonl", '{"input": "q", "target": "a"}\n{"input": "q"}', "line 2: missing"),
    ],
)
def test_malformed_files_name_the_file_and_the_item(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(InvalidRequest, match=message) as raised:
        load_task(path)
    assert str(path) in str(raised.value)


def test_a_missing_file_is_an_invalid_request(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="no such task file"):
        load_task(tmp_path / "absent.json")


def test_a_directory_is_an_invalid_request(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="cannot read"):
        load_task(tmp_path)


def test_a_file_that_is_not_utf8_is_an_invalid_request(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'[{"input": "caf\xe9", "target": "a"}]')
    with pytest.raises(InvalidRequest, match="not UTF-8"):
        load_task(path)


def test_an_oversize_file_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "MAX_TASK_FILE_BYTES", 10)
    path = write(tmp_path, "big.json", '[{"input": "question", "target": "a"}]')
    with pytest.raises(InvalidRequest, match="over the 10 byte limit"):
        load_task(path)


# --- varied demos -------------------------------------------------------------------------


def answered(*targets: str) -> Task:
    examples = tuple(Example(i, f"question {i}", t) for i, t in enumerate(targets))
    return Task(name="answered", examples=examples, source="test")


def test_varied_swaps_a_repeated_answer_for_the_first_spare_with_a_new_one() -> None:
    # Demos 0-2 all 'No'; spares 3 ('No'), 4 ('Yes'), 8 ('No'), 9 ('Maybe'); the
    # validation cases 5-7 ('Yes') stay unseen.
    task = answered("No", "No", "No", "No", "Yes", "Yes", "Yes", "Yes", "No", "Maybe", "No")
    assert task.varied() == Split(demos=(0, 4, 9))
    # Two answers only: one demo changes, the third keeps its repeated 'No'.
    two = answered("No", "No", "No", "No", "Yes", "Yes", "Yes", "Yes", "No", "No", "No")
    assert two.varied() == Split(demos=(0, 2, 4))


def test_varied_keeps_demos_whose_answers_already_differ() -> None:
    task = answered("A", "B", "A", "C", "D", *["E"] * 6)
    split = Split(demos=(0, 1, 3))
    assert task.varied(split) == split
    assert task.varied() == Split(demos=(0, 1, 3))  # demo 2 ('A' again) gives way to 3 ('C')


def test_varied_never_takes_a_validation_case_or_a_test_item() -> None:
    # The only other answer is at validation index 6 and in the test set: nothing changes.
    task = answered("no", "No", " NO ", "no", "no", "no", "yes", "no", "no", "no", "yes")
    assert task.varied() == Split()


def test_varied_demos_are_in_file_order_and_the_split_stays_valid() -> None:
    task = answered("x", "x", "x", "y", "z", "x", "x", "x", "x", "x", "x")
    varied = task.varied(Split(demos=(2, 1, 0)))
    assert varied == Split(demos=(2, 3, 4))  # the first demo given (2) stays
    assert Split.parse(str(varied)) == varied
    assert [e.target for e in task.split(varied).demos] == ["x", "y", "z"]
