"""Scale benchmark: each heavy stage on DBpedia-shaped graphs of growing size, as a user runs them.

The graphs: the bundled DBpedia sample's core files (labels, types, mapping-based objects and literals, short
abstracts, categories: about 19k triples) copied with renamed resources (``dbr:X`` -> ``dbr:X_c7``, labels
"X 7") until the graph has the asked number of distinct triples, written as one N-Triples dump (gzip).

Each stage runs as its own ``kgllm`` process (what a user starts), and the benchmark reads that process's
resource usage from the kernel (``wait4``): wall time, CPU time (user + system, its children included) and
peak RSS. Stages: ``pull file`` (parse the dump), ``validate`` (data checks against the DBpedia ontology; the
OWL reasoner is left out: its cost does not depend on the data), ``corpus``, ``index --no-vectors`` (lexicon,
graph index; the embedding is measured apart), and the embedding throughput of the index's encoder path
against a bare sentence-transformers ``encode`` loop over the same texts (``--embed N`` texts).

Printed: a table per stage and size (wall s, CPU s, triples/s per CPU-second, peak RSS MB) and the growth
exponent of wall time and of peak RSS between the smallest and the largest size (1.0 = linear). Ratios and
exponents are measured in the same run, so a busy machine moves them less than the absolute figures.

Usage::

    python bench/bench_scale.py --sizes 250k,1M,4M --work DIR [--stages pull,validate,corpus,index] [--embed 20000]

Sizes take k/M suffixes. ``DIR`` keeps the dumps and artifacts (reused when present) so a size can be rerun.
"""

from __future__ import annotations

import argparse
import gzip
import json
import lzma
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "data" / "dbpedia-sample"
ONTOLOGY = ROOT / "ontologies" / "dbpedia" / "dbo.owl.xz"
FILES = ("labels_en.ttl.xz", "instance_types_transitive_en.ttl.xz", "mappingbased_objects_en.ttl.xz",
         "mappingbased_literals_en.ttl.xz", "short_abstracts_en.ttl.xz", "article_categories_en.ttl.xz")
KGLLM = [sys.executable, "-m", "kgllm"]
DBR = re.compile(r"<http://dbpedia\.org/resource/([^>]*)>")
LABEL = "<http://www.w3.org/2000/01/rdf-schema#label>"
STAGES = ("pull", "validate", "corpus", "index")


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmM]?)", text.strip())
    if not m:
        raise SystemExit(f"--sizes: {text!r} is not a size such as 250k or 1M")
    return int(float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6}[m.group(2).lower()])


def sample_lines() -> list[str]:
    lines = []
    for f in FILES:
        with lzma.open(SAMPLE / f, "rt", encoding="utf-8") as fh:
            lines += [ln.rstrip("\n") for ln in fh if ln.startswith("<")]
    return sorted(set(lines))


def make_dump(path: Path, triples: int) -> int:
    """Copies of the sample with renamed resources until ``triples`` distinct triples; returns the count."""
    if path.exists():
        return int(json.loads(path.with_suffix(".json").read_text())["triples"])
    base = sample_lines()
    tmp = path.with_name(path.name + ".tmp")
    n, copy = 0, 0
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as out:
        while n < triples:
            suffix = f"_c{copy}"
            for ln in base:
                if n >= triples:
                    break
                ln2 = DBR.sub(lambda m, s=suffix: f"<http://dbpedia.org/resource/{m.group(1)}{s}>", ln)
                if LABEL in ln2:  # a copy's names differ too, as distinct entities' names do
                    ln2 = re.sub(r'"(.*)"@en \.$', lambda m, c=copy: f'"{m.group(1)} {c}"@en .', ln2)
                out.write(ln2 + "\n")
                n += 1
            copy += 1
    os.replace(tmp, path)
    path.with_suffix(".json").write_text(json.dumps({"triples": n, "copies": copy}))
    return n


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (Ray's processes included), from /proc."""
    parent, rss = {}, {}
    page = os.sysconf("SC_PAGE_SIZE")
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{d}/statm") as f:
                    rss[int(d)] = int(f.read().split()[1]) * page
            except (OSError, IndexError, ValueError):
                continue
    tree, todo = {pid}, [pid]
    while todo:
        x = todo.pop()
        for c, pp in parent.items():
            if pp == x and c not in tree:
                tree.add(c)
                todo.append(c)
    return sum(rss.get(x, 0) for x in tree)


def run(cmd: list[str], log: Path) -> dict:
    """Run one kgllm process; its wall time, CPU time and peak RSS from the kernel (the process itself), and
    the peak of its whole process tree's RSS (Ray's workers included; sampled every 0.5 s, shared pages
    counted in each process that maps them)."""
    t0 = time.perf_counter()
    peak = [0]
    with open(log, "w") as fh:
        p = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "KGLLM_PROGRESS": "0"})
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.5):
                peak[0] = max(peak[0], _tree_rss(p.pid))
        th = threading.Thread(target=sample, daemon=True)
        th.start()
        _pid, status, ru = os.wait4(p.pid, 0)
        stop.set()
        th.join()
    wall = time.perf_counter() - t0
    rc = os.waitstatus_to_exitcode(status)
    if rc not in (0, 1):  # 1: validate found problems in the data (it still writes the clean graph)
        raise SystemExit(f"{' '.join(cmd)} failed ({rc}); see {log}")
    return {"wall_s": round(wall, 2), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
            "peak_rss_mb": round(ru.ru_maxrss / 1024, 1), "tree_peak_rss_mb": round(peak[0] / 2**20, 1), "rc": rc}


def stage_cmds(work: Path, tag: str, dump: Path) -> dict[str, list[str]]:
    g, v, c, i = (work / f"{s}-{tag}" for s in ("graph", "clean", "corpus", "index"))
    return {
        "pull": KGLLM + ["pull", "file", str(dump), "--out", str(g), "--force"],
        "validate": KGLLM + ["validate", str(g), "--ontology", str(ONTOLOGY), "--reasoner", "none", "--out", str(v),
                             "--force"],
        "corpus": KGLLM + ["corpus", str(v), "--out", str(c), "--force", "--engine", "local"],
        "index": KGLLM + ["index", str(v), "--out", str(i), "--no-vectors", "--force"],
    }


# The corpus stage's shards as Ray tasks on an embedded instance of N CPUs (N workers): argv GRAPH OUT N.
CORPUS_RAY = ("import sys\nfrom pathlib import Path\nfrom kgllm import engine\nfrom kgllm.registry import run_stage\n"
              "with engine.configured(engine.EngineConfig(mode='ray', num_cpus=int(sys.argv[3]))):\n"
              "    run_stage('corpus', [Path(sys.argv[1])], Path(sys.argv[2]), {}, force=True)\n")


def corpus_workers_cmd(work: Path, tag: str, workers: int) -> list[str]:
    return [sys.executable, "-c", CORPUS_RAY, str(work / f"clean-{tag}"), str(work / f"corpus-{tag}-ray{workers}"),
            str(workers)]


def embed_ratio(n: int) -> dict:
    """Texts/s of the index's encoder path (kgllm.index.vector.Encoder, as the local engine runs it) over a
    bare sentence-transformers ``encode`` loop on the same texts and threads."""
    from kgllm.index.vector import DEFAULT_MODEL, Encoder

    lines = sample_lines()
    texts = []
    for k in range(math.ceil(n / len(lines))):
        texts += [DBR.sub(lambda m, k=k: m.group(1).replace("_", " ") + f" {k}", ln).split(" <", 1)[-1][:200]
                  for ln in lines]
    texts = texts[:n]
    enc = Encoder(DEFAULT_MODEL)
    enc.encode(texts[:64])  # load and warm up
    model = enc.model       # the same sentence-transformers model, called bare
    out: dict[str, float] = {}
    # Alternated, best of three each: a busy machine slows one pass, not one side.
    for _ in range(3):
        for name, fn in (("bare", lambda: model.encode(texts, batch_size=64, normalize_embeddings=True)),
                         ("kgllm", lambda: enc.encode(texts))):
            t0 = time.perf_counter()
            fn()
            out[name] = max(out.get(name, 0.0), len(texts) / (time.perf_counter() - t0))
    return {"texts": n, "bare_texts_per_s": round(out["bare"], 1), "kgllm_texts_per_s": round(out["kgllm"], 1),
            "ratio": round(out["kgllm"] / out["bare"], 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="250k,1M,4M", help="distinct triples per graph (k/M suffixes)")
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--work", type=Path, help="working directory (dumps and artifacts reused when present)")
    ap.add_argument("--embed", type=int, default=20000, help="texts for the embedding throughput ratio (0: skip)")
    ap.add_argument("--corpus-workers", default="",
                    help="also run corpus with its shards as Ray tasks on an embedded instance of N CPUs, for "
                         "each N (e.g. 1,2): wall time of N workers against 1")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    stages = [s for s in args.stages.split(",") if s]
    workers = [int(w) for w in args.corpus_workers.split(",") if w.strip()]
    bad = set(stages) - set(STAGES)
    if bad:
        raise SystemExit(f"--stages: unknown {sorted(bad)}; choose from {', '.join(STAGES)}")
    work = args.work or Path(tempfile.mkdtemp(prefix="kgllm-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in sizes:
        tag = f"{size // 1000}k"
        t0 = time.perf_counter()
        n = make_dump(work / f"dump-{tag}.nt.gz", size)
        print(f"graph {tag}: {n:,} triples ({time.perf_counter() - t0:.0f}s to write)", file=sys.stderr, flush=True)
        cmds = stage_cmds(work, tag, work / f"dump-{tag}.nt.gz")
        for st in STAGES:
            if st not in stages:
                continue
            r = run(cmds[st], work / f"{st}-{tag}.log")
            r.update(stage=st, triples=n, triples_per_cpu_s=round(n / max(r["cpu_s"], 1e-9)))
            rows.append(r)
            print(f"  {st:<9} {r['wall_s']:>8.1f} s wall {r['cpu_s']:>8.1f} s CPU {r['peak_rss_mb']:>8.0f} MB "
                  f"(tree {r['tree_peak_rss_mb']:.0f} MB)", file=sys.stderr, flush=True)
        for w in workers:
            if "corpus" not in stages:
                break
            r = run(corpus_workers_cmd(work, tag, w), work / f"corpus-ray{w}-{tag}.log")
            r.update(stage=f"corpus-ray{w}", triples=n, triples_per_cpu_s=round(n / max(r["cpu_s"], 1e-9)))
            rows.append(r)
            print(f"  corpus on Ray, {w} worker(s): {r['wall_s']:.1f} s wall, {r['peak_rss_mb']:.0f} MB "
                  f"(tree {r['tree_peak_rss_mb']:.0f} MB)", file=sys.stderr, flush=True)
    print("\n| stage | triples | wall s | CPU s | triples per CPU-second | peak RSS MB | process tree peak RSS MB |\n"
          "|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['stage']} | {r['triples']:,} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['triples_per_cpu_s']:,} | "
              f"{r['peak_rss_mb']:.0f} | {r['tree_peak_rss_mb']:.0f} |")
    speedup = {}
    for n in sorted({r["triples"] for r in rows}):
        by = {r["stage"]: r for r in rows if r["triples"] == n}
        one = by.get("corpus-ray1")
        for w in workers:
            if one and w != 1 and f"corpus-ray{w}" in by:
                speedup[f"{n}:{w}"] = round(one["wall_s"] / by[f"corpus-ray{w}"]["wall_s"], 2)
                print(f"corpus at {n:,} triples: {w} workers {speedup[f'{n}:{w}']}x the wall-time speed of 1")
    growth = {}
    if len(sizes) > 1:
        print("\n| stage | growth exponent of wall time | of peak RSS |\n|---|---:|---:|")
        for st in [*stages, *(f"corpus-ray{w}" for w in workers)]:
            rs = [r for r in rows if r["stage"] == st]
            if len(rs) < 2:
                continue
            a, b = rs[0], rs[-1]
            k = math.log(b["triples"] / a["triples"])
            growth[st] = {"wall": round(math.log(b["wall_s"] / a["wall_s"]) / k, 3),
                          "rss": round(math.log(b["peak_rss_mb"] / a["peak_rss_mb"]) / k, 3)}
            print(f"| {st} | {growth[st]['wall']:.2f} | {growth[st]['rss']:.2f} |")
    emb = None
    if args.embed:
        emb = embed_ratio(args.embed)
        print(f"\nembedding {emb['texts']:,} texts: kgllm {emb['kgllm_texts_per_s']} texts/s, bare sentence-transformers "
              f"{emb['bare_texts_per_s']} texts/s: ratio {emb['ratio']}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "growth": growth, "corpus_speedup": speedup, "embedding": emb}, indent=1))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
