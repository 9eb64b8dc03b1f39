"""The validate stage's data checks as a map-reduce give one result: in this process (one partition) and as
Ray tasks (two or three subject partitions plus the hierarchy one, on an embedded instance and on
test_engine's two-node cluster) the clean graph, quarantine, warnings and report are the same bytes, with
violations of every check, duplicates across inputs, feedback flags, several shards and many blocks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from test_engine import _kgllm, cluster  # noqa: F401  (the two-node cluster fixture)
from test_validate_checks import CLEAN, ONTOLOGY, PLANTED, turtle_triples

from kgllm import engine
from kgllm.artifacts import read_manifest, verify_artifact
from kgllm.engine import EngineConfig
from kgllm.rdf import GraphWriter
from kgllm.registry import run_stage
from kgllm.validate.parts import owner, plan

ROOT = Path(__file__).resolve().parent.parent
DBO = ROOT / "ontologies" / "dbpedia" / "dbo.owl.xz"
SHAPES = ROOT / "ontologies" / "shapes" / "dbpedia.ttl"
BLOCK = 7   # rows per block: many blocks, and reads of several blocks on Ray


def _graph(out: Path, shards: list[tuple[str, dict]]) -> Path:
    with GraphWriter(out, config={}) as g:
        for text, prov in shards:
            g.add_all(turtle_triples(text), prov)
    return out


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The ex ontology; the clean data in one graph and again (duplicates) with every check's planted case,
    in three shards, in another; a corrections graph flagging one of its triples and one it lacks."""
    d = tmp_path_factory.mktemp("planted")
    (d / "ex.ttl").write_text(ONTOLOGY)
    cases = [p for p, _ in PLANTED.values()]
    third = len(cases) // 3
    prefixes = "".join(line + "\n" for line in CLEAN.splitlines() if line.startswith("@prefix"))
    _graph(d / "clean", [(CLEAN, {"part": "clean"})])
    _graph(d / "planted", [(CLEAN + "".join(cases[:third]), {"part": 1}),
                           (prefixes + "".join(cases[third:2 * third]), {"part": 2}),
                           (prefixes + "".join(cases[2 * third:]), {"part": 3})])
    flag = PLANTED["functional_property"][1][1].split(" ", 2)   # the planted second birth date
    with GraphWriter(d / "corrections", config={}) as g:
        with g.shard({"source": "feedback"}) as add:
            add(*flag)
            add("<http://example.org/ex#nobody>", "<http://example.org/ex#knows>", "<http://example.org/ex#alice>")
    return d


def _validate(inputs, out: Path, cfg: dict, eng: EngineConfig) -> Path:
    with engine.configured(eng):
        run_stage("validate", inputs, out, {"reasoner": "none", "block_triples": BLOCK, **cfg})
    verify_artifact(out)
    return out


def _same(a: Path, b: Path) -> None:
    ma, mb = read_manifest(a), read_manifest(b)
    assert mb.counts == ma.counts
    for name in ("warnings.jsonl", "quarantine/quarantine.jsonl", "quarantine/quarantine.nt", "report.json"):
        assert (b / name).read_bytes() == (a / name).read_bytes(), name
    assert mb.content_sha256 == ma.content_sha256
    assert mb.extra["shards"] == ma.extra["shards"]


@pytest.fixture(scope="module")
def local_runs(planted, dbpedia_graph, tmp_path_factory):
    d = tmp_path_factory.mktemp("local")
    ex = {"ontology": [planted / "ex.ttl"], "corrections": [planted / "corrections"]}
    a = _validate([planted / "clean", planted / "planted"], d / "ex", ex, EngineConfig(mode="local"))
    db = {"ontology": [DBO], "shapes": [SHAPES]}   # SHACL over the kept triples, which Ray tasks wrote
    b = _validate([dbpedia_graph], d / "dbpedia", db, EngineConfig(mode="local"))
    return {"ex": (a, ex), "dbpedia": (b, db)}


def test_in_process_run_finds_every_planted_case(local_runs, planted):
    out, _cfg = local_runs["ex"]
    rep = json.loads((out / "report.json").read_text())
    found = {ch["name"] for ch in rep["checks"] if ch["violations"]}
    assert found == set(PLANTED)
    c = rep["counts"]
    assert c["duplicate_triples"] == len(turtle_triples(CLEAN)) > 0
    assert c["kept"] + c["quarantined"] + c["duplicate_triples"] == c["input_triples"]
    assert c["flagged_by_feedback"] == 1 and rep["feedback"]["not_in_graph"] == 1
    # In this process one read per shard, cut into blocks of BLOCK rows (one gzip member each); for Ray
    # about two reads per task, each a run of whole blocks, covering the same rows.
    inputs = [planted / "clean", planted / "planted"]
    shards, reads = plan(inputs, BLOCK)
    assert len(reads) == len(shards) == 4 and sum(len(r.members()) for r in reads) > 6
    _shards, many = plan(inputs, BLOCK, 6)
    assert len(many) > len(reads) and all(r.lo % BLOCK == 0 for r in many)
    assert [m for r in many for m in r.members()] == [m for r in reads for m in r.members()]
    assert read_manifest(out).extra["engine"] == {"ran": "local", "mode": "local"}


def test_partitions_split_subjects_and_follow_objects():
    terms = [f"<http://example.org/e{i}>" for i in range(200)]
    for parts in (2, 3):
        got = {owner(t, parts) for t in terms}
        assert got == set(range(parts))   # a stable hash, not Python's salted one
        assert [owner(t, parts) for t in terms] == [owner(t, parts) for t in terms]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Ray's embedded instance")
@pytest.mark.parametrize("cpus", [2, 3])
def test_ray_partitions_give_the_in_process_artifact(local_runs, planted, dbpedia_graph, cpus, tmp_path):
    for name, inputs in (("ex", [planted / "clean", planted / "planted"]), ("dbpedia", [dbpedia_graph])):
        ref, cfg = local_runs[name]
        out = _validate(inputs, tmp_path / name, cfg, EngineConfig(mode="ray", num_cpus=cpus))
        _same(ref, out)
        eng = read_manifest(out).extra["engine"]
        checks, write = eng["steps"]
        assert eng["ran"] == "ray" and checks["parts"] == 2 * cpus + 1 and write["tasks"] >= cpus


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_validate_on_a_two_node_cluster_gives_the_in_process_artifact(cluster, local_runs, dbpedia_graph,  # noqa: F811
                                                                      tmp_path):
    ref, _cfg = local_runs["dbpedia"]
    out = tmp_path / "cluster"
    r = _kgllm("validate", str(dbpedia_graph), "--ontology", str(DBO), "--shapes", str(SHAPES), "--reasoner", "none", "--set",
               f"block_triples={BLOCK}", "--out", str(out), "--ray-address", cluster["address"], env=cluster["env"])
    assert r.returncode in (0, 1), r.stderr[-3000:]
    _same(ref, out)
    eng = read_manifest(out).extra["engine"]
    assert (eng["ran"], eng["address"]) == ("ray", cluster["address"])
    checks, write = eng["steps"]
    # The cluster's two CPUs, one per node, were counted: two subject partitions per CPU and the hierarchy
    # one. Which node ran a task of a few milliseconds is Ray's choice (SPREAD is a preference, and a CI run
    # once put them all on one node), so it is not asserted here; test_corpus_scale's longer tasks are.
    assert checks["parts"] == 5 and checks["nodes"] >= 1 and write["nodes"] >= 1, eng


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_during_the_map_reduce_leaves_nothing(tmp_path):
    """SIGTERM while the data checks run as Ray tasks (a worker is in a map or reduce): exit 143 within seconds,
    no process, no temp file, no artifact; a rerun completes (test_stage_stop's promise, on Ray)."""
    import subprocess

    from test_stage_stop import _env, sigterm_in_task
    from test_stage_stop import _kgllm as kgllm_cmd

    sys.path.insert(0, str(ROOT / "bench"))
    from bench_scale import make_dump

    make_dump(tmp_path / "dump.nt.gz", 300_000)
    subprocess.run(kgllm_cmd("pull", "file", str(tmp_path / "dump.nt.gz"), "--out", str(tmp_path / "graph")),
                   check=True, env=_env(), capture_output=True)
    out = tmp_path / "clean"
    cmd = kgllm_cmd("validate", str(tmp_path / "graph"), "--ontology", str(DBO), "--reasoner", "none", "--out",
                    str(out), "--engine", "ray", "--set", "block_triples=50000")
    sigterm_in_task(cmd, (b"_run_map", b"_run_reduce"), out, "validate")
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    assert r.returncode in (0, 1), r.stderr[-2000:]
    assert read_manifest(out).counts["input_triples"] == 300_000
