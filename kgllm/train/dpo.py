"""``train.dpo``: direct preference optimisation on KG-verified preference pairs (trl ``DPOTrainer``).

Takes: a corpus artifact (``dpo/{train,validation}.jsonl``: ``prompt``, ``chosen`` (a true statement
from the graph), ``rejected`` (the same statement with a corrupted triple)) and a starting model, usually
the SFT model given as second input.
Makes: a ``model.dpo`` artifact; ``metrics.json`` has trl's ``eval_rewards/accuracies`` (how often the
model prefers the true statement) on the validation pairs.

The reference model is a frozen copy of the starting model (with LoRA: the base without adapters).
"""

from __future__ import annotations

from pathlib import Path

from .. import api
from ..artifacts import Manifest
from . import data as tdata
from .common import load_causal_lm, load_tokenizer, peft_config, resolve_inputs, run_training
from .stage import DPOConfig


def run(inputs: list[Path], out: Path, config: DPOConfig, *, pipeline_key: str | None = None) -> Manifest:
    from datasets import Dataset
    from trl import DPOConfig as TrlDPOConfig
    from trl import DPOTrainer

    cfg = config
    ins = resolve_inputs(inputs, cfg)
    tok = load_tokenizer(ins.model)
    chat = tdata.use_chat(tok, cfg.chat_format)
    train_rows, eval_rows = tdata.train_eval_rows(ins.corpus, "dpo", cfg, "preference pairs")
    model = load_causal_lm(ins.model)

    def build(kw: dict):
        args = TrlDPOConfig(**kw, max_length=cfg.max_length, beta=cfg.beta, loss_type=[cfg.loss_type])
        return DPOTrainer(
            model=model, args=args, processing_class=tok, peft_config=peft_config(cfg),
            train_dataset=Dataset.from_list(tdata.preference_rows(train_rows, chat)),
            eval_dataset=Dataset.from_list(tdata.preference_rows(eval_rows, chat)) if eval_rows else None,
        )

    counts = {"train_examples": len(train_rows), "eval_examples": len(eval_rows)}
    extra = {"chat_format": "chat" if chat else "plain"}
    return run_training("train.dpo", "model.dpo", cfg, ins, out, build=build, tokenizer=tok,
                        counts=counts, extra=extra, pipeline_key=pipeline_key)


# ``kgllm.train.dpo(...)`` runs the stage (kgllm.api): this module is also its stage's function.
api.callable_package(__name__, api.train_dpo)
