"""``kgllm eval facts``: how well a model knows the graph's held-out facts, closed book.

Takes: one or more models (a prepared name such as ``smollm2-135m-instruct`` or a checkpoint directory)
and a corpus artifact; the held-out split (``test`` by default) of its ``sft``, ``dpo`` and ``pretrain``
parts.
Makes: a JSON-able dict per model with
- ``qa``: greedy answers to the SFT questions, scored against the row's ``answers`` (IRIs are read as
  their ``rdfs:label`` from ``triples.jsonl``, else their local name) and its reference ``completion``
  with :mod:`kgllm.eval.metrics`: ``exact_match`` (normalised answer == normalised prediction),
  ``contains`` (a normalised answer occurs in the prediction: generated answers are sentences) and ``f1``
  (best token F1), overall and by type;
  and ``kg_supported`` (the answer, read as a statement, matches a triple: :mod:`kgllm.train.kg_reward`);
- ``preference``: DPO pairs where the model gives the true statement (``chosen``) a higher log-probability
  than the corrupted one (``rejected``), both conditioned on the prompt;
- ``perplexity``: token perplexity of the held-out pretraining text (or, without one, of the SFT answers).

The prompt format is the one the model was trained with (``training_config.json``'s ``chat_format``;
for a base model: its chat template when it has one), so base, SFT and SFT+DPO are compared on equal terms.
``shots`` K > 0 puts K worked examples before each question (:func:`demonstrations`: questions and answers of
the corpus's *train* split, never the evaluated one), so a base model that never learned the answer's form is
scored on what it knows rather than on how it words it.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from pathlib import Path

from ..errors import UsageError
from ..log import logger, progress
from ..train import data as tdata
from ..train.common import load_tokenizer
from ..train.kg_reward import KGReward, local_name_forms
from ..train.models import resolve_model
from .metrics import contains_words, exact_match, normalize_answer, token_f1

_METRICS = ("exact_match", "contains", "f1", "answer_f1", "kg_supported")
PARTS = ("qa", "preference", "perplexity")


def label_map(corpus: Path) -> dict[str, str]:
    """IRI (without brackets) -> first rdfs:label lexical form seen in ``triples.jsonl`` (sorted by id)."""
    return tdata.triple_labels(tdata.read_triples(corpus))


def answer_texts(answers: list[str], labels: dict[str, str]) -> list[str]:
    """Surface forms of a row's answers: IRIs become labels (or local names), literals stay."""
    out: list[str] = []
    for a in answers:
        v = a[1:-1] if a.startswith("<") and a.endswith(">") else a
        if re.match(r"^[a-z][a-z0-9+.-]*:", v) and " " not in v:
            forms = [labels[v]] if v in labels else local_name_forms(v)
        else:
            forms = [v]
        out.extend(f for f in forms if f and f not in out)
    return out


def answer_f1(pred: str, answers: list[str], reference: str) -> float:
    """Best token F1 of the answers against what the prediction says beyond the reference's frame: the
    words of the reference sentence that are not answer words (subject, relation) are taken out of the
    prediction first, so restating the question's frame earns nothing and only the object counts."""
    best = 0.0
    ref = normalize_answer(reference).split()
    for a in answers:
        aw = normalize_answer(a).split()
        if not aw:
            continue
        frame = Counter(ref) - Counter(aw)
        rest = []
        for w in normalize_answer(pred).split():
            if frame[w] > 0:
                frame[w] -= 1
            else:
                rest.append(w)
        best = max(best, token_f1(" ".join(rest), a))
    return best


def score_answer(pred: str, answers: list[str], reference: str) -> dict:
    np_ = normalize_answer(pred)
    answers_kept = [a for a in answers if normalize_answer(a)]
    exact = exact_match(pred, [*answers_kept, reference])
    contains = any(contains_words(np_, normalize_answer(a)) for a in answers_kept)
    f1 = max([token_f1(pred, a) for a in answers] + [token_f1(pred, reference)])
    return {"exact_match": float(exact), "contains": float(contains), "f1": f1,
            "answer_f1": answer_f1(pred, answers_kept, reference)}


class _Scorer:
    """A causal LM with its tokenizer and prompt format (greedy generation and log-probabilities)."""

    def __init__(self, model: str | Path):
        import torch
        from transformers import AutoModelForCausalLM

        self.path = resolve_model(model)
        archs = json.loads((self.path / "config.json").read_text("utf-8")).get("architectures") or []
        if any(a.endswith("ForSequenceClassification") for a in archs):
            raise UsageError(f"{self.path}: a reward model (sequence classifier) cannot answer questions; "
                             "evaluate the language models (pretrain, sft, dpo, base)")
        self.tok = load_tokenizer(self.path)
        fmt = "auto"
        tc = self.path / "training_config.json"
        if tc.exists():
            fmt = json.loads(tc.read_text("utf-8")).get("chat_format", "auto")
        self.chat = tdata.use_chat(self.tok, fmt)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = AutoModelForCausalLM.from_pretrained(str(self.path), dtype=torch.float32).to(self.device)
        self.model.eval()

    def generate(self, prompts: list[str], max_new_tokens: int, batch_size: int,
                 demos: list[tuple[str, str]] | tuple = ()) -> list[str]:
        import torch

        texts = [tdata.prompt_text(self.tok, p, self.chat, demos) for p in prompts]
        out: list[str] = []
        self.tok.padding_side = "left"  # generation continues at the right edge of every row
        for i in progress(range(0, len(texts), batch_size), desc="generate", unit="batch"):
            enc = self.tok(texts[i:i + batch_size], return_tensors="pt", padding=True,
                           add_special_tokens=not self.chat).to(self.device)
            with torch.no_grad():
                gen = self.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                          pad_token_id=self.tok.pad_token_id)
            for row in gen[:, enc["input_ids"].shape[1]:]:
                out.append(self.tok.decode(row, skip_special_tokens=True).strip().split("\n")[0].strip())
        return out

    def completion_logprob(self, prompt: str, completion: str) -> tuple[float, int]:
        """Sum of log p(completion tokens | prompt) and the number of completion tokens."""
        ptxt = tdata.prompt_text(self.tok, prompt, self.chat)
        ctxt = completion if self.chat else " " + completion
        p_ids = self.tok(ptxt, add_special_tokens=not self.chat)["input_ids"]
        c_ids = self.tok(ctxt, add_special_tokens=False)["input_ids"]
        return self._logprob(p_ids, c_ids)

    def text_nll(self, text: str) -> tuple[float, int]:
        ids = self.tok(text, add_special_tokens=False)["input_ids"]
        if len(ids) < 2:
            return 0.0, 0
        lp, n = self._logprob(ids[:1], ids[1:])
        return -lp, n

    def _logprob(self, prefix: list[int], cont: list[int]) -> tuple[float, int]:
        import torch

        limit = getattr(self.model.config, "max_position_embeddings", 2048)
        ids = (prefix + cont)[-limit:]
        n = min(len(cont), len(ids) - 1)
        x = torch.tensor([ids], device=self.device)
        with torch.no_grad():
            logits = self.model(input_ids=x).logits[0, :-1].float()
        lp = torch.log_softmax(logits, -1).gather(1, x[0, 1:, None])[:, 0]
        return float(lp[-n:].sum()), n


def demonstrations(corpus: Path, k: int, split: str = "test") -> list[dict]:
    """``k`` worked examples for few-shot questions: SFT rows of the corpus's train split (never ``split``,
    the one evaluated), the first by id (a stable choice) about ``k`` different facts where there are."""
    if k <= 0:
        return []
    if split == "train":
        raise UsageError("--shots: the worked examples come from the train split; evaluate another split")
    rows = sorted(tdata.read_split(corpus, "sft", "train", 0), key=lambda r: str(r["id"]))
    if len(rows) < k:
        raise UsageError(f"--shots {k}: {corpus} has {len(rows)} SFT train rows to take worked examples from")
    picked, facts = [], set()
    for r in rows:   # one question per fact (several phrasings of one fact teach no more about the form)
        fact = tuple(r.get("triple_ids") or (r["id"],))
        if fact not in facts:
            facts.add(fact)
            picked.append(r)
            if len(picked) == k:
                return picked
    return picked + [r for r in rows if r not in picked][: k - len(picked)]


def evaluate_model(model: str | Path, corpus: Path, *, split: str = "test", limit: int = 0,
                   max_new_tokens: int = 48, batch_size: int = 8, examples: int = 10,
                   parts: tuple[str, ...] = PARTS, shots: int = 0) -> dict:
    """Closed-book QA, preference accuracy and perplexity of one model on a corpus's held-out split.

    Rows with a ``group`` field (``corpus.injection``: ``seen``, ``control``) are also scored by group
    (``by_group``); ``parts`` picks what is measured (a part left out reports n = 0); ``shots``: worked
    examples before each question (:func:`demonstrations`; the QA part only)."""
    corpus = Path(corpus)
    tdata.check_corpus(corpus)
    demos = demonstrations(corpus, shots, split) if "qa" in parts else []
    sc = _Scorer(model)
    labels = label_map(corpus)
    result: dict = {"model": str(model), "checkpoint": str(sc.path), "chat_format": "chat" if sc.chat else "plain",
                    "shots": len(demos), "demonstrations": [r["id"] for r in demos]}

    kg = KGReward.from_corpus(corpus)
    qa_rows = tdata.read_split(corpus, "sft", split, limit) if "qa" in parts else []
    preds = sc.generate([r["prompt"] for r in qa_rows], max_new_tokens, batch_size,
                        [(r["prompt"], r["completion"]) for r in demos]) if qa_rows else []
    scores, by_type, by_group = [], defaultdict(list), defaultdict(list)
    shown = []
    for r, pred in zip(qa_rows, preds, strict=True):
        ans = answer_texts(r.get("answers") or [], labels)
        s = score_answer(pred, ans, r["completion"])
        # Graph check of the answer as a statement: +1 supported by a triple, -1 contradicted, 0 neither.
        s["kg_supported"] = float(kg.verify(pred).score > 0)
        scores.append(s)
        by_type[r.get("type", "unknown")].append(s)
        if isinstance(r.get("group"), str):
            by_group[r["group"]].append(s)
        if len(shown) < examples:
            shown.append({"id": r["id"], "prompt": r["prompt"], "prediction": pred, "answers": ans, **s})
    result["qa"] = {"n": len(scores), **_mean(scores),
                    "by_type": {t: {"n": len(v), **_mean(v)} for t, v in sorted(by_type.items())},
                    "examples": shown}
    if by_group:
        result["qa"]["by_group"] = {g: {"n": len(v), **_mean(v)} for g, v in sorted(by_group.items())}

    pref_rows = tdata.read_split(corpus, "dpo", split, limit) if "preference" in parts else []
    wins, margins, pref_groups = 0, [], defaultdict(list)
    for r in progress(pref_rows, desc="preferences", unit="pair"):
        c, _ = sc.completion_logprob(r["prompt"], r["chosen"])
        j, _ = sc.completion_logprob(r["prompt"], r["rejected"])
        wins += c > j
        margins.append(c - j)
        if isinstance(r.get("group"), str):
            pref_groups[r["group"]].append(c > j)
    result["preference"] = {"n": len(pref_rows), "accuracy": wins / len(pref_rows) if pref_rows else None,
                            "mean_logprob_margin": sum(margins) / len(margins) if margins else None}
    if pref_groups:
        result["preference"]["by_group"] = {g: {"n": len(v), "accuracy": sum(v) / len(v)}
                                            for g, v in sorted(pref_groups.items())}

    texts = [r["text"] for r in tdata.read_split(corpus, "pretrain", split, limit)] if "perplexity" in parts \
        else []
    nll, ntok = 0.0, 0
    if texts:
        on = f"pretrain/{split}"
        for t in progress(texts, desc="perplexity", unit="doc"):
            a, b = sc.text_nll(t)
            nll, ntok = nll + a, ntok + b
    elif "perplexity" not in parts:
        on = "not measured"
    else:
        on = f"sft/{split} completions"
        for r in qa_rows:
            a, b = sc.completion_logprob(r["prompt"], r["completion"])
            nll, ntok = nll - a, ntok + b
    result["perplexity"] = {"on": on, "tokens": ntok, "value": math.exp(nll / ntok) if ntok else None}
    logger.info("eval facts %s: qa contains=%.3f f1=%.3f, preference acc=%s, ppl=%s", model,
                result["qa"].get("contains") or 0.0, result["qa"].get("f1") or 0.0,
                result["preference"]["accuracy"], result["perplexity"]["value"])
    return result


def evaluate(models: list[str | Path], corpus: Path, *, split: str = "test", **kw) -> dict:
    """:func:`evaluate_model` for each model, in the order given (e.g. base, SFT, SFT+DPO)."""
    return {"corpus": str(corpus), "split": split,
            "results": [evaluate_model(m, corpus, split=split, **kw) for m in models]}


def _mean(rows: list[dict]) -> dict:
    if not rows:
        return dict.fromkeys(_METRICS)
    return {k: sum(r[k] for r in rows) / len(rows) for k in _METRICS}


def format_table(report: dict) -> str:
    """A small text table of the headline figures, one line per model."""
    lines = [f"{'model':<40} {'n':>4} {'EM':>6} {'contains':>8} {'F1':>6} {'KG':>6} {'pref acc':>8} {'ppl':>9}"]
    for r in report["results"]:
        q, p, x = r["qa"], r["preference"], r["perplexity"]

        def f(v, w=6, d=3):
            return f"{v:>{w}.{d}f}" if isinstance(v, (int, float)) else f"{'-':>{w}}"

        lines.append(f"{str(r['model'])[-40:]:<40} {q['n']:>4} {f(q['exact_match'])} {f(q['contains'], 8)} "
                     f"{f(q['f1'])} {f(q['kg_supported'])} {f(p['accuracy'], 8)} {f(x['value'], 9, 2)}")
        for g, v in (q.get("by_group") or {}).items():
            pg = ((p.get("by_group") or {}).get(g) or {}).get("accuracy")
            lines.append(f"{'  group ' + g:<40} {v['n']:>4} {f(v['exact_match'])} {f(v['contains'], 8)} "
                         f"{f(v['f1'])} {f(v['kg_supported'])} {f(pg, 8)} {f(None, 9, 2)}")
    return "\n".join(lines)
