"""The ``gabarito`` command line: one subcommand per pipeline stage, called by dvc.yaml.

Each command resolves its paths (dvc.yaml owns them), loads its own params section, reads its
inputs, calls plain functions, and writes outputs atomically. Run ``gabarito COMMAND --help``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from stages import ask, evaluate, io, merge, profile, report
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


# --- train ---------------------------------------------------------------------------------------
@main.command()
@click.option("--train", "train_path", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--validation", type=click.Path(dir_okay=False, exists=True), required=True,
              help="evaluated every train.sft.eval_steps; picks the best checkpoint")
@click.option("--base", type=click.Path(file_okay=False, exists=True), required=True)
@click.option("--out", type=click.Path(file_okay=False), required=True)
@click.option("--checkpoints", type=click.Path(file_okay=False), required=True,
              help="checkpoint folder kept across crashes (a persist: true output)")
@click.option("--live-dir", type=click.Path(file_okay=False), required=True, help="DVCLive logs")
@click.option("--metrics", type=click.Path(dir_okay=False), required=True)
@_params_option
@user_errors
def train(train_path, validation, base, out, checkpoints, live_dir, metrics, params_path):
    """4-bit QLoRA fine-tuning (bitsandbytes NF4 + peft LoRA + trl SFTTrainer).

    After a crash, a power cut or `kill`, run it again (`dvc repro`): it resumes from the last
    complete checkpoint. SIGTERM and SIGHUP save a checkpoint and stop cleanly.

    With train.launch.num_processes > 1 it re-runs itself under `accelerate launch` (one process
    per GPU; DDP, or FSDP with train.launch.config_file=configs/accelerate/fsdp_qlora.yaml).

    \b
    Examples:
      dvc repro train
      dvc exp run -S train.lora.r=32     # an experiment with another LoRA rank
      dvc exp run -S train.launch.num_processes=2   # DDP on 2 GPUs
      dvc plots show metrics/train_live/plots/metrics   # loss, eval loss, lr, tokens/s
    """
    import os
    import shlex

    from stages import train as mod

    p = load_section("train", params_path)
    if p.launch.num_processes > 1 and not mod.launched():
        if p.launch.config_file and not Path(p.launch.config_file).is_file():
            raise InputError(f"train.launch.config_file: {p.launch.config_file} not found. Give a file from "
                             "configs/accelerate/, or null for plain DDP.")
        cmd = mod.accelerate_command(p.launch, [
            "train", "--train", train_path, "--validation", validation, "--base", base, "--out", out,
            "--checkpoints", checkpoints, "--live-dir", live_dir, "--metrics", metrics, "--params", params_path])
        log(f"train: {p.launch.num_processes} processes: {shlex.join(cmd)}")
        sys.stdout.flush()
        sys.stderr.flush()
        # this process becomes the launcher, so a SIGTERM sent to it (dvc, systemd, kill) reaches every
        # rank through torchrun, which waits this long for the checkpoint before it sends SIGKILL
        os.execve(sys.executable, cmd, {"TORCH_ELASTIC_SHUTDOWN_TIMEOUT": "300", **os.environ, mod.LAUNCHED: "1"})
    if mod.launched() and int(os.environ.get("WORLD_SIZE", "1")) != p.launch.num_processes:
        raise InputError(f"accelerate started {os.environ.get('WORLD_SIZE', '1')} process(es), not "
                         f"train.launch.num_processes={p.launch.num_processes}: check train.launch.config_file "
                         f"({p.launch.config_file}); its distributed_type must be MULTI_GPU, FSDP or MULTI_CPU.")
    main = mod.is_main_process()  # under accelerate launch, rank 0 alone writes the outputs
    try:
        if main:
            with io.atomic_path(out, directory=True) as tmp:
                result = mod.train(io.read_jsonl(train_path), base, tmp, p, eval_records=io.read_jsonl(validation),
                                   checkpoint_dir=checkpoints, live_dir=live_dir)
            mod.clear_checkpoints(checkpoints)  # only now that the adapter is in place
        else:
            mod.train(io.read_jsonl(train_path), base, None, p, eval_records=io.read_jsonl(validation),
                      checkpoint_dir=checkpoints)
            return
    except mod.Interrupted as exc:
        if not main:
            sys.exit(1)  # rank 0 says why
        raise click.ClickException(f"training interrupted by {exc}") from None
    io.write_json(metrics, result)
    resumed = f" (resumed from step {result['resumed_from_step']})" if result["resumed_from_step"] else ""
    log(f"train: {result['steps']} steps{resumed}, loss {result['first_logged_loss']} -> "
        f"{result['last_logged_loss']}, best eval loss {result['best_eval_loss']} -> {out}")


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


# --- commands that live at the end of their own modules ---------------------------------------------
main.add_command(evaluate.command)
main.add_command(report.compare_command)
main.add_command(report.command)
main.add_command(merge.command)
main.add_command(ask.command)
main.add_command(profile.command)


if __name__ == "__main__":
    sys.exit(main())
