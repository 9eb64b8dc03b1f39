"""Feedback export and import on real databases, with real DBpedia triples and trl on the tiny model.

The scenario: answers citing real triples of the bundled DBpedia sample, with ratings (agreeing, outvoted,
tied), corrections (graph terms present and absent, free text, one equal to the answer, one repeated) and
flags (one triple flagged twice). Its export must load in ``datasets``, train trl's DPOTrainer and
KTOTrainer, give a readable corrections graph, and count every piece of feedback exactly once.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from conftest import cli_error
from postgres import postgres_or_fail

from kgllm.artifacts import read_manifest, verify_artifact
from kgllm.cli import main
from kgllm.feedback.export import normalize_question, split_of
from kgllm.feedback.store import FeedbackStore
from kgllm.rdf import DBR, iri, iter_graph, triple_id

PREDICATES = {"hubAirport": "hub airport", "location": "location", "parentCompany": "parent company",
              "industry": "industry", "headquarter": "headquarters", "assembly": "assembly", "type": "type",
              "subsidiary": "subsidiary", "ingredient": "ingredient"}
NOWHERE = iri(DBR + "Nowhere_Land_Of_Nothing")


def _label(term: str) -> str:
    return term.rsplit("/", 1)[-1][:-1].replace("_", " ")


@pytest.fixture(scope="module")
def facts(dbpedia_graph):
    """Nine real triples with distinct (subject, predicate) and an IRI object, plus, for the first, another
    object of the same predicate that is in the graph (the 'right' answer a person picks)."""
    chosen, seen, objects = [], set(), []
    for s, p, o in iter_graph(dbpedia_graph):
        name = p[1:-1].rsplit("/", 1)[-1]
        if name in PREDICATES and o.startswith("<http://dbpedia.org/resource/"):
            objects.append(o)
            if (s, p) not in seen and len(chosen) < 9:
                seen.add((s, p))
                chosen.append((s, p, o, f"What is the {PREDICATES[name]} of {_label(s)}?"))
    assert len(chosen) == 9
    other = next(o for o in objects if o != chosen[0][2])
    return {"facts": chosen, "other": other}


def record(fact, feedback, user_id=None, question=None) -> dict:
    s, p, o, q = fact
    q = question or q
    answer = {"question": q, "answer": _label(o), "answers": [{"term": o, "label": _label(o), "kind": "iri"}],
              "supported": True, "shape": "one_hop", "retriever": "hybrid", "mode": "extractive",
              "citations": [{"n": 1, "id": triple_id(s, p, o), "s": s, "p": p, "o": o,
                             "labels": {"s": _label(s), "p": "p", "o": _label(o)}, "text": f"{_label(s)} {_label(o)}",
                             "provenance": {"source": "file", "path": "mappingbased_objects_en.ttl.xz"}}],
              "context": [], "sparql": None, "timings": {"total_ms": 20.0}}
    line = {"question": q, "retriever": "hybrid", "answer": answer, "feedback": feedback}
    if user_id:
        line["user_id"] = user_id
    return line


def scenario(facts) -> list[dict]:
    f, other = facts["facts"], facts["other"]
    tid = {i: triple_id(*f[i][:3]) for i in range(9)}
    return [
        # 0: wrong; the right object picked from the graph; the cited triple flagged.
        record(f[0], [{"kind": "rating", "rating": -1},
                      {"kind": "correction", "correction": {"term": other}},
                      {"kind": "flag", "triple_id": tid[0], "reason": "not its hub"}], user_id="ana"),
        # 1: wrong, corrected in free text.
        record(f[1], [{"kind": "rating", "rating": -1}, {"kind": "correction", "correction": {"text": "Somewhere Else"}}]),
        # 2: right, twice (one KTO row, one merged rating).
        record(f[2], [{"kind": "rating", "rating": 1}, {"kind": "rating", "rating": 1, "user_id": "bo"}]),
        # 3: a tie: skipped as conflicting.
        record(f[3], [{"kind": "rating", "rating": 1}, {"kind": "rating", "rating": -1}]),
        # 4: a term that is in no graph: rejected when graphs are given.
        record(f[4], [{"kind": "correction", "correction": {"term": NOWHERE, "label": "Nowhere"}}]),
        # 5: two down, one up: one KTO row labelled false, one merged, one outvoted.
        record(f[5], [{"kind": "rating", "rating": -1}, {"kind": "rating", "rating": -1}, {"kind": "rating", "rating": 1}]),
        # 6: the same triple flagged twice by two people.
        record(f[6], [{"kind": "flag", "triple_id": tid[6], "reason": "outdated"},
                      {"kind": "flag", "triple_id": tid[6], "reason": "wrong company", "user_id": "cy"}]),
        # 7: a "correction" that says what the answer said.
        record(f[7], [{"kind": "correction", "correction": {"text": _label(f[7][2])}}]),
        # 8: corrected in free text.
        record(f[8], [{"kind": "correction", "correction": {"text": "Another Place"}}]),
        # 0 again, asked again (other spacing and case): the same correction, merged into the first pair.
        record(f[0], [{"kind": "correction", "correction": {"term": other}}],
               question="  " + f[0][3].upper().replace(" ", "  ")),
        # an answer nobody gave feedback on.
        record(f[1], []),
    ]


# Every piece of feedback of the scenario, and where each one goes (with the graph to verify against).
EXPECTED = {"answers": 10, "feedback": 18, "ratings": 9, "corrections": 6, "flags": 3, "dpo_pairs": 3, "kto_rows": 4,
            "flagged_triples": 2, "merged": 4, "skipped": 5, "corrections_verified": 2, "corrections_rejected": 1,
            "corrections_unverifiable": 0, "corrections_text": 3}
SKIPPED = {"conflicting ratings": 2, "correction equals the answer": 1, "corrected term not in the graphs": 1,
           "outvoted rating": 1}


def fill(store: FeedbackStore, records: list[dict]) -> None:
    for r in records:
        a = store.add_answer(r["question"], r["answer"], retriever=r["retriever"], model=None, model_sha256=None,
                             index_sha256="12" * 32)
        for fb in r["feedback"]:
            kw = {k: v for k, v in fb.items() if k != "kind"}
            kw.setdefault("user_id", r.get("user_id"))
            store.add_feedback(a, fb["kind"], **kw)


def write_recorded(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


@pytest.fixture
def sqlite_db(tmp_path, facts) -> str:
    url = f"sqlite:///{tmp_path}/serve/feedback.db"
    with FeedbackStore(url) as store:
        fill(store, scenario(facts))
    return url


# ----------------------------------------------------------------------------- the export


def test_export_counts_add_up_and_files_load_in_datasets(sqlite_db, dbpedia_graph, tmp_path, facts):
    from datasets import Dataset, load_dataset

    out = tmp_path / "export"
    rc = main(["feedback", "export", "--db", sqlite_db, "--graph", str(dbpedia_graph), "--out", str(out),
               "--validation", "0.5"])
    assert rc == 0
    man = verify_artifact(out)  # every file, the nested corrections/ artifact's too, matches its sha256
    assert man.kind == "corpus.feedback" and not man.problems
    c = man.counts
    assert {k: c[k] for k in EXPECTED} == EXPECTED
    assert c["skipped_reasons"] == SKIPPED
    assert c["merged_by_kind"] == {"ratings": 2, "corrections": 1, "flags": 1}
    assert c["ratings"] + c["corrections"] + c["flags"] == c["feedback"] == \
        c["dpo_pairs"] + c["kto_rows"] + c["flagged_triples"] + c["merged"] + c["skipped"]
    assert man.extra["db"] == sqlite_db and man.extra["store_counts"]["answers"] == 11
    assert [i["kind"] for i in man.inputs] == ["graph"]
    assert not (out / "pretrain").exists() and not (out / "sft").exists()

    rows = {part: {split: read_jsonl(out / part / f"{split}.jsonl") for split in ("train", "validation")}
            for part in ("dpo", "kto")}
    for part, fields in (("dpo", {"id", "prompt", "chosen", "rejected"}), ("kto", {"id", "prompt", "completion", "label"})):
        every = rows[part]["train"] + rows[part]["validation"]
        assert len(every) == c[f"{part}_pairs" if part == "dpo" else "kto_rows"]
        assert all(fields <= set(r) for r in every)
        for split in ("train", "validation"):
            assert len(rows[part][split]) == c[f"{part}_{split}"]
            assert all(split_of(r["prompt"], 0.5) == split for r in rows[part][split])
            ds = Dataset.from_json(str(out / part / f"{split}.jsonl")) if rows[part][split] else None
            assert ds is None or ds.num_rows == len(rows[part][split])
        loaded = load_dataset("json", data_files={s: str(out / part / f"{s}.jsonl") for s in ("train", "validation")
                                                  if rows[part][s]})
        assert sum(d.num_rows for d in loaded.values()) == len(every)
    # No question in two splits, across both formats.
    split_by_q: dict[str, set] = {}
    for part in rows.values():
        for split, rs in part.items():
            for r in rs:
                split_by_q.setdefault(normalize_question(r["prompt"]), set()).add(split)
    assert all(len(v) == 1 for v in split_by_q.values())

    f, other = facts["facts"], facts["other"]
    dpo = {r["prompt"]: r for r in rows["dpo"]["train"] + rows["dpo"]["validation"]}
    verified = dpo[f[0][3]]
    assert verified["rejected"] == _label(f[0][2]) and verified["term"] == other
    assert verified["verification"] == "verified" and len(verified["feedback_ids"]) == 2
    assert verified["chosen"] != _label(f[0][2]) and verified["chosen"]  # the graph's label of the term
    assert dpo[f[1][3]]["chosen"] == "Somewhere Else" and dpo[f[1][3]]["verification"] == "text"
    kto = {r["prompt"]: r for r in rows["kto"]["train"] + rows["kto"]["validation"]}
    assert kto[f[2][3]]["label"] is True and (kto[f[2][3]]["up"], kto[f[2][3]]["down"]) == (2, 0)
    assert kto[f[5][3]]["label"] is False and (kto[f[5][3]]["up"], kto[f[5][3]]["down"]) == (1, 2)
    assert kto[f[0][3]]["completion"] == _label(f[0][2]) and f[3][3] not in kto and f[4][3] not in dpo


def test_corrections_are_a_complete_graph_artifact_with_the_reasons(sqlite_db, tmp_path, facts):
    out = tmp_path / "export"
    assert main(["feedback", "export", "--db", sqlite_db, "--out", str(out)]) == 0
    corr = out / "corrections"
    man = read_manifest(corr, kind="graph")
    verify_artifact(corr)
    f = facts["facts"]
    want = {f[0][:3], f[6][:3]}
    assert set(iter_graph(corr)) == want and man.counts["triples"] == 2 and man.counts["flags"] == 3
    flags = read_jsonl(corr / "flags.jsonl")
    assert [r["triple_id"] for r in flags] == sorted(triple_id(*t) for t in want)
    by_id = {r["triple_id"]: r for r in flags}
    assert by_id[triple_id(*f[6][:3])]["reasons"] == ["outdated", "wrong company"]
    assert len(by_id[triple_id(*f[6][:3])]["feedback_ids"]) == 2
    assert by_id[triple_id(*f[0][:3])]["reasons"] == ["not its hub"]
    assert all((r["s"], r["p"], r["o"]) in want for r in flags)
    assert man.extra["shards"][0]["provenance"]["source"] == "feedback"
    # The corrections graph is also a valid input for everything that reads graphs.
    from kgllm.rdf import count_triples

    assert count_triples(corr) == 2


def test_term_corrections_are_verified_against_the_graphs(sqlite_db, dbpedia_graph, tmp_path, facts):
    with_graph = tmp_path / "with"
    assert main(["feedback", "export", "--db", sqlite_db, "--graph", str(dbpedia_graph), "--out", str(with_graph)]) == 0
    without = tmp_path / "without"
    assert main(["feedback", "export", "--db", sqlite_db, "--out", str(without)]) == 0
    c1, c2 = read_manifest(with_graph).counts, read_manifest(without).counts
    assert (c1["corrections_verified"], c1["corrections_rejected"], c1["corrections_unverifiable"]) == (2, 1, 0)
    assert (c2["corrections_verified"], c2["corrections_rejected"], c2["corrections_unverifiable"]) == (0, 0, 3)
    assert c2["dpo_pairs"] == c1["dpo_pairs"] + 1  # the unverifiable term is kept without a graph
    rows = read_jsonl(without / "dpo" / "train.jsonl") + read_jsonl(without / "dpo" / "validation.jsonl")
    nowhere = next(r for r in rows if r["term"] == NOWHERE)
    assert nowhere["chosen"] == "Nowhere" and nowhere["verification"] == "unverifiable"  # the label the person gave


def test_an_empty_database_exits_1_and_writes_nothing(tmp_path, capsys, facts):
    url = f"sqlite:///{tmp_path}/empty.db"
    with FeedbackStore(url) as store:  # answers, but no feedback on any
        fill(store, [record(facts["facts"][0], [])])
    out = tmp_path / "export"
    assert main(["feedback", "export", "--db", url, "--out", str(out)]) == 1
    assert "no feedback to export (1 answers" in cli_error(capsys)
    assert not out.exists()
    assert main(["feedback", "export", "--db", str(tmp_path / "missing.db"), "--out", str(out)]) == 2
    assert "no such database file" in cli_error(capsys)
    assert not out.exists() and not (tmp_path / "missing.db").exists()
    assert main(["feedback", "export", "--out", str(out)]) == 2
    assert "no database" in cli_error(capsys)


# ----------------------------------------------------------------------------- trl accepts the rows


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import tiny

    d = tmp_path_factory.mktemp("tiny")
    corpus = tiny.write_tiny_corpus(d / "corpus")
    tok = tiny.train_tiny_tokenizer(corpus, d / "tokenizer")
    return tiny.write_tiny_model(tok, d / "model")


@pytest.fixture
def exported(sqlite_db, tmp_path) -> Path:
    out = tmp_path / "export"
    assert main(["feedback", "export", "--db", sqlite_db, "--out", str(out), "--validation", "0"]) == 0
    return out


def _train_args(cls, out: Path, **kw):
    return cls(output_dir=str(out), max_steps=2, per_device_train_batch_size=2, learning_rate=1e-3, use_cpu=True,
               bf16=False, fp16=False, report_to=[], save_strategy="no", logging_steps=1, seed=0,
               dataloader_num_workers=0, **kw)


def _model(path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32), AutoTokenizer.from_pretrained(str(path))


def test_trl_dpo_trainer_trains_on_the_exported_pairs(exported, tiny_model, tmp_path):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    train = Dataset.from_json(str(exported / "dpo" / "train.jsonl"))  # the rows as written, every column
    assert train.num_rows == 4  # no graph given: the unverifiable term correction is kept
    model, tok = _model(tiny_model)
    trainer = DPOTrainer(model=model, args=_train_args(DPOConfig, tmp_path / "dpo", max_length=64, beta=0.1),
                         processing_class=tok, train_dataset=train)
    result = trainer.train()
    assert trainer.state.global_step == 2 and math.isfinite(result.training_loss)
    assert any("rewards/accuracies" in e for e in trainer.state.log_history)


def test_trl_kto_trainer_trains_on_the_exported_ratings(exported, tiny_model, tmp_path):
    from datasets import Dataset
    from trl import KTOConfig, KTOTrainer

    train = Dataset.from_json(str(exported / "kto" / "train.jsonl"))
    assert train.num_rows == 4 and sorted(train["label"]) == [False, False, False, True]
    model, tok = _model(tiny_model)
    trainer = KTOTrainer(model=model, args=_train_args(KTOConfig, tmp_path / "kto", max_length=64, beta=0.1),
                         processing_class=tok, train_dataset=train)
    result = trainer.train()
    assert trainer.state.global_step == 2 and math.isfinite(result.training_loss)


# ----------------------------------------------------------------------------- the recorded file


def test_import_a_recorded_file_then_export_from_its_artifact(tmp_path, dbpedia_graph, facts, capsys):
    rec = write_recorded(tmp_path / "recorded.jsonl", scenario(facts))
    db = tmp_path / "feedback-db"
    assert main(["feedback", "import", str(rec), "--out", str(db)]) == 0
    man = verify_artifact(db)
    assert man.kind == "feedback.db" and {f["path"] for f in man.files} == {"feedback.db", "imported.jsonl"}
    assert man.counts == {"lines": 11, "answers": 11, "feedback": 18, "ratings": 9, "corrections": 6, "flags": 3}
    imported = read_jsonl(db / "imported.jsonl")
    assert [r["line"] for r in imported] == list(range(1, 12)) and sum(len(r["feedback_ids"]) for r in imported) == 18
    with FeedbackStore(f"sqlite:///{db / 'feedback.db'}") as store:
        assert store.counts() == {"answers": 11, "ratings": 9, "corrections": 6, "flags": 3}
        first = store.answer(imported[0]["answer_id"])
        assert first["answer"] == scenario(facts)[0]["answer"] and first["index_sha256"] == ""
        assert next(store.iter_feedback())["user_id"] == "ana"
    out = tmp_path / "export"
    assert main(["feedback", "export", "--db", str(db), "--graph", str(dbpedia_graph), "--out", str(out)]) == 0
    exp = read_manifest(out)
    assert {k: exp.counts[k] for k in EXPECTED} == EXPECTED
    assert [i["kind"] for i in exp.inputs] == ["feedback.db", "graph"] and exp.config["db"] is None
    verify_artifact(db)  # reading the artifact's database left it as it was
    assert main(["feedback", "import", str(rec), "--db", str(db)]) == 2  # and nothing writes into it
    assert "an import never writes into an artifact" in cli_error(capsys)
    verify_artifact(db)


def test_import_refuses_a_bad_line_naming_file_and_line_and_stores_nothing(tmp_path, capsys, facts):
    records = scenario(facts)
    records[2]["feedback"][1]["rating"] = 5
    rec = write_recorded(tmp_path / "recorded.jsonl", records)
    out = tmp_path / "db"
    assert main(["feedback", "import", str(rec), "--out", str(out)]) == 2
    assert f"{rec}:3: feedback[1]: rating must be +1 (right) or -1 (wrong); got 5" in cli_error(capsys)
    assert not out.exists()
    url = f"sqlite:///{tmp_path}/target.db"
    assert main(["feedback", "import", str(rec), "--db", url]) == 2
    cli_error(capsys)
    assert not (tmp_path / "target.db").exists()  # nothing stored: the file is checked before the database opens
    bad = [
        ('{"question": "q?", "retriever": "hybrid", "answer": {"answer": "x"}, "feedback": [], "extra": 1}',
         ":1: unknown key 'extra'"),
        ('{"question": "q?", "retriever": "hybrid", "answer": {"answer": "x"}, "feedback": '
         '[{"kind": "flag", "triple_id": "0123456789abcdef", "reason": "r"}]}',
         ":1: feedback[0]: triple_id 0123456789abcdef is not one of the triples this answer cites (none)"),
        ('{"question": "q?", "retriever": "hybrid", "answer": {"answer": "x"}, "feedback": {}}',
         ":1: feedback must be a list"),
        ("not json", ":1: invalid JSON"),
    ]
    for line, message in bad:
        (tmp_path / "bad.jsonl").write_text(line + "\n")
        assert main(["feedback", "import", str(tmp_path / "bad.jsonl"), "--out", str(out)]) == 2
        assert message in cli_error(capsys)
    (tmp_path / "empty.jsonl").write_text("\n")
    assert main(["feedback", "import", str(tmp_path / "empty.jsonl"), "--out", str(out)]) == 1
    assert "no recorded answers" in cli_error(capsys)
    assert not out.exists()
    assert main(["feedback", "import", str(tmp_path / "empty.jsonl"), "--out", str(out), "--allow-empty"]) == 0
    assert read_manifest(out).counts["answers"] == 0 and (out / "feedback.db").is_file()
    assert main(["feedback", "import", str(rec)]) == 2
    assert "give --db URL" in cli_error(capsys)


def test_pipeline_imports_then_exports_and_skips_when_unchanged(tmp_path, dbpedia_graph, facts):
    from kgllm.pipeline import load_pipeline

    write_recorded(tmp_path / "recorded.jsonl", scenario(facts))
    y = tmp_path / "loop.yaml"
    y.write_text(f"""
workdir: runs
steps:
  - id: feedback
    stage: feedback.import
    config: {{file: recorded.jsonl}}
  - id: export
    stage: feedback.export
    inputs: [feedback, {dbpedia_graph}]
    config: {{validation: 0.2}}
""")
    first = load_pipeline(y).run()
    assert [(r.id, r.status) for r in first] == [("feedback", "ran"), ("export", "ran")]
    man = read_manifest(tmp_path / "runs" / "export", kind="corpus.feedback")
    assert {k: man.counts[k] for k in EXPECTED} == EXPECTED
    again = load_pipeline(y).run()
    assert [r.status for r in again] == ["skipped", "skipped"]


def test_python_api_runs_both_stages(tmp_path, dbpedia_graph, facts):
    import kgllm.feedback

    rec = write_recorded(tmp_path / "recorded.jsonl", scenario(facts))
    db = kgllm.feedback.import_recorded(rec, out=tmp_path / "db")
    assert db.kind == "feedback.db" and db.counts["feedback"] == 18
    ex = kgllm.feedback.export([db, dbpedia_graph], out=tmp_path / "export", validation=0.5, seed=3)
    assert ex.kind == "corpus.feedback" and {k: ex.counts[k] for k in EXPECTED} == EXPECTED
    assert ex.manifest.config == {"db": None, "validation": 0.5, "seed": 3}
    from kgllm.errors import ConfigError

    with pytest.raises(ConfigError, match="validation must be in \\[0, 1\\)"):
        kgllm.feedback.export([db], out=tmp_path / "x", validation=1.0)


# ----------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="module")
def pg():
    work = Path(tempfile.mkdtemp(prefix="kgllm-pg-"))
    work.chmod(0o711)  # the server runs as `postgres`; pytest's temp root is mode 700
    server = postgres_or_fail(work / "pg")
    yield server
    server.stop()
    shutil.rmtree(work, ignore_errors=True)


def test_postgresql_import_export_and_counts(pg, tmp_path, dbpedia_graph, facts, capsys):
    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(pg.url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    url = pg.url.rsplit("/", 1)[0] + "/" + name
    rec = write_recorded(tmp_path / "recorded.jsonl", scenario(facts))
    assert main(["feedback", "import", str(rec), "--db", url]) == 0
    assert "imported into postgresql+psycopg://postgres@127.0.0.1" in capsys.readouterr().out
    assert main(["feedback", "counts", "--db", url]) == 0
    assert json.loads(capsys.readouterr().out) == {"answers": 11, "ratings": 9, "corrections": 6, "flags": 3}
    out = tmp_path / "export"
    assert main(["feedback", "export", "--db", url, "--graph", str(dbpedia_graph), "--out", str(out)]) == 0
    man = read_manifest(out)
    assert {k: man.counts[k] for k in EXPECTED} == EXPECTED and man.config["db"] == url
    # The same feedback through SQLite exports the same rows (ids aside: they are the databases' own).
    via_sqlite = tmp_path / "sqlite-export"
    db = tmp_path / "db"
    assert main(["feedback", "import", str(rec), "--out", str(db)]) == 0
    assert main(["feedback", "export", "--db", str(db), "--graph", str(dbpedia_graph), "--out", str(via_sqlite)]) == 0

    def content(d: Path) -> list:
        keep = ("prompt", "chosen", "rejected", "completion", "label")
        return sorted(json.dumps({k: r[k] for k in keep if k in r}, sort_keys=True)
                      for part in ("dpo", "kto") for s in ("train", "validation") for r in read_jsonl(d / part / f"{s}.jsonl"))

    assert content(out) == content(via_sqlite)
