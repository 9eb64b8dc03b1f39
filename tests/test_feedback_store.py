"""The feedback store on real databases: a SQLite file (WAL) and a private PostgreSQL on 127.0.0.1.

Every test that takes ``db_url`` runs on both backends. Writers are real threads and real processes, one
of them killed with SIGKILL while it writes; nothing it acknowledged may be missing afterwards.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import ROOT
from postgres import postgres_or_fail

from kgllm.errors import InputError, UsageError
from kgllm.feedback.store import (
    MAX_ANSWER_BYTES,
    VERSION_TABLE,
    FeedbackStore,
    UnknownAnswer,
    metadata,
    parse_url,
    resolve_db,
)
from kgllm.rdf import triple_id

S, P, OBJ = "<http://dbpedia.org/resource/Erich_Marcks>", "<http://dbpedia.org/ontology/birthPlace>", \
    "<http://dbpedia.org/resource/Berlin>"
TID = triple_id(S, P, OBJ)
INDEX_SHA = "ab" * 32
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def answer_obj(question="Where was Erich Marcks born?", text="Berlin", cited=((S, P, OBJ),)) -> dict:
    """An answer object shaped as `kgllm ask --json` returns it (the fields the store and export read)."""
    cites = [{"n": i, "id": triple_id(*t), "s": t[0], "p": t[1], "o": t[2],
              "labels": {"s": "Erich Marcks", "p": "birth place", "o": text}, "text": f"Erich Marcks birth place {text}",
              "provenance": {"source": "file", "path": "mappingbased_objects_en.ttl.xz"}}
             for i, t in enumerate(cited, 1)]
    return {"question": question, "answer": text, "answers": [], "supported": bool(cites), "shape": "one_hop",
            "retriever": "hybrid", "mode": "extractive", "citations": cites, "context": [], "sparql": None,
            "timings": {"total_ms": 12.5}}


def add(store: FeedbackStore, question="Where was Erich Marcks born?", **kw) -> str:
    return store.add_answer(question, kw.pop("answer", None) or answer_obj(question), retriever="hybrid",
                            model=kw.get("model"), model_sha256=kw.get("model_sha256"), index_sha256=INDEX_SHA)


def start_postgres() -> tuple[object, Path]:
    """A private PostgreSQL in a directory the ``postgres`` user can reach (pytest's temp root is mode 700 and
    the server runs as ``postgres`` when the tests run as root)."""
    work = Path(tempfile.mkdtemp(prefix="kgllm-pg-"))
    work.chmod(0o711)
    return postgres_or_fail(work / "pg"), work


@pytest.fixture(scope="module")
def pg():
    server, work = start_postgres()
    yield server
    server.stop()
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database: a SQLite file, or a new database on the module's PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/serve/feedback.db"
    server = request.getfixturevalue("pg")
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server.url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server.url.rsplit("/", 1)[0] + "/" + name


def run_writer(code: str, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], env=ENV, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


# ----------------------------------------------------------------------------- add and read


def test_add_and_read_back_every_kind(db_url):
    with FeedbackStore(db_url) as store:
        a = store.add_answer("Where was Erich Marcks born?", answer_obj(), retriever="hybrid",
                             model="smollm2-135m-instruct", model_sha256="CD" * 32, index_sha256=INDEX_SHA)
        assert len(a) == 32 and int(a, 16) >= 0
        ids = [store.add_feedback(a, "rating", rating=-1, user_id="ana"),
               store.add_feedback(a, "correction", correction={"term": '"Berlin"^^<http://www.w3.org/2001/XMLSchema#string>'}),
               store.add_feedback(a, "correction", correction={"text": "in Berlin"}, reason="I checked"),
               store.add_feedback(a, "flag", triple_id=TID, reason="wrong place", user_id="")]
        assert ids == sorted(ids) and len(set(ids)) == 4

        got = store.answer(a)
        assert set(got) == {"id", "question", "answer", "retriever", "model", "model_sha256", "index_sha256", "created"}
        assert got["answer"] == answer_obj() and got["model_sha256"] == "cd" * 32 and got["index_sha256"] == INDEX_SHA
        created = dt.datetime.fromisoformat(got["created"])
        assert created.utcoffset() == dt.timedelta(0)
        assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 3600
        assert store.answer(uuid.uuid4().hex) is None

        rows = list(store.iter_feedback())
        assert [r["id"] for r in rows] == ids
        assert set(rows[0]) == {"id", "answer_id", "kind", "rating", "correction", "triple_id", "reason", "user_id",
                                "created", "question", "answer", "retriever", "model", "model_sha256",
                                "index_sha256"}
        assert [r["kind"] for r in rows] == ["rating", "correction", "correction", "flag"]
        assert rows[0]["rating"] == -1 and rows[0]["user_id"] == "ana" and rows[0]["correction"] is None
        assert rows[1]["correction"] == {"term": '"Berlin"'}  # stored in the canonical form graphs use
        assert rows[2]["correction"] == {"text": "in Berlin"} and rows[2]["reason"] == "I checked"
        assert rows[3]["triple_id"] == TID and rows[3]["reason"] == "wrong place" and rows[3]["user_id"] is None
        assert all(r["answer"] == answer_obj() and r["question"] == "Where was Erich Marcks born?" for r in rows)
        assert store.counts() == {"answers": 1, "ratings": 1, "corrections": 2, "flags": 1}


# ----------------------------------------------------------------------------- bad input

LONG = "x" * 2001
BAD_FEEDBACK = [
    (dict(kind="like"), "kind must be one of rating, correction, flag"),
    (dict(kind="rating", rating=0), "rating must be +1"),
    (dict(kind="rating", rating=True), "rating must be +1"),
    (dict(kind="rating", rating=1.0), "rating must be +1"),
    (dict(kind="rating"), "rating must be +1"),
    (dict(kind="rating", rating=1, triple_id=TID), "triple_id is given only with kind 'flag'"),
    (dict(kind="correction"), "correction must be an object"),
    (dict(kind="correction", correction={"text": "a", "term": "<x>"}), "correction must have the key"),
    (dict(kind="correction", correction={"text": "  "}), "correction text is empty"),
    (dict(kind="correction", correction={"text": LONG}), "correction text is 2001 characters long; at most 2000"),
    (dict(kind="correction", correction={"term": "Berlin"}), "correction term must be one N-Triples term"),
    (dict(kind="correction", correction={"term": "<a> <b>"}), "correction term must be one N-Triples term"),
    (dict(kind="correction", correction={"term": "<x>", "label": 3}), "correction label must be a string"),
    (dict(kind="correction", correction={"text": "a\x00b"}), "contains a NUL character"),
    (dict(kind="correction", correction={"text": "\ud800"}), "not valid Unicode"),
    (dict(kind="flag", triple_id=TID), "reason is required"),
    (dict(kind="flag", triple_id=TID, reason=LONG), "reason is 2001 characters long"),
    (dict(kind="flag", triple_id="xyz", reason="r"), "triple_id must be a triple id"),
    (dict(kind="flag", triple_id="0" * 16, reason="r"), "is not one of the triples this answer cites"),
    (dict(kind="rating", rating=1, user_id="u" * 201), "user_id is 201 characters long; at most 200"),
    (dict(kind="rating", rating=1, user_id=7), "user_id must be a string"),
]


def test_bad_values_are_input_errors_that_say_what_and_store_nothing(db_url):
    with FeedbackStore(db_url) as store:
        a = add(store)
        before = store.counts()
        for kw, message in BAD_FEEDBACK:
            kw = dict(kw)
            with pytest.raises(InputError) as e:
                store.add_feedback(a, kw.pop("kind"), **kw)
            assert message in str(e.value), (kw, str(e.value))
            assert not isinstance(e.value, UnknownAnswer) and e.value.exit_code == 2
        bad_answers = [
            (dict(question=LONG), "question is 2001 characters long; at most 2000"),
            (dict(question=""), "question is empty"),
            (dict(question=None), "question is required"),
            (dict(answer=["not", "an", "object"]), "answer must be a JSON object"),
            (dict(answer={"answer": "x" * MAX_ANSWER_BYTES}), f"at most {MAX_ANSWER_BYTES} (1 MB)"),
            (dict(answer={"answer": float("nan")}), "answer is not storable JSON"),
            (dict(answer={"answer": {1, 2}}), "answer is not storable JSON"),
            (dict(index_sha256="abc"), "index_sha256 must be a sha256"),
            (dict(model_sha256=12), "model_sha256 must be a sha256"),
            (dict(retriever=""), "retriever is empty"),
        ]
        for kw, message in bad_answers:
            args = {"question": "q?", "answer": answer_obj(), "retriever": "hybrid", "model": None,
                    "model_sha256": None, "index_sha256": INDEX_SHA, **kw}
            with pytest.raises(InputError) as e:
                store.add_answer(args.pop("question"), args.pop("answer"), **args)
            assert message in str(e.value), (kw, str(e.value))
        assert store.counts() == before


def test_unknown_answer_ids(db_url):
    with FeedbackStore(db_url) as store:
        add(store)
        for bad in (uuid.uuid4().hex, "nope", "x" * 500):
            with pytest.raises(UnknownAnswer, match="unknown answer id"):
                store.add_feedback(bad, "rating", rating=1)
        with pytest.raises(UnknownAnswer):
            store.add_feedback(uuid.uuid4().hex, "flag", triple_id=TID, reason="r")
        with pytest.raises(InputError, match="answer_id must be a string"):
            store.add_feedback(None, "rating", rating=1)
        assert issubclass(UnknownAnswer, InputError)
        assert store.counts()["ratings"] == 0


# ----------------------------------------------------------------------------- concurrency and durability


def test_sixteen_writer_threads_lose_nothing(db_url):
    per_thread = 25
    results: list[tuple[str, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    with FeedbackStore(db_url) as store:
        start = threading.Barrier(16)

        def work(t: int) -> None:
            try:
                start.wait()
                for i in range(per_thread):
                    a = add(store, f"Question {t}-{i}?")
                    f = store.add_feedback(a, "rating", rating=1 if i % 2 else -1, user_id=f"user{t}")
                    with lock:
                        results.append((a, f))
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(16)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors, errors[:3]
        assert len(results) == 16 * per_thread
        rows = {r["id"]: r["answer_id"] for r in store.iter_feedback()}
        assert rows == {f: a for a, f in results}
        assert store.counts() == {"answers": 16 * per_thread, "ratings": 16 * per_thread, "corrections": 0, "flags": 0}


WRITER = """
import sys
from kgllm.feedback.store import FeedbackStore
url, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = FeedbackStore(url)
i = 0
while n < 0 or i < n:
    a = store.add_answer(f"{name} question {i}?", {"answer": "x", "citations": []}, retriever="hybrid", model=None,
                         model_sha256=None, index_sha256="0" * 64)
    f = store.add_feedback(a, "correction", correction={"text": f"answer {i}"})
    print(a, f, flush=True)
    i += 1
store.close()
"""


def test_four_writer_processes_on_a_new_sqlite_file_lose_nothing(tmp_path):
    # A new file: the four also race to create the schema (one migrates, the others find it at head).
    url = f"sqlite:///{tmp_path}/feedback.db"
    procs = [run_writer(WRITER, url, f"p{k}", "40") for k in range(4)]
    acked = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        acked += [line.split() for line in out.splitlines()]
    assert len(acked) == 160
    with FeedbackStore(url) as store:
        rows = {r["id"]: r["answer_id"] for r in store.iter_feedback()}
        assert rows == {int(f): a for a, f in acked}
        assert store.counts() == {"answers": 160, "ratings": 0, "corrections": 160, "flags": 0}
        assert store.schema_version() == "0001"


def test_a_writer_killed_mid_stream_loses_nothing_it_acknowledged(db_url):
    FeedbackStore(db_url).close()  # the schema exists: the writer spends its time writing
    p = run_writer(WRITER, db_url, "killed", "-1")
    acked = []
    while len(acked) < 60:
        line = p.stdout.readline()
        assert line, p.stderr.read()[-2000:]
        acked.append(line.split())
    os.kill(p.pid, signal.SIGKILL)
    rest = p.stdout.read()
    p.wait(30)
    assert p.returncode == -signal.SIGKILL
    acked += [line.split() for line in rest.split("\n")[:-1]]  # whole lines only: each one was acknowledged
    with FeedbackStore(db_url) as store:  # opens cleanly (SQLite recovers its WAL)
        stored = {r["id"]: r["answer_id"] for r in store.iter_feedback()}
        for a, f in acked:
            assert stored.get(int(f)) == a
            assert store.answer(a) is not None
        after = store.add_feedback(add(store), "rating", rating=1)
        assert after > max(int(f) for _, f in acked)
    if db_url.startswith("sqlite"):
        path = db_url[len("sqlite:///"):]
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# ----------------------------------------------------------------------------- restart and migrations


def test_restart_keeps_everything_and_rerunning_migrations_is_a_no_op(db_url, caplog):
    caplog.set_level(logging.INFO, logger="alembic")
    with FeedbackStore(db_url) as store:
        a = add(store)
        f = store.add_feedback(a, "flag", triple_id=TID, reason="wrong")
        first = store.answer(a)
        rows = list(store.iter_feedback())
    assert "Running upgrade  -> 0001" in caplog.text
    caplog.clear()
    for _ in range(2):  # a restart, then another
        with FeedbackStore(db_url) as store:
            assert store.answer(a) == first
            assert list(store.iter_feedback()) == rows
            assert store.schema_version() == "0001"
    assert "Running upgrade" not in caplog.text
    engine = sa.create_engine(parse_url(db_url))
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sa.table(VERSION_TABLE))).scalar_one() == 1
        # The migrated schema is the one the store's Core tables describe (Alembic's own comparison).
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        diffs = compare_metadata(MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}), metadata)
        assert diffs == [], diffs
    engine.dispose()
    assert f == rows[0]["id"]


def test_sqlite_runs_in_wal_mode_with_full_sync_and_foreign_keys(tmp_path):
    url = FeedbackStore.default_url(tmp_path / "serve")
    assert url == f"sqlite:///{(tmp_path / 'serve' / 'feedback.db').resolve()}"
    with FeedbackStore(url) as store:
        add(store)
        with store._engine.connect() as conn:
            pragma = {k: conn.exec_driver_sql(f"PRAGMA {k}").scalar() for k in
                      ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}
    assert pragma == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1, "busy_timeout": 30000}
    # Foreign keys hold in the database itself, not only in the store's checks.
    with sqlite3.connect(tmp_path / "serve" / "feedback.db") as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO kgllm_feedback (answer_id, kind, rating, created) "
                         "VALUES ('nope', 'rating', 1, '2024-01-01')")
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO kgllm_feedback (answer_id, kind, rating, created) "
                         "VALUES ((SELECT id FROM kgllm_answers), 'rating', 5, '2024-01-01')")


# ----------------------------------------------------------------------------- URLs


def test_urls_paths_and_refusals(tmp_path):
    for bad in ("sqlite://", "sqlite:///:memory:"):
        with pytest.raises(UsageError, match="in-memory"):
            FeedbackStore(bad)
    with pytest.raises(UsageError, match="not mysql"):
        FeedbackStore("mysql://u@h/db")
    with pytest.raises(UsageError, match="not a database URL"):
        FeedbackStore("::nonsense::")
    assert parse_url("postgresql://kgllm:secret@127.0.0.1:5/x").drivername == "postgresql+psycopg"
    with pytest.raises(InputError, match="no such database file"):
        FeedbackStore(f"sqlite:///{tmp_path}/missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()
    # What users name with --db: a URL, a SQLite file, a serve directory.
    (tmp_path / "serve").mkdir()
    FeedbackStore(FeedbackStore.default_url(tmp_path / "serve")).close()
    assert resolve_db(tmp_path / "serve") == FeedbackStore.default_url(tmp_path / "serve")
    assert resolve_db(str(tmp_path / "serve" / "feedback.db")) == FeedbackStore.default_url(tmp_path / "serve")
    assert resolve_db("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(UsageError, match="without feedback.db"):
        resolve_db(tmp_path)


def test_a_postgresql_that_is_down_is_a_clear_error():
    from postgres import free_port

    from kgllm.feedback.store import StoreUnavailable

    with pytest.raises(StoreUnavailable, match=r"feedback database postgresql\+psycopg://kgllm:\*\*\*@127.0.0.1"):
        FeedbackStore(f"postgresql+psycopg://kgllm:secret@127.0.0.1:{free_port()}/kgllm", busy_timeout=2)


def test_store_answers_json_round_trip_unicode(db_url):
    with FeedbackStore(db_url) as store:
        obj = answer_obj("Où est né Erich Marcks ? 漢字", "Berlin 🇩🇪")
        a = add(store, "Où est né Erich Marcks ? 漢字", answer=obj)
        assert store.answer(a)["answer"] == json.loads(json.dumps(obj))
        assert store.answer(a)["question"] == "Où est né Erich Marcks ? 漢字"
