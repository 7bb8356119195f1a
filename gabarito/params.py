"""params.yaml, loaded into typed, validated objects.

Every knob of the pipeline lives in params.yaml, one section per stage. Each field's default here is
the value params.yaml ships (the offline profile; tests/unit/test_params.py checks every key), so a
key left out means what the shipped file says, and profiles/*.yaml list only what differs from it.
Knobs that feed a library carry that library's own field name (``lora_alpha``,
``bnb_4bit_quant_type``, ``learning_rate``) so they pass straight into ``LoraConfig``,
``BitsAndBytesConfig`` and ``SFTConfig``. A misspelled key is an error that names the key and
suggests the closest valid one, never a silent default.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal, Optional, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from gabarito.io import InputError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- ingest --------------------------------------------------------------------------------------
# query keys that carry a signature or a token: such a URL must not live in params.yaml, which
# git and dvc.lock keep forever (S3/GCS presigned URLs, Azure SAS, ?token=...)
_SECRET_QUERY_KEYS = {"sig", "signature", "x-amz-signature", "x-amz-credential", "x-amz-security-token",
                      "x-goog-signature", "x-goog-credential", "token", "access_token", "api_key", "apikey", "key",
                      "auth", "api-key", "password"}
# ... and any key with one of these in its name (?hf_token=, ?client_secret=, ?X-Amz-Security-Token=)
_SECRET_QUERY_PARTS = ("token", "secret", "signature", "password", "credential")


def _secret_query_key(name: str) -> bool:
    name = name.lower()
    return name in _SECRET_QUERY_KEYS or any(part in name for part in _SECRET_QUERY_PARTS)


def url_credential(url: str) -> str | None:
    """What in ``url`` is a credential (a user name or password, a signing query key), or None."""
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(url)
    secret = sorted({k for k, _ in parse_qsl(parts.query) if _secret_query_key(k)})
    if secret:
        return f"its query has {', '.join(secret)}"
    return "it has a user name or password" if "@" in parts.netloc else None


def refuse_hub_credential(name: str, hub_id: str | None) -> None:
    """Raise when the hub dataset id in key ``name`` carries a credential (one written as a URL with a user, a
    password or a token). An id is owner/name (or a local folder): it has no "@"."""
    if hub_id and ("@" in hub_id or url_credential(hub_id)):
        raise ValueError(f"{name} carries a credential (a user name, password or token); params.yaml and dvc.lock "
                         "are committed, so it would be too. Give the dataset id (owner/name) and put the token in "
                         "$HF_TOKEN.")


# allenai/cosmos_qa's Parquet conversion (its refs/convert/parquet branch): the dataset's main branch holds
# only a loading script, which datasets >= 4 no longer runs; the conversion holds the same rows as Parquet
COSMOS_QA_PARQUET = "ed50fe83db62b355759053b1cd5eef344ee371e0"


class IngestParams(Section):
    source: Literal["local", "hub", "url"] = "local"
    hub_id: str = "allenai/cosmos_qa"
    hub_revision: Optional[str] = COSMOS_QA_PARQUET
    # split name -> http(s) URL of a CSV or JSONL file in Cosmos QA's own columns
    urls: dict[str, str] = Field(default_factory=dict)
    splits: list[str] = Field(default_factory=lambda: ["train", "validation"])
    limit_per_split: Optional[int] = Field(default=None, ge=1)
    # source: url; seconds for each file's whole download, and its size limit (gabarito.sources.download_text)
    download_timeout_s: float = Field(default=60.0, gt=0)
    max_download_mb: float = Field(default=200.0, gt=0)

    @field_validator("urls")
    @classmethod
    def _no_credentials_in_urls(cls, urls: dict[str, str]) -> dict[str, str]:
        for split, url in urls.items():
            what = url_credential(url)
            if what:
                raise ValueError(
                    f"the URL for '{split}' carries a credential ({what}); params.yaml and dvc.lock are "
                    "committed, so it would be too. Download the file yourself into data/raw and use "
                    "source: local.")
        return urls

    @field_validator("hub_id")
    @classmethod
    def _no_credentials_in_hub_id(cls, hub_id: str) -> str:
        refuse_hub_credential("hub_id", hub_id)  # it would also be shown in ingest's messages and metrics
        return hub_id

    @model_validator(mode="after")
    def _hub_needs_its_own_revision(self):
        # an unpinned pull reads whatever the branch holds that day: the same params, other items
        if self.source == "hub" and not self.hub_revision:
            raise ValueError(f"ingest.hub_revision must pin a commit of {self.hub_id} when source is 'hub' "
                             "(the same params must read the same items)")
        if (self.source == "hub" and self.hub_id != type(self).model_fields["hub_id"].default
                and self.hub_revision == COSMOS_QA_PARQUET):
            raise ValueError(f"ingest.hub_revision is allenai/cosmos_qa's commit; pin a commit of {self.hub_id}")
        return self


# --- mcq: the user's own multiple-choice files ------------------------------------------------------
class MCQSource(Section):
    """One entry of ``mcq.sources``: exactly one of ``path`` (a JSONL or CSV file), ``url`` (http(s),
    no credentials) or ``hub`` (a dataset id, or a local folder, read with ``datasets`` at ``revision``)."""

    path: Optional[str] = None
    url: Optional[str] = None
    hub: Optional[str] = None
    revision: Optional[str] = None        # hub: the commit to read (pinned, as base_model.revision)
    splits: Optional[list[str]] = None    # hub: the dataset's splits to read (None: train)
    source: Optional[str] = None          # the items' source name (None: the file or dataset's name)
    language: Optional[Literal["pt", "en"]] = None  # items without a language (None: mcq.default_language)
    # every item of the source gets this split, whatever its rows say (None: each row's own, else the
    # seeded hash): {path: ..., split: test} holds a whole exam out, scored but never trained on
    split: Optional[Literal["train", "validation", "test"]] = None

    @model_serializer(mode="wrap")
    def _only_what_is_set(self, handler):
        # an entry dumps as it is written in params.yaml ({path: ...}), so the shipped list compares equal
        return {k: v for k, v in handler(self).items() if v is not None}

    @model_validator(mode="after")
    def _one_place(self):
        given = [k for k in ("path", "url", "hub") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"each mcq source needs exactly one of path, url or hub; got {given or 'none'}")
        if self.url:
            if not self.url.startswith(("http://", "https://")):
                from gabarito.io import redact_url

                raise ValueError(f"url must be an http(s) URL (in lower case), got {redact_url(self.url)!r}")
            what = url_credential(self.url)
            if what:
                raise ValueError(f"the url carries a credential ({what}); params.yaml and dvc.lock are committed, "
                                 "so it would be too. Download the file yourself into data/raw/mcq and give its path.")
        refuse_hub_credential("hub", self.hub)  # it would also be shown in the stage's messages and metrics
        if self.hub and not self.revision:
            raise ValueError(f"hub {self.hub!r} needs a revision (a commit sha): the same params must read the same items")
        if not self.hub and (self.revision or self.splits):
            raise ValueError("revision and splits go with a hub source only")
        return self

    def name(self) -> str:
        """The items' source name: ``source``, else the file's stem or the dataset's last path part."""
        if self.source:
            return self.source
        where = self.path or (self.url or "").split("?")[0] or self.hub or ""
        return Path(where.rstrip("/")).stem or where


class MCQParams(Section):
    # a mixture, as alignment-handbook's dataset_mixer: every entry's items, each keeping its source
    sources: list[MCQSource] = Field(default_factory=lambda: [MCQSource(path="data/raw/mcq/exemplo.jsonl")])
    default_language: Literal["pt", "en"] = "pt"
    # items without a split: validation for about this share, by a seeded hash of the id (gabarito.items)
    validation_share: float = Field(default=0.2, ge=0.0, lt=1.0)
    seed: int = 0
    # url sources: seconds for each file's whole download, and its size limit (gabarito.sources.download_text)
    download_timeout_s: float = Field(default=60.0, gt=0)
    max_download_mb: float = Field(default=200.0, gt=0)
    # an answer that is one of these (case ignored) marks a question the exam annulled: skipped and counted
    # (the same marks as exams.annulled_marks)
    annulled_marks: list[str] = Field(default_factory=lambda: ["ANULADA", "ANULADO", "*", "X"])
    # a row whose needs_figure field is true needs a picture its text does not carry: skipped and counted
    # unless this is true (as exams.include_figure_questions)
    include_figure_questions: bool = False

    @model_validator(mode="after")
    def _distinct_names(self):
        names = [s.name() for s in self.sources]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"two sources are named {', '.join(twice)}: give one a different 'source'")
        return self


# --- extract -------------------------------------------------------------------------------------
class OCRParams(Section):
    """How a PDF page is read: its text layer, or tesseract OCR of the page rendered (extract, exams.pdf)."""

    ocr_lang: str = "por"
    ocr_dpi: int = Field(default=300, ge=72, le=600)
    # a page whose render at ocr_dpi has more pixels than this is rendered at a lower dpi that fits
    # (A2 at 300 dpi is 4961 x 7016 = 34.8 M pixels; pdfium's 4-byte bitmap plus its copies ~0.5 GB) ...
    max_render_pixels: int = Field(default=40_000_000, ge=1_000_000)
    # ... but never below this: under ~150 dpi tesseract loses 10 pt print, so such a page is skipped
    min_ocr_dpi: int = Field(default=150, ge=36, le=600)
    min_text_chars: int = Field(default=40, ge=0)
    min_text_quality: float = Field(default=0.6, ge=0.0, le=1.0)
    # a line with fewer letters and digits than this share of its characters is OCR noise
    junk_min_alnum_share: float = Field(default=0.5, ge=0.0, le=1.0)


class ExtractParams(OCRParams):
    tesseract_config: str = "--psm 6"
    timeout_s: float = Field(default=300.0, gt=0)
    # cleaning (gabarito.pdftext): running headers and footers are looked for in this many lines at the
    # top and bottom of each page, ...
    header_lines: int = Field(default=3, ge=0)
    # ... count when a line is there on at least this share of a document's pages (and on two), ...
    header_min_share: float = Field(default=0.5, gt=0.0, le=1.0)
    # ... and lines this similar (difflib ratio) are the same line: OCR spells a header differently per page
    header_similarity: float = Field(default=0.85, gt=0.0, le=1.0)


# --- exams: exam PDFs and their answer keys --------------------------------------------------------
class ExamPDFParams(OCRParams):
    """Reading an exam booklet (gabarito.booklet): OCR as extract does it, but a page at a time in
    parallel, and the page's layout (columns, running headers, boxed letters, figures) from positions."""

    # tesseract's automatic page segmentation finds a scanned booklet's columns (--psm 6 reads one block)
    tesseract_config: str = "--psm 3"
    # a 3x3 median filter on a scanned page before OCR: takes out specks (a photocopy's, a phone's JPEG)
    denoise: bool = True
    # a scanned word tesseract is less sure of than this (0-100) is a speck taken for a word; dropped, but
    # for a line's first (where a boxed letter reads badly)
    min_word_conf: float = Field(default=30.0, ge=0.0, le=100.0)
    # each scanned page's OCR within this; pages are OCR'd ocr_workers at a time (0: one per CPU core)
    page_timeout_s: float = Field(default=120.0, gt=0)
    ocr_workers: int = Field(default=0, ge=0)
    # running headers and footers: lines in this top and bottom share of a page's height ...
    margin_share: float = Field(default=0.08, ge=0.0, le=0.3)
    # ... found there on at least this share of the pages (and on two), spelled alike to this degree
    header_min_share: float = Field(default=0.5, gt=0.0, le=1.0)
    header_similarity: float = Field(default=0.85, gt=0.0, le=1.0)
    # an image, or drawn lines and boxes grouped together, at least this wide and tall (points) is a figure
    min_figure_pt: float = Field(default=24.0, gt=0)


ENEM_AREAS = {
    "LINGUAGENS, CÓDIGOS E SUAS TECNOLOGIAS": "linguagens",
    "CIÊNCIAS HUMANAS E SUAS TECNOLOGIAS": "ciencias_humanas",
    "CIÊNCIAS DA NATUREZA E SUAS TECNOLOGIAS": "ciencias_natureza",
    "MATEMÁTICA E SUAS TECNOLOGIAS": "matematica",
}

class ExamsParams(Section):
    language: Literal["pt", "en"] = "pt"
    # items are split by a seeded hash of their id (gabarito.items.hash_split): an item keeps its split
    # when questions or exams are added
    seed: int = 0
    validation_share: float = Field(default=0.2, ge=0.0, le=1.0)
    # a question with a figure among its lines (an image or drawing the PDF carries; on a scan, ink that is
    # not text) is flagged needs_figure: its text alone cannot be answered, so it is left out unless this
    include_figure_questions: bool = False
    # an answer-key entry that is one of these (case ignored) marks the question annulled: skipped
    annulled_marks: list[str] = Field(default_factory=lambda: ["ANULADA", "ANULADO", "*", "X"])
    # a line that is exactly one of these headings (case and spacing ignored) sets the subject of the
    # questions after it
    subjects: dict[str, str] = Field(default_factory=lambda: dict(ENEM_AREAS))
    # ENEM day 1 prints questions 01-05 once per foreign language, and its key gives each a letter per
    # language: the copy and the letter of this one are used, and the item records it
    foreign_language: Literal["ingles", "espanhol"] = "ingles"
    # refuse a key whose year, day, caderno or colour differs from what the booklet prints
    check_identifiers: bool = True
    # questions read wrong that you leave out, by exam (the file name without .pdf): {prova_2024: [12, 47]}
    drop_questions: dict[str, list[int]] = Field(default_factory=dict)
    # a whole exam given one split, by exam: {enem_2022: test} holds it out (scored, never trained on);
    # the others are split by the seeded hash of each item's id
    splits: dict[str, Literal["train", "validation", "test"]] = Field(default_factory=dict)
    # the share of an answer key's questions that may be missing from what was read of its exam before the
    # stage stops: more usually means a layout read wrong, and the items made would be a silent fraction
    max_unfound_share: float = Field(default=0.1, ge=0.0, le=1.0)
    pdf: ExamPDFParams = Field(default_factory=ExamPDFParams)


# --- base_url: an allow-list ---------------------------------------------------------------------------
# A base URL is where the OpenAI-compatible API lives: scheme, host, port and a path of plain words, as every
# provider writes them (https://api.openai.com/v1, http://localhost:11434/v1 (Ollama), http://localhost:8000/v1
# (vLLM), http://localhost:1234/v1 (LM Studio), https://openrouter.ai/api/v1, https://api.together.xyz/v1,
# https://api.groq.com/openai/v1, https://RESOURCE.openai.azure.com/openai/v1). Anything else is refused, not
# because each spelling was listed as a credential but because none is needed: params.yaml and dvc.lock
# are committed (and DVC stages dvc.lock), so whatever base_url holds is kept forever. A user name or
# password (user:pw@), a query (?x-api-key=, ?subscription-key=, Azure Functions' ?code=), a fragment
# (#token=) and path parameters (;token=) can all carry a key; a query never worked anyway: the openai
# client appends its route after it (https://h/v1/?api-version=1chat/completions).
_BASE_URL = re.compile(r"(?i)(https?)://(?P<host>[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?|\[[0-9a-f:.]+\])"
                       r"(?::(?P<port>[0-9]{1,5}))?(?P<path>(?:/[A-Za-z0-9._~-]*)*)")
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")
# how providers' keys begin (OpenAI and OpenRouter sk-, Anthropic sk-ant-, Hugging Face hf_, Groq gsk_, xAI
# xai-, Replicate r8_, Perplexity pplx-, NVIDIA nvapi-, Google AIza, GitHub ghp_/github_pat_, GitLab glpat-,
# Slack xox?-, AWS AKIA, Mailgun-style key-): such a segment, 8 or more characters past the prefix, is a key
_KEY_PREFIXES = re.compile(r"(?i)^(?:sk|rk|pk|hf|gsk|xai|r8|pplx|nvapi|ghp|gho|ghs|github_pat|glpat|xox[abpr]|key|"
                           r"api[-_]?key|token|secret)[-_][A-Za-z0-9._~-]{8,}$|^(?:AIza|AKIA|ASIA)[A-Za-z0-9_-]{12,}$")
_UUID = re.compile(r"(?i)^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def secret_segment(segment: str) -> bool:
    """``segment`` (a part of a URL's path or host) looks like a key: a provider's key prefix, a UUID (some
    providers' keys are one), a run of 20+ letters and digits that mixes both (a token, a hex or base64 id;
    model and deployment names are words and numbers joined by - _ .), a run of 16+ that mixes capitals,
    small letters and digits, or any run of 32+. A non-secret id of that shape (a Cloudflare account id)
    is refused too: the environment takes the URL instead, see url_refusal."""
    if _KEY_PREFIXES.match(segment) or _UUID.match(segment):
        return True
    for run in re.split(r"[-_.~]", segment):
        letters, digits = any(c.isalpha() for c in run), any(c.isdigit() for c in run)
        if len(run) >= 32 or (len(run) >= 20 and letters and digits):
            return True
        if len(run) >= 16 and digits and any(c.islower() for c in run) and any(c.isupper() for c in run):
            return True
    return False


def base_url_problem(url: str) -> str | None:
    """What in ``url`` a base URL may not have, or None for http(s)://host[:port]/plain/words."""
    head, _, _ = url.partition("://")
    authority = url.split("://", 1)[-1].split("/", 1)[0]
    if "@" in authority:
        return "it has a user name or password (user:password@)"
    for mark, what in (("?", "a query (?...)"), ("#", "a fragment (#...)"), (";", "path parameters (;...)")):
        if mark in url:
            return f"it has {what}, which can carry a key (?api-key=, ?code=, #token=, ;token=) and no base URL needs"
    if "://" not in url or head.lower() not in ("http", "https"):
        return "it must start with http:// or https://"
    match = _BASE_URL.fullmatch(url)
    if not match:
        return ("it has characters a base URL does not need (the host: letters, digits, - _ .; the path: "
                "/-separated words of letters, digits and . _ ~ -)")
    if match["port"] and not 0 < int(match["port"]) < 65536:
        return f"its port {match['port']} is not 1-65535"
    segments = match["path"].split("/")[1:]
    if any(s == "" for s in segments[:-1]) or any(set(s) == {"."} for s in segments):
        return "its path has an empty, '.' or '..' part"
    labels = match["host"].strip("[]").split(".")
    if any(_KEY_PREFIXES.match(s) for s in labels) or any(secret_segment(s) for s in segments):
        return "a part of it looks like a key (a long random token, or a prefix such as sk-, hf_, key-)"
    return None


def redact_base_url(url: str) -> str:
    """``url`` as it may be shown: scheme, host and port, and the path's plain, non-secret words; a user
    name or password, a secret-looking part, and whatever follows a ?, # or ; replaced by ***."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    cut = min((i for i in (rest.find(c) for c in "?#;") if i >= 0), default=len(rest))
    rest, tail = rest[:cut], rest[cut:]
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    host, colon, port = authority.rpartition(":") if authority.count(":") == 1 else (authority, "", "")
    host_shown = ".".join("***" if _KEY_PREFIXES.match(label) else label for label in host.split("."))
    port_shown = port if port.isdigit() else ("***" if port else "")
    parts = ["***" if s and (not _PLAIN_SEGMENT.fullmatch(s) or secret_segment(s)) else s for s in path.split("/")]
    shown = host_shown + colon + port_shown + slash + "/".join(parts) if slash else host_shown + colon + port_shown
    scheme_shown = (scheme if scheme.lower() in ("http", "https") else "***") + "://" if sep else ""
    return scheme_shown + shown + (tail[0] + "***" if tail else "")


def url_refusal(name: str, url: str) -> str | None:
    """The message refusing ``url`` as the base URL in params key ``name``, or None when it is plain."""
    what = base_url_problem(url)
    if what is None:
        return None
    return (f"{name} {redact_base_url(url)!r} is refused: {what}. params.yaml and dvc.lock are committed, so "
            "whatever it holds would be too. Give the endpoint as scheme://host[:port]/path (e.g. "
            "http://localhost:11434/v1, https://openrouter.ai/api/v1) and the key in $OPENAI_API_KEY, which the "
            "client sends as a header. An endpoint that needs more in its URL (a server behind basic auth, an id "
            "in the path that looks like a key): leave base_url empty and set the whole URL in $OPENAI_BASE_URL "
            "(your shell, or a git-ignored .env you source), which no file of the pipeline stores.")


# --- LLM calls (shared by translate and synthesize) -----------------------------------------------
class LLMParams(Section):
    model: str = "gpt-4o-mini"
    # None: use $OPENAI_BASE_URL, else the OpenAI API. The key always comes from $OPENAI_API_KEY.
    base_url: Optional[str] = None
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(default=2048, ge=1)
    concurrency: int = Field(default=8, ge=1)
    max_retries: int = Field(default=5, ge=0)
    timeout_s: float = Field(default=60.0, gt=0)
    max_reasks: int = Field(default=2, ge=0)
    response_format: Literal["json_schema", "json_object"] = "json_schema"
    # client-side limits, below the account's, so the server never has to say 429 (None: unlimited)
    requests_per_minute: Optional[int] = Field(default=None, ge=1)
    tokens_per_minute: Optional[int] = Field(default=None, ge=1)
    # USD per million tokens, for the cost estimate in metrics and on the progress bar (gpt-4o-mini's)
    input_price_per_1m: float = Field(default=0.15, ge=0.0)
    output_price_per_1m: float = Field(default=0.60, ge=0.0)
    # provider "batch": OpenAI's Batch API (half price, results within completion_window)
    batch_completion_window: str = "24h"
    batch_max_requests: int = Field(default=50000, ge=1)
    batch_max_bytes: int = Field(default=190_000_000, ge=1024)
    batch_poll_interval_s: float = Field(default=30.0, gt=0)
    # share of the stage's LLM jobs that may fail (after retries and re-asks) before the stage exits
    # non-zero; an outage fails them all, so an exit 0 with an empty output cannot happen
    max_failure_share: float = Field(default=0.05, ge=0.0, le=1.0)
    # circuit breaker: after this many jobs in a row gave up on transient errors (no connection,
    # timeouts, 5xx, 429, after their max_retries), stop sending and fail the stage (None: never)
    abort_after_consecutive_failures: Optional[int] = Field(default=20, ge=1)

    @field_validator("base_url")
    @classmethod
    def _plain_base_url(cls, url: Optional[str]) -> Optional[str]:
        refusal = url_refusal("base_url", url) if url else None  # an allow-list: see base_url_problem
        if refusal:
            raise ValueError(refusal)
        return url


class SynthesizeLLMParams(LLMParams):
    """synthesize's LLM calls: the same fields, with the defaults params.yaml ships for writing pairs."""

    temperature: float = Field(default=0.3, ge=0.0, le=2.0)  # a little variety in question wording
    max_tokens: int = Field(default=1024, ge=1)
    concurrency: int = Field(default=4, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)


class TranslateParams(Section):
    provider: Literal["dataset", "openai", "batch"] = "dataset"
    # with provider=dataset: items missing from the translations go to the API when a key is set
    fallback_to_api: bool = True
    dataset_hub_id: Optional[str] = None
    dataset_hub_revision: Optional[str] = None
    # ask again the items whose replies failed validation (kept in the ledger as final); not part of
    # any job key, so `dvc exp run -S translate.retry_failed=true` reruns the stage and re-asks only those.
    # The --retry-failed flag does the same for one run.
    retry_failed: bool = False
    llm: LLMParams = Field(default_factory=LLMParams)

    @field_validator("dataset_hub_id")
    @classmethod
    def _no_credentials_in_hub_id(cls, hub_id: Optional[str]) -> Optional[str]:
        refuse_hub_credential("dataset_hub_id", hub_id)  # it would also be shown in translate's messages
        return hub_id


class SynthesizeParams(Section):
    provider: Literal["dataset", "openai", "batch"] = "dataset"
    pairs_per_chunk: int = Field(default=2, ge=1)
    chunk_tokens: int = Field(default=400, ge=50)
    chunk_overlap_tokens: int = Field(default=60, ge=0)
    # share of an answer's content words that must appear in the source text for it to be kept
    min_grounding: float = Field(default=0.6, ge=0.0, le=1.0)
    # an LLM pair below min_grounding is kept when the passage it quotes is in the chunk verbatim and its
    # answer overlaps that passage by at least this share (a paraphrase of a quoted rule)
    span_min_grounding: float = Field(default=0.3, ge=0.0, le=1.0)
    near_duplicate_threshold: float = Field(default=0.8, gt=0.0, le=1.0)
    validation_docs_share: float = Field(default=0.5, ge=0.0, lt=1.0)
    multiple_choice: bool = True
    seed: int = 0
    # ask again the chunks whose replies failed validation (see TranslateParams.retry_failed)
    retry_failed: bool = False
    llm: SynthesizeLLMParams = Field(default_factory=SynthesizeLLMParams)

    @model_validator(mode="after")
    def _overlap_smaller_than_chunk(self):
        if self.chunk_overlap_tokens >= self.chunk_tokens:
            raise ValueError("chunk_overlap_tokens must be smaller than chunk_tokens")
        return self


# --- clean ---------------------------------------------------------------------------------------
class CleanParams(Section):
    min_context_chars: int = Field(default=20, ge=0)
    min_question_chars: int = Field(default=5, ge=0)
    # share of characters that are letters, digits, punctuation or spaces below which text is junk
    min_clean_char_ratio: float = Field(default=0.9, ge=0.0, le=1.0)


# --- base model ----------------------------------------------------------------------------------
class TinyModelParams(Section):
    vocab_size: int = Field(default=2000, ge=300)
    hidden_size: int = 64
    intermediate_size: int = 192
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 1024
    initializer_range: float = 0.2
    seed: int = 0

    @model_validator(mode="after")
    def _bnb_cpu_shapes(self):
        # bitsandbytes' CPU 4-bit inference packs weights in blocks of 32 output rows
        head_dim = self.hidden_size // self.num_attention_heads
        dims = {"hidden_size": self.hidden_size, "intermediate_size": self.intermediate_size,
                "num_key_value_heads * head_dim": self.num_key_value_heads * head_dim}
        bad = [f"{k}={v}" for k, v in dims.items() if v % 32]
        if bad:
            raise ValueError(f"{', '.join(bad)} must be multiples of 32 for 4-bit layers on CPU")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be divisible by num_attention_heads")
        return self


class BaseModelParams(Section):
    source: Literal["tiny", "hub", "local", "gguf"] = "tiny"
    hub_id: str = "HuggingFaceH4/zephyr-7b-beta"
    revision: Optional[str] = "3bac358730f8806e5c3dc7c7e19eb36e045bf720"  # zephyr-7b-beta, pinned
    # source: local -- a Hugging Face save (config.json, weights, tokenizer with a chat template)
    local_dir: Optional[str] = None
    # source: gguf -- a .gguf file (LM Studio, Ollama, llama.cpp), dequantized by transformers' loader;
    # either a path, or a pip package that ships the file (gguf_package + gguf_file, found without
    # importing the package)
    gguf_path: Optional[str] = None
    gguf_package: Optional[str] = None
    gguf_file: Optional[str] = None
    # approximate download size of the hub model's weights, for `gabarito doctor`'s disk check (0: the
    # tiny model downloads nothing; the thesis profile sets 15 for Zephyr-7B in bf16)
    download_gb: float = Field(default=0.0, ge=0)
    tiny: TinyModelParams = Field(default_factory=TinyModelParams)

    @model_validator(mode="after")
    def _local_sources_named(self):
        if self.source == "local" and not self.local_dir:
            raise ValueError("base_model.local_dir must name a model folder when source is 'local'")
        if self.source == "gguf":
            packaged = bool(self.gguf_package) or bool(self.gguf_file)
            if bool(self.gguf_path) == packaged:
                raise ValueError("base_model source 'gguf' needs either gguf_path (a .gguf file) or gguf_package "
                                 "and gguf_file (a pip package that ships one), not both")
            if packaged and not (self.gguf_package and self.gguf_file):
                raise ValueError("base_model.gguf_package and base_model.gguf_file go together: the package "
                                 "and the name of the .gguf file inside it")
        return self

    @model_validator(mode="after")
    def _hub_needs_revision(self):
        if self.source == "hub" and not self.revision:
            raise ValueError("base_model.revision must pin a commit when source is 'hub' (reproducibility)")
        # the default revision is Zephyr's commit: another hub_id needs its own, written out
        default = type(self).model_fields
        if (self.source == "hub" and self.hub_id != default["hub_id"].default
                and "revision" not in self.model_fields_set):
            raise ValueError(f"base_model.revision must pin a commit of {self.hub_id} when source is 'hub' "
                             "(the default pins the default hub_id's)")
        return self


# --- format --------------------------------------------------------------------------------------
# The option letters, A the first option and J the tenth: format.letters' default, the letters of the
# user's item files and of exam alternatives. The one place the alphabet is written (the regexes that
# read letters are built from it): params.py, not items.py, since every stage reads params and
# importing items here would make five more stages run it
LETTERS = "ABCDEFGHIJ"


class FormatParams(Section):
    include_pdf_qa: bool = True
    # the assistant's answer for multiple choice, e.g. "Alternativa B"
    answer_prefix: str = "Alternativa"
    # the option letters in order; an item with n options uses the first n (2 to 10 options per item),
    # capitals, as answers are parsed and scored in capitals
    letters: list[str] = Field(default_factory=lambda: list(LETTERS))
    # an item longer than train.sft.max_length tokens (gabarito/fit.py): its passage is cut at the end,
    # the start or the middle, marked [...]; or, with drop, a training item is left out (validation and
    # test items are still cut at the end: evaluation never drops an item)
    fit: Literal["cut_end", "cut_start", "cut_middle", "drop"] = "cut_end"

    @field_validator("letters")
    @classmethod
    def _capital_letters(cls, letters: list[str]) -> list[str]:
        if not 2 <= len(letters) <= 26 or len(set(letters)) != len(letters) \
                or not all(len(x) == 1 and "A" <= x <= "Z" for x in letters):
            raise ValueError(f"give 2 or more different capital letters A-Z, in order; got {letters}")
        return letters


# --- train ---------------------------------------------------------------------------------------
class QuantizationParams(Section):
    """Fields of transformers.BitsAndBytesConfig."""

    load_in_4bit: bool = True
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = "nf4"
    bnb_4bit_use_double_quant: bool = True
    bnb_4bit_compute_dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    # dtype the packed 4-bit weights are stored in; FSDP shards only float tensors, so FSDP-QLoRA needs it
    # to be a float dtype equal to the compute dtype (bfloat16); the non-quantized weights load in it too
    bnb_4bit_quant_storage: Literal["uint8", "float16", "bfloat16", "float32"] = "uint8"


class LoraParams(Section):
    """Fields of peft.LoraConfig."""

    r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj"])
    bias: Literal["none", "all", "lora_only"] = "none"
    task_type: Literal["CAUSAL_LM"] = "CAUSAL_LM"


class SFTParams(Section):
    """Fields of trl.SFTConfig (a subset; add fields here as they are needed)."""

    learning_rate: float = Field(default=3e-3, gt=0)
    lr_scheduler_type: str = "cosine"
    num_train_epochs: float = Field(default=5.0, gt=0)
    max_steps: int = -1
    warmup_steps: int = Field(default=10, ge=0)
    per_device_train_batch_size: int = Field(default=8, ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    max_length: int = Field(default=512, ge=16)
    optim: str = "adamw_torch"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    activation_checkpointing: bool = False  # transformers 5 name; gradient_checkpointing is its deprecated alias
    bf16: bool = False
    fp16: bool = False
    logging_steps: int = Field(default=10, ge=1)
    # evaluation on the validation set and checkpoints every N optimizer steps; the best
    # checkpoint by eval loss becomes the adapter
    eval_steps: int = Field(default=20, ge=1)
    save_steps: int = Field(default=20, ge=1)
    save_total_limit: Optional[int] = Field(default=2, ge=1)
    load_best_model_at_end: bool = True
    metric_for_best_model: str = "eval_loss"
    greater_is_better: bool = False
    seed: int = 42

    @model_validator(mode="after")
    def _saves_on_evals(self):
        if self.load_best_model_at_end and self.save_steps % self.eval_steps:
            raise ValueError("save_steps must be a multiple of eval_steps when load_best_model_at_end is on")
        return self


class LaunchParams(Section):
    """Flags of ``accelerate launch``. With ``num_processes`` > 1, ``gabarito train`` re-runs itself under
    ``accelerate launch --num_processes N [--config_file F]``: one process per GPU (DDP, or FSDP with a
    config that says so); None: plain DDP."""

    num_processes: int = Field(default=1, ge=1)
    config_file: Optional[str] = None


class PushCheckpointsParams(Section):
    """Where training pushes each whole checkpoint as it is written (gabarito/checkpoints.py)."""

    # a DVC remote's name, "default" for the repository's default remote; None: push nothing
    remote: Optional[str] = None
    keep: int = Field(default=2, ge=1)


class TrainParams(Section):
    quantization: QuantizationParams = Field(default_factory=QuantizationParams)
    lora: LoraParams = Field(default_factory=LoraParams)
    sft: SFTParams = Field(default_factory=SFTParams)
    # stop after this many evaluations without improvement of the eval loss (None: never)
    early_stopping_patience: Optional[int] = Field(default=3, ge=1)
    # CPU threads for torch; fixed so that CPU runs are bit-for-bit repeatable
    torch_threads: int = Field(default=2, ge=1)
    launch: LaunchParams = Field(default_factory=LaunchParams)
    push_checkpoints: PushCheckpointsParams = Field(default_factory=PushCheckpointsParams)


# --- evaluate ------------------------------------------------------------------------------------
class EvaluateParams(Section):
    # the first mode's accuracy is the headline (base.accuracy, finetuned.accuracy)
    modes: list[Literal["letter", "loglik", "generate"]] = Field(default_factory=lambda: ["letter", "generate"],
                                                                  min_length=1)
    max_new_tokens: int = Field(default=8, ge=1)
    # generate: words after which a letter is an answer, besides format.answer_prefix ("Resposta: B")
    answer_markers: list[str] = Field(default_factory=lambda: ["resposta", "letra", "opção", "correta", "certa", "é"])
    max_new_tokens_open: int = Field(default=48, ge=1)
    batch_size: int = Field(default=16, ge=1)
    limit: Optional[int] = Field(default=None, ge=1)
    # the 95% interval of a proportion (accuracy): scipy's binomtest(k, n).proportion_ci method. Wilson by
    # default: near 95% coverage even at n = 4, never of zero width; "exact" (Clopper-Pearson) guarantees
    # at least 95% and is wider (0/4: 0-60% against Wilson's 0-49%)
    proportion_ci_method: Literal["wilson", "exact", "wilsoncc"] = "wilson"
    calibration_bins: int = Field(default=10, ge=2)
    position_bias: bool = True
    # warn (log and metrics' top_letter_warning) when one predicted letter takes more than this share of
    # the items in a model/mode: the model answers by position, not by the question
    max_letter_share: float = Field(default=0.5, gt=0.0, le=1.0)
    seed: int = 0
    torch_threads: int = Field(default=2, ge=1)
    # CPU inference path of the 4-bit layers (gabarito/modeling.py CPU_KERNELS): portable gives the same numbers
    # on every CPU; packed is bitsandbytes' fused bf16 kernel, only on CPUs with AVX512-BF16, other numbers
    cpu_4bit_kernel: Literal["portable", "packed"] = "portable"

    @model_validator(mode="after")
    def _unique_modes(self):
        if len(set(self.modes)) != len(self.modes):
            raise ValueError("modes must not repeat")
        return self


# --- merge (gabarito merge: the adapter folded into the base, for serving without peft) ----------
class MergeParams(Section):
    # dtype of the merged weights (the 4-bit base is dequantized to it before the LoRA update is added)
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    # the merged model's letter-mode accuracy on validation may differ from base+adapter's by at most this,
    # and at most this share of its predicted letters may differ
    parity_tolerance: float = Field(default=0.02, ge=0.0, le=1.0)
    batch_size: int = Field(default=16, ge=1)
    torch_threads: int = Field(default=2, ge=1)


# --- OpenAI hosted fine-tuning of the exported chat JSONL ----------------------------------------
class OpenAIFinetuneParams(Section):
    model: str = "gpt-4o-mini-2024-07-18"
    n_epochs: int = Field(default=3, ge=1, le=50)
    # USD per 1M training tokens for `model` (see OpenAI's pricing page); cost = tokens x epochs x price
    price_per_million_tokens: float = Field(default=3.0, ge=0)
    max_tokens_per_example: int = Field(default=65536, ge=1)
    min_examples: int = Field(default=10, ge=1)
    suffix: Optional[str] = Field(default="gabarito", max_length=64)
    base_url: Optional[str] = None    # None: $OPENAI_BASE_URL, else the OpenAI API
    poll_interval_s: float = Field(default=30.0, gt=0)

    _plain_base_url = field_validator("base_url")(classmethod(LLMParams._plain_base_url.__func__))


SECTIONS: dict[str, type[Section]] = {
    "ingest": IngestParams,
    "mcq": MCQParams,
    "extract": ExtractParams,
    "exams": ExamsParams,
    "translate": TranslateParams,
    "synthesize": SynthesizeParams,
    "clean": CleanParams,
    "base_model": BaseModelParams,
    "format": FormatParams,
    "train": TrainParams,
    "evaluate": EvaluateParams,
    "merge": MergeParams,
    "openai_finetune": OpenAIFinetuneParams,
}


def _suggest(bad: str, model: type[BaseModel]) -> str:
    close = difflib.get_close_matches(bad, list(model.model_fields), n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (valid keys: {', '.join(model.model_fields)})"


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """Follow a pydantic error location down nested sections to the model that owns its last key."""
    for key in loc[:-1]:
        if isinstance(key, int):  # an entry of a list of sections (mcq.sources.0): the item's model, below
            continue
        field = model.model_fields.get(key) if isinstance(key, str) else None
        ann = getattr(field, "annotation", None)
        if get_origin(ann) is list and get_args(ann):
            ann = get_args(ann)[0]
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    return model


def parse_section(name: str, data: Any, source: str = "params.yaml") -> Section:
    model = SECTIONS[name]
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in (name, *err["loc"]))
            if err["type"] == "extra_forbidden":
                owner = _model_at(model, err["loc"])
                hint = _suggest(str(err["loc"][-1]), owner) if owner else ""
                lines.append(f"  {where}: unknown key{hint}")
            else:
                lines.append(f"  {where}: {err['msg']}")
        raise InputError(f"{source}: invalid section '{name}':\n" + "\n".join(lines)) from None


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: not found. Run from the repository root (or restore it: `git checkout -- {path}`).")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None
    check_sections(data, str(path))
    return data


def check_sections(data: Any, source: str) -> None:
    """``data`` is a mapping whose keys are params sections; else an InputError naming ``source``, with
    the closest valid name for each unknown section. Used for params.yaml and for profiles."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a mapping of sections ({', '.join(SECTIONS)}), "
                         f"got a {type(data).__name__}.")
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, list(SECTIONS), n=1)
            hints.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise InputError(f"{source}: unknown section(s) {', '.join(hints)}; valid: {', '.join(SECTIONS)}")


def load_section(name: str, path: str | Path = "params.yaml") -> Section:
    """Load and validate one stage's section: a stage reads only its own knobs."""
    return parse_section(name, load_params(path).get(name), str(path))


def load_all(path: str | Path = "params.yaml") -> dict[str, Section]:
    data = load_params(path)
    return {name: parse_section(name, data.get(name), str(path)) for name in SECTIONS}
