"""Pure pieces behind issue 13's LLM items: gabarito/openai_client.py (scrubbing, Retry-After, create
then find), the base_url check of the llm params, and the CSV reader's message for an over-long field."""

from __future__ import annotations

import json
from types import SimpleNamespace

import openai
import pytest
import yaml
from pydantic import ValidationError

from gabarito import io as sio
from gabarito import openai_client as oc
from gabarito.io import InputError
from gabarito.params import (
    LLMParams,
    OpenAIFinetuneParams,
    TranslateParams,
    load_section,
)
from stages.ingest import parse_csv

SENTINEL = "".join(["unit", "sentinel", "0123456789abcdef"])  # built, not a key-shaped literal


# --- scrubbing -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    f"Authorization: Bearer {SENTINEL}",
    json.dumps({"content": json.dumps({"Authorization": f"Bearer {SENTINEL}"})}),  # a header dump inside a JSON string
    f"authorization={SENTINEL}",
    f"curl -H 'Bearer {SENTINEL}'",
])
def test_scrub_removes_the_key_and_authorization_values(text):
    assert SENTINEL not in oc.scrub(text, SENTINEL)
    assert SENTINEL not in oc.scrub(text, "some-other-key")  # by shape too, without knowing the key


def test_scrub_keeps_prose_and_records_keep_their_shape():
    prose = "O portador (the bearer of bad news) trouxe a autorização: assinada."
    assert oc.scrub(prose, SENTINEL) == prose
    record = {"raw": f"echo {SENTINEL}", "n": 3, "list": [f"x {SENTINEL}", None], "ok": True}
    assert oc.scrub_record(record, SENTINEL) == {"raw": "echo ***", "n": 3, "list": ["x ***", None], "ok": True}


def test_scrub_uses_the_environment_key_by_default(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    assert oc.scrub(f"key {SENTINEL} here") == "key *** here"


@pytest.mark.parametrize("key", ["local", "e", "EMPTY", "token-abc123"])
def test_a_short_placeholder_key_leaves_replies_intact(key):
    # README tells local-server users OPENAI_API_KEY=local: the word must survive in every reply
    reply = json.dumps({"contexto": "A localidade tem uma escola; ela é EMPTY token-abc123 de verdade."},
                       ensure_ascii=False)
    assert oc.scrub(reply, key) == reply
    assert oc.scrub_record({"raw": reply, "n": 1}, key) == {"raw": reply, "n": 1}


@pytest.mark.parametrize("key", ["local", "e", SENTINEL])
@pytest.mark.parametrize(("text", "scrubbed"), [
    ("Authorization: Bearer {k}", "Authorization: ***"),
    ('{{"authorization": "Bearer {k}", "host": "x"}}', '{{"authorization": "***", "host": "x"}}'),
    ("api-key: {k}", "api-key: ***"),
    ('{{"x-api-key": "{k}"}}', '{{"x-api-key": "***"}}'),
    ("sent with Bearer {k} to the server", "sent with Bearer *** to the server"),
])
def test_header_style_values_are_scrubbed_whatever_the_key_length(key, text, scrubbed):
    assert oc.scrub(text.format(k=key), key) == scrubbed.format()


def test_a_long_key_is_scrubbed_wherever_it_stands():
    assert oc.scrub(f"a{SENTINEL}b and {SENTINEL}", SENTINEL) == "a***b and ***"
    assert len(SENTINEL) >= sio.MIN_BARE_KEY_CHARS


# --- Retry-After and create-then-find ----------------------------------------------------------------------
def status_error(status: int, headers: dict | None = None) -> openai.APIStatusError:
    # what the client's errors read of a response (the client's own HTTP types vary by version)
    response = SimpleNamespace(status_code=status, headers=headers or {}, request=None)
    cls = {429: openai.RateLimitError, 400: openai.BadRequestError}.get(status, openai.InternalServerError)
    return cls("m", response=response, body={"message": "m"})


def test_retry_after_reads_ms_then_seconds_and_caps():
    assert oc.retry_after(status_error(429, {"retry-after-ms": "1500"})) == 1.5
    assert oc.retry_after(status_error(429, {"retry-after": "7"})) == 7.0
    assert oc.retry_after(status_error(429, {"retry-after": "7"}), cap=2.0) == 2.0
    assert oc.retry_after(status_error(429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) is None
    assert oc.retry_after(status_error(500)) is None


def test_create_then_find_adopts_what_a_lost_reply_created():
    calls = {"create": 0, "find": 0}

    def create():
        calls["create"] += 1
        raise status_error(502)

    def find():
        calls["find"] += 1
        return "job-1" if calls["find"] == 2 else None

    assert oc.create_then_find(create, find, retries=5, wait=lambda e, a: 0.0, sleep=lambda s: None) == "job-1"
    assert calls == {"create": 2, "find": 2}


def test_create_then_find_raises_final_errors_at_once_and_the_last_transient_one():
    seen = []
    with pytest.raises(openai.BadRequestError):
        oc.create_then_find(lambda: (_ for _ in ()).throw(status_error(400)), lambda: seen.append(1),
                            retries=3, wait=lambda e, a: 0.0, sleep=lambda s: None)
    assert seen == []
    waits = []
    with pytest.raises(openai.InternalServerError):
        oc.create_then_find(lambda: (_ for _ in ()).throw(status_error(500)), lambda: None, retries=2,
                            wait=lambda e, a: waits.append(a) or 0.0, sleep=lambda s: None)
    assert waits == [1, 2]  # no wait after the last try


# --- base_url in params ------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [LLMParams, OpenAIFinetuneParams])
@pytest.mark.parametrize("url", ["http://user:pw@h:8000/v1", "user:pw@h:8000/v1", "https://h/v1?api-key=x",
                                 "https://h/v1?token=x", "https://h/v1?client_secret=x", "https://h/v1?auth=x"])
def test_a_base_url_with_a_credential_is_refused(cls, url):
    with pytest.raises(ValidationError, match="base_url carries a credential"):
        cls(base_url=url)


@pytest.mark.parametrize("url", [None, "http://localhost:11434/v1", "https://h/v1?api-version=2024-10-21"])
def test_a_plain_base_url_is_accepted(url):
    assert LLMParams(base_url=url).base_url == url


@pytest.mark.parametrize("hub_id", ["https://me:pwsecret@huggingface.co/datasets/me/cosmosqa_pt",
                                    "me:pwsecret@me/cosmosqa_pt", "https://huggingface.co/datasets/me/x?token=pwsecret"])
def test_a_translations_hub_id_with_a_credential_is_refused_without_showing_it(hub_id, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"translate": {"dataset_hub_id": hub_id, "dataset_hub_revision": "abc"}}))
    with pytest.raises(InputError) as err:
        load_section("translate", params)
    assert "translate.dataset_hub_id: Value error, dataset_hub_id carries a credential" in str(err.value)
    assert "pwsecret" not in str(err.value)
    assert TranslateParams(dataset_hub_id="me/cosmosqa_pt").dataset_hub_id == "me/cosmosqa_pt"


# --- the CSV reader's message for an over-long field ---------------------------------------------------------
HEADER = "id,context,question,answer0,answer1,answer2,answer3,label\n"


def test_an_over_long_csv_field_says_so_naming_file_and_line():
    text = HEADER + "a,ctx,q,1,2,3,4,0\n" + "b," + "x" * 200_000 + ",q,1,2,3,4,0\n"
    with pytest.raises(InputError) as exc:
        parse_csv(text, split="train", name="train.csv")
    msg = str(exc.value)
    assert msg.startswith("train.csv:3: a field is longer than the CSV reader's limit of 131,072 characters.")
    assert "Check the quoting" not in msg


def test_other_csv_errors_still_point_at_the_quoting():
    with pytest.raises(InputError, match=r"train\.csv:2: malformed CSV row .*Check the quoting"):
        parse_csv(HEADER + 'a,"ctx"x,q,1,2,3,4,0\n', split="train", name="train.csv")
