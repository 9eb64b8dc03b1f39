"""``train.reward``: a reward model on the corpus's preference pairs (trl ``RewardTrainer``).

Takes: a corpus artifact (``dpo/{train,validation}.jsonl``) and a starting model; its language-model
head is replaced by a one-output scoring head (``AutoModelForSequenceClassification``, ``num_labels=1``).
Makes: a ``model.reward`` artifact (a sequence classifier: higher score = more likely true);
``metrics.json`` has the validation ``eval_accuracy`` (chosen scored above rejected).

For a reward that needs no training, see :mod:`kgllm.train.kg_reward` (checks statements against the
graph's triples).
"""

from __future__ import annotations

from pathlib import Path

from .. import api
from ..artifacts import Manifest
from . import data as tdata
from .common import load_tokenizer, peft_config, resolve_inputs, run_training
from .stage import RewardConfig


def run(inputs: list[Path], out: Path, config: RewardConfig, *, pipeline_key: str | None = None) -> Manifest:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig as TrlRewardConfig
    from trl import RewardTrainer

    cfg = config
    ins = resolve_inputs(inputs, cfg)
    tok = load_tokenizer(ins.model)
    chat = tdata.use_chat(tok, cfg.chat_format)
    train_rows, eval_rows = tdata.train_eval_rows(ins.corpus, "dpo", cfg, "preference pairs")
    # The scoring head is new (randomly initialised from the seed); the transformer body is the model's.
    torch.manual_seed(cfg.seed)
    model = AutoModelForSequenceClassification.from_pretrained(str(ins.model), num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = tok.pad_token_id  # the head reads the last non-pad token

    def build(kw: dict):
        args = TrlRewardConfig(**kw, max_length=cfg.max_length,
                               center_rewards_coefficient=cfg.center_rewards_coefficient or None)
        return RewardTrainer(
            model=model, args=args, processing_class=tok, peft_config=peft_config(cfg, "SEQ_CLS"),
            train_dataset=Dataset.from_list(tdata.preference_rows(train_rows, chat)),
            eval_dataset=Dataset.from_list(tdata.preference_rows(eval_rows, chat)) if eval_rows else None,
        )

    counts = {"train_examples": len(train_rows), "eval_examples": len(eval_rows)}
    extra = {"chat_format": "chat" if chat else "plain", "head": "sequence classification, 1 score"}
    return run_training("train.reward", "model.reward", cfg, ins, out, build=build, tokenizer=tok,
                        counts=counts, extra=extra, pipeline_key=pipeline_key)


# ``kgllm.train.reward(...)`` runs the stage (kgllm.api): this module is also its stage's function.
api.callable_package(__name__, api.train_reward)
