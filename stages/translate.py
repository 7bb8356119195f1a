"""Translate multiple-choice items EN -> PT-BR, each item (context, question, its 2-10 answers) as one object.

    gabarito translate --items data/interim/cosmosqa_en.jsonl [--items more.jsonl ...] \\
        --translations data/raw/cosmosqa_pt --prompt prompts/translate.v2.txt --ledger data/interim/ledger/translate.jsonl \\
        --out data/interim/translated_pt.jsonl --failures data/interim/translate_failures.jsonl \\
        --metrics metrics/translate.json

Providers (``translate.provider``):
  dataset  reuse existing translations joined by id (the bundled ones, or a published Portuguese
           Cosmos QA); items they lack go to the API when ``OPENAI_API_KEY`` is set and
           ``fallback_to_api`` is on, otherwise the stage stops saying how many are missing.
  openai   every item goes to the OpenAI-compatible API through :mod:`gabarito.llm`.

The label never goes to the model: it is copied, so it cannot change.

``--items`` may be given several times (Cosmos QA, the user's own files): the records are taken in
the order given, and an id may appear in only one of them. An item whose ``language`` is ``pt`` is
already Portuguese: it passes through untouched (``translated_by: original``), with no API call and
no lookup in the translations. An item without ``language`` is English (the Cosmos QA layout).

When more than ``translate.llm.max_failure_share`` of the items sent to the API fail (an outage, a
429 storm, an item the API refuses), the stage exits 1 naming them: the translations are not
written, so DVC caches nothing, while the ledger keeps every paid reply for the rerun.
"""

from __future__ import annotations

import os
import re
import string
import unicodedata
from pathlib import Path
from typing import Callable

import click
from pydantic import BaseModel, ConfigDict, ValidationError

from gabarito.clikit import log, params_option, require_output, user_errors
from gabarito.io import InputError, dumps, read_jsonl_lines
from gabarito.llm import InvalidReply, Job, parse_json_object

PT_WORDS = frozenset(
    "a o as os de da do das dos que não nao para com uma um em no na nos nas é foi era eu meu minha "
    "ele ela eles elas se por mais mas como muito estava estou porque quando isso este esta sua seu "
    "também já até ao à pelo pela".split()
)
EN_WORDS = frozenset(
    "the and to of was i my it that for with is in on me he she they we at be this had have but "
    "so just because when what would will could".split()
)

# an item's language: pt passes through, en is translated (an item without one is English: Cosmos QA)
LANGUAGES = ("pt", "en")
ORIGINAL = "original"  # translated_by of an item that was Portuguese already
# keys of the multiple-choice record carried over from the English item (the rest is the translation)
CARRIED = ("question_type", "none_correct", "source", "subject", "doc", "page")
# the placeholders of the prompt file's user part
ITEM_JSON, N_OPTIONS = "{{item_json}}", "{{n_options}}"


def schema(n_answers: int) -> dict:
    """The reply's JSON schema (structured outputs): exactly as many alternatives as the item has."""
    return {
        "type": "object",
        "properties": {
            "contexto": {"type": "string"},
            "pergunta": {"type": "string"},
            "alternativas": {"type": "array", "items": {"type": "string"},
                             "minItems": n_answers, "maxItems": n_answers},
        },
        "required": ["contexto", "pergunta", "alternativas"],
        "additionalProperties": False,
    }


class Translation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contexto: str
    pergunta: str
    alternativas: list[str]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-zà-ÿ]+", text.casefold())


def _fold(text: str) -> str:
    return " ".join(_words(unicodedata.normalize("NFC", text)))


def language_votes(text: str) -> tuple[int, int]:
    words = _words(text)
    return sum(w in PT_WORDS for w in words), sum(w in EN_WORDS for w in words)


def check_translation(item: dict, tr: dict) -> None:
    """Raise InvalidReply when a translation breaks the item's invariants."""
    answers = tr["answers"]
    n = len(item["answers"])
    if len(answers) != n:
        raise InvalidReply(f"são necessárias exatamente {n} alternativas, vieram {len(answers)}")
    empty = [i for i, a in enumerate(answers) if not a.strip()]
    if empty:
        raise InvalidReply(f"alternativa(s) vazia(s): {', '.join(string.ascii_uppercase[i] for i in empty)}")
    if not tr["question"].strip():
        raise InvalidReply("a pergunta não pode ser vazia")
    # an item without a passage (an exam question carries it inside the question) keeps none
    if item["context"].strip() and not tr["context"].strip():
        raise InvalidReply("o contexto não pode ser vazio")
    if not item["context"].strip() and tr["context"].strip():
        raise InvalidReply("o contexto veio vazio na questão: devolva o contexto vazio")
    en_distinct = len({_fold(a) for a in item["answers"]})
    if len({_fold(a) for a in answers}) < en_distinct:
        raise InvalidReply("duas alternativas ficaram iguais: cada alternativa deve ser traduzida separadamente")
    for field in ("context", "question"):
        pt_votes, en_votes = language_votes(tr[field])
        echo = _fold(tr[field]) == _fold(item[field]) and len(_words(item[field])) >= 4
        if echo or (en_votes > pt_votes and len(_words(tr[field])) >= 6):
            raise InvalidReply(f"o campo '{field}' não foi traduzido para o português")
    long_answers = [i for i, a in enumerate(item["answers"]) if len(_words(a)) >= 4]
    if long_answers and all(_fold(answers[i]) == _fold(item["answers"][i]) for i in long_answers):
        raise InvalidReply("as alternativas não foram traduzidas para o português")


def validator(item: dict):
    def validate(raw: str) -> dict:
        obj = parse_json_object(raw)
        try:
            parsed = Translation.model_validate(obj)
        except ValidationError as exc:
            raise InvalidReply("o JSON deve ter exatamente as chaves contexto, pergunta e alternativas "
                               f"(lista de {len(item['answers'])} textos): {exc.errors()[0]['msg']}") from None
        tr = {"context": parsed.contexto, "question": parsed.pergunta, "answers": parsed.alternativas}
        check_translation(item, tr)
        return tr

    return validate


def build_job(item: dict, template: str) -> Job:
    payload = {"contexto": item["context"], "pergunta": item["question"],
               "alternativas": item["answers"]}
    system, _, user = template.partition("\n---\n")
    return Job(
        id=item["id"],
        key_input={"id": item["id"], **payload},
        messages=[{"role": "system", "content": system.strip()},
                  {"role": "user", "content": user.replace(N_OPTIONS, str(len(item["answers"])))
                                                  .replace(ITEM_JSON, dumps(payload)).strip()}],
        validate=validator(item),
        schema_name="traducao",
        schema=schema(len(item["answers"])),
    )


def load_translations(path: str | Path) -> dict[str, dict]:
    """Translations keyed by id from a JSONL file or a folder of them.

    Each line: ``{"id", "context", "question", "answers": [n]}``; ``answer0``, ``answer1``, ... are
    accepted too.
    """
    path = Path(path)
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise InputError(f"{path}: no .jsonl translation files found.")
    out: dict[str, dict] = {}
    seen: dict[str, str] = {}  # id -> where it was first read
    for file in files:
        for lineno, rec in read_jsonl_lines(file):
            where = f"{file}:{lineno}"
            tr = _translation_record(rec, where=where)
            key = str(rec["id"])
            if key in seen and out[key] != tr:
                raise InputError(f"{where}: id {key!r} has another translation at {seen[key]}; keep one of them.")
            out[key] = tr
            seen.setdefault(key, where)
    return out


def load_translations_hub(hub_id: str, revision: str | None) -> dict[str, dict]:
    import datasets

    out: dict[str, dict] = {}
    try:
        dsd = datasets.load_dataset(hub_id, revision=revision)
    except Exception as exc:
        raise InputError(f"hub dataset {hub_id}: could not load ({exc}).") from None
    for split, ds in dsd.items():
        for i, rec in enumerate(ds):
            out[str(rec.get("id"))] = _translation_record(rec, where=f"{hub_id}[{split}][{i}]")
    return out


def _answer_columns(rec: dict) -> list | None:
    """answer0, answer1, ... while they run (a CSV-shaped translation), or None without answer0."""
    answers = []
    while f"answer{len(answers)}" in rec:
        answers.append(rec[f"answer{len(answers)}"])
    return answers or None


def _translation_record(rec: dict, *, where: str) -> dict:
    answers = rec.get("answers")
    if answers is None:
        answers = _answer_columns(rec)
    # an empty context is a translation too: items without a passage (exam questions) have none
    missing = [k for k in ("id", "context", "question")
               if not (isinstance(rec.get(k), str) if k == "context" else rec.get(k))]
    if missing or not isinstance(answers, list):
        raise InputError(
            f"{where}: a translation needs id, context, question and answers (a list, one text per option) or "
            f"answer0, answer1, ...; missing {', '.join(missing) or 'answers'}."
        )
    if not all(isinstance(a, str) and a.strip() for a in answers):
        raise InputError(f"{where}: every answer must be a non-empty text; fix the translation of {rec['id']!r}.")
    return {"context": rec["context"], "question": rec["question"], "answers": list(answers)}


def merge(item: dict, tr: dict, *, by: str) -> dict:
    """The translated item: the label, the tags read off the English text and the item's source,
    subject, doc and page are carried over; its language is now pt."""
    tags = {k: item[k] for k in CARRIED if k in item}
    return {"id": item["id"], "split": item["split"], "label": item["label"], "context": tr["context"],
            "question": tr["question"], "answers": tr["answers"], "translated_by": by, **tags, "language": "pt"}


def pass_through(items: list[dict]) -> tuple[list[dict], list[dict]]:
    """(Portuguese items as they came, with ``translated_by: original``; English items to translate).
    An item without ``language`` is English, as Cosmos QA's are."""
    original, english = [], []
    for item in items:
        if item.get("language", "en") == "pt":
            original.append({**item, "translated_by": ORIGINAL})
        else:
            english.append(item)
    return original, english


def read_items(paths: list[str | Path]) -> list[dict]:
    """The records of every ``--items`` file, in the order given; an id in two places is an error
    naming both (the translation, and everything after it, is joined by id), as is a language other
    than pt or en."""
    records: list[dict] = []
    seen: dict[str, str] = {}
    for path in paths:
        for lineno, rec in read_jsonl_lines(path):
            where = f"{path}:{lineno}"
            key = rec.get("id") if isinstance(rec, dict) else None
            if not isinstance(key, str) or not key:
                raise InputError(f"{where}: an item needs a non-empty text id.")
            if key in seen:
                raise InputError(f"{where}: id {key!r} is also at {seen[key]}. Ids must be unique across every "
                                 "--items file: rename one of them at its source.")
            if rec.get("language", "en") not in LANGUAGES:
                raise InputError(f"{where}: item {key!r} has language {rec['language']!r}; translate takes "
                                 f"{' or '.join(LANGUAGES)} (pt passes through, en is translated). Fix it at its "
                                 "source.")
            seen[key] = where
            records.append(rec)
    return records


def join_dataset(items: list[dict], translations: dict[str, dict], source: str) -> tuple[list[dict], list[dict]]:
    """(translated, missing) by joining on id; a malformed translation is an error naming its id."""
    done, missing = [], []
    for item in items:
        tr = translations.get(item["id"])
        if tr is None:
            missing.append(item)
            continue
        if len(tr["answers"]) != len(item["answers"]):
            raise InputError(f"{source}: translation of {item['id']!r} has {len(tr['answers'])} answers, "
                             f"expected {len(item['answers'])} (as the item has). Fix that line.")
        done.append(merge(item, tr, by="dataset"))
    return done, missing


def api_configured() -> bool:
    return bool(os.environ.get("OPENAI_API_KEY"))


def missing_error(missing: list[dict], source: str) -> InputError:
    sample = ", ".join(m["id"] for m in missing[:3])
    return InputError(
        f"{len(missing)} item(s) have no translation in {source} (e.g. {sample}). Either add them to the "
        "translations, or let the API translate them: export OPENAI_API_KEY (and OPENAI_BASE_URL or "
        "translate.llm.base_url for a local server) with translate.fallback_to_api: true, or set "
        "translate.provider: openai."
    )


# --- the stage: routing, labels, record order, metrics ---------------------------------------------
def translated_by(provider: str, model: str) -> str:
    """The label of an item the API translated: the Batch API, or chat calls (provider openai, and
    dataset when it falls back to the API for what the translations lack)."""
    return f"{'batch' if provider == 'batch' else 'openai'}:{model}"


def route(items: list[dict], table: dict[str, dict] | None, source: str, *, fallback_to_api: bool,
          api: bool) -> tuple[list[dict], list[dict]]:
    """(translated from the dataset, items for the API). ``table`` None: provider openai/batch, every
    item goes to the API. Items the dataset lacks go to the API only with ``fallback_to_api`` and a
    key (``api``); otherwise the stage stops, saying how many are missing."""
    if table is None:
        return [], list(items)
    done, missing = join_dataset(items, table, source)
    if missing and not (fallback_to_api and api):
        raise missing_error(missing, source)
    return done, missing


def collect(missing: list[dict], results: dict[str, dict], *, by: str,
            where: Callable[[str], str]) -> tuple[list[dict], list[dict]]:
    """(translated, failures) from the engine's results for ``missing``, in its order.

    A stored result of the wrong shape (a ledger edited by hand, or from another version) is an
    error naming its ledger line (``where(key)``), not a KeyError later.
    """
    done, failed = [], []
    for it in missing:
        entry = results[it["id"]]
        if entry["status"] != "ok":
            failed.append({"id": it["id"], "reason": entry["reason"], "raw": entry.get("raw", "")})
            continue
        tr = entry["result"]
        answers = tr.get("answers")
        n = len(it["answers"])
        if not (isinstance(tr.get("context"), str) and isinstance(tr.get("question"), str)
                and isinstance(answers, list) and len(answers) == n and all(isinstance(a, str) for a in answers)):
            raise InputError(f"{where(entry['key'])}: the stored translation of {it['id']!r} needs context, "
                             f"question and answers (a list of {n} texts). Remove that line (its call is made "
                             "again) and rerun.")
        done.append(merge(it, tr, by=by))
    return done, failed


def in_input_order(items: list[dict], done: list[dict]) -> list[dict]:
    """Translated records in the order of the English items (dataset and API results interleave)."""
    order = {r["id"]: i for i, r in enumerate(items)}
    return sorted(done, key=lambda r: order[r["id"]])


def metrics(engine_metrics: dict, items: list[dict], done: list[dict], failed: list[dict]) -> dict:
    """``translated`` counts every item that leaves in Portuguese, ``original`` those that came in
    Portuguese (no call, no lookup)."""
    return {**engine_metrics, "items": len(items), "translated": len(done), "failures": len(failed),
            "from_dataset": sum(r["translated_by"] == "dataset" for r in done),
            "original": sum(r["translated_by"] == ORIGINAL for r in done)}


# --- command: gabarito translate ---------------------------------------------------------------------
@click.command("translate")
@click.option("--items", type=click.Path(dir_okay=False, exists=True), required=True, multiple=True,
              help="multiple-choice items (JSONL); repeat for several files, read in the order given")
@click.option("--translations", type=click.Path(exists=True), required=True,
              help="existing translations (provider dataset)")
@click.option("--prompt", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--ledger", type=click.Path(dir_okay=False), required=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True)
@click.option("--failures", type=click.Path(dir_okay=False), required=True)
@click.option("--metrics", "metrics_path", type=click.Path(dir_okay=False), required=True)
@click.option("--retry-failed", is_flag=True, help="call the API again for items that failed before")
@click.option("--no-progress", is_flag=True)
@params_option
@user_errors
def command(items, translations, prompt, ledger, out, failures, metrics_path, retry_failed, no_progress, params_path):
    """Translate multiple-choice items EN -> PT-BR (existing translations first, then the API).

    Items with language pt pass through untouched: no call, no lookup.

    \b
    Providers (translate.provider in params.yaml):
      dataset  join existing translations by id; missing items go to the API if a key is set
      openai   any OpenAI-compatible endpoint (OPENAI_BASE_URL / translate.llm.base_url)
      batch    OpenAI's Batch API: half the price, results within a day, resumable

    \b
    Examples:
      dvc repro translate                        # as the pipeline runs it
      OPENAI_API_KEY=sk-... dvc repro translate  # with the API for what the dataset lacks
      gabarito translate ... --retry-failed      # call again only for earlier failures
      dvc exp run -S translate.retry_failed=true # the same, through DVC
    """
    from gabarito import io
    from gabarito.llm import Engine, Ledger, check_failures, retry_advice
    from gabarito.params import load_section

    p = load_section("translate", params_path)
    records = read_items(items)
    original, english = pass_through(records)
    table, source = None, ""
    # a run of Portuguese items only needs no translations at all (a hub dataset would mean the network)
    if p.provider == "dataset" and english:
        if p.dataset_hub_id:
            source = f"{p.dataset_hub_id}@{p.dataset_hub_revision or 'main'}"
            table = load_translations_hub(p.dataset_hub_id, p.dataset_hub_revision)
        else:
            source, table = translations, load_translations(translations)
    done, missing = route(english, table, source, fallback_to_api=p.fallback_to_api, api=api_configured())
    done += original
    template = Path(prompt).read_text(encoding="utf-8")
    failed: list[dict] = []
    results: dict[str, dict] = {}
    # opened (and created) even when nothing is sent: it is a declared output. Locked while open.
    with Ledger(ledger) as led:
        engine = Engine(p.llm, template=template, ledger=led, progress=not no_progress)
        if missing:
            # the flag for one run, the param for `dvc repro` / `dvc exp run -S translate.retry_failed=true`
            results = engine.run([build_job(it, template) for it in missing],
                                 retry_failed=retry_failed or p.retry_failed, batch=p.provider == "batch")
            api_done, failed = collect(missing, results, by=translated_by(p.provider, p.llm.model), where=led.where)
            done += api_done
    # the failures file is written either way (it says why); the translations only when the stage passes
    io.write_jsonl(failures, failed)
    check_failures("translate", failed, len(missing), p.llm.max_failure_share,
                   setting="translate.llm.max_failure_share",
                   retry=f"{retry_advice('translate', results)} Reasons: {failures}")
    require_output("translate", len(records), len(done), what_in="items", what_out="translations",
                   hint=f"See {failures}.")
    done = in_input_order(records, done)
    io.write_jsonl(out, done)
    io.write_json(metrics_path, metrics(engine.metrics(), records, done, failed))
    log(f"translate: {len(done)}/{len(records)} items ({len(original)} already Portuguese, passed through) -> {out}"
        + (f"; {len(failed)} failed -> {failures}" if failed else ""))
