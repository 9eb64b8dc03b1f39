"""The validate stage and CLI end to end: real DBpedia data, quarantine files, counts, exit codes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from test_validate_checks import CLEAN, ONTOLOGY, PLANTED, turtle_triples

from kgllm.artifacts import read_manifest, verify_artifact
from kgllm.cli import main
from kgllm.rdf import GraphWriter, iter_graph, triple_id
from kgllm.registry import run_stage

ROOT = Path(__file__).resolve().parent.parent
DBO = ROOT / "ontologies" / "dbpedia" / "dbo.owl.xz"


def make_graph(out: Path, text: str, provenance: dict) -> Path:
    with GraphWriter(out, config={}) as g:
        g.add_all(turtle_triples(text), provenance)
    return out


@pytest.fixture(scope="module")
def ex_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ex")
    (d / "ex.ttl").write_text(ONTOLOGY)
    make_graph(d / "clean", CLEAN, {"source": "test", "part": "clean"})
    planted = "".join(p for p, _ in PLANTED.values())
    make_graph(d / "planted", CLEAN + planted, {"source": "test", "part": "planted"})
    return d


def test_dbpedia_sample_counts_add_up(dbpedia_graph, tmp_path):
    out = tmp_path / "clean"
    man = run_stage("validate", [dbpedia_graph], out, {"ontology": [DBO], "reasoner": "none",
                                                       "shapes": [ROOT / "ontologies" / "shapes" / "dbpedia.ttl"]})
    verify_artifact(out)
    rep = json.loads((out / "report.json").read_text())
    c = rep["counts"]
    n_in = read_manifest(dbpedia_graph).counts["triples"]
    assert c["input_triples"] == n_in == man.counts["input_triples"]
    assert c["kept"] + c["quarantined"] + c["duplicate_triples"] == n_in
    assert c["duplicate_triples"] == 0 and man.counts["triples"] == c["kept"]
    assert sum(1 for _ in iter_graph(out)) == c["kept"]
    q = (out / "quarantine" / "quarantine.jsonl").read_text().splitlines()
    assert len(q) == c["quarantined"]
    # Provenance is kept shard by shard (the fixture writes one shard per DBpedia file).
    assert [s["provenance"] for s in man.extra["shards"]] == \
        [s["provenance"] for s in read_manifest(dbpedia_graph).extra["shards"] if s["triples"]]
    checks = {ch["name"]: ch for ch in rep["checks"]}
    # Real DBpedia: entities typed dbo:Company that use dbo:hubAirport (domain Airline) and links to
    # entities outside the 98-entity sample are warnings, not errors.
    assert checks["domain"]["violations"] > 0 and checks["domain"]["severity"] == "warning"
    assert checks["dangling_reference"]["violations"] > 0
    warnings = (out / "warnings.jsonl").read_text().splitlines()
    assert len(warnings) == c["warnings"] == sum(ch["violations"] for ch in rep["checks"] if ch["severity"] == "warning")
    assert rep["shacl"]["status"] in ("conforms", "violations", "warnings")
    fn = rep["shacl"]["focus_nodes"]
    assert fn["total"] == fn["conforming"] + fn["violating"] >= 48  # 48 of the 98 entities
    assert "# Validation report" in (out / "report.md").read_text()


def test_planted_graph_quarantines_errors_only(ex_files, tmp_path):
    out = tmp_path / "v"
    man = run_stage("validate", [ex_files / "planted"], out, {"ontology": [ex_files / "ex.ttl"], "reasoner": "none"})
    rep = json.loads((out / "report.json").read_text())
    assert not rep["clean"] and man.extra["validation"]["clean"] is False
    rows = [json.loads(line) for line in (out / "quarantine" / "quarantine.jsonl").read_text().splitlines()]
    by_check = {}
    for r in rows:
        assert r["id"] == triple_id(r["s"], r["p"], r["o"])
        assert r["source"]["provenance"] == {"source": "test", "part": "planted"}
        for ch in r["checks"]:
            by_check.setdefault(ch, set()).add(" ".join((r["s"], r["p"], r["o"])))
    for check in ("literal_lexical_form", "property_kind", "disjoint_classes", "hierarchy_cycle"):
        assert by_check[check] == set(PLANTED[check][1]), check
    assert set(by_check) == {"literal_lexical_form", "property_kind", "disjoint_classes", "hierarchy_cycle"}
    nt = (out / "quarantine" / "quarantine.nt").read_text().splitlines()
    assert len(nt) == len(rows) == rep["counts"]["quarantined"]
    kept = set(iter_graph(out))
    assert not kept & {(r["s"], r["p"], r["o"]) for r in rows}
    assert len(kept) + len(rows) == rep["counts"]["input_triples"]
    with gzip.open(out / man.extra["shards"][0]["file"], "rt") as f:
        assert sum(1 for _ in f) == len(kept)


def test_two_inputs_with_shared_triples_count_duplicates(ex_files, tmp_path):
    out = tmp_path / "v2"
    man = run_stage("validate", [ex_files / "clean", ex_files / "planted"], out,
                    {"ontology": [ex_files / "ex.ttl"], "reasoner": "none"})
    c = man.counts
    assert c["duplicate_triples"] > 0
    assert c["kept"] + c["quarantined"] + c["duplicate_triples"] == c["input_triples"]
    # Every distinct input triple is written exactly once: kept in the graph or in the quarantine.
    from kgllm.rdf import iter_graph

    distinct = set(iter_graph([ex_files / "clean", ex_files / "planted"]))
    kept = list(iter_graph(out))
    quarantined = (out / "quarantine" / "quarantine.nt").read_text().splitlines()
    assert len(kept) == len(set(kept)) == c["kept"] and len(quarantined) == len(set(quarantined)) == c["quarantined"]
    assert len(distinct) == c["kept"] + c["quarantined"] and set(kept) <= distinct
    assert man.counts["duplicates"] == c["duplicate_triples"]


def test_cli_exit_codes(ex_files, tmp_path, capsys):
    onto = str(ex_files / "ex.ttl")
    # 0: consistent (real HermiT run) and no errors; warnings alone do not fail.
    assert main(["validate", str(ex_files / "clean"), "--ontology", onto, "--out", str(tmp_path / "a")]) == 0
    rep = json.loads((tmp_path / "a" / "report.json").read_text())
    assert rep["reasoning"]["status"] == "consistent" and rep["clean"]
    # 1: errors found; the clean graph and the report are still written.
    assert main(["validate", str(ex_files / "planted"), "--ontology", onto, "--reasoner", "none",
                 "--out", str(tmp_path / "b")]) == 1
    assert (tmp_path / "b" / "report.md").exists() and "kgllm: problem: " in capsys.readouterr().err
    assert read_manifest(tmp_path / "b").problems  # recorded for `kgllm run`
    # 2: usage and input errors, nothing written.
    assert main(["validate", str(ex_files / "clean"), "--out", str(tmp_path / "c")]) == 2
    assert main(["validate", str(ex_files / "clean"), "--ontology", str(tmp_path / "nope.owl"),
                 "--out", str(tmp_path / "c")]) == 2
    assert main(["validate", str(tmp_path), "--ontology", onto, "--out", str(tmp_path / "c")]) == 2
    assert main(["validate", str(ex_files / "clean"), "--ontology", onto, "--reasoner", "fact++",
                 "--out", str(tmp_path / "c")]) == 2
    assert main(["validate", str(ex_files / "clean"), "--ontology", onto, "--set", "severity.bogus=error",
                 "--out", str(tmp_path / "c")]) == 2
    assert "nope.owl" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_reasoner_timeout_still_writes_graph(ex_files, tmp_path):
    out = tmp_path / "t"
    rc = main(["validate", str(ex_files / "clean"), "--ontology", str(ROOT / "ontologies" / "examples" / "pizza.owl"),
               "--reasoning-timeout", "0.2", "--out", str(out)])
    assert rc == 1
    rep = json.loads((out / "report.json").read_text())
    assert rep["reasoning"]["status"] == "timeout"
    assert rep["counts"]["kept"] == rep["counts"]["input_triples"]
    assert "did not finish (timeout)" in (out / "report.md").read_text()
    # The Markdown report renders reasoning results too (here grafted onto this report).
    from kgllm.validate.report import render_markdown

    rep["reasoning"].update(status="consistent", unsatisfiable_classes=["http://x/C"], explainer="pellet",
                            unsatisfiable_explanations=[{"axiom": "C subClassOf Nothing",
                                                         "explanations": [["C subClassOf A", "A disjointWith C"]]}])
    md = render_markdown(rep)
    assert "`http://x/C`" in md and "`C subClassOf A`; `A disjointWith C`" in md


def test_validate_step_in_a_pipeline(ex_files, tmp_path):
    from kgllm.pipeline import run_pipeline

    (tmp_path / "ex.ttl").write_text(ONTOLOGY)
    y = tmp_path / "pipe.yaml"
    # Ontology paths are relative to the YAML file; the input is an existing graph artifact.
    y.write_text(f"workdir: runs\nsteps:\n  - id: clean\n    stage: validate\n    inputs: [{ex_files / 'planted'}]\n"
                 f"    config: {{ontology: [ex.ttl], reasoner: none, severity: {{missing_label: 'off'}}}}\n")
    (r,) = run_pipeline(y)
    assert r.status == "ran" and r.counts["quarantined"] > 0
    rep = json.loads((tmp_path / "runs" / "clean" / "report.json").read_text())
    assert "missing_label" not in {ch["name"] for ch in rep["checks"] if ch["violations"]}
    assert [x.status for x in run_pipeline(y)] == ["skipped"]
    (tmp_path / "ex.ttl").write_text(ONTOLOGY + "\n# edited\n")
    assert [x.status for x in run_pipeline(y)] == ["ran"]  # the ontology file is an input of the step


def test_damaged_input_shard_is_an_input_error(ex_files, tmp_path):
    import shutil

    src = tmp_path / "damaged"
    shutil.copytree(ex_files / "clean", src)
    shard = next((src / "triples").glob("*.nt.gz"))
    lines = gzip.decompress(shard.read_bytes()).splitlines(keepends=True)
    shard.write_bytes(gzip.compress(b"".join(lines[:-1])))
    assert main(["validate", str(src), "--ontology", str(ex_files / "ex.ttl"), "--reasoner", "none",
                 "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()
