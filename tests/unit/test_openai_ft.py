"""OpenAI fine-tuning checks (gabarito/tools/openai_ft.py): format errors, token and cost arithmetic, helpers.

Token figures are checked with a fixed counter (one token per whitespace-separated word), so every
expected number below is worked out by hand from OpenAI's message overhead: 3 tokens per message,
plus its role, plus 1 per name, plus 3 priming the reply.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from gabarito.chat import load_prompts, mcq_messages
from gabarito.io import write_jsonl
from gabarito.params import OpenAIFinetuneParams
from gabarito.tools import openai_ft as ft
from stages.format import openai_export

ROOT = Path(__file__).resolve().parents[2]
WORDS = ft.TokenCounter("words", lambda text: len(text.split()))


def params(**kw) -> OpenAIFinetuneParams:
    base = {"min_examples": 1, "n_epochs": 3, "price_per_million_tokens": 1000.0, "max_tokens_per_example": 100}
    return OpenAIFinetuneParams(**{**base, **kw})


def msg(role: str, content, **extra) -> dict:
    return {"role": role, "content": content, **extra}


def ok_example(i: int = 0) -> dict:
    return {"messages": [msg("system", "s"), msg("user", f"pergunta {i}"), msg("assistant", "Alternativa A")]}


def exported(n: int) -> list[dict]:
    """n lines exactly as the format stage exports them (the real prompts, stages.format.openai_export)."""
    prompts = load_prompts(ROOT / "prompts/chat.v1.yaml")
    recs = [{"messages": mcq_messages({"context": f"Contexto número {i}: fui ao mercado comprar pão.",
                                       "question": f"Por que fui ao mercado {i}?",
                                       "answers": ["Para comprar pão .", "Para vender o carro .",
                                                   "Para trabalhar .", "Nenhuma das alternativas ."],
                                       "label": i % 4}, prompts, list("ABCD"), "Alternativa")}
            for i in range(n)]
    return openai_export(recs)


# --- the exporter's output passes ------------------------------------------------------------------
def test_the_exporters_lines_pass_in_memory_and_through_the_file(tmp_path):
    records = exported(12)
    report = ft.validate(ft.numbered(records), params(min_examples=10), name="mem", counter=WORDS)
    assert report["ok"] and report["errors"] == [] and report["error_count"] == 0
    assert report["examples"] == report["valid_examples"] == 12
    assert report["messages_per_example"] == {"min": 3, "mean": 3.0, "p50": 3.0, "p90": 3.0, "max": 3}
    # "Alternativa X" is 2 words: the trained-on assistant tokens of 12 examples
    assert report["assistant_tokens"] == 24

    path = tmp_path / "openai_train.jsonl"
    write_jsonl(path, records)
    from_file = ft.validate(ft.read_lines(path.read_text(encoding="utf-8")), params(min_examples=10),
                            name=str(path), counter=WORDS)
    assert {k: v for k, v in from_file.items() if k != "file"} == {k: v for k, v in report.items() if k != "file"}


def test_items_with_two_to_ten_options_export_and_pass(tmp_path):
    """Each item is lettered by its own option count (an ENEM item A-E, a true/false A-B) and answered
    with its own letter, and the export passes OpenAI's checks."""
    prompts = load_prompts(ROOT / "prompts/chat.v1.yaml")
    recs = [{"messages": mcq_messages({"context": "" if n % 2 else f"Contexto {n}: um texto qualquer.",
                                       "question": f"Questão com {n} alternativas?",
                                       "answers": [f"alternativa {i} de {n}" for i in range(n)], "label": n - 1},
                                      prompts, list("ABCDEFGHIJ"), "Alternativa")}
            for n in range(2, 11)]
    records = openai_export(recs)
    assert [r["messages"][-1]["content"] for r in records] == [f"Alternativa {x}" for x in "BCDEFGHIJ"]
    five = records[3]["messages"][1]["content"]
    assert five.endswith("\nD) alternativa 3 de 5\nE) alternativa 4 de 5") and "Contexto" not in five
    path = tmp_path / "openai_train.jsonl"
    write_jsonl(path, records)
    report = ft.validate(ft.read_lines(path.read_text(encoding="utf-8")),
                         params(min_examples=9, max_tokens_per_example=1000), name=str(path), counter=WORDS)
    assert report["ok"] and report["valid_examples"] == 9 and report["errors"] == []


# --- token and cost arithmetic ----------------------------------------------------------------------
THREE = [
    # 3 messages x (3 + role 1) + content 2 + 3 + 1 + reply priming 3 = 21; assistant 1
    {"messages": [msg("system", "a b"), msg("user", "c d e"), msg("assistant", "f")]},
    # 2 x (3 + 1) + content 4 + 2 + 3 = 17; assistant 2
    {"messages": [msg("user", "x y z w"), msg("assistant", "p q")]},
    # system 3+1+1 = 5; user 3+1+1 + name "bob" 1 + 1 for having a name = 7; assistant 3+1+5 = 9; +3 = 24
    {"messages": [msg("system", "s"), msg("user", "u", name="bob"), msg("assistant", "a1 a2 a3 a4 a5")]},
]


def test_tokens_billing_and_cost_worked_out_by_hand():
    r = ft.validate(ft.numbered(THREE), params(), counter=WORDS)
    assert r["ok"], r["errors"]
    assert r["total_tokens"] == 21 + 17 + 24 == 62
    # sorted 17, 21, 24: mean 20.67; p50 the middle one; p90 at rank 1.8 -> 21 + 0.8 x (24 - 21)
    assert r["tokens_per_example"] == {"min": 17, "mean": 20.7, "p50": 21.0, "p90": 23.4, "max": 24}
    assert r["assistant_tokens"] == 1 + 2 + 5
    assert r["assistant_tokens_per_example"] == {"min": 1, "mean": 2.7, "p50": 2.0, "p90": 4.4, "max": 5}
    assert r["billed_tokens_per_epoch"] == 62 and r["n_epochs"] == 3 and r["billed_tokens"] == 186
    assert r["estimated_cost_usd"] == pytest.approx(186 * 1000.0 / 1e6) == 0.186
    assert r["token_counter"] == "words"


def test_an_example_over_the_limit_is_an_error_and_billed_at_the_limit():
    r = ft.validate(ft.numbered(THREE), params(max_tokens_per_example=22), name="t.jsonl", counter=WORDS)
    assert not r["ok"] and r["error_kinds"] == {"too_long": 1} and r["valid_examples"] == 2
    assert r["errors"][0].startswith("t.jsonl:3: 24 tokens, over openai_finetune.max_tokens_per_example (22")
    # OpenAI truncates: example 3 is billed 22, not 24; (21 + 17 + 22) x 3 epochs = 180 tokens
    assert r["billed_tokens_per_epoch"] == 60 and r["billed_tokens"] == 180
    assert r["estimated_cost_usd"] == 0.18
    assert r["total_tokens"] == 62  # the counts still show the whole example


def test_weight_0_assistant_messages_are_context_not_trained_tokens():
    ex = {"messages": [msg("user", "q1"), msg("assistant", "wrong answer here", weight=0), msg("user", "q2"),
                       msg("assistant", "right", weight=1)]}
    r = ft.validate(ft.numbered([ex]), params(), counter=WORDS)
    assert r["ok"] and r["assistant_tokens"] == 1
    # 4 x (3 + 1) + 1 + 3 + 1 + 1 + 3 = 25: weight-0 messages still count towards the bill
    assert r["total_tokens"] == 25


def test_tool_definitions_and_calls_are_counted_and_accepted():
    ex = {"messages": [msg("user", "tempo em Lisboa"),
                       {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {
                           "name": "tempo", "arguments": '{"cidade": "Lisboa"}'}}]},
                       msg("tool", "20 graus", tool_call_id="c1"), msg("assistant", "Faz 20 graus.")],
          "tools": [{"type": "function", "function": {"name": "tempo", "parameters": {"type": "object"}}}],
          "parallel_tool_calls": False}
    r = ft.validate(ft.numbered([ex]), params(), counter=WORDS)
    assert r["ok"], r["errors"]
    tools_words = len(json.dumps(ex["tools"], ensure_ascii=False).split())
    # user 3+1+3; assistant 3+1 + name 1 + arguments 2; tool 3+1+2 + id 1; assistant 3+1+3; +3; + tools
    assert r["total_tokens"] == 7 + 7 + 7 + 7 + 3 + tools_words


# --- each bad line names its file and line and what to do ------------------------------------------
BAD = [
    ({"messages": [msg("system", "s"), msg("bot", "oi"), msg("assistant", "A")]}, "unrecognized_role",
     "message 2 has role 'bot'; use one of system, user, assistant, tool, function"),
    ({"messages": [msg("developer", "s"), msg("user", "q"), msg("assistant", "A")]}, "unrecognized_role",
     "take 'system' where chat requests take 'developer'"),
    ({"messages": [msg("system", "s"), msg("user", "q")]}, "example_missing_assistant_message",
     "no assistant message"),
    ({"messages": [msg("user", "q"), msg("system", "s"), msg("assistant", "A")]}, "system_not_first",
     "message 2 is a system message; only the first message may be one"),
    ({"messages": [msg("user", 42), msg("assistant", "A")]}, "content_type",
     "message 1 (user) has content that is a number; content must be a string"),
    ({"messages": [msg("user", ""), msg("assistant", "A")]}, "missing_content",
     "message 1 (user) has no content; give it a non-empty string"),
    ({"messages": [msg("user", "q"), {"role": "assistant"}]}, "missing_content",
     "message 2 (assistant) has no content; give it a non-empty string (or tool_calls)"),
    ({"messages": [msg("user", [{"type": "audio", "data": "x"}]), msg("assistant", "A")]}, "content_type",
     "content part 1 has type 'audio'; user messages take parts of type image_url, text"),
    ({"messages": [msg("user", "q"), msg("assistant", "A", weight=2)]}, "invalid_weight",
     "has weight 2; use 0 (context only, not trained on) or 1"),
    ({"messages": [msg("user", "q", weight=1), msg("assistant", "A")]}, "invalid_weight",
     "message 1 (user) has 'weight', which only assistant messages take"),
    ({"messages": [msg("user", "q", label=3), msg("assistant", "A")]}, "message_unrecognized_key",
     "message 1 (user) has unexpected key(s) 'label'; user messages take only content, name, role"),
    ({"messages": [{"content": "q"}, msg("assistant", "A")]}, "message_missing_key", "message 1 has no 'role'"),
    ({"messages": [msg("user", "q"), msg("tool", "r"), msg("assistant", "A")]}, "message_missing_key",
     "message 2 (tool) needs 'tool_call_id'"),
    ({"messages": [msg("user", "q"), {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}]}, "tool_calls",
     "arguments as an object; OpenAI wants them JSON-encoded in a string"),
    ({"id": "x1", **ok_example()}, "unrecognized_example_key", "unexpected key(s) 'id'; a line takes only messages"),
    ({"messages": []}, "missing_messages_list", "no 'messages' list, or an empty one"),
    ({"prompt": "q", "completion": "A"}, "missing_messages_list", "no 'messages' list"),
    (["user", "q"], "data_type", "the line is a list; each line must be an object"),
    ({"messages": ["oi"]}, "message_data_type", "message 1 is a string; each message is an object"),
]


@pytest.mark.parametrize("bad, kind, says", BAD, ids=[f"{k}-{i}" for i, (_, k, _) in enumerate(BAD)])
def test_a_bad_line_is_an_error_naming_file_line_and_fix(bad, kind, says):
    lines = ft.numbered([ok_example(1), bad, ok_example(3)])
    r = ft.validate(lines, params(), name="data/processed/openai_train.jsonl", counter=WORDS)
    assert not r["ok"] and r["valid_examples"] == 2
    assert r["error_kinds"].get(kind), r["error_kinds"]
    mine = [e for e in r["errors"] if e.startswith("data/processed/openai_train.jsonl:2: ")]
    assert mine and len(mine) == r["error_count"], r["errors"]
    assert any(says in e for e in mine), mine
    # the good lines around it are still counted
    assert r["tokens_per_example"]["min"] > 0 and r["total_tokens"] == 2 * r["tokens_per_example"]["mean"]


def test_a_line_that_is_not_json_is_reported_with_its_real_line_number():
    text = "\n".join([json.dumps(ok_example(1)), "", json.dumps(ok_example(2)), '{"messages": [', "",
                      json.dumps(ok_example(3))]) + "\n"
    lines = ft.read_lines(text)
    assert [n for n, _ in lines] == [1, 3, 4, 6]  # blank lines skipped, numbering kept
    r = ft.validate(lines, params(), name="f.jsonl", counter=WORDS)
    assert r["error_kinds"] == {"invalid_json": 1} and r["examples"] == 4 and r["valid_examples"] == 3
    assert r["errors"][0].startswith("f.jsonl:4: not valid JSON (") and "fix or remove that line" in r["errors"][0]


def test_too_few_examples_is_an_error_for_the_file():
    r = ft.validate(ft.numbered([ok_example(i) for i in range(9)]), params(min_examples=10), name="f.jsonl",
                    counter=WORDS)
    assert not r["ok"] and r["error_kinds"] == {"too_few_examples": 1}
    assert r["errors"] == ["f.jsonl: 9 valid example(s) of 9; OpenAI needs at least 10 "
                           "(openai_finetune.min_examples): fix the lines above or export more data"]
    # bad lines do not count towards the minimum
    lines = ft.numbered([ok_example(i) for i in range(10)] + [{"messages": []}])
    assert ft.validate(lines, params(min_examples=11), counter=WORDS)["error_kinds"] == {
        "missing_messages_list": 1, "too_few_examples": 1}


def test_duplicates_and_odd_shapes_are_warnings_not_errors():
    ex = ok_example(1)
    lines = ft.numbered([ex, ok_example(2), ex, {"messages": [msg("user", "q"), msg("assistant", "A"),
                                                              msg("user", "and?")]}])
    r = ft.validate(lines, params(), name="f.jsonl", counter=WORDS)
    assert r["ok"] and r["valid_examples"] == 4
    assert "f.jsonl:3: same example as line 1" in r["warnings"]
    assert "f.jsonl: 1 example(s) have no system message (the model then learns without the instructions it " \
           "will be given): line 4" in r["warnings"]
    assert any("do not end with an assistant message" in w and w.endswith("line 4") for w in r["warnings"])


def test_error_lists_are_capped_but_counted_in_full():
    lines = ft.numbered([{"messages": [msg("robot", "x"), msg("assistant", "A")]}] * 150)
    r = ft.validate(lines, params(), counter=WORDS)
    assert r["error_count"] == 151 and r["error_kinds"] == {"unrecognized_role": 150, "too_few_examples": 1}
    assert len(r["errors"]) == ft.MAX_LISTED + 1 and r["errors"][-1].startswith("... and 51 more error(s)")


# --- the pair of files of one job --------------------------------------------------------------------
def test_pair_prices_the_training_file_and_warns_about_shared_examples():
    train = ft.numbered(THREE)
    validation = ft.numbered([THREE[1], ok_example(9)])
    check = ft.validate_pair(train, validation, params(min_examples=3), train_name="tr", validation_name="va",
                             counter=WORDS)
    assert check["ok"] and check["billed_tokens"] == 186 and check["estimated_cost_usd"] == 0.186
    assert "estimated_cost_usd" not in check["validation"]  # OpenAI trains on (and bills) the training file
    assert "va: 1 example(s) also in tr: line 1" in check["validation"]["warnings"]
    # the validation file needs examples, not min_examples of them
    empty = ft.validate_pair(train, [], params(min_examples=3), counter=WORDS)
    assert not empty["ok"] and empty["validation"]["error_kinds"] == {"too_few_examples": 1}
    text = ft.describe(check)
    assert "186 tokens" in text and "$0.19" in text and text.endswith("ok: ready to submit")


def test_describe_labels_an_estimated_count():
    check = ft.validate_pair(ft.numbered(exported(3)), None, params(),
                             counter=ft.TokenCounter("estimate", ft.estimate_tokens))
    text = ft.describe(check)
    assert "(estimated)" in text and "(token count estimated)" in text
    assert any("estimated, not counted" in w for w in check["train"]["warnings"])


# --- token counting ----------------------------------------------------------------------------------
def test_the_estimate_is_deterministic_and_about_4_characters_per_piece():
    assert ft.estimate_tokens(" de") == 1
    assert ft.estimate_tokens(" mercado") == 2  # 7 letters
    assert ft.estimate_tokens(" Alternativa") == 3  # 11 letters
    assert ft.estimate_tokens("A) 1234") == 5  # pieces "A", ")", " ", "123", "4"
    assert ft.estimate_tokens("") == 0
    text = exported(1)[0]["messages"][1]["content"]
    assert ft.estimate_tokens(text) == ft.estimate_tokens(text)
    assert len(text) / 6 < ft.estimate_tokens(text) < len(text) / 2  # within the usual 2-6 characters a token


def test_tiktoken_is_used_when_it_loads_and_the_method_says_which(monkeypatch):
    monkeypatch.setitem(sys.modules, "tiktoken", None)  # not installed
    assert ft.token_counter("gpt-4o-mini-2024-07-18").method == "estimate"

    asked = []

    class Encoding:
        def encode(self, text, disallowed_special=()):
            return text.split()

    def get_encoding(name):
        asked.append(name)
        if name == "broken":
            raise OSError("offline: cannot download the encoding")
        return Encoding()

    monkeypatch.setitem(sys.modules, "tiktoken", types.SimpleNamespace(get_encoding=get_encoding))
    counter = ft.token_counter("gpt-4o-mini-2024-07-18")
    assert counter.method == "tiktoken:o200k_base" and counter.count("um dois três") == 3
    assert ft.token_counter("gpt-3.5-turbo-0125").method == "tiktoken:cl100k_base"
    assert ft.token_counter("ft:gpt-4.1-mini-2025-04-14:org::abc").method == "tiktoken:o200k_base"
    assert asked == ["o200k_base", "cl100k_base", "o200k_base"]
    monkeypatch.setattr(ft, "encoding_for", lambda model: "broken")
    assert ft.token_counter("gpt-4o").method == "estimate"


# --- request shape and messages ----------------------------------------------------------------------
def test_the_job_request_uses_the_supervised_method():
    p = params(model="gpt-4o-mini-2024-07-18", n_epochs=4, suffix="gabarito")
    assert ft.job_request(p, "file-1", "file-2") == {
        "model": "gpt-4o-mini-2024-07-18", "training_file": "file-1", "validation_file": "file-2",
        "suffix": "gabarito",
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 4}}}}
    bare = ft.job_request(params(suffix=None), "file-1", None)
    assert "validation_file" not in bare and "suffix" not in bare and "hyperparameters" not in bare


def test_scrub_removes_the_key_and_anything_key_shaped():
    from gabarito.openai_client import scrub

    key = "sk-" + "proj-abcdefghijklmnop"  # built, so no scanner takes this test value for a leaked key
    text = f"bad {key} and masked sk-pro************mnop here"
    assert scrub(text, key) == "bad *** and masked *** here"
    # a placeholder key ("local") is too short to be a secret: taken out only where it is a credential
    assert scrub("a local key: local", "local") == "a local key: local"
    assert scrub("api-key: local", "local") == "api-key: ***"
    assert scrub("/mnt/disk-0001/openai_train.jsonl", None) == "/mnt/disk-0001/openai_train.jsonl"


def test_make_client_needs_the_key_from_the_environment(monkeypatch):
    with pytest.raises(ft.InputError, match="OPENAI_API_KEY is not set"):
        ft.make_client(params())
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-unit")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert str(ft.make_client(params()).base_url).startswith("http://127.0.0.1:9/v1")
    assert str(ft.make_client(params(base_url="http://127.0.0.1:8/v1")).base_url).startswith("http://127.0.0.1:8/v1")


def test_submit_refuses_bad_data_before_touching_the_client(tmp_path):
    class NoCalls:
        def __getattr__(self, name):
            raise AssertionError(f"client.{name} used")

    train = tmp_path / "openai_train.jsonl"
    write_jsonl(train, [ok_example(1), {"messages": [msg("user", "q")]}])
    with pytest.raises(ft.DataNotReady) as info:
        ft.submit(NoCalls(), train, None, params(), counter=WORDS)
    assert f"{train}:2: no assistant message" in str(info.value)
    assert "nothing was uploaded" in str(info.value) and not info.value.check["ok"]
    with pytest.raises(ft.InputError, match="file not found"):
        ft.submit(NoCalls(), tmp_path / "missing.jsonl", None, params(), counter=WORDS)


def test_a_role_or_part_type_that_is_not_a_string_is_reported_not_a_crash():
    bad_role = {"messages": [{"role": ["user"], "content": "oi"}, {"role": "assistant", "content": "Alternativa A"}]}
    bad_part = {"messages": [{"role": "user", "content": [{"type": {"x": 1}, "text": "oi"}]},
                             {"role": "assistant", "content": "Alternativa A"}]}
    assert [kind for kind, _ in ft.check_example(bad_role)] == ["unrecognized_role"]
    assert [kind for kind, _ in ft.check_example(bad_part)] == ["content_type"]
