"""train stages on a tiny real model: each trains a few steps on a seven-row corpus and writes a checkpoint.

The corpus holds real DBpedia facts in the shared corpus layout; the tokenizer is a BPE trained on it;
the model a Llama with hidden size 32 and 2 layers. Everything runs on CPU in seconds.
"""

from __future__ import annotations

import json
import math

import pytest

from kgllm.artifacts import read_manifest, verify_artifact
from kgllm.errors import ConfigError
from kgllm.registry import run_stage

FAST = {"max_steps": 2, "batch_size": 2, "save_steps": 2, "logging_steps": 1}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import tiny

    d = tmp_path_factory.mktemp("tiny")
    corpus = tiny.write_tiny_corpus(d / "corpus")
    tok = tiny.train_tiny_tokenizer(corpus, d / "tokenizer")
    model = tiny.write_tiny_model(tok, d / "model")
    return {"corpus": corpus, "tokenizer": tok, "model": model}


def _load_lm(path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32), AutoTokenizer.from_pretrained(str(path))


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def _assert_checkpoint(out, kind):
    man = verify_artifact(out)  # every listed file is there with its sha256
    assert man.kind == kind
    names = {f["path"] for f in man.files}
    assert {"model.safetensors", "config.json", "tokenizer.json", "training_config.json", "metrics.json"} <= names
    assert "training_args.bin" not in names  # no pickles in the artifact
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["global_step"] == man.counts["steps"]
    assert any("loss" in e for e in metrics["log_history"])
    return man, metrics


def test_pretrain_from_scratch_packs_and_reports_perplexity(tiny, tmp_path):
    out = tmp_path / "lm"
    cfg = {**FAST, "tokenizer": str(tiny["tokenizer"]), "max_length": 16,
           "scratch": {"hidden_size": 32, "num_layers": 2, "num_heads": 2}}
    man = run_stage("train.pretrain", [tiny["corpus"]], out, cfg)
    _, metrics = _assert_checkpoint(out, "model.pretrain")
    # Packing: all train tokens end up in ceil(tokens / 16) blocks, none dropped.
    assert man.counts["train_examples"] == math.ceil(man.counts["train_tokens"] / 16)
    assert man.counts["train_documents"] == 5 and man.counts["steps"] == 2
    assert math.isfinite(metrics["eval_perplexity"]) and metrics["eval_perplexity"] > 1
    model, tok = _load_lm(out)
    assert model.config.num_hidden_layers == 2 and model.config.vocab_size == len(tok)
    assert json.loads((out / "training_config.json").read_text())["config"]["scratch"]["hidden_size"] == 32


def test_pretrain_counts_every_token_and_reports_steady_speed(tiny, tmp_path):
    # A tokenizer that pads with EOS (as SmolLM2's does): full packed batches go without attention_mask,
    # and the EOS between documents must still be counted as a training token.
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny["tokenizer"]))
    tok.pad_token = tok.eos_token
    tok.save_pretrained(str(tmp_path / "tok-eos-pad"))
    out = tmp_path / "lm"
    cfg = {"tokenizer": str(tmp_path / "tok-eos-pad"), "max_length": 8, "batch_size": 2, "epochs": 1,
           "save_steps": 1000, "logging_steps": 1, "scratch": {"hidden_size": 32, "num_layers": 2, "num_heads": 2}}
    man = run_stage("train.pretrain", [tiny["corpus"]], out, cfg)
    metrics = json.loads((out / "metrics.json").read_text())
    assert man.counts["tokens"] == man.counts["train_tokens"] == metrics["num_input_tokens_seen"]
    assert man.counts["steps"] == math.ceil(man.counts["train_examples"] / 2) >= 5
    # Steady speed leaves out the first fifth of the steps; FLOPs per token as in PaLM's MFU.
    from kgllm.train.common import model_flops_per_token

    model, _ = _load_lm(out)
    assert metrics["steady_steps"] == man.counts["steps"] - max(1, man.counts["steps"] // 5)
    assert metrics["tokens_per_s_steady"] > 0
    assert metrics["flops_per_token"] == model_flops_per_token(model, 8)
    assert metrics["model_tflops_per_s"] == pytest.approx(metrics["flops_per_token"] * metrics["tokens_per_s_steady"] / 1e12)
    assert "mfu" not in metrics  # CPU: no bf16 peak to compare with


def test_model_flops_per_token_counts_matmul_weights_and_attention():
    from transformers import LlamaConfig, LlamaForCausalLM

    from kgllm.train.common import model_flops_per_token, peak_bf16_flops

    v, d, f, layers = 100, 64, 160, 3
    for tied in (True, False):
        m = LlamaForCausalLM(LlamaConfig(vocab_size=v, hidden_size=d, intermediate_size=f, num_hidden_layers=layers,
                                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=tied))
        kv = d // 2  # 2 of 4 heads for keys and values
        per_layer = d * d + 2 * d * kv + d * d + 3 * d * f + 2 * d  # q, k, v, o, SwiGLU MLP, two norms
        n = layers * per_layer + d + v * d  # + final norm + output head (the embedding lookup is no product)
        assert model_flops_per_token(m, 128) == 6 * n + 12 * layers * d * 128
        assert model_flops_per_token(m, None) == 6 * n
    assert peak_bf16_flops("NVIDIA H100 80GB HBM3") == 989e12 and peak_bf16_flops("NVIDIA H100 PCIe") == 756e12
    assert peak_bf16_flops("Some CPU") is None


def test_pad_collator_right_pads_with_or_without_mask_and_to_a_static_shape():
    from kgllm.train.data import PadCollator

    rows = [{"input_ids": [5, 6, 7]}, {"input_ids": [8]}]
    masked = PadCollator(0)(rows)
    assert masked["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert masked["labels"].tolist() == [[5, 6, 7], [8, -100, -100]]
    plain = PadCollator(0, mask=False)(rows)
    assert set(plain) == {"input_ids", "labels"} and plain["labels"].tolist() == masked["labels"].tolist()
    static = PadCollator(0, mask=False, static_shape=(3, 4))(rows)
    assert static["input_ids"].tolist() == [[5, 6, 7, 0], [8, 0, 0, 0], [0, 0, 0, 0]]
    assert int((static["labels"] != -100).sum()) == 4  # padding rows carry no loss


def test_causal_lm_right_padding_needs_no_mask():
    # Why packed batches go without attention_mask: right padding changes nothing at the real positions.
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from kgllm.train.data import PadCollator

    torch.manual_seed(0)
    m = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                     num_attention_heads=2, num_key_value_heads=2)).eval()
    rows = [{"input_ids": [5, 6, 7, 8, 9]}, {"input_ids": [10, 11]}]
    with torch.no_grad():
        a = m(**PadCollator(1)(rows))
        b = m(**PadCollator(1, mask=False)(rows))
    assert torch.allclose(a.loss, b.loss, atol=1e-6)
    assert torch.allclose(a.logits[1, :2], b.logits[1, :2], atol=1e-5)


def test_pretrain_resume_continues_from_saved_step(tiny, tmp_path):
    out = tmp_path / "lm"
    cfg = {**FAST, "model": str(tiny["model"]), "max_length": 16}
    first = run_stage("train.pretrain", [tiny["corpus"]], out, cfg)
    assert first.counts["steps"] == 2 and first.counts["resumed_from_step"] == 0
    first_log = [e for e in json.loads((out / "metrics.json").read_text())["log_history"] if "loss" in e]
    second = run_stage("train.pretrain", [tiny["corpus"]], out, {**cfg, "max_steps": 4, "resume": True})
    assert second.counts["resumed_from_step"] == 2 and second.counts["steps"] == 4
    log = [e for e in json.loads((out / "metrics.json").read_text())["log_history"] if "loss" in e]
    assert [e["step"] for e in log] == [1, 2, 3, 4]
    # Steps 1-2 come from the checkpoint (identical records, timings included); only 3-4 ran again.
    assert log[:2] == first_log
    assert log[2]["num_input_tokens_seen"] > first_log[-1]["num_input_tokens_seen"]
    # Without resume the run starts over.
    third = run_stage("train.pretrain", [tiny["corpus"]], out, cfg)
    assert third.counts["resumed_from_step"] == 0 and third.counts["steps"] == 2


def test_sft_trains_answers_and_cli_writes_artifact(tiny, tmp_path, capsys):
    from kgllm.cli import main

    out = tmp_path / "sft"
    rc = main(["train", "sft", "--corpus", str(tiny["corpus"]), "--out", str(out), "--model", str(tiny["model"]),
               "--max-steps", "3", "--set", "batch_size=2", "--set", "lr=1e-2", "--set", "logging_steps=1"])
    assert rc == 0
    assert f"model.sft artifact: {out}" in capsys.readouterr().out
    man, metrics = _assert_checkpoint(out, "model.sft")
    assert man.counts["train_examples"] == 7 and man.counts["eval_examples"] == 1
    assert man.config["completion_only"] is True and man.config["lr"] == 0.01
    losses = [e["loss"] for e in metrics["log_history"] if "loss" in e]
    assert losses[-1] < losses[0]  # lr 1e-2 on seven rows: the loss must go down
    tc = json.loads((out / "training_config.json").read_text())
    assert tc["chat_format"] == "plain" and tc["trainer_args"]["use_cpu"] is True
    assert tc["trainer_args"]["bf16"] is False and tc["trainer_args"]["activation_checkpointing"] is False
    model, tok = _load_lm(out)
    ids = tok("Question: Where was Erich Marcks born?\nAnswer:", return_tensors="pt")
    gen = model.generate(**ids, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    assert gen.shape[1] == ids["input_ids"].shape[1] + 4


def test_sft_lora_merges_adapters_into_plain_checkpoint(tiny, tmp_path):
    out = tmp_path / "sft-lora"
    run_stage("train.sft", [tiny["corpus"]], out,
              {**FAST, "model": str(tiny["model"]), "lr": 1e-2, "lora": {"enabled": True, "r": 4, "alpha": 8}})
    man, _ = _assert_checkpoint(out, "model.sft")
    assert not any("adapter" in f["path"] for f in man.files)
    after, before = _weights(out), _weights(tiny["model"])
    assert not any("lora" in k for k in after)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not after[q].equal(before[q])              # the merged LoRA update changed q_proj
    mlp = "model.layers.0.mlp.up_proj.weight"
    assert after[mlp].equal(before[mlp])              # untargeted modules stay frozen


def test_dpo_chains_from_sft_artifact(tiny, tmp_path):
    sft = tmp_path / "sft"
    run_stage("train.sft", [tiny["corpus"]], sft, {**FAST, "model": str(tiny["model"])})
    out = tmp_path / "dpo"
    man = run_stage("train.dpo", [tiny["corpus"], sft], out, {**FAST, "beta": 0.2, "model": "ignored-by-input"})
    _, metrics = _assert_checkpoint(out, "model.dpo")
    # The model artifact given as second input is the starting point and is recorded as an input.
    assert [i.get("kind") for i in man.inputs] == ["corpus", "model.sft"]
    assert json.loads((out / "training_config.json").read_text())["base_model"] == str(sft)
    assert 0.0 <= metrics["eval_rewards/accuracies"] <= 1.0 and "eval_rewards/margins" in metrics
    assert man.counts["train_examples"] == 7


def test_reward_model_scores_pairs(tiny, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification

    out = tmp_path / "rm"
    man = run_stage("train.reward", [tiny["corpus"]], out, {**FAST, "model": str(tiny["model"])})
    _, metrics = _assert_checkpoint(out, "model.reward")
    assert "eval_accuracy" in metrics and man.counts["eval_examples"] == 1
    rm = AutoModelForSequenceClassification.from_pretrained(str(out), dtype=torch.float32)
    assert rm.config.num_labels == 1 and rm.config.pad_token_id is not None
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(out))
    with torch.no_grad():
        score = rm(**tok(["Rome is in the country Italy."], return_tensors="pt")).logits
    assert score.shape == (1, 1)
    from kgllm.errors import UsageError
    from kgllm.eval.facts import evaluate_model

    with pytest.raises(UsageError, match="reward model .* cannot answer questions"):
        evaluate_model(out, tiny["corpus"])


def test_unknown_config_key_fails_clearly(tiny, tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"unknown key 'bta' \(did you mean 'beta'\?\)"):
        run_stage("train.dpo", [tiny["corpus"]], tmp_path / "x", {"bta": 0.2})
    with pytest.raises(ConfigError, match=r"train.sft.lora: unknown key 'rank'"):
        run_stage("train.sft", [tiny["corpus"]], tmp_path / "x", {"lora": {"rank": 4}})
    cfg = tmp_path / "sft.yaml"
    cfg.write_text("lr: 1e-4\nepochz: 2\n")
    from kgllm.cli import main

    rc = main(["train", "sft", "--config", str(cfg), "--corpus", str(tiny["corpus"]), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown key 'epochz'" in err and str(cfg) in err and "did you mean 'epochs'" in err
    assert not (tmp_path / "x").exists()


def test_pipeline_chains_sft_then_dpo_and_skips_when_unchanged(tiny, tmp_path):
    from kgllm.pipeline import load_pipeline

    y = tmp_path / "pipe.yaml"
    y.write_text(f"""
workdir: runs
steps:
  - id: sft
    stage: train.sft
    inputs: [{tiny['corpus']}]
    config: {{model: {tiny['model']}, max_steps: 2, batch_size: 4, save_steps: 2}}
  - id: dpo
    stage: train.dpo
    inputs: [{tiny['corpus']}, sft]
    config: {{max_steps: 1, batch_size: 4, save_steps: 1}}
""")
    first = load_pipeline(y).run()
    assert [(r.id, r.status) for r in first] == [("sft", "ran"), ("dpo", "ran")]
    assert read_manifest(tmp_path / "runs" / "dpo").inputs[1]["path"] == str(tmp_path / "runs" / "sft")
    again = load_pipeline(y).run()
    assert [r.status for r in again] == ["skipped", "skipped"]


def test_shipped_train_configs_load():
    """examples/train_*.yaml are valid configs for their stages (unknown keys or bad types would fail here)."""
    import yaml

    from kgllm import config as cfgmod
    from kgllm.registry import get_stage

    root = __import__("pathlib").Path(__file__).resolve().parent.parent / "examples"
    for name in ("pretrain", "sft", "dpo", "reward"):
        cfg = get_stage(f"train.{name}").make_config(cfgmod.load_yaml(root / f"train_{name}.yaml"))
        assert cfg.max_length == 256
    pipe = yaml.safe_load((root / "train_smollm2_pipeline.yaml").read_text())
    train_steps = [s for s in pipe["steps"] if s["stage"].startswith("train.")]
    assert [s["id"] for s in train_steps] == ["sft", "dpo"] and train_steps[1]["inputs"] == ["corpus", "sft"]
    from kgllm.pipeline import load_pipeline

    configs = load_pipeline(root / "train_smollm2_pipeline.yaml").configs()  # every step's config is valid
    assert configs["sft"].model == "smollm2-135m-instruct" and configs["dpo"].beta == 0.1
    for acc in ("ddp", "fsdp", "multinode"):
        assert yaml.safe_load((root / "accelerate" / f"{acc}.yaml").read_text())["mixed_precision"] == "bf16"
