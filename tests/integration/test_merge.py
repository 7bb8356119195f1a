"""Merged-model export on the tiny model (CPU): plain weights, same bytes twice, same logits, parity."""

from __future__ import annotations

import json
import shutil

import pytest

from gabarito.io import InputError
from gabarito.params import MergeParams, QuantizationParams
from gabarito.tools.merge import (
    ParityError,
    load_dense,
    load_dequantized,
    merge,
    parity,
)
from tests.cli_runner import invoke

LETTERS = list("ABCD")
PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj"]
P = MergeParams(dtype="float32")
Q = QuantizationParams()


@pytest.fixture(scope="module")
def adapter(tiny_base, tmp_path_factory):
    """A LoRA adapter on the six projections whose B is random, not zero: it changes the model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny_base)),
                           LoraConfig(r=4, lora_alpha=8, target_modules=PROJECTIONS, init_lora_weights=False,
                                      task_type="CAUSAL_LM"))
    out = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def merged(tiny_base, adapter, tmp_path_factory):
    out = tmp_path_factory.mktemp("merged")
    return out, merge(tiny_base, adapter, out, P, Q)


@pytest.fixture(scope="module")
def records(formatted):
    train, val = formatted
    return train + val  # 22 items: parity does not care which split they come from


@pytest.fixture(scope="module")
def validation(tiny_base, repo_root):
    """All 48 items of the bundled validation split, as the offline pipeline's parity check scores them."""
    from gabarito.chat import load_prompts
    from gabarito.modeling import load_tokenizer
    from stages.format import format_records
    from stages.ingest import load_local
    from stages.translate import join_dataset, load_translations

    items = load_local(repo_root / "data/raw/cosmosqa", ["validation"])
    pt, _ = join_dataset(items, load_translations(repo_root / "data/raw/cosmosqa_pt"), "sample")
    return format_records([{**r, "kind": "mcq"} for r in pt], load_tokenizer(tiny_base),
                          load_prompts(repo_root / "prompts/chat.v1.yaml"), letters=LETTERS,
                          answer_prefix="Alternativa", include_open=False)


def _logits(model, ids):
    import torch

    with torch.no_grad():
        return model(input_ids=ids).logits


def test_merged_model_is_plain_safetensors_and_reproducible(tiny_base, adapter, merged, tmp_path):
    from safetensors import safe_open

    out, summary = merged
    assert summary["lora_layers_merged"] == 2 * len(PROJECTIONS)
    assert summary["base_weights"] == "dequantized" and summary["dtype"] == "float32"
    assert not list(out.glob("*.bin")) and not (out / "adapter_config.json").exists()
    with safe_open(str(out / "model.safetensors"), "pt") as fh:
        keys = list(fh.keys())
    assert not [k for k in keys if "lora" in k or "base_layer" in k]
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config and config["dtype"] == "float32"

    model = load_dense(out, "float32")
    assert not [n for n, _ in model.named_modules() if "lora" in n]
    assert not [m for m in model.modules() if type(m).__name__ == "Linear4bit"]
    assert summary["parameters"] == sum(t.numel() for t in load_dense(tiny_base, "float32").parameters())

    again = tmp_path / "again"
    assert merge(tiny_base, adapter, again, P, Q) == summary
    names = sorted(f.name for f in out.iterdir())
    assert names == sorted(f.name for f in again.iterdir())
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"} <= set(names)
    for name in names:  # every file, not only the weights: same inputs, same bytes
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


def test_a_pinned_hub_reference_merges_like_a_local_folder(tiny_base, adapter, merged, tmp_path):
    # base_model.source: hub writes only reference.json; a local path stands in for the hub id
    ref = tmp_path / "base"
    ref.mkdir()
    (ref / "reference.json").write_text(json.dumps({"hub_id": str(tiny_base), "revision": None}))
    merge(ref, adapter, tmp_path / "out", P, Q)
    out, _ = merged
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()


@pytest.mark.parametrize("base_weights", ["dequantized", "original"])
def test_merged_logits_match_the_unmerged_base_plus_adapter(tiny_base, adapter, merged, tmp_path, base_weights):
    import torch
    from peft import PeftModel

    if base_weights == "dequantized":
        out = merged[0]
        base = load_dequantized(tiny_base, Q, "float32")
    else:
        out = tmp_path / "merged"
        merge(tiny_base, adapter, out, P, Q, base_weights="original")
        base = load_dense(tiny_base, "float32")
    ids = torch.randint(4, 2000, (2, 24), generator=torch.Generator().manual_seed(0))
    plain = _logits(base, ids)
    unmerged = _logits(PeftModel.from_pretrained(base, str(adapter)).eval(), ids)
    got = _logits(load_dense(out, "float32"), ids)
    assert (got - unmerged).abs().max().item() < 1e-4
    assert (unmerged - plain).abs().max().item() > 0.1  # the adapter really changes the model


def test_parity_passes_with_the_default_tolerance(tiny_base, adapter, merged, validation):
    report = parity(validation, tiny_base, adapter, merged[0], P, Q, letters=LETTERS, answer_prefix="Alternativa")
    assert set(report) == {"n", "accuracy_adapter", "accuracy_merged", "accuracy_diff", "letter_agreement",
                           "max_prob_diff", "parity_tolerance", "dtype", "ok"}
    assert report["ok"] and report["parity_tolerance"] == MergeParams().parity_tolerance
    assert report["n"] == 48 and report["accuracy_diff"] == 0.0 and report["letter_agreement"] == 1.0
    # not 0: bitsandbytes' 4-bit CPU kernel computes in bfloat16, the merged layers in float32. The
    # tiny random model's letter probabilities are often near-ties, so on a larger set (its 120
    # train items) that precision alone flips 4 answers, and accuracy moves by 3.3 points
    assert report["max_prob_diff"] < 0.1


def test_parity_scores_items_with_five_options_on_their_own_letters(tiny_base, adapter, merged, validation, repo_root):
    """format.letters is the alphabet A-J: each item is scored on its own first n letters (the tiny
    tokenizer has no single token for "J", so looking up all ten would fail)."""
    from gabarito.chat import load_prompts, mcq_messages, split_prompt_completion
    from gabarito.items import option_letters
    from gabarito.modeling import load_tokenizer

    tok, prompts = load_tokenizer(tiny_base), load_prompts(repo_root / "prompts/chat.v1.yaml")
    items = []
    for k, rec in enumerate(validation[:8]):
        if k % 2:  # every other item gets a fifth option, the answer on two of them
            rec = {**rec, "answers": [*rec["answers"], "Nenhuma das anteriores ."],
                   "label": 4 if k % 4 == 1 else rec["label"]}
            msgs = mcq_messages(rec, prompts, option_letters(5, list("ABCDEFGHIJ")), "Alternativa")
            prompt, completion = split_prompt_completion(tok, msgs)
            rec = {**rec, "messages": msgs, "prompt": prompt, "completion": completion}
        items.append(rec)
    report = parity(items, tiny_base, adapter, merged[0], P, Q, letters=list("ABCDEFGHIJ"), answer_prefix="Alternativa")
    assert report["ok"] and report["n"] == 8 and report["letter_agreement"] == 1.0


def test_parity_fails_with_a_clear_message_when_the_merged_model_drifts(tiny_base, adapter, records, tmp_path):
    from peft import PeftModel

    from gabarito.modeling import load_4bit, load_tokenizer
    from gabarito.params import EvaluateParams
    from gabarito.scoring import predict

    # the common recipe, adapter added to the *original* weights: the tiny random base is so sensitive
    # to NF4 rounding that the merged model answers differently from the adapter on the 4-bit base
    merge(tiny_base, adapter, tmp_path / "drifted", P, Q, base_weights="original")
    # relabel every item with the 4-bit base + adapter's own answer: its accuracy is then exactly 1,
    # and the merged model's accuracy is its letter agreement, so any drift moves accuracy
    model = PeftModel.from_pretrained(load_4bit(tiny_base, Q), str(adapter)).eval()
    records = records[:12]
    answers = predict(model, load_tokenizer(tiny_base), records, "letter", EvaluateParams(), letters=LETTERS,
                      answer_prefix="Alternativa", name="adapter")
    relabeled = [{**r, "label": LETTERS.index(a["prediction"])} for r, a in zip(records, answers)]

    with pytest.raises(ParityError) as err:
        parity(relabeled, tiny_base, adapter, tmp_path / "drifted", P, Q, letters=LETTERS, answer_prefix="Alternativa")
    report = err.value.report
    assert not report["ok"] and report["accuracy_adapter"] == 1.0
    assert report["accuracy_merged"] == report["letter_agreement"] < 1.0
    msg = str(err.value)
    assert "merge.parity_tolerance=0.02" in msg and f"moved by {report['accuracy_diff']:.2%}" in msg
    assert "100.00% with the 4-bit base + adapter" in msg

    # the threshold decides: the same drift passes a loose enough tolerance
    loose = parity(relabeled, tiny_base, adapter, tmp_path / "drifted", MergeParams(dtype="float32",
                   parity_tolerance=1.0), Q, letters=LETTERS, answer_prefix="Alternativa")
    assert loose["ok"] and loose["accuracy_diff"] == report["accuracy_diff"]


def test_answers_that_flip_both_ways_fail_parity_though_accuracy_holds(tiny_base, adapter, records, tmp_path):
    from peft import PeftModel

    from gabarito.modeling import load_4bit, load_tokenizer
    from gabarito.params import EvaluateParams
    from gabarito.scoring import predict
    from gabarito.tools.merge import load_dense

    merge(tiny_base, adapter, tmp_path / "drifted", P, Q, base_weights="original")
    tok = load_tokenizer(tiny_base)
    e = EvaluateParams(batch_size=P.batch_size)  # parity's batches: padding can tip a near-tie

    def answers(items):
        ref = predict(PeftModel.from_pretrained(load_4bit(tiny_base, Q), str(adapter)).eval(), tok, items, "letter",
                      e, letters=LETTERS, answer_prefix="Alternativa", name="adapter")
        got = predict(load_dense(tmp_path / "drifted", "float32"), tok, items, "letter", e, letters=LETTERS,
                      answer_prefix="Alternativa", name="merged")
        return [r["prediction"] for r in ref], [g["prediction"] for g in got]

    ref, got = answers(records)  # the same list, so the same batches, as parity scores below
    differ = [i for i in range(len(records)) if ref[i] != got[i]]
    assert len(differ) >= 2, "the original-weights merge of the tiny base should change several answers"
    # label half the changed items with the adapter's answer and half with the merged model's (an odd one
    # with a letter neither chose): both are right equally often, so accuracy cannot move
    labels = []
    for i, rec in enumerate(records):
        if i not in differ or differ.index(i) < len(differ) // 2:
            labels.append(ref[i])
        elif differ.index(i) < len(differ) // 2 * 2:
            labels.append(got[i])
        else:
            labels.append(next(x for x in LETTERS if x not in (ref[i], got[i])))
    relabeled = [{**rec, "label": LETTERS.index(x)} for rec, x in zip(records, labels)]
    with pytest.raises(ParityError) as err:
        parity(relabeled, tiny_base, adapter, tmp_path / "drifted", P, Q, letters=LETTERS, answer_prefix="Alternativa")
    report = err.value.report
    changed = len(differ) / len(records)
    assert report["accuracy_diff"] == 0.0 and report["letter_agreement"] == round(1 - changed, 6)
    assert changed > P.parity_tolerance and f"{changed:.2%} of the predicted letters changed" in str(err.value)


def test_merge_refuses_a_folder_without_an_adapter(tiny_base, tmp_path):
    from gabarito.io import InputError

    with pytest.raises(InputError, match="no LoRA adapter here"):
        merge(tiny_base, tmp_path, tmp_path / "out", P, Q)


# --- the command --------------------------------------------------------------------------------


def test_merge_command_writes_the_model_and_the_parity_report(tiny_base, adapter, validation, tmp_path):
    from gabarito.io import write_jsonl

    write_jsonl(tmp_path / "validation.jsonl", validation)
    (tmp_path / "params.yaml").write_text("merge: {dtype: float32, parity_tolerance: 0.02}\n")
    args = ["merge", "--base", str(tiny_base), "--adapter", str(adapter), "--validation", "validation.jsonl",
            "--out", "merged", "--report", "merge.json"]
    result = invoke(args, tmp_path)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "merge.json").read_text())
    assert report["parity"]["ok"] and report["parity"]["n"] == 48 and report["lora_layers_merged"] == 12
    assert report["parity"]["accuracy_diff"] <= 0.02
    assert sorted(p.name for p in (tmp_path / "merged").glob("*.safetensors")) == sorted(report["sha256"])
    zero = invoke([*args, "--out", "merged0", "--limit", "0"], tmp_path)  # no items: said as such, nothing written
    assert zero.exit_code == 2 and "'--limit': 0 is not in the range x>=1" in zero.output
    assert not (tmp_path / "merged0").exists()
    assert "parity ok" in result.output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".merged.")]  # no temp folder left


def test_merge_command_keeps_no_model_when_parity_fails(tiny_base, adapter, validation, tmp_path):
    """The original-weights recipe moves the tiny model's letters a lot (see gabarito/tools/merge.py): with a zero
    tolerance the command fails with the figures saved, and the previous merged model stays as it was."""
    from gabarito.io import write_jsonl

    write_jsonl(tmp_path / "validation.jsonl", validation)
    (tmp_path / "params.yaml").write_text("merge: {dtype: float32, parity_tolerance: 0.0}\n")
    (tmp_path / "merged").mkdir()
    (tmp_path / "merged" / "previous.txt").write_text("an earlier merge")
    args = ["merge", "--base", str(tiny_base), "--adapter", str(adapter), "--validation", "validation.jsonl",
            "--out", "merged", "--report", "merge.json", "--base-weights", "original"]
    result = invoke(args, tmp_path)
    assert result.exit_code == 1, result.output
    assert "merge parity failed" in result.output and "Traceback" not in result.output
    assert not json.loads((tmp_path / "merge.json").read_text())["parity"]["ok"]
    assert [p.name for p in (tmp_path / "merged").iterdir()] == ["previous.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".merged.")]


def test_nan_weights_stop_the_merge_with_a_hint(tiny_base, adapter, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken"
    shutil.copytree(adapter, broken)
    weights = load_file(str(broken / "adapter_model.safetensors"))
    first_b = sorted(k for k in weights if "lora_B" in k)[0]
    weights[first_b] = torch.full_like(weights[first_b], float("nan"))
    save_file(weights, str(broken / "adapter_model.safetensors"))
    with pytest.raises(InputError, match="NaN or inf weights.*merge.dtype"):
        merge(tiny_base, broken, tmp_path / "out", P, Q)
