"""The corpus stage in shards gives one result: the sharded files equal the all-in-memory reference
(:func:`kgllm.corpus.stage.build` + :func:`kgllm.corpus.splits.split_rows`) row for row, the number of shards
changes no byte (same ``content_sha256`` and counts), and shards run as Ray tasks on an embedded instance
give the in-process artifact, on an embedded instance and on test_engine's two-node cluster. Data: the bundled DBpedia sample and the WordNet subset the corpus tests use.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from test_corpus_wordnet_data import write_wordnet_graph
from test_engine import _kgllm, cluster  # noqa: F401  (the two-node cluster fixture)

from kgllm import engine
from kgllm.artifacts import jsonl_line, read_manifest
from kgllm.config import build as build_config
from kgllm.corpus import stage
from kgllm.corpus.annotate import conll_lines, default_label, inline_markup
from kgllm.corpus.dedup import BandIndex, NearDupIndex, minhasher
from kgllm.corpus.kg import KG
from kgllm.corpus.splits import SPLITS, split_rows
from kgllm.engine import EngineConfig

PARTS = ("pretrain", "sft", "dpo")


@pytest.fixture(scope="module")
def graphs(tmp_path_factory, dbpedia_graph) -> list[Path]:
    return [dbpedia_graph, write_wordnet_graph(tmp_path_factory.mktemp("wn") / "graph")]


@pytest.fixture(scope="module")
def config(dbpedia_ontology_owl):
    return build_config(stage.CorpusConfig, {"ontology": [dbpedia_ontology_owl]})


def _run(graphs, out: Path, config, **kw) -> Path:
    with engine.configured(kw.pop("engine", EngineConfig(mode="local"))):
        stage.run(graphs, out, config, **kw)
    return out


@pytest.fixture(scope="module")
def one_shard(graphs, config, tmp_path_factory) -> Path:
    return _run(graphs, tmp_path_factory.mktemp("scale") / "one", config, shards=1)


def _lines(path: Path) -> list[str]:
    return path.read_text("utf-8").splitlines(keepends=True)


def test_sharded_files_equal_the_in_memory_reference(graphs, config, tmp_path):
    out = _run(graphs, tmp_path / "seven", config, shards=7)
    kg = KG.from_graphs(graphs, config.ontology, config.language)
    _plans, rows, removed, counts = stage.build(kg, config)
    splits, report = split_rows(rows, validation=config.split.validation, test=config.split.test,
                                seed=config.split.seed, near_dup_threshold=config.split.near_dup_threshold,
                                num_perm=config.dedup.num_perm)
    for part in PARTS:
        for s in SPLITS:
            assert _lines(out / part / f"{s}.jsonl") == [jsonl_line(r) for r in splits[part][s]], (part, s)
    for s in SPLITS:
        docs = splits["pretrain"][s]
        assert _lines(out / "markup" / f"{s}.jsonl") == [
            jsonl_line({"id": d["id"], "entity": d["entity"], "text": inline_markup(d)}) for d in docs]
        conll = "".join(x + "\n" for x in conll_lines(docs, lambda sp: default_label(sp["types"], kg.main_type,
                                                                                        sp["iri"])))
        assert (out / "ner" / f"{s}.conll").read_text("utf-8") == conll
    assert json.loads((out / "dedup.json").read_text()) == removed
    assert json.loads((out / "leakage.json").read_text()) == report
    man = read_manifest(out)
    for k, v in counts.items():
        assert man.counts[k] == v, k
    assert sum(man.counts[f"pretrain_{s}"] for s in SPLITS) == sum(len(splits["pretrain"][s]) for s in SPLITS)
    assert man.extra["engine"] == {"ran": "local", "mode": "local", "shards": 7, "shards_reused": 0}
    assert not any(p.name.startswith(".") for p in out.rglob("*"))  # the shards' work dir is gone


def test_the_number_of_shards_changes_no_byte(graphs, config, one_shard, tmp_path):
    a = read_manifest(one_shard)
    # auto with no address stays in this process at any size (each Ray worker would hold a copy of the graph)
    b = read_manifest(_run(graphs, tmp_path / "three", config, shards=3, engine=EngineConfig(ray_at=0)))
    assert b.content_sha256 == a.content_sha256 and b.counts == a.counts
    assert [f["path"] for f in b.files] == [f["path"] for f in a.files]
    assert b.extra["engine"] == {"ran": "local", "mode": "auto", "shards": 3, "shards_reused": 0}


def test_band_index_answers_as_the_lsh_query():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(60)]
    texts = [" ".join(rng.choice(words, 12)) for _ in range(300)]
    texts += [t + " extra" for t in texts[:40]]  # near-duplicates of indexed texts
    held, queries = texts[:150], texts[150:]
    ref = NearDupIndex(0.8, 64)
    for i, t in enumerate(held):
        ref.add(str(i), t)
    mh = minhasher(64)
    idx = BandIndex(np.stack([mh(t) for t in held]), 0.8, 64)
    got = idx.any_hit(np.stack([mh(t) for t in queries]))
    want = np.array([bool(ref.query(t)) for t in queries])
    assert want.sum() >= 10 and (got == want).all()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Ray's embedded instance")
def test_shards_as_ray_tasks_give_the_in_process_artifact(graphs, config, one_shard, tmp_path):
    out = _run(graphs, tmp_path / "ray", config, engine=EngineConfig(mode="ray", num_cpus=2))
    a, b = read_manifest(one_shard), read_manifest(out)
    assert b.content_sha256 == a.content_sha256 and b.counts == a.counts
    eng = b.extra["engine"]
    assert eng["ran"] == "ray" and eng["shards"] >= 4 and eng["steps"][0]["tasks"] == eng["shards"]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_shards_on_a_two_node_cluster_give_the_in_process_artifact(cluster, graphs, dbpedia_ontology_owl,  # noqa: F811
                                                                     one_shard, tmp_path):
    out = tmp_path / "cluster"
    r = _kgllm("corpus", *map(str, graphs), "--ontology", str(dbpedia_ontology_owl), "--out", str(out),
               "--ray-address", cluster["address"], env=cluster["env"])
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = read_manifest(one_shard), read_manifest(out)
    assert b.content_sha256 == a.content_sha256 and b.counts == a.counts
    eng = b.extra["engine"]
    assert (eng["ran"], eng["address"]) == ("ray", cluster["address"])
    [step] = eng["steps"]
    assert (step["concurrency"], step["nodes"]) == (2, 2), eng  # one CPU per node: a task on each


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_during_ray_shards_leaves_nothing(tmp_path):
    """SIGTERM while shards run as Ray tasks (a worker is in ``_run_task``): exit 143 within seconds, no process,
    no temp file, no artifact (test_stage_stop's promise, on Ray)."""
    import subprocess

    from test_stage_stop import _env, sigterm_in_task
    from test_stage_stop import _kgllm as kgllm_cmd

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from bench_scale import make_dump

    make_dump(tmp_path / "dump.nt.gz", 150_000)
    subprocess.run(kgllm_cmd("pull", "file", str(tmp_path / "dump.nt.gz"), "--out", str(tmp_path / "graph")),
                   check=True, env=_env(), capture_output=True)
    out = tmp_path / "corpus"
    sigterm_in_task(kgllm_cmd("corpus", str(tmp_path / "graph"), "--out", str(out), "--engine", "ray"),
                    (b"_run_task",), out, "corpus")


def test_a_stopped_run_resumes_from_its_finished_shards(graphs, config, tmp_path, monkeypatch):
    # A stop (Ctrl-C) while shard 2 of 4 is being built: shards 0 and 1 stay beside the output in the
    # resume directory, nothing else does; the rerun reuses them and writes what an unbroken run writes.
    from kgllm.corpus import shards as shards_mod

    real = shards_mod.build_shard

    def stop_at_2(ctx, k, n, neural=None):
        if k == 2:
            raise KeyboardInterrupt
        return real(ctx, k, n, neural)

    out = tmp_path / "corpus"
    monkeypatch.setattr(shards_mod, "build_shard", stop_at_2)
    with pytest.raises(KeyboardInterrupt):
        _run(graphs, out, config, shards=4)
    monkeypatch.setattr(shards_mod, "build_shard", real)
    left = sorted(x.name for x in tmp_path.iterdir())
    assert len(left) == 1 and left[0].startswith(".corpus.shards-") and not out.exists()
    work = tmp_path / left[0] / "4-shards"
    assert sorted(x.name for x in work.glob("*.done.json")) == ["0.done.json", "1.done.json"]

    _run(graphs, out, config, shards=4)
    m = read_manifest(out)
    assert m.extra["engine"]["shards_reused"] == 2
    assert sorted(x.name for x in tmp_path.iterdir()) == ["corpus"]  # the resume directory is gone
    fresh = read_manifest(_run(graphs, tmp_path / "fresh", config, shards=4))
    assert fresh.extra["engine"]["shards_reused"] == 0
    assert m.content_sha256 == fresh.content_sha256 and m.counts == fresh.counts
