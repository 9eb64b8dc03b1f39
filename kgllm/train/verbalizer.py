"""``train.verbalizer``: a triples-to-text model, SFT of a causal LM on WebNLG (trl ``SFTTrainer``).

Takes: WebNLG XML files or directories (``webnlg``, read in place: the data is CC BY-NC-SA and never copied
into an artifact), optionally dev XML (``dev``) for an eval loss, categories to leave out
(``exclude_categories``, for the leave-categories-out protocol), and a starting model (``model``:
a prepared name, default SmolLM2-135M-Instruct, or a checkpoint; or a model artifact as the input).
Makes: a ``model.verbalizer`` artifact: the checkpoint, ``training_config.json`` (with ``verbalizer``: the
prompt format, the categories trained on and left out), ``metrics.json`` (loss, speed, peak memory) and
the manifest (config with ``exclude_categories``, counts). ``kgllm verbalize --model DIR``, ``kgllm eval
webnlg --model DIR`` and the corpus stage's ``verbalizer: {model: DIR}`` decode with it
(:class:`kgllm.corpus.neural.NeuralVerbalizer`).

A training row is one (entry, reference) pair: the prompt is :func:`kgllm.corpus.neural.prompt` of the
entry's triples (labels and realized literals, the same lines the checker holds the output to), the
completion the reference text; the loss covers the completion only.

One GPU (minutes; bf16 on its own)::

    kgllm train verbalizer --webnlg ../shared/data/webnlg/train --dev ../shared/data/webnlg/dev --out runs/verbalizer
    kgllm train verbalizer --webnlg ../shared/data/webnlg/train \\
        --exclude-categories Airport,Building,Company,Politician --out runs/verbalizer-fold0

Several GPUs: ``torchrun --standalone --nproc_per_node=N -m kgllm train verbalizer ...`` (as the other
train stages; :mod:`kgllm.train.cli`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .. import api
from ..artifacts import Manifest, read_manifest
from ..corpus import neural
from ..corpus.webnlg import Entry, read_entries
from ..errors import InputError
from . import data as tdata
from .common import RunInputs, load_causal_lm, load_tokenizer, peft_config, run_training
from .models import resolve_model
from .stage import VerbalizerConfig


def training_rows(entries: list[Entry]) -> list[dict]:
    """``{"id", "prompt", "completion", "category"}`` per reference, in a fixed order that mixes categories
    and sizes (ids sorted by their hash), so ``max_train_examples`` takes a spread sample."""
    rows = []
    for e in entries:
        p = neural.prompt(e.triples)
        for k, ref in enumerate(e.references):
            rows.append({"id": f"{e.source}#{e.eid}#{k}", "prompt": p, "completion": ref, "category": e.category})
    rows.sort(key=lambda r: (hashlib.blake2b(r["id"].encode(), digest_size=8).hexdigest(), r["id"]))
    return rows


def select(entries: list[Entry], exclude: list[str], *, keep_only: bool = False) -> list[Entry]:
    """Entries with references outside ``exclude`` (or, ``keep_only``, inside it)."""
    ex = set(exclude)
    return [e for e in entries if e.references and ((e.category in ex) == keep_only)]


def fit_rows(rows: list[dict], tokenizer, chat: bool, max_length: int) -> tuple[list[dict], int, int]:
    """The rows whose prompt leaves room for text within ``max_length`` tokens, how many were left out,
    and how many of those kept will have their text cut (trl truncates prompt + text at ``max_length``)."""
    if not rows:
        return [], 0, 0
    special = not chat
    prompts = tokenizer([neural.model_input(tokenizer, r["prompt"], chat) for r in rows],
                        add_special_tokens=special)["input_ids"]
    texts = tokenizer([r["completion"] for r in rows], add_special_tokens=False)["input_ids"]
    kept, cut = [], 0
    for r, p, t in zip(rows, prompts, texts, strict=True):
        if len(p) >= max_length:
            continue
        kept.append(r)
        cut += len(p) + len(t) + 1 > max_length  # + 1: the end-of-text token
    return kept, len(rows) - len(kept), cut


def run(inputs: list[Path], out: Path, config: VerbalizerConfig, *, pipeline_key: str | None = None) -> Manifest:
    from datasets import Dataset
    from trl import SFTConfig as TrlSFTConfig
    from trl import SFTTrainer

    cfg = config
    entries = read_entries(cfg.webnlg)
    if not entries:
        raise InputError(f"webnlg {', '.join(map(str, cfg.webnlg))}: no WebNLG entries (give the train XML "
                         "directory, e.g. ../shared/data/webnlg/train)")
    categories = sorted({e.category for e in entries})
    unknown = sorted(set(cfg.exclude_categories) - set(categories))
    if unknown:
        raise InputError(f"exclude_categories: {', '.join(unknown)} not in the WebNLG data; its categories are "
                         f"{', '.join(categories)}")
    train = training_rows(select(entries, cfg.exclude_categories))
    if cfg.max_train_examples > 0:
        train = train[:cfg.max_train_examples]
    if not train:
        raise InputError("train.verbalizer: every category is excluded; nothing to train on")
    dev_entries = read_entries(cfg.dev) if cfg.dev else []
    # Eval loss on the held-out categories when some are left out, else on all of dev.
    dev = training_rows(select(dev_entries, cfg.exclude_categories, keep_only=True) if cfg.exclude_categories
                        else select(dev_entries, []))[:cfg.max_eval_examples]

    if inputs:
        model = Path(inputs[0])
        read_manifest(model, kind="model")
    else:
        model = resolve_model(cfg.model)
    ins = RunInputs(corpus=Path(cfg.webnlg[0]), model=model, inputs=[*cfg.webnlg, *cfg.dev, model])
    tok = load_tokenizer(model)
    chat = tdata.use_chat(tok, cfg.chat_format)
    train, train_long, train_cut = fit_rows(train, tok, chat, cfg.max_length)
    dev, dev_long, _ = fit_rows(dev, tok, chat, cfg.max_length)
    if not train:
        raise InputError(f"max_length {cfg.max_length}: every training prompt is that long or longer, so no text "
                         "would be learned; raise max_length (the default, 320, fits all but 4 of WebNLG train's 35,426 "
                         "texts with SmolLM2's tokenizer)")
    lm = load_causal_lm(model)

    def build(kw: dict):
        args = TrlSFTConfig(**kw, max_length=cfg.max_length, completion_only_loss=cfg.completion_only,
                            packing=False, dataset_num_proc=None)
        return SFTTrainer(
            model=lm, args=args, processing_class=tok, peft_config=peft_config(cfg),
            train_dataset=Dataset.from_list([neural.sft_row(r["prompt"], r["completion"], chat) for r in train]),
            eval_dataset=Dataset.from_list([neural.sft_row(r["prompt"], r["completion"], chat) for r in dev])
            if dev else None,
        )

    trained = sorted({r["category"] for r in train})
    counts = {"train_examples": len(train), "eval_examples": len(dev), "train_categories": len(trained),
              "excluded_categories": len(cfg.exclude_categories),
              # rows whose prompt fills max_length are left out (nothing of their text would be learned);
              # rows whose text runs past it are cut at max_length
              "train_examples_too_long": train_long, "train_examples_truncated": train_cut,
              "eval_examples_too_long": dev_long}
    extra = {"chat_format": "chat" if chat else "plain",
             "verbalizer": {"prompt_format": neural.PROMPT_FORMAT, "instruction": neural.INSTRUCTION,
                            "exclude_categories": sorted(cfg.exclude_categories), "train_categories": trained}}
    return run_training("train.verbalizer", "model.verbalizer", cfg, ins, out, build=build, tokenizer=tok,
                        counts=counts, extra=extra, pipeline_key=pipeline_key, manifest_extra=extra)


# ``kgllm.train.verbalizer(...)`` runs the stage (kgllm.api): this module is also its stage's function.
api.callable_package(__name__, api.train_verbalizer)
