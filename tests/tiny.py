"""Tiny, real building blocks for tests, benchmarks and examples: a corpus, a tokenizer, a model.

Takes: nothing but a destination directory.
Makes:
- :func:`write_tiny_corpus`: a corpus artifact (kind ``corpus``, the shared layout) from a dozen real
  DBpedia 2015-10 facts (taken from examples/data/dbpedia-sample), split by entity;
- :func:`train_tiny_tokenizer`: a byte-level BPE tokenizer trained on that corpus (no chat template);
- :func:`write_tiny_model`: a randomly initialised Llama (hidden 32, 2 layers) for that tokenizer.

Everything is deterministic (fixed order, fixed seeds), so runs on it are comparable.
"""

from __future__ import annotations

import json
from pathlib import Path

from kgllm.artifacts import ArtifactWriter, write_jsonl
from kgllm.rdf import DBO, DBR, RDFS_LABEL, iri, literal, triple_id

# (subject, predicate, object, subject label, object label) from the bundled DBpedia sample.
FACTS = [
    ("Rome", "country", "Italy", "Rome", "Italy"),
    ("Karolinska_Institutet", "country", "Sweden", "Karolinska Institutet", "Sweden"),
    ("University_of_Mississippi", "country", "United_States", "University of Mississippi", "United States"),
    ("Hot_pot", "country", "China", "Hot pot", "China"),
    ("Walter_Warlimont", "birthPlace", "Osnabrück", "Walter Warlimont", "Osnabrück"),
    ("Erich_Marcks", "birthPlace", "Berlin", "Erich Marcks", "Berlin"),
    ("Kaleidoscope_(novel)", "country", "United_States", "Kaleidoscope", "United States"),
    ("Walter_Warlimont", "deathPlace", "Kreuth", "Walter Warlimont", "Kreuth"),
    ("Kaleidoscope_(novel)", "author", "Danielle_Steel", "Kaleidoscope", "Danielle Steel"),
    ("Rome", "leaderName", "Ignazio_Marino", "Rome", "Ignazio Marino"),
]
_PHRASE = {"country": "is in the country", "birthPlace": "was born in", "deathPlace": "died in",
           "author": "was written by", "leaderName": "is led by"}
_QUESTION = {"country": "Which country is {s} in?", "birthPlace": "Where was {s} born?",
             "deathPlace": "Where did {s} die?", "author": "Who wrote {s}?", "leaderName": "Who leads {s}?"}
# Split by entity (subject): each entity's facts land in one split only.
_SPLIT = {"Rome": "train", "Karolinska_Institutet": "train", "University_of_Mississippi": "train",
          "Hot_pot": "train", "Walter_Warlimont": "train", "Erich_Marcks": "validation",
          "Kaleidoscope_(novel)": "test"}


def _terms(s: str, p: str, o: str) -> tuple[str, str, str]:
    return iri(DBR + s), iri(DBO + p), iri(DBR + o)


def write_tiny_corpus(out: Path, *, repeat: int = 1) -> Path:
    """A corpus artifact in the shared layout; ``repeat`` > 1 repeats the train rows (for benchmarks)."""
    rows: dict[str, dict[str, list]] = {part: {s: [] for s in ("train", "validation", "test")}
                                        for part in ("pretrain", "sft", "dpo")}
    triples = []
    by_entity: dict[str, list] = {}
    for s, p, o, sl, ol in FACTS:
        by_entity.setdefault(s, []).append((s, p, o, sl, ol))
    objects_by_pred: dict[str, list[tuple[str, str]]] = {}
    for _s, p, o, _sl, ol in FACTS:
        if (o, ol) not in objects_by_pred.setdefault(p, []):
            objects_by_pred[p].append((o, ol))
    for s, facts in sorted(by_entity.items()):
        split = _SPLIT[s]
        ent = DBR + s
        sentences, text, tids = [], "", []
        for s_, p, o, sl, ol in facts:
            st, pt, ot = _terms(s_, p, o)
            tid = triple_id(st, pt, ot)
            sent = f"{sl} {_PHRASE[p]} {ol}."
            triples.append({"id": tid, "s": st, "p": pt, "o": ot, "text": sent})
            start = len(text) + (1 if text else 0)
            text = f"{text} {sent}" if text else sent
            sentences.append({"start": start, "end": len(text), "triple_ids": [tid]})
            tids.append(tid)
            qid = f"{tid}-q"
            rows["sft"][split].append({"id": qid, "prompt": _QUESTION[p].format(s=sl), "completion": sent,
                                       "type": "one_hop", "triple_ids": [tid], "answers": [DBR + o, ol],
                                       "entity": ent})
            # The rejected statement swaps in another object of the same predicate (a false fact).
            # (another object of any predicate when the predicate has only one).
            pool = objects_by_pred[p] + [x for q in sorted(objects_by_pred) for x in objects_by_pred[q]]
            wrong = next(((wo, wl) for wo, wl in pool if wo != o), None)
            if wrong is not None:
                rows["dpo"][split].append({"id": f"{tid}-p", "prompt": _QUESTION[p].format(s=sl), "chosen": sent,
                                           "rejected": f"{sl} {_PHRASE[p]} {wrong[1]}.", "triple_ids": [tid],
                                           "rejected_triple": list(_terms(s_, p, wrong[0])), "entity": ent})
        spans = [{"start": 0, "end": len(facts[0][3]), "surface": facts[0][3], "iri": ent, "types": []}]
        rows["pretrain"][split].append({"id": s, "text": text, "entity": ent, "spans": spans,
                                        "sentences": sentences})
    for s, facts in sorted(by_entity.items()):
        st, lab = iri(DBR + s), facts[0][3]
        lt = literal(lab, lang="en")
        triples.append({"id": triple_id(st, RDFS_LABEL, lt), "s": st, "p": RDFS_LABEL, "o": lt,
                        "text": f"{lab} is called {lab}."})
    with ArtifactWriter(out, "corpus", config={"tiny": True, "repeat": repeat}) as w:
        for part, splits in rows.items():
            for split, items in splits.items():
                items = items * repeat if split == "train" else items
                (w.path / part).mkdir(exist_ok=True)
                write_jsonl(w.path / part / f"{split}.jsonl",
                            [dict(r, id=f"{r['id']}-{i}") if repeat > 1 else r for i, r in enumerate(items)])
                w.counts[f"{part}_{split}"] = len(items)
        write_jsonl(w.path / "triples.jsonl", sorted(triples, key=lambda t: t["id"]))
        (w.path / "leakage.json").write_text(json.dumps({"split_by": "entity", "leaked_triples": 0}) + "\n")
        w.counts["triples"] = len(triples)
    return out


def train_tiny_tokenizer(corpus: Path, out: Path, vocab_size: int = 400) -> Path:
    """A byte-level BPE tokenizer (transformers format) trained on every text field of the corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = []
    for part in ("pretrain", "sft", "dpo"):
        for split in ("train", "validation", "test"):
            p = Path(corpus) / part / f"{split}.jsonl"
            if p.exists():
                for line in p.read_text("utf-8").splitlines():
                    r = json.loads(line)
                    texts.extend(str(r[k]) for k in ("text", "prompt", "completion", "chosen", "rejected") if k in r)
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|pad|>"]
    tk.train_from_iterator(sorted(texts), trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
                                   pad_token="<|pad|>")
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out))
    return out


def write_tiny_model(tokenizer_dir: Path, out: Path, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A tiny Llama checkpoint (random weights) plus its tokenizer: a real model that trains in seconds."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                      max_position_embeddings=256, tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out
