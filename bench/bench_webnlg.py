"""WebNLG 2020 dev: BLEU and chrF++ of the template verbalizer (templates learned from train only).

    python bench/bench_webnlg.py                         # the bundled dev copy (examples/data/webnlg/dev.xml.xz)
    python bench/bench_webnlg.py --xml ../shared/data/webnlg/dev

    # leave-categories-out: templates learned on train minus each fold's categories, scored on the dev
    # entries of exactly those categories (16 categories, sorted, dealt round-robin into 4 folds)
    python bench/bench_webnlg.py --xml ../shared/data/webnlg/dev --train ../shared/data/webnlg/train --folds 4

    # faithfulness check (kgllm.corpus.faithfulness) of the template outputs and, as a baseline, of the
    # human references: omissions and hallucinations per triple (known entities: every dev subject/object)
    python bench/bench_webnlg.py --faithfulness

    # the trained verbalizer, leave-categories-out: one model per fold (SmolLM2-135M-Instruct, SFT on train
    # minus the fold's categories, `kgllm train verbalizer`), each scored on the dev entries of its held-out
    # categories, every output checked (retry, template fallback). One GPU: minutes (docs/corpus.md).
    python bench/bench_webnlg.py --xml ../shared/data/webnlg/dev --train ../shared/data/webnlg/train --folds 4 \
        --train-model --runs runs/webnlg-verbalizer
    # the same scoring for verbalizers trained before (each on the categories it was trained without; with
    # --train the template fallback is learned without those categories too)
    python bench/bench_webnlg.py --xml ../shared/data/webnlg/dev --train ../shared/data/webnlg/train \
        --model runs/webnlg-verbalizer/fold*
    # a CPU smoke run of the whole path: a few steps, a few entries per fold
    python bench/bench_webnlg.py --xml ../shared/data/webnlg/dev --train ../shared/data/webnlg/train --train-model \
        --runs /tmp/v --set max_steps=2 --set batch_size=2 --set max_train_examples=8 --limit 4

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
    ap.add_argument("--model", nargs="+", type=Path, default=None,
                    help="trained verbalizers (kgllm train verbalizer): each scored on its held-out categories")
    ap.add_argument("--train-model", action="store_true",
                    help="with --train: train one verbalizer per fold into --runs, then score them as --model")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "webnlg-verbalizer",
                    help="where --train-model writes fold0 .. foldK-1 (an existing fold with the same config is reused)")
    ap.add_argument("--base", default="smollm2-135m-instruct", help="--train-model: the model to fine-tune")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="--train-model: a train.verbalizer config key (epochs=1, max_steps=10, batch_size=16, "
                         "max_train_examples=64, lr=1e-4, ...); repeatable")
    ap.add_argument("--limit", type=int, default=0,
                    help="score a fixed sample of N held-out entries per model (0: all; for a CPU smoke run)")
    ap.add_argument("--decode-batch", type=int, default=32, help="texts decoded at once (default 32)")
    ap.add_argument("--max-new-tokens", type=int, default=192)
    ap.add_argument("--retry-beams", type=int, default=4)
    args = ap.parse_args()
    if args.train_model and not args.train:
        ap.error("--train-model needs --train (the WebNLG train XML)")

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
    models = list(args.model or [])
    if args.train_model:
        models = train_models(args, lco["folds"] if args.train else [])
    if models:
        figures["trained_verbalizer"] = score_models(args, models)
    print(json.dumps(figures, indent=2))
    return 0


def train_models(args, folds: list[dict]) -> list[Path]:
    """One verbalizer per fold, trained on train minus the fold's categories (``kgllm train verbalizer``)."""
    from kgllm import config as cfgmod
    from kgllm.artifacts import read_manifest
    from kgllm.registry import get_stage, run_stage

    out = []
    overrides = cfgmod.parse_overrides(args.set)
    for k, f in enumerate(folds):
        cfg = get_stage("train.verbalizer").make_config(
            {"model": args.base, "webnlg": [str(p) for p in args.train], "exclude_categories": f["categories"]},
            overrides)
        d = args.runs / f"fold{k}"
        try:
            same = read_manifest(d).config == read_manifest_config(cfg)
        except Exception:
            same = False
        if not same:
            t0 = time.perf_counter()
            run_stage("train.verbalizer", [], d, cfg, force=True)
            print(f"fold {k}: trained in {time.perf_counter() - t0:.0f} s -> {d}")
        m = json.loads((d / "metrics.json").read_text())
        print(f"fold {k}: {m.get('global_step')} steps, train loss {m.get('train_loss', float('nan')):.3f}, "
              f"{m.get('train_runtime', 0):.0f} s, {m.get('tokens_per_s_steady', 0):.0f} tokens/s, peak RSS "
              f"{m.get('peak_rss_mb')} MB" + (f", peak GPU {m['peak_gpu_memory_mb']} MB" if "peak_gpu_memory_mb" in m
                                              else ""))
        out.append(d)
    return out


def read_manifest_config(cfg) -> dict:
    """A config as a manifest records it (JSON round trip), to compare with an existing fold's."""
    from kgllm.artifacts import canonical_json

    return json.loads(canonical_json(cfg))


def score_models(args, models: list[Path]) -> dict:
    """Each model on the dev entries of its held-out categories; BLEU, faithfulness, paths, speed."""
    from kgllm.corpus.neural import NeuralVerbalizer
    from kgllm.eval import webnlg

    reports = []
    for m in models:
        v = NeuralVerbalizer(m, batch_size=args.decode_batch, max_new_tokens=args.max_new_tokens,
                             retry_beams=args.retry_beams)
        r = webnlg.evaluate_model(args.xml, v, limit=args.limit, train=args.train)
        vb, fa = r["verbalizer"], r["faithfulness"]
        metrics = json.loads((m / "metrics.json").read_text()) if (m / "metrics.json").exists() else {}
        print(f"{m}: {', '.join(r['scored_categories'])}: {r['entries']} entries, BLEU {r['bleu']:.4f} chrF++ "
              f"{r['chrf++']:.4f} (model alone {r['model_only']['bleu']:.4f}); {vb['passed']} passed, "
              f"{vb['retried']} retried, {vb['fallbacks']} templates; omissions+hallucinations per triple "
              f"{(fa['triples_with_omission'] + fa['hallucinations']) / max(1, fa['triples']):.4f}; "
              f"{vb['tokens_per_s']} tokens/s ({vb['device']})")
        reports.append({"model": str(m), "categories": r["scored_categories"], "entries": r["entries"],
                        "fallback_templates": r["fallback_templates"],
                        "bleu": r["bleu"], "chrf++": r["chrf++"], "model_only": r["model_only"],
                        "verbalizer": vb, "faithfulness": fa, "model_only_faithfulness": r["model_only"]["faithfulness"],
                        "training": {k: metrics.get(k) for k in ("global_step", "train_loss", "train_runtime",
                                                                 "tokens_per_s_steady", "peak_rss_mb",
                                                                 "peak_gpu_memory_mb")}})
    summary = webnlg.mean_over_models(reports)
    t = summary["verbalizer"]
    summary["omissions_plus_hallucinations_per_triple"] = round(
        (t.get("triples_with_omission", 0) + t.get("hallucinations", 0)) / max(1, t.get("triples", 0)), 4)
    print(f"trained verbalizer, held-out mean of {len(reports)}: BLEU {summary['mean_bleu']:.4f} chrF++ "
          f"{summary['mean_chrf++']:.4f}; fallbacks {summary['fallback_rate']:.4f}; omissions+hallucinations "
          f"per triple {summary['omissions_plus_hallucinations_per_triple']:.4f}")
    return {"folds": reports, **summary}


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
