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


# --- for people: ask (doctor lives in stages/doctor.py) -----------------------------------------
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


# --- commands that live at the end of their own stage module --------------------------------------
from stages import chat_format, clean, doctor, extract, ingest, modeling, openai_ft, synthesize, translate  # noqa: E402

for _module in (ingest, extract, translate, synthesize, clean, modeling, chat_format, doctor):
    main.add_command(_module.command)
main.add_command(openai_ft.group)
from stages import train as _train  # noqa: E402

main.add_command(_train.command)


if __name__ == "__main__":
    sys.exit(main())
