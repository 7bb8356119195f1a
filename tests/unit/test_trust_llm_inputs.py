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


# --- base_url in params: an allow-list (issue 23, 3) ---------------------------------------------------------
# every secret below is built, not a key-shaped literal; each must never show in the message
PW = "".join(["pw", "Unit", "7f3a9c2e"])
SK = "-".join(["sk", "proj", "Zq8dL2mN4pR6tV9xB1cF3hJ5"])
HF = "_".join(["hf", "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123"])
HEX = "".join(["9f86d081884c7d65", "9a2feaa0c55ad015"])  # 32 hex characters: a token or an account id
UUID = "-".join(["3f2b7c1e", "9a4d", "4e6f", "8b0a", "1c2d3e4f5a6b"])
MIXED = "".join(["Xk9", "Qw2", "Er7", "Ty5", "Ui3", "Op1"])  # 18 characters, capitals, small letters and digits

REFUSED = {
    # a user name or password, with a scheme and without
    f"http://user:{PW}@127.0.0.1:8000/v1": PW,
    f"user:{PW}@127.0.0.1:8000/v1": PW,
    # a query, whatever its key is called: the old deny-list missed x-api-key, subscription-key and code
    f"https://h/v1?api-key={PW}": PW, f"https://h/v1?token={PW}": PW, f"https://h/v1?client_secret={PW}": PW,
    f"https://h/v1?auth={PW}": PW, f"https://h/v1?x-api-key={PW}": PW, f"https://h/v1?subscription-key={PW}": PW,
    f"https://fn.azurewebsites.net/api/chat?code={PW}": PW,  # Azure Functions' function key
    f"https://h/v1?{PW}": PW,
    # a fragment, path parameters
    f"https://h/v1#token={PW}": PW, f"https://h/v1;token={PW}": PW, f"https://h/v1;{PW}/more": PW,
    # a key as a path segment
    f"https://h/{SK}/v1": SK, f"https://h/v1/{HF}": HF, f"https://h/api/{HEX}/v1": HEX, f"https://h/{UUID}/v1": UUID,
    f"https://h/v1/{MIXED}": MIXED, f"https://h/key-{PW}/v1": PW, f"https://{SK}.example.com/v1": SK,
    # what no base URL is: another scheme, no scheme, escapes and spaces, a bad port, empty or dot parts
    f"ftp://h/{PW}": None, "127.0.0.1:8000/v1": None, f"https://h/v1%2F{PW}": PW, "https://h/v 1": None,
    f"http://h:{PW}/v1": PW, "https://h:99999/v1": None, "https://h//v1": None, "https://h/../v1": None,
    # a query that is no credential is refused too: the openai client appends its route after a query
    # (https://h/v1/?api-version=2024-10-21chat/completions), so it never worked
    "https://h/v1?api-version=2024-10-21": None,
}

ACCEPTED = [
    "https://api.openai.com/v1", "http://localhost:11434/v1", "http://localhost:11434/v1/",  # Ollama
    "http://127.0.0.1:8000/v1", "http://my_vllm:8000/v1", "http://[::1]:8000/v1",  # vLLM, a compose service, IPv6
    "http://localhost:1234/v1",  # LM Studio
    "https://openrouter.ai/api/v1", "https://api.together.xyz/v1", "https://api.groq.com/openai/v1",
    "https://api.mistral.ai/v1", "https://api.deepseek.com", "https://api.fireworks.ai/inference/v1",
    "https://generativelanguage.googleapis.com/v1beta/openai/", "https://router.huggingface.co/v1",
    "https://my-resource.openai.azure.com/openai/v1",
    "https://my-resource.openai.azure.com/openai/deployments/gpt-4o-mini-2024-07-18",
    "https://api-inference.huggingface.co/models/meta-llama/Meta-Llama-3.1-8B-Instruct/v1",
    "https://us-central1-aiplatform.googleapis.com/v1beta1/projects/my-project-123456/locations/us-central1/"
    "endpoints/openapi",
    "https://abc123xyz.us-east-1.aws.endpoints.huggingface.cloud/v1/",  # the host is not judged by its looks
]


@pytest.mark.parametrize("cls", [LLMParams, OpenAIFinetuneParams])
@pytest.mark.parametrize("url", list(REFUSED))
def test_a_base_url_that_is_more_than_scheme_host_port_and_plain_path_is_refused(cls, url):
    with pytest.raises(ValidationError) as err:
        cls(base_url=url)
    msg = err.value.errors()[0]["msg"]  # what parse_section shows (pydantic's str() adds the input)
    assert "base_url '" in msg and "is refused: " in msg and "$OPENAI_BASE_URL" in msg and "$OPENAI_API_KEY" in msg
    secret = REFUSED[url]
    assert secret is None or secret not in msg


@pytest.mark.parametrize("cls", [LLMParams, OpenAIFinetuneParams])
@pytest.mark.parametrize("url", [None, *ACCEPTED])
def test_a_plain_base_url_is_accepted(cls, url):
    assert cls(base_url=url).base_url == url


@pytest.mark.parametrize("section,path", [("translate", ["llm"]), ("synthesize", ["llm"]), ("openai_finetune", [])])
def test_the_stage_message_names_the_key_shows_the_url_redacted_and_never_the_secret(tmp_path, section, path):
    url = f"https://user:{PW}@h.example/{SK}/v1?x-api-key={PW}"
    data: dict = {"base_url": url}
    for key in reversed(path):
        data = {key: data}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({section: data}))
    with pytest.raises(InputError) as err:
        load_section(section, tmp_path / "params.yaml")
    msg = str(err.value)
    assert ".".join([section, *path, "base_url"]) + ": Value error, base_url 'https://***@h.example/***/v1?***' " \
           "is refused: it has a user name or password" in msg
    assert PW not in msg and SK not in msg


def test_redact_base_url_keeps_the_plain_parts_only():
    from gabarito.params import redact_base_url

    assert redact_base_url("http://localhost:11434/v1") == "http://localhost:11434/v1"
    assert redact_base_url(f"http://u:{PW}@h:8000/a/{HF}/v1;x={PW}#y") == "http://***@h:8000/a/***/v1;***"
    assert redact_base_url(f"u:{PW}@h/v1") == "***@h/v1"


def test_an_unreachable_endpoint_from_the_environment_is_named_without_its_key():
    # $OPENAI_BASE_URL is where a URL that must carry more goes: not checked, but never shown whole
    exc = openai.APIConnectionError.__new__(openai.APIConnectionError)
    Exception.__init__(exc, "Connection error.")
    msg = oc.describe_error(exc, "translating", base_url=f"http://u:{PW}@h:8000/{SK}/v1", key="local",
                            settings="translate.llm.base_url")
    assert "could not reach http://***@h:8000/***/v1" in msg and PW not in msg and SK not in msg


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
