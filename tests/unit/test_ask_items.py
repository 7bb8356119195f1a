"""gabarito/tools/ask.py without a model: which questions one `gabarito ask` call asks, and its JSON line."""

from __future__ import annotations

import io
import json

import pytest

from gabarito.io import InputError
from gabarito.tools import ask

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
    with pytest.raises(InputError, match="expected 2 to 4 options \\(A to D, one --option each, in order\\), got 1"):
        ask.questions_given(context="", question="Q?", options=["um"], blocks=None, letters=L)


def test_json_line():
    line = ask.as_json_line({"question": "Q", "options": ["é"]}, {"letter": "A", "index": 0})
    assert json.loads(line) == {"question": "Q", "options": ["é"], "letter": "A", "index": 0}
    assert "é" in line and line.index('"index"') < line.index('"letter"') < line.index('"options"')


# --- 2 to 10 options ---------------------------------------------------------------------------------
ENEM = """Pergunta: Considere as afirmativas:
I. A capital do Brasil é Brasília.
II. Brasília foi inaugurada em 1960.
V. Uma quinta afirmativa.
Estão corretas:
A) apenas I
B) apenas II
C) I e II
D) I e V
E) todas
"""


def test_five_options_from_the_whole_alphabet_and_roman_numerals_stay_question():
    item = ask.parse_block(ENEM)  # letters: format.letters' default, A to J
    assert item["options"] == ["apenas I", "apenas II", "I e II", "I e V", "todas"]
    assert item["question"].splitlines()[1:4] == ["I. A capital do Brasil é Brasília.",
                                                  "II. Brasília foi inaugurada em 1960.", "V. Uma quinta afirmativa."]
    assert ask.parse_block(ask.format_block("", item["question"], item["options"])) == item
    assert ask.format_block("", "Q?", item["options"]).splitlines()[-1] == "E) todas"
    two = ask.parse_block("Pergunta: Verdadeiro ou falso?\nA) Verdadeiro\nB) Falso\n")
    assert two["options"] == ["Verdadeiro", "Falso"]
    ten = ask.format_block("", "Q?", [f"opção {i}" for i in range(10)])
    assert ask.parse_block(ten)["options"][-1] == "opção 9" and "J) opção 9" in ten


def test_five_options_given_one_by_one_and_the_bounds():
    alphabet = list("ABCDEFGHIJ")
    five = ["um", "dois", "três", "quatro", "cinco"]
    assert ask.questions_given(context="", question="Q?", options=five, blocks=None, letters=alphabet)[0]["options"] == five
    for n in (1, 11):
        with pytest.raises(InputError, match=f"expected 2 to 10 options \\(A to J, one --option each, in order\\), got {n}"):
            ask.questions_given(context="", question="Q?", options=[f"o{i}" for i in range(n)], blocks=None,
                                letters=alphabet)
    with pytest.raises(InputError, match="option\\(s\\) E empty"):
        ask.check_question(context="", question="Q?", options=five[:4] + [" "], letters=alphabet)


def test_render_five_options():
    options = ["um", "dois", "três", "quatro", "cinco"]
    probs = {"A": 0.1, "B": 0.1, "C": 0.1, "D": 0.1, "E": 0.6}
    lines = ask.render({"letter": "E", "index": 4, "option": "cinco", "probabilities": probs}, options,
                       list("ABCDEFGHIJ")).splitlines()
    assert lines[0] == "Answer: E) cinco  (60.0%)"
    assert [line[2] for line in lines[2:]] == list("ABCDE") and lines[-1].startswith("> E) cinco")
