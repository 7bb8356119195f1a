"""gabarito/params.py: params.yaml and the profiles load into typed sections; bad keys and values fail loudly."""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

from gabarito import params as P
from gabarito.io import InputError
from gabarito.tools.profile import apply_profile

PROFILES = ("offline", "thesis")


def _profile_file(repo_root, tmp_path, name: str):
    """params.yaml as `make profile PROFILE=name` writes it, in tmp_path."""
    text, _ = apply_profile(name, repo_root / "params.yaml", repo_root / "profiles")
    path = tmp_path / f"{name}.params.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _write_yaml(tmp_path, data, name="params.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _with(repo_root, tmp_path, section: str, dotted: str, value):
    """params.yaml with one value set at ``section.<dotted>`` (a new key if it does not exist)."""
    data = yaml.safe_load((repo_root / "params.yaml").read_text(encoding="utf-8"))
    node = data[section]
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return _write_yaml(tmp_path, data)


def _rename(repo_root, tmp_path, section: str, dotted: str, new_key: str):
    data = yaml.safe_load((repo_root / "params.yaml").read_text(encoding="utf-8"))
    node = data[section]
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    node[new_key] = node.pop(last)
    return _write_yaml(tmp_path, data)


# --- the shipped files ---------------------------------------------------------------------------
def _flat(d: dict, prefix: str = "") -> dict:
    """Dotted keys of nested sections; ``ingest.urls`` (a mapping value, not a section) stays one value."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "urls":
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def test_typed_defaults_are_the_shipped_values(repo_root):
    """Every section built from its defaults is params.yaml as shipped, key for key: a key left out of
    params.yaml (or of a profile) then means what the shipped file says, not another value."""
    shipped = _flat(yaml.safe_load((repo_root / "params.yaml").read_text(encoding="utf-8")))
    defaults = _flat({name: model().model_dump() for name, model in P.SECTIONS.items()})
    assert set(defaults) == set(shipped), "params.yaml spells out every field, and no other key"
    differ = {k: (defaults[k], shipped[k]) for k in shipped
              if defaults[k] != shipped[k] or isinstance(defaults[k], bool) != isinstance(shipped[k], bool)}
    assert differ == {}, "field default (gabarito/params.py) != params.yaml: {default, shipped}"


def test_a_partial_section_takes_the_shipped_values_for_the_rest():
    s = P.parse_section("synthesize", {"llm": {"model": "other"}})
    assert (s.llm.temperature, s.llm.max_tokens, s.llm.concurrency, s.llm.timeout_s) == (0.3, 1024, 4, 120.0)
    t = P.parse_section("train", {"lora": {"r": 4}})
    assert (t.lora.lora_alpha, t.lora.lora_dropout, t.sft.learning_rate) == (32, 0.0, 3e-3)
    assert P.parse_section("merge", {}).dtype == "float32"


def test_the_default_revision_pins_only_the_default_hub_model():
    assert P.parse_section("base_model", {"source": "hub"}).revision == "3bac358730f8806e5c3dc7c7e19eb36e045bf720"
    with pytest.raises(InputError, match="must pin a commit of some/model"):
        P.parse_section("base_model", {"source": "hub", "hub_id": "some/model"})
    assert P.parse_section("base_model", {"source": "hub", "hub_id": "some/model", "revision": "abc"}).revision == "abc"


def test_every_section_loads(repo_root):
    path = repo_root / "params.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert set(raw) == set(P.SECTIONS), "every section is spelled out in the file"
    loaded = P.load_all(path)
    assert list(loaded) == list(P.SECTIONS)
    for name, section in loaded.items():
        assert type(section) is P.SECTIONS[name]
        # every key written in the file is a field, and its value survives loading unchanged
        dumped = section.model_dump()
        assert set(raw[name]) <= set(dumped)
        for key, value in raw[name].items():
            if isinstance(value, dict) and isinstance(dumped[key], dict) and key != "urls":
                for sub, subval in value.items():
                    assert dumped[key][sub] == subval, f"{name}.{key}.{sub}"
            else:
                assert dumped[key] == value, f"{name}.{key}"


def test_offline_profile_values(repo_root):
    p = P.load_all(repo_root / "params.yaml")
    assert p["ingest"].source == "local"
    assert p["base_model"].source == "tiny"
    assert p["translate"].provider == "dataset"
    assert p["train"].lora.r == 16 and p["train"].lora.lora_alpha == 32
    assert p["train"].quantization.bnb_4bit_compute_dtype == "float32"
    assert p["train"].sft.learning_rate == pytest.approx(3.0e-3)
    assert p["train"].sft.bf16 is False
    assert p["base_model"].tiny.intermediate_size == 192
    s = p["synthesize"]
    assert s.provider == "dataset" and s.pairs_per_chunk == 2
    assert (s.chunk_tokens, s.chunk_overlap_tokens) == (400, 60)
    assert s.min_grounding == pytest.approx(0.6)
    assert s.near_duplicate_threshold == pytest.approx(0.8)
    assert s.validation_docs_share == pytest.approx(0.5)
    assert s.multiple_choice is True and s.seed == 0
    assert s.llm.temperature == pytest.approx(0.3) and s.llm.max_tokens == 1024


@pytest.mark.parametrize("name", PROFILES)
def test_every_profile_loads(repo_root, tmp_path, name):
    loaded = P.load_all(_profile_file(repo_root, tmp_path, name))
    assert list(loaded) == list(P.SECTIONS)


def test_thesis_profile_values(repo_root, tmp_path):
    p = P.load_all(_profile_file(repo_root, tmp_path, "thesis"))
    assert p["ingest"].source == "hub" and p["ingest"].hub_id == "allenai/cosmos_qa"
    assert p["base_model"].source == "hub"
    assert p["base_model"].hub_id == "HuggingFaceH4/zephyr-7b-beta"
    assert re.fullmatch(r"[0-9a-f]{40}", p["base_model"].revision)
    assert p["translate"].provider == "openai"
    assert p["train"].quantization.bnb_4bit_compute_dtype == "bfloat16"
    assert p["train"].lora.lora_alpha == 16 and p["train"].lora.lora_dropout == pytest.approx(0.05)
    assert p["train"].sft.optim == "paged_adamw_8bit"
    assert p["train"].sft.gradient_accumulation_steps == 2
    assert p["train"].sft.bf16 is True and p["train"].sft.fp16 is False


def test_profile_files_list_only_what_differs(repo_root):
    """A profile is an overlay: a key that repeats the shipped value is noise (and would hide a change
    of the shipped value from whoever reads the profile)."""
    shipped = _flat(yaml.safe_load((repo_root / "params.yaml").read_text(encoding="utf-8")))
    files = sorted((repo_root / "profiles").glob("*.yaml"))
    assert [f.name for f in files] == ["gpu24.yaml", "small.yaml", "t4.yaml", "thesis.yaml"], "offline is the shipped params.yaml: no file for it"
    for f in files:
        overlay = _flat(yaml.safe_load(f.read_text(encoding="utf-8")))
        same = [k for k, v in overlay.items() if k in shipped and shipped[k] == v]
        assert same == [], f"{f.name} repeats shipped values"


def test_load_section_reads_one_section(repo_root):
    lora = P.load_section("train", repo_root / "params.yaml").lora
    assert lora.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj"]
    assert P.load_section("evaluate", repo_root / "params.yaml").max_new_tokens == 8


def test_missing_sections_take_defaults(tmp_path):
    path = _write_yaml(tmp_path, {"clean": {"min_context_chars": 30}})
    loaded = P.load_all(path)
    assert loaded["clean"].min_context_chars == 30
    assert loaded["clean"].min_question_chars == 5
    assert loaded["train"] == P.TrainParams()
    assert loaded["ingest"].splits == ["train", "validation"]


def test_sections_are_frozen(repo_root):
    lora = P.load_section("train", repo_root / "params.yaml").lora
    with pytest.raises(Exception):
        lora.r = 4
    assert lora.r == 16


# --- misspelled keys -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("section", "dotted", "typo", "full", "right"),
    [
        ("train", "lora.lora_alpha", "lora_alhpa", "train.lora.lora_alhpa", "lora_alpha"),
        ("train", "quantization.bnb_4bit_quant_type", "bnb_4bit_qaunt_type",
         "train.quantization.bnb_4bit_qaunt_type", "bnb_4bit_quant_type"),
        ("train", "sft.learning_rate", "learnig_rate", "train.sft.learnig_rate", "learning_rate"),
        ("train", "torch_threads", "torch_thread", "train.torch_thread", "torch_threads"),
        ("translate", "llm.temperature", "temprature", "translate.llm.temprature", "temperature"),
        ("base_model", "tiny.hidden_size", "hidden_sise", "base_model.tiny.hidden_sise", "hidden_size"),
        ("synthesize", "chunk_overlap_tokens", "chunk_overlap_token", "synthesize.chunk_overlap_token",
         "chunk_overlap_tokens"),
        ("synthesize", "near_duplicate_threshold", "near_duplicate_treshold",
         "synthesize.near_duplicate_treshold", "near_duplicate_threshold"),
        ("synthesize", "validation_docs_share", "validation_doc_share", "synthesize.validation_doc_share",
         "validation_docs_share"),
        ("ingest", "limit_per_split", "limit_per_splt", "ingest.limit_per_splt", "limit_per_split"),
    ],
)
def test_misspelled_key_names_dotted_key_and_suggests(repo_root, tmp_path, section, dotted, typo, full, right):
    path = _rename(repo_root, tmp_path, section, dotted, typo)
    with pytest.raises(InputError) as exc:
        P.load_all(path)
    msg = str(exc.value)
    assert str(path) in msg
    assert f"{full}: unknown key" in msg
    assert f"did you mean '{right}'" in msg


def test_misspelled_key_via_load_section(repo_root, tmp_path):
    path = _rename(repo_root, tmp_path, "train", "lora.lora_alpha", "lora_alhpa")
    with pytest.raises(InputError, match=r"train\.lora\.lora_alhpa: unknown key \(did you mean 'lora_alpha'\?\)"):
        P.load_section("train", path)
    # a stage that does not read the broken section is not blocked by it
    assert P.load_section("clean", path) == P.CleanParams()


def test_unknown_key_without_close_match_lists_valid_keys():
    with pytest.raises(InputError) as exc:
        P.parse_section("clean", {"zzzzzzzz": 1})
    assert "clean.zzzzzzzz: unknown key (valid keys: min_context_chars, min_question_chars, " \
           "min_clean_char_ratio)" in str(exc.value)


def test_misspelled_top_level_section(repo_root, tmp_path):
    data = yaml.safe_load((repo_root / "params.yaml").read_text(encoding="utf-8"))
    data["trian"] = data.pop("train")
    path = _write_yaml(tmp_path, data)
    for load in (P.load_all, lambda p: P.load_section("clean", p)):
        with pytest.raises(InputError) as exc:
            load(path)
        msg = str(exc.value)
        assert str(path) in msg
        assert "'trian' (did you mean 'train'?)" in msg


def test_several_errors_reported_together(tmp_path):
    path = _write_yaml(tmp_path, {"train": {"lora": {"lora_alhpa": 32, "r": 0}, "sft": {"learning_rate": -1}}})
    with pytest.raises(InputError) as exc:
        P.load_all(path)
    msg = str(exc.value)
    assert "invalid section 'train'" in msg
    assert "train.lora.lora_alhpa: unknown key (did you mean 'lora_alpha'?)" in msg
    assert "train.lora.r: Input should be greater than or equal to 1" in msg
    assert "train.sft.learning_rate: Input should be greater than 0" in msg


# --- wrong types and values ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("section", "dotted", "value", "where", "why"),
    [
        ("train", "lora.r", -1, "train.lora.r", "greater than or equal to 1"),
        ("train", "lora.r", "sixteen", "train.lora.r", "valid integer"),
        ("train", "lora.lora_dropout", 1.0, "train.lora.lora_dropout", "less than 1"),
        ("train", "lora.bias", "some", "train.lora.bias", "'none', 'all' or 'lora_only'"),
        ("train", "quantization.bnb_4bit_quant_type", "int8", "train.quantization.bnb_4bit_quant_type",
         "'nf4' or 'fp4'"),
        ("train", "quantization.bnb_4bit_compute_dtype", "float64",
         "train.quantization.bnb_4bit_compute_dtype", "'float32', 'float16' or 'bfloat16'"),
        ("train", "sft.learning_rate", 0, "train.sft.learning_rate", "greater than 0"),
        ("train", "sft.max_length", 8, "train.sft.max_length", "greater than or equal to 16"),
        ("train", "torch_threads", 0, "train.torch_threads", "greater than or equal to 1"),
        ("ingest", "source", "ftp", "ingest.source", "'local', 'hub' or 'url'"),
        ("ingest", "limit_per_split", 0, "ingest.limit_per_split", "greater than or equal to 1"),
        ("extract", "ocr_dpi", 1200, "extract.ocr_dpi", "less than or equal to 600"),
        ("translate", "llm.temperature", 3.0, "translate.llm.temperature", "less than or equal to 2"),
        ("translate", "llm.response_format", "text", "translate.llm.response_format",
         "'json_schema' or 'json_object'"),
        ("synthesize", "min_grounding", 1.5, "synthesize.min_grounding", "less than or equal to 1"),
        ("synthesize", "chunk_overlap_tokens", -1, "synthesize.chunk_overlap_tokens", "greater than or equal to 0"),
        ("synthesize", "near_duplicate_threshold", 0, "synthesize.near_duplicate_threshold", "greater than 0"),
        ("synthesize", "near_duplicate_threshold", 1.1, "synthesize.near_duplicate_threshold",
         "less than or equal to 1"),
        ("synthesize", "validation_docs_share", 1.0, "synthesize.validation_docs_share", "less than 1"),
        ("synthesize", "validation_docs_share", -0.1, "synthesize.validation_docs_share",
         "greater than or equal to 0"),
        ("synthesize", "multiple_choice", "maybe", "synthesize.multiple_choice", "valid boolean"),
        ("synthesize", "seed", "zero", "synthesize.seed", "valid integer"),
        ("clean", "min_clean_char_ratio", -0.1, "clean.min_clean_char_ratio", "greater than or equal to 0"),
        ("evaluate", "batch_size", 0, "evaluate.batch_size", "greater than or equal to 1"),
        ("format", "letters", ["a", "b", "c", "d"], "format.letters", "different capital letters"),
        ("format", "letters", ["A"], "format.letters", "2 or more different capital letters"),
        ("format", "letters", ["A", "B", "C", "C"], "format.letters", "different capital letters"),
        ("base_model", "source", "cloud", "base_model.source", "'tiny', 'hub', 'local' or 'gguf'"),
    ],
)
def test_bad_value_names_the_key(repo_root, tmp_path, section, dotted, value, where, why):
    path = _with(repo_root, tmp_path, section, dotted, value)
    with pytest.raises(InputError) as exc:
        P.load_all(path)
    msg = str(exc.value)
    assert f"invalid section '{section}'" in msg
    line = next(ln for ln in msg.splitlines() if ln.strip().startswith(where + ":"))
    assert why in line


@pytest.mark.parametrize(("chunk", "overlap"), [(400, 400), (400, 500), (50, 50)])
def test_chunk_overlap_not_smaller_than_chunk(repo_root, tmp_path, chunk, overlap):
    data = yaml.safe_load((repo_root / "params.yaml").read_text(encoding="utf-8"))
    data["synthesize"].update(chunk_tokens=chunk, chunk_overlap_tokens=overlap)
    with pytest.raises(InputError) as exc:
        P.load_all(_write_yaml(tmp_path, data))
    msg = str(exc.value)
    assert "invalid section 'synthesize'" in msg
    assert "chunk_overlap_tokens must be smaller than chunk_tokens" in msg


def test_default_overlap_must_stay_below_a_smaller_chunk():
    # chunk_overlap_tokens defaults to 60: a chunk of 60 tokens with no overlap given is refused
    with pytest.raises(InputError, match="chunk_overlap_tokens must be smaller than chunk_tokens"):
        P.parse_section("synthesize", {"chunk_tokens": 60})
    assert P.parse_section("synthesize", {"chunk_tokens": 61}).chunk_overlap_tokens == 60


def test_chunk_overlap_one_below_chunk_is_fine():
    p = P.parse_section("synthesize", {"chunk_tokens": 300, "chunk_overlap_tokens": 299})
    assert (p.chunk_tokens, p.chunk_overlap_tokens) == (300, 299)
    assert P.parse_section("synthesize", {"chunk_tokens": 50, "chunk_overlap_tokens": 0}).chunk_tokens == 50


def test_chunk_tokens_minimum():
    with pytest.raises(InputError, match=r"synthesize\.chunk_tokens: Input should be greater than or equal to 50"):
        P.parse_section("synthesize", {"chunk_tokens": 49, "chunk_overlap_tokens": 0})


def test_synthesize_defaults():
    s = P.SynthesizeParams()
    assert (s.chunk_tokens, s.chunk_overlap_tokens) == (400, 60)
    assert (s.near_duplicate_threshold, s.validation_docs_share, s.multiple_choice, s.seed) == (0.8, 0.5, True, 0)


@pytest.mark.parametrize(("old", "suggested"), [("chunk_chars", "chunk_tokens"),
                                                 ("chunk_overlap_chars", "chunk_overlap_tokens")])
def test_removed_character_chunk_keys_are_refused_with_the_token_key_suggested(repo_root, tmp_path, old, suggested):
    # a params.yaml from before chunking by tokens must fail loudly, not be silently ignored
    path = _with(repo_root, tmp_path, "synthesize", old, 1500)
    with pytest.raises(InputError) as exc:
        P.load_section("synthesize", path)
    assert f"synthesize.{old}: unknown key (did you mean '{suggested}'?)" in str(exc.value)


def test_section_that_is_not_a_mapping(tmp_path):
    path = _write_yaml(tmp_path, {"train": 5})
    with pytest.raises(InputError, match=r"train: Input should be a valid dictionary"):
        P.load_all(path)


def test_null_section_takes_defaults(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\nclean:\n", encoding="utf-8")
    loaded = P.load_all(path)
    assert loaded["train"] == P.TrainParams() and loaded["clean"] == P.CleanParams()


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        P.load_all(tmp_path / "nope.yaml")


def test_invalid_yaml(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  lora: [1, 2\n", encoding="utf-8")
    with pytest.raises(InputError, match="not valid YAML"):
        P.load_all(path)


def test_top_level_list_is_an_input_error(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("- train: {}\n", encoding="utf-8")
    with pytest.raises(InputError):
        P.load_all(path)


# --- base_model ----------------------------------------------------------------------------------
def test_hub_without_revision_is_rejected(repo_root, tmp_path):
    data = yaml.safe_load(_profile_file(repo_root, tmp_path, "thesis").read_text(encoding="utf-8"))
    data["base_model"]["revision"] = None
    with pytest.raises(InputError) as exc:
        P.load_all(_write_yaml(tmp_path, data))
    assert "base_model.revision must pin a commit when source is 'hub'" in str(exc.value)

    with pytest.raises(InputError, match="base_model.revision must pin a commit"):
        P.parse_section("base_model", {"source": "hub", "revision": ""})


def test_tiny_without_revision_is_fine():
    p = P.parse_section("base_model", {"source": "tiny", "revision": None})
    assert p.source == "tiny" and p.revision is None


@pytest.mark.parametrize(
    ("tiny", "bad"),
    [
        ({"hidden_size": 48}, "hidden_size=48"),
        ({"intermediate_size": 100}, "intermediate_size=100"),
        ({"hidden_size": 64, "num_attention_heads": 8, "num_key_value_heads": 2},
         "num_key_value_heads * head_dim=16"),
        ({"hidden_size": 96, "num_attention_heads": 4, "num_key_value_heads": 1},
         "num_key_value_heads * head_dim=24"),
    ],
)
def test_tiny_shapes_must_be_multiples_of_32(tiny, bad):
    with pytest.raises(InputError) as exc:
        P.parse_section("base_model", {"tiny": tiny})
    msg = str(exc.value)
    assert "base_model.tiny:" in msg
    assert bad in msg
    assert "must be multiples of 32" in msg


def test_tiny_hidden_not_divisible_by_heads():
    with pytest.raises(InputError, match="hidden_size must be divisible by num_attention_heads"):
        P.parse_section("base_model", {"tiny": {"hidden_size": 128, "num_attention_heads": 3,
                                                "num_key_value_heads": 16, "intermediate_size": 192}})


def test_tiny_good_shapes_accepted():
    p = P.parse_section("base_model", {"tiny": {"hidden_size": 128, "intermediate_size": 320,
                                                "num_attention_heads": 4, "num_key_value_heads": 1}})
    assert (p.tiny.hidden_size, p.tiny.intermediate_size, p.tiny.num_key_value_heads) == (128, 320, 1)


# --- knob names are the libraries' own -----------------------------------------------------------
@pytest.mark.parametrize("name", PROFILES)
def test_lora_knobs_are_peft_lora_config_fields(repo_root, tmp_path, name):
    peft = pytest.importorskip("peft")
    lora = P.load_section("train", _profile_file(repo_root, tmp_path, name)).lora
    cfg = peft.LoraConfig(**lora.model_dump())
    assert cfg.r == lora.r
    assert cfg.lora_alpha == lora.lora_alpha
    assert cfg.lora_dropout == lora.lora_dropout
    assert set(cfg.target_modules) == set(lora.target_modules)
    assert cfg.bias == lora.bias
    assert str(getattr(cfg.task_type, "value", cfg.task_type)) == "CAUSAL_LM"


@pytest.mark.parametrize(("name", "dtype"), [("offline", "float32"), ("thesis", "bfloat16")])
def test_quantization_knobs_are_bitsandbytes_config_fields(repo_root, tmp_path, name, dtype):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    import inspect

    q = P.load_section("train", _profile_file(repo_root, tmp_path, name)).quantization
    accepted = set(inspect.signature(transformers.BitsAndBytesConfig.__init__).parameters)
    assert set(q.model_dump()) <= accepted
    cfg = transformers.BitsAndBytesConfig(**q.model_dump())
    assert cfg.load_in_4bit is True
    assert cfg.bnb_4bit_quant_type == q.bnb_4bit_quant_type == "nf4"
    assert cfg.bnb_4bit_use_double_quant is True
    assert cfg.bnb_4bit_compute_dtype == getattr(torch, dtype)


def test_every_quant_dtype_choice_is_a_torch_dtype():
    torch = pytest.importorskip("torch")
    import typing

    choices = typing.get_args(P.QuantizationParams.model_fields["bnb_4bit_compute_dtype"].annotation)
    assert set(choices) == {"float32", "float16", "bfloat16"}
    for name in choices:
        assert isinstance(getattr(torch, name), torch.dtype)


def test_every_sft_field_is_a_trl_sft_config_field():
    trl = pytest.importorskip("trl")
    names = {f.name for f in dataclasses.fields(trl.SFTConfig)}
    missing = sorted(set(P.SFTParams.model_fields) - names)
    assert missing == []


def test_offline_sft_knobs_build_a_trl_sft_config(repo_root, tmp_path):
    trl = pytest.importorskip("trl")
    sft = P.load_section("train", repo_root / "params.yaml").sft
    # as stages/train.py builds it: evaluation and checkpoints every N steps
    cfg = trl.SFTConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True, eval_strategy="steps",
                        save_strategy="steps", **sft.model_dump())
    assert cfg.learning_rate == pytest.approx(3.0e-3)
    assert cfg.num_train_epochs == 5
    assert cfg.per_device_train_batch_size == 8
    assert cfg.max_length == 512
    assert cfg.seed == 42
    assert str(getattr(cfg.lr_scheduler_type, "value", cfg.lr_scheduler_type)) == "cosine"
