"""The ``gabarito`` command line: one subcommand per pipeline stage, called by dvc.yaml.

Each command resolves its paths (dvc.yaml owns them), loads its own params section, reads its
inputs, calls plain functions, and writes outputs atomically. Run ``gabarito COMMAND --help``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from stages import io
from stages.io import InputError
from stages.clikit import die_with_parent, log, user_errors
from stages.clikit import params_option as _params_option
from stages.params import load_section

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gabarito")
def main():
    """gabarito: raw exam material in, a fine-tuned Portuguese QA model and its scores out.

    Every stage of dvc.yaml is one subcommand here; `dvc repro` runs them in order.

    \b
    Examples:
      dvc repro                  # run what changed
      gabarito doctor            # is this machine ready (GPU, bitsandbytes, tesseract, keys)?
      gabarito ask --help        # ask the fine-tuned model a question
      gabarito report main       # this experiment against main: deltas with intervals
      gabarito ingest --help     # one stage's options
    """
    die_with_parent()  # a SIGTERM that reaches only dvc must not leave this stage running



# --- ingest --------------------------------------------------------------------------------------
@main.command()
@click.option("--local-dir", type=click.Path(file_okay=False), required=True,
              help="folder with train/validation files (used when ingest.source is local)")
@click.option("--out", type=click.Path(dir_okay=False), required=True)
@_params_option
@user_errors
def ingest(local_dir, out, params_path):
    """Read Cosmos QA (local folder, URLs or the hub) into one normalized JSONL.

    ingest.source picks where from: local (data/raw/cosmosqa, the bundled sample), url (the
    official CSVs) or hub (a pinned dataset revision).

    \b
    Examples:
      dvc repro ingest
      dvc exp run -S ingest.source=hub               # all 28k labelled train + validation items (network)
    """
    from stages import ingest as mod

    p = load_section("ingest", params_path)
    if p.source == "local":
        records = mod.load_local(local_dir, p.splits)
    elif p.source == "url":
        records = mod.load_urls(p.urls, p.splits, timeout=p.download_timeout_s)
    else:
        records = mod.load_hub(p.hub_id, p.hub_revision, p.splits)
    records = mod.limit_per_split(records, p.limit_per_split)
    mod.check_unique_ids(records)
    io.write_jsonl(out, records)
    counts = {s: sum(r["split"] == s for r in records) for s in p.splits}
    log(f"ingest: {len(records)} items {counts} -> {out}")


# --- extract -------------------------------------------------------------------------------------
@main.command()
@click.option("--pdf-dir", type=click.Path(file_okay=False), required=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True)
@click.option("--report", type=click.Path(dir_okay=False), required=True)
@_params_option
@user_errors
def extract(pdf_dir, out, report, params_path):
    """Extract PDF pages to text: the text layer where present, tesseract OCR otherwise.

    Every page gets a quality score; a garbled text layer is OCR'd too. metrics/extract.json lists
    each file's status (ok, ocr, encrypted, corrupt, empty, page_errors, timeout).

    \b
    Examples:
      cp ~/regulamentos/*.pdf data/raw/pdfs/ && dvc repro extract
      dvc exp run -S extract.ocr_dpi=400             # sharper OCR for small print
    """
    from stages import extract as mod

    p = load_section("extract", params_path)
    pages, reports = mod.extract_dir(pdf_dir, p)
    for r in reports:
        if r["status"] not in ("ok", "ocr"):
            log(f"extract: WARNING {Path(pdf_dir) / r['doc']}: {r['status']}: {r['message']}")
    if not any(pg["status"] == "ok" for pg in pages):
        raise InputError(f"{pdf_dir}: no text could be extracted from any PDF (see messages above).")
    io.write_jsonl(out, pages)
    summary = mod.summarize(pages, reports)
    io.write_json(report, summary)
    log(f"extract: {summary['files']} files, {summary['pages_text']} text + {summary['pages_ocr']} OCR pages -> {out}")


# --- translate -----------------------------------------------------------------------------------
@main.command()
@click.option("--items", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--translations", type=click.Path(exists=True), required=True,
              help="existing translations (provider dataset)")
@click.option("--prompt", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--ledger", type=click.Path(dir_okay=False), required=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True)
@click.option("--failures", type=click.Path(dir_okay=False), required=True)
@click.option("--metrics", type=click.Path(dir_okay=False), required=True)
@click.option("--retry-failed", is_flag=True, help="call the API again for items that failed before")
@click.option("--no-progress", is_flag=True)
@_params_option
@user_errors
def translate(items, translations, prompt, ledger, out, failures, metrics, retry_failed, no_progress, params_path):
    """Translate Cosmos QA items EN -> PT-BR (existing translations first, then the API).

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
    """
    from stages import translate as mod
    from stages.llm import Engine, Ledger

    p = load_section("translate", params_path)
    records = io.read_jsonl(items)
    if p.provider == "dataset":
        if p.dataset_hub_id:
            source = f"{p.dataset_hub_id}@{p.dataset_hub_revision or 'main'}"
            table = mod.load_translations_hub(p.dataset_hub_id, p.dataset_hub_revision)
        else:
            source, table = translations, mod.load_translations(translations)
        done, missing = mod.join_dataset(records, table, source)
        if missing and not (p.fallback_to_api and mod.api_configured()):
            raise mod.missing_error(missing, source)
    else:
        done, missing = [], records
    template = Path(prompt).read_text(encoding="utf-8")
    led = Ledger(ledger)  # opened (and created) even when nothing is sent: it is a declared output
    failed: list[dict] = []
    engine = Engine(p.llm, template=template, ledger=led, progress=not no_progress)
    try:
        if missing:
            results = engine.run([mod.build_job(it, template) for it in missing], retry_failed=retry_failed,
                                 batch=p.provider == "batch")
            for it in missing:
                entry = results[it["id"]]
                if entry["status"] == "ok":
                    via = "batch" if p.provider == "batch" else "openai"  # dataset falls back to chat calls
                    done.append(mod.merge(it, entry["result"], by=f"{via}:{p.llm.model}"))
                else:
                    failed.append({"id": it["id"], "reason": entry["reason"], "raw": entry.get("raw", "")})
    finally:
        led.close()
    order = {r["id"]: i for i, r in enumerate(records)}
    done.sort(key=lambda r: order[r["id"]])
    io.write_jsonl(out, done)
    io.write_jsonl(failures, failed)
    io.write_json(metrics, {**engine.metrics(), "items": len(records), "translated": len(done),
                            "failures": len(failed), "from_dataset": sum(r["translated_by"] == "dataset" for r in done)})
    log(f"translate: {len(done)}/{len(records)} items -> {out}" + (f"; {len(failed)} failed -> {failures}" if failed else ""))


# --- synthesize ----------------------------------------------------------------------------------
@main.command()
@click.option("--pages", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--qa-dir", type=click.Path(exists=True), required=True, help="existing Q&A files (provider dataset)")
@click.option("--prompt", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--ledger", type=click.Path(dir_okay=False), required=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True)
@click.option("--rejected", type=click.Path(dir_okay=False), required=True)
@click.option("--metrics", type=click.Path(dir_okay=False), required=True)
@click.option("--no-progress", is_flag=True)
@_params_option
@user_errors
def synthesize(pages, qa_dir, prompt, ledger, out, rejected, metrics, no_progress, params_path):
    """Build grounded Portuguese Q&A pairs from PDF text (imported, or written by an LLM).

    Each pair must be supported by its chunk (lexical overlap or a verbatim span); the rest go to
    the rejected file with a reason. LLM replies are kept in a ledger, so a rerun pays nothing twice.

    \b
    Examples:
      dvc repro synthesize
      OPENAI_API_KEY=... dvc exp run -S synthesize.provider=openai
    """
    from stages import synthesize as mod
    from stages.llm import Engine, Ledger

    p = load_section("synthesize", params_path)
    page_records = io.read_jsonl(pages)
    led = Ledger(ledger)
    template = Path(prompt).read_text(encoding="utf-8")
    engine = Engine(p.llm, template=template, ledger=led, progress=not no_progress)
    try:
        if p.provider == "dataset":
            kept, bad = mod.ground_pairs(mod.load_qa_files(qa_dir), page_records, p.min_grounding)
        else:
            chunks = mod.chunk_pages(page_records, p.chunk_tokens, p.chunk_overlap_tokens)
            results = engine.run([mod.build_job(c, template, p.pairs_per_chunk) for c in chunks],
                                 batch=p.provider == "batch")
            kept, bad = [], []
            for chunk in chunks:
                entry = results[chunk["chunk_id"]]
                if entry["status"] != "ok":
                    bad.append({"source": chunk["chunk_id"], "reason": f"llm: {entry['reason']}", "raw": entry.get("raw", "")})
                    continue
                page_texts = {pg["page"]: pg["text"] for pg in page_records if pg["doc"] == chunk["doc"]}
                k, b = mod.ground_generated(chunk, entry["result"]["pairs"], p.min_grounding, page_texts,
                                            span_min_grounding=p.span_min_grounding)
                kept += k
                bad += b
    finally:
        led.close()
    records, bad, summary = mod.finish(kept, bad, page_records, p)
    io.write_jsonl(out, records)
    io.write_jsonl(rejected, bad)
    io.write_json(metrics, {**engine.metrics(), **summary})
    log(f"synthesize: kept {summary['kept']} pairs ({summary['kept_validation']} in validation), "
        f"{summary['multiple_choice']} multiple-choice items, rejected {len(bad)} -> {out}")


# --- clean ---------------------------------------------------------------------------------------
@main.command()
@click.option("--mcq", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--open", "open_path", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--out-dir", type=click.Path(file_okay=False), required=True)
@click.option("--metrics", type=click.Path(dir_okay=False), required=True)
@_params_option
@user_errors
def clean(mcq, open_path, out_dir, metrics, params_path):
    """Normalize, validate, de-duplicate and leak-check; quarantine rejects with a reason.

    \b
    Examples:
      dvc repro clean
      jq -r .reason data/interim/clean/quarantine.jsonl | sort | uniq -c   # why items were dropped
    """
    from stages import clean as mod

    p = load_section("clean", params_path)
    train, validation, quarantine = mod.clean_records(io.read_jsonl(mcq), io.read_jsonl(open_path), p)
    with io.atomic_path(out_dir, directory=True) as tmp:
        io.write_jsonl(tmp / "train.jsonl", train)
        io.write_jsonl(tmp / "validation.jsonl", validation)
        io.write_jsonl(tmp / "quarantine.jsonl", quarantine)
    summary = mod.summarize(train, validation, quarantine)
    io.write_json(metrics, summary)
    log(f"clean: train {len(train)}, validation {len(validation)}, quarantined {len(quarantine)} -> {out_dir}")


# --- base model ----------------------------------------------------------------------------------
@main.command("base-model")
@click.option("--corpus", type=click.Path(dir_okay=False, exists=True), required=True,
              help="clean training records; their text trains the tiny model's tokenizer")
@click.option("--prompts", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--out", type=click.Path(file_okay=False), required=True)
@_params_option
@user_errors
def base_model(corpus, prompts, out, params_path):
    """Build the tiny offline base model, or write a pinned reference to a hub model.

    \b
    Examples:
      dvc repro base_model
      dvc exp run -S base_model.source=hub           # Zephyr-7B-beta at base_model.revision
    """
    from stages import modeling

    p = load_section("base_model", params_path)
    with io.atomic_path(out, directory=True) as tmp:
        if p.source == "hub":
            io.write_json(tmp / modeling.REFERENCE, {"hub_id": p.hub_id, "revision": p.revision})
            log(f"base-model: {p.hub_id}@{p.revision} (not copied; loaded from the hub cache)")
            return
        from stages.chat_format import load_prompts

        texts = list(load_prompts(prompts).values())
        for rec in io.read_jsonl(corpus):
            if rec["kind"] == "mcq":
                texts += [rec["context"], rec["question"], *rec["answers"]]
            else:
                texts += [rec["question"], rec["answer"]]
        model, tokenizer = modeling.build_tiny(texts, p.tiny)
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        n = sum(t.numel() for t in model.parameters())
    log(f"base-model: tiny Llama, {n:,} parameters, vocabulary {len(tokenizer)} -> {out}")


# --- format --------------------------------------------------------------------------------------
@main.command("format")
@click.option("--train", "train_path", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--validation", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--base", type=click.Path(file_okay=False, exists=True), required=True)
@click.option("--prompts", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--out-dir", type=click.Path(file_okay=False), required=True)
@_params_option
@user_errors
def format_(train_path, validation, base, prompts, out_dir, params_path):
    """Chat-format train/validation with the base tokenizer's template; export OpenAI JSONL.

    \b
    Examples:
      dvc repro format
      head -c 600 data/processed/train.jsonl          # messages, prompt, completion
      gabarito openai-finetune validate               # check the OpenAI export
    """
    from stages import chat_format as mod
    from stages.modeling import load_tokenizer

    p = load_section("format", params_path)
    tokenizer = load_tokenizer(base)
    pr = mod.load_prompts(prompts)
    kw = {"letters": p.letters, "answer_prefix": p.answer_prefix}
    train_set = mod.format_records(io.read_jsonl(train_path), tokenizer, pr, include_open=p.include_pdf_qa, **kw)
    val_set = mod.format_records(io.read_jsonl(validation), tokenizer, pr, include_open=p.include_pdf_qa, **kw)
    with io.atomic_path(out_dir, directory=True) as tmp:
        io.write_jsonl(tmp / "train.jsonl", train_set)
        io.write_jsonl(tmp / "validation.jsonl", val_set)
        io.write_jsonl(tmp / "openai_train.jsonl", mod.openai_export(train_set))
        io.write_jsonl(tmp / "openai_validation.jsonl", mod.openai_export(val_set))
    log(f"format: train {len(train_set)}, validation {len(val_set)} -> {out_dir}")


# --- merge (optional export) ---------------------------------------------------------------------
@main.command()
@click.option("--base", type=click.Path(file_okay=False, exists=True), required=True)
@click.option("--adapter", type=click.Path(file_okay=False, exists=True), required=True)
@click.option("--validation", type=click.Path(dir_okay=False, exists=True), required=True,
              help="items re-scored by the parity check")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="folder for the merged model")
@click.option("--report", type=click.Path(dir_okay=False), required=True, help="parity figures (JSON)")
@click.option("--base-weights", type=click.Choice(["dequantized", "original"]), default="dequantized",
              show_default=True, help="what the LoRA update is added to (see `stages/merge.py`)")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="re-score only the first N validation items")
@_params_option
@user_errors
def merge(base, adapter, validation, out, report, base_weights, limit, params_path):
    """Fold the adapter into the base (safetensors in merge.dtype, no peft needed) and check parity.

    The merged model re-scores the validation items in letter mode; the command fails, keeping no
    merged model, when its accuracy moves by more than merge.parity_tolerance from base+adapter.

    \b
    Examples:
      make merge                                  # models/merged + metrics/merge.json
      gabarito merge --base models/base --adapter models/adapter \\
          --validation data/processed/validation.jsonl --out models/merged --report metrics/merge.json
    """
    from stages import merge as mod
    from stages.params import load_all

    params = load_all(params_path)
    p, q, fmt = params["merge"], params["train"].quantization, params["format"]
    with io.atomic_path(out, directory=True) as tmp:
        summary = mod.merge(base, adapter, tmp, p, q, base_weights=base_weights)
        log(f"merge: {summary['lora_layers_merged']} LoRA layers merged into {summary['parameters']:,} "
            f"{p.dtype} parameters; checking parity on validation")
        try:
            parity = mod.parity(io.read_jsonl(validation), base, adapter, tmp, p, q, letters=fmt.letters,
                                answer_prefix=fmt.answer_prefix, limit=limit)
        except mod.ParityError as exc:  # the figures are still worth keeping; the model is not
            io.write_json(report, {**summary, "parity": exc.report})
            raise
    io.write_json(report, {**summary, "parity": parity})
    log(f"merge: parity ok: accuracy {parity['accuracy_adapter']:.2%} (base+adapter) vs "
        f"{parity['accuracy_merged']:.2%} (merged), letters agree on {parity['letter_agreement']:.2%} "
        f"of {parity['n']} items -> {out}")


# --- OpenAI hosted fine-tuning -------------------------------------------------------------------
@main.group("openai-finetune")
def openai_finetune():
    """OpenAI's hosted fine-tuning of the exported chat JSONL: check it, price it, run it.

    \b
    Examples:
      gabarito openai-finetune validate                     # no key, no call: format, tokens, cost
      OPENAI_API_KEY=... gabarito openai-finetune submit --wait
      gabarito openai-finetune wait ftjob-abc123            # follow a job submitted earlier
    """


def _ft_files(fn):
    fn = click.option("--validation", type=click.Path(dir_okay=False), default="data/processed/openai_validation.jsonl",
                      show_default=True, help="validation file ('' for none)")(fn)
    return click.option("--train", "train_path", type=click.Path(dir_okay=False),
                        default="data/processed/openai_train.jsonl", show_default=True)(fn)


def _print_event(ev: dict) -> None:
    click.echo(f"  [{ev['level']}] {ev['message']}")


@openai_finetune.command("validate")
@_ft_files
@click.option("--json", "as_json", is_flag=True, help="print the whole report as JSON")
@_params_option
@user_errors
def openai_finetune_validate(train_path, validation, as_json, params_path):
    """Check the files against OpenAI's chat fine-tuning format; count tokens; estimate the cost.

    Makes no API call and needs no key. Exits 1 when a line would make OpenAI reject the file.

    \b
    Examples:
      gabarito openai-finetune validate
      gabarito openai-finetune validate --train my.jsonl --validation ''
      gabarito openai-finetune validate --json | jq .train.tokens_per_example
    """
    from stages import openai_ft as mod

    p = load_section("openai_finetune", params_path)
    train_lines = mod.read_file(train_path)[1]
    val_lines = mod.read_file(validation)[1] if validation else None
    check = mod.validate_pair(train_lines, val_lines, p, train_name=train_path, validation_name=validation or "")
    click.echo(json.dumps(check, indent=1, ensure_ascii=False) if as_json else mod.describe(check))
    if not check["ok"]:
        sys.exit(1)


@openai_finetune.command("submit")
@_ft_files
@click.option("--wait", is_flag=True, help="follow the job to the end, printing its events")
@_params_option
@user_errors
def openai_finetune_submit(train_path, validation, wait, params_path):
    """Validate, upload both files and start a fine-tuning job (key from $OPENAI_API_KEY).

    Nothing is uploaded when validation finds an error. The model, epochs and suffix come from
    the openai_finetune section of params.yaml; the endpoint from openai_finetune.base_url or
    $OPENAI_BASE_URL.

    \b
    Examples:
      gabarito openai-finetune submit                 # prints the job id and returns
      gabarito openai-finetune submit --wait          # ... and follows it to the end
    """
    from stages import openai_ft as mod

    p = load_section("openai_finetune", params_path)
    client = mod.make_client(p)
    out = mod.submit(client, train_path, validation or None, p)
    # the id first: a job runs for hours, and a dropped session can pick it up again with `wait`
    click.echo(f"job {out['job_id']}: {out['status']} (model {out['model']}, files {out['training_file']}"
               + (f" + {out['validation_file']}" if out["validation_file"] else "")
               + f"; ~{out['billed_tokens']:,} billed tokens, ~${out['estimated_cost_usd']:.2f})")
    if not wait:
        click.echo(f"follow it with: gabarito openai-finetune wait {out['job_id']}")
        return
    out.update(mod.wait_for_job(client, out["job_id"], p, progress=_print_event))
    click.echo(f"job {out['job_id']}: {out['status']}"
               + (f"; fine-tuned model: {out['fine_tuned_model']}" if out["fine_tuned_model"] else ""))
    if out["status"] != "succeeded":
        raise click.ClickException(f"job {out['job_id']} {out['status']}: {out['error'] or 'no reason given'}")


@openai_finetune.command("wait")
@click.argument("job_id")
@_params_option
@user_errors
def openai_finetune_wait(job_id, params_path):
    """Follow a fine-tuning job until it succeeds, fails or is cancelled, printing its events.

    \b
    Example:
      gabarito openai-finetune wait ftjob-abc123
    """
    from stages import openai_ft as mod

    p = load_section("openai_finetune", params_path)
    out = mod.wait_for_job(mod.make_client(p), job_id, p, progress=_print_event)
    click.echo(f"job {out['job_id']}: {out['status']}"
               + (f"; fine-tuned model: {out['fine_tuned_model']}" if out["fine_tuned_model"] else ""))
    if out["status"] != "succeeded":
        raise click.ClickException(f"job {job_id} {out['status']}: {out['error'] or 'no reason given'}")


# --- evaluate ------------------------------------------------------------------------------------
@main.command()
@click.option("--validation", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--train", "train_path", type=click.Path(dir_okay=False, exists=True), required=True,
              help="training set, to refuse scoring items the model saw")
@click.option("--base", type=click.Path(file_okay=False, exists=True), required=True)
@click.option("--adapter", type=click.Path(file_okay=False, exists=True), required=True)
@click.option("--prompts", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--predictions", type=click.Path(dir_okay=False), required=True)
@click.option("--metrics", type=click.Path(dir_okay=False), required=True)
@click.option("--plots-dir", type=click.Path(file_okay=False), required=True)
@click.option("--report", type=click.Path(dir_okay=False), required=True)
@_params_option
@user_errors
def evaluate(validation, train_path, base, adapter, prompts, predictions, metrics, plots_dir, report, params_path):
    """Score base and fine-tuned models on validation; metrics, predictions, plots and a report.

    \b
    Examples:
      dvc repro evaluate
      dvc metrics show                 # headline numbers
      dvc plots show                   # confusion matrix, accuracy by type, calibration
    """
    from stages import evaluate as mod
    from stages.chat_format import load_prompts
    from stages.params import load_all

    params = load_all(params_path)
    p, fmt, q = params["evaluate"], params["format"], params["train"].quantization
    result, preds, plots = mod.evaluate(
        io.read_jsonl(validation), base, adapter, p, q, letters=fmt.letters, answer_prefix=fmt.answer_prefix,
        prompts_file=load_prompts(prompts), train=io.read_jsonl(train_path))
    io.write_jsonl(predictions, preds)
    io.write_json(metrics, result)
    with io.atomic_path(plots_dir, directory=True) as tmp:
        for name in ("base", "finetuned"):
            io.write_json(tmp / f"confusion_{name}.json", [r for r in plots["confusion"] if r["model"] == name])
            io.write_json(tmp / f"by_type_{name}.json", [r for r in plots["accuracy_by_type"] if r["model"] == name])
        io.write_json(tmp / "calibration.json", plots["calibration"])
    io.write_text(report, mod.render_report(result, p.modes))
    for name in ("base", "finetuned"):
        m = result[name]
        log(f"evaluate: {name} ({p.modes[0]}): accuracy {m['accuracy']:.2%} (valid-only {mod.percent(m['accuracy_valid'])}), "
            f"invalid {m['invalid_rate']:.2%}, n={m['n']}")


@main.command()
@click.argument("a")
@click.argument("b")
@click.option("--model", type=click.Choice(["base", "finetuned"]), default="finetuned", show_default=True)
@click.option("--mode", default="letter", show_default=True, help="evaluation mode to compare")
@click.option("--path", default="metrics/predictions.jsonl", show_default=True,
              help="predictions file inside each experiment")
@user_errors
def compare(a, b, model, mode, path):
    """List the validation items that flipped between two experiments A and B.

    A and B are predictions files, or git revisions / DVC experiment names whose
    metrics/predictions.jsonl is read through DVC.

    \b
    Examples:
      gabarito compare HEAD~1 workspace        # last commit against the working tree
      gabarito compare main exp-lora-r32       # a branch against an experiment
      gabarito compare old.jsonl new.jsonl
    """
    from stages.evaluate import flipped
    from stages.report import reader

    def load(ref: str) -> list[dict]:
        if Path(ref).is_file():
            return io.read_jsonl(ref)
        text = reader(ref)(path)
        if text is None:
            raise InputError(f"{path} is not in '{ref}', or its data is in no local cache (fetch it with "
                             f"`dvc fetch --rev {ref}`, or `dvc exp pull origin {ref}` for an experiment). Give a "
                             "predictions file, a git revision or an experiment name (`dvc exp show`).")
        return [rec for _, rec in io.parse_jsonl(text, f"{ref}:{path}")]

    rows = flipped(load(a), load(b), model=model, mode=mode)
    fixed = sum(r["change"] == "fixed" for r in rows)
    click.echo(f"{len(rows)} items flipped ({model}, {mode}): {fixed} fixed, {len(rows) - fixed} broken in {b}")
    for r in rows:
        click.echo(f"  {r['change']:6}  {r['id']:<20} label {r['label']}  {a}: {r['a'] or '-'}  {b}: {r['b'] or '-'}")


@main.command()
@click.argument("baseline")
@click.option("--current", default="workspace", show_default=True,
              help="the experiment to report on: 'workspace' or a revision / experiment name")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="write here (default: print)")
@click.option("--html", "as_html", is_flag=True, help="one self-contained HTML page (inline SVG charts)")
@click.option("--metrics", default="metrics/eval.json", show_default=True)
@click.option("--predictions", default="metrics/predictions.jsonl", show_default=True)
@click.option("--train-metrics", default="metrics/train.json", show_default=True)
@click.option("--validation", default="data/processed/validation.jsonl", show_default=True,
              help="for the question text of flipped items")
@_params_option
@user_errors
def report(baseline, current, out, as_html, metrics, predictions, train_metrics, validation, params_path):
    """Report an experiment against a BASELINE: metric deltas with 95% intervals, params changed, flips.

    BASELINE and --current are git revisions, branches, tags, DVC experiment names, or
    'workspace'. Accuracy deltas come with a paired bootstrap interval and McNemar's p over the
    items both sides scored; then the params that differ, accuracy by question type, the items
    that flipped, and the plots to compare with `dvc plots diff`.

    \b
    Examples:
      gabarito report main                          # markdown on stdout
      gabarito report HEAD~1 --html --out report.html
      gabarito report main --current exp-lora-r32   # an experiment of `dvc exp show`
    """
    import yaml

    from stages import report as mod

    paths = {"metrics": metrics, "predictions": predictions, "train": train_metrics, "params": params_path,
             "validation": validation}
    sides = [mod.load_side(mod.reader(ref), label=ref, **paths) for ref in (baseline, current)]
    e = load_section("evaluate", params_path)
    dvc_yaml = Path("dvc.yaml")
    plots = mod.plot_files(yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))) if dvc_yaml.is_file() else []
    rep = mod.build_report(*sides, labels=(baseline, current), bootstrap_samples=e.bootstrap_samples, seed=e.seed,
                           plots=plots, baseline_rev=baseline, current_rev=current)
    text = mod.render_html(rep) if as_html else mod.render_markdown(rep)
    if out:
        io.write_text(out, text)
        log(f"report: {baseline} -> {current} written to {out}")
    else:
        click.echo(text, nl=False)


# --- for people: doctor and ask ------------------------------------------------------------------
@main.command()
@_params_option
@user_errors
def doctor(params_path):
    """Check this machine for gabarito: GPU and CUDA, bitsandbytes, tesseract, keys, disk, DVC remote.

    API keys are reported as set or not set, never shown. Exits 1 when a check fails (warnings
    do not fail: the offline profile needs no GPU and no key).

    \b
    Examples:
      gabarito doctor
      make doctor
    """
    from stages import doctor as mod
    from stages.params import load_all

    params = load_all(params_path)
    rows = mod.run_all(root=".", download_gb=params["base_model"].download_gb, ocr_lang=params["extract"].ocr_lang)
    click.echo(mod.render(rows))
    sys.exit(mod.overall(rows))


@main.command()
@click.option("--base", type=click.Path(file_okay=False), default="models/base", show_default=True)
@click.option("--adapter", type=click.Path(file_okay=False), default="models/adapter", show_default=True)
@click.option("--no-adapter", is_flag=True, help="ask the base model alone")
@click.option("--prompts", type=click.Path(dir_okay=False, exists=True), default="prompts/chat.v1.yaml",
              show_default=True)
@click.option("--context", default="", help="the text the question is about")
@click.option("--question", default=None)
@click.option("--option", "options", multiple=True, help="an answer option; give it once per letter, in order")
@click.option("--file", "file_", type=click.File("r", encoding="utf-8-sig"), default=None,
              help="questions in the block format, separated by '---' lines ('-': standard input)")
@click.option("--json", "as_json", is_flag=True, help="one JSON line per question")
@_params_option
@user_errors
def ask(base, adapter, no_adapter, prompts, context, question, options, file_, as_json, params_path):
    """The answer key: the fine-tuned model picks A-D for a question, with each option's probability.

    Give one question with --question and four --option, a file of questions with --file, or
    nothing to type them in (an empty question ends). The prompt is exactly the one the model was
    trained and evaluated on; the letter is scored in one forward pass (letter mode).

    \b
    Examples:
      gabarito ask --context "Fui ao mercado comprar pão." --question "Por que fui ao mercado?" \\
          --option "Para comprar pão." --option "Para vender o carro." --option "Para trabalhar." \\
          --option "Nenhuma das alternativas."
      gabarito ask --file questions.txt          # Contexto: / Pergunta: / A) ... D) blocks
      gabarito ask                               # interactive
    """
    import warnings

    from stages import ask as mod
    from stages.chat_format import load_prompts
    from stages.modeling import seed_everything
    from stages.params import load_all

    # libraries' deprecation notices are for developers; a person asking a question sees the answer
    warnings.filterwarnings("ignore", category=FutureWarning)

    params = load_all(params_path)
    fmt, e = params["format"], params["evaluate"]
    letters = fmt.letters
    if question is not None or options:
        items = [{"context": context, "question": question or "", "options": list(options)}]
        mod.check_question(letters=letters, **items[0])
    elif file_ is not None:
        items = mod.parse_blocks(file_.read(), letters)
    else:
        items = None  # interactive
    if not Path(base).is_dir():
        raise InputError(f"{base}: no base model here. Run `dvc repro` (or `dvc pull`) first.")
    pr = load_prompts(prompts)  # before the model: a bad file should not cost a 7B load first
    seed_everything(e.seed, e.torch_threads)
    model, tokenizer = mod.load(base, None if no_adapter else adapter, params["train"].quantization)

    def one(item: dict) -> None:
        result = mod.answer(model, tokenizer, prompts=pr, letters=letters, answer_prefix=fmt.answer_prefix, **item)
        if as_json:
            click.echo(json.dumps({**item, **result}, ensure_ascii=False, sort_keys=True))
        else:
            click.echo(mod.render(result, item["options"], letters))

    if items is not None:
        for item in items:
            one(item)
        return
    click.echo(f"Type a question (empty question: quit). Options {', '.join(letters)}.", err=True)
    while True:
        ctx = click.prompt("Contexto (optional)", default="", show_default=False, err=True)
        q = click.prompt("Pergunta", default="", show_default=False, err=True)
        if not q.strip():
            return
        opts = [click.prompt(f"{letter})", err=True) for letter in letters]
        try:
            one({"context": ctx, "question": q, "options": opts})
        except InputError as exc:  # a typo in one question does not end the session
            click.echo(f"Error: {exc}", err=True)


from stages import train as _train  # noqa: E402

main.add_command(_train.command)


if __name__ == "__main__":
    sys.exit(main())
