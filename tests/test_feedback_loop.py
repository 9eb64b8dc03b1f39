"""The feedback loop (issue 18), end to end on real components: the recorded feedback of the example
(examples/data/feedback/recorded.jsonl: real `kgllm ask --json` answers of the example's index, with ratings,
corrections and flags) imported into a real SQLite feedback store and exported; validate quarantining the
flagged triples; `kgllm index --update` removing them incrementally (and equal to a rebuild); DPO and KTO
through trl on the export with the tiny model of tests/tiny.py; eval qa's feedback and held-out groups; and
examples/feedback_loop.yaml checked (`kgllm run --dry-run`) and run for real with the tiny model.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ONTOLOGIES, ROOT

from kgllm.artifacts import read_manifest, verify_artifact
from kgllm.cli import main
from kgllm.errors import ConfigError, InputError
from kgllm.registry import run_stage

EXAMPLES = ROOT / "examples"
PIPELINE = EXAMPLES / "feedback_loop.yaml"
RECORDED = EXAMPLES / "data" / "feedback" / "recorded.jsonl"
QUESTIONS = EXAMPLES / "data" / "feedback" / "questions.jsonl"
DBO = ONTOLOGIES / "dbpedia" / "dbo.owl.xz"
FAST = {"max_steps": 2, "batch_size": 2, "save_steps": 2, "logging_steps": 1}


def _tree_digest(d: Path) -> dict[str, str]:
    """sha256 of every file under ``d`` (byte-for-byte comparison of a directory before and after)."""
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file()}


def _recorded() -> list[dict]:
    return [json.loads(line) for line in RECORDED.read_text("utf-8").splitlines()]


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """The example's first steps, through the stages: graph (its seven DBpedia files), index, feedback
    import (SQLite inside the artifact) and export (corrections verified against the graph)."""
    d = tmp_path_factory.mktemp("loop")
    pipe = yaml.safe_load(PIPELINE.read_text("utf-8"))
    paths = [str(EXAMPLES / p) for p in next(s for s in pipe["steps"] if s["id"] == "dbpedia")["config"]["paths"]]
    run_stage("pull.file", [], d / "graph", {"paths": paths})
    run_stage("index", [d / "graph"], d / "index", {})
    run_stage("feedback.import", [d / "index"], d / "feedback", {"file": str(RECORDED)})
    run_stage("feedback.export", [d / "feedback", d / "graph"], d / "export", {"validation": 0.2})
    flags = [json.loads(line) for line in (d / "export" / "corrections" / "flags.jsonl").read_text().splitlines()]
    return {"dir": d, "graph": d / "graph", "index": d / "index", "export": d / "export", "flags": flags,
            "flagged": {f["triple_id"] for f in flags}}


@pytest.fixture(scope="module")
def clean(loop):
    """validate of the graph with the export's corrections (no OWL reasoner: the data checks suffice here)."""
    out = loop["dir"] / "clean"
    run_stage("validate", [loop["graph"], loop["export"]], out, {"ontology": [str(DBO)], "reasoner": "none"})
    return out


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import tiny

    d = tmp_path_factory.mktemp("tiny-loop")
    corpus = tiny.write_tiny_corpus(d / "corpus")
    return tiny.write_tiny_model(tiny.train_tiny_tokenizer(corpus, d / "tok"), d / "model")


def test_recorded_feedback_is_real_answers_of_the_example_index(loop):
    """Every flag names a triple the answer cites, and that triple is in the example's graph: the recorded
    file describes the index the example builds (examples/data/feedback/record.py checks the same)."""
    from kgllm.index.facade import load_index

    idx = load_index(loop["index"])
    rows = _recorded()
    assert 20 <= len(rows) <= 40
    kinds = {f["kind"] for r in rows for f in r["feedback"]}
    assert kinds == {"rating", "correction", "flag"}
    for r in rows:
        cited = {c["id"] for c in r["answer"]["citations"]}
        for f in r["feedback"]:
            if f["kind"] == "flag":
                assert f["triple_id"] in cited and f["reason"]
                assert idx.triples([f["triple_id"]]), f"flagged triple {f['triple_id']} is not in the index"
    exp = read_manifest(loop["export"])
    assert exp.kind == "corpus.feedback" and exp.counts["flagged_triples"] == len(loop["flagged"]) >= 10
    # One triple flagged by two people: both reasons travel with it.
    assert any(len(f["reasons"]) == 2 for f in loop["flags"])


def test_validate_quarantines_flagged_triples_and_leaves_sources_untouched(loop, tmp_path, capsys):
    before = {k: _tree_digest(loop[k]) for k in ("graph", "export")}
    out = tmp_path / "clean"
    rc = main(["validate", str(loop["graph"]), "--ontology", str(DBO), "--reasoner", "none",
               "--corrections", str(loop["export"]), "--out", str(out)])
    err = capsys.readouterr().err
    n = len(loop["flagged"])
    assert rc == 1  # feedback changed the data: a problem, as any quarantine by an error check
    assert f"kgllm: problem: feedback: {n} triples flagged by feedback quarantined" in err
    man = verify_artifact(out)
    c = man.counts
    assert c["input_triples"] == c["kept"] + c["quarantined"] + c["duplicate_triples"]
    assert c["flagged_by_feedback"] == n and c["quarantined"] >= n
    assert man.problems and man.extra["feedback"]["quarantined_triples"] == n
    assert man.extra["feedback"]["corrections"] == [str(loop["export"] / "corrections")]

    reasons = {f["triple_id"]: f["reasons"] for f in loop["flags"]}
    quarantined = [json.loads(line) for line in (out / "quarantine" / "quarantine.jsonl").read_text().splitlines()]
    fed = {q["id"]: q for q in quarantined if "feedback" in q["checks"]}
    assert set(fed) == loop["flagged"]
    for tid, q in fed.items():
        assert "flagged by feedback" in q["reasons"] and q["feedback"]["reasons"] == reasons[tid]
        assert q["feedback"]["feedback_ids"] and q["source"]["graph"] == str(loop["graph"])
    from kgllm.rdf import iter_graph, triple_id

    assert not {triple_id(*t) for t in iter_graph(out)} & loop["flagged"]  # gone from the clean graph
    rep = json.loads((out / "report.json").read_text())
    assert rep["clean"] is False and rep["counts"]["flagged_by_feedback"] == n
    assert rep["feedback"]["flagged_triples"] == n and rep["feedback"]["not_in_graph"] == 0
    md = (out / "report.md").read_text()
    assert "## Feedback corrections" in md and "Tokyo is a city, not an airport" in md
    # Nothing was deleted from (or written into) the source artifacts.
    assert {k: _tree_digest(loop[k]) for k in ("graph", "export")} == before

    # The corrections/ graph itself (config key), and the export as a pipeline input, do the same.
    same = run_stage("validate", [loop["graph"]], tmp_path / "c2",
                     {"ontology": [str(DBO)], "reasoner": "none",
                      "corrections": [str(loop["export"] / "corrections")]})
    assert same.counts == man.counts
    via_input = run_stage("validate", [loop["graph"], loop["export"]], tmp_path / "c3",
                          {"ontology": [str(DBO)], "reasoner": "none"})
    assert via_input.counts == man.counts and [i["kind"] for i in via_input.inputs] == ["graph", "corpus.feedback"]
    # Corrections that are neither an export nor a graph: exit 2, nothing written.
    assert main(["validate", str(loop["graph"]), "--ontology", str(DBO), "--reasoner", "none",
                 "--corrections", str(loop["index"]), "--out", str(tmp_path / "bad")]) == 2
    assert "not corrections" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_index_update_drops_flagged_triples_and_equals_a_rebuild(loop, clean, tmp_path, capsys):
    from kgllm.ask.answer import Answerer
    from kgllm.index.facade import load_index
    from kgllm.index.vector import VectorIndex

    upd = tmp_path / "index"
    shutil.copytree(loop["index"], upd)
    assert main(["index", str(clean), "--out", str(upd), "--update"]) == 0
    assert "update_removed=" in capsys.readouterr().out
    man = verify_artifact(upd)
    c, u = man.counts, man.extra["update"]
    n_clean = read_manifest(clean).counts["triples"]
    assert u["mode"] == "update" and u["base"]["content_sha256"] == read_manifest(loop["index"]).content_sha256
    assert c["update_removed"] == read_manifest(loop["index"]).counts["triples"] - n_clean == len(loop["flagged"])
    assert c["update_added"] == 0 and c["update_kept"] == n_clean == c["triples"]
    # Only texts that changed were embedded again (descriptions of the entities that lost a fact).
    assert c["update_reembedded"] <= 3 * len(loop["flagged"]) < c["triple_vectors"]
    assert c["triple_vectors_reused"] + c["triple_texts_encoded"] == c["triple_vectors"]

    rebuilt = run_stage("index", [clean], tmp_path / "rebuilt", {})
    rb = tmp_path / "rebuilt"
    # The same index: graph arrays, sources, lexicon byte for byte; the same vector keys, vectors equal up to
    # the rounding of batched encoding.
    for part in ("graph", "lexicon"):
        assert _tree_digest(upd / part) == _tree_digest(rb / part), part
    for name in ("triple", "entity"):
        a, b = VectorIndex.load(upd / "vectors", name), VectorIndex.load(rb / "vectors", name)
        assert a.keys == b.keys
        np.testing.assert_allclose(a.vectors_of(a.keys), b.vectors_of(b.keys), atol=1e-5)
    skip = {"triple_texts_encoded", "entity_texts_encoded", "triple_vectors_reused", "entity_vectors_reused",
            "vector_chunks_reused", "update_added", "update_removed", "update_kept", "update_reembedded"}
    assert {k: v for k, v in c.items() if k not in skip} == \
        {k: v for k, v in rebuilt.counts.items() if k not in skip}

    # The same answers; no flagged triple is cited, searchable or returned any more.
    i_upd, i_rb = load_index(upd), load_index(rb)
    ans_upd, ans_rb = Answerer(i_upd), Answerer(i_rb)
    questions = [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines()][:60]
    for q in questions:
        a, b = ans_upd.ask(q, "hybrid"), ans_rb.ask(q, "hybrid")
        assert (a["answer"], [x["id"] for x in a["citations"]]) == (b["answer"], [x["id"] for x in b["citations"]]), q
        assert not {x["id"] for x in a["citations"]} & loop["flagged"]
    assert i_upd.triples(sorted(loop["flagged"])) == []
    base = load_index(loop["index"])
    for rec in base.triples(sorted(loop["flagged"])):
        text = base.triple_text(base.graph.row_of(rec.id))
        assert rec.id in {h.key for h in base.search(text, k=5)}          # found before the update...
        assert rec.id not in {h.key for h in i_upd.search(text, k=50)}   # ...never after
    for r in _recorded():
        if any(f["kind"] == "flag" for f in r["feedback"]):
            cited = {x["id"] for x in ans_upd.ask(r["question"], r["retriever"])["citations"]}
            assert not cited & loop["flagged"], r["question"]

    # Back to the original graph: the flagged triples are added again, and the result is the original index.
    back = run_stage("index", [loop["graph"], upd], tmp_path / "back", {"update": True})
    assert back.counts["update_added"] == len(loop["flagged"]) and back.counts["update_removed"] == 0
    for part in ("graph", "lexicon"):
        assert _tree_digest(tmp_path / "back" / part) == _tree_digest(loop["index"] / part), part


def test_index_update_without_an_index_builds_and_other_settings_rebuild(loop, clean, tmp_path):
    fresh = run_stage("index", [clean], tmp_path / "new", {"update": True, "vector": {"enabled": False}})
    assert fresh.extra["update"]["mode"] == "build" and fresh.counts["update_added"] == fresh.counts["triples"]
    # Settings differ from the base's (no vectors): built anew, and the report says why.
    other = run_stage("index", [clean, loop["index"]], tmp_path / "other", {"update": True,
                                                                           "vector": {"enabled": False}})
    assert other.extra["update"]["mode"] == "rebuild" and "vector" in other.extra["update"]["reason"]
    from kgllm.errors import UsageError

    with pytest.raises(UsageError, match="give --update"):
        run_stage("index", [clean, loop["index"]], tmp_path / "x", {})


def test_dpo_and_kto_train_two_steps_on_the_export(loop, tiny_model, tmp_path, capsys):
    exp = loop["export"]
    n_dpo = len((exp / "dpo" / "train.jsonl").read_text().splitlines())
    n_kto = [json.loads(line)["label"] for line in (exp / "kto" / "train.jsonl").read_text().splitlines()]
    dpo = run_stage("train.dpo", [exp], tmp_path / "dpo", {**FAST, "model": str(tiny_model)})
    assert dpo.kind == "model.dpo" and dpo.counts["steps"] == 2 and dpo.counts["train_examples"] == n_dpo >= 2
    assert dpo.inputs[0]["kind"] == "corpus.feedback"
    rc = main(["train", "kto", "--corpus", str(exp), "--model", str(tiny_model), "--out", str(tmp_path / "kto"),
               "--max-steps", "2", "--set", "batch_size=2", "--set", "save_steps=2", "--set", "logging_steps=1"])
    assert rc == 0 and "model.kto artifact" in capsys.readouterr().out
    man = verify_artifact(tmp_path / "kto")
    assert man.kind == "model.kto" and man.counts["steps"] == 2
    assert man.counts["train_examples"] == len(n_kto)
    assert (man.counts["train_desirable"], man.counts["train_undesirable"]) == (sum(n_kto), len(n_kto) - sum(n_kto))
    metrics = json.loads((tmp_path / "kto" / "metrics.json").read_text())
    assert metrics["global_step"] == 2 and any("loss" in e for e in metrics["log_history"])
    if man.counts["eval_examples"]:
        assert "eval_loss" in metrics
    import kgllm.train

    art = kgllm.train.kto(exp, out=tmp_path / "kto2", model=str(tiny_model), **FAST)
    assert art.kind == "model.kto"
    with pytest.raises(ConfigError, match="batch_size"):  # KTO's KL estimate needs two rows per batch
        run_stage("train.kto", [exp], tmp_path / "x", {"batch_size": 1})


def test_eval_qa_reports_feedback_and_held_out_groups(loop, tiny_model, tmp_path, capsys):
    out = tmp_path / "ev"
    assert main(["eval", "qa", "--index", str(loop["index"]), "--questions", str(QUESTIONS), "--retriever",
                 "hybrid", "--feedback-questions", str(RECORDED), "--out", str(out)]) == 0
    table = (out / "table.md").read_text()
    assert "| hybrid | feedback |" in table and "| hybrid | held_out |" in table
    rep = json.loads((out / "report.json").read_text())
    fb_questions = {" ".join(r["question"].split()).casefold() for r in _recorded()}
    g = rep["groups"]
    assert g["feedback"] == len(fb_questions) and g["feedback"] + g["held_out"] == rep["questions"]
    assert g["feedback_questions_not_evaluated"] == 0
    by = rep["retrievers"]["hybrid"]["by_group"]
    assert by["feedback"]["questions"] == g["feedback"] and by["held_out"]["questions"] == g["held_out"]
    preds = [json.loads(line) for line in (out / "predictions" / "hybrid.jsonl").read_text().splitlines()]
    assert {p["group"] for p in preds} == {"feedback", "held_out"}
    assert all((p["group"] == "feedback") == (" ".join(p["question"].split()).casefold() in fb_questions)
               for p in preds)
    man = read_manifest(out)
    assert man.counts["feedback_questions"] == g["feedback"]
    assert man.counts["hybrid_feedback_hits@1"] == by["feedback"]["hits@1"] < man.counts["hybrid_held_out_hits@1"]
    assert str(RECORDED) in [i["path"] for i in man.inputs]

    # A feedback file none of whose questions is evaluated: exit 2 (there would be nothing to compare).
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"question": "Who painted the Mona Lisa?"}) + "\n")
    with pytest.raises(InputError, match="none of its 1 questions"):
        run_stage("eval.qa", [loop["index"]], tmp_path / "ev2",
                  {"questions": str(QUESTIONS), "feedback_questions": str(other)})
    # A model artifact as second input words the answers (here a tiny DPO model trained on the export).
    dpo = run_stage("train.dpo", [loop["export"]], tmp_path / "dpo", {**FAST, "model": str(tiny_model)})
    man = run_stage("eval.qa", [loop["index"], tmp_path / "dpo"], tmp_path / "ev3",
                    {"questions": str(QUESTIONS), "feedback_questions": str(RECORDED), "retrievers": ["graph"],
                     "limit": 8})
    assert [i.get("kind") for i in man.inputs][:2] == ["index", dpo.kind]
    preds = [json.loads(line) for line in (tmp_path / "ev3" / "predictions" / "graph.jsonl").read_text().splitlines()]
    rep = json.loads((tmp_path / "ev3" / "report.json").read_text())
    assert rep["model"] == str(tmp_path / "dpo") and len(preds) == 8


def _runnable_copy(tmp_path: Path, model: Path) -> Path:
    """examples/feedback_loop.yaml with its relative paths made absolute, its workdir in ``tmp_path`` and the
    tiny model in its train steps (2 steps each): the same pipeline, runnable in seconds."""
    data = yaml.safe_load(PIPELINE.read_text("utf-8"))

    def absolute(v):
        if isinstance(v, str) and (EXAMPLES / v).exists():
            return str((EXAMPLES / v).resolve())
        if isinstance(v, list):
            return [absolute(x) for x in v]
        if isinstance(v, dict):
            return {k: absolute(x) for k, x in v.items()}
        return v

    data["workdir"] = str(tmp_path / "runs")
    for step in data["steps"]:
        step["config"] = absolute(step.get("config") or {})
        if step["stage"].startswith("train."):
            assert step["config"]["model"] == "smollm2-135m-instruct"
            step["config"].update(model=str(model), **FAST)
    y = tmp_path / "loop.yaml"
    y.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return y


def test_example_pipeline_dry_run_and_real_run(tiny_model, tmp_path, capsys):
    from kgllm.pipeline import load_pipeline

    configs = load_pipeline(PIPELINE).configs()  # the shipped YAML: every step's config is valid
    ids = list(configs)
    assert ids == ["dbpedia", "index", "eval_before", "feedback", "export", "clean", "reindex", "dpo", "kto", "eval"]
    assert configs["reindex"].update and configs["dpo"].model == configs["kto"].model == "smollm2-135m-instruct"

    y = _runnable_copy(tmp_path, tiny_model)
    assert main(["run", str(y), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert all(f"{i} (" in out for i in ids) and out.count(": would run ->") == len(ids)
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing

    rc = main(["run", str(y)])
    cap = capsys.readouterr()
    assert rc == 1  # validate quarantined what people flagged: reported as the run's problem
    assert "kgllm: problem: step clean: feedback:" in cap.err and "Problems:" in cap.out
    runs = tmp_path / "runs"
    for i in ids:
        verify_artifact(runs / i)
    flagged = {json.loads(line)["triple_id"]
               for line in (runs / "export" / "corrections" / "flags.jsonl").read_text().splitlines()}
    re_counts = read_manifest(runs / "reindex").counts
    assert re_counts["update_removed"] == read_manifest(runs / "clean").counts["flagged_by_feedback"] == len(flagged)
    before, after = (json.loads((runs / s / "report.json").read_text())["retrievers"]["hybrid"]["by_group"]
                     for s in ("eval_before", "eval"))
    assert after["feedback"]["em"] > before["feedback"]["em"]  # the loop fixed what people flagged
    cited_after = {c for line in (runs / "eval" / "predictions" / "hybrid.jsonl").read_text().splitlines()
                   for c in json.loads(line)["cited"]}
    assert not cited_after & flagged
    assert read_manifest(runs / "dpo").kind == "model.dpo" and read_manifest(runs / "kto").kind == "model.kto"
    # Unchanged since: every step is up to date.
    assert main(["run", str(y), "--dry-run"]) == 0
    assert capsys.readouterr().out.count(": up to date ->") == len(ids)


def test_vectors_read_back_from_flat_and_hnsw_indices():
    """What an update reuses: the stored vector of each live key, whichever faiss index holds it."""
    from kgllm.index.vector import VectorIndex

    rng = np.random.default_rng(0)
    v = rng.normal(size=(40, 8)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    keys = [f"k{i}" for i in range(40)]
    for threshold, kind in ((100, "flat"), (0, "hnsw")):
        vi = VectorIndex.build(keys, v, exact_threshold=threshold, recall_queries=10)
        vi.remove(["k3", "k7"])
        vi.add(["k9"], v[:1])  # replaced: the old vector is tombstoned
        assert vi.kind == kind
        np.testing.assert_array_equal(vi.vectors_of(["k0", "k9", "k39"]), v[[0, 0, 39]])
