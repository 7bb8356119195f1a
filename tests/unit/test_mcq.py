"""stages/mcq.py: the user's multiple-choice files checked row by row, mixed, de-duplicated and split."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from gabarito.io import InputError
from gabarito.items import hash_split
from gabarito.params import MCQParams, MCQSource, load_section, parse_section
from stages import mcq as M
from tests.fake_secrets import FAKE_KEY


def _row(i="q1", **kw) -> dict:
    row = {"id": i, "question": "Quanto é 2 + 2?", "options": ["3", "4", "5", "6", "22"], "answer": "B"}
    row.update(kw)
    return {k: v for k, v in row.items() if v is not None}


def _jsonl(*rows) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows)


def _build(*sources, **params):
    """build() over (name, text) files, as the command reads them."""
    p = MCQParams(**{"sources": [], **params})
    rows = []
    for name, text in sources:
        rows.append(M.rows_of(MCQSource(path=name), text, name))
    return M.build(rows, p)


# --- one row -----------------------------------------------------------------------------------------
def test_a_good_row_becomes_the_shared_record():
    rec, errs = M.check_row(_row(context="Aritmética.", subject="matemática", split="test"), "f.jsonl:1",
                            source="prova", language="pt")
    assert errs == []
    assert rec == {"id": "q1", "split": "test", "context": "Aritmética.", "question": "Quanto é 2 + 2?",
                   "answers": ["3", "4", "5", "6", "22"], "label": 1, "question_type": "matemática",
                   "none_correct": False, "source": "prova", "language": "pt", "subject": "matemática"}
    # typed by its subject (as the exams stage types an ENEM area), not "other" beside Cosmos QA's types
    no_subject, _ = M.check_row(_row(), "f.jsonl:1", source="prova", language="pt")
    assert no_subject["question_type"] == "other"


@pytest.mark.parametrize("answer,label", [("A", 0), ("e", 4), (" C ", 2), (0, 0), (4, 4), ("3", 3),
                                          ("C)", 2), ("(d)", 3), ("b.", 1)])  # as answer keys write letters
def test_answer_is_a_letter_or_a_zero_based_index(answer, label):
    assert M.parse_answer(answer, 5) == (label, None)


@pytest.mark.parametrize("answer,says", [
    ("F", "outside the 5 options (letters A-E)"), ("F)", "outside the 5 options (letters A-E)"), (5, "outside the 5 options (indices 0-4"),
    (-1, "outside the 5 options"), ("AB", "neither a letter"), (True, "neither a letter"), (1.0, "neither a letter")])
def test_an_answer_outside_the_options_is_named(answer, says):
    label, problem = M.parse_answer(answer, 5)
    assert label is None and says in problem


def test_english_rows_get_ingests_question_type_and_none_correct():
    rec, _ = M.check_row(_row(question="Why did she leave?", options=["Rain", "None of the above"], answer=1),
                         "f:1", source="s", language="en")
    assert (rec["question_type"], rec["none_correct"], rec["language"]) == ("cause", True, "en")
    rec, _ = M.check_row(_row(options=["1", "Nenhuma das alternativas"], answer="B"), "f:1", source="s", language="pt")
    assert (rec["question_type"], rec["none_correct"]) == ("other", True)


def test_row_fields_override_the_source_defaults():
    rec, _ = M.check_row(_row(language="en", source="own"), "f:1", source="file", language="pt")
    assert (rec["language"], rec["source"]) == ("en", "own")


# --- every problem of a file, each with its file:line ----------------------------------------------
BAD_FILE = _jsonl(
    _row("ok1"),
    {"id": "m1", "question": "Sem alternativas?", "answer": "A"},                        # 2: missing options
    _row("m2", answer=None),                                                           # 3: missing answer
    _row("o1", answer="F"),                                                            # 4: letter outside
    _row("o2", answer=7),                                                              # 5: index outside
    _row("f1", options=["só uma"], answer="A"),                                        # 6: fewer than 2
    _row("f2", options=[str(i) for i in range(11)], answer=0),                         # 7: more than 10
    '{"id": "j1", "question": ',                                                        # 8: bad JSON
    _row("s1", split="dev"),                                                           # 9: unknown split
    _row("l1", language="es"),                                                         # 10: unknown language
    _row("ok1", question="Outra pergunta?"),                                           # 11: id, other content
    _row("u1", anwser="B"),                                                            # 12: unknown field
    _row("e1", options=["a", "", "c"]),                                                # 13: empty option
    _row("r1", options=["Sim", "sim ", "Não"]),                                        # 14: repeated option
    _row("q0", question=""),                                                           # 15: empty question
)


def test_every_problem_of_a_file_is_reported_together_with_its_line():
    records, metrics, problems = _build(("prova.jsonl", BAD_FILE))
    expected = {
        2: "missing field 'options'", 3: "missing field 'answer'", 4: "answer 'F' is outside the 5 options",
        5: "answer 7 is outside the 5 options", 6: "1 option(s); an item needs 2 to 10",
        7: "11 option(s); an item needs 2 to 10", 8: "not valid JSON", 9: "split 'dev' is unknown",
        10: "language 'es' is unknown", 11: "id 'ok1' is also at prova.jsonl:1 with different content",
        12: "unknown field 'anwser' (did you mean 'answer'?)", 13: "option(s) B empty",
        14: "option(s) B repeat an earlier option", 15: "question is empty"}
    assert len(problems) == len(expected)
    assert problems[6].startswith("prova.jsonl:8: ")  # in line order, reading and checking problems alike
    for line, says in expected.items():
        assert any(p.startswith(f"prova.jsonl:{line}: ") and says in p for p in problems), (line, problems)
    assert [r["id"] for r in records] == ["ok1"]
    assert metrics["sources"]["prova"] | {} == {
        "read": 15, "kept": 1, "duplicates": 0, "problems": 14, "by_split": {hash_split("ok1", seed=0, validation_share=0.2): 1},
        "by_options": {"5": 1}, "by_language": {"pt": 1}, "skipped": {"annulled": 0, "needs_figure": 0},
        "skipped_ids": {"annulled": [], "needs_figure": []}}


def test_the_message_lists_twenty_problems_and_counts_the_rest():
    text = _jsonl(*[_row(f"x{i}", answer="Z") for i in range(25)])
    _, _, problems = _build(("big.jsonl", text))
    message = M.problem_message(problems)
    assert message.startswith("mcq: 25 problem(s)") and "nothing was written" in message
    assert "big.jsonl:20:" in message and "big.jsonl:21:" not in message and message.endswith("... and 5 more")


def test_an_identical_repeated_row_is_kept_once_and_counted():
    records, metrics, problems = _build(("a.jsonl", _jsonl(_row("q1"), _row("q2"), _row("q1"))))
    assert problems == [] and [r["id"] for r in records] == ["q1", "q2"]
    assert metrics["duplicates"] == 1 and metrics["sources"]["a"]["duplicates"] == 1


def test_an_id_repeated_across_sources_with_other_content_names_both_places():
    _, _, problems = _build(("a.jsonl", _jsonl(_row("q1"))), ("b.jsonl", _jsonl(_row("q1", answer="C"))))
    assert problems == ["b.jsonl:1: id 'q1' is also at a.jsonl:1 with different content (label). Ids must be "
                        "unique: give one of them another id, or remove the copy."]


def test_the_same_item_in_two_files_is_kept_once_under_its_first_source():
    # a JSONL and a CSV holding one item: the same content, though each file names its own source
    records, metrics, problems = _build(("a.jsonl", _jsonl(_row("q1", options=["x", "y"], answer="A"))),
                                        ("b.csv", "id,question,option_a,option_b,answer\nq1,Quanto é 2 + 2?,x,y,A\n"))
    assert problems == [] and [(r["id"], r["source"]) for r in records] == [("q1", "a")]
    assert metrics["duplicates"] == 1 and metrics["sources"]["b"]["duplicates"] == 1


def test_an_empty_source_is_a_problem():
    _, _, problems = _build(("vazio.jsonl", "\n"))
    assert problems == ["vazio: no items. A configured source must hold at least one: add items, or remove the "
                        "entry from mcq.sources."]


# --- CSV -----------------------------------------------------------------------------------------------
CSV = ("id,context,question,option_a,option_b,option_c,option_d,option_e,answer,subject\n"
       'c1,,"Quanto é 25% de R$ 24,00?","R$ 4,00","R$ 6,00","R$ 8,00","R$ 12,00","R$ 18,00",B,matemática\n'
       "c2,Um texto.,Qual bioma tem o mandacaru?,Amazônia,Pampa,Caatinga,Pantanal,,2,geografia\n")


def test_csv_rows_take_options_left_to_right_and_may_leave_the_last_empty():
    records, _, problems = _build(("p.csv", CSV))
    assert problems == []
    assert [(r["id"], r["answers"], r["label"], r["context"], r["subject"]) for r in records] == [
        ("c1", ["R$ 4,00", "R$ 6,00", "R$ 8,00", "R$ 12,00", "R$ 18,00"], 1, "", "matemática"),
        ("c2", ["Amazônia", "Pampa", "Caatinga", "Pantanal"], 2, "Um texto.", "geografia")]


def test_csv_problems_name_their_lines():
    text = ("id,question,option_a,option_b,option_c,answer\n"
            "a,Q?,x,y,z,D\n"              # 2: answer outside three options
            "b,Q?,x,,z,A\n"               # 3: a gap among the options
            'c,"Q, ok?",x,y\n'            # 4: too few fields
            "d,Q?,x,y,z,B\n")
    records, _, problems = _build(("p.csv", text))
    assert [r["id"] for r in records] == ["d"]
    assert problems == ["p.csv:2: answer 'D' is outside the 3 options (letters A-C).",
                        "p.csv:3: option(s) B empty (in CSV, fill option_a, option_b, ... left to right).",
                        "p.csv:4: expected 6 fields, got 4 (an unquoted comma?)."]


@pytest.mark.parametrize("header,says", [
    ("id,question,option_a,option_c,answer", "option columns must run option_a, option_b, ... without a gap"),
    ("id,question,option_a,option_b,answr", "unknown column 'answr' (did you mean 'answer'?)"),
    ("id,question,option_a,answer", "missing column(s) option_b"),
])
def test_csv_header_problems(header, says):
    _, _, problems = _build(("p.csv", header + "\n"))
    assert any(p.startswith("p.csv:1: ") and says in p for p in problems), problems


def test_a_semicolon_csv_from_excel_reads_as_a_comma_one():
    # Excel where the decimal mark is a comma (pt-BR) saves CSV with ';' (and CRLF line ends)
    semicolon = CSV.replace('"R$ 4,00","R$ 6,00","R$ 8,00","R$ 12,00","R$ 18,00"', "R$ 4,00;R$ 6,00;R$ 8,00;R$ 12,00;R$ 18,00")
    semicolon = semicolon.replace('"Quanto é 25% de R$ 24,00?"', "Quanto é 25% de R$ 24,00?").replace(",", ";")
    semicolon = semicolon.replace("R$ 4;00", "R$ 4,00").replace(";00", ",00").replace("\n", "\r\n")
    assert semicolon.startswith("id;context;question;option_a") and "R$ 4,00;R$ 6,00" in semicolon
    assert _build(("p.csv", semicolon))[0] == _build(("p.csv", CSV))[0]
    _, _, problems = _build(("p.csv", "id;question;option_a;option_b;answer\na;Q?;x;y;z;A\n"))
    assert problems == ["p.csv:2: expected 5 fields, got 6 (an unquoted semicolon?)."]


def test_empty_columns_excel_keeps_at_the_end_are_no_problem_unless_they_hold_a_value():
    text = "id,question,option_a,option_b,answer,,\r\nq1,Q?,x,y,B,,\r\nq2,Q?,x,y,A,,oops\r\n"
    records, _, problems = _build(("p.csv", text))
    assert [(r["id"], r["answers"], r["label"]) for r in records] == [("q1", ["x", "y"], 1)]
    assert problems == ["p.csv:3: a value in column(s) 7, which have no name in the header: name the column, or empty it."]


def test_a_file_not_in_utf8_names_its_line_and_how_to_save_it(tmp_path):
    path = tmp_path / "prova.csv"
    path.write_bytes("id,question,option_a,option_b,answer\r\nq1,Qual a função?,ação,opção,A\r\n".encode("cp1252"))
    read = list(M.read_entry(MCQSource(path=str(path)), timeout=1, root=tmp_path).read())
    assert len(read) == 1 and isinstance(read[0], str)
    assert read[0].startswith(f"{path}:2: not UTF-8 text (byte 0xe7") and '"CSV UTF-8"' in read[0]
    path.write_bytes(b"\xef\xbb\xbf" + "id,question,option_a,option_b,answer\r\nq1,Qual?,ação,opção,a\r\n".encode())
    read = list(M.read_entry(MCQSource(path=str(path)), timeout=1, root=tmp_path).read())  # Excel's "CSV UTF-8"
    assert read == [(f"{path}:2", {"id": "q1", "question": "Qual?", "answer": "a", "options": ["ação", "opção"]})]


def test_a_csv_quote_never_closed_stops_that_file_with_its_line():
    text = 'id,question,option_a,option_b,answer\na,Q?,x,y,A\nb,"Q?,x,y,A\n'
    _, _, problems = _build(("p.csv", text))
    assert len(problems) == 1 and problems[0].startswith("p.csv:3: malformed CSV")


def test_an_over_long_csv_field_says_so_not_check_the_quoting():
    # the same message as ingest's: the field is too long, which no quoting fixes
    import csv

    text = "id,question,option_a,option_b,answer\na,Q?,x,y,A\nb," + "x" * (csv.field_size_limit() + 1) + ",x,y,A\n"
    _, _, problems = _build(("p.csv", text))
    assert len(problems) == 1 and problems[0].startswith("p.csv:3: a field is longer than the CSV reader's limit")
    assert problems[0].endswith("The rows after it were not read.")


def test_other_file_types_are_refused():
    assert list(M.file_rows("x", "prova.txt")) == ["prova.txt: expected a .jsonl or .csv file."]


# --- the mixture, the split, the languages ------------------------------------------------------------
def test_two_sources_mix_in_order_each_keeping_its_name():
    records, metrics, problems = _build(("dir/enem.jsonl", _jsonl(_row("e1"), _row("e2", language="en"))),
                                        ("dir/oab.csv", CSV))
    assert problems == []
    assert [(r["id"], r["source"]) for r in records] == [("e1", "enem"), ("e2", "enem"), ("c1", "oab"), ("c2", "oab")]
    assert metrics["items"] == 4 and metrics["by_options"] == {"4": 1, "5": 3}
    assert metrics["by_language"] == {"en": 1, "pt": 3}
    assert (metrics["sources"]["enem"]["by_language"], metrics["sources"]["oab"]["by_options"]) == \
        ({"en": 1, "pt": 1}, {"4": 1, "5": 1})


def test_items_without_a_split_are_hash_split_deterministically_with_the_share():
    text = _jsonl(*[_row(f"item-{i}") for i in range(1000)], _row("t", split="test"), _row("v", split="validation"))
    records, metrics, _ = _build(("a.jsonl", text), validation_share=0.25, seed=7)
    again, _, _ = _build(("a.jsonl", text), validation_share=0.25, seed=7)
    assert records == again
    assert all(r["split"] == hash_split(r["id"], seed=7, validation_share=0.25) for r in records[:1000])
    assert 200 <= metrics["by_split"]["validation"] - 1 <= 300  # 250 expected; the hash is fair, not exact
    assert (records[-2]["split"], records[-1]["split"]) == ("test", "validation")  # a given split is kept
    other_seed, _, _ = _build(("a.jsonl", text), validation_share=0.25, seed=8)
    assert [r["split"] for r in other_seed] != [r["split"] for r in records]


def test_an_items_split_does_not_depend_on_the_other_items():
    alone, _, _ = _build(("a.jsonl", _jsonl(_row("item-5"))), validation_share=0.5)
    among, _, _ = _build(("a.jsonl", _jsonl(*[_row(f"item-{i}") for i in range(10)])), validation_share=0.5)
    assert alone[0]["split"] == next(r["split"] for r in among if r["id"] == "item-5")


def test_languages_route_to_two_outputs():
    p = MCQParams(sources=[], default_language="en")
    rows = M.rows_of(MCQSource(path="a.jsonl", language="pt"), _jsonl(_row("a"), _row("b", language="en")))
    rows_default = M.rows_of(MCQSource(path="b.jsonl"), _jsonl(_row("c")))
    records, _, _ = M.build([rows, rows_default], p)
    pt, en = M.by_language(records)
    assert [r["id"] for r in pt] == ["a"] and [r["id"] for r in en] == ["b", "c"]


def test_no_sources_is_empty_and_says_so():
    records, metrics, problems = M.build([], MCQParams(sources=[]))
    assert (records, problems, metrics["items"]) == ([], [], 0)
    assert metrics["notes"] == ["no sources configured (mcq.sources is empty): both outputs are empty"]


def test_a_split_left_empty_is_noted():
    _, metrics, _ = _build(("a.jsonl", _jsonl(_row("a", split="train"))))
    assert metrics["notes"] == ["no validation items from these sources"]


# --- params --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("entry,says", [
    ({"path": "a.jsonl", "url": "https://x/a.jsonl"}, "exactly one of path, url or hub"),
    ({}, "exactly one of path, url or hub"),
    ({"url": "ftp://x/a.jsonl"}, "must be an http(s) URL"),
    ({"url": "https://x/a.jsonl?X-Amz-Signature=abc"}, "carries a credential (its query has X-Amz-Signature)"),
    ({"url": "https://me:pw@x/a.jsonl"}, "carries a credential (it has a user name or password)"),
    ({"hub": "me/prova"}, "needs a revision"),
    ({"url": "https://x/a.jsonl?hf_token=abc"}, "carries a credential (its query has hf_token)"),
    ({"url": "https://x/a.jsonl?auth=abc"}, "carries a credential (its query has auth)"),
    ({"hub": "https://me:pw@huggingface.co/datasets/me/prova", "revision": "abc"}, "hub carries a credential"),
    ({"hub": "hf://me:pw@me/prova", "revision": "abc"}, "hub carries a credential"),
    ({"path": "a.jsonl", "revision": "abc"}, "go with a hub source only"),
    ({"path": "a.jsonl", "language": "es"}, "language"),
    ({"path": "a.jsonl", "sorce": "x"}, "did you mean 'source'"),
])
def test_a_bad_source_entry_is_refused_by_params(entry, says):
    with pytest.raises(InputError, match=re.escape(says)):
        parse_section("mcq", {"sources": [entry]})


def test_a_refused_source_never_shows_its_credential(tmp_path):
    # an upper-case scheme failed the http(s) check first, whose message showed the URL whole
    params = tmp_path / "params.yaml"
    for entry in ({"url": "HTTPS://me:pwsecret@x/a.jsonl"}, {"url": "ftp://me:pwsecret@x/a.jsonl?sig=sigsecret"},
                  {"hub": "https://me:pwsecret@huggingface.co/datasets/me/prova", "revision": "abc"}):
        params.write_text(yaml.safe_dump({"mcq": {"sources": [entry]}}))
        with pytest.raises(InputError) as err:
            load_section("mcq", params)
        assert "secret" not in str(err.value) and "mcq.sources.0" in str(err.value), str(err.value)


def test_two_sources_with_one_name_are_refused():
    with pytest.raises(InputError, match="two sources are named prova"):
        parse_section("mcq", {"sources": [{"path": "a/prova.jsonl"}, {"path": "b/prova.csv"}]})
    parse_section("mcq", {"sources": [{"path": "a/prova.jsonl"}, {"path": "b/prova.csv", "source": "prova-b"}]})


def test_source_names_default_to_the_file_or_dataset():
    assert [MCQSource(**e).name() for e in ({"path": "data/raw/mcq/enem_2023.csv"},
                                            {"url": "https://x.org/d/oab.jsonl?v=2"},
                                            {"hub": "me/vestibular", "revision": "abc"},
                                            {"path": "x.jsonl", "source": "mine"})] == \
        ["enem_2023", "oab", "vestibular", "mine"]


# --- the bundled sample and the README's examples ---------------------------------------------------
def test_the_bundled_sample_is_ten_five_option_portuguese_items(repo_root):
    p = parse_section("mcq", {})
    assert [s.path for s in p.sources] == ["data/raw/mcq/exemplo.jsonl"]
    rows = M.read_entry(MCQSource(path=str(repo_root / p.sources[0].path)), timeout=1, root=repo_root)
    records, metrics, problems = M.build([rows], p)
    assert problems == [] and len(records) == 10
    assert metrics["by_options"] == {"5": 10} and metrics["by_language"] == {"pt": 10}
    assert metrics["by_split"] == {"train": 7, "validation": 3}
    assert sum(bool(r["context"]) for r in records) == 4 and len({r["subject"] for r in records}) >= 4


def test_the_readme_examples_parse(repo_root):
    """The examples of the guide docs/own-exams.md (its first section, before the exam PDFs) parse."""
    guide = (repo_root / "docs" / "own-exams.md").read_text(encoding="utf-8")
    assert guide.startswith("# Bring your own exam\n")
    section = guide.split("\n## ", 1)[0]
    jsonl = re.search(r"```jsonl\n(.*?)```", section, re.S).group(1)
    csv_text = re.search(r"```csv\n(.*?)```", section, re.S).group(1)
    records, _, problems = _build(("readme.jsonl", jsonl), ("readme.csv", csv_text))
    assert problems == []
    assert [(r["id"], len(r["answers"]), r["label"]) for r in records] == [("p1-q07", 5, 0), ("p1-q08", 5, 1),
                                                                          ("p1-q09", 4, 2)]


# --- issue 23: secrets in messages, sources outside the project, big files --------------------------------
ENV_DUMP = f"IS_SANDBOX=yes\x00PATH=/usr/bin\x00OPENAI_API_KEY={FAKE_KEY}\x00HOME=/root\x00LANG=C.UTF-8\x00"


def _assert_safe(problems):
    message = M.problem_message(problems)
    assert "TEST" not in message and "\x00" not in message, message
    assert all(len(p) < 300 for p in problems), problems


def test_a_csv_holding_an_environment_dump_quotes_no_key_and_no_nul(monkeypatch):
    """notas.csv linked to /proc/self/environ: the header, the whole environment, was quoted as a column."""
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    for text in (ENV_DUMP, f"OPENAI_API_KEY={FAKE_KEY}\x00" + ENV_DUMP * 50):
        _, _, problems = _build(("notas.csv", text))
        assert problems and problems[0].startswith("notas.csv:1: unknown column '"), problems
        _assert_safe(problems)


def test_a_jsonl_row_quoting_a_secret_in_any_field_quotes_no_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    rows = [_row("a", **{ENV_DUMP: 1}), _row("b", answer=ENV_DUMP), _row("c", split=ENV_DUMP),
            _row("d", language=ENV_DUMP), _row(ENV_DUMP), _row(ENV_DUMP, answer="C")]
    _, _, problems = _build(("a.jsonl", _jsonl(*rows)))
    assert len(problems) == 5 and "is also at a.jsonl:5 with different content (label)" in problems[-1]
    _assert_safe(problems)


def test_a_path_source_outside_the_project_is_refused_naming_the_way_in(tmp_path):
    root = tmp_path / "repo"
    (root / "data/raw/mcq").mkdir(parents=True)
    elsewhere = tmp_path / "notas.jsonl"
    elsewhere.write_text(_jsonl(_row("q1")), encoding="utf-8")
    (root / "data/raw/mcq/link.jsonl").symlink_to(elsewhere)
    (root / "data/raw/mcq/own.jsonl").write_text(_jsonl(_row("q2")), encoding="utf-8")
    (root / "data/raw/mcq/alias.jsonl").symlink_to("own.jsonl")
    for path in (str(elsewhere), str(root / "data/raw/mcq/link.jsonl")):
        read = list(M.read_entry(MCQSource(path=path), timeout=1, raw_dir="data/raw/mcq", root=root).read())
        assert len(read) == 1 and read[0].startswith(f"{path}: outside the project"), read
        assert f"`dvc import-url {elsewhere} data/raw/mcq/notas.jsonl`" in read[0]
        assert "Copy it under data/raw/mcq/" in read[0]
    ok = M.read_entry(MCQSource(path=str(root / "data/raw/mcq/alias.jsonl")), timeout=1, root=root)
    assert [w for w, _ in ok.read()] == [f"{root}/data/raw/mcq/alias.jsonl:1"]


def test_a_big_source_is_read_row_by_row_and_problems_past_twenty_are_counted_not_kept(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("id,question,option_a,option_b,answer\n" + "".join(f"q{i},Q?,x,y,Z\n" for i in range(5000)))
    src = M.read_entry(MCQSource(path=str(path)), timeout=1, root=tmp_path)
    assert isinstance(src.read(), type(i for i in ()))  # a generator: nothing read before it is asked for
    emitted = []
    records, metrics, problems = M.build([src], MCQParams(sources=[]), emitted.append)
    assert (records, emitted, len(problems), problems.total) == ([], [], M.SHOWN_ERRORS, 5000)
    message = M.problem_message(problems)
    assert message.startswith("mcq: 5000 problem(s)") and message.endswith("... and 4980 more")
    path.write_text("id,question,option_a,option_b,answer\n" + "".join(f"q{i},Q?,x,y,A\n" for i in range(5000)))
    records, metrics, problems = M.build([src], MCQParams(sources=[]), emitted.append)
    assert records == [] and len(emitted) == 5000 and metrics["items"] == 5000 and not problems


def test_csv_lines_end_as_the_csv_modules_own_reading_ends_them():
    """\\r (old Mac), \\r\\n (Excel) and \\n files, and quoted line breaks, read as csv.reader(StringIO(newline=""))."""
    import csv
    import io

    for text in ('id,question,option_a,option_b,answer\rq1,"Q\r\nmulti",x,y,A\rq2,Q?,x,y,B\r',
                 'id,question,option_a,option_b,answer\r\nq1,"Q\nx\ry",x,y,A\r\n\r\nq2,Q?,x,y,B',
                 'id,question,option_a,option_b,answer\nq1,Q?,x,y,A\nq2,"Q?\r",x,y,B\n'):
        expected = list(csv.reader(io.StringIO(text, newline="")))
        assert list(csv.reader(M._csv_lines(M.split_lines(text)))) == expected
        records, _, problems = _build(("p.csv", text))
        assert not problems and [r["id"] for r in records] == ["q1", "q2"]


# --- real exam files: annulled answers, figure questions, empty fields -----------------------------------
def test_an_annulled_answer_is_skipped_and_counted_not_a_problem():
    """ENEM 2024 annulled a question: its row says so in the answer (mcq.annulled_marks, case ignored)."""
    text = _jsonl(_row("q1"), _row("q2", answer="Anulado"), _row("q3", answer="ANULADA"), _row("q4", answer=" * "),
                  _row("q5", answer="x"))
    records, metrics, problems = _build(("enem2024.jsonl", text))
    assert problems == [] and [r["id"] for r in records] == ["q1"]
    assert metrics["skipped"] == {"annulled": 4, "needs_figure": 0}
    source = metrics["sources"]["enem2024"]
    assert (source["read"], source["kept"], source["problems"]) == (5, 1, 0)
    assert source["skipped_ids"]["annulled"] == ["q2", "q3", "q4", "q5"]
    assert M.describe_skipped("enem2024", source) == "enem2024: skipped annulled 4 (q2, q3, q4, q5)"
    _, _, problems = _build(("enem2024.jsonl", text), annulled_marks=["ANULADA"])  # the marks are a param
    assert [p.split(": ")[0] for p in problems] == ["enem2024.jsonl:2", "enem2024.jsonl:4", "enem2024.jsonl:5"]


def test_annulled_rows_in_csv_and_many_of_them_list_the_first_ids_only():
    text = "id,question,option_a,option_b,answer\n" + "".join(f"a{i},Q{i}?,x,y,ANULADO\n" for i in range(12))
    records, metrics, problems = _build(("p.csv", text + "ok,Q?,x,y,B\n"))
    assert problems == [] and [r["id"] for r in records] == ["ok"]
    source = metrics["sources"]["p"]
    assert source["skipped"]["annulled"] == 12 and len(source["skipped_ids"]["annulled"]) == M.SHOWN_IDS
    assert M.describe_skipped("p", source).endswith(", a9, ... 2 more)")


def test_a_question_that_needs_a_figure_is_skipped_by_default_and_kept_on_request():
    rows = _jsonl(_row("f1", needs_figure=True), _row("f2", needs_figure=False), _row("f3", needs_figure=1),
                  _row("f4", needs_figure="sim"), _row("f5", needs_figure="não"), _row("f6"))
    records, metrics, problems = _build(("a.jsonl", rows))
    assert problems == [] and [r["id"] for r in records] == ["f2", "f5", "f6"]
    assert metrics["skipped"] == {"annulled": 0, "needs_figure": 3}
    assert metrics["sources"]["a"]["skipped_ids"]["needs_figure"] == ["f1", "f3", "f4"]
    assert M.describe_skipped("a", metrics["sources"]["a"]) == "a: skipped needs figure 3 (f1, f3, f4)"
    records, metrics, problems = _build(("a.jsonl", rows), include_figure_questions=True)
    assert problems == [] and len(records) == 6 and metrics["skipped"]["needs_figure"] == 0
    assert "needs_figure" not in records[0]  # a kept item is an ordinary item


def test_needs_figure_in_csv_reads_yes_no_words_and_rejects_others():
    text = ("id,question,option_a,option_b,answer,needs_figure\n"
            "c1,Q1?,x,y,A,yes\nc2,Q2?,x,y,A,No\nc3,Q3?,x,y,A,TRUE\nc4,Q4?,x,y,A,0\nc5,Q5?,x,y,A,\nc6,Q6?,x,y,A,talvez\n")
    records, metrics, problems = _build(("p.csv", text))
    assert problems == ["p.csv:7: needs_figure 'talvez' is neither true nor false (write true/false, 1/0, sim/não "
                        "or yes/no, or leave it out)."]
    _, metrics, _ = _build(("p.csv", text.replace(",talvez", ",")))
    assert metrics["sources"]["p"]["skipped_ids"]["needs_figure"] == ["c1", "c3"] and metrics["items"] == 4


def test_a_present_but_empty_field_is_empty_not_missing():
    _, errs = M.check_row(_row(question="  "), "f.jsonl:3", source="s", language="pt")
    assert errs == ["f.jsonl:3: question is empty."]
    _, errs = M.check_row(_row(answer=""), "f.jsonl:4", source="s", language="pt")
    assert errs == ["f.jsonl:4: answer is empty."]
    _, errs = M.check_row({"id": "q1", "options": ["a", "b"], "answer": "A"}, "f.jsonl:5", source="s", language="pt")
    assert errs == ["f.jsonl:5: missing field 'question'."]
    _, _, problems = _build(("p.csv", "id,question,option_a,option_b,answer\nq1, ,x,y,A\nq2,Q?,x,y,\n"))
    assert problems == ["p.csv:2: question is empty.", "p.csv:3: answer is empty."]


def test_the_bundled_sample_skips_nothing_and_reports_zero_counters():
    with open("data/raw/mcq/exemplo.jsonl", encoding="utf-8") as f:
        _, metrics, problems = _build(("exemplo.jsonl", f.read()))
    assert not problems and metrics["skipped"] == {"annulled": 0, "needs_figure": 0}
    assert M.describe_skipped("exemplo", metrics["sources"]["exemplo"]) is None


def test_a_source_declared_as_a_split_gives_it_to_every_item():
    """{path: ..., split: test} holds a whole exam out, whatever its rows say."""
    p = MCQParams(sources=[], validation_share=0.5)
    held = M.rows_of(MCQSource(path="enem2022.jsonl", split="test"),
                     _jsonl(*[_row(f"e{i}") for i in range(6)], _row("t", split="train")))
    other = M.rows_of(MCQSource(path="enem2024.jsonl"), _jsonl(*[_row(f"f{i}") for i in range(6)]))
    records, metrics, problems = M.build([held, other], p)
    assert not problems
    assert {r["split"] for r in records if r["source"] == "enem2022"} == {"test"}
    assert "test" not in {r["split"] for r in records if r["source"] == "enem2024"}
