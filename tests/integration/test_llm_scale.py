"""LLM calls at scale: the Batch API provider, rate limits, cost, and surviving `kill -9`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from gabarito.llm import Engine, Ledger, RateLimiter
from gabarito.params import LLMParams
from stages.translate import build_job
from tests.fake_openai import Reply
from tests.integration.test_llm_engine import (
    item_number,
    make_item,
    request_payload,
    translation,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = (ROOT / "prompts/translate.v2.txt").read_text(encoding="utf-8")


def good(req: dict) -> Reply:
    return Reply(content=json.dumps(translation(item_number(request_payload(req))), ensure_ascii=False),
                 prompt_tokens=100, completion_tokens=40)


_OPEN: dict[Path, Ledger] = {}


def engine(tmp_path: Path, **kw) -> Engine:
    """An engine on tmp_path/ledger.jsonl; one made earlier on that ledger is a run that has ended,
    so its ledger is closed (releasing the lock, as a process's end does)."""
    params = LLMParams(model="test-model", max_retries=2, timeout_s=5, batch_poll_interval_s=0.01, **kw)
    path = tmp_path / "ledger.jsonl"
    if path in _OPEN:
        _OPEN.pop(path).close()
    _OPEN[path] = Ledger(path)
    return Engine(params, template=TEMPLATE, ledger=_OPEN[path], progress=False, backoff_base=0.01)


def crash_in(eng: Engine, jobs, method: str, dying) -> None:
    """Run ``eng`` over ``jobs`` in batch mode with client.batches.<method> replaced by ``dying(original)``,
    which raises KeyboardInterrupt somewhere: the process dies there, its ledger as it was left."""
    async def run(client, todo, results):
        setattr(client.batches, method, dying(getattr(client.batches, method)))
        await Engine._run_batches(eng, client, todo, results)

    eng._run_batches = run
    with pytest.raises(KeyboardInterrupt):
        eng.run(jobs, batch=True)
    eng.ledger.close()


def posts(server, suffix: str) -> int:
    return sum(1 for r in server.requests if r.get("method") == "POST" and r["path"].endswith(suffix))


# --- Batch API -------------------------------------------------------------------------------------
def test_batch_provider_uploads_polls_downloads_and_validates(tmp_path, fake_openai):
    bad = {3}  # item 3 first comes back with three answers: re-asked through the chat API

    def responder(req):
        n = item_number(request_payload(req))
        if n in bad and len(req["messages"]) == 2:
            tr = translation(n)
            tr["alternativas"] = tr["alternativas"][:3]
            return Reply(content=json.dumps(tr, ensure_ascii=False), prompt_tokens=100, completion_tokens=40)
        return good(req)

    fake_openai.responder = responder
    items = [make_item(i) for i in range(5)]
    eng = engine(tmp_path, batch_max_requests=2, input_price_per_1m=1.0, output_price_per_1m=4.0)
    results = eng.run([build_job(it, TEMPLATE) for it in items], batch=True)
    assert all(r["status"] == "ok" for r in results.values())
    assert [results[it["id"]]["result"]["question"] for it in items] == \
        [translation(i)["pergunta"] for i in range(5)]
    # 5 requests split by batch_max_requests=2 into 3 uploads and 3 batches
    assert posts(fake_openai, "/files") == 3 and posts(fake_openai, "/batches") == 3
    uploaded = [json.loads(line) for f in fake_openai.files.values() if f["purpose"] == "batch"
                for line in f["content"].decode().splitlines()]
    assert sorted(u["custom_id"] for u in uploaded) == sorted(eng.key(build_job(it, TEMPLATE)) for it in items)
    assert {u["url"] for u in uploaded} == {"/v1/chat/completions"}
    # the invalid batch reply was re-asked once, directly, with the validation error
    assert eng.stats.reasks == 1 and posts(fake_openai, "/chat/completions") == 1
    assert "4 alternativas" in fake_openai.requests[-1]["json"]["messages"][-1]["content"]
    m = eng.metrics()
    assert m["api_calls"] == 6 and m["prompt_tokens"] == 600 and m["completion_tokens"] == 240
    # half price in the Batch API: (600 * 1 + 240 * 4) / 1e6 / 2
    assert m["estimated_cost"] == pytest.approx(0.00078)


def test_batch_errors_and_expiry_fall_back_to_direct_calls(tmp_path, fake_openai):
    calls = Counter()

    def responder(req):
        n = item_number(request_payload(req))
        calls[n] += 1
        if n == 1 and calls[n] == 1:  # first attempt (inside the batch) fails
            return Reply(status=500)
        return good(req)

    fake_openai.responder = responder
    eng = engine(tmp_path)
    results = eng.run([build_job(make_item(i), TEMPLATE) for i in range(3)], batch=True)
    assert all(r["status"] == "ok" for r in results.values())
    assert eng.stats.retries == 1 and posts(fake_openai, "/chat/completions") == 1


def test_a_batch_failed_as_a_whole_stops_instead_of_going_direct_at_full_price(tmp_path, fake_openai):
    from gabarito.llm import FatalAPIError

    fake_openai.responder = good
    fake_openai.batch_final_status = "failed"
    fake_openai.batch_errors = [{"code": "invalid_model", "message": "model test-model is not available", "line": None,
                                 "param": "body.model"}]
    jobs = [build_job(make_item(i), TEMPLATE) for i in range(3)]
    first = engine(tmp_path)
    with pytest.raises(FatalAPIError, match=r"failed batch batch_1 as a whole \(invalid_model: model test-model is "
                                            r"not available\).*Fix the cause and rerun"):
        first.run(jobs, batch=True)
    first.ledger.close()
    assert posts(fake_openai, "/chat/completions") == 0  # nothing went to the chat API
    fake_openai.batch_final_status = "completed"
    results = engine(tmp_path).run(jobs, batch=True)  # the rerun sends a new batch, not the failed one again
    assert all(r["status"] == "ok" for r in results.values())
    assert posts(fake_openai, "/batches") == 2


def test_a_submitted_batch_is_resumed_not_paid_twice(tmp_path, fake_openai):
    fake_openai.responder = good
    fake_openai.batch_polls_until_done = 10**9  # never finishes during the first run
    jobs = [build_job(make_item(i), TEMPLATE) for i in range(4)]
    first = engine(tmp_path)
    first.params.__dict__["batch_poll_interval_s"] = 0.01

    async def crash(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies while polling

    with pytest.raises(KeyboardInterrupt):
        original = first._run_batches

        async def run_then_crash(client, todo, results):
            client.batches.retrieve = crash
            await original(client, todo, results)

        first._run_batches = run_then_crash
        first.run(jobs, batch=True)
    first.ledger.close()
    assert posts(fake_openai, "/batches") == 1

    fake_openai.batch_polls_until_done = 1
    second = engine(tmp_path)
    results = second.run(jobs, batch=True)
    assert all(r["status"] == "ok" for r in results.values())
    assert posts(fake_openai, "/batches") == 1 and posts(fake_openai, "/files") == 1  # nothing resubmitted
    assert second.stats.api_calls == 4


def test_batch_api_blips_are_retried_and_a_lost_creation_reply_pays_once(tmp_path, fake_openai):
    fake_openai.responder = good
    fake_openai.batch_lost_replies = 1  # the batch is created, the reply is a 502
    fake_openai.inject("GET /batches/{id}", Reply(status=503))
    fake_openai.inject("GET /files/{id}/content", Reply(status=500), Reply(status=429, headers={"retry-after": "0"}))
    eng = engine(tmp_path)
    results = eng.run([build_job(make_item(i), TEMPLATE) for i in range(3)], batch=True)
    assert all(r["status"] == "ok" for r in results.values())
    assert len(fake_openai.batches) == 1  # the lost reply was found through GET /batches, not created again
    assert posts(fake_openai, "/batches") == 1 and eng.stats.retries == 4
    assert posts(fake_openai, "/chat/completions") == 0


def test_a_batch_creation_reply_lost_on_the_last_try_is_found_too(tmp_path, fake_openai):
    fake_openai.responder = good
    fake_openai.batch_lost_replies = 1
    eng = engine(tmp_path)
    eng.params = eng.params.model_copy(update={"max_retries": 0})  # no retry: looked for before giving up
    results = eng.run([build_job(make_item(i), TEMPLATE) for i in range(2)], batch=True)
    assert all(r["status"] == "ok" for r in results.values())
    assert len(fake_openai.batches) == 1


@pytest.mark.parametrize("created", [False, True], ids=["died-before-create", "died-after-create"])
def test_a_run_that_died_between_upload_and_batch_reuses_the_upload_and_the_batch(tmp_path, fake_openai, created):
    fake_openai.responder = good
    jobs = [build_job(make_item(i), TEMPLATE) for i in range(3)]

    def dying(original):
        async def create(*args, **kwargs):
            if created:
                await original(*args, **kwargs)  # the batch exists; its id never reaches the ledger
            raise KeyboardInterrupt
        return create

    crash_in(engine(tmp_path), jobs, "create", dying)
    results = engine(tmp_path).run(jobs, batch=True)
    assert all(r["status"] == "ok" for r in results.values())
    assert posts(fake_openai, "/files") == 1  # the upload was not repeated
    assert len(fake_openai.batches) == 1  # and there is one batch: found (died after) or created (died before)
    assert posts(fake_openai, "/chat/completions") == 0


def test_a_batch_api_that_stays_down_is_a_message_and_the_rerun_resumes(tmp_path, fake_openai):
    from gabarito.io import InputError

    fake_openai.responder = good
    fake_openai.inject("GET /batches/{id}", *[Reply(status=500)] * 3)  # 1 try + max_retries=2
    jobs = [build_job(make_item(i), TEMPLATE) for i in range(3)]
    first = engine(tmp_path)
    with pytest.raises(InputError, match=r"status of batch batch_1 after 2 retries .*Rerun the stage"):
        first.run(jobs, batch=True)
    first.ledger.close()
    second = engine(tmp_path)
    results = second.run(jobs, batch=True)
    assert all(r["status"] == "ok" for r in results.values())
    assert posts(fake_openai, "/batches") == 1 and posts(fake_openai, "/files") == 1  # polled, not resubmitted


def test_an_api_key_echoed_in_error_bodies_reaches_no_message_or_failure_record(tmp_path, fake_openai):
    from gabarito.llm import FatalAPIError

    key = os.environ["OPENAI_API_KEY"]
    echo = {"error": {"message": f"upstream rejected key {key}", "type": "server_error"}}
    fake_openai.responder = lambda req: Reply(status=500, error=echo)
    results = engine(tmp_path).run([build_job(make_item(0), TEMPLATE)])
    (failed,) = results.values()
    assert failed["status"] == "failed" and "upstream rejected key ***" in failed["reason"]
    assert key not in failed["reason"]
    fake_openai.responder = lambda req: Reply(status=400, error={**echo, "type": "invalid_request_error"})
    (rejected,) = engine(tmp_path / "b").run([build_job(make_item(1), TEMPLATE)]).values()
    assert "(400): upstream rejected key ***" in rejected["reason"] and key not in rejected["reason"]
    fake_openai.responder = lambda req: Reply(status=403, error={**echo, "type": "invalid_request_error"})
    with pytest.raises(FatalAPIError) as exc:
        engine(tmp_path / "c").run([build_job(make_item(1), TEMPLATE)])
    assert "rejected key ***" in str(exc.value) and key not in str(exc.value)


# --- rate limits -----------------------------------------------------------------------------------
def test_rate_limiter_spaces_requests_and_tokens(monkeypatch):
    clock = {"now": 0.0}
    slept: list[float] = []

    async def fake_sleep(seconds):
        slept.append(seconds)
        clock["now"] += seconds

    monkeypatch.setattr(time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(asyncio, "sleep", fake_sleep)

    async def go(limiter, n, tokens):
        for _ in range(n):
            await limiter.acquire(tokens)

    # 120 requests/min: a bucket of one second's worth (2) goes at once, then one every 0.5 s
    asyncio.run(go(RateLimiter(120, None), 5, 10))
    assert clock["now"] == pytest.approx(1.5)
    # 6000 tokens/min = 100 tokens/s: the first 300-token request goes at once, then one every 3 s
    clock["now"], slept[:] = 0.0, []
    asyncio.run(go(RateLimiter(None, 6000), 5, 300))
    assert clock["now"] == pytest.approx(12.0)
    # no limits: never waits
    clock["now"], slept[:] = 0.0, []
    asyncio.run(go(RateLimiter(None, None), 50, 10**6))
    assert slept == []


def test_a_crash_after_saving_a_batchs_replies_and_before_marking_it_done_uses_them_once(tmp_path, fake_openai):
    fake_openai.responder = good
    fake_openai.batch_polls_until_done = 1
    jobs = [build_job(make_item(i), TEMPLATE) for i in range(2)]
    first = engine(tmp_path)
    put = first.ledger.put

    def put_then_die_at_done(entry):
        if entry.get("kind") == "batch" and entry["status"] != "submitted":
            raise KeyboardInterrupt  # the replies are in the ledger; the batch still reads "submitted"
        put(entry)

    first.ledger.put = put_then_die_at_done
    with pytest.raises(KeyboardInterrupt):
        first.run(jobs, batch=True)
    first.ledger.close()

    second = engine(tmp_path)
    results = second.run(jobs, batch=True)
    assert all(r["status"] == "ok" for r in results.values()) and len(results) == 2
    # the batch was polled and its file downloaded again, but its replies were not counted or used twice
    assert second.stats.api_calls == 0 and second.stats.prompt_tokens == 0 and second.stats.reasks == 0
    assert posts(fake_openai, "/batches") == 1 and posts(fake_openai, "/chat/completions") == 0


# --- kill -9 -------------------------------------------------------------------------------------------
def test_kill_9_mid_run_loses_and_duplicates_nothing(tmp_path, fake_openai):
    successes = Counter()

    def responder(req):
        n = item_number(request_payload(req))
        successes[n] += 1
        return Reply(content=json.dumps(translation(n), ensure_ascii=False), delay=0.05)

    fake_openai.responder = responder
    n_items, concurrency = 40, 4
    items = [make_item(i) for i in range(n_items)]
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))
    (tmp_path / "tr").mkdir()
    (tmp_path / "tr" / "none.jsonl").write_text("")
    (tmp_path / "params.yaml").write_text(json.dumps({"translate": {"provider": "openai", "llm": {
        "model": "test-model", "concurrency": concurrency, "max_retries": 1, "timeout_s": 5}}}))
    cmd = [sys.executable, "-m", "gabarito.cli", "translate", "--items", "items.jsonl", "--translations", "tr",
           "--prompt", str(ROOT / "prompts/translate.v2.txt"), "--ledger", "ledger.jsonl", "--out", "out.jsonl",
           "--failures", "failures.jsonl", "--metrics", "metrics.json", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    # kill at a point that depends on the run: after 10 to 30 items were answered
    kill_after = 10 + (os.getpid() % 20)
    while sum(successes.values()) < kill_after and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "out.jsonl").exists()  # nothing half-written that looks whole
    answered_before = sum(successes.values())
    with Ledger(tmp_path / "ledger.jsonl") as led:
        in_ledger = len(led.entries)
    assert 0 < in_ledger < n_items

    rerun = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in out] == [it["id"] for it in items]  # every item once, in order
    assert [r["label"] for r in out] == [it["label"] for it in items]
    lines = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert len(lines) == len({entry["key"] for entry in lines}) == n_items  # no duplicate entries
    # the rerun asked only for what the ledger lacked; only calls in flight at the kill can repeat
    assert sum(successes.values()) == answered_before + (n_items - in_ledger)
    assert sum(1 for c in successes.values() if c > 1) <= concurrency
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["cache_hits"] == in_ledger and metrics["api_calls"] == n_items - in_ledger


def test_replies_of_a_finished_batch_survive_a_crash_before_validation(tmp_path, fake_openai):
    fake_openai.responder = good
    fake_openai.batch_polls_until_done = 1
    jobs = [build_job(make_item(i), TEMPLATE) for i in range(4)]
    calls = {"n": 0}

    def dying(original):
        async def retrieve(batch_id, *a, **kw):
            calls["n"] += 1
            if calls["n"] == 2:  # the first batch is done and downloaded; die polling the second
                raise KeyboardInterrupt
            return await original(batch_id, *a, **kw)
        return retrieve

    crash_in(engine(tmp_path, batch_max_requests=2), jobs, "retrieve", dying)  # two batches of two
    with Ledger(tmp_path / "ledger.jsonl") as led:
        stored = [e for e in led.entries.values() if e.get("kind") == "batch_reply"]
    assert len(stored) == 2  # the replies of the finished batch were written before anything else

    second = engine(tmp_path, batch_max_requests=2)
    results = second.run(jobs, batch=True)
    assert all(r["status"] == "ok" for r in results.values())
    # nothing was uploaded or submitted again, and no chat call was needed
    assert posts(fake_openai, "/files") == 2 and posts(fake_openai, "/batches") == 2
    assert posts(fake_openai, "/chat/completions") == 0
    assert second.stats.api_calls == 2  # only the second batch's replies were downloaded now
