"""``kgllm eval webnlg``: BLEU and chrF++ of the template or the trained verbalizer on WebNLG references.

Takes: WebNLG XML files or directories (read by :mod:`kgllm.corpus.webnlg`) and optionally a template
table (default: the shipped one; ``{}`` scores the curated-lexicon/label fallback alone), or a trained
verbalizer (:class:`kgllm.corpus.neural.NeuralVerbalizer`, :func:`evaluate_model`).
Makes: a report dict: corpus BLEU and chrF++ (sacrebleu, multi-reference) overall and per category, as
fractions in [0, 1], the verbalizer's coverage counts and every prediction; :func:`format_report` prints
it as a table. With a model also: ``verbalizer`` (texts passed / retried / fallen back to the templates,
omissions and hallucinations caught, tokens/s), ``faithfulness`` of the texts kept
(:func:`kgllm.corpus.faithfulness.summarize`) and ``model_only`` (BLEU of the model's first outputs,
unchecked). A model trained without some categories is scored on exactly those by default: its
leave-categories-out figure.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from ..corpus.faithfulness import KnownEntities, summarize
from ..corpus.neural import NeuralVerbalizer, tally
from ..corpus.verbalize import TemplateVerbalizer, learn_from_entries
from ..corpus.webnlg import read_entries
from ..errors import InputError
from ..log import progress


def score(hyps: list[str], refs: list[list[str]]) -> dict:
    from sacrebleu.metrics import BLEU, CHRF

    width = max((len(r) for r in refs), default=1)
    streams = [[r[k] if k < len(r) else None for r in refs] for k in range(width)]
    bleu = BLEU().corpus_score(hyps, streams)
    chrf = CHRF(word_order=2).corpus_score(hyps, streams)
    return {"bleu": round(bleu.score / 100, 4), "chrf++": round(chrf.score / 100, 4), "entries": len(hyps)}


def _entries(paths: list, categories: Iterable[str] | None) -> list:
    keep = None if categories is None else set(categories)
    entries = [e for e in read_entries(paths) if e.references and (keep is None or e.category in keep)]
    if not entries:
        raise InputError("no WebNLG entries with references in " + ", ".join(map(str, paths))
                         + (f" of the categories {', '.join(sorted(keep))}" if keep is not None else ""))
    return entries


def evaluate(paths: Iterable[str | Path], templates: dict | None = None,
             categories: Iterable[str] | None = None) -> dict:
    """Score the template verbalizer on the entries of ``paths`` (only those of ``categories`` when given)."""
    paths = list(paths)
    entries = _entries(paths, categories)
    v = TemplateVerbalizer(templates)
    hyps = [v.verbalize(e.triples) for e in progress(entries, desc="verbalizing", unit="entry")]
    return _report(entries, hyps, dict(sorted(v.stats.items())))


def evaluate_model(paths: Iterable[str | Path], verbalizer: NeuralVerbalizer,
                   categories: Iterable[str] | None = None, *, all_categories: bool = False, limit: int = 0,
                   train: Iterable[str | Path] | None = None) -> dict:
    """Score a trained verbalizer (checked, retried, template fallback) on the entries of ``paths``: those of
    ``categories`` when given, else the categories the model was trained without (its leave-categories-out
    score), else (or with ``all_categories``) all; ``limit`` > 0: a fixed sample of that many (entries in
    the order of a hash of their file and eid, so every category and size is in it). Known entities for
    the hallucination check: every subject and object of the scored entries.

    The fallback templates: learned from ``train`` minus the model's left-out categories when ``train``
    is given (nothing of a held-out category then reaches the texts), else the shipped ones, which were
    learned on every train category (``report["fallback_templates"]`` says which)."""
    paths = list(paths)
    if categories is None and not all_categories:
        categories = verbalizer.info.get("exclude_categories") or None
    entries = _entries(paths, categories)
    if limit > 0:
        entries = sorted(entries, key=lambda e: hashlib.blake2b(f"{e.source}#{e.eid}".encode(),
                                                                digest_size=8).hexdigest())[:limit]
    known = KnownEntities({t for e in entries for s, _, o in e.triples for t in (s, o)})
    if train is not None:
        held_out = set(verbalizer.info.get("exclude_categories") or ())
        learned = learn_from_entries([e for e in read_entries(train) if e.category not in held_out])
        tv = TemplateVerbalizer(learned["templates"])
        fallback_templates = "learned on train without the model's left-out categories"
    else:
        tv = TemplateVerbalizer()
        fallback_templates = "shipped (learned on every train category)"
    results = verbalizer.verbalize_many([e.triples for e in entries], known_entities=known,
                                        fallback=lambda _i, triples: tv.verbalize(triples))
    report = _report(entries, [r.text for r in results], dict(sorted(tv.stats.items())))
    report["fallback_templates"] = fallback_templates
    report["scored_categories"] = sorted({e.category for e in entries})
    report["verbalizer"] = {**verbalizer.info, **tally(results), **verbalizer.speed}
    report["faithfulness"] = summarize(r.finding for r in results)
    raw = [r.first.text if r.first is not None else "" for r in results]  # None: the prompt did not fit
    report["model_only"] = {**score(raw, [e.references for e in entries]),
                            "faithfulness": summarize(r.first for r in results if r.first is not None)}
    for p, r in zip(report["predictions"], results, strict=True):
        p["verbalizer"] = r.path
    return report


def _report(entries: list, hyps: list[str], coverage: dict) -> dict:
    report = score(hyps, [e.references for e in entries])
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(entries):
        by_cat[e.category].append(i)
    report["categories"] = {c: score([hyps[i] for i in ix], [entries[i].references for i in ix])
                            for c, ix in sorted(by_cat.items())}
    report["coverage"] = coverage
    report["predictions"] = [{"category": e.category, "eid": e.eid, "source": e.source, "text": h}
                             for e, h in zip(entries, hyps, strict=True)]
    return report


def format_report(report: dict) -> str:
    lines = [f"{'category':<22} {'entries':>7} {'BLEU':>7} {'chrF++':>7}"]
    for c, r in report["categories"].items():
        lines.append(f"{c:<22} {r['entries']:>7} {r['bleu']:>7.4f} {r['chrf++']:>7.4f}")
    lines.append(f"{'ALL':<22} {report['entries']:>7} {report['bleu']:>7.4f} {report['chrf++']:>7.4f}")
    return "\n".join(lines)


def category_folds(categories: Iterable[str], k: int) -> list[list[str]]:
    """The sorted categories dealt round-robin into ``k`` folds: fixed, whatever order they were read in."""
    cats = sorted(set(categories))
    return [cats[i::k] for i in range(k)]


def leave_categories_out(train: Iterable[str | Path], dev: Iterable[str | Path], folds: int = 4,
                         held_out: list[list[str]] | None = None) -> dict:
    """The leave-categories-out protocol: for each fold, learn the templates on ``train`` minus the fold's
    categories and score the ``dev`` entries of exactly those categories, so that every scored set's
    categories (and the predicates only they use) were never seen. ``held_out`` overrides the folds.
    Returns ``{"folds": [{"categories", "bleu", "chrf++", "entries", "coverage"}], "mean_bleu", "mean_chrf++"}``."""
    train_entries = read_entries(train)
    dev = list(dev)
    if held_out is None:
        held_out = category_folds((e.category for e in train_entries), folds)
    out = []
    for cats in held_out:
        learned = learn_from_entries([e for e in train_entries if e.category not in set(cats)])
        r = evaluate(dev, templates=learned["templates"], categories=cats)
        out.append({"categories": list(cats), "bleu": r["bleu"], "chrf++": r["chrf++"], "entries": r["entries"],
                    "coverage": r["coverage"]})
    n = max(1, len(out))
    return {"folds": out, "mean_bleu": round(sum(f["bleu"] for f in out) / n, 4),
            "mean_chrf++": round(sum(f["chrf++"] for f in out) / n, 4)}


def mean_over_models(reports: list[dict]) -> dict:
    """Several verbalizers' reports (one per leave-categories-out fold) -> their mean BLEU/chrF++ and
    their faithfulness and path counts summed."""
    n = max(1, len(reports))
    out = {"models": len(reports), "mean_bleu": round(sum(r["bleu"] for r in reports) / n, 4),
           "mean_chrf++": round(sum(r["chrf++"] for r in reports) / n, 4),
           "model_only_mean_bleu": round(sum(r["model_only"]["bleu"] for r in reports) / n, 4)}
    total: dict = {}
    for r in reports:
        for k, v in r["verbalizer"].items():
            if isinstance(v, int) and not isinstance(v, bool):
                total[k] = total.get(k, 0) + v
    out["verbalizer"] = total
    tri = max(1, total.get("triples", 0))
    out["omission_rate"] = round(total.get("triples_with_omission", 0) / tri, 4)
    out["hallucination_rate"] = round(total.get("hallucinations", 0) / tri, 4)
    out["fallback_rate"] = round(total.get("fallbacks", 0) / max(1, total.get("texts", 0)), 4)
    return out
