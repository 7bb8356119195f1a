"""stages/ask.py without a model: which questions one `gabarito ask` call asks, and its JSON line."""

from __future__ import annotations

import io
import json

import pytest

from stages import ask
from stages.io import InputError

L = ["A", "B", "C", "D"]
BLOCK = "Pergunta: Por quê?\nA) um\nB) dois\nC) três\nD) quatro\n"


def test_one_question_from_options_and_the_file_is_not_read():
    blocks = io.StringIO(BLOCK)
    items = ask.questions_given(context="ctx", question="Por quê?", options=["um", "dois", "três", "quatro"],
                                blocks=blocks, letters=L)
    assert items == [{"context": "ctx", "question": "Por quê?", "options": ["um", "dois", "três", "quatro"]}]
    assert blocks.tell() == 0  # --question wins; standard input is not waited for


def test_blocks_from_a_file_and_interactive_when_nothing_is_given():
    items = ask.questions_given(context="", question=None, options=(), blocks=io.StringIO(BLOCK + "---\n" + BLOCK),
                                letters=L)
    assert [i["options"] for i in items] == [["um", "dois", "três", "quatro"]] * 2
    assert ask.questions_given(context="", question=None, options=(), blocks=None, letters=L) is None


def test_a_bad_question_is_refused_before_any_model_loads():
    with pytest.raises(InputError, match="expected exactly 4 options"):
        ask.questions_given(context="", question="Q?", options=["um"], blocks=None, letters=L)


def test_json_line():
    line = ask.as_json_line({"question": "Q", "options": ["é"]}, {"letter": "A", "index": 0})
    assert json.loads(line) == {"question": "Q", "options": ["é"], "letter": "A", "index": 0}
    assert "é" in line and line.index('"index"') < line.index('"letter"') < line.index('"options"')
