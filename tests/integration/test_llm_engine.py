"""The LLM engine (gabarito/llm.py) and `gabarito translate` against a real loopback HTTP server.

The server is tests/fake_openai.py (fixture ``fake_openai``); each test scripts its replies: transient
faults, malformed or wrong-shaped JSON, refusals, fatal statuses. Backoff is tiny so the file is fast.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gabarito.cli import main
from gabarito.llm import Engine, FatalAPIError, Ledger
from gabarito.params import LLMParams
from stages.translate import build_job
from tests.fake_openai import Reply

ROOT = Path(__file__).resolve().parents[2]
PROMPT = ROOT / "prompts/translate.v2.txt"
TEMPLATE = PROMPT.read_text(encoding="utf-8")


# --- items and plausible translations ------------------------------------------------------------
def make_item(i: int, label: int | None = None) -> dict:
    return {
        "id": f"item{i:02d}",
        "split": "train" if i % 3 else "validation",
        "label": (i % 4) if label is None else label,
        "context": f"I went to the market number {i} and bought bread for my family because we had "
                   "nothing left at home.",
        "question": f"Why did the narrator go to market number {i}?",
        "answers": [f"Because they needed bread for the family number {i} .",
                    "Because they wanted to sell their old car .",
                    "Because the market was closing for good .",
                    "None of the above choices ."],
    }


def request_payload(req: dict) -> dict:
    """The item JSON that build_job embeds in the first user message."""
    user = next(m["content"] for m in req["messages"] if m["role"] == "user")
    return json.loads(user[user.index("{"):])


def item_number(payload: dict) -> int:
    return int(payload["pergunta"].rstrip("?").split()[-1])


def translation(n: int) -> dict:
    return {
        "contexto": f"Eu fui ao mercado número {n} e comprei pão para a minha família porque não "
                    "tínhamos mais nada em casa.",
        "pergunta": f"Por que o narrador foi ao mercado número {n}?",
        "alternativas": [f"Porque precisavam de pão para a família número {n} .",
                         "Porque queriam vender o carro velho .",
                         "Porque o mercado ia fechar de vez .",
                         "Nenhuma das alternativas acima ."],
    }


def good_reply(req: dict) -> Reply:
    return Reply(content=json.dumps(translation(item_number(request_payload(req))), ensure_ascii=False))


class Script:
    """Replies in order (a Reply, or a callable req -> Reply), then valid translations for ever."""

    def __init__(self, *steps, then=good_reply):
        self.steps = list(steps)
        self.then = then
        self.lock = threading.Lock()

    def __call__(self, req: dict) -> Reply:
        with self.lock:
            step = self.steps.pop(0) if self.steps else self.then
        return step(req) if callable(step) else step


def error(status: int, message: str, type_: str = "invalid_request_error", code: str | None = None) -> Reply:
    return Reply(status=status, error={"error": {"message": message, "type": type_, "param": None, "code": code}})


# --- engine helpers -------------------------------------------------------------------------------
@pytest.fixture
def engines(tmp_path):
    """make(**llm_overrides) -> (engine, ledger); every ledger is closed at the end."""
    opened: list[Ledger] = []

    def make(ledger_name: str = "ledger.jsonl", backoff_base: float = 0.01, **over) -> tuple[Engine, Ledger]:
        settings = {"model": "test-model", "max_retries": 3, "timeout_s": 1, "concurrency": 4, "max_reasks": 2,
                    **over}
        for led in opened:  # an earlier run on this ledger has ended: its lock went with it
            if led.path == tmp_path / ledger_name:
                led.close()
        ledger = Ledger(tmp_path / ledger_name)
        opened.append(ledger)
        engine = Engine(LLMParams(**settings), template=TEMPLATE, ledger=ledger, progress=False,
                        backoff_base=backoff_base, backoff_max=0.05)
        return engine, ledger

    yield make
    for led in opened:
        led.close()  # closing twice is harmless


def jobs_for(items: list[dict]):
    return [build_job(it, TEMPLATE) for it in items]


def ledger_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def header(req: dict, name: str) -> str | None:
    return next((v for k, v in req["headers"].items() if k.lower() == name), None)


def last_user(req: dict) -> str:
    return req["json"]["messages"][-1]["content"]


# --- happy path -----------------------------------------------------------------------------------
def test_happy_path(fake_openai, engines, tmp_path):
    fake_openai.responder = good_reply
    items = [make_item(i) for i in range(5)]
    engine, ledger = engines()
    results = engine.run(jobs_for(items))

    assert set(results) == {it["id"] for it in items}
    for i, it in enumerate(items):
        entry = results[it["id"]]
        assert entry["status"] == "ok"
        assert entry["result"]["question"] == f"Por que o narrador foi ao mercado número {i}?"
        assert len(entry["result"]["answers"]) == 4
    s = engine.stats
    assert (s.jobs, s.api_calls, s.cache_hits, s.retries, s.reasks, s.failures) == (5, 5, 0, 0, 0, 0)
    assert (s.prompt_tokens, s.completion_tokens) == (50, 25)

    lines = ledger_lines(tmp_path / "ledger.jsonl")
    assert len(lines) == 5
    assert {ln["id"] for ln in lines} == set(results)
    assert all(ln["status"] == "ok" and len(ln["key"]) == 64 for ln in lines)
    assert (tmp_path / "ledger.jsonl").read_bytes().endswith(b"\n")

    assert len(fake_openai.requests) == 5
    for req in fake_openai.requests:
        body = req["json"]
        assert req["path"] == "/v1/chat/completions"
        assert header(req, "authorization") == "Bearer sk-test-not-a-real-key"
        assert body["model"] == "test-model"
        assert body["temperature"] == 0.0 and body["max_tokens"] == 2048
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["name"] == "traducao"
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
        assert "label" not in body["messages"][1]["content"]  # the label never goes to the model


# --- transient faults -----------------------------------------------------------------------------
def test_429_with_retry_after_then_success(fake_openai, engines):
    fake_openai.responder = Script(Reply(status=429, headers={"Retry-After": "0"},
                                         error={"error": {"message": "slow down", "type": "rate_limit"}}))
    # a large backoff_base proves Retry-After: 0 is what decided the wait (else >= 2.5 s)
    engine, _ = engines(backoff_base=5.0)
    started = time.monotonic()
    results = engine.run(jobs_for([make_item(1)]))
    assert time.monotonic() - started < 2.0
    assert results["item01"]["status"] == "ok"
    assert (engine.stats.retries, engine.stats.api_calls, engine.stats.reasks) == (1, 1, 0)
    assert len(fake_openai.requests) == 2


def test_500_twice_then_success(fake_openai, engines):
    fake_openai.responder = Script(Reply(status=500), Reply(status=503))
    engine, _ = engines()
    results = engine.run(jobs_for([make_item(2)]))
    assert results["item02"]["status"] == "ok"
    assert (engine.stats.retries, engine.stats.api_calls, engine.stats.failures) == (2, 1, 0)
    assert len(fake_openai.requests) == 3


def test_500_forever_gives_up_after_max_retries(fake_openai, engines, tmp_path):
    fake_openai.responder = lambda req: Reply(status=500)
    engine, _ = engines(max_retries=2)
    results = engine.run(jobs_for([make_item(3)]))
    entry = results["item03"]
    assert entry["status"] == "failed"
    assert entry["reason"].startswith("gave up after 2 retries: InternalServerError")
    assert (engine.stats.retries, engine.stats.api_calls, engine.stats.failures) == (2, 0, 1)
    assert len(fake_openai.requests) == 3
    # a transient failure is not final: nothing in the ledger, so the next run asks again
    assert entry["transient"] is True and ledger_lines(tmp_path / "ledger.jsonl") == []
    fake_openai.responder = good_reply
    engine.ledger.close()
    again, _ = engines(max_retries=2)
    assert again.run(jobs_for([make_item(3)]))["item03"]["status"] == "ok"
    assert again.stats.cache_hits == 0 and again.stats.api_calls == 1


def test_slow_reply_past_timeout_then_success(fake_openai, engines):
    fake_openai.responder = Script(lambda req: Reply(content=good_reply(req).content, delay=1.6))
    engine, _ = engines(timeout_s=0.5)
    results = engine.run(jobs_for([make_item(4)]))
    assert results["item04"]["status"] == "ok"
    assert (engine.stats.retries, engine.stats.api_calls) == (1, 1)
    assert len(fake_openai.requests) == 2


# --- re-asks --------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, reason", [
    (Reply(content='{"contexto": "Eu fui ao mercado", "pergunta": '), "a resposta não é JSON válido"),
    (Reply(content="{'contexto': 'Eu fui ao mercado', 'pergunta': 'Por quê?', 'alternativas': ['a', 'b', 'c', 'd']}"),
     "a resposta não é JSON válido"),
    # parseable but cut off at max_tokens: never trusted
    (lambda req: Reply(content=good_reply(req).content, finish_reason="length"), "finish_reason=length"),
    (lambda req: Reply(content=json.dumps({**translation(5), "alternativas": translation(5)["alternativas"][:3]})),
     "são necessárias exatamente 4 alternativas, vieram 3"),
    (lambda req: Reply(content=json.dumps({**translation(5), "contexto": make_item(5)["context"]})),
     "o campo 'context' não foi traduzido para o português"),
], ids=["malformed", "single-quoted", "length", "three-answers", "echo"])
def test_invalid_reply_is_reasked_with_the_reason(fake_openai, engines, bad, reason):
    fake_openai.responder = Script(bad)
    engine, _ = engines()
    results = engine.run(jobs_for([make_item(5)]))
    assert results["item05"]["status"] == "ok"
    assert results["item05"]["result"]["context"].startswith("Eu fui ao mercado número 5")
    assert (engine.stats.reasks, engine.stats.api_calls, engine.stats.retries) == (1, 2, 0)
    first, second = fake_openai.requests
    assert len(first["json"]["messages"]) == 2
    msgs = second["json"]["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[:2] == first["json"]["messages"]
    assert msgs[2]["content"] == (bad(first["json"]) if callable(bad) else bad).content
    assert reason in msgs[3]["content"]
    assert msgs[3]["content"].startswith("Sua resposta é inválida: ")


def test_refusal_until_max_reasks_is_recorded_as_failure(fake_openai, engines, tmp_path):
    refusal = "I can't help with that."
    fake_openai.responder = lambda req: Reply(content=refusal)
    engine, _ = engines(max_reasks=2)
    results = engine.run(jobs_for([make_item(6), make_item(7)]))
    for item_id in ("item06", "item07"):
        entry = results[item_id]
        assert entry["status"] == "failed"
        assert entry["raw"] == refusal
        assert "não é JSON válido" in entry["reason"]
    s = engine.stats
    assert (s.api_calls, s.reasks, s.failures, s.retries) == (6, 4, 2, 0)
    assert len(fake_openai.requests) == 6
    lines = ledger_lines(tmp_path / "ledger.jsonl")
    assert len(lines) == 2
    assert all(ln["status"] == "failed" and ln["raw"] == refusal and ln["reason"] for ln in lines)


# --- fatal statuses -------------------------------------------------------------------------------
def test_401_is_fatal_and_mentions_the_key(fake_openai, engines, tmp_path):
    fake_openai.responder = lambda req: error(401, "Incorrect API key provided", code="invalid_api_key")
    engine, _ = engines(concurrency=1)
    with pytest.raises(FatalAPIError) as exc:
        engine.run(jobs_for([make_item(8)]))
    msg = str(exc.value)
    assert "401" in msg and "OPENAI_API_KEY" in msg
    assert "sk-test-not-a-real-key" not in msg
    assert len(fake_openai.requests) == 1  # never retried
    assert engine.stats.retries == 0
    assert (tmp_path / "ledger.jsonl").read_bytes() == b""  # nothing recorded: a rerun will try again


def test_401_makes_no_further_calls(fake_openai, engines):
    fake_openai.responder = lambda req: error(401, "Incorrect API key provided", code="invalid_api_key")
    engine, _ = engines(concurrency=1)
    with pytest.raises(FatalAPIError):
        engine.run(jobs_for([make_item(i) for i in range(4)]))
    time.sleep(0.2)  # let any straggler request land
    assert len(fake_openai.requests) == 1


def test_404_is_fatal_and_names_model_and_base_url(fake_openai, engines):
    fake_openai.responder = lambda req: error(404, "The model `test-model` does not exist", code="model_not_found")
    engine, _ = engines(concurrency=1)
    with pytest.raises(FatalAPIError) as exc:
        engine.run(jobs_for([make_item(9)]))
    msg = str(exc.value)
    assert "404" in msg and "'test-model'" in msg and "base_url" in msg and "/v1" in msg
    assert len(fake_openai.requests) == 1


def test_a_400_fails_only_its_item_and_the_others_go_on(fake_openai, engines, tmp_path):
    long_item = {**make_item(10), "context": "x " * 2_500_000}  # 5 MB: over any model's context window

    def responder(req):
        if len(json.dumps(req)) > 1_000_000:
            return error(400, "This model's maximum context length is 128000 tokens. However, your messages "
                              "resulted in 1250042 tokens.", code="context_length_exceeded")
        return good_reply(req)

    fake_openai.responder = responder
    engine, _ = engines(concurrency=2)
    results = engine.run(jobs_for([make_item(1), long_item, make_item(2)]))
    assert [results[f"item{i:02d}"]["status"] for i in (1, 10, 2)] == ["ok", "failed", "ok"]
    assert results["item10"]["reason"].startswith("the API rejected the request (400): This model's maximum "
                                                  "context length is 128000 tokens.")
    assert len(fake_openai.requests) == 3  # a 400 is not retried
    # a refused request is not billed: not cached, so the rerun asks for it again once the item is fixed
    assert sorted(ln["id"] for ln in ledger_lines(tmp_path / "ledger.jsonl")) == ["item01", "item02"]


def test_400_about_response_format_falls_back_to_json_object(fake_openai, engines):
    def responder(req):
        if req["response_format"]["type"] == "json_schema":
            return error(400, "Invalid parameter: 'response_format' of type 'json_schema' is not supported "
                              "with this model.", code="invalid_parameter")
        return good_reply(req)

    fake_openai.responder = responder
    engine, _ = engines(concurrency=1)
    results = engine.run(jobs_for([make_item(i) for i in range(3)]))
    assert all(e["status"] == "ok" for e in results.values())
    types = [r["json"]["response_format"]["type"] for r in fake_openai.requests]
    assert types == ["json_schema", "json_object", "json_object", "json_object"]
    assert (engine.stats.api_calls, engine.stats.retries, engine.stats.failures) == (3, 0, 0)


def test_json_object_from_params_sends_no_schema(fake_openai, engines):
    fake_openai.responder = good_reply
    engine, _ = engines(response_format="json_object")
    engine.run(jobs_for([make_item(1)]))
    assert fake_openai.requests[0]["json"]["response_format"] == {"type": "json_object"}


# --- ledger ---------------------------------------------------------------------------------------
def test_second_run_over_the_same_ledger_makes_no_calls(fake_openai, engines, tmp_path):
    fake_openai.responder = good_reply
    items = [make_item(i) for i in range(4)]
    engine, ledger = engines()
    first = engine.run(jobs_for(items))
    ledger.close()
    assert len(fake_openai.requests) == 4

    engine2, _ = engines()
    second = engine2.run(jobs_for(items))
    assert len(fake_openai.requests) == 4
    assert (engine2.stats.cache_hits, engine2.stats.api_calls, engine2.stats.jobs) == (4, 0, 4)
    assert second == first
    assert len(ledger_lines(tmp_path / "ledger.jsonl")) == 4

    # the cache key includes the model: another model is new work
    engine3, _ = engines(model="other-model")
    engine3.run(jobs_for(items[:1]))
    assert (engine3.stats.cache_hits, engine3.stats.api_calls) == (0, 1)
    assert len(fake_openai.requests) == 5


def test_failed_items_are_retried_only_with_retry_failed(fake_openai, engines, tmp_path):
    fake_openai.responder = lambda req: Reply(content="I can't help with that.")
    items = [make_item(1), make_item(2)]
    engine, ledger = engines(max_reasks=0)
    engine.run(jobs_for(items))
    ledger.close()
    assert engine.stats.failures == 2 and len(fake_openai.requests) == 2

    fake_openai.responder = good_reply
    engine2, ledger2 = engines(max_reasks=0)
    res2 = engine2.run(jobs_for(items))
    ledger2.close()
    assert len(fake_openai.requests) == 2
    assert (engine2.stats.cache_hits, engine2.stats.api_calls, engine2.stats.failures) == (2, 0, 2)
    assert all(e["status"] == "failed" for e in res2.values())

    engine3, ledger3 = engines(max_reasks=0)
    res3 = engine3.run(jobs_for(items), retry_failed=True)
    ledger3.close()
    assert len(fake_openai.requests) == 4
    assert (engine3.stats.cache_hits, engine3.stats.api_calls, engine3.stats.failures) == (0, 2, 0)
    assert all(e["status"] == "ok" for e in res3.values())

    # the newer ok line wins over the old failure when the ledger is read again
    engine4, _ = engines(max_reasks=0)
    res4 = engine4.run(jobs_for(items))
    assert len(fake_openai.requests) == 4
    assert all(e["status"] == "ok" for e in res4.values())
    assert len(ledger_lines(tmp_path / "ledger.jsonl")) == 4


def test_torn_last_ledger_line_is_repaired_on_open(fake_openai, engines, tmp_path):
    fake_openai.responder = good_reply
    items = [make_item(i) for i in range(3)]
    engine, ledger = engines()
    engine.run(jobs_for(items[:2]))
    ledger.close()
    path = tmp_path / "ledger.jsonl"
    whole = path.read_bytes()
    # kill -9 in the middle of writing the third line
    with open(path, "ab") as fh:
        fh.write(b'{"id": "item02", "key": "' + b"0" * 20)

    engine2, ledger2 = engines()
    assert path.read_bytes() == whole
    assert len(ledger2.entries) == 2
    engine2.run(jobs_for(items))
    assert (engine2.stats.cache_hits, engine2.stats.api_calls) == (2, 1)
    ledger2.close()
    lines = ledger_lines(path)  # every line parses
    assert {ln["id"] for ln in lines} == {"item00", "item01", "item02"} and len(lines) == 3


def test_ledger_that_is_only_a_torn_line_is_emptied(tmp_path):
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(b'{"key": "abc", "st')
    led = Ledger(path)
    try:
        assert led.entries == {} and path.read_bytes() == b""
        led.put({"key": "k", "id": "x", "status": "ok", "result": {}})
    finally:
        led.close()
    assert ledger_lines(path) == [{"key": "k", "id": "x", "status": "ok", "result": {}}]


def test_api_key_never_reaches_the_ledger(fake_openai, engines, tmp_path, monkeypatch):
    secret = "sk-proj-SECRET-" + "x" * 24
    monkeypatch.setenv("OPENAI_API_KEY", secret)

    def responder(req):
        n = item_number(request_payload(req))
        if n == 1:
            return Reply(content="I can't help with that.")
        return good_reply(req)

    fake_openai.responder = Script(Reply(status=500), then=responder)
    engine, ledger = engines(max_reasks=1)
    engine.run(jobs_for([make_item(0), make_item(1), make_item(2)]))
    ledger.close()
    assert all(header(r, "authorization") == f"Bearer {secret}" for r in fake_openai.requests)
    data = (tmp_path / "ledger.jsonl").read_text(encoding="utf-8")
    assert len(data.splitlines()) == 3
    assert secret not in data and "SECRET" not in data


# --- `gabarito translate` end to end --------------------------------------------------------------
def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def _translate_args(d: Path, translations: Path) -> list[str]:
    return ["translate", "--items", str(d / "items.jsonl"), "--translations", str(translations),
            "--prompt", str(PROMPT), "--ledger", str(d / "ledger/translate.jsonl"), "--out", str(d / "out.jsonl"),
            "--failures", str(d / "failures.jsonl"), "--metrics", str(d / "metrics.json"),
            "--params", str(d / "params.yaml"), "--no-progress"]


def _output(result) -> str:
    try:
        return result.output + (result.stderr or "")
    except ValueError:  # older click without separate stderr
        return result.output


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_cli_translate_openai_end_to_end_and_cached_rerun(fake_openai, workdir):
    d = workdir
    items = [make_item(i, label=lab) for i, lab in zip(range(3), (3, 0, 2))]
    _write_jsonl(d / "items.jsonl", items)
    (d / "unused.jsonl").write_text("")
    (d / "params.yaml").write_text(yaml.safe_dump(
        {"translate": {"provider": "openai", "llm": {"model": "test-model", "max_retries": 1, "timeout_s": 5}}}))
    fake_openai.responder = good_reply
    runner = CliRunner()

    result = runner.invoke(main, _translate_args(d, d / "unused.jsonl"))
    assert result.exit_code == 0, _output(result)
    out = [json.loads(line) for line in (d / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in out] == [it["id"] for it in items]
    for i, (rec, it) in enumerate(zip(out, items)):
        assert rec["label"] == it["label"] and rec["split"] == it["split"]
        assert rec["translated_by"] == "openai:test-model"
        assert rec["question"] == f"Por que o narrador foi ao mercado número {i}?"
        assert rec["context"] == translation(i)["contexto"] and rec["answers"] == translation(i)["alternativas"]
    assert (d / "failures.jsonl").read_text() == ""
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics["items"] == 3 and metrics["translated"] == 3 and metrics["failures"] == 0
    assert metrics["from_dataset"] == 0
    assert metrics["api_calls"] == 3 and metrics["cache_hits"] == 0
    assert (metrics["prompt_tokens"], metrics["completion_tokens"]) == (30, 15)
    assert len(fake_openai.requests) == 3
    assert all(r["json"]["model"] == "test-model" for r in fake_openai.requests)
    first_out = (d / "out.jsonl").read_bytes()

    rerun = runner.invoke(main, _translate_args(d, d / "unused.jsonl"))
    assert rerun.exit_code == 0, _output(rerun)
    assert len(fake_openai.requests) == 3
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics["api_calls"] == 0 and metrics["cache_hits"] == 3
    assert (d / "out.jsonl").read_bytes() == first_out
    assert "sk-test-not-a-real-key" not in (d / "ledger/translate.jsonl").read_text(encoding="utf-8")


def test_cli_translate_dataset_missing_without_key_fails_cleanly(workdir):
    d = workdir
    assert "OPENAI_API_KEY" not in os.environ
    items = [make_item(i) for i in range(3)]
    _write_jsonl(d / "items.jsonl", items)
    tr = translation(0)
    _write_jsonl(d / "tr.jsonl", [{"id": "item00", "context": tr["contexto"], "question": tr["pergunta"],
                                   "answers": tr["alternativas"]}])
    (d / "params.yaml").write_text(yaml.safe_dump({"translate": {"provider": "dataset"}}))

    result = CliRunner().invoke(main, _translate_args(d, d / "tr.jsonl"))
    text = _output(result)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "2 item(s) have no translation" in text
    assert "item01, item02" in text
    assert "OPENAI_API_KEY" in text
    assert "Traceback" not in text
    assert not (d / "out.jsonl").exists()


def test_cli_translate_dataset_with_api_fallback(fake_openai, workdir):
    d = workdir
    items = [make_item(i) for i in range(3)]
    _write_jsonl(d / "items.jsonl", items)
    tr = translation(1)
    _write_jsonl(d / "tr.jsonl", [{"id": "item01", "context": tr["contexto"], "question": tr["pergunta"],
                                   "answer0": tr["alternativas"][0], "answer1": tr["alternativas"][1],
                                   "answer2": tr["alternativas"][2], "answer3": tr["alternativas"][3]}])
    (d / "params.yaml").write_text(yaml.safe_dump(
        {"translate": {"provider": "dataset", "llm": {"model": "test-model", "max_retries": 1, "timeout_s": 5}}}))
    fake_openai.responder = good_reply

    result = CliRunner().invoke(main, _translate_args(d, d / "tr.jsonl"))
    assert result.exit_code == 0, _output(result)
    out = [json.loads(line) for line in (d / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], r["translated_by"], r["label"]) for r in out] == [
        ("item00", "openai:test-model", 0), ("item01", "dataset", 1), ("item02", "openai:test-model", 2)]
    metrics = json.loads((d / "metrics.json").read_text())
    assert (metrics["translated"], metrics["from_dataset"], metrics["api_calls"]) == (3, 1, 2)
    sent = sorted(item_number(request_payload(r["json"])) for r in fake_openai.requests)
    assert sent == [0, 2]


def test_cli_translate_401_is_a_clean_error(fake_openai, workdir):
    d = workdir
    _write_jsonl(d / "items.jsonl", [make_item(0)])
    (d / "params.yaml").write_text(yaml.safe_dump(
        {"translate": {"provider": "openai", "llm": {"model": "test-model", "max_retries": 1, "timeout_s": 5}}}))
    fake_openai.responder = lambda req: error(401, "Incorrect API key provided")
    result = CliRunner().invoke(main, _translate_args(d, d / "items.jsonl"))
    text = _output(result)
    assert result.exit_code == 1
    assert "OPENAI_API_KEY" in text and "Traceback" not in text
    assert not (d / "out.jsonl").exists()


def test_cli_translate_portuguese_items_pass_through_with_no_call_and_no_dataset(fake_openai, workdir):
    """--items twice: Portuguese items (a user's exam) skip the API and the translations; English
    ones (Cosmos QA) are translated; the output keeps the order of the files."""
    d = workdir
    pt = [{"id": f"enem{i}", "split": "validation", "label": 4, "context": "", "language": "pt", "source": "enem",
           "subject": "história", "question": f"Qual alternativa completa a frase {i}?",
           "answers": ["um", "dois", "três", "quatro", "cinco"]} for i in range(2)]
    _write_jsonl(d / "pt.jsonl", pt)
    _write_jsonl(d / "items.jsonl", [{**make_item(0), "language": "en", "source": "cosmosqa"}])
    empty = d / "no_translations"
    empty.mkdir()  # load_translations would refuse it ("no .jsonl translation files"): it is never read
    (d / "params.yaml").write_text(yaml.safe_dump(
        {"translate": {"provider": "openai", "llm": {"model": "test-model", "max_retries": 1, "timeout_s": 5}}}))
    fake_openai.responder = good_reply
    args = _translate_args(d, empty)

    # Portuguese items only, provider dataset: no request, no translations read
    (d / "params_ds.yaml").write_text(yaml.safe_dump({"translate": {"provider": "dataset"}}))
    only_pt = [a if a != str(d / "items.jsonl") else str(d / "pt.jsonl") for a in args]
    only_pt[only_pt.index("--params") + 1] = str(d / "params_ds.yaml")
    result = CliRunner().invoke(main, only_pt)
    assert result.exit_code == 0, _output(result)
    assert len(fake_openai.requests) == 0
    out = [json.loads(line) for line in (d / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert out == [{**it, "translated_by": "original"} for it in pt]
    metrics = json.loads((d / "metrics.json").read_text())
    assert (metrics["items"], metrics["translated"], metrics["original"], metrics["api_calls"]) == (2, 2, 2, 0)

    # both files, provider openai: one request, for the English item only
    both = args[:args.index("--items") + 2] + ["--items", str(d / "pt.jsonl")] + args[args.index("--items") + 2:]
    result = CliRunner().invoke(main, both)
    assert result.exit_code == 0, _output(result)
    assert [item_number(request_payload(r["json"])) for r in fake_openai.requests] == [0]
    out = [json.loads(line) for line in (d / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], r["translated_by"], r["language"], r["source"]) for r in out] == [
        ("item00", "openai:test-model", "pt", "cosmosqa"), ("enem0", "original", "pt", "enem"),
        ("enem1", "original", "pt", "enem")]
    metrics = json.loads((d / "metrics.json").read_text())
    assert (metrics["items"], metrics["original"], metrics["api_calls"]) == (3, 2, 1)

    # the same id in both files: an error naming both, before any call
    _write_jsonl(d / "pt.jsonl", [{**pt[0], "id": "item00"}])
    result = CliRunner().invoke(main, both)
    assert result.exit_code == 1
    assert f"{d / 'pt.jsonl'}:1: id 'item00' is also at {d / 'items.jsonl'}:1" in _output(result)
    assert len(fake_openai.requests) == 1
