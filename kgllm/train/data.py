"""Corpus artifact -> training examples: read the JSONL splits and shape them for each trainer.

Takes: a corpus artifact (kind ``corpus``; layout in docs/train.md): ``pretrain/``, ``sft/``, ``dpo/``
splits as JSONL, each with ``train``, ``validation`` and ``test``; or a feedback export (kind
``corpus.feedback``): ``dpo/`` and ``kto/`` (``{"id","prompt","completion","label"}``, label a boolean:
the answer was rated good) with ``train`` and ``validation``.
Makes: plain Python rows (sorted by id, so runs do not depend on file order) and the prompt formats the
trainers and ``kgllm eval facts`` share: with a chat template the question is a user turn and the answer
an assistant turn; without one (a tokenizer trained from scratch) a fixed plain template.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..artifacts import iter_jsonl, read_manifest
from ..errors import InputError
from ..rdf import RDFS_LABEL, lexical_form

PARTS = ("pretrain", "sft", "dpo", "kto")
SPLITS = ("train", "validation", "test")
# The prompt format used when the tokenizer has no chat template.
PLAIN_PROMPT = "Question: {prompt}\nAnswer:"
_REQUIRED = {
    "pretrain": ("id", "text"),
    "sft": ("id", "prompt", "completion"),
    "dpo": ("id", "prompt", "chosen", "rejected"),
    "kto": ("id", "prompt", "completion"),
}
_BOOL_FIELDS = {"kto": ("label",)}


def check_corpus(corpus: Path) -> None:
    read_manifest(corpus, kind="corpus")


def train_eval_rows(corpus: Path, part: str, cfg, what: str) -> tuple[list[dict], list[dict]]:
    """The train and validation rows of ``part`` a training stage uses (``cfg.max_train_examples`` and
    ``cfg.max_eval_examples``); no training rows is an error that says what is missing."""
    train = read_split(corpus, part, "train", cfg.max_train_examples)
    if not train:
        raise InputError(f"{corpus}/{part}/train.jsonl: no {what}; rebuild the corpus (or, for a feedback "
                         "export, collect more feedback and export again)")
    return train, read_split(corpus, part, "validation", cfg.max_eval_examples)


def read_split(corpus: Path, part: str, split: str, limit: int = 0) -> list[dict]:
    """Rows of ``corpus/<part>/<split>.jsonl`` sorted by id; a missing split file is an empty list.

    Every row must carry the contract's fields; a bad line is an error naming file and line.
    """
    path = Path(corpus) / part / f"{split}.jsonl"
    if not path.exists():
        return []
    rows = []
    for n, row in iter_jsonl(path, hint="; rebuild the corpus with `kgllm corpus`"):
        missing = [k for k in _REQUIRED[part] if not isinstance(row.get(k), str)]
        if missing:
            raise InputError(f"{path}:{n}: record {row.get('id', '?')!r} lacks string field(s) {missing}")
        not_bool = [k for k in _BOOL_FIELDS.get(part, ()) if not isinstance(row.get(k), bool)]
        if not_bool:
            raise InputError(f"{path}:{n}: record {row.get('id', '?')!r}: field(s) {not_bool} must be true or false")
        rows.append(row)
    rows.sort(key=lambda r: r["id"])
    return rows[:limit] if limit > 0 else rows


def read_triples(corpus: Path) -> list[dict]:
    """``corpus/triples.jsonl``: ``{"id","s","p","o","text"}`` per triple (empty if absent)."""
    path = Path(corpus) / "triples.jsonl"
    if not path.exists():
        return []
    return [row for _n, row in iter_jsonl(path)]


def triple_labels(triples: list[dict]) -> dict[str, str]:
    """IRI (without brackets) -> the lexical form of its first ``rdfs:label`` among ``triples`` (rows of
    :func:`read_triples`) in id order."""
    out: dict[str, str] = {}
    for t in sorted(triples, key=lambda t: t.get("id", "")):
        if t.get("p") == RDFS_LABEL and t.get("s", "").startswith("<") and t.get("o", "").startswith('"'):
            out.setdefault(t["s"][1:-1], lexical_form(t["o"]))
    return out


def use_chat(tokenizer, chat_format: str) -> bool:
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if chat_format == "chat" and not has_template:
        raise InputError("chat_format: chat, but the tokenizer has no chat template; use chat_format: plain")
    return has_template if chat_format == "auto" else chat_format == "chat"


def prompt_value(prompt: str, chat: bool):
    return [{"role": "user", "content": prompt}] if chat else PLAIN_PROMPT.format(prompt=prompt)


def answer_value(text: str, chat: bool):
    return [{"role": "assistant", "content": text}] if chat else " " + text


def prompt_text(tokenizer, prompt: str, chat: bool, demos: Sequence[tuple[str, str]] = ()) -> str:
    """The exact text a model sees before its answer (for generation and scoring). ``demos``: worked
    (question, answer) examples before the question (few-shot), as earlier chat turns or earlier
    ``Question: ... Answer: ...`` blocks."""
    if chat:
        turns = [m for q, a in demos for m in prompt_value(q, True) + answer_value(a, True)]
        return tokenizer.apply_chat_template(turns + prompt_value(prompt, True), tokenize=False,
                                             add_generation_prompt=True)
    return "".join(PLAIN_PROMPT.format(prompt=q) + answer_value(a, False) + "\n\n" for q, a in demos) \
        + PLAIN_PROMPT.format(prompt=prompt)


def sft_rows(rows: list[dict], chat: bool) -> list[dict]:
    """trl's prompt-completion format (conversational when ``chat``)."""
    return [{"prompt": prompt_value(r["prompt"], chat), "completion": answer_value(r["completion"], chat)}
            for r in rows]


def preference_rows(rows: list[dict], chat: bool) -> list[dict]:
    """trl's preference format with an explicit prompt (DPOTrainer and RewardTrainer)."""
    return [{"prompt": prompt_value(r["prompt"], chat), "chosen": answer_value(r["chosen"], chat),
             "rejected": answer_value(r["rejected"], chat)} for r in rows]


def kto_rows(rows: list[dict], chat: bool) -> list[dict]:
    """trl's unpaired preference format (KTOTrainer): prompt, completion and a boolean label."""
    return [{"prompt": prompt_value(r["prompt"], chat), "completion": answer_value(r["completion"], chat),
             "label": bool(r["label"])} for r in rows]


def pack_texts(texts: list[str], tokenizer, block_size: int) -> tuple[list[list[int]], dict]:
    """Tokenize, join with EOS and cut into blocks of ``block_size`` tokens (sequence packing).

    The last block may be shorter; it is kept (the collator pads it), so no token is dropped.
    """
    eos = tokenizer.eos_token_id
    if eos is None:
        raise InputError("the tokenizer has no EOS token; packing needs one to separate documents")
    stream: list[int] = []
    for t in texts:
        stream.extend(tokenizer(t, add_special_tokens=False)["input_ids"])
        stream.append(eos)
    blocks = [stream[i:i + block_size] for i in range(0, len(stream), block_size)]
    return blocks, {"documents": len(texts), "tokens": len(stream), "blocks": len(blocks)}


class PadCollator:
    """Right-pad ``input_ids`` blocks; labels are the inputs with -100 on padding (not on EOS inside text).

    ``mask=False`` (packed causal LM training): no ``attention_mask``. With right padding a causal model
    gives the real positions the same outputs either way (they never attend to later positions), and
    the loss skips padding through its labels; without a mask, transformers keeps the flash attention
    kernel under ``torch.compile``, which cannot see that a mask is all ones.
    ``static_shape=(rows, length)``: every batch is padded to that shape (a short batch gets rows of pure
    padding, which carry no loss): one compiled graph for the whole run instead of a recompilation for
    the short batch at the end of each epoch.
    """

    def __init__(self, pad_id: int, *, mask: bool = True, static_shape: tuple[int, int] | None = None):
        self.pad_id = pad_id
        self.mask = mask
        self.static_shape = static_shape

    def __call__(self, examples: list[dict]) -> dict:
        import torch

        rows, n = len(examples), max(len(e["input_ids"]) for e in examples)
        if self.static_shape:
            rows, n = max(rows, self.static_shape[0]), max(n, self.static_shape[1])
        ids = torch.full((rows, n), self.pad_id, dtype=torch.long)
        labels = torch.full((rows, n), -100, dtype=torch.long)
        mask = torch.zeros((rows, n), dtype=torch.long) if self.mask else None
        for i, e in enumerate(examples):
            k = len(e["input_ids"])
            t = torch.tensor(e["input_ids"], dtype=torch.long)
            ids[i, :k] = t
            labels[i, :k] = t
            if mask is not None:
                mask[i, :k] = 1
        return {"input_ids": ids, "labels": labels} | ({"attention_mask": mask} if mask is not None else {})
