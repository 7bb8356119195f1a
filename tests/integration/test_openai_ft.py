"""OpenAI fine-tuning submit/wait (gabarito/tools/openai_ft.py) against a real loopback HTTP server.

The server (tests/fake_openai.py, fixture ``fake_openai``) checks requests as OpenAI does: files
uploaded with purpose fine-tune, a job naming uploaded file ids, a model. Jobs walk
validating_files -> queued -> running -> succeeded (or failed) one step per poll, with events.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gabarito.chat import load_prompts, mcq_messages
from gabarito.io import InputError, write_jsonl
from gabarito.params import OpenAIFinetuneParams
from gabarito.tools import openai_ft as ft
from stages.format import openai_export
from tests.cli_runner import invoke
from tests.fake_openai import Reply

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-test-not-a-real-key"  # what the fake_openai fixture puts in OPENAI_API_KEY
FAST = {"retry-after-ms": "1"}  # the openai client honours it: retries in a millisecond


def params(**kw) -> OpenAIFinetuneParams:
    base = {"model": "gpt-4o-mini-2024-07-18", "n_epochs": 2, "suffix": "gabarito-test", "poll_interval_s": 0.01,
            "min_examples": 10}
    return OpenAIFinetuneParams(**{**base, **kw})


@pytest.fixture
def files(tmp_path) -> tuple[Path, Path]:
    """12 training and 3 validation lines exactly as the format stage exports them."""
    prompts = load_prompts(ROOT / "prompts/chat.v1.yaml")
    recs = [{"messages": mcq_messages({"context": f"Contexto {i}: fui ao mercado comprar pão para a família.",
                                       "question": f"Por que fui ao mercado {i}?",
                                       "answers": ["Para comprar pão .", "Para vender o carro .",
                                                   "Para trabalhar .", "Nenhuma das alternativas ."],
                                       "label": i % 4}, prompts, list("ABCD"), "Alternativa")}
            for i in range(15)]
    train, validation = tmp_path / "openai_train.jsonl", tmp_path / "openai_validation.jsonl"
    write_jsonl(train, openai_export(recs[:12]))
    write_jsonl(validation, openai_export(recs[12:]))
    return train, validation


def calls(server, method: str, suffix: str) -> list[dict]:
    return [r for r in server.requests if r["method"] == method and r["path"].split("?")[0].endswith(suffix)]


def test_submit_uploads_both_files_and_creates_the_job(fake_openai, files):
    train, validation = files
    out = ft.submit(ft.make_client(params()), train, validation, params())
    assert out["job_id"] == "ftjob-1" and out["status"] == "validating_files" and out["fine_tuned_model"] is None
    assert out["training_file"] == "file-1" and out["validation_file"] == "file-2"
    assert out["token_counter"] == "estimate" and out["estimated_cost_usd"] > 0

    # both files went up whole, as fine-tune files, under their own names
    assert {fid: (f["purpose"], f["filename"], f["content"]) for fid, f in fake_openai.files.items()} == {
        "file-1": ("fine-tune", "openai_train.jsonl", train.read_bytes()),
        "file-2": ("fine-tune", "openai_validation.jsonl", validation.read_bytes())}
    (create,) = calls(fake_openai, "POST", "/fine_tuning/jobs")
    assert create["json"] == {
        "model": "gpt-4o-mini-2024-07-18", "training_file": "file-1", "validation_file": "file-2",
        "suffix": "gabarito-test",
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}}}
    assert create["headers"]["authorization"] == f"Bearer {KEY}"
    # nothing else: no wait, no polling
    assert [(r["method"], r["status"]) for r in fake_openai.requests] == [("POST", 200)] * 3


def test_submit_with_wait_follows_the_job_and_streams_each_event_once(fake_openai, files):
    train, validation = files
    seen: list[dict] = []
    out = ft.submit(ft.make_client(params()), train, validation, params(), wait=True, progress=seen.append)
    assert out["status"] == "succeeded" and out["error"] is None
    assert out["fine_tuned_model"] == "ft:gpt-4o-mini-2024-07-18:org-test:gabarito-test:ftjob1"
    assert out["trained_tokens"] > 0
    # every event the job wrote, oldest first, each exactly once
    assert [e["message"] for e in seen] == [e["message"] for e in fake_openai.events["ftjob-1"]]
    assert seen[0]["message"] == "Validating training file: file-1 and validation file: file-2"
    assert seen[-1]["message"] == "The job has successfully completed"
    assert out["events"] == len(seen) == len({e["id"] for e in seen})
    assert any(e["type"] == "metrics" and e["data"]["train_loss"] for e in seen)
    # validating_files -> queued -> running -> succeeded: three polls, and none after the end
    assert len(calls(fake_openai, "GET", "/fine_tuning/jobs/ftjob-1")) == 3


def test_a_failed_job_returns_its_error_and_streams_the_error_event(fake_openai, files):
    fake_openai.ft_final_status = "failed"
    seen: list[dict] = []
    out = ft.submit(ft.make_client(params()), *files, params(), wait=True, progress=seen.append)
    assert out["status"] == "failed" and out["fine_tuned_model"] is None
    assert out["error"] == "The job failed due to an invalid training file."
    assert seen[-1]["level"] == "error" and seen[-1]["message"] == out["error"]


def test_a_wrong_key_is_a_clean_401_that_never_shows_the_key(fake_openai, files):
    fake_openai.api_key = "sk-the-right-key-0000"
    with pytest.raises(ft.OpenAIFinetuneError) as info:
        ft.submit(ft.make_client(params()), *files, params())
    text = str(info.value)
    assert isinstance(info.value, InputError)  # the CLI prints it as a message, not a traceback
    assert "401" in text and "OPENAI_API_KEY" in text
    # neither the key nor the masked form of it that OpenAI's own message carries
    assert KEY not in text and "sk-" not in text and "-key" not in text
    assert info.value.__cause__ is None and info.value.__suppress_context__
    # a 401 is not retried, and nothing got through
    assert [(r["path"], r["status"]) for r in fake_openai.requests] == [("/v1/files", 401)]
    assert fake_openai.files == {} and fake_openai.jobs == {}


def test_a_400_on_the_model_names_the_param_to_fix_and_the_uploaded_files(fake_openai, files):
    fake_openai.ft_models = {"gpt-4o-mini-2024-07-18"}
    with pytest.raises(ft.OpenAIFinetuneError) as info:
        ft.submit(ft.make_client(params()), *files, params(model="gpt-9-turbo"))
    text = str(info.value)
    assert "(400). Model gpt-9-turbo is not available for fine-tuning or does not exist." in text
    assert "Check openai_finetune.model" in text and "files file-1, file-2 stay uploaded" in text
    assert len(calls(fake_openai, "POST", "/fine_tuning/jobs")) == 1  # a 400 is final


def test_server_errors_are_retried_then_succeed(fake_openai, files):
    fake_openai.inject("POST /files", Reply(status=500, headers=FAST))
    fake_openai.inject("POST /fine_tuning/jobs", Reply(status=503, headers=FAST), Reply(status=500, headers=FAST))
    fake_openai.inject("GET /fine_tuning/jobs/{id}", *[Reply(status=500, headers=FAST)] * 4)  # > client retries
    out = ft.submit(ft.make_client(params()), *files, params(), wait=True)
    assert out["status"] == "succeeded"
    assert [r["status"] for r in calls(fake_openai, "POST", "/files")] == [500, 200, 200]
    assert [r["status"] for r in calls(fake_openai, "POST", "/fine_tuning/jobs")] == [503, 500, 200]
    assert len(fake_openai.jobs) == 1
    # the first poll failed 4 times in a row (1 try + 3 client retries); the wait loop went on
    polls = [r["status"] for r in calls(fake_openai, "GET", "/fine_tuning/jobs/ftjob-1")]
    assert polls == [500] * 4 + [200] * 3


def test_a_job_created_behind_a_lost_reply_is_adopted_not_created_twice(fake_openai, files):
    fake_openai.ft_lost_replies = 1  # the job is created, the reply is a 502
    out = ft.submit(ft.make_client(params()), *files, params())
    assert list(fake_openai.jobs) == ["ftjob-1"] and out["job_id"] == "ftjob-1"
    assert [r["status"] for r in calls(fake_openai, "POST", "/fine_tuning/jobs")] == [502]
    assert len(calls(fake_openai, "GET", "/fine_tuning/jobs")) == 1  # looked before trying again


def test_a_persistent_server_error_ends_with_a_clean_message(fake_openai, files):
    fake_openai.inject("POST /fine_tuning/jobs", *[Reply(status=500, headers=FAST)] * 4)
    with pytest.raises(ft.OpenAIFinetuneError, match=r"creating the fine-tuning job .*the API failed \(500\), "
                                                     "still after retries"):
        ft.submit(ft.make_client(params()), *files, params())
    assert len(calls(fake_openai, "POST", "/fine_tuning/jobs")) == 4 and fake_openai.jobs == {}


def test_bad_data_sends_nothing(fake_openai, files):
    train, validation = files
    lines = train.read_text(encoding="utf-8").split("\n")
    broken = json.loads(lines[4])
    broken["messages"][2]["role"] = "model"
    lines[4] = json.dumps(broken, ensure_ascii=False)
    train.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ft.DataNotReady) as info:
        ft.submit(ft.make_client(params()), train, validation, params(), wait=True)
    assert f"{train}:5: message 3 has role 'model'; use one of system, user, assistant" in str(info.value)
    assert fake_openai.requests == []


def test_base_url_from_params_wins_over_the_environment(fake_openai, files, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    p = params(base_url=fake_openai.base_url)
    assert ft.submit(ft.make_client(p), *files, p)["job_id"] == "ftjob-1"


def test_waiting_again_on_a_known_job_picks_up_where_it_is(fake_openai, files):
    client = ft.make_client(params())
    job_id = ft.submit(client, *files, params())["job_id"]
    first: list[dict] = []
    client.fine_tuning.jobs.retrieve(job_id)  # someone else polled once: queued
    out = ft.wait_for_job(client, job_id, params(), progress=first.append)
    assert out["status"] == "succeeded" and out["events"] == len(fake_openai.events[job_id])
    assert [e["message"] for e in first][:2] == ["Validating training file: file-1 and validation file: file-2",
                                                 "Files validated, moving job to queued state"]


def test_events_beyond_one_page_are_all_streamed_in_order(fake_openai, files):
    client = ft.make_client(params())
    job_id = ft.submit(client, *files, params())["job_id"]
    for i in range(250):  # a long job's step metrics: three pages of 100, newest first
        fake_openai._event(job_id, f"Step {i + 1}/250: training loss=0.5", kind="metrics")
    seen: list[dict] = []
    ft.wait_for_job(client, job_id, params(), progress=seen.append)
    assert [e["id"] for e in seen] == [e["id"] for e in fake_openai.events[job_id]]
    assert len(seen) == 251 + 6 and seen[1]["message"] == "Step 1/250: training loss=0.5"
    # the first look read every page; later ones stopped at the first event already shown
    pages = [r["path"] for r in calls(fake_openai, "GET", "/events")]
    assert sum("after=" in path for path in pages) == 2 and len(pages) == 3 + 1 + 1  # 3 polls


# --- the commands ---------------------------------------------------------------------------------


PARAMS_YAML = ("openai_finetune: {model: gpt-4o-mini-2024-07-18, n_epochs: 2, suffix: gabarito-test, "
               "poll_interval_s: 0.01, min_examples: 10, price_per_million_tokens: 3.0}\n")


def test_validate_command_needs_no_key_and_prints_tokens_and_cost(files, tmp_path):
    train, validation = files
    (tmp_path / "params.yaml").write_text(PARAMS_YAML)
    result = invoke(["openai-finetune", "validate", "--train", str(train), "--validation", str(validation)], tmp_path)
    assert result.exit_code == 0, result.output
    assert f"{train}: 12 examples (12 valid)" in result.output and "x 2 epochs" in result.output
    assert "ok: ready to submit" in result.output
    report = json.loads(invoke(["openai-finetune", "validate", "--train", str(train), "--validation", "",
                                 "--json"], tmp_path).output)
    assert report["validation"] is None and report["train"]["examples"] == 12
    assert report["billed_tokens"] == report["train"]["billed_tokens_per_epoch"] * 2


def test_validate_command_exits_1_naming_the_bad_line(files, tmp_path):
    train, validation = files
    lines = train.read_text(encoding="utf-8").split("\n")
    lines[1] = "{not json"
    train.write_text("\n".join(lines), encoding="utf-8")
    (tmp_path / "params.yaml").write_text(PARAMS_YAML)
    result = invoke(["openai-finetune", "validate", "--train", str(train), "--validation", str(validation)], tmp_path)
    assert result.exit_code == 1
    assert f"error: {train}:2:" in result.output and "NOT ready" in result.output


def test_submit_and_wait_commands_follow_the_job_and_never_print_the_key(fake_openai, files, tmp_path):
    train, validation = files
    (tmp_path / "params.yaml").write_text(PARAMS_YAML)
    result = invoke(["openai-finetune", "submit", "--train", str(train), "--validation", str(validation)], tmp_path)
    assert result.exit_code == 0, result.output
    assert "job ftjob-1: validating_files" in result.output and "gabarito openai-finetune wait ftjob-1" in result.output
    waited = invoke(["openai-finetune", "wait", "ftjob-1"], tmp_path)
    assert waited.exit_code == 0, waited.output
    assert "job ftjob-1: succeeded; fine-tuned model: ft:gpt-4o-mini-2024-07-18" in waited.output
    assert "[info] Validating training file: file-1 and validation file: file-2" in waited.output
    assert KEY not in result.output + waited.output


def test_a_job_error_echoing_the_key_is_printed_without_it(fake_openai, files, tmp_path):
    # a server (or a proxy) that quotes the request headers in the job's error and its error event
    train, validation = files
    (tmp_path / "params.yaml").write_text(PARAMS_YAML)
    fake_openai.ft_final_status = "failed"
    fake_openai.ft_error = {**fake_openai.ft_error, "message": f"bad file; request had authorization: Bearer {KEY}, "
                                                              f"key {KEY}"}
    result = invoke(["openai-finetune", "submit", "--wait", "--train", str(train), "--validation", str(validation)],
                    tmp_path)
    text = result.output + (result.stderr or "")
    assert result.exit_code == 1, text
    assert "[error] bad file; request had authorization: ***, key ***" in text
    assert "job ftjob-1 failed: bad file; request had authorization: ***, key ***" in text
    assert KEY not in text


def test_submit_command_without_a_key_is_a_clear_message(files, tmp_path):
    train, validation = files
    (tmp_path / "params.yaml").write_text(PARAMS_YAML)
    result = invoke(["openai-finetune", "submit", "--train", str(train), "--validation", str(validation)], tmp_path)
    assert result.exit_code == 1 and "OPENAI_API_KEY is not set" in result.output and "Traceback" not in result.output


def test_a_failed_job_fails_the_command(fake_openai, files, tmp_path):
    fake_openai.ft_final_status = "failed"
    train, validation = files
    (tmp_path / "params.yaml").write_text(PARAMS_YAML)
    result = invoke(["openai-finetune", "submit", "--wait", "--train", str(train), "--validation", str(validation)],
                     tmp_path)
    assert result.exit_code == 1
    assert "job ftjob-1 failed: The job failed due to an invalid training file." in result.output
