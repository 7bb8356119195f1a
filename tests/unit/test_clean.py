"""stages/clean.py: normalization, schema checks, de-duplication and leakage, with nothing dropped silently."""

from __future__ import annotations

import pytest

from gabarito.io import InputError
from gabarito.params import CleanParams
from stages import clean as C

P = CleanParams()


def mcq(id_, split="train", context=None, question=None, answers=None, label=1):
    return {
        "id": id_,
        "split": split,
        "context": context if context is not None else f"Um contexto suficientemente longo para o item {id_}.",
        "question": question if question is not None else f"Qual é a pergunta do item {id_}?",
        "answers": answers if answers is not None else [f"primeira {id_}", f"segunda {id_}",
                                                        f"terceira {id_}", f"quarta {id_}"],
        "label": label,
    }


def open_qa(id_, question, answer, **extra):
    return {"id": id_, "question": question, "answer": answer, **extra}


def reasons(quarantine):
    return {q["id"]: q["reason"] for q in quarantine}


# --- normalize_text ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Informac\u0327a\u0303o", "Informa\u00e7\u00e3o"),          # decomposed -> composed
        ("e\u0301 a\u0300 o\u0302", "\u00e9 \u00e0 \u00f4"),
        ("A\u030angstro\u0308m", "\u00c5ngstr\u00f6m"),
    ],
)
def test_normalize_text_nfc(raw, expected):
    out = C.normalize_text(raw)
    assert out == expected
    assert len(out) == len(expected)


def test_normalize_text_nfc_matches_precomposed_hash():
    # decomposed and precomposed spellings are the same text for de-duplication
    assert C.normalize_text("Sa\u0303o Paulo") == "S\u00e3o Paulo"
    assert C.content_hash(C.normalize_text("Sa\u0303o Paulo")) == C.content_hash("S\u00e3o Paulo")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\x00b\x07c\x1fd\x7fe", "abcde"),                          # C0 controls and DEL
        ("ab\x85c\x9fd", "abcd"),                                      # C1 controls
        ("pal\ufffdavra", "palavra"),                                  # replacement character
        ("zero\u200bwidth\u200c\u200djoin\u200e\u200f", "zerowidthjoin"),
        ("\ufeffBOM no início", "BOM no início"),
        ("linha\u2028quebra\u2029par", "linhaquebrapar"),
    ],
)
def test_normalize_text_removes_junk(raw, expected):
    assert C.normalize_text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("um   dois\t\ttrês", "um dois três"),
        ("não\u00a0\u00a0separa", "não separa"),                      # no-break spaces
        ("a\u2003b\u202fc\u3000d", "a b c d"),
        ("   aparado nas pontas   ", "aparado nas pontas"),
        ("l1   \n   l2", "l1\nl2"),
        ("p1\r\n\r\n\r\n\r\np2\rp3", "p1\n\np2\np3"),                 # CRLF/CR -> LF, blank runs folded
        ("\n\n  texto  \n\n", "texto"),
    ],
)
def test_normalize_text_whitespace(raw, expected):
    assert C.normalize_text(raw) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Art. 5º, § 2º: o aluno da 1ª série.",
        "Resolução nº 12/2023, de 15/03/2023.",
        "Valor: R$ 1.000,00 (mil reais) — 50% à vista; 30°C.",
        "Parágrafo único. Incisos I, II e III; alíneas “a” e ‘b’…",
        "E-mail: estagio@ufva.edu.br <https://ufva.edu.br/estagio?x=1&y=2>",
    ],
)
def test_normalize_text_preserves_meaningful_punctuation(text):
    assert C.normalize_text(text) == text


def test_normalize_text_is_idempotent():
    raw = " Informac\u0327a\u0303o\u200b  do\u00a0Art. 5º\r\n\r\n\r\n em 15/03/2023 \ufffd"
    once = C.normalize_text(raw)
    assert once == "Informação do Art. 5º\n\nem 15/03/2023"
    assert C.normalize_text(once) == once


def test_clean_char_ratio():
    assert C.clean_char_ratio("") == 1.0
    assert C.clean_char_ratio("Art. 5º § 2º, 15/03/2023") == 1.0
    assert C.clean_char_ratio("ab\u25a0\u25a0") == 0.5
    assert C.clean_char_ratio("\u25a0" * 10) == 0.0


def test_content_hash_folds_case_and_whitespace_only():
    assert C.content_hash("Olá  Mundo", "x") == C.content_hash("olá mundo", "X")
    assert C.content_hash("Olá Mundo", "x") != C.content_hash("Ola Mundo", "x")
    # parts are separate: moving a word across the boundary is different content
    assert C.content_hash("a b", "c") != C.content_hash("a", "b c")


# --- schema --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"answers": ["um"]}, "schema: fewer than 2 answers"),
        ({"answers": []}, "schema: fewer than 2 answers"),
        ({"answers": [f"opção {i}" for i in range(11)]}, "schema: more than 10 answers (one letter of format.letters each)"),
        ({"answers": "um dois três quatro"}, "schema: answers must be a list"),
        ({"answers": None}, "schema: answers must be a list"),
        ({"answers": ["um", "", "três", "quatro"]}, "schema: empty answer"),
        ({"answers": ["um", " \u200b ", "três", "quatro"]}, "schema: empty answer"),   # empty after cleaning
        ({"label": 7}, "schema: label 7 outside 0-3"),
        ({"label": -1}, "schema: label -1 outside 0-3"),
        ({"label": "2"}, "schema: label '2' outside 0-3"),
        ({"label": 1.0}, "schema: label 1.0 outside 0-3"),
        ({"label": True}, "schema: label True outside 0-3"),
        ({"label": None}, "schema: label None outside 0-3"),
        ({"answers": ["Sim", "Não", "sim", "Talvez"]}, "schema: two answers are the same"),
        ({"answers": ["Sim", "Não", "  Sim ", "Talvez"]}, "schema: two answers are the same"),
        ({"context": "curto"}, "schema: context shorter than 20 characters"),
        ({"answers": ["um", "dois", "três", "quatro", "cinco"], "label": 5}, "schema: label 5 outside 0-4"),
        ({"answers": ["um", "dois"], "label": 2}, "schema: label 2 outside 0-1"),
        ({"answers": ["um", "dois", "três", "quatro", "Um"], "label": 0}, "schema: two answers are the same"),
        ({"question": "Oi?"}, "schema: question shorter than 5 characters"),
        ({"context": "\u25a0\u25a1\u25a0\u25a1\u25a0\u25a1\u25a0\u25a1 texto quebrado \u25a0\u25a1\u25a0\u25a1"},
         "junk: context is mostly non-text characters"),
    ],
)
def test_schema_failures_are_quarantined_with_reason(overrides, reason):
    good = mcq("ok", split="train")
    bad = {**mcq("bad", split="train"), **overrides}
    train, validation, _, quarantine = C.clean_records([good, bad], [], P)
    assert [r["id"] for r in train] == ["ok"]
    assert validation == []
    assert len(quarantine) == 1
    q = quarantine[0]
    assert (q["id"], q["kind"], q["reason"]) == ("bad", "mcq", reason)
    assert q["record"]["id"] == "bad"


def test_schema_thresholds_come_from_params():
    rec = mcq("a", context="exatamente trinta caracteres!!")   # 30 chars
    assert len(rec["context"]) == 30
    _, _, _, q = C.clean_records([rec], [], CleanParams(min_context_chars=31))
    assert reasons(q) == {"a": "schema: context shorter than 31 characters"}
    train, _, _, q = C.clean_records([rec], [], CleanParams(min_context_chars=30))
    assert [r["id"] for r in train] == ["a"] and q == []


def test_quarantined_record_is_the_normalized_one():
    bad = mcq("n1", answers=["Sa\u0303o", "Rio", "", "Belo\u200b Horizonte"])
    _, _, _, q = C.clean_records([bad], [], P)
    assert q[0]["reason"] == "schema: empty answer"
    assert q[0]["record"]["answers"] == ["São", "Rio", "", "Belo Horizonte"]


# --- normalization of kept records ---------------------------------------------------------------
def test_kept_records_are_normalized_and_tagged():
    rec = mcq("k1", split="validation",
              context="Informac\u0327a\u0303o  sobre\u00a0o  Art. 5º\ufffd de 15/03/2023.",
              question="  Qual\u200b artigo?\r\n",
              answers=["Art. 5º", "Art. 6º", "§ 2º", "Nenhum  deles"], label=0)
    train, validation, _, quarantine = C.clean_records([rec], [], P)
    assert train == [] and quarantine == []
    assert validation == [{
        "id": "k1", "split": "validation", "kind": "mcq", "label": 0,
        "context": "Informação sobre o Art. 5º de 15/03/2023.",
        "question": "Qual artigo?",
        "answers": ["Art. 5º", "Art. 6º", "§ 2º", "Nenhum deles"],
    }]


def test_input_records_are_not_mutated():
    rec = mcq("m1", question="  Qual  é?  ")
    before = {**rec, "answers": list(rec["answers"])}
    C.clean_records([rec], [], P)
    assert rec == before


# --- duplicates ----------------------------------------------------------------------------------
def test_exact_duplicates_quarantined_naming_the_first():
    a = mcq("a", split="train")
    b = {**mcq("a", split="train"), "id": "b"}
    c = {**mcq("a", split="train"), "id": "c"}
    train, _, _, quarantine = C.clean_records([a, b, c], [], P)
    assert [r["id"] for r in train] == ["a"]
    assert reasons(quarantine) == {"b": "duplicate of a", "c": "duplicate of a"}


def test_duplicates_after_normalization():
    a = mcq("a", context="Sa\u0303o  Paulo é uma cidade muito grande.", answers=["Um", "Dois", "Três", "Quatro"])
    b = mcq("b", context="São Paulo é uma cidade muito grande.", answers=["um", "dois", "três", "QUATRO"])
    b["question"] = a["question"].upper()
    train, _, _, quarantine = C.clean_records([a, b], [], P)
    assert [r["id"] for r in train] == ["a"]
    assert reasons(quarantine) == {"b": "duplicate of a"}


def test_same_passage_different_question_is_kept():
    a = mcq("a", context="Um mesmo contexto com várias perguntas sobre ele.", question="Por que ele saiu?")
    b = mcq("b", context="Um mesmo contexto com várias perguntas sobre ele.", question="O que ela fez depois?")
    train, _, _, quarantine = C.clean_records([a, b], [], P)
    assert [r["id"] for r in train] == ["a", "b"] and quarantine == []


def test_duplicate_within_validation():
    v1 = mcq("v1", split="validation")
    v2 = {**mcq("v1", split="validation"), "id": "v2"}
    _, validation, _, quarantine = C.clean_records([v1, v2], [], P)
    assert [r["id"] for r in validation] == ["v1"]
    assert reasons(quarantine) == {"v2": "duplicate of v1"}


# --- leakage -------------------------------------------------------------------------------------
def test_leak_same_id():
    v = mcq("same", split="validation")
    t = mcq("other", split="train")
    t["id"] = "same"
    train, validation, _, quarantine = C.clean_records([t, v], [], P)
    assert train == []
    assert [r["id"] for r in validation] == ["same"]
    assert len(quarantine) == 1
    assert quarantine[0]["reason"].startswith("leak")
    assert quarantine[0]["record"]["split"] == "train"


def test_leak_same_question_answers_reordered():
    v = mcq("v1", split="validation", answers=["A resposta", "B resposta", "C resposta", "D resposta"], label=0)
    t = mcq("t1", split="train", context=v["context"], question=v["question"],
            answers=["D resposta", "C resposta", "B resposta", "A resposta"], label=3)
    train, validation, _, quarantine = C.clean_records([t, v], [], P)
    assert train == []
    assert [r["id"] for r in validation] == ["v1"]
    assert [(q["id"], q["reason"][:4]) for q in quarantine] == [("t1", "leak")]


def test_leak_same_question_different_spacing_and_case():
    v = mcq("v1", split="validation", context="O Narrador Saiu Do Emprego Ontem À Noite.")
    t = mcq("t1", split="train", context="o narrador  saiu do emprego\u00a0ontem à noite.",
            question=v["question"].lower())
    train, _, _, quarantine = C.clean_records([v, t], [], P)
    assert train == []
    assert reasons(quarantine)["t1"].startswith("leak")


def test_no_leak_when_train_differs():
    v = mcq("v1", split="validation")
    t = mcq("t1", split="train")
    train, validation, _, quarantine = C.clean_records([t, v], [], P)
    assert [r["id"] for r in train] == ["t1"] and [r["id"] for r in validation] == ["v1"]
    assert quarantine == []


def test_quarantined_validation_item_cannot_cause_a_leak():
    # the validation item is rejected for its schema, so it does not reach validation and leaks nothing
    v = mcq("v1", split="validation", label=9)
    t = mcq("t1", split="train", context=v["context"], question=v["question"],
            answers=list(reversed(v["answers"])))
    train, validation, _, quarantine = C.clean_records([t, v], [], P)
    assert [r["id"] for r in train] == ["t1"]
    assert validation == []
    assert reasons(quarantine) == {"v1": "schema: label 9 outside 0-3"}


# --- open Q&A ------------------------------------------------------------------------------------
def test_open_qa_normalized_and_to_train():
    rec = open_qa("p1", "  Qual é a carga\u00a0horária  máxima?\u200b ",
                  "Não pode passar de 6 (seis)\u00a0horas diárias, conforme o Art. 5º, § 2º.", source="reg.pdf")
    train, validation, _, quarantine = C.clean_records([], [rec], P)
    assert validation == [] and quarantine == []
    assert train == [{
        "id": "p1", "kind": "open", "split": "train", "source": "reg.pdf",
        "question": "Qual é a carga horária máxima?",
        "answer": "Não pode passar de 6 (seis) horas diárias, conforme o Art. 5º, § 2º.",
    }]


def test_open_qa_deduplicated_by_question():
    a = open_qa("p1", "Qual é a carga horária máxima?", "Seis horas por dia.")
    b = open_qa("p2", "Qual  é a CARGA horária máxima?", "Trinta horas por semana.")
    c = open_qa("p3", "Quem assina o termo de compromisso?", "O estudante, a empresa e a universidade.")
    train, _, _, quarantine = C.clean_records([], [a, b, c], P)
    assert [r["id"] for r in train] == ["p1", "p3"]
    assert [(q["id"], q["kind"], q["reason"]) for q in quarantine] == [("p2", "open", "duplicate of p1")]


@pytest.mark.parametrize(
    ("rec", "reason"),
    [
        (open_qa("o1", "Oi?", "Uma resposta."), "schema: question shorter than 5 characters"),
        (open_qa("o2", "Qual é o prazo?", ""), "schema: empty answer"),
        (open_qa("o3", "Qual é o prazo?", " \u200b\ufffd "), "schema: empty answer"),
        (open_qa("o4", "Qual é o prazo?", "\u25a0\u25a1\u25a0\u25a1\u25a0 ok"), "junk: answer is mostly non-text characters"),
    ],
)
def test_open_qa_rejects(rec, reason):
    train, _, _, quarantine = C.clean_records([], [rec], P)
    assert train == []
    assert [(q["id"], q["kind"], q["reason"]) for q in quarantine] == [(rec["id"], "open", reason)]


def test_mcq_and_open_are_deduplicated_separately():
    m = mcq("m1", question="Qual é a carga horária máxima?")
    o = open_qa("p1", "Qual é a carga horária máxima?", "Seis horas.")
    train, _, _, quarantine = C.clean_records([m], [o], P)
    assert [(r["id"], r["kind"]) for r in train] == [("m1", "mcq"), ("p1", "open")]
    assert quarantine == []


# --- what synthesize makes of the PDFs: multiple-choice items and open questions, with a split -------
def pdf_mcq(id_, split, **overrides):
    return {**mcq(id_, split=split, **overrides), "kind": "mcq", "source": "pdf", "doc": "a.pdf", "page": 2,
            "question_type": "regulation", "none_correct": False}


def test_pdf_items_join_the_mcq_pipeline_and_open_questions_keep_their_split():
    cosmos = [mcq("c1"), mcq("c2", split="validation")]
    held_out = pdf_mcq("pdfmc-2", "validation", context="Art. 7º O trancamento total vale por 4 semestres.")
    pdf = [
        pdf_mcq("pdfmc-1", "train", context="Art. 4º A jornada\u00a0de estágio  não passa de 6 horas.\u200b"),
        open_qa("pdf-1", "Qual é a carga horária máxima?", "Seis horas.", kind="open", split="train"),
        held_out,
        open_qa("pdf-2", "Por quantos semestres se tranca?", "Quatro\u00a0semestres.", kind="open",
                split="validation", doc="b.pdf"),
        pdf_mcq("pdfmc-3", "train", label=9),                                             # schema
        pdf_mcq("pdfmc-4", "train", context=held_out["context"], question=held_out["question"],
                answers=list(reversed(held_out["answers"])), label=2),                    # leak
        {**mcq("c1"), "id": "pdfmc-5", "kind": "mcq"},                                    # duplicate of c1
        open_qa("pdf-3", "Quem assina o termo?", "O estudante."),                         # no split: train
        open_qa("pdf-4", "  por quantos semestres  se tranca?", "Outra.", kind="open", split="train"),
    ]
    train, validation, _, quarantine = C.clean_records(cosmos, pdf, P)
    assert [(r["id"], r["kind"], r["split"]) for r in train] == [
        ("c1", "mcq", "train"), ("pdfmc-1", "mcq", "train"), ("pdf-1", "open", "train"), ("pdf-3", "open", "train")]
    assert [(r["id"], r["kind"], r["split"]) for r in validation] == [
        ("c2", "mcq", "validation"), ("pdfmc-2", "mcq", "validation"), ("pdf-2", "open", "validation")]
    assert [(q["id"], q["kind"], q["reason"]) for q in quarantine] == [
        ("pdfmc-3", "mcq", "schema: label 9 outside 0-3"),
        ("pdfmc-5", "mcq", "duplicate of c1"),
        ("pdfmc-4", "mcq", "leak: also in validation"),
        ("pdf-4", "open", "leak: also in validation"),  # the train twin of a validation question
    ]
    # the item is normalized like a Cosmos QA one and keeps its provenance
    assert train[1] == {**pdf[0], "context": "Art. 4º A jornada de estágio não passa de 6 horas."}
    assert validation[2] == {"id": "pdf-2", "kind": "open", "split": "validation", "doc": "b.pdf",
                             "question": "Por quantos semestres se tranca?", "answer": "Quatro semestres."}
    assert C.summarize(train, validation, quarantine) == {
        "train_mcq": 2, "train_open": 2, "validation": 3, "validation_mcq": 2, "validation_open": 1,
        "test": 0, "test_mcq": 0, "test_open": 0, "quarantined": 4,
        "quarantine_reasons": {"duplicate": 1, "leak: also in validation": 2, "schema: label 9 outside 0-3": 1},
        "mcq_by_source": {"pdf": {"train": 1, "validation": 1, "test": 0},
                          "unknown": {"train": 1, "validation": 1, "test": 0}},
        "mcq_by_option_count": {"4": 4}, "splits_without_mcq": [],
    }


def test_pdf_mcq_with_another_split_is_quarantined_not_dropped():
    train, validation, test, quarantine = C.clean_records([], [pdf_mcq("pdfmc-1", "dev")], P)
    assert train == [] and validation == [] and test == []
    assert [(q["id"], q["kind"], q["reason"]) for q in quarantine] == [
        ("pdfmc-1", "mcq", "split 'dev' unknown (use train, validation, test)")]


def test_open_questions_of_a_validation_document_never_reach_train():
    recs = [open_qa(f"pdf-{i}", f"Pergunta número {i} sobre o regulamento?", f"Resposta {i}.", kind="open",
                    split="validation") for i in range(3)]
    train, validation, _, quarantine = C.clean_records([mcq("c1")], recs, P)
    assert [r["id"] for r in train] == ["c1"]
    assert [r["id"] for r in validation] == ["pdf-0", "pdf-1", "pdf-2"] and quarantine == []


# --- accounting ----------------------------------------------------------------------------------
def _mixed_batch():
    v1 = mcq("v1", split="validation")
    v2 = mcq("v2", split="validation", label=0)
    return [
        mcq("t1"),
        mcq("t2", label=3),
        {**mcq("t1"), "id": "t1dup"},                                           # duplicate of t1
        mcq("t3", answers=["a"]),                                                # schema
        mcq("t4", label=7),                                                     # schema
        mcq("t5", answers=["igual", "Igual", "outra", "mais uma"]),             # schema
        {**mcq("t6"), "id": "v1", "split": "train"},                            # leak by id
        mcq("t7", context=v2["context"], question=v2["question"],
            answers=list(reversed(v2["answers"])), label=3),                   # leak by content
        v1,
        v2,
    ], [
        open_qa("p1", "Qual é a carga horária máxima?", "Seis horas diárias."),
        open_qa("p2", "qual é a carga horária máxima?", "Trinta horas semanais."),   # duplicate of p1
        open_qa("p3", "Quem assina o termo?", ""),                                  # schema
        open_qa("p4", "Quem orienta o estágio?", "Um professor orientador."),
    ]


def test_nothing_dropped_silently():
    mcqs, opens = _mixed_batch()
    train, validation, _, quarantine = C.clean_records(mcqs, opens, P)
    assert len(train) + len(validation) + len(quarantine) == len(mcqs) + len(opens) == 14
    assert [r["id"] for r in train] == ["t1", "t2", "p1", "p4"]
    assert [r["id"] for r in validation] == ["v1", "v2"]
    assert reasons(quarantine) == {
        "t1dup": "duplicate of t1",
        "t3": "schema: fewer than 2 answers",
        "t4": "schema: label 7 outside 0-3",
        "t5": "schema: two answers are the same",
        "v1": "leak: also in validation",
        "t7": "leak: also in validation",
        "p2": "duplicate of p1",
        "p3": "schema: empty answer",
    }
    # every input id is accounted for exactly once per record
    out_ids = sorted([r["id"] for r in train + validation] + [q["id"] for q in quarantine])
    in_ids = sorted([r["id"] for r in mcqs] + [r["id"] for r in opens])
    assert out_ids == in_ids


def test_record_with_an_unknown_split_is_not_dropped_silently():
    recs = [mcq("t1"), mcq("v1", split="validation"), mcq("x1", split="dev")]
    train, validation, test, quarantine = C.clean_records(recs, [], P)
    assert len(train) + len(validation) + len(quarantine) == 3 and test == []
    assert [(q["id"], q["reason"]) for q in quarantine] == [
        ("x1", "split 'dev' unknown (use train, validation, test)")]


# --- the held-out test split ---------------------------------------------------------------------
def test_test_items_are_kept_apart_checked_like_the_others():
    recs = [mcq("t1"), mcq("v1", split="validation", question="Outra pergunta?"),
            mcq("x1", split="test", question="Pergunta guardada?"),
            {**mcq("x1", split="test", question="Pergunta guardada?"), "id": "x2"},  # duplicate of x1
            mcq("x3", split="test", question="Mais uma guardada?", label=9)]        # schema
    train, validation, test, quarantine = C.clean_records(recs, [], P)
    assert [r["id"] for r in train] == ["t1"] and [r["id"] for r in validation] == ["v1"]
    assert [(r["id"], r["split"]) for r in test] == [("x1", "test")]
    assert reasons(quarantine) == {"x2": "duplicate of x1", "x3": "schema: label 9 outside 0-3"}


def test_a_test_item_that_is_also_in_train_or_validation_is_the_one_quarantined():
    """What is held out never changes what trains: the test twin goes, train and validation stay."""
    t, v = mcq("t1"), mcq("v1", split="validation", question="Outra pergunta?")
    recs = [t, v,
            {**t, "id": "x1", "split": "test"},                                      # same content as t1
            mcq("v1", split="test", question="Pergunta nova?"),                     # same id as v1
            {**v, "id": "x3", "split": "test", "answers": list(reversed(v["answers"])), "label": 3},  # reordered
            mcq("x4", split="test", question="Pergunta nunca vista?")]
    train, validation, test, quarantine = C.clean_records(recs, [], P)
    assert [r["id"] for r in train] == ["t1"] and [r["id"] for r in validation] == ["v1"]
    assert [r["id"] for r in test] == ["x4"]
    assert [(q["id"], q["record"]["split"], q["reason"]) for q in quarantine] == [
        ("x1", "test", "leak: also in train"), ("v1", "test", "leak: also in validation"),
        ("x3", "test", "leak: also in validation")]
    # the same train and validation with or without the test items: train need not rerun
    assert C.clean_records([t, v], [], P)[:2] == (train, validation)


def test_open_questions_with_split_test_are_held_out_too():
    recs = [open_qa("p1", "Qual é a carga horária máxima?", "Seis horas.", kind="open", split="test"),
            open_qa("p2", "Quem orienta o estágio?", "Um professor.", kind="open", split="train"),
            open_qa("p3", "quem orienta o estágio?", "Outro.", kind="open", split="test")]   # leak
    train, _, test, quarantine = C.clean_records([mcq("c1")], recs, P)
    assert [r["id"] for r in train] == ["c1", "p2"] and [r["id"] for r in test] == ["p1"]
    assert reasons(quarantine) == {"p3": "leak: also in train"}


def test_summary_and_counts_carry_the_test_split():
    recs = [{**mcq("c1"), "source": "cosmosqa"}, mcq("v1", split="validation", question="Outra pergunta?"),
            {**five("e1", split="test"), "source": "enem2022"}]
    train, validation, test, q = C.clean_records(recs, [], P)
    summary = C.summarize(train, validation, q, test)
    assert summary["mcq_by_source"] == {"cosmosqa": {"train": 1, "validation": 0, "test": 0},
                                        "enem2022": {"train": 0, "validation": 0, "test": 1},
                                        "unknown": {"train": 0, "validation": 1, "test": 0}}
    assert (summary["test"], summary["test_mcq"], summary["test_open"]) == (1, 1, 0)
    assert summary["splits_without_mcq"] == []  # a test split is optional: none is no warning


def test_a_test_split_that_came_in_and_left_empty_fails_the_stage():
    recs = [mcq("t1"), mcq("v1", split="validation", question="Outra pergunta?"),
            {**mcq("t1"), "id": "x1", "split": "test"}]
    train, validation, test, q = C.clean_records(recs, [], P)
    summary = C.summarize(train, validation, q, test)
    with pytest.raises(InputError, match=r"clean \(test\): 1 test item\(s\) in, 0 kept out"):
        C.require_kept(C.split_sizes(recs, []), train, validation, summary, quarantine_path="q.jsonl",
                       metrics_path="m.json", test=test)


def test_exact_twin_across_splits_keeps_the_validation_item_and_flags_the_leak():
    recs = [mcq("t1"), {**mcq("t1"), "id": "v1", "split": "validation"}]
    train, validation, _, quarantine = C.clean_records(recs, [], P)
    assert [r["id"] for r in validation] == ["v1"]
    assert train == []
    assert [(q["id"], q["reason"]) for q in quarantine] == [("t1", "leak: also in validation")]


def test_clean_is_deterministic():
    mcqs, opens = _mixed_batch()
    assert C.clean_records(mcqs, opens, P) == C.clean_records(mcqs, opens, P)


def test_summarize():
    mcqs, opens = _mixed_batch()
    train, validation, test, quarantine = C.clean_records(mcqs, opens, P)
    summary = C.summarize(train, validation, quarantine, test)
    assert summary == {
        "mcq_by_source": {"unknown": {"train": 2, "validation": 2, "test": 0}},
        "test": 0,
        "test_mcq": 0,
        "test_open": 0,
        "mcq_by_option_count": {"4": 4},
        "splits_without_mcq": [],
        "train_mcq": 2,
        "train_open": 2,
        "validation": 2,
        "validation_mcq": 2,
        "validation_open": 0,
        "quarantined": 8,
        "quarantine_reasons": {
            "duplicate": 2,
            "leak: also in validation": 2,
            "schema: empty answer": 1,
            "schema: label 7 outside 0-3": 1,
            "schema: fewer than 2 answers": 1,
            "schema: two answers are the same": 1,
        },
    }
    assert list(summary["quarantine_reasons"]) == sorted(summary["quarantine_reasons"])


def test_summarize_empty():
    assert C.summarize([], [], []) == {"train_mcq": 0, "train_open": 0, "validation": 0, "validation_mcq": 0,
                                       "validation_open": 0, "test": 0, "test_mcq": 0, "test_open": 0,
                                       "quarantined": 0, "quarantine_reasons": {},
                                       "mcq_by_source": {}, "mcq_by_option_count": {},
                                       "splits_without_mcq": ["train", "validation"]}


def test_null_fields_are_quarantined_not_a_crash():
    bad = {**mcq("n1"), "context": None}
    train, validation, _, quarantine = C.clean_records([bad], [{"id": "o1", "kind": "open", "question": None,
                                                             "answer": "x"}], P)
    assert train == validation == []
    assert [(q["id"], q["reason"]) for q in quarantine] == [
        ("n1", "schema: context must be text (empty for an item without a passage)"),
        ("o1", "schema: question shorter than 5 characters")]


# --- decorative separators (blog posts are where Cosmos QA's contexts come from) -------------------
STORY = ("Ontem fui ao mercado com a minha irmã. Compramos frutas e pão, e depois voltamos para casa a pé "
         "porque o ônibus não passou.")


@pytest.mark.parametrize("separator", [
    "~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~",
    "~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~",
    "* * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * *",
    "-" * 60,
    "=" * 60,
    "•°•°•°•°•°•°•°•°•°•°•°•°•°•°•°•°•°•°•°•°",
])
def test_a_real_item_with_decorative_separators_is_kept_without_them(separator):
    context = f"{separator}\n{STORY}\n{separator}\nHoje choveu o dia inteiro.\n{separator}"
    train, _, _, quarantine = C.clean_records([mcq("t1", context=context)], [], P)
    assert quarantine == []
    assert train[0]["context"] == f"{STORY}\n\nHoje choveu o dia inteiro."


def test_decoration_inside_a_line_goes_and_the_words_around_it_stay():
    assert C.normalize_text(C.strip_decoration("Fim do dia ~*~*~ Começo da noite")) == "Fim do dia Começo da noite"
    assert C.normalize_text(C.strip_decoration("Capítulo 1\n* * *\nEra uma vez")) == "Capítulo 1\n\nEra uma vez"


@pytest.mark.parametrize("text", [
    "Ele disse f***, e saiu.",        # touches letters: a word, not decoration
    "Espere... talvez amanhã.",        # '.' is not decoration
    "O prazo é de ___ dias úteis.",    # a blank to fill in
    "Entrada -----> saída",            # an arrow points somewhere
    "saída <===== entrada",
    "1 + 1 = 2, e -3 < 0",              # single symbols between words
    "a--b e c -- d",                    # two dashes are punctuation
    "nome_de_arquivo__v2.txt",
])
def test_text_that_only_looks_like_decoration_is_untouched(text):
    assert C.strip_decoration(text) == text


def test_decoration_alone_is_still_an_empty_field():
    train, _, _, quarantine = C.clean_records([mcq("t1", question="~*~*~*~*~*~")], [], P)
    assert train == [] and reasons(quarantine) == {"t1": "schema: question shorter than 5 characters"}


def test_the_bundled_sample_is_cleaned_as_before(repo_root, monkeypatch):
    """Stripping decoration changes only items that carry it: the bundled sample has none, so its
    output is the same as with the stripping turned off."""
    from stages.ingest import load_local
    from stages.translate import join_dataset, load_translations

    items = load_local(repo_root / "data/raw/cosmosqa", ["train", "validation"])
    pt, _ = join_dataset(items, load_translations(repo_root / "data/raw/cosmosqa_pt"), "sample")
    with_strip = C.clean_records(pt, [], P)
    monkeypatch.setattr(C, "strip_decoration", lambda text: text)
    assert C.clean_records(pt, [], P) == with_strip
    assert len(with_strip[0]) + len(with_strip[1]) + len(with_strip[2]) == len(pt)


# --- any number of options, several sources ---------------------------------------------------------
def five(id_, split="validation", **extra):
    """A five-option Portuguese exam item: no passage, label E."""
    return {"id": id_, "split": split, "context": "", "question": f"Assinale a alternativa correta ({id_}).",
            "answers": ["Brasília", "Rio de Janeiro", "Salvador", "São Paulo", "Recife"], "label": 4,
            "source": "enem", "language": "pt", "subject": "geografia", "doc": "enem.pdf", "page": 3, **extra}


def test_two_to_ten_options_are_kept_with_every_extra_field():
    two = {**mcq("t2", answers=["Sim", "Não"], label=1), "source": "cosmosqa"}
    ten = {**mcq("t10", answers=[f"opção {i}" for i in range(10)], label=9), "source": "cosmosqa"}
    train, validation, _, quarantine = C.clean_records([two, ten, five("e1")], [], P)
    assert quarantine == []
    assert [(r["id"], len(r["answers"]), r["label"]) for r in train] == [("t2", 2, 1), ("t10", 10, 9)]
    # an empty context is an item without a passage: kept, and kept empty
    assert validation == [{**five("e1"), "kind": "mcq"}]


def test_the_option_bound_is_the_letters_given():
    six = mcq("s6", answers=[f"opção {i}" for i in range(6)], label=5)
    _, _, _, q = C.clean_records([six], [], P, max_options=5)
    assert reasons(q) == {"s6": "schema: more than 5 answers (one letter of format.letters each)"}
    train, _, _, q = C.clean_records([six], [], P, max_options=6)
    assert [r["id"] for r in train] == ["s6"] and q == []


def test_the_same_id_twice_in_a_split_is_quarantined_by_name():
    a, b = mcq("x", split="validation"), {**five("x"), "question": "Outra pergunta sobre capitais?"}
    _, validation, _, q = C.clean_records([a, b], [], P)
    assert [r["question"] for r in validation] == [a["question"]]
    assert reasons(q) == {"x": "duplicate id: another item in this split has it"}


def test_items_without_passage_leak_only_with_the_same_answers():
    """A stem like "Assinale a alternativa correta" is shared by different exam questions."""
    stem = "Assinale a alternativa correta."
    v = five("v1", question=stem)
    other = five("t1", split="train", question=stem, answers=["Manaus", "Belém", "Natal", "Macapá", "Palmas"])
    reordered = five("t2", split="train", question=stem, answers=list(reversed(v["answers"])), label=0)
    train, validation, _, q = C.clean_records([v, other, reordered], [], P)
    assert [r["id"] for r in train] == ["t1"]
    assert reasons(q) == {"t2": "leak: also in validation"}


def test_summary_counts_per_source_and_option_count_and_names_a_split_without_multiple_choice():
    train, validation, _, q = C.clean_records(
        [{**mcq("c1"), "source": "cosmosqa"}, five("e1", split="train"), five("e2", split="train", question="Outra?")],
        [open_qa("p1", "Qual é a carga horária máxima?", "Seis horas.", split="validation")], P)
    summary = C.summarize(train, validation, q)
    assert summary["mcq_by_source"] == {"cosmosqa": {"train": 1, "validation": 0, "test": 0},
                                        "enem": {"train": 2, "validation": 0, "test": 0}}
    assert summary["mcq_by_option_count"] == {"4": 1, "5": 2}
    assert summary["splits_without_mcq"] == ["validation"]


def test_command_reads_several_mcq_files_and_says_a_split_has_no_multiple_choice(tmp_path):
    import json

    from click.testing import CliRunner

    def write(name, recs):
        (tmp_path / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
        return str(tmp_path / name)

    cosmos = write("cosmos.jsonl", [{**mcq("c1"), "source": "cosmosqa"}, {**mcq("c2"), "source": "cosmosqa"}])
    exams = write("exams.jsonl", [five("e1", split="train"), five("e2", split="train", question="Qual a capital?")])
    opens = write("open.jsonl", [open_qa("p1", "Qual é a carga horária máxima?", "Seis horas.", split="validation")])
    (tmp_path / "params.yaml").write_text("format:\n  letters: [A, B, C, D]\n")
    result = CliRunner().invoke(C.command, ["--mcq", cosmos, "--mcq", exams, "--open", opens, "--out-dir",
                                            str(tmp_path / "out"), "--metrics", str(tmp_path / "m.json"),
                                            "--params", str(tmp_path / "params.yaml")])
    assert result.exit_code == 0, result.output
    train = [json.loads(x) for x in (tmp_path / "out/train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in train] == ["c1", "c2"]  # five options, but format.letters has four here
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["quarantine_reasons"] == {"schema: more than 4 answers (one letter of format.letters each)": 2}
    assert metrics["splits_without_mcq"] == ["validation"]
    assert "the validation split has no multiple-choice item left" in result.output
