"""stages/ingest.py: Cosmos QA files into one schema; malformed input fails with file, line and fix."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

import pytest

from gabarito.io import InputError
from stages import ingest as I

HEADER = "id,context,question,answer0,answer1,answer2,answer3,label\n"


def _row(id_="a1", context="Some context.", question="Why?", answers=("w", "x", "y", "z"), label="1"):
    return {"id": id_, "context": context, "question": question,
            **{f"answer{i}": a for i, a in enumerate(answers)}, "label": label}


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(I.COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


# --- CSV -----------------------------------------------------------------------------------------
def test_parse_csv_quoted_commas_quotes_and_newlines():
    text = (
        HEADER
        + 'q1,"She said ""no"", then left.\nNext day, she came back.",'
        '"Why, really?",plain,"with, comma","with ""quotes""","multi\nline",2\n'
        + "q2,ctx two,question two,a,b,c,d,0\n"
    )
    recs = I.parse_csv(text, split="train", name="train.csv")
    assert recs == [
        {
            "id": "q1",
            "split": "train",
            "context": 'She said "no", then left.\nNext day, she came back.',
            "question": "Why, really?",
            "answers": ["plain", "with, comma", 'with "quotes"', "multi\nline"],
            "label": 2,
            "question_type": "cause",
            "none_correct": False,
            "source": "cosmosqa",
            "language": "en",
        },
        {"id": "q2", "split": "train", "context": "ctx two", "question": "question two",
         "answers": ["a", "b", "c", "d"], "label": 0, "question_type": "other", "none_correct": False,
         "source": "cosmosqa", "language": "en"},
    ]


def test_parse_csv_roundtrip_with_csv_writer():
    rows = [_row("x1", context='a "b", c\nd', answers=("1, 2", '"3"', "4\n5", "6"), label="3"),
            _row("x2", label=" 0 ")]
    text = _csv(rows)
    recs = I.parse_csv(text, split="validation", name="v.csv")
    assert [r["id"] for r in recs] == ["x1", "x2"]
    assert recs[0]["context"] == 'a "b", c\nd'
    assert recs[0]["answers"] == ["1, 2", '"3"', "4\n5", "6"]
    assert [r["label"] for r in recs] == [3, 0]
    assert {r["split"] for r in recs} == {"validation"}


def test_parse_csv_windows_line_endings():
    text = HEADER.replace("\n", "\r\n") + "a,c,q,w,x,y,z,1\r\nb,c,q,w,x,y,z,2\r\n"
    recs = I.parse_csv(text, split="train", name="t.csv")
    assert [(r["id"], r["answers"][3], r["label"]) for r in recs] == [("a", "z", 1), ("b", "z", 2)]


def test_parse_csv_columns_in_any_order_and_extra_columns_ignored():
    text = "label,answer3,answer2,answer1,answer0,question,context,id,extra\n3,d,c,b,a,q?,ctx,i9,junk\n"
    (rec,) = I.parse_csv(text, split="train", name="t.csv")
    assert rec == {"id": "i9", "split": "train", "context": "ctx", "question": "q?",
                   "answers": ["a", "b", "c", "d"], "label": 3, "question_type": "other", "none_correct": False,
                   "source": "cosmosqa", "language": "en"}


def test_parse_csv_skips_blank_lines_and_strips_id():
    text = HEADER + "\n  a1 ,c,q,w,x,y,z,1\n\n"
    recs = I.parse_csv(text, split="train", name="t.csv")
    assert [r["id"] for r in recs] == ["a1"]


def test_unterminated_quote_names_file_and_line():
    text = HEADER + "a,c,q,w,x,y,z,1\n" + 'b,"never closed,q,w,x,y,z,1\n'
    with pytest.raises(InputError) as exc:
        I.parse_csv(text, split="train", name="data/train.csv")
    msg = str(exc.value)
    assert msg.startswith("data/train.csv:3: malformed CSV row")
    assert "quoting" in msg


def test_unterminated_quote_mid_file_names_the_offending_line():
    text = HEADER + 'a,"never closed,q,w,x,y,z,1\n' + 'b,"c2",q,w,x,y,z,1\n' + "c,c3,q,w,x,y,z,1\n"
    with pytest.raises(InputError) as exc:
        I.parse_csv(text, split="train", name="train.csv")
    assert str(exc.value).startswith("train.csv:2:")


def test_unterminated_quote_mid_file_is_still_an_error():
    text = HEADER + 'a,"never closed,q,w,x,y,z,1\n' + 'b,"c2",q,w,x,y,z,1\n' + "c,c3,q,w,x,y,z,1\n"
    with pytest.raises(InputError, match=r"^train\.csv:\d+: malformed CSV row"):
        I.parse_csv(text, split="train", name="train.csv")


@pytest.mark.parametrize(("line", "got"), [("b,c,q,w,x,y,1", 7), ("b,c,q,w,x,y,z,1,extra", 9)])
def test_wrong_number_of_fields_names_file_and_line(line, got):
    text = HEADER + "a,c,q,w,x,y,z,1\n" + "a2,c,q,w,x,y,z,1\n" + line + "\n"
    with pytest.raises(InputError) as exc:
        I.parse_csv(text, split="train", name="train.csv")
    assert str(exc.value).startswith(f"train.csv:4: expected 8 fields, got {got}.")


def test_wrong_number_of_fields_after_multiline_record():
    # the first record spans lines 2-3; the broken one is line 4
    text = HEADER + 'a,"two\nlines",q,w,x,y,z,1\n' + "b,c,q,1\n"
    with pytest.raises(InputError, match=r"^t\.csv:4: expected 8 fields, got 4\."):
        I.parse_csv(text, split="train", name="t.csv")


def test_missing_column_in_header_names_the_column():
    text = "id,context,question,answer0,answer1,answer2,label\na,c,q,w,x,y,1\n"
    with pytest.raises(InputError) as exc:
        I.parse_csv(text, split="train", name="train.csv")
    msg = str(exc.value)
    assert msg.startswith("train.csv: missing column(s) answer3 in the header.")


def test_missing_several_columns():
    with pytest.raises(InputError, match=r"missing column\(s\) question, label in the header"):
        I.parse_csv("id,context,answer0,answer1,answer2,answer3\n", split="train", name="t.csv")


def test_empty_csv():
    with pytest.raises(InputError, match=r"^t\.csv: empty file"):
        I.parse_csv("", split="train", name="t.csv")


@pytest.mark.parametrize("label", ["4", "-1", "x", "", "1.0"])
def test_label_outside_range_names_row_and_id(label):
    text = _csv([_row("ok1", label="0"), _row("ta9##q2", label=label)])
    with pytest.raises(InputError) as exc:
        I.parse_csv(text, split="train", name="train.csv")
    msg = str(exc.value)
    assert msg.startswith(f"train.csv:3: label {label!r} is outside 0-3 (id 'ta9##q2')")


@pytest.mark.parametrize("label", ["0", "1", "2", "3", " 2 "])
def test_labels_in_range(label):
    (rec,) = I.parse_csv(_csv([_row(label=label)]), split="train", name="t.csv")
    assert rec["label"] == int(label)


# --- JSONL ---------------------------------------------------------------------------------------
def test_parse_jsonl():
    rows = [_row("j1", context="Contexto com acentuação", label=2), _row("j2", label="3")]
    recs = I.parse_jsonl(_jsonl(rows) + "\n", split="validation", name="v.jsonl")
    assert recs == [
        {"id": "j1", "split": "validation", "context": "Contexto com acentuação", "question": "Why?",
         "answers": ["w", "x", "y", "z"], "label": 2, "question_type": "cause", "none_correct": False,
         "source": "cosmosqa", "language": "en"},
        {"id": "j2", "split": "validation", "context": "Some context.", "question": "Why?",
         "answers": ["w", "x", "y", "z"], "label": 3, "question_type": "cause", "none_correct": False,
         "source": "cosmosqa", "language": "en"},
    ]


def test_parse_jsonl_bad_json_line():
    text = _jsonl([_row("j1", label=0)]) + "\n" + '{"id": "j2", "context": \n'
    with pytest.raises(InputError) as exc:
        I.parse_jsonl(text, split="train", name="t.jsonl")
    msg = str(exc.value)
    assert msg.startswith("t.jsonl:3: not valid JSON (")
    assert "Fix or remove that line" in msg


def test_parse_jsonl_line_not_an_object():
    text = _jsonl([_row("j1", label=0)]) + "[1, 2]\n"
    with pytest.raises(InputError, match=r"^t\.jsonl:2: expected a JSON object, got list"):
        I.parse_jsonl(text, split="train", name="t.jsonl")


def test_parse_jsonl_missing_column_names_column_and_line():
    row = _row("j1", label=0)
    del row["answer2"]
    with pytest.raises(InputError) as exc:
        I.parse_jsonl(_jsonl([_row("j0", label=1), row]), split="train", name="t.jsonl")
    assert str(exc.value).startswith("t.jsonl:2: missing column(s) answer2.")


@pytest.mark.parametrize("label", [4, -1, "x", None, 2.5])
def test_parse_jsonl_bad_label(label):
    with pytest.raises(InputError) as exc:
        I.parse_jsonl(_jsonl([_row("jj7", label=label)]), split="train", name="t.jsonl")
    assert str(exc.value).startswith(f"t.jsonl:1: label {label!r} is outside 0-3 (id 'jj7')")


def test_parse_jsonl_null_text_becomes_empty():
    row = _row("j1", label=1)
    row["answer3"] = None
    (rec,) = I.parse_jsonl(_jsonl([row]), split="train", name="t.jsonl")
    assert rec["answers"] == ["w", "x", "y", ""]


def test_parse_file_dispatches_on_extension():
    rows = [_row("f1", label="1")]
    assert I.parse_file(_jsonl(rows), split="train", name="x.jsonl")[0]["id"] == "f1"
    assert I.parse_file(_csv(rows), split="train", name="x.csv")[0]["id"] == "f1"
    with pytest.raises(InputError, match="not valid JSON"):
        I.parse_file(_csv(rows), split="train", name="x.jsonl")


# --- local folders -------------------------------------------------------------------------------
@pytest.mark.parametrize("val_name", ["valid.csv", "validation.csv", "dev.csv", "valid.jsonl"])
def test_load_local_validation_aliases(tmp_path, val_name):
    (tmp_path / "train.csv").write_text(_csv([_row("t1", label="0"), _row("t2", label="1")]), encoding="utf-8")
    val_rows = [_row("v1", label="2")]
    text = _jsonl(val_rows) if val_name.endswith(".jsonl") else _csv(val_rows)
    (tmp_path / val_name).write_text(text, encoding="utf-8")
    recs = I.load_local(tmp_path, ["train", "validation"])
    assert [(r["id"], r["split"], r["label"]) for r in recs] == [
        ("t1", "train", 0), ("t2", "train", 1), ("v1", "validation", 2)]


def test_find_local_file_prefers_validation_over_valid(tmp_path):
    (tmp_path / "valid.csv").write_text(_csv([_row("old")]), encoding="utf-8")
    (tmp_path / "validation.csv").write_text(_csv([_row("new")]), encoding="utf-8")
    assert I.find_local_file(tmp_path, "validation") == tmp_path / "validation.csv"
    assert [r["id"] for r in I.load_local(tmp_path, ["validation"])] == ["new"]


def test_load_local_missing_split(tmp_path):
    (tmp_path / "train.csv").write_text(_csv([_row()]), encoding="utf-8")
    with pytest.raises(InputError) as exc:
        I.load_local(tmp_path, ["train", "validation"])
    msg = str(exc.value)
    assert "no file for split 'validation'" in msg
    assert "valid.csv/.jsonl" in msg and "validation.csv/.jsonl" in msg


def test_load_local_error_names_the_file(tmp_path):
    (tmp_path / "train.csv").write_text(_csv([_row("t1", label="9")]), encoding="utf-8")
    with pytest.raises(InputError) as exc:
        I.load_local(tmp_path, ["train"])
    assert str(exc.value).startswith(f"{tmp_path / 'train.csv'}:2: label '9' is outside 0-3 (id 't1')")


# --- limit and uniqueness ------------------------------------------------------------------------
def test_limit_per_split():
    recs = [{"id": f"t{i}", "split": "train"} for i in range(5)] + \
           [{"id": f"v{i}", "split": "validation"} for i in range(3)]
    assert [r["id"] for r in I.limit_per_split(recs, 2)] == ["t0", "t1", "v0", "v1"]
    assert [r["id"] for r in I.limit_per_split(recs, 4)] == ["t0", "t1", "t2", "t3", "v0", "v1", "v2"]
    assert I.limit_per_split(recs, None) == recs
    assert [r["id"] for r in I.limit_per_split(recs, 1)] == ["t0", "v0"]


def test_limit_per_split_interleaved_keeps_order():
    recs = [{"id": "t0", "split": "train"}, {"id": "v0", "split": "validation"},
            {"id": "t1", "split": "train"}, {"id": "v1", "split": "validation"}]
    assert [r["id"] for r in I.limit_per_split(recs, 1)] == ["t0", "v0"]


def test_check_unique_ids():
    I.check_unique_ids([{"id": "a", "split": "train"}, {"id": "b", "split": "validation"}])
    with pytest.raises(InputError) as exc:
        I.check_unique_ids([{"id": "a", "split": "train"}, {"id": "b", "split": "train"},
                            {"id": "a", "split": "validation"}])
    assert str(exc.value).startswith("id 'a' appears twice (splits train and validation)")


def test_check_unique_ids_within_one_split():
    with pytest.raises(InputError, match=r"id 'x' appears twice \(splits train and train\)"):
        I.check_unique_ids([{"id": "x", "split": "train"}, {"id": "x", "split": "train"}])


# --- the bundled sample --------------------------------------------------------------------------
def test_bundled_sample(repo_root):
    recs = I.load_local(repo_root / "data/raw/cosmosqa", ["train", "validation"])
    I.check_unique_ids(recs)
    assert len(recs) >= 150
    splits = Counter(r["split"] for r in recs)
    assert set(splits) == {"train", "validation"}
    assert splits["train"] > splits["validation"] > 0
    for r in recs:
        assert set(r) == {"id", "split", "context", "question", "answers", "label", "question_type", "none_correct",
                          "source", "language"}
        # the multiple-choice record's source and language: reported per source, sent through translation
        assert (r["source"], r["language"]) == ("cosmosqa", "en")
        assert len(r["answers"]) == 4 and all(a.strip() for a in r["answers"])
        assert r["label"] in (0, 1, 2, 3)
        assert r["context"].strip() and r["question"].strip()
    # every label is used, so a model cannot score by always answering the same letter
    assert set(Counter(r["label"] for r in recs)) == {0, 1, 2, 3}
    # Cosmos QA asks several questions about one passage
    per_context = Counter(r["context"] for r in recs)
    multi = [n for n in per_context.values() if 2 <= n <= 3]
    assert len(multi) >= 10
    assert max(per_context.values()) <= 3


def test_bundled_sample_contexts_do_not_cross_splits(repo_root):
    recs = I.load_local(repo_root / "data/raw/cosmosqa", ["train", "validation"])
    train = {r["context"] for r in recs if r["split"] == "train"}
    val = {r["context"] for r in recs if r["split"] == "validation"}
    assert train.isdisjoint(val)


def test_bundled_sample_limit(repo_root):
    recs = I.limit_per_split(I.load_local(repo_root / "data/raw/cosmosqa", ["train", "validation"]), 5)
    assert Counter(r["split"] for r in recs) == {"train": 5, "validation": 5}


@pytest.mark.parametrize("question,expected", [
    ("What may be the reason the narrator left early?", "cause"),
    ("Why might the narrator be upset?", "cause"),
    ("What will the narrator probably do next?", "effect"),
    ("What might happen between the twins after this?", "effect"),
    ("What would have happened if the car hadn't broken down?", "counterfactual"),
    ("What might the narrator have done differently if the forecast had been accurate?", "counterfactual"),
    ("What may be true about the narrator?", "fact"),
    ("How did the narrator probably feel?", "other"),
])
def test_question_type_from_the_english_template(question, expected):
    assert I.question_type(question) == expected


def test_none_of_the_above_answers_are_flagged():
    row = {"id": "n1", "context": "c", "question": "Why?", "answer0": "a", "answer1": "b", "answer2": "c",
           "answer3": "None of the above choices .", "label": 3}
    assert I.normalize_row(row, split="train", where="x")["none_correct"] is True
    assert I.normalize_row({**row, "label": 0}, split="train", where="x")["none_correct"] is False


def test_a_split_with_no_items_is_an_error_naming_it():
    from stages.ingest import require_every_split, split_counts

    recs = [{"split": "train"}, {"split": "train"}]
    counts = split_counts(recs, ["train", "validation"])
    assert counts == {"train": 2, "validation": 0}
    with pytest.raises(InputError, match=r"ingest: validation: 0 items read from raw/ \(\{'train': 2, 'validation': 0\}\)"):
        require_every_split(counts, "raw/")
    require_every_split({"train": 2, "validation": 1}, "raw/")  # no error


# --- hub: pinned, and the Parquet conversion's layout --------------------------------------------
def test_a_hub_pull_must_be_pinned():
    from gabarito.params import IngestParams

    with pytest.raises(ValueError, match="ingest.hub_revision must pin a commit of allenai/cosmos_qa"):
        IngestParams(source="hub", hub_revision=None)
    # another dataset cannot ride on cosmos_qa's commit
    with pytest.raises(ValueError, match="pin a commit of me/cosmos_pt"):
        IngestParams(source="hub", hub_id="me/cosmos_pt")
    assert IngestParams(source="hub", hub_id="me/cosmos_pt", hub_revision="0123abc").hub_revision == "0123abc"
    assert IngestParams(source="local", hub_revision=None).hub_revision is None  # not read: not required


@pytest.mark.parametrize("hub_id", ["https://user:pwsecret@huggingface.co/datasets/allenai/cosmos_qa",
                                    "https://huggingface.co/datasets/allenai/cosmos_qa?hf_token=pwsecret"])
def test_a_hub_id_with_a_credential_is_refused_without_showing_it(hub_id, tmp_path):
    import yaml

    from gabarito.params import load_section

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"ingest": {"source": "hub", "hub_id": hub_id, "hub_revision": "abc"}}))
    with pytest.raises(InputError) as err:
        load_section("ingest", params)
    assert "ingest.hub_id: Value error, hub_id carries a credential" in str(err.value)
    assert "pwsecret" not in str(err.value)


def test_the_parquet_conversion_layout_loads_with_its_splits(tmp_path, monkeypatch):
    """The hub's refs/convert/parquet holds default/<split>/0000.parquet: the pinned datasets must read the
    splits from that layout (here a local copy of it, offline) into ingest's records."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    tmp_path = tmp_path / "cosmos_qa"

    rows = {"train": [("t1", 2), ("t2", 0)], "validation": [("v1", 3)]}
    for split, items in rows.items():
        (tmp_path / "default" / split).mkdir(parents=True)
        table = pa.table({"id": [i for i, _ in items], "context": [f"contexto {i}" for i, _ in items],
                          "question": [f"pergunta {i}?" for i, _ in items],
                          **{f"answer{k}": [f"opção {k}" for _ in items] for k in range(4)},
                          "label": [label for _, label in items]})
        pq.write_table(table, tmp_path / "default" / split / "0000.parquet")
    records = I.load_hub(str(tmp_path), None, ["train", "validation"])
    assert [(r["id"], r["split"], r["label"]) for r in records] == [("t1", "train", 2), ("t2", "train", 0),
                                                                    ("v1", "validation", 3)]
    assert records[0]["answers"] == ["opção 0", "opção 1", "opção 2", "opção 3"]
    with pytest.raises(InputError, match=r"split test: could not load"):
        I.load_hub(str(tmp_path), None, ["test"])
