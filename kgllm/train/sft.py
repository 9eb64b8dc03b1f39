"""``train.sft``: supervised fine-tuning on the corpus's question/answer pairs (trl ``SFTTrainer``).

Takes: a corpus artifact (``sft/{train,validation}.jsonl``: ``prompt``, ``completion``) and a starting
model (name, checkpoint path, or a model artifact as second input).
Makes: a ``model.sft`` artifact; with ``lora.enabled`` the adapters are merged into the weights.

The loss covers the answer tokens only (``completion_only``): the model learns to state the fact, not
to reproduce the question. With a chat template the pair is one user turn and one assistant turn, the
same format ``kgllm eval facts`` generates with.
"""

from __future__ import annotations

from pathlib import Path

from .. import api
from ..artifacts import Manifest
from . import data as tdata
from .common import load_causal_lm, load_tokenizer, peft_config, resolve_inputs, run_training
from .stage import SFTConfig


def run(inputs: list[Path], out: Path, config: SFTConfig, *, pipeline_key: str | None = None) -> Manifest:
    from datasets import Dataset
    from trl import SFTConfig as TrlSFTConfig
    from trl import SFTTrainer

    cfg = config
    ins = resolve_inputs(inputs, cfg)
    tok = load_tokenizer(ins.model)
    chat = tdata.use_chat(tok, cfg.chat_format)
    train_rows, eval_rows = tdata.train_eval_rows(ins.corpus, "sft", cfg, "SFT examples")
    model = load_causal_lm(ins.model)

    def build(kw: dict):
        args = TrlSFTConfig(**kw, max_length=cfg.max_length, completion_only_loss=cfg.completion_only,
                            packing=False, dataset_num_proc=None)
        return SFTTrainer(
            model=model, args=args, processing_class=tok, peft_config=peft_config(cfg),
            train_dataset=Dataset.from_list(tdata.sft_rows(train_rows, chat)),
            eval_dataset=Dataset.from_list(tdata.sft_rows(eval_rows, chat)) if eval_rows else None,
        )

    counts = {"train_examples": len(train_rows), "eval_examples": len(eval_rows)}
    extra = {"chat_format": "chat" if chat else "plain"}
    return run_training("train.sft", "model.sft", cfg, ins, out, build=build, tokenizer=tok,
                        counts=counts, extra=extra, pipeline_key=pipeline_key)


# ``kgllm.train.sft(...)`` runs the stage (kgllm.api): this module is also its stage's function.
api.callable_package(__name__, api.train_sft)
