"""``train.pretrain``: causal language modelling on the corpus's pretraining text.

Takes: a corpus artifact (``pretrain/{train,validation}.jsonl``, field ``text``) and either
``model: scratch`` + ``tokenizer: DIR`` (a new Llama-style model sized by ``scratch``) or a model name /
checkpoint (continued pretraining, i.e. domain adaptation).
Makes: a ``model.pretrain`` artifact; ``metrics.json`` has the validation loss and perplexity.

Documents are tokenized, joined with EOS and cut into ``max_length`` blocks (sequence packing: no
padding inside the batch but in the last block), then trained with the plain transformers Trainer.

Launch (the same command line runs single-process or distributed; see docs/train.md)::

    kgllm train pretrain --config examples/train_pretrain.yaml --corpus runs/x/corpus --out runs/x/lm
    torchrun --standalone --nproc_per_node=8 -m kgllm train pretrain ...              # DDP, one node
    accelerate launch --config_file examples/accelerate/fsdp.yaml -m kgllm train pretrain ...  # FSDP
"""

from __future__ import annotations

from pathlib import Path

from .. import api
from ..artifacts import Manifest
from ..errors import ConfigError, InputError
from . import data as tdata
from .common import load_causal_lm, load_tokenizer, peft_config, resolve_inputs, run_training
from .stage import PretrainConfig, ScratchModelConfig


def tokenizer_dir(path: Path) -> Path:
    """A tokenizer directory, or the ``tokenizer/`` folder inside a tokenizer artifact."""
    p = Path(path)
    if (p / "tokenizer.json").exists() or (p / "tokenizer_config.json").exists():
        return p
    if (p / "tokenizer").is_dir():
        return p / "tokenizer"
    raise InputError(f"{p}: no tokenizer found (expected tokenizer.json or tokenizer_config.json); "
                     "build one with `kgllm train tokenizer`")


def scratch_model(cfg: ScratchModelConfig, tokenizer, max_length: int, seed: int):
    """A freshly initialised Llama-style causal LM for ``tokenizer``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if cfg.hidden_size % cfg.num_heads:
        raise ConfigError(f"scratch.hidden_size ({cfg.hidden_size}) must be a multiple of scratch.num_heads "
                          f"({cfg.num_heads})")
    inter = cfg.intermediate_size or -(-int(cfg.hidden_size * 8 / 3) // 64) * 64
    lc = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, intermediate_size=inter,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads or cfg.num_heads, max_position_embeddings=max_length,
        tie_word_embeddings=cfg.tie_embeddings, rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)  # the initial weights depend on the seed only
    return LlamaForCausalLM(lc)


def packed_trainer_class():
    """The Trainer for packed blocks, which come without ``attention_mask`` (see
    :class:`~kgllm.train.data.PadCollator`): tokens are counted from the labels (-100 only on padding).
    The Trainer's own fallback counts ``input_ids != pad_token_id``, which misses every EOS between
    documents when the tokenizer pads with EOS. None if this transformers has no token-count hook to
    override (then the batches keep their masks)."""
    from transformers import Trainer

    if not callable(getattr(Trainer, "_track_num_input_tokens", None)):
        return None

    class PackedTrainer(Trainer):
        def _track_num_input_tokens(self, inputs):
            if "attention_mask" in inputs or self.args.include_num_input_tokens_seen == "no":
                return super()._track_num_input_tokens(inputs)
            import torch

            n = torch.as_tensor((inputs["labels"] != -100).sum(), device=self.args.device, dtype=torch.int64)
            self.state.num_input_tokens_seen += self.accelerator.gather(n).sum().item()

    return PackedTrainer


def run(inputs: list[Path], out: Path, config: PretrainConfig, *, pipeline_key: str | None = None) -> Manifest:
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    cfg = config
    ins = resolve_inputs(inputs, cfg, scratch_ok=True)
    if ins.model is None and cfg.tokenizer is None:
        raise ConfigError("train.pretrain: model: scratch needs tokenizer: DIR (from `kgllm train tokenizer`)")
    tok = load_tokenizer(tokenizer_dir(cfg.tokenizer) if cfg.tokenizer else ins.model)
    if cfg.tokenizer:
        ins.inputs.append(Path(cfg.tokenizer))
    train_rows, eval_rows = tdata.train_eval_rows(ins.corpus, "pretrain", cfg, "pretraining text")
    train_blocks, tstats = tdata.pack_texts([r["text"] for r in train_rows], tok, cfg.max_length)
    eval_blocks, estats = tdata.pack_texts([r["text"] for r in eval_rows], tok, cfg.max_length) if eval_rows \
        else ([], {"tokens": 0, "blocks": 0})

    if ins.model is None:
        model = scratch_model(cfg.scratch, tok, cfg.max_length, cfg.seed)
    else:
        model = load_causal_lm(ins.model)
        if len(tok) > model.get_input_embeddings().num_embeddings:
            model.resize_token_embeddings(len(tok))  # a tokenizer with added tokens
    lora = peft_config(cfg)
    if lora is not None:
        from peft import get_peft_model

        model = get_peft_model(model, lora)

    def build(kw: dict):
        cls = packed_trainer_class()
        collator = tdata.PadCollator(tok.pad_token_id, mask=cls is None,
                                     static_shape=(cfg.batch_size, cfg.max_length) if cfg.compile else None)
        return (cls or Trainer)(
            model=model, args=TrainingArguments(**kw), processing_class=tok,
            train_dataset=Dataset.from_dict({"input_ids": train_blocks}),
            eval_dataset=Dataset.from_dict({"input_ids": eval_blocks}) if eval_blocks else None,
            data_collator=collator,
        )

    counts = {"train_examples": len(train_blocks), "eval_examples": len(eval_blocks),
              "train_documents": len(train_rows), "eval_documents": len(eval_rows),
              "train_tokens": tstats["tokens"], "eval_tokens": estats["tokens"]}
    extra = {"from_scratch": ins.model is None, "packing": {"block_size": cfg.max_length, **tstats}}
    return run_training("train.pretrain", "model.pretrain", cfg, ins, out, build=build, tokenizer=tok,
                        counts=counts, extra=extra, pipeline_key=pipeline_key)


# ``kgllm.train.pretrain(...)`` runs the stage (kgllm.api): this module is also its stage's function.
api.callable_package(__name__, api.train_pretrain)
