"""WebNLG 2020 dev: BLEU and chrF++ of the template verbalizer (templates learned from train only).

    python bench/bench_webnlg.py                         # the bundled dev copy (examples/data/webnlg/dev.xml.xz)
    python bench/bench_webnlg.py --xml ../shared/data/webnlg/dev

    # leave-categories-out: templates learned on train minus each fold's categories, scored on the dev
    # entries of exactly those categories (16 categories, sorted, dealt round-robin into 4 folds)
    python bench/bench_webnlg.py --xml ../shared/data/webnlg/dev --train ../shared/data/webnlg/train --folds 4

    # faithfulness check (kgllm.corpus.faithfulness) of the template outputs and, as a baseline, of the
    # human references: omissions and hallucinations per triple (known entities: every dev subject/object)
    python bench/bench_webnlg.py --faithfulness

Baselines scored in the same run on the same entries: the curated-lexicon/label fallback alone (no
learned templates) and a naive "subject property object." concatenation. Figures are fractions in [0, 1].
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KGLLM_PROGRESS", "0")
ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--xml", nargs="+", type=Path, default=[ROOT / "examples" / "data" / "webnlg" / "dev.xml.xz"])
    ap.add_argument("--train", nargs="+", type=Path, default=None,
                    help="WebNLG train XML: also run the leave-categories-out protocol (see --folds)")
    ap.add_argument("--folds", type=int, default=4, help="leave-categories-out folds (default 4)")
    ap.add_argument("--faithfulness", action="store_true",
                    help="also check every template output and reference for omissions and hallucinations")
    args = ap.parse_args()

    from kgllm.corpus.render import split_camel
    from kgllm.corpus.verbalize import realize
    from kgllm.corpus.webnlg import read_entries
    from kgllm.eval import webnlg

    t0 = time.perf_counter()
    learned = webnlg.evaluate(args.xml)
    seconds = time.perf_counter() - t0
    lexicon_only = webnlg.evaluate(args.xml, templates={})
    entries = [e for e in read_entries(args.xml) if e.references]
    naive = webnlg.score([" ".join(f"{realize(s)} {split_camel(p)} {realize(o)}." for s, p, o in e.triples)
                          for e in entries], [e.references for e in entries])
    print(webnlg.format_report(learned))
    figures = {
        "entries": learned["entries"], "bleu": learned["bleu"], "chrf++": learned["chrf++"],
        "coverage": learned["coverage"], "entries_per_s": round(learned["entries"] / seconds),
        "baseline_lexicon_only": {"bleu": lexicon_only["bleu"], "chrf++": lexicon_only["chrf++"]},
        "baseline_naive": {"bleu": naive["bleu"], "chrf++": naive["chrf++"]},
        "bleu_vs_lexicon_only": round(learned["bleu"] / lexicon_only["bleu"], 2),
        "bleu_vs_naive": round(learned["bleu"] / naive["bleu"], 2),
    }
    if args.train:
        lco = webnlg.leave_categories_out(args.train, args.xml, folds=args.folds)
        for k, f in enumerate(lco["folds"]):
            print(f"fold {k} {','.join(f['categories']):<60} {f['entries']:>5} BLEU {f['bleu']:.4f} "
                  f"chrF++ {f['chrf++']:.4f}")
        figures["leave_categories_out"] = {
            "folds": [{k: f[k] for k in ("categories", "entries", "bleu", "chrf++", "coverage")}
                      for f in lco["folds"]],
            "mean_bleu": lco["mean_bleu"], "mean_chrf++": lco["mean_chrf++"]}
    if args.faithfulness:
        figures["faithfulness"] = faithfulness(entries, [p["text"] for p in learned["predictions"]])
    print(json.dumps(figures, indent=2))
    return 0


def faithfulness(entries: list, hyps: list[str]) -> dict:
    """Omissions and hallucinations of the template outputs and of the references (kgllm.corpus.faithfulness)."""
    from kgllm.corpus import faithfulness as F

    known = F.KnownEntities({t for e in entries for s, _, o in e.triples for t in (s, o)})
    t0 = time.perf_counter()
    out = {"templates": F.summarize(F.check(h, e.triples, known_entities=known)
                                    for e, h in zip(entries, hyps, strict=True))}
    out["references"] = F.summarize(F.check(r, e.triples, known_entities=known)
                                    for e in entries for r in e.references)
    texts = out["templates"]["texts"] + out["references"]["texts"]
    out["texts_per_s"] = round(texts / (time.perf_counter() - t0))
    out["known_entities"] = len(known)
    for k in ("templates", "references"):
        r = out[k]
        print(f"faithfulness {k:<10} texts {r['texts']:>5} triples {r['triples']:>6} omission rate "
              f"{r['omission_rate']:.4f} hallucination rate {r['hallucination_rate']:.4f} "
              f"failing texts {r['failing_rate']:.4f}")
    return out


if __name__ == "__main__":
    sys.exit(main())
