"""Pure functions of stages/translate.py: reply validation, strict JSON, dataset joins, loading."""

from __future__ import annotations

import json

import pytest

from gabarito.io import InputError
from gabarito.llm import InvalidReply, parse_json_object
from stages.translate import (
    build_job,
    check_translation,
    collect,
    join_dataset,
    load_translations,
    merge,
    missing_error,
    pass_through,
    read_items,
    validator,
)

ITEM = {
    "id": "x1", "split": "train", "label": 1,
    "context": "I went to the market and bought bread for my family because we had nothing left at home.",
    "question": "Why did the narrator go to the market?",
    "answers": ["Because they needed bread for the family .", "Because they wanted to sell their old car .",
                "Because the market was closing for good .", "None of the above choices ."],
}
GOOD = {
    "context": "Eu fui ao mercado e comprei pão para a minha família porque não tínhamos mais nada em casa.",
    "question": "Por que o narrador foi ao mercado?",
    "answers": ["Porque precisavam de pão para a família .", "Porque queriam vender o carro velho .",
                "Porque o mercado ia fechar de vez .", "Nenhuma das alternativas acima ."],
}


def as_reply(tr: dict) -> str:
    return json.dumps({"contexto": tr["context"], "pergunta": tr["question"], "alternativas": tr["answers"]},
                      ensure_ascii=False)


# --- check_translation / validator -----------------------------------------------------------------
def test_good_translation_is_accepted():
    check_translation(ITEM, GOOD)  # no exception
    assert validator(ITEM)(as_reply(GOOD)) == GOOD


def test_validator_accepts_fenced_reply():
    raw = "```json\n" + as_reply(GOOD) + "\n```"
    assert validator(ITEM)(raw) == GOOD


@pytest.mark.parametrize("tr, message", [
    ({**GOOD, "answers": GOOD["answers"][:3]}, "exatamente 4 alternativas, vieram 3"),
    ({**GOOD, "answers": GOOD["answers"] + ["Outra alternativa qualquer ."]}, "exatamente 4 alternativas, vieram 5"),
    ({**GOOD, "answers": GOOD["answers"][:3] + ["   "]}, "alternativa(s) vazia(s): D"),
    ({**GOOD, "answers": ["", *GOOD["answers"][1:]]}, "alternativa(s) vazia(s): A"),
    ({**GOOD, "context": "  "}, "o contexto não pode ser vazio"),
    ({**GOOD, "question": " "}, "a pergunta não pode ser vazia"),
    # two answers merged into the same text (case and punctuation do not make them distinct)
    ({**GOOD, "answers": [GOOD["answers"][0], GOOD["answers"][0], *GOOD["answers"][2:]]}, "duas alternativas ficaram iguais"),
    ({**GOOD, "answers": [GOOD["answers"][0], "PORQUE precisavam de pão para a família!", *GOOD["answers"][2:]]},
     "duas alternativas ficaram iguais"),
    # the model echoed the English context back untranslated
    ({**GOOD, "context": ITEM["context"]}, "o campo 'context' não foi traduzido para o português"),
    # English left in the question
    ({**GOOD, "question": "Why did the narrator go to the market that day?"},
     "o campo 'question' não foi traduzido para o português"),
    # all long answers echoed in English
    ({**GOOD, "answers": list(ITEM["answers"])}, "as alternativas não foram traduzidas para o português"),
])
def test_bad_translations_are_rejected_with_a_portuguese_message(tr, message):
    with pytest.raises(InvalidReply) as exc:
        check_translation(ITEM, tr)
    assert message in str(exc.value)
    # the same reason reaches the model through the validator (it is what a re-ask sends back)
    with pytest.raises(InvalidReply) as exc2:
        validator(ITEM)(as_reply(tr))
    assert str(exc2.value) == str(exc.value)


def test_english_question_with_few_words_but_echoed_is_rejected():
    item = {**ITEM, "question": "What happened to the narrator?"}
    with pytest.raises(InvalidReply, match="'question' não foi traduzido"):
        check_translation(item, {**GOOD, "question": "What happened to the narrator ?"})


def test_proper_names_and_short_identical_answers_are_fine():
    item = {**ITEM, "answers": ["Tom .", "Mary .", "Bob .", "None of the above choices ."]}
    tr = {**GOOD, "answers": ["Tom .", "Mary .", "Bob .", "Nenhuma das alternativas acima ."]}
    check_translation(item, tr)


def test_english_answers_with_duplicates_allow_matching_duplicates():
    item = {**ITEM, "answers": ["Yes .", "Yes .", "They went home early .", "None of the above choices ."]}
    tr = {**GOOD, "answers": ["Sim .", "Sim .", "Eles foram para casa cedo .", "Nenhuma das alternativas acima ."]}
    check_translation(item, tr)


@pytest.mark.parametrize("raw, message", [
    ('{"contexto": "x", "pergunta": "y"}', "exatamente as chaves contexto, pergunta e alternativas"),
    ('{"contexto": "x", "pergunta": "y", "alternativas": ["a", "b", "c", "d"], "extra": 1}',
     "exatamente as chaves contexto, pergunta e alternativas"),
    ('{"contexto": "x", "pergunta": "y", "alternativas": "a b c d"}', "exatamente as chaves"),
    ("I can't help with that.", "não é JSON válido"),
    ('["contexto"]', "objeto JSON"),
])
def test_validator_rejects_wrong_shapes(raw, message):
    with pytest.raises(InvalidReply) as exc:
        validator(ITEM)(raw)
    assert message in str(exc.value)


# --- parse_json_object -----------------------------------------------------------------------------
def test_parse_json_object_rejects_single_quoted_pseudo_json():
    with pytest.raises(InvalidReply) as exc:
        parse_json_object("{'contexto': 'x'}")
    assert "não é JSON válido" in str(exc.value)


def test_parse_json_object_never_evals(tmp_path):
    marker = tmp_path / "pwned"
    payload = "{'x': __import__('pathlib').Path(%r).write_text('1')}" % str(marker)
    with pytest.raises(InvalidReply):
        parse_json_object(payload)
    assert not marker.exists()


def test_parse_json_object_accepts_fences_and_whitespace():
    assert parse_json_object('```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json_object('```\n{"a": [1, 2]}\n```\n') == {"a": [1, 2]}
    assert parse_json_object('  \n{"á": "ç"}\n ') == {"á": "ç"}


# --- join_dataset / missing_error ------------------------------------------------------------------
def _item(i: int, label: int = 0) -> dict:
    return {**ITEM, "id": f"it{i}", "label": label, "split": "validation" if i % 2 else "train"}


def test_join_dataset_joins_by_id_and_reports_missing():
    items = [_item(1, 3), _item(2, 0), _item(3, 2)]
    table = {"it3": dict(GOOD), "it1": {**GOOD, "question": "Pergunta um?"}, "other": dict(GOOD)}
    done, missing = join_dataset(items, table, "translations.jsonl")
    assert [d["id"] for d in done] == ["it1", "it3"]
    assert [m["id"] for m in missing] == ["it2"]
    assert done[0] == {"id": "it1", "split": "validation", "label": 3, "context": GOOD["context"],
                       "question": "Pergunta um?", "answers": GOOD["answers"], "translated_by": "dataset",
                       "language": "pt"}
    assert done[1]["label"] == 2 and done[1]["split"] == "validation"


def test_join_dataset_rejects_a_translation_with_wrong_answer_count():
    with pytest.raises(InputError) as exc:
        join_dataset([_item(7)], {"it7": {**GOOD, "answers": GOOD["answers"][:3]}}, "tr.jsonl")
    msg = str(exc.value)
    assert "tr.jsonl" in msg and "'it7'" in msg and "3 answers" in msg


def test_missing_error_mentions_count_sample_and_key():
    missing = [_item(i) for i in range(5)]
    msg = str(missing_error(missing, "data/raw/cosmosqa_pt"))
    assert msg.startswith("5 item(s) have no translation in data/raw/cosmosqa_pt")
    assert "it0, it1, it2" in msg and "it3" not in msg
    assert "OPENAI_API_KEY" in msg and "fallback_to_api" in msg
    assert isinstance(missing_error(missing, "x"), InputError)


# --- load_translations -----------------------------------------------------------------------------
def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_load_translations_accepts_answers_lists_and_answer_columns(tmp_path):
    d = tmp_path / "tr"
    d.mkdir()
    _write_jsonl(d / "a.jsonl", [{"id": "a1", "context": "C1", "question": "Q1", "answers": ["1", "2", "3", "4"]}])
    _write_jsonl(d / "b.jsonl", [{"id": "b1", "context": "C2", "question": "Q2",
                                  "answer0": "w", "answer1": "x", "answer2": "y", "answer3": "4", "label": 2}])
    (d / "ignored.txt").write_text("not a translation")
    table = load_translations(d)
    assert table == {"a1": {"context": "C1", "question": "Q1", "answers": ["1", "2", "3", "4"]},
                     "b1": {"context": "C2", "question": "Q2", "answers": ["w", "x", "y", "4"]}}
    # a single file works too
    assert list(load_translations(d / "a.jsonl")) == ["a1"]


def test_load_translations_counts_file_lines_and_refuses_two_different_translations_of_an_id(tmp_path):
    good = {"id": "a", "context": "C", "question": "Q", "answers": ["1", "2", "3", "4"]}
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + json.dumps({"id": "b", "context": "C"}) + "\n")
    with pytest.raises(InputError, match=r"t\.jsonl:3: "):  # the line in the file, blank lines counted
        load_translations(path)
    d = tmp_path / "tr"
    d.mkdir()
    _write_jsonl(d / "a.jsonl", [good])
    _write_jsonl(d / "b.jsonl", [good, {**good, "question": "Q?"}])
    with pytest.raises(InputError) as exc:
        load_translations(d)
    assert str(exc.value) == (f"{d / 'b.jsonl'}:2: id 'a' has another translation at {d / 'a.jsonl'}:1; "
                              "keep one of them.")
    (d / "b.jsonl").unlink()
    _write_jsonl(d / "c.jsonl", [good])  # the same translation twice is no conflict
    assert list(load_translations(d)) == ["a"]


def test_load_translations_bundled_file(repo_root):
    table = load_translations(repo_root / "data/raw/cosmosqa_pt")
    assert len(table) == 168
    assert all(len(t["answers"]) == 4 for t in table.values())


@pytest.mark.parametrize("bad, missing", [
    ({"id": "b", "context": "C", "answers": ["1", "2", "3", "4"]}, "missing question"),
    ({"id": "b", "context": "C", "question": "Q"}, "missing answers"),
    # answer columns run from answer0: without it there are none
    ({"id": "b", "context": "C", "question": "Q", "answer1": "1", "answer2": "2", "answer3": "3"}, "missing answers"),
    ({"context": "C", "question": "Q", "answers": ["1", "2", "3", "4"]}, "missing id"),
    ({"id": "b", "context": "C", "question": "Q", "answers": "1 2 3 4"}, "missing answers"),
])
def test_load_translations_names_file_and_line_of_a_bad_record(tmp_path, bad, missing):
    path = _write_jsonl(tmp_path / "t.jsonl", [
        {"id": "a", "context": "C", "question": "Q", "answers": ["1", "2", "3", "4"]}, bad])
    with pytest.raises(InputError) as exc:
        load_translations(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}:2: ")
    assert missing in msg


def test_load_translations_bad_json_and_empty_folder(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "a", "context": "C", "question": "Q", "answers": ["1","2","3","4"]}\n{oops\n')
    with pytest.raises(InputError, match=r"t\.jsonl:2: not valid JSON"):
        load_translations(path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no .jsonl translation files"):
        load_translations(empty)


def test_a_missing_answer_is_an_error_not_the_text_none(tmp_path):
    _write_jsonl(tmp_path / "t.jsonl", [{"id": "x1", "context": "C", "question": "Q", "answers": ["a", None, "c", "d"]}])
    with pytest.raises(InputError, match=r"t\.jsonl:1: every answer must be a non-empty text.*'x1'"):
        load_translations(tmp_path / "t.jsonl")


# --- any number of options; Portuguese items; several --items files ---------------------------------
ITEM5 = {**ITEM, "id": "x5", "label": 4,
         "answers": ITEM["answers"][:3] + ["Because it was a holiday .", "None of the above choices ."]}
GOOD5 = {**GOOD, "answers": GOOD["answers"][:3] + ["Porque era feriado .", "Nenhuma das alternativas acima ."]}


def test_a_five_option_item_is_asked_and_checked_for_five_alternatives():
    job = build_job(ITEM5, "sistema\n---\nQuestão com {{n_options}} alternativas:\n{{item_json}}")
    props = job.schema["properties"]["alternativas"]
    assert (props["minItems"], props["maxItems"]) == (5, 5)
    user = job.messages[1]["content"]
    assert user.startswith("Questão com 5 alternativas:\n")
    assert json.loads(user[user.index("{"):])["alternativas"] == ITEM5["answers"]
    assert validator(ITEM5)(as_reply(GOOD5)) == GOOD5
    with pytest.raises(InvalidReply, match="exatamente 5 alternativas, vieram 4"):
        validator(ITEM5)(as_reply(GOOD))
    with pytest.raises(InvalidReply, match="vazia\\(s\\): E"):
        check_translation(ITEM5, {**GOOD5, "answers": GOOD5["answers"][:4] + [" "]})
    # a four-option item keeps the schema of four
    assert build_job(ITEM, "s\n---\n{{item_json}}").schema["properties"]["alternativas"]["maxItems"] == 4


def test_the_bundled_prompt_names_the_option_count():
    from pathlib import Path
    template = (Path(__file__).resolve().parents[2] / "prompts/translate.v2.txt").read_text(encoding="utf-8")
    user = build_job(ITEM5, template).messages[1]["content"]
    assert "{{" not in user and "com 5 alternativas" in user and "exatamente 5 alternativas" in user


def test_an_item_without_context_keeps_an_empty_context():
    item = {**ITEM5, "context": ""}
    assert check_translation(item, {**GOOD5, "context": ""}) is None
    with pytest.raises(InvalidReply, match="devolva o contexto vazio"):
        check_translation(item, GOOD5)


def test_join_dataset_takes_n_answers_and_checks_the_count_against_the_item(tmp_path):
    path = _write_jsonl(tmp_path / "t.jsonl", [
        {"id": "x5", "context": "", "question": GOOD5["question"],
         **{f"answer{i}": a for i, a in enumerate(GOOD5["answers"])}}])
    table = load_translations(path)
    assert table["x5"]["answers"] == GOOD5["answers"] and table["x5"]["context"] == ""
    (done,), missing = join_dataset([ITEM5], table, str(path))
    assert missing == [] and done["answers"] == GOOD5["answers"] and done["label"] == 4
    with pytest.raises(InputError, match=r"'x1' has 5 answers, expected 4 \(as the item has\)"):
        join_dataset([ITEM], {"x1": table["x5"]}, str(path))


def test_merge_carries_source_subject_doc_page_and_sets_language_pt():
    item = {**ITEM5, "source": "minhas_provas", "language": "en", "subject": "história", "doc": "p.pdf",
            "page": 3, "question_type": "other", "stray": "not carried"}
    rec = merge(item, GOOD5, by="dataset")
    assert {k: rec[k] for k in ("source", "language", "subject", "doc", "page", "question_type")} == {
        "source": "minhas_provas", "language": "pt", "subject": "história", "doc": "p.pdf", "page": 3,
        "question_type": "other"}
    assert "stray" not in rec


def test_collect_checks_a_stored_translation_against_the_items_option_count():
    ok = {"x5": {"status": "ok", "key": "k", "result": GOOD5}}
    (done,), failed = collect([ITEM5], ok, by="openai:m", where=lambda k: f"ledger:{k}")
    assert failed == [] and done["answers"] == GOOD5["answers"]
    with pytest.raises(InputError, match=r"ledger:k: .*\(a list of 5 texts\)"):
        collect([ITEM5], {"x5": {**ok["x5"], "result": GOOD}}, by="openai:m", where=lambda k: f"ledger:{k}")


def test_pass_through_keeps_portuguese_items_untouched_and_english_ones_for_translation():
    pt = {**GOOD5, "id": "p1", "split": "train", "label": 2, "language": "pt", "source": "enem"}
    legacy = {k: v for k, v in ITEM.items()}  # no language: English, as Cosmos QA's are
    original, english = pass_through([pt, {**ITEM5, "language": "en"}, legacy])
    assert original == [{**pt, "translated_by": "original"}]
    assert [e["id"] for e in english] == ["x5", "x1"]


def test_read_items_concatenates_files_in_order_and_names_both_files_of_a_repeated_id(tmp_path):
    a = _write_jsonl(tmp_path / "a.jsonl", [{**ITEM, "id": "a1"}, {**ITEM, "id": "a2"}])
    b = _write_jsonl(tmp_path / "b.jsonl", [{**ITEM5, "id": "b1", "language": "pt"}])
    assert [r["id"] for r in read_items([b, a])] == ["b1", "a1", "a2"]
    c = _write_jsonl(tmp_path / "c.jsonl", [{**ITEM, "id": "c1"}, {**ITEM, "id": "a2"}])
    with pytest.raises(InputError) as exc:
        read_items([a, c])
    assert str(exc.value).startswith(f"{c}:2: id 'a2' is also at {a}:2.")
    d = _write_jsonl(tmp_path / "d.jsonl", [{**ITEM, "id": "d1", "language": "es"}])
    with pytest.raises(InputError, match=rf"{d}:1: item 'd1' has language 'es'; translate takes pt or en"):
        read_items([d])
