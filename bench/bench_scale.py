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

With ``--wordnet`` the same stages also run on all of WordNet 3.0: ``kgllm pull wordnet`` (offline, from
nltk's or Debian's ``wordnet-base`` data; see docs/pull-wordnet-files.md), ``validate`` against
``ontologies/wordnet/wn.ttl`` (``--reasoner none``), ``corpus`` and ``index --no-vectors``. Its rows are
tagged ``wordnet`` and carry the pulled artifact's own triple count (``counts.triples`` of its manifest.json,
2,504,681); they stay out of the growth exponents. The corpus stage reads all of it (it has no entity cap;
about 3.5 min wall, 1.0 GB peak RSS on the 2-core development machine, so none is imposed here).

``--corpus-workers 1,2`` / ``--validate-workers 1,2``: the corpus / validate stage also runs on an embedded Ray
instance of N CPUs, for each N (a ``python -c`` process calling ``kgllm.registry.run_stage`` under
``kgllm.engine.configured(EngineConfig(mode='ray', num_cpus=N))``; validate with the graph's ontology and no
reasoner), as rows ``corpus-rayN`` / ``validate-rayN``; with --wordnet on WordNet too. ``--running-ray``: those
rows run on a running Ray head node of N CPUs instead (``ray start --head --num-cpus N``, started before each
run and stopped after it, unmeasured), as on a cluster, where Ray's start and stop are no part of a stage run.
``--validate-resume``: validate's rerun after a SIGTERM once its checks were kept, against an unbroken run.
``--pull-kept``: the in-process pull through blocks kept for resuming against the streaming pull.
``--ceiling``: this machine's own ceiling for 2 workers: validate's reduces (the partitions 2 Ray workers get)
without Ray, in one process one after another and in two processes at once, alternated ``--repeat`` times;
"ceiling at T triples: ... X.XXx" (and ``ceiling`` in the JSON). Read the ``validate-ray2`` row against it: what
the stage loses beyond it is Ray's and the driver's, not the machine's.

Printed: a table of graph (size tag or ``wordnet``), stage, triples, wall s, CPU s, triples per CPU-second, peak
RSS MB and the process tree's peak RSS MB; for each worker count N > 1 "STAGE at T triples: N workers X.XXx the
wall-time speed of 1"; the growth exponent of wall time and of peak RSS between the smallest and the largest
DBpedia-shaped size (1.0 = linear); the embedding ratio. ``--json FILE`` writes the rows, growth,
``corpus_speedup`` and ``validate_speedup`` (keyed ``"TRIPLES:N"``) and the embedding figures. Ratios and
exponents are measured in the same run, so a busy machine moves them less than the absolute figures.

Usage::

    python bench/bench_scale.py --sizes 250k,1M,4M --work DIR [--stages pull,validate,corpus,index] [--embed 20000]
        [--wordnet] [--corpus-workers 1,2] [--validate-workers 1,2] [--repeat 3] [--workers-only]
        [--running-ray] [--validate-resume] [--pull-kept] [--ceiling] [--json FILE]

Sizes take k/M suffixes (``--sizes ''`` with --wordnet: WordNet only). ``DIR`` keeps the dumps and artifacts
(reused when present) so a size can be rerun; WordNet's pulled and validated graphs are reused when their stage
is not asked for.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import lzma
import math
import os
import re
import secrets
import shutil
import signal
import socket
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
WN_ONTOLOGY = ROOT / "ontologies" / "wordnet" / "wn.ttl"
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


def _tree_rss(pid: int) -> tuple[int, int]:
    """Resident bytes of ``pid`` and all its descendants (Ray's processes included), from /proc: their RSS
    summed (a page several processes map, the object store's shared memory among them, counted in each) and
    their PSS summed (such a page divided among the processes that map it: what the tree takes of the
    machine's memory)."""
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
    return sum(rss.get(x, 0) for x in tree), sum(_pss(x) for x in tree if x in rss)


def _pss(pid: int) -> int:
    """Proportional set size of ``pid`` in bytes (0 when it is gone or unreadable)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return 0


def run(cmd: list[str], log: Path) -> dict:
    """Run one kgllm process; its wall time, CPU time and peak RSS from the kernel (the process itself), and
    the peak of its whole process tree's RSS (Ray's workers included; sampled every 0.5 s, shared pages
    counted in each process that maps them)."""
    t0 = time.perf_counter()
    peak = [0, 0]
    with open(log, "w") as fh:
        p = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "KGLLM_PROGRESS": "0"})
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.5):
                peak[:] = map(max, peak, _tree_rss(p.pid))
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
            "peak_rss_mb": round(ru.ru_maxrss / 1024, 1), "tree_peak_rss_mb": round(peak[0] / 2**20, 1),
            "tree_peak_pss_mb": round(peak[1] / 2**20, 1), "rc": rc}


def stage_cmds(work: Path, tag: str, pull: list[str], ontology: Path = ONTOLOGY) -> dict[str, list[str]]:
    """The stages' ``kgllm`` commands on graph ``tag``; ``pull`` writes ``work/graph-TAG``."""
    g, v, c, i = (work / f"{s}-{tag}" for s in ("graph", "clean", "corpus", "index"))
    return {
        "pull": pull,
        "validate": KGLLM + ["validate", str(g), "--ontology", str(ontology), "--reasoner", "none", "--out", str(v),
                             "--force"],
        "corpus": KGLLM + ["corpus", str(v), "--out", str(c), "--force", "--engine", "local"],
        "index": KGLLM + ["index", str(v), "--out", str(i), "--no-vectors", "--force"],
    }


# One stage on an embedded Ray instance of N CPUs (N workers): argv STAGE GRAPH OUT N CONFIG (JSON overrides).
# The corpus stage runs its entity shards as Ray tasks; validate its data checks as a map-reduce of Ray tasks.
# With RAY_ADDRESS set (--running-ray), the stage runs on that running instance instead.
RAY_STAGE = ("import json, os, sys\nfrom pathlib import Path\nfrom kgllm import engine\n"
             "from kgllm.registry import run_stage\n"
             "address = os.environ.get('RAY_ADDRESS')\n"
             "cfg = engine.EngineConfig(mode='ray', address=address) if address else "
             "engine.EngineConfig(mode='ray', num_cpus=int(sys.argv[4]))\n"
             "try:\n"
             "    with engine.configured(cfg):\n"
             "        run_stage(sys.argv[1], [Path(sys.argv[2])], Path(sys.argv[3]), json.loads(sys.argv[5]), force=True)\n"
             "except Exception:\n"   # exit 3, not Python's 1 (which measure() takes for validate's 'problems found')
             "    import traceback; traceback.print_exc(); sys.exit(3)\n")


def ray_stage_cmd(stage: str, graph: Path, out: Path, workers: int, config: dict) -> list[str]:
    """A ``python -c`` process running ``stage`` on ``graph`` with an embedded Ray instance of ``workers``
    CPUs, or on the running instance RAY_ADDRESS names (a process of its own, so ``wait4`` measures it as it
    does the ``kgllm`` stages)."""
    return [sys.executable, "-c", RAY_STAGE, stage, str(graph), str(out), str(workers), json.dumps(config)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_ray(cpus: int):
    """``--running-ray``: a Ray head node of ``cpus`` CPUs on 127.0.0.1 (``ray start --head --block`` in a
    session of its own, with its own temp dir, ports and auth token), as a cluster user keeps running;
    sets RAY_ADDRESS (and the token) for the stages started meanwhile, and stops the node by its process
    group afterwards (``ray stop`` would stop every Ray instance of the machine)."""
    tmp = Path(tempfile.mkdtemp(prefix="kgr-", dir="/tmp"))   # short: Ray's socket paths have a length limit
    port = _free_port()
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    saved = {k: os.environ.get(k) for k in (*env, "RAY_ADDRESS")}
    log = tmp / "head.log"
    with open(log, "wb") as out:
        p = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
                              "--node-ip-address=127.0.0.1", f"--port={port}", f"--num-cpus={cpus}", "--num-gpus=0",
                              "--disable-usage-stats", "--include-dashboard=false", "--include-log-monitor=false",
                              f"--dashboard-port={_free_port()}", f"--dashboard-agent-listen-port={_free_port()}",
                              f"--metrics-export-port={_free_port()}", f"--temp-dir={tmp}/ray"],
                             env={**os.environ, **env}, start_new_session=True, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log.read_text(errors="replace"):
            if p.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"ray start --head did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        os.environ.update(env, RAY_ADDRESS=f"127.0.0.1:{port}")
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
        time.sleep(1)   # the session's other processes receive the same SIGKILL; let them go
        shutil.rmtree(tmp, ignore_errors=True)


def worker_cmds(work: Path, tag: str, workers: int, ontology: Path = ONTOLOGY) -> dict[str, list[str]]:
    """The stages that ``--corpus-workers`` / ``--validate-workers`` run on Ray, with ``workers`` CPUs."""
    return {
        "corpus": ray_stage_cmd("corpus", work / f"clean-{tag}", work / f"corpus-{tag}-ray{workers}", workers, {}),
        "validate": ray_stage_cmd("validate", work / f"graph-{tag}", work / f"clean-{tag}-ray{workers}", workers,
                                  {"ontology": [str(ontology)], "reasoner": "none"}),
    }


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


def measure(cmd: list[str], log: Path, stage: str, graph: str, n: int) -> dict:
    """One measured process as a row of the table (and its line on stderr)."""
    r = run(cmd, log)
    r.update(stage=stage, graph=graph, triples=n, triples_per_cpu_s=round(n / max(r["cpu_s"], 1e-9)))
    print(f"  {stage:<13} {r['wall_s']:>8.1f} s wall {r['cpu_s']:>8.1f} s CPU {r['peak_rss_mb']:>8.0f} MB "
          f"(tree {r['tree_peak_rss_mb']:.0f} MB RSS, {r['tree_peak_pss_mb']:.0f} MB PSS)", file=sys.stderr, flush=True)
    return r


def run_workers(work: Path, tag: str, n: int, stages: list[str], workers: dict[str, list[int]],
                ontology: Path = ONTOLOGY, repeat: int = 1, running: bool = False) -> list[dict]:
    """``--corpus-workers`` / ``--validate-workers``: each stage asked for (and in ``--stages``) on an
    embedded Ray instance of N CPUs, for each N; rows ``STAGE-rayN``. With ``repeat`` > 1 the worker counts
    alternate that many rounds and each row is the run of least wall time (``runs`` lists every wall time):
    a busy machine's noise then moves the ratio less. ``running``: on a running head node of N CPUs
    (:func:`running_ray`, started before and stopped after each run, unmeasured) instead, as on a cluster,
    where starting and stopping Ray is no part of a stage run."""
    rows = []
    for stage, ws in workers.items():
        if stage not in stages:
            continue
        src = work / f"{'graph' if stage == 'validate' else 'clean'}-{tag}"
        if not (src / "manifest.json").exists():   # a stage that fails at once would be timed as a fast one
            raise SystemExit(f"{stage} on Ray reads {src}, which is not there: run the stage before it first "
                             f"(--stages {'pull' if stage == 'validate' else 'validate'},{stage} without --workers-only)")
        best: dict[int, dict] = {}
        walls: dict[int, list[float]] = {w: [] for w in ws}
        for _round in range(max(1, repeat)):
            for w in ws:
                with running_ray(w) if running else contextlib.nullcontext():
                    r = measure(worker_cmds(work, tag, w, ontology)[stage], work / f"{stage}-ray{w}-{tag}.log",
                                f"{stage}-ray{w}", tag, n)
                r["ray"] = "running" if running else "embedded"
                walls[w].append(r["wall_s"])
                if w not in best or r["wall_s"] < best[w]["wall_s"]:
                    best[w] = r
        for w in ws:
            rows.append({**best[w], "runs": walls[w]})
    return rows


def validate_resume(work: Path, tag: str, n: int, ontology: Path = ONTOLOGY) -> list[dict]:
    """``--validate-resume``: validate stopped by SIGTERM once its data checks are kept, then the rerun that
    resumes from them, measured (row ``validate-resumed``) against an unbroken run (row
    ``validate-unbroken``) of the same command."""
    cmd = stage_cmds(work, tag, [], ontology)["validate"]
    out = work / f"clean-{tag}"
    unbroken = measure(cmd, work / f"validate-unbroken-{tag}.log", "validate-unbroken", tag, n)
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 3600
    while not list(work.glob(f".{out.name}.checks-*/checks-1/part-0.pickle")):
        if p.poll() is not None or time.monotonic() > deadline:
            p.kill()
            raise SystemExit(f"validate of {tag} ended (or took an hour) before its checks were kept")
        time.sleep(0.01)
    p.send_signal(signal.SIGTERM)
    p.wait()
    resumed = measure(cmd, work / f"validate-resumed-{tag}.log", "validate-resumed", tag, n)
    print(f"validate at {n:,} triples: the rerun after a stop once the checks were kept took "
          f"{resumed['wall_s'] / unbroken['wall_s']:.2f} of an unbroken run's wall time", file=sys.stderr)
    return [unbroken, resumed]


def pull_kept(work: Path, dump: Path, tag: str, n: int, repeat: int = 1) -> list[dict]:
    """``--pull-kept``: the in-process pull as it streams (row ``pull-stream``) against the same pull through
    blocks kept for resuming (row ``pull-kept``: ``KGLLM_PULL_RESUME_BYTES=1``, the path large input takes),
    alternated ``repeat`` times, each row its fastest run; both write ``work/graph-TAG-kept``."""
    out = work / f"graph-{tag}-kept"
    cmd = KGLLM + ["pull", "file", str(dump), "--out", str(out), "--force"]
    best: dict[str, dict] = {}
    for _round in range(max(1, repeat)):
        for name, threshold in (("pull-stream", str(1 << 62)), ("pull-kept", "1")):
            saved = os.environ.get("KGLLM_PULL_RESUME_BYTES")
            os.environ["KGLLM_PULL_RESUME_BYTES"] = threshold
            try:
                r = measure(cmd, work / f"{name}-{tag}.log", name, tag, n)
            finally:
                if saved is None:
                    os.environ.pop("KGLLM_PULL_RESUME_BYTES")
                else:
                    os.environ["KGLLM_PULL_RESUME_BYTES"] = saved
            if name not in best or r["wall_s"] < best[name]["wall_s"]:
                best[name] = r
    print(f"pull at {n:,} triples: through kept blocks {best['pull-kept']['wall_s'] / best['pull-stream']['wall_s']:.2f}"
          " of the streaming pull's wall time", file=sys.stderr)
    return [best["pull-stream"], best["pull-kept"]]


def speedups(rows: list[dict], stage: str, ws: list[int]) -> dict[str, float]:
    """Wall time of ``STAGE-ray1`` over that of ``STAGE-rayN`` per graph, keyed ``"TRIPLES:N"``; printed."""
    out = {}
    for g in dict.fromkeys(r["graph"] for r in rows):
        by = {r["stage"]: r for r in rows if r["graph"] == g}
        one = by.get(f"{stage}-ray1")
        for w in ws:
            if one and w != 1 and f"{stage}-ray{w}" in by:
                n = by[f"{stage}-ray{w}"]["triples"]
                out[f"{n}:{w}"] = round(one["wall_s"] / by[f"{stage}-ray{w}"]["wall_s"], 2)
                print(f"{stage} at {n:,} triples: {w} workers {out[f'{n}:{w}']:.2f}x the wall-time speed of 1")
    return out


# The machine's own ceiling for two workers (--ceiling): validate's reduce work (kgllm.validate.parts.check_part
# on the partitions that 2 Ray workers get), with no Ray, in one process one partition after another, then in
# two processes at once, each with every other partition. Their wall-time ratio is what two workers can gain
# on this machine for this work (two CPUs sharing caches and memory bandwidth, or a host that slows a VM's
# second vCPU, give less than 2x), to read the Ray rows against.
CEILING_PREP = (
    "import pickle, sys\nfrom pathlib import Path\nfrom kgllm.validate import parts\n"
    "from kgllm.validate.checks import CheckOptions\nfrom kgllm.validate.ontology import load_ontologies\n"
    "graph, out, workers, ontology = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])\n"
    "shards, blocks = parts.plan([graph], parts.BLOCK_TRIPLES, 2 * workers)\n"
    "n = parts.partitions(sum(s.triples for s in shards), workers)\n"
    "opts = CheckOptions()\n"
    "whole = frozenset().union(*parts.whole_graph_checks(opts).values())\n"
    "pieces = [parts.scan_block(parts.ScanConfig(n, whole), b) for b in blocks]\n"
    "for k in range(n + 1):\n"
    "    with open(out / f'part-{k}.pickle', 'wb') as f:\n"
    "        pickle.dump([p[k] for p in pieces], f, protocol=5)\n"
    "cfg = parts.CheckConfig(load_ontologies([ontology]), opts, {}, n, {}, '')\n"
    "with open(out / 'config.pickle', 'wb') as f:\n"
    "    pickle.dump(cfg, f, protocol=5)\n"
    "print(n + 1)\n")
# argv: DIR SPILL K,K,...: loads its partitions' pieces, prints "ready", waits for a line on stdin, then reduces
# them in turn and prints {"wall": s, "cpu": s} of the reduces alone.
CEILING_REDUCE = (
    "import dataclasses, json, pickle, sys, time\nfrom pathlib import Path\nfrom kgllm.validate import parts\n"
    "d, spill, ks = Path(sys.argv[1]), sys.argv[2], [int(k) for k in sys.argv[3].split(',')]\n"
    "cfg = dataclasses.replace(pickle.loads((d / 'config.pickle').read_bytes()), spill=spill)\n"
    "got = {k: pickle.loads((d / f'part-{k}.pickle').read_bytes()) for k in ks}\n"
    "print('ready', flush=True)\nsys.stdin.readline()\n"
    "w, c = time.perf_counter(), time.process_time()\n"
    "for k in ks:\n"
    "    parts.check_part(cfg, k, got.pop(k))\n"
    "print(json.dumps({'wall': time.perf_counter() - w, 'cpu': time.process_time() - c}), flush=True)\n")


def _reduce_together(d: Path, groups: list[list[int]]) -> list[dict]:
    """One process per group of partitions, started together once all have loaded their pieces."""
    procs, spills = [], []
    try:
        for g in groups:
            spill = Path(tempfile.mkdtemp(prefix="ceiling-", dir=d))
            spills.append(spill)
            procs.append(subprocess.Popen([sys.executable, "-c", CEILING_REDUCE, str(d), str(spill),
                                           ",".join(map(str, g))], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          text=True))
        for p in procs:
            if p.stdout.readline().strip() != "ready":
                raise SystemExit("--ceiling: a reduce process failed while loading its partitions")
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        out = [json.loads(p.stdout.readline()) for p in procs]
        for p in procs:
            if p.wait() != 0:
                raise SystemExit("--ceiling: a reduce process failed")
        return out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for s in spills:
            shutil.rmtree(s, ignore_errors=True)


def ceiling(work: Path, tag: str, n: int, repeat: int = 1, ontology: Path = ONTOLOGY) -> dict:
    """Validate's reduces for 2 workers' partitions: in one process, then in two at once, alternated
    ``repeat`` times (the fastest of each kept); the ratio is this machine's ceiling for 2 workers."""
    graph = work / f"graph-{tag}"
    if not (graph / "manifest.json").exists():
        raise SystemExit(f"--ceiling: {graph} holds no pulled graph; run this size's pull first (--stages pull)")
    d = work / f"ceiling-{tag}"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    try:
        prep = subprocess.run([sys.executable, "-c", CEILING_PREP, str(graph), str(d), "2", str(ontology)],
                              capture_output=True, text=True)
        if prep.returncode != 0:
            raise SystemExit(f"--ceiling: splitting {graph} into partitions failed:\n{prep.stderr.strip()}")
        k = int(prep.stdout.split()[-1])
        ks = list(range(k))
        one, two = [], []
        for _ in range(repeat):
            one.append(_reduce_together(d, [ks])[0])
            two.append(_reduce_together(d, [ks[0::2], ks[1::2]]))
            print(f"  ceiling        one process {one[-1]['wall']:.1f} s ({one[-1]['cpu']:.1f} s CPU), two at once "
                  f"{max(t['wall'] for t in two[-1]):.1f} s ({sum(t['cpu'] for t in two[-1]):.1f} s CPU)",
                  file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    w1 = min(r["wall"] for r in one)
    w2 = min(max(t["wall"] for t in r) for r in two)
    c1 = min(r["cpu"] for r in one)
    c2 = min(sum(t["cpu"] for t in r) for r in two)
    out = {"triples": n, "partitions": k, "one_wall_s": round(w1, 2), "two_wall_s": round(w2, 2),
           "one_cpu_s": round(c1, 2), "two_cpu_s": round(c2, 2), "ratio": round(w1 / w2, 2),
           "cpu_inflation": round(c2 / c1, 3)}
    print(f"ceiling at {n:,} triples: validate's {k} reduces in two processes at once {out['ratio']:.2f}x the "
          f"wall-time speed of one process ({out['cpu_inflation']:.2f}x its CPU time)")
    return out


def wordnet_triples(graph: Path) -> int:
    """``counts.triples`` of a pulled WordNet artifact's manifest."""
    return int(json.loads((graph / "manifest.json").read_text())["counts"]["triples"])


def run_wordnet(work: Path, stages: list[str], workers: dict[str, list[int]]) -> list[dict]:
    """The stages on all of WordNet 3.0 (``kgllm pull wordnet``), rows tagged ``wordnet``. The pull is
    measured when ``pull`` is in ``--stages``; otherwise an artifact in ``work`` is reused (pulled unmeasured
    when absent), and likewise the validated graph the corpus and index stages read."""
    tag, g, v = "wordnet", work / "graph-wordnet", work / "clean-wordnet"
    cmds = stage_cmds(work, tag, KGLLM + ["pull", "wordnet", "--out", str(g), "--force"], WN_ONTOLOGY)
    rows = []
    print("graph wordnet: all of WordNet 3.0 (kgllm pull wordnet)", file=sys.stderr, flush=True)
    if "pull" in stages:
        rows.append(measure(cmds["pull"], work / f"pull-{tag}.log", "pull", tag, 0))
    elif not (g / "manifest.json").exists():
        print("  (no WordNet artifact in --work: pulling it, unmeasured)", file=sys.stderr, flush=True)
        run(cmds["pull"], work / f"pull-{tag}.log")
    n = wordnet_triples(g)
    for r in rows:  # the pull's row: its count is known once it has run
        r.update(triples=n, triples_per_cpu_s=round(n / max(r["cpu_s"], 1e-9)))
    print(f"  {n:,} triples (manifest.json counts.triples)", file=sys.stderr, flush=True)
    if "validate" in stages:
        rows.append(measure(cmds["validate"], work / f"validate-{tag}.log", "validate", tag, n))
    elif {"corpus", "index"} & set(stages) and not (v / "manifest.json").exists():
        print("  (no validated WordNet in --work: validating it, unmeasured)", file=sys.stderr, flush=True)
        run(cmds["validate"], work / f"validate-{tag}.log")
    if "corpus" in stages:
        rows.append(measure(cmds["corpus"], work / f"corpus-{tag}.log", "corpus", tag, n))
    if "index" in stages:
        rows.append(measure(cmds["index"], work / f"index-{tag}.log", "index", tag, n))
    return rows + run_workers(work, tag, n, stages, workers, WN_ONTOLOGY)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="250k,1M,4M", help="distinct triples per graph (k/M suffixes)")
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--work", type=Path, help="working directory (dumps and artifacts reused when present)")
    ap.add_argument("--embed", type=int, default=20000, help="texts for the embedding throughput ratio (0: skip)")
    ap.add_argument("--corpus-workers", default="",
                    help="also run corpus with its shards as Ray tasks on an embedded instance of N CPUs, for "
                         "each N (e.g. 1,2): wall time of N workers against 1")
    ap.add_argument("--validate-workers", default="",
                    help="also run validate on an embedded Ray instance of N CPUs, for each N (e.g. 1,2): wall "
                         "time of N workers against 1")
    ap.add_argument("--wordnet", action="store_true",
                    help="also run the stages on all of WordNet 3.0 (kgllm pull wordnet; validated against "
                         "ontologies/wordnet/wn.ttl); rows tagged 'wordnet', left out of the growth exponents")
    ap.add_argument("--repeat", type=int, default=1,
                    help="worker runs: alternate the worker counts this many rounds, keep each one's fastest run")
    ap.add_argument("--workers-only", action="store_true",
                    help="for a stage given worker counts, run only its Ray rows (not the in-process one again)")
    ap.add_argument("--validate-resume", action="store_true",
                    help="also time validate's rerun after a SIGTERM once its data checks were kept, against "
                         "an unbroken run (rows validate-unbroken, validate-resumed)")
    ap.add_argument("--pull-kept", action="store_true",
                    help="also time the in-process pull through blocks kept for resuming (KGLLM_PULL_RESUME_BYTES=1) "
                         "against the streaming pull, alternated --repeat times (rows pull-stream, pull-kept)")
    ap.add_argument("--running-ray", action="store_true",
                    help="run the worker rows on a running Ray head node of N CPUs (started before each run, "
                         "unmeasured), as on a cluster, instead of an embedded instance each run starts and stops")
    ap.add_argument("--ceiling", action="store_true",
                    help="also measure this machine's ceiling for 2 workers: validate's reduces for 2 workers' "
                         "partitions in one process against two processes at once, no Ray (alternated --repeat "
                         "times; needs the size's pulled graph)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    stages = [s for s in args.stages.split(",") if s]
    workers = {st: [int(w) for w in ws.split(",") if w.strip()]
               for st, ws in (("validate", args.validate_workers), ("corpus", args.corpus_workers))}
    bad = set(stages) - set(STAGES)
    if bad:
        raise SystemExit(f"--stages: unknown {sorted(bad)}; choose from {', '.join(STAGES)}")
    work = args.work or Path(tempfile.mkdtemp(prefix="kgllm-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    ceilings = {}
    for size in sizes:
        tag = f"{size // 1000}k"
        t0 = time.perf_counter()
        dump = work / f"dump-{tag}.nt.gz"
        n = make_dump(dump, size)
        print(f"graph {tag}: {n:,} triples ({time.perf_counter() - t0:.0f}s to write)", file=sys.stderr, flush=True)
        cmds = stage_cmds(work, tag, KGLLM + ["pull", "file", str(dump), "--out", str(work / f"graph-{tag}"),
                                              "--force"])
        rows += [measure(cmds[st], work / f"{st}-{tag}.log", st, tag, n) for st in STAGES
                 if st in stages and not (args.workers_only and workers.get(st))]
        rows += run_workers(work, tag, n, stages, workers, repeat=args.repeat, running=args.running_ray)
        if args.validate_resume:
            rows += validate_resume(work, tag, n)
        if args.pull_kept:
            rows += pull_kept(work, dump, tag, n, args.repeat)
        if args.ceiling:
            ceilings[n] = ceiling(work, tag, n, args.repeat)
    if args.wordnet:
        rows += run_wordnet(work, stages, workers)
    print("\n| graph | stage | triples | wall s | CPU s | triples per CPU-second | peak RSS MB "
          "| process tree peak RSS MB | process tree peak PSS MB |\n|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['graph']} | {r['stage']} | {r['triples']:,} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
              f"{r['triples_per_cpu_s']:,} | {r['peak_rss_mb']:.0f} | {r['tree_peak_rss_mb']:.0f} | "
              f"{r['tree_peak_pss_mb']:.0f} |")
    speedup = {st: speedups(rows, st, ws) for st, ws in workers.items()}
    growth = {}
    scaled = [r for r in rows if r["graph"] != "wordnet"]  # the exponents: DBpedia-shaped sizes only
    if len(sizes) > 1:
        print("\n| stage | growth exponent of wall time | of peak RSS |\n|---|---:|---:|")
        for st in [*stages, *(f"{s}-ray{w}" for s, ws in workers.items() for w in ws)]:
            rs = [r for r in scaled if r["stage"] == st]
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
        args.json.write_text(json.dumps({"rows": rows, "growth": growth, "corpus_speedup": speedup["corpus"],
                                         "validate_speedup": speedup["validate"], "embedding": emb,
                                         "ceiling": ceilings}, indent=1))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
