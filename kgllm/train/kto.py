"""``train.kto``: Kahneman-Tversky optimisation on unpaired good/bad answers (trl ``KTOTrainer``).

Takes: a corpus-like artifact with ``kto/{train,validation}.jsonl`` (``prompt``, ``completion``, ``label``:
true for an answer people rated good, false for one they rated bad), as ``kgllm feedback export`` writes
it (kind ``corpus.feedback``), and a starting model (``model``, or a model artifact as second input).
Makes: a ``model.kto`` artifact; ``metrics.json`` has trl's ``eval_rewards/chosen`` and
``eval_rewards/rejected`` (implied rewards of the good and the bad answers) when there are validation rows.

KTO needs no pairs: a thumbs-up or thumbs-down on one answer is a training row, which is what people give
most. The reference model is a frozen copy of the starting model (with LoRA: the base without adapters).
trl estimates KTO's KL reference point by pairing each prompt with the next row's answer within a batch,
hence ``batch_size >= 2`` (checked by :class:`~kgllm.train.stage.KTOConfig`). On CPU the shared settings
apply (``use_cpu``, fp32, no bf16).
"""

from __future__ import annotations

from pathlib import Path

from .. import api
from ..artifacts import Manifest
from . import data as tdata
from .common import load_causal_lm, load_tokenizer, peft_config, resolve_inputs, run_training
from .stage import KTOConfig


def run(inputs: list[Path], out: Path, config: KTOConfig, *, pipeline_key: str | None = None) -> Manifest:
    from datasets import Dataset
    from trl import KTOConfig as TrlKTOConfig
    from trl import KTOTrainer

    cfg = config
    ins = resolve_inputs(inputs, cfg)
    tok = load_tokenizer(ins.model)
    chat = tdata.use_chat(tok, cfg.chat_format)
    train_rows, eval_rows = tdata.train_eval_rows(ins.corpus, "kto", cfg, "rated answers (kto rows)")
    model = load_causal_lm(ins.model)

    def build(kw: dict):
        args = TrlKTOConfig(**kw, max_length=cfg.max_length, beta=cfg.beta, loss_type=cfg.loss_type,
                            desirable_weight=cfg.desirable_weight, undesirable_weight=cfg.undesirable_weight)
        return KTOTrainer(
            model=model, args=args, processing_class=tok, peft_config=peft_config(cfg),
            train_dataset=Dataset.from_list(tdata.kto_rows(train_rows, chat)),
            eval_dataset=Dataset.from_list(tdata.kto_rows(eval_rows, chat)) if eval_rows else None,
        )

    good = sum(r["label"] for r in train_rows)
    counts = {"train_examples": len(train_rows), "eval_examples": len(eval_rows),
              "train_desirable": good, "train_undesirable": len(train_rows) - good}
    extra = {"chat_format": "chat" if chat else "plain"}
    return run_training("train.kto", "model.kto", cfg, ins, out, build=build, tokenizer=tok,
                        counts=counts, extra=extra, pipeline_key=pipeline_key)


# ``kgllm.train.kto(...)`` runs the stage (kgllm.api): this module is also its stage's function.
api.callable_package(__name__, api.train_kto)
