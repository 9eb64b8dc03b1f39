"""Benchmark: a full WordNet 3.0 pull against nltk's own iteration of WordNet, in the same run.

Baseline: a fresh nltk ``WordNetCorpusReader`` iterating every synset and calling every relation
accessor nltk has (22 synset relations; lemmas with antonyms, derivationally related forms and
pertainyms). Measured: ``pull_wordnet`` with its own fresh reader, writing the full graph artifact
(gzip N-Triples, dedup, manifest). Target: pull / baseline <= 2.0.

    .venv/bin/python bench/bench_wordnet_pull.py [--out DIR] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

from kgllm.pull.wordnet import WordNetPullConfig, open_wordnet, pull_wordnet
from kgllm.pull.wordnet_data import prepare_nltk_data

os.environ.setdefault("KGLLM_PROGRESS", "0")

SYNSET_RELATIONS = (
    "hypernyms", "hyponyms", "instance_hypernyms", "instance_hyponyms", "member_holonyms", "substance_holonyms",
    "part_holonyms", "member_meronyms", "substance_meronyms", "part_meronyms", "topic_domains",
    "in_topic_domains", "region_domains", "in_region_domains", "usage_domains", "in_usage_domains",
    "attributes", "entailments", "causes", "also_sees", "verb_groups", "similar_tos",
)
LEMMA_RELATIONS = ("antonyms", "derivationally_related_forms", "pertainyms")


def baseline() -> tuple[float, float, int, int]:
    """(seconds to open, seconds to iterate, synsets, relation targets) with a fresh nltk reader."""
    t0 = time.perf_counter()
    reader, _ = open_wordnet()
    t1 = time.perf_counter()
    n = edges = 0
    for ss in reader.all_synsets():
        n += 1
        for rel in SYNSET_RELATIONS:
            edges += len(getattr(ss, rel)())
        for lemma in ss.lemmas():
            for rel in LEMMA_RELATIONS:
                edges += len(getattr(lemma, rel)())
    return t1 - t0, time.perf_counter() - t1, n, edges


def pull(out: Path, profile: bool) -> tuple[float, float, dict]:
    t0 = time.perf_counter()
    wn = open_wordnet()
    t1 = time.perf_counter()
    prof = cProfile.Profile() if profile else None
    if prof:
        prof.enable()
    man = pull_wordnet(out, WordNetPullConfig(), wordnet=wn)
    if prof:
        prof.disable()
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    return t1 - t0, time.perf_counter() - t1, man.counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="where to write the artifact (default: a temp dir, removed)")
    ap.add_argument("--profile", action="store_true", help="cProfile the pull (stderr)")
    args = ap.parse_args()

    prepare_nltk_data()  # set-up (one-time) is not part of either measurement
    b_open, b_iter, n, edges = baseline()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "wordnet"
        p_open, p_run, counts = pull(out, args.profile)
    base, full = b_open + b_iter, p_open + p_run
    print(f"nltk baseline: open {b_open:.1f}s + iterate {b_iter:.1f}s = {base:.1f}s "
          f"({n} synsets, {edges} relation targets)")
    print(f"kgllm pull:    open {p_open:.1f}s + pull {p_run:.1f}s = {full:.1f}s "
          f"({counts['synsets']} synsets, {counts['senses']} senses, {counts['triples']} triples, "
          f"{counts['duplicates']} duplicates)")
    print(f"ratio pull/baseline: {full / base:.2f} (target <= 2.0); "
          f"without opening WordNet: {p_run / b_iter:.2f}; {counts['triples'] / p_run:,.0f} triples/s")
    ok = counts["synsets"] == n == 117_659 and full / base <= 2.0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
