"""Nothing fails silently, and every failure has a way out that `dvc repro` can take: a short API key
that must not eat replies, synthesize with nothing kept, validation failures re-asked through a
param, malformed batch lines in the ledger, a full disk under the ledger, and a circuit breaker when
the API is down.

A real loopback server (tests/fake_openai.py); the commands run in-process (CliRunner) except where
a real subprocess is the point.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gabarito.cli import main
from tests.fake_openai import Reply
from tests.integration.test_llm_engine import (
    _output,
    _translate_args,
    _write_jsonl,
    good_reply,
    item_number,
    request_payload,
    translation,
)
from tests.integration.test_llm_failures import ids_asked, setup_translate, translate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def out_records(d: Path) -> list[dict]:
    return [json.loads(ln) for ln in (d / "out.jsonl").read_text(encoding="utf-8").splitlines()]


# --- 1. a short key must not eat replies -------------------------------------------------------------
@pytest.mark.parametrize("key", ["local", "e"])
def test_a_short_key_leaves_every_reply_intact(fake_openai, workdir, monkeypatch, key):
    d = workdir
    setup_translate(d, 3)
    monkeypatch.setenv("OPENAI_API_KEY", key)  # README: "for local servers any value works, e.g. local"

    def reply(req):
        tr = translation(item_number(request_payload(req)))
        tr["contexto"] = tr["contexto"].replace("mercado", "localidade")
        return Reply(content=json.dumps(tr, ensure_ascii=False))

    fake_openai.responder = reply
    result = translate(d)
    assert result.exit_code == 0, _output(result)
    out = out_records(d)
    assert [r["context"] for r in out] == [
        translation(n)["contexto"].replace("mercado", "localidade") for n in range(3)]
    assert "***" not in (d / "out.jsonl").read_text() + (d / "ledger/translate.jsonl").read_text()
    # the key still went to the server as the credential
    assert {v for r in fake_openai.requests for h, v in r["headers"].items() if h.lower() == "authorization"} == {f"Bearer {key}"}


# --- 2. synthesize with nothing kept fails, after writing why ---------------------------------------
PAGE = ("Art. 3º A jornada de estágio não poderá ultrapassar seis horas diárias e trinta horas semanais.\n\n"
        "Art. 4º O estagiário terá seguro contra acidentes pessoais contratado pela universidade.")
OFF_TOPIC = [{"Pergunta": "Quanto custa o restaurante universitário?",
              "Resposta": "O almoço custa dois reais e cinquenta centavos."},
             {"Pergunta": "Onde fica a biblioteca central?", "Resposta": "Ao lado do ginásio poliesportivo."}]


def synthesize(d: Path, provider: str, **extra):
    _write_jsonl(d / "pages.jsonl", [{"doc": "reg.pdf", "page": 2, "method": "text", "status": "ok", "text": PAGE}])
    (d / "qa").mkdir(exist_ok=True)
    (d / "qa/pairs.json").write_text(json.dumps(OFF_TOPIC, ensure_ascii=False), encoding="utf-8")
    (d / "params.yaml").write_text(yaml.safe_dump({"synthesize": {
        "provider": provider, "llm": {"model": "m", "max_retries": 0, "timeout_s": 5}, **extra}}))
    return CliRunner().invoke(main, [
        "synthesize", "--pages", "pages.jsonl", "--qa-dir", "qa", "--prompt", str(ROOT / "prompts/synthesize.v2.txt"),
        "--ledger", "ledger.jsonl", "--out", "pairs.jsonl", "--rejected", "rejected.jsonl",
        "--metrics", "metrics.json", "--params", "params.yaml", "--no-progress"])


@pytest.mark.parametrize("provider", ["dataset", "openai"])
def test_synthesize_that_keeps_no_pair_fails_naming_the_counts_and_the_rejects(fake_openai, workdir, provider):
    d = workdir
    fake_openai.responder = lambda req: Reply(content=json.dumps({"pares": [
        {"pergunta": p["Pergunta"], "resposta": p["Resposta"], "trecho": "-", "distratores": []}
        for p in OFF_TOPIC]}, ensure_ascii=False))
    result = synthesize(d, provider)
    text = _output(result)
    assert result.exit_code == 1, text
    assert "synthesize: 2 pairs in, 0 pairs kept out. Every pair was rejected (ungrounded: 2); each one, with " \
           "its reason, is in rejected.jsonl." in text
    assert "Traceback" not in text
    rejected = [json.loads(ln) for ln in (d / "rejected.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["question"], r["reason"]) for r in rejected] == [(p["Pergunta"], "ungrounded") for p in OFF_TOPIC]
    # nothing DVC could cache as a result
    assert not (d / "pairs.jsonl").exists() and not (d / "metrics.json").exists()
    assert fake_openai.chat_calls == (1 if provider == "openai" else 0)


# --- 3. validation failures: a way out that `dvc repro` can take ------------------------------------
def test_validation_failures_are_asked_again_through_the_param_paying_only_for_them(fake_openai, workdir):
    d = workdir
    items = setup_translate(d, 20)
    bad = {2, 9, 17}  # 3/20 = 15% > 5%: the stage fails
    fake_openai.responder = lambda req: (Reply(content="{}") if item_number(request_payload(req)) in bad
                                         else good_reply(req))
    result = translate(d)
    text = _output(result)
    assert result.exit_code == 1, text
    assert "3/20 LLM jobs failed" in text
    assert ("3 items failed validation after their re-asks and are kept in the ledger as final: to ask them again "
            "set translate.retry_failed: true (`dvc exp run -S translate.retry_failed=true`, or edit params.yaml "
            "and `dvc repro`), or run `gabarito translate ... --retry-failed` and then `dvc commit translate`."
            ) in " ".join(text.split())

    # the server is healthy again: what `dvc repro` reruns is final, so nothing is asked
    fake_openai.responder = good_reply
    calls = fake_openai.chat_calls
    again = translate(d)
    assert again.exit_code == 1 and fake_openai.chat_calls == calls, _output(again)

    # the param (what `dvc exp run -S translate.retry_failed=true` writes) asks again only the three
    params = yaml.safe_load((d / "params.yaml").read_text())
    params["translate"]["retry_failed"] = True
    (d / "params.yaml").write_text(yaml.safe_dump(params))
    fake_openai.requests.clear()
    fixed = translate(d)
    assert fixed.exit_code == 0, _output(fixed)
    assert sorted(ids_asked(fake_openai)) == [f"item{i:02d}" for i in sorted(bad)]
    assert [r["id"] for r in out_records(d)] == [it["id"] for it in items]
    metrics = json.loads((d / "metrics.json").read_text())
    assert (metrics["api_calls"], metrics["cache_hits"], metrics["failures"]) == (3, 17, 0)


def test_synthesize_asks_a_chunk_whose_reply_failed_validation_again_through_the_param(fake_openai, workdir):
    d = workdir
    fake_openai.responder = lambda req: Reply(content="{}")
    result = synthesize(d, "openai")
    text = " ".join(_output(result).split())
    assert result.exit_code == 1 and "synthesize: 1/1 LLM jobs failed" in text, text
    assert "1 chunks failed validation after their re-asks and are kept in the ledger as final" in text
    assert "synthesize.retry_failed: true (`dvc exp run -S synthesize.retry_failed=true`" in text
    assert "`gabarito synthesize ... --retry-failed` and then `dvc commit synthesize`" in text
    asked = fake_openai.chat_calls  # 1 + max_reasks

    fake_openai.responder = lambda req: Reply(content=json.dumps({"pares": [{
        "pergunta": "Qual é a jornada máxima de estágio?", "resposta": "Seis horas diárias e trinta horas semanais.",
        "trecho": "não poderá ultrapassar seis horas diárias e trinta horas semanais", "distratores": []}]},
        ensure_ascii=False))
    assert synthesize(d, "openai").exit_code == 1 and fake_openai.chat_calls == asked  # final: not asked
    fixed = synthesize(d, "openai", retry_failed=True)
    assert fixed.exit_code == 0, _output(fixed)
    assert fake_openai.chat_calls == asked + 1
    kept = [json.loads(ln) for ln in (d / "pairs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [k["question"] for k in kept if k["kind"] == "open"] == ["Qual é a jornada máxima de estágio?"]


# --- 4. malformed batch bookkeeping lines: file:line, not KeyError ----------------------------------
@pytest.mark.parametrize(("line", "message"), [
    ('{"key": "batch:zzz", "kind": "batch"}',
     "batch line without a valid 'batch_id' (a text), 'keys' (a list of texts), 'status' (a text)"),
    ('{"key": "batch:b", "kind": "batch", "batch_id": "b", "keys": ["k"], "status": "weird"}',
     "batch line with status 'weird', expected one of submitted, completed, failed, expired, cancelled"),
    ('{"key": "upload:f", "kind": "upload", "file_id": "f", "keys": [1], "status": "uploaded"}',
     "upload line without a valid 'keys' (a list of texts)"),
    ('{"key": "reply:k", "kind": "batch_reply", "job_key": "k"}',
     "batch_reply line without a valid 'raw' (a text), 'finish' (a text)"),
    ('{"key": "x", "kind": "mystery"}', "ledger line of unknown kind 'mystery'"),
])
def test_a_malformed_batch_line_is_named_by_file_and_line(fake_openai, workdir, line, message):
    d = workdir
    setup_translate(d, 2)
    params = yaml.safe_load((d / "params.yaml").read_text())
    params["translate"]["provider"] = "batch"
    (d / "params.yaml").write_text(yaml.safe_dump(params))
    ledger = d / "ledger/translate.jsonl"
    ledger.parent.mkdir()
    ledger.write_text('{"key": "upload:file-9", "kind": "upload", "file_id": "file-9", "keys": ["a"], '
                      '"status": "batched"}\n' + line + "\n")
    fake_openai.responder = good_reply
    result = translate(d)
    text = _output(result)
    assert result.exit_code == 1, text
    assert f"Error: {ledger}:2: {message}" in text and "Remove that line and rerun" in text
    assert "Traceback" not in text and "KeyError" not in text
    assert fake_openai.requests == []  # stopped before anything was sent


# --- 5. a full disk under the ledger ------------------------------------------------------------------


def long_reply(req) -> Reply:
    # ~6 KB a ledger line: the 64 KiB disk is full after about ten
    n = item_number(request_payload(req))
    tr = translation(n)
    tr["contexto"] += " Eu não sabia o que fazer com a minha vida." * 140
    return Reply(content=json.dumps(tr, ensure_ascii=False))


def test_a_full_disk_under_the_ledger_names_the_ledger_and_the_rerun_pays_only_for_the_rest(
        fake_openai, workdir, tiny_tmpfs):
    d = workdir
    items = setup_translate(d, 20, concurrency=1)
    ledger = tiny_tmpfs / "translate.jsonl"
    args = [a if a != str(d / "ledger/translate.jsonl") else str(ledger) for a in _translate_args(d, d / "none.jsonl")]
    fake_openai.responder = long_reply
    result = CliRunner().invoke(main, args)
    text = _output(result)
    assert result.exit_code == 1, text
    assert f"Error: {ledger}: no space left on the device" in text, text
    assert "an output file" not in text and "nothing half written" not in text and "Traceback" not in text
    assert not (d / "out.jsonl").exists()
    complete = ledger.read_text(encoding="utf-8").count("\n")
    assert 0 < complete < 20
    asked = fake_openai.chat_calls

    subprocess.run(["mount", "-o", "remount,size=1m", str(tiny_tmpfs)], check=True)  # space freed
    rerun = CliRunner().invoke(main, args)
    assert rerun.exit_code == 0, _output(rerun)
    assert [r["id"] for r in out_records(d)] == [it["id"] for it in items]
    # every complete line was kept: the rerun asks only for the rest (the item whose line did not fit,
    # and one call that may have been in flight at concurrency 1, were paid for twice)
    assert fake_openai.chat_calls - asked == 20 - complete
    assert complete + 1 <= asked <= complete + 2


# --- 6. a circuit breaker when the API is down ----------------------------------------------------------
class DroppingServer:
    """A loopback port that accepts each connection and closes it at once (an API behind a dead
    proxy): the client gets a connection error; ``accepted`` counts the attempts."""

    def __init__(self):
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self):
        self.sock.close()


N, K, RETRIES, CONCURRENCY = 100, 5, 1, 4


@pytest.mark.parametrize("down", ["500", "429", "dropped"])
def test_with_the_api_down_the_breaker_bounds_the_calls_and_a_healthy_rerun_completes(
        fake_openai, workdir, monkeypatch, down):
    d = workdir
    items = setup_translate(d, N, abort_after_consecutive_failures=K, max_retries=RETRIES, concurrency=CONCURRENCY)
    dropping = DroppingServer()
    if down == "dropped":
        monkeypatch.setenv("OPENAI_BASE_URL", dropping.base_url)
    status = 429 if down == "429" else 500
    fake_openai.responder = lambda req: Reply(status=status, headers={"retry-after": "0"},
                                              error={"error": {"message": "upstream unavailable", "type": "server_error"}})
    try:
        result = translate(d)
    finally:
        dropping.close()
    text = _output(result)
    assert result.exit_code == 1, text
    calls = dropping.accepted if down == "dropped" else fake_openai.chat_calls
    # bounded by the breaker, not by the items: N x (1 + max_retries) = 200 without it
    assert calls <= (K + CONCURRENCY) * (1 + RETRIES), calls
    where = dropping.base_url if down == "dropped" else fake_openai.base_url
    flat = " ".join(text.split())
    # K in a row tripped it; the jobs in flight then ended too, without further retries
    m = re.search(rf"the API at {re.escape(where)}/ looks down: (\d+) jobs in a row failed on the network or the "
                  rf"server's limits after their retries \(llm.abort_after_consecutive_failures = {K}\)\. "
                  r"Last error \(item\d\d\): gave up after 1 retries: ", flat)
    assert m and K <= int(m.group(1)) < K + CONCURRENCY, flat
    assert ("APIConnectionError" if down == "dropped" else ("RateLimitError" if down == "429" else
                                                             "InternalServerError")) in flat
    assert "jobs were not attempted" in flat and "Traceback" not in text
    assert not (d / "out.jsonl").exists()
    # nothing recorded as a failure: the ledger is empty, so the rerun asks every item
    assert (d / "ledger/translate.jsonl").read_text() == ""

    fake_openai.requests.clear()
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    fake_openai.responder = good_reply
    rerun = translate(d)
    assert rerun.exit_code == 0, _output(rerun)
    assert sorted(ids_asked(fake_openai)) == [it["id"] for it in items]
    assert [r["id"] for r in out_records(d)] == [it["id"] for it in items]


def test_a_null_breaker_lets_every_item_spend_its_retries(fake_openai, workdir):
    d = workdir
    setup_translate(d, 12, abort_after_consecutive_failures=None, max_retries=RETRIES, concurrency=CONCURRENCY)
    fake_openai.responder = lambda req: Reply(status=500, headers={"retry-after": "0"})
    result = translate(d)
    text = _output(result)
    assert result.exit_code == 1 and "12/12 LLM jobs failed" in text and "looks down" not in text, text
    assert fake_openai.chat_calls == 12 * (1 + RETRIES)


def test_answers_between_failures_keep_the_breaker_closed(fake_openai, workdir):
    # every other item fails on 500s: never K in a row, so every item is tried (the share decides)
    d = workdir
    setup_translate(d, 20, abort_after_consecutive_failures=2, max_retries=0, concurrency=1)
    fake_openai.responder = lambda req: (Reply(status=500) if item_number(request_payload(req)) % 2
                                         else good_reply(req))
    result = translate(d)
    text = _output(result)
    assert result.exit_code == 1 and "10/20 LLM jobs failed" in text and "looks down" not in text, text
    assert fake_openai.chat_calls == 20
