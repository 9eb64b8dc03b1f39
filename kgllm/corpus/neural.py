"""The trained verbalizer: triples -> text by a causal LM, every output checked, with the templates behind it.

Takes: a model directory written by ``kgllm train verbalizer`` (:mod:`kgllm.train.verbalizer`; any causal LM
checkpoint or a prepared model name works too, e.g. zero-shot ``smollm2-135m-instruct``) and triple sets,
as WebNLG-style strings (``("Alan_Bean", "birthPlace", "Wheeler,_Texas")``) or N-Triples terms (then a
``label`` function names the IRIs, as the corpus stage's graph does).
Makes:
- the model's input format, shared with training: :func:`linearize` (one ``subject | predicate | object``
  line per triple, with labels and realized literals: ``1871-01-01`` -> "1 January 1871", ``17068.8
  (millimetres)`` -> "17,068.8 millimetres", ``birthPlace`` -> "birth place"), :func:`prompt` (an
  instruction and those lines) and :func:`model_input` / :func:`sft_row` (chat turns for a tokenizer with a
  chat template, else :data:`PLAIN_FORMAT`);
- :class:`NeuralVerbalizer`: batched decoding (``torch.no_grad``, left padding, on the GPU when there is one,
  bfloat16 there), greedy first; each output is checked by :func:`kgllm.corpus.faithfulness.check` (every
  subject and object mentioned, no other known entity or number); a failing one is retried with beam search
  (the first of the beams' outputs that passes is kept), and a set that still fails falls back to the
  template verbalizer (or to the caller's own template text). :meth:`NeuralVerbalizer.verbalize_many`
  returns a :class:`Verbalized` per set (text, the path taken, the check of the text and of the model's
  first output); :func:`tally` counts them for a manifest (texts = passed + retried + fallbacks) and
  :attr:`NeuralVerbalizer.speed` gives the decoding speed (generated tokens per second);
- :func:`verbalize_jsonl_model`: ``kgllm verbalize --model DIR``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..artifacts import MANIFEST, write_jsonl
from ..errors import InputError
from ..log import logger, progress
from ..rdf import is_literal, parse_literal
from ..train import data as tdata
from ..train.models import resolve_model
from .faithfulness import Finding, KnownEntities, check, label_of
from .render import split_camel
from .verbalize import TemplateVerbalizer, quantity, read_triple_sets, realize, realize_date, to_webnlg

Triple = tuple[str, str, str]
Label = Callable[[str], "str | None"]

# The input format's version: a model is trained on one format and decoded with the same one.
PROMPT_FORMAT = "kgllm-verbalizer-1"
INSTRUCTION = "Write a short English text that states exactly these facts, one per line as subject | property | object:"
# Without a chat template (a tokenizer trained from scratch): the prompt, then the text after "Text:".
PLAIN_FORMAT = "{prompt}\nText:"
PATHS = ("model", "retry", "templates")


# ----------------------------------------------------------------------------- input format


def predicate_words(predicate: str, label: Label | None = None) -> str:
    """A predicate as words: its label when ``label`` knows it, else its local name split
    (``birthPlace`` -> "birth place", ``<http://dbpedia.org/ontology/runwayLength>`` -> "runway length")."""
    if label is not None:
        name = label(predicate)
        if name:
            return name
    return split_camel(to_webnlg(predicate).replace("/", " ")) or predicate


def term_name(term: str, label: Label | None = None) -> str:
    """A subject or object as the model is shown it: as the faithfulness check names it
    (:func:`kgllm.corpus.faithfulness.label_of`), so what the model sees is what it is held to; a plain
    string that is a date or a quantity (WebNLG's ``"1932-03-15"``) realized ("15 March 1932")."""
    if is_literal(term):
        value, lang, dt = parse_literal(term)
        if dt is None and lang is None and (realize_date(value) is not None or quantity(value) is not None):
            return realize(value)
    return label_of(term, label)


def linearize(triples: Iterable[Triple], label: Label | None = None, predicate_label: Label | None = None) -> str:
    """One ``subject | predicate | object`` line per triple (:func:`term_name`, :func:`predicate_words`)."""
    return "\n".join(f"{term_name(s, label)} | {predicate_words(p, predicate_label)} | {term_name(o, label)}"
                     for s, p, o in triples)


def prompt(triples: Iterable[Triple], label: Label | None = None, predicate_label: Label | None = None) -> str:
    return INSTRUCTION + "\n" + linearize(triples, label, predicate_label)


def sft_row(prompt_text: str, completion: str, chat: bool) -> dict:
    """One training row in trl's prompt-completion format (conversational with a chat template)."""
    if chat:
        return {"prompt": [{"role": "user", "content": prompt_text}],
                "completion": [{"role": "assistant", "content": completion}]}
    return {"prompt": PLAIN_FORMAT.format(prompt=prompt_text), "completion": " " + completion}


def model_input(tokenizer, prompt_text: str, chat: bool) -> str:
    """The exact text the model continues (the same as :func:`sft_row`'s prompt)."""
    if chat:
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt_text}], tokenize=False,
                                             add_generation_prompt=True)
    return PLAIN_FORMAT.format(prompt=prompt_text)


# ----------------------------------------------------------------------------- results


@dataclass
class Verbalized:
    text: str
    path: str              # "model": the first output passed; "retry": a retry output passed; "templates": fallback
    finding: Finding       # the check of ``text``
    first: Finding | None  # the check of the model's first output (None: the model was not run)


def tally(results: Sequence[Verbalized]) -> dict:
    """Counts for a manifest: ``texts`` = ``passed`` + ``retried`` + ``fallbacks``; ``omissions`` and
    ``hallucinations`` in the texts kept (a model text is kept only when it has none, so these are the
    fallback templates'), and ``model_omissions`` / ``model_hallucinations`` caught in the model's first
    outputs (terms with no mention; unexpected entities and numbers), over ``triples`` triples."""
    n = {"texts": len(results), "passed": 0, "retried": 0, "fallbacks": 0, "triples": 0, "omissions": 0,
         "hallucinations": 0, "triples_with_omission": 0, "model_omissions": 0, "model_hallucinations": 0}
    key = {"model": "passed", "retry": "retried", "templates": "fallbacks"}
    for r in results:
        n[key[r.path]] += 1
        n["triples"] += len(r.finding.triples)
        n["omissions"] += len(r.finding.omissions)
        n["triples_with_omission"] += len(r.finding.omitted_triples)
        n["hallucinations"] += len(r.finding.hallucinations)
        if r.first is not None:
            n["model_omissions"] += len(r.first.omissions)
            n["model_hallucinations"] += len(r.first.hallucinations)
    return n


# ----------------------------------------------------------------------------- the model


def model_info(path: Path) -> dict:
    """What a model directory says about itself: its artifact kind and manifest hash (``content_sha256``),
    the prompt format and chat format it was trained with, the categories it left out."""
    info: dict = {"model": str(path)}
    if (path / MANIFEST).exists():
        man = json.loads((path / MANIFEST).read_text("utf-8"))
        info.update({"artifact_kind": man.get("kind"), "manifest_sha256": man.get("content_sha256")})
    tc = path / "training_config.json"
    if tc.exists():
        t = json.loads(tc.read_text("utf-8"))
        info["chat_format"] = t.get("chat_format", "auto")
        v = t.get("verbalizer") or {}
        info.update({k: v[k] for k in ("prompt_format", "exclude_categories", "train_categories") if k in v})
        info["base_model"] = t.get("base_model")
    return info


class NeuralVerbalizer:
    """A causal LM that verbalizes triple sets, checked and backed by the templates (module docstring).

    ``retry_beams``: beams of the retry (0: no retry); ``device``: "auto" (a GPU when there is one),
    "cpu" or "cuda"."""

    def __init__(self, model: str | Path, *, batch_size: int = 16, max_new_tokens: int = 192, retry_beams: int = 4,
                 device: str = "auto"):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if batch_size < 1 or max_new_tokens < 1 or retry_beams < 0:
            raise InputError(f"verbalizer: batch_size ({batch_size}) and max_new_tokens ({max_new_tokens}) must be "
                             f"at least 1, retry_beams ({retry_beams}) 0 or more")
        self.path = resolve_model(model)
        self.info = model_info(self.path)
        fmt = self.info.get("prompt_format")
        if fmt is not None and fmt != PROMPT_FORMAT:
            raise InputError(f"{self.path}: trained on prompt format {fmt!r}, this kgllm writes {PROMPT_FORMAT!r}; "
                             "train it again with `kgllm train verbalizer`")
        if self.info.get("artifact_kind") not in (None, "model.verbalizer"):
            logger.warning("%s: a %s artifact, not a trained verbalizer (kgllm train verbalizer); its outputs "
                           "are checked and fall back to the templates where they fail", self.path,
                           self.info["artifact_kind"])
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif device == "cuda" and not torch.cuda.is_available():
            raise InputError("verbalizer device: cuda, but no GPU is visible; use device: auto or cpu")
        self.device = device
        self.tok = AutoTokenizer.from_pretrained(str(self.path))
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        self.tok.padding_side = "left"  # every row's prompt ends at the right edge, where generation continues
        self.chat = tdata.use_chat(self.tok, self.info.get("chat_format", "auto"))
        # bfloat16 halves the memory traffic of decoding on a GPU; float32 on CPU, where bf16 is slow.
        dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(str(self.path), dtype=dtype).to(device)
        self.model.eval()
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.retry_beams = retry_beams
        self.new_tokens = 0
        self.seconds = 0.0
        self.too_long = 0  # sets sent straight to the templates: the prompt filled the model's positions
        self._templates: TemplateVerbalizer | None = None

    @property
    def speed(self) -> dict:
        """Decoding so far: generated tokens (up to each output's end), seconds, tokens per second, device, and
        the sets whose prompt was too long for the model (they went to the templates)."""
        return {"generated_tokens": self.new_tokens, "decode_seconds": round(self.seconds, 3),
                "tokens_per_s": round(self.new_tokens / self.seconds, 1) if self.seconds else 0.0,
                "device": self.device, "prompts_too_long": self.too_long}

    def generate(self, prompts: Sequence[str], *, num_beams: int = 1, num_return: int = 1,
                 desc: str = "verbalizing") -> list[list[str]]:
        """``num_return`` texts per prompt (the beams' best first); greedy when ``num_beams`` is 1. Prompts
        are batched by length, so a batch pads little."""
        import torch

        texts = [model_input(self.tok, p, self.chat) for p in prompts]
        lengths = [self._length(p) for p in prompts]
        order = sorted(range(len(texts)), key=lambda i: (lengths[i], i))
        out: list[list[str]] = [[] for _ in texts]
        # beams multiply the rows a batch decodes: fewer prompts per batch keeps the memory the same
        per_batch = max(1, self.batch_size // max(1, num_beams))
        eos = self.tok.eos_token_id
        for k in progress(range(0, len(order), per_batch), desc=desc, unit="batch"):
            idx = order[k:k + per_batch]
            enc = self.tok([texts[i] for i in idx], return_tensors="pt", padding=True,
                           add_special_tokens=not self.chat).to(self.device)
            t0 = time.perf_counter()
            with torch.no_grad():
                gen = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                          num_beams=num_beams, num_return_sequences=num_return,
                                          pad_token_id=self.tok.pad_token_id, eos_token_id=eos)
            if self.device == "cuda":
                torch.cuda.synchronize()
            self.seconds += time.perf_counter() - t0
            new = gen[:, enc["input_ids"].shape[1]:]
            for r, row in enumerate(new.tolist()):
                end = row.index(eos) + 1 if eos in row else len(row)
                self.new_tokens += end
                text = self.tok.decode(row[:end], skip_special_tokens=True).strip()
                out[idx[r // num_return]].append(text.split("\n")[0].strip())
        return out

    def _fallback_text(self, triples: list[Triple]) -> str:
        if self._templates is None:
            self._templates = TemplateVerbalizer()
        return self._templates.verbalize([tuple(to_webnlg(x) for x in t) for t in triples])

    def verbalize_many(self, triple_sets: Sequence[Sequence[Triple]], *, label: Label | None = None,
                       predicate_label: Label | None = None,
                       known_entities: KnownEntities | Iterable[str] | None = None,
                       fallback: Callable[[int, list[Triple]], str] | None = None) -> list[Verbalized]:
        """Verbalize every set: the model's greedy output if it passes the check, else the first retry
        output that passes, else ``fallback(i, triples)`` (default: the template verbalizer)."""
        sets = [[tuple(t) for t in ts] for ts in triple_sets]
        if known_entities is not None and not isinstance(known_entities, KnownEntities):
            known_entities = KnownEntities(known_entities, label)

        def checked(text: str, i: int) -> Finding:
            return check(text, sets[i], label=label, known_entities=known_entities)

        prompts = [prompt(ts, label, predicate_label) for ts in sets]
        # A prompt that leaves no room for the text within the model's positions goes to the templates.
        limit = getattr(self.model.config, "max_position_embeddings", None) or 1 << 30
        todo = [i for i, ts in enumerate(sets) if ts and self._length(prompts[i]) + self.max_new_tokens <= limit]
        self.too_long += sum(1 for ts in sets if ts) - len(todo)
        results: list[Verbalized | None] = [None] * len(sets)
        for i, ts in enumerate(sets):
            if not ts:
                results[i] = Verbalized("", "model", checked("", i), None)
        firsts = dict(zip(todo, self.generate([prompts[i] for i in todo]), strict=True))
        failed = []
        first_findings: dict[int, Finding] = {}
        for i in todo:
            f = checked(firsts[i][0], i)
            first_findings[i] = f
            if f.ok:
                results[i] = Verbalized(f.text, "model", f, f)
            else:
                failed.append(i)
        if failed and self.retry_beams > 0:
            beams = self.generate([prompts[i] for i in failed], num_beams=self.retry_beams,
                                  num_return=self.retry_beams, desc="retrying")
            for i, cands in zip(failed, beams, strict=True):
                for c in dict.fromkeys(cands):  # distinct outputs, best beam first
                    f = checked(c, i)
                    if f.ok:
                        results[i] = Verbalized(c, "retry", f, first_findings[i])
                        break
        for i, ts in enumerate(sets):
            if results[i] is None:
                text = fallback(i, ts) if fallback is not None else self._fallback_text(ts)
                results[i] = Verbalized(text, "templates", checked(text, i), first_findings.get(i))
        return [r for r in results if r is not None]

    def _length(self, prompt_text: str) -> int:
        return len(self.tok(model_input(self.tok, prompt_text, self.chat), add_special_tokens=not self.chat)["input_ids"])


# ----------------------------------------------------------------------------- kgllm verbalize --model


def verbalize_jsonl_model(inp: Path, out: Path, verbalizer: NeuralVerbalizer) -> dict:
    """``{"id", "triples"}`` lines -> ``{"id", "text", "verbalizer", "omissions", "hallucinations"}`` lines
    (``verbalizer`` is the path taken: model, retry or templates); known entities for the hallucination
    check: every subject and object of the file. Returns :func:`tally`'s counts and the decoding speed."""
    rows = list(read_triple_sets(inp))
    known = KnownEntities({t for _, ts in rows for s, _, o in ts for t in (s, o)})
    results = verbalizer.verbalize_many([ts for _, ts in rows], known_entities=known)
    write_jsonl(out, ({"id": rid, "text": r.text, "verbalizer": r.path, "omissions": r.finding.omissions,
                       "hallucinations": [h for h, _ in r.finding.hallucinations]}
                      for (rid, _), r in zip(rows, results, strict=True)))
    return {**tally(results), **verbalizer.speed}
