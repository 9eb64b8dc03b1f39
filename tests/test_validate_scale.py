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
from kgllm.rdf import GraphWriter, count_triples
from kgllm.registry import run_stage
from kgllm.validate import parts
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
    for n in (2, 3):
        got = {owner(t, n) for t in terms}
        assert got == set(range(n))   # a stable hash, not Python's salted one
        assert [owner(t, n) for t in terms] == [owner(t, n) for t in terms]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Ray's embedded instance")
@pytest.mark.parametrize("cpus, by_size", [(2, False), (3, False), (1, True)])
def test_ray_partitions_give_the_in_process_artifact(local_runs, planted, dbpedia_graph, cpus, by_size, tmp_path,
                                                     monkeypatch):
    """Two subject partitions per CPU; ``by_size``: a graph of more than PART_ROWS rows per partition gets one
    per PART_ROWS rows (here about five on one CPU), as a large graph does: the same bytes either way."""
    for name, inputs in (("ex", [planted / "clean", planted / "planted"]), ("dbpedia", [dbpedia_graph])):
        ref, cfg = local_runs[name]
        rows = count_triples(inputs)
        want = 2 * cpus
        if by_size:
            monkeypatch.setattr(parts, "PART_ROWS", rows // 5)
            want = -(-rows // (rows // 5))
            assert want > 2 * cpus and parts.partitions(rows, cpus) == want
        out = _validate(inputs, tmp_path / name, cfg, EngineConfig(mode="ray", num_cpus=cpus))
        _same(ref, out)
        eng = read_manifest(out).extra["engine"]
        checks, write = eng["steps"]
        assert eng["ran"] == "ray" and checks["parts"] == want + 1 and write["tasks"] >= cpus


def test_partitions_by_slots_and_by_size():
    # Two per task slot; past PART_ROWS rows per partition, by size: a 4M-row graph gets 4 on 1 CPU and on 2.
    assert [parts.partitions(1000, s) for s in (0, 1, 2, 3)] == [2, 2, 4, 6]
    assert [parts.partitions(4 * parts.PART_ROWS, s) for s in (1, 2, 4)] == [4, 4, 8]
    assert parts.partitions(400 * parts.PART_ROWS + 1, 2) == 401


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
def test_sigterm_during_the_map_reduce_leaves_nothing(big_graph, tmp_path):
    """SIGTERM while the data checks run as Ray tasks (a worker is in a map or reduce): exit 143 within seconds,
    no process, no temp file, no artifact; a rerun completes (test_stage_stop's promise, on Ray)."""
    import subprocess

    from test_stage_stop import _env, sigterm_in_task
    from test_stage_stop import _kgllm as kgllm_cmd

    out = tmp_path / "clean"
    cmd = kgllm_cmd("validate", str(big_graph), "--ontology", str(DBO), "--reasoner", "none", "--out",
                    str(out), "--engine", "ray", "--set", "block_triples=50000")
    sigterm_in_task(cmd, (b"_run_map", b"_run_reduce"), out, "validate")
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    assert r.returncode in (0, 1), r.stderr[-2000:]
    assert read_manifest(out).counts["input_triples"] == 300_000


@pytest.fixture(scope="module")
def big_graph(tmp_path_factory) -> Path:
    """300,000 triples (bench_scale's DBpedia-shaped graph): validate takes seconds on it."""
    import subprocess

    from test_stage_stop import _env
    from test_stage_stop import _kgllm as kgllm_cmd

    sys.path.insert(0, str(ROOT / "bench"))
    from bench_scale import make_dump

    d = tmp_path_factory.mktemp("big")
    make_dump(d / "dump.nt.gz", 300_000)
    subprocess.run(kgllm_cmd("pull", "file", str(d / "dump.nt.gz"), "--out", str(d / "graph")),
                   check=True, env=_env(), capture_output=True)
    return d / "graph"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals")
def test_a_stopped_validate_resumes_from_its_finished_work(big_graph, tmp_path):
    """SIGTERM once the data checks are done: the stopped run keeps them (and the blocks it wrote) beside
    the output; the rerun takes them from there instead of checking again, writes the same bytes as an
    uninterrupted run, and removes them."""
    import subprocess

    from test_stage_stop import _env, stop_once_kept
    from test_stage_stop import _kgllm as kgllm_cmd

    def cmd(out: Path) -> list[str]:
        return kgllm_cmd("validate", str(big_graph), "--ontology", str(DBO), "--reasoner", "none", "--out",
                         str(out), "--set", "block_triples=20000")

    ref = tmp_path / "ref"
    r = subprocess.run(cmd(ref), env=_env(), capture_output=True, text=True)
    assert r.returncode in (0, 1), r.stderr[-2000:]
    assert "resumed" not in read_manifest(ref).extra

    out = tmp_path / "clean"
    kept = stop_once_kept(cmd(out), out, ".clean.checks-*/checks-1/part-0.pickle", "validate")

    r = subprocess.run(cmd(out), env=_env(), capture_output=True, text=True)
    assert r.returncode in (0, 1), r.stderr[-2000:]
    assert read_manifest(out).extra["resumed"]["partitions"] == 1
    _same(ref, out)
    assert not kept.exists() and not [x for x in tmp_path.iterdir() if x.name.startswith(".clean.")]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Ray's embedded instance")
def test_ray_reduces_only_the_partitions_a_stopped_run_did_not_keep(planted, tmp_path):
    """On Ray each finished partition's result is kept as it comes; a rerun reduces only the missing ones
    (the map runs again: its pieces are not kept) and merges the same violations, duplicates and flags."""
    from kgllm.engine import open_engine
    from kgllm.validate.checks import CheckOptions
    from kgllm.validate.feedback import load_flags
    from kgllm.validate.ontology import load_ontologies

    inputs = [planted / "clean", planted / "planted"]
    cfg = parts.CheckConfig(load_ontologies([planted / "ex.ttl"]), CheckOptions(), {}, 1,
                            load_flags([planted / "corrections"]), str(tmp_path))
    resume = tmp_path / "resume"
    resume.mkdir()

    def seen(dc: parts.DataChecks):
        return ({name: list(m.lines()) for name, m in dc.results.items()}, sorted(dc.duplicates), dc.terms,
                sorted(dc.flagged), dc.rows)

    with engine.configured(EngineConfig(mode="ray", num_cpus=2)), open_engine() as eng:
        full, _shards, blocks = parts.run(inputs, cfg, eng, block_triples=BLOCK, resume=resume)
        first = seen(full)
        n = eng.report()["steps"][0]["parts"]
        assert full.resumed == 0 and n == 5 and len(list(resume.glob("checks-4/part-*.pickle"))) == n
        for k in (0, 3):   # as if the run had stopped before these two finished
            (resume / parts.part_name(4, k)).unlink()
        again, _shards, _blocks = parts.run(inputs, cfg, eng, block_triples=BLOCK, resume=resume)
        step = eng.report()["steps"][1]
    assert again.resumed == n - 2 and step["tasks"] == len(blocks) + 2
    assert seen(again) == first and first[0]
