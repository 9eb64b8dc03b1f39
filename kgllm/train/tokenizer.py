"""``kgllm train tokenizer``: a byte-level BPE tokenizer trained on a corpus artifact.

Takes: a ``corpus`` artifact (texts of ``pretrain``, ``sft`` and ``dpo``, train split only, so the
held-out splits stay unseen) and a vocabulary size.
Makes: a ``tokenizer`` artifact in transformers format: ``tokenizer.json`` + ``tokenizer_config.json`` +
``special_tokens_map.json`` (loadable with ``AutoTokenizer.from_pretrained(DIR)`` or
``PreTrainedTokenizerFast(tokenizer_file=...)``), plus ``manifest.json``.
Special tokens: ``<|endoftext|>`` (bos/eos/unk) and ``<|pad|>``. Byte-level, so every string round-trips.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ..artifacts import ArtifactWriter, Manifest, read_manifest
from ..errors import UsageError, require
from ..log import progress

EOS = "<|endoftext|>"
PAD = "<|pad|>"


def corpus_texts(corpus: Path, split: str = "train") -> Iterator[str]:
    for part, fields in (("pretrain", ("text",)), ("sft", ("prompt", "completion")),
                         ("dpo", ("prompt", "chosen", "rejected"))):
        path = Path(corpus) / part / f"{split}.jsonl"
        if not path.exists():
            continue
        with open(path, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                for k in fields:
                    if row.get(k):
                        yield row[k]


def train_tokenizer(corpus: Path, out: Path, *, vocab_size: int = 8000, min_frequency: int = 2,
                    pipeline_key: str | None = None) -> Manifest:
    if vocab_size < 300:
        raise UsageError(f"--vocab-size {vocab_size}: a byte-level BPE needs at least 256 byte tokens plus merges; "
                         "use 300 or more")
    read_manifest(corpus, "corpus")
    tk = require("tokenizers", "train")
    require("transformers", "train")
    from tokenizers import decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = tk.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[EOS, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    n = {"texts": 0, "chars": 0}

    def texts():
        for t in progress(corpus_texts(corpus), desc="tokenizer texts", unit="text"):
            n["texts"] += 1
            n["chars"] += len(t)
            yield t

    tok.train_from_iterator(texts(), trainer=trainer)
    if n["texts"] == 0:
        raise UsageError(f"{corpus}: the corpus has no train texts to learn a tokenizer from")
    config = {"corpus": str(corpus), "vocab_size": vocab_size, "min_frequency": min_frequency}
    with ArtifactWriter(out, "tokenizer", config=config, inputs=[corpus], pipeline_key=pipeline_key) as w:
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, unk_token=EOS,
                                       pad_token=PAD, model_max_length=2048)
        fast.save_pretrained(str(w.path))
        w.counts.update(texts=n["texts"], chars=n["chars"], vocab_size=tok.get_vocab_size())
    return w.manifest
