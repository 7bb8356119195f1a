"""Nothing fails silently: `gabarito translate` / `synthesize` against an API that is down, rate
limits everything, or refuses one over-long item; the ledger's lock; malformed ledger lines.

A real loopback server (tests/fake_openai.py); the commands run in-process (CliRunner) except where
two processes are the point.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gabarito.cli import main
from gabarito.io import InputError
from gabarito.llm import Ledger, LedgerLocked
from tests.fake_openai import Reply
from tests.integration.test_llm_engine import (
    _output,
    _translate_args,
    _write_jsonl,
    error,
    good_reply,
    item_number,
    make_item,
    request_payload,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def setup_translate(d: Path, n: int, **llm) -> list[dict]:
    items = [make_item(i) for i in range(n)]
    _write_jsonl(d / "items.jsonl", items)
    (d / "none.jsonl").write_text("")
    (d / "params.yaml").write_text(yaml.safe_dump({"translate": {"provider": "openai", "llm": {
        "model": "test-model", "max_retries": 1, "timeout_s": 5, "concurrency": 4, **llm}}}))
    return items


def translate(d: Path):
    return CliRunner().invoke(main, _translate_args(d, d / "none.jsonl"))


def ids_asked(server) -> list[str]:
    return [f"item{item_number(request_payload(r['json'])):02d}" for r in server.requests
            if r["path"].endswith("/chat/completions")]


# --- an API that answers nothing useful ------------------------------------------------------------
@pytest.mark.parametrize("status", [429, 500])
def test_an_api_failing_everything_fails_the_stage_naming_items_and_reasons(fake_openai, workdir, status):
    d = workdir
    setup_translate(d, 6)
    fake_openai.responder = lambda req: Reply(status=status, headers={"retry-after": "0"},
                                              error={"error": {"message": "try later", "type": "server_error"}})
    result = translate(d)
    text = _output(result)
    assert result.exit_code == 1, text
    assert "translate: 6/6 LLM jobs failed (100.0%, more than translate.llm.max_failure_share = 5.0%)" in text
    assert "item00: gave up after 1 retries: " in text and "item04: " in text and "... and 1 more" in text
    assert "Traceback" not in text
    # nothing a later stage (or DVC's cache) could take for a result; the reasons are on disk
    assert not (d / "out.jsonl").exists() and not (d / "metrics.json").exists()
    assert [json.loads(ln)["id"] for ln in (d / "failures.jsonl").read_text().splitlines()] == [
        f"item{i:02d}" for i in range(6)]


def test_an_unreachable_api_fails_the_stage(workdir, monkeypatch):
    d = workdir
    setup_translate(d, 3)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OPENAI_API_KEY", "local")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    result = translate(d)
    text = _output(result)
    assert result.exit_code == 1, text
    assert "3/3 LLM jobs failed" in text and "APIConnectionError" in text and "item02:" in text
    assert not (d / "out.jsonl").exists()


def test_failures_over_the_share_fail_and_the_rerun_pays_only_for_them(fake_openai, workdir):
    d = workdir
    items = setup_translate(d, 20)
    down = {3, 11}  # 2/20 = 10% > 5%

    def flaky(req):
        if item_number(request_payload(req)) in down:
            return Reply(status=503, headers={"retry-after": "0"})
        return good_reply(req)

    fake_openai.responder = flaky
    result = translate(d)
    text = _output(result)
    assert result.exit_code == 1, text
    assert "2/20 LLM jobs failed (10.0%" in text and "item03: " in text and "item11: " in text
    assert not (d / "out.jsonl").exists()
    with Ledger(d / "ledger/translate.jsonl") as led:  # what succeeded stays paid for
        assert sorted(e["id"] for e in led.entries.values()) == sorted(
            it["id"] for i, it in enumerate(items) if i not in down)

    fake_openai.requests.clear()
    fake_openai.responder = good_reply
    rerun = translate(d)
    assert rerun.exit_code == 0, _output(rerun)
    assert sorted(ids_asked(fake_openai)) == ["item03", "item11"]  # only the failed items were asked again
    out = [json.loads(ln) for ln in (d / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in out] == [it["id"] for it in items]
    metrics = json.loads((d / "metrics.json").read_text())
    assert (metrics["api_calls"], metrics["cache_hits"], metrics["failures"]) == (2, 18, 0)


def test_failures_within_the_share_pass_and_are_listed(fake_openai, workdir):
    d = workdir
    setup_translate(d, 4, max_failure_share=0.25)
    fake_openai.responder = lambda req: (Reply(status=500, headers={"retry-after": "0"})
                                         if item_number(request_payload(req)) == 2 else good_reply(req))
    result = translate(d)
    assert result.exit_code == 0, _output(result)
    assert [json.loads(ln)["id"] for ln in (d / "failures.jsonl").read_text().splitlines()] == ["item02"]
    assert [json.loads(ln)["id"] for ln in (d / "out.jsonl").read_text().splitlines()] == ["item00", "item01",
                                                                                           "item03"]


# --- one item the API refuses (400) ------------------------------------------------------------------
def test_an_over_long_item_is_a_failure_naming_its_id_and_the_others_are_translated(fake_openai, workdir):
    d = workdir
    items = setup_translate(d, 3, max_failure_share=0.5)
    items[1] = {**items[1], "context": "word " * 1_000_000}  # a 5 MB context
    _write_jsonl(d / "items.jsonl", items)
    fake_openai.responder = lambda req: (
        error(400, "This model's maximum context length is 128000 tokens.", code="context_length_exceeded")
        if len(req["messages"][-1]["content"]) > 1_000_000 else good_reply(req))
    result = translate(d)
    assert result.exit_code == 0, _output(result)
    (failed,) = [json.loads(ln) for ln in (d / "failures.jsonl").read_text().splitlines()]
    assert failed["id"] == "item01"
    assert failed["reason"] == ("the API rejected the request (400): This model's maximum context length is "
                                "128000 tokens.")
    assert [json.loads(ln)["id"] for ln in (d / "out.jsonl").read_text().splitlines()] == ["item00", "item02"]

    # with the default share, the same run fails naming the item
    (d / "params.yaml").write_text(yaml.safe_dump({"translate": {"provider": "openai", "llm": {
        "model": "test-model", "max_retries": 1, "timeout_s": 5}}}))
    result = translate(d)
    text = _output(result)
    assert result.exit_code == 1 and "1/3 LLM jobs failed" in text and "item01: the API rejected" in text


@pytest.mark.parametrize("status, message", [
    (413, "413 Request Entity Too Large"),  # nginx in front of the server: client_max_body_size (1 MB)
    (422, "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 8192."),  # TGI
])
def test_an_item_refused_by_a_proxy_or_tgi_is_a_failure_of_that_item(fake_openai, workdir, status, message):
    # a 413 or 422 is about the request, as a 400 is: it used to stop the whole stage with no item named
    d = workdir
    items = setup_translate(d, 3, max_failure_share=0.5)
    items[1] = {**items[1], "context": "word " * 1_000_000}  # a 5 MB context
    _write_jsonl(d / "items.jsonl", items)
    fake_openai.responder = lambda req: (error(status, message) if len(req["messages"][-1]["content"]) > 1_000_000
                                         else good_reply(req))
    result = translate(d)
    assert result.exit_code == 0, _output(result)
    (failed,) = [json.loads(ln) for ln in (d / "failures.jsonl").read_text().splitlines()]
    assert (failed["id"], failed["reason"]) == ("item01", f"the API rejected the request ({status}): {message}")
    assert [json.loads(ln)["id"] for ln in (d / "out.jsonl").read_text().splitlines()] == ["item00", "item02"]
    assert len(ids_asked(fake_openai)) == 3  # refused once, not retried


def test_a_key_spelled_with_a_json_escape_reaches_no_output_and_a_rerun_writes_the_same_bytes(fake_openai, workdir):
    # the reply holds the key only once parsed ("\u0073k-..."): the ledger line was scrubbed, the translation
    # written from the same result was not (and the rerun, read from the ledger, wrote other bytes)
    d = workdir
    key = os.environ["OPENAI_API_KEY"]
    setup_translate(d, 2)
    fake_openai.echo_headers = True

    def echoing(req, headers):
        tr = json.loads(good_reply(req).content)
        tr["pergunta"] += f" ({headers['authorization'].split()[-1]})"
        text = json.dumps(tr, ensure_ascii=False)
        return Reply(content=text.replace(key, "\\u%04x" % ord(key[0]) + key[1:]))

    fake_openai.responder = echoing
    result = translate(d)
    assert result.exit_code == 0, _output(result)
    first = (d / "out.jsonl").read_bytes()
    assert key.encode() not in first
    assert [json.loads(ln)["question"] for ln in first.decode().splitlines()] == [
        "Por que o narrador foi ao mercado número 0? (***)", "Por que o narrador foi ao mercado número 1? (***)"]
    rerun = translate(d)
    assert rerun.exit_code == 0, _output(rerun)
    assert (d / "out.jsonl").read_bytes() == first


# --- synthesize --------------------------------------------------------------------------------------
def test_synthesize_fails_loudly_when_the_api_fails_every_chunk(fake_openai, workdir):
    d = workdir
    pages = [{"doc": "reg.pdf", "page": i, "status": "ok", "method": "text", "quality": 1.0,
              "text": f"Art. {i}. O aluno deve cumprir {i * 10} horas de estágio supervisionado no curso."}
             for i in range(1, 4)]
    _write_jsonl(d / "pages.jsonl", pages)
    (d / "qa").mkdir()
    (d / "params.yaml").write_text(yaml.safe_dump({"synthesize": {"provider": "openai", "chunk_tokens": 50,
                                                                  "chunk_overlap_tokens": 0, "llm": {
                                                                      "model": "test-model", "max_retries": 0}}}))
    fake_openai.responder = lambda req: Reply(status=500)
    args = ["synthesize", "--pages", "pages.jsonl", "--qa-dir", "qa", "--prompt",
            str(ROOT / "prompts/synthesize.v2.txt"), "--ledger", "ledger.jsonl", "--out", "out.jsonl",
            "--rejected", "rejected.jsonl", "--metrics", "metrics.json", "--params", "params.yaml", "--no-progress"]
    result = CliRunner().invoke(main, args)
    text = _output(result)
    assert result.exit_code == 1, text
    assert "synthesize: 1/1 LLM jobs failed" in text and "reg.pdf" in text and "gave up after 0 retries" in text
    assert not (d / "out.jsonl").exists() and not (d / "metrics.json").exists()


# --- the ledger's lock ---------------------------------------------------------------------------------
HOLD = """
import sys, time
from gabarito.llm import Ledger
led = Ledger(sys.argv[1])
print("locked", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path):
    """Another process holding tmp_path/ledger/translate.jsonl open, as a stage left running would."""
    path = tmp_path / "ledger" / "translate.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_writer_gets_a_message_naming_the_ledger_and_the_pid(holder, tmp_path):
    path = tmp_path / "ledger" / "translate.jsonl"
    with pytest.raises(LedgerLocked) as exc:
        Ledger(path)
    assert str(exc.value).startswith(f"{path} is in use by process {holder.pid} ")
    assert f"kill {holder.pid}" in str(exc.value)
    holder.kill()
    holder.wait()
    with Ledger(path) as led:  # the lock went with the process
        led.put({"key": "k", "id": "x", "status": "ok", "result": {}})


def test_translate_beside_a_running_translate_stops_before_any_call(holder, fake_openai, workdir):
    d = workdir
    setup_translate(d, 3)
    fake_openai.responder = good_reply
    result = translate(d)
    text = _output(result)
    assert result.exit_code == 1
    assert f"ledger/translate.jsonl is in use by process {holder.pid}" in text and "Traceback" not in text
    assert fake_openai.requests == [] and not (d / "out.jsonl").exists()


# --- malformed ledger lines ----------------------------------------------------------------------------
OK = {"key": "a" * 64, "id": "item00", "status": "ok",
      "result": {"context": "c", "question": "q", "answers": ["1", "2", "3", "4"]}}


@pytest.mark.parametrize(("line", "message"), [
    ('{"id": "item00", "status": "ok", "result": {}}', "ledger line without a 'key'"),
    ('["not", "an", "object"]', "a ledger line must be a JSON object, this one is a list"),
    ('{"key": "k", "id": "item00", "status": "ok"}', "ledger line with status 'ok' but no 'result' object"),
    ('{"key": "k", "id": "item00", "status": "maybe"}', "ledger line with status 'maybe', expected 'ok' or 'failed'"),
    ('{"key": "k", "id": "item00", "status": "ok", "resu', "corrupt ledger line"),
    # a failure the stage would show and write (a KeyError traceback, or a number in the failures file)
    ('{"key": "k", "id": "item00", "status": "failed"}', "ledger line with status 'failed' but no 'reason' text"),
    ('{"key": "k", "id": "item00", "status": "failed", "reason": 5}', "ledger line with status 'failed' but no 'reason'"),
    ('{"key": "k", "id": "item00", "status": "failed", "reason": "r", "raw": ["x"]}', "ledger line with status 'failed' but no 'reason' text (and 'raw', if given, a text)"),
])
def test_a_malformed_ledger_line_is_named_by_file_and_line(tmp_path, line, message):
    path = tmp_path / "ledger.jsonl"
    path.write_text(json.dumps(OK) + "\n\n" + line + "\n")
    with pytest.raises(InputError) as exc:
        Ledger(path)
    assert str(exc.value).startswith(f"{path}:3: {message}")
    assert "Remove that line" in str(exc.value)


def test_a_torn_last_line_is_still_cut_off_quietly(tmp_path):
    path = tmp_path / "ledger.jsonl"
    path.write_text(json.dumps(OK) + "\n" + '{"key": "b", "st')
    with Ledger(path) as led:
        assert list(led.entries) == [OK["key"]]
    assert path.read_text() == json.dumps(OK) + "\n"


def test_a_stored_translation_without_answers_names_its_ledger_line(fake_openai, workdir):
    d = workdir
    setup_translate(d, 2)
    fake_openai.responder = good_reply
    assert translate(d).exit_code == 0
    path = d / "ledger/translate.jsonl"
    lines = path.read_text().splitlines()
    broken = json.loads(lines[1])
    del broken["result"]["answers"]
    lines[1] = json.dumps(broken, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n")
    result = translate(d)
    text = _output(result)
    assert result.exit_code == 1 and "Traceback" not in text
    assert f"ledger/translate.jsonl:2: the stored translation of '{broken['id']}' needs context, question and " \
           "answers" in text
    assert len(fake_openai.requests) == 2  # nothing asked again


# --- base_url with credentials ---------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["http://user:pass@127.0.0.1:8000/v1", "user:pass@127.0.0.1:8000/v1",
                                 "https://example.openai.azure.com/v1?api-key=abc",
                                 "https://example.azurewebsites.net/api?code=abc"])
def test_a_base_url_with_a_credential_is_refused(workdir, url):
    d = workdir
    setup_translate(d, 1, base_url=url)
    result = translate(d)
    text = _output(result)
    assert result.exit_code == 1 and "translate.llm.base_url: Value error, base_url '" in text
    assert "is refused" in text and "Traceback" not in text
    assert "pass" not in text.replace("password", "") and "abc" not in text
