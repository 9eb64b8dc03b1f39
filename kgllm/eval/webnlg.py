"""``kgllm eval webnlg``: BLEU and chrF++ of the template verbalizer on WebNLG references.

Takes: WebNLG XML files or directories (read by :mod:`kgllm.corpus.webnlg`) and optionally a template
table (default: the shipped one; ``{}`` scores the curated-lexicon/label fallback alone).
Makes: a report dict: corpus BLEU and chrF++ (sacrebleu, multi-reference) overall and per category, as
fractions in [0, 1], the verbalizer's coverage counts and every prediction; :func:`format_report` prints
it as a table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

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


def evaluate(paths: Iterable[str | Path], templates: dict | None = None,
             categories: Iterable[str] | None = None) -> dict:
    """Score the verbalizer on the entries of ``paths`` (only those of ``categories`` when given)."""
    paths = list(paths)
    keep = None if categories is None else set(categories)
    entries = [e for e in read_entries(paths) if e.references and (keep is None or e.category in keep)]
    if not entries:
        raise InputError("no WebNLG entries with references in " + ", ".join(map(str, paths)))
    v = TemplateVerbalizer(templates)
    hyps = [v.verbalize(e.triples) for e in progress(entries, desc="verbalizing", unit="entry")]
    report = score(hyps, [e.references for e in entries])
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(entries):
        by_cat[e.category].append(i)
    report["categories"] = {c: score([hyps[i] for i in ix], [entries[i].references for i in ix])
                            for c, ix in sorted(by_cat.items())}
    report["coverage"] = dict(sorted(v.stats.items()))
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
