"""``kgllm serve`` on FastAPI + uvicorn: the HTTP API (answers, input limits, rate limit, feedback with its error
codes, API key, OpenAPI docs, Prometheus metrics, access log) on a real index with a real feedback store
(SQLite; PostgreSQL through tests/postgres.py), provenance without the server's paths, ``kgllm serve`` as a
real process (two workers) killed with SIGKILL mid-feedback and restarted on the same serve directory, and
the web page in a real headless browser (Debian chromium driven by selenium): a person asks, sees the
answer, the cited triples and the subgraph, rates the answer, corrects it and flags a cited triple."""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kgllm.artifacts import read_manifest
from kgllm.feedback.store import FeedbackStore
from kgllm.rdf import DBO, DBR, triple_id

ROOT = Path(__file__).resolve().parent.parent
KEY = "k3y-for-tests"
SAAB = "In which city is the manufacturer of the Saab 9000 located?"


# ----------------------------------------------------------------------------- servers and requests

def start(srv):
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    return t


def stop(srv, t) -> None:
    srv.shutdown()
    srv.server_close()
    t.join(10)


def _running_server(answerer, rag_index, directory: Path, **kw):
    """A real server on a free port with a SQLite store in ``directory``; ``server.store`` is that store."""
    from kgllm.ask.serve import make_server

    store = FeedbackStore(FeedbackStore.default_url(directory))
    srv = make_server(answerer, "127.0.0.1", 0, rate_per_minute=1000, store=store,
                      index_sha256=read_manifest(rag_index).content_sha256, **kw)
    srv.store = store
    t = start(srv)
    yield srv
    stop(srv, t)
    store.close()


@pytest.fixture(scope="module")
def server(answerer, rag_index, tmp_path_factory):
    """The open server (no API key)."""
    yield from _running_server(answerer, rag_index, tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def keyed(answerer, rag_index, tmp_path_factory):
    """A server whose feedback endpoints need the API key."""
    yield from _running_server(answerer, rag_index, tmp_path_factory.mktemp("serve-keyed"), api_key=KEY)


def call(url: str, path: str, body=None, *, ctype: str = "application/json", method: str | None = None,
         headers: dict | None = None, timeout: float = 60) -> tuple[int, object, dict]:
    """(status, JSON body or text, headers: case-insensitive) of one request; a dict/list body is sent as JSON."""
    data = None if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    hdrs = dict(headers or {})
    if data is not None:
        hdrs.setdefault("Content-Type", ctype)
    req = urllib.request.Request(url.rstrip("/") + path, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            code, raw, h = r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        code, raw, h = e.code, e.read(), e.headers
    ct = h.get("content-type", "")
    return code, json.loads(raw) if "json" in ct else raw.decode("utf-8"), h


def post(url: str, body, ctype: str = "application/json") -> tuple[int, dict, dict]:
    return call(url, "/ask", body, ctype=ctype)


def bearer(key: str = KEY) -> dict:
    return {"Authorization": f"Bearer {key}"}


# ----------------------------------------------------------------------------- /ask, limits

def test_post_ask_returns_the_answer_object(server, rag_index):
    from kgllm.ask.serve import AskOut

    code, out, _ = post(server.url, {"question": "What is the hub airport of Lufthansa?"})
    assert code == 200 and out["supported"] and out["retriever"] == "hybrid"
    assert {c["id"] for c in out["citations"]} == {
        triple_id(f"<{DBR}Lufthansa>", f"<{DBO}hubAirport>", f"<{DBR}{x}>") for x in ("Frankfurt_Airport",
                                                                                     "Munich_Airport")}
    AskOut.model_validate(out)  # the response model /docs shows is what the server sends
    # The answer is stored: the same object (less its id), the question, the retriever and the index's hash.
    stored = server.store.answer(out["answer_id"])
    assert stored["question"] == out["question"] and stored["retriever"] == "hybrid"
    assert stored["answer"] == {k: v for k, v in out.items() if k != "answer_id"}
    assert stored["index_sha256"] == read_manifest(rag_index).content_sha256 and stored["model"] is None
    code, out, _ = post(server.url, {"question": "What is the boiling point of Lufthansa?", "retriever": "graph"})
    assert code == 200 and out["answer"] == "not in the graph" and server.store.answer(out["answer_id"])
    code, health, _ = call(server.url, "/health")
    assert code == 200 and health["status"] == "ok" and health["triples"] > 100


def test_input_limits(server):
    assert post(server.url, {"question": "x" * 501})[0] == 400
    assert post(server.url, {"question": "   "})[0] == 400
    code, body, _ = post(server.url, {"question": "KLM?", "retriever": "oracle"})
    assert code == 400 and "retriever" in body["error"]
    assert post(server.url, {"q": "KLM?"})[0] == 400
    assert post(server.url, ["KLM?"])[0] == 400
    code, body, _ = post(server.url, b"{not json")
    assert code == 400 and body["error"].startswith("body is not JSON")
    assert post(server.url, b'{"question": "\xff\xfe"}')[0] == 400  # not UTF-8
    assert post(server.url, b"question=KLM", "application/x-www-form-urlencoded")[0] == 415
    assert post(server.url, {"question": "a" * 9000})[0] == 413
    # A chunked body (no Content-Length) is cut off at the limit too.
    chunks = iter([b'{"question": "', b"a" * 6000, b"a" * 6000, b'"}'])
    req = urllib.request.Request(server.url + "ask", data=chunks, headers={"Content-Type": "application/json",
                                                                           "Transfer-Encoding": "chunked"})
    try:
        urllib.request.urlopen(req, timeout=30)
        raise AssertionError("a chunked body over the limit was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 413 and "at most 8192 bytes" in json.loads(e.read())["error"]
    except (urllib.error.URLError, ConnectionResetError, BrokenPipeError) as e:
        # The server answers 413 and closes as soon as the limit is passed; a client still sending the
        # rest of its chunks may see the connection reset before it reads that answer (a race on a busy
        # machine). Either way the body was cut off.
        reason = getattr(e, "reason", e)
        assert isinstance(reason, (ConnectionResetError, BrokenPipeError)), e
    code, body, _ = call(server.url, "/nope")
    assert code == 404 and "no such page" in body["error"]
    assert call(server.url, "/ask", method="GET")[0] == 405


def test_rate_limit_per_client(server):
    from kgllm.ask.serve import RateLimiter

    rl = RateLimiter(2, window=60)
    assert rl.check("a", 0.0) == 0 and rl.check("a", 1.0) == 0
    assert rl.check("a", 2.0) == pytest.approx(58.0) and rl.check("b", 2.0) == 0
    assert rl.check("a", 60.5) == 0  # the first request left the window
    old = server.limiter
    server.limiter = RateLimiter(1)
    try:
        assert post(server.url, {"question": "KLM?"})[0] in (200, 400)
        code, body, headers = post(server.url, {"question": "KLM?"})
        assert code == 429 and int(headers["Retry-After"]) >= 1 and "per minute" in body["error"]
        # Feedback has its own allowance per client: asking did not use it up.
        assert call(server.url, "/feedback", {"answer_id": "0" * 32, "kind": "rating", "rating": 1})[0] == 404
        assert call(server.url, "/feedback", {"answer_id": "0" * 32, "kind": "rating", "rating": 1})[0] == 429
    finally:
        server.limiter = old


# ----------------------------------------------------------------------------- feedback

def test_feedback_is_stored_and_bad_input_gets_a_clear_4xx(server):
    code, out, _ = post(server.url, {"question": SAAB})
    aid, cited = out["answer_id"], [c["id"] for c in out["citations"]]
    assert code == 200 and len(aid) == 32 and len(cited) == 2
    fb = lambda body: call(server.url, "/feedback", body)  # noqa: E731
    before = server.store.counts()
    code, r1, _ = fb({"answer_id": aid, "kind": "rating", "rating": -1, "user_id": "ann"})
    assert code == 201 and isinstance(r1["id"], int)
    term = out["citations"][0]["o"]
    assert fb({"answer_id": aid, "kind": "correction", "correction": {"term": term, "label": "Saab"}})[0] == 201
    assert fb({"answer_id": aid, "kind": "correction", "correction": {"text": "Trollhättan, Sweden"}})[0] == 201
    code, r4, _ = fb({"answer_id": aid, "kind": "flag", "triple_id": cited[1], "reason": "moved in 2012"})
    assert code == 201 and r4["id"] > r1["id"]
    after = server.store.counts()
    assert (after["ratings"], after["corrections"], after["flags"]) == (
        before["ratings"] + 1, before["corrections"] + 2, before["flags"] + 1)
    rows = [r for r in server.store.iter_feedback() if r["answer_id"] == aid]
    assert [r["kind"] for r in rows] == ["rating", "correction", "correction", "flag"]
    assert rows[0]["rating"] == -1 and rows[0]["user_id"] == "ann" and rows[0]["question"] == SAAB
    assert rows[1]["correction"] == {"term": term, "label": "Saab"} and rows[3]["triple_id"] == cited[1]
    # 404: an answer id the store never gave.
    code, body, _ = fb({"answer_id": "f" * 32, "kind": "rating", "rating": 1})
    assert code == 404 and "unknown answer id" in body["error"]
    # 422: bad values, each named.
    for bad, word in [({"kind": "rating", "rating": 2}, "rating"),
                      ({"kind": "rating"}, "rating"),
                      ({"kind": "vote", "rating": 1}, "kind"),
                      ({"kind": "flag", "triple_id": "0" * 16, "reason": "x"}, "not one of the triples"),
                      ({"kind": "flag", "triple_id": cited[0]}, "reason"),
                      ({"kind": "correction", "correction": {"term": "not a term"}}, "term"),
                      ({"kind": "correction", "correction": {"text": "a", "guess": 1}}, "guess"),
                      ({"kind": "rating", "rating": 1, "colour": "red"}, "colour"),
                      ({"kind": "flag", "triple_id": cited[0], "reason": "r" * 2001}, "reason")]:
        code, body, _ = fb({"answer_id": aid, **bad})
        assert code == 422 and word in body["error"], (bad, code, body)
    code, body, _ = fb(["not", "an", "object"])
    assert code == 422
    # 400 malformed JSON, 413 oversized, 415 not JSON.
    assert call(server.url, "/feedback", b'{"answer_id": ')[0] == 400
    code, body, _ = fb({"answer_id": aid, "kind": "flag", "triple_id": cited[0], "reason": "r" * 9000})
    assert code == 413 and "at most" in body["error"]
    assert call(server.url, "/feedback", b"kind=rating", ctype="text/plain")[0] == 415
    assert server.store.counts() == after  # nothing bad was stored
    # Without an API key on this server, the counts are open.
    code, counts, _ = call(server.url, "/feedback/counts")
    assert code == 200 and counts == after


def test_api_key_guards_feedback_and_admin_endpoints(keyed):
    code, out, _ = post(keyed.url, {"question": "What is the hub airport of Lufthansa?"})  # /ask stays open
    assert code == 200
    body = {"answer_id": out["answer_id"], "kind": "rating", "rating": 1}
    for headers in ({}, bearer("wrong"), {"Authorization": f"Basic {KEY}"}):
        code, err, h = call(keyed.url, "/feedback", body, headers=headers)
        assert code == 401 and "API key" in err["error"] and h["WWW-Authenticate"] == "Bearer"
        assert call(keyed.url, "/feedback/counts", headers=headers)[0] == 401
    assert keyed.store.counts()["ratings"] == 0
    code, r, _ = call(keyed.url, "/feedback", body, headers=bearer())
    assert code == 201 and keyed.store.counts()["ratings"] == 1
    code, counts, _ = call(keyed.url, "/feedback/counts", headers=bearer())
    assert code == 200 and counts == {"answers": 1, "ratings": 1, "corrections": 0, "flags": 0}
    assert call(keyed.url, "/health")[0] == 200 and call(keyed.url, "/metrics")[0] == 200


# ----------------------------------------------------------------------------- docs, metrics, access log

def test_openapi_docs(server):
    code, html, h = call(server.url, "/docs")
    assert code == 200 and "swagger" in html.lower() and "/openapi.json" in html
    assert "cdn" not in html.lower() and "/docs-assets/swagger-ui-bundle.js" in html  # served here: works offline
    code, js, _ = call(server.url, "/docs-assets/swagger-ui-bundle.js")
    assert code == 200 and len(js) > 100_000
    code, spec, _ = call(server.url, "/openapi.json")
    assert code == 200 and spec["info"]["title"] == "kgllm serve"
    assert {"/ask", "/feedback", "/feedback/counts", "/health", "/metrics"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert {"AskIn", "AskOut", "FeedbackIn", "FeedbackOut", "CountsOut", "ErrorOut"} <= set(schemas)
    assert schemas["FeedbackIn"]["properties"]["kind"]["enum"] == ["rating", "correction", "flag"]
    fb = spec["paths"]["/feedback"]["post"]
    assert {"201", "401", "404", "413", "422", "429"} <= set(fb["responses"])
    assert fb["security"] and spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "security" not in spec["paths"]["/ask"]["post"]


def test_metrics_in_prometheus_text_format(server):
    from prometheus_client.parser import text_string_to_metric_families

    def samples():
        code, text, h = call(server.url, "/metrics")
        assert code == 200 and h["content-type"].startswith("text/plain")
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for fam in text_string_to_metric_families(text) for s in fam.samples}

    key = ("kgllm_http_requests_total", (("method", "GET"), ("path", "/health"), ("status", "200")))
    before = samples()
    for _ in range(3):
        call(server.url, "/health")
    after = samples()
    assert after[key] == before.get(key, 0) + 3
    assert after[("kgllm_http_request_duration_seconds_count", (("path", "/health"),))] >= 3
    assert ("kgllm_http_request_duration_seconds_bucket", (("le", "0.1"), ("path", "/health"))) in after
    counts = server.store.counts()
    for kind in ("answers", "ratings", "corrections", "flags"):
        assert after[("kgllm_feedback_stored", (("kind", kind),))] == counts[kind]


def test_access_log_is_one_json_line_per_request(server):
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    log = logging.getLogger("kgllm.serve")
    h, level = Keep(), log.level
    log.addHandler(h)
    log.setLevel(logging.INFO)
    try:
        call(server.url, "/health?x=1")
        post(server.url, b"nope", "text/plain")
    finally:
        log.removeHandler(h)
        log.setLevel(level)
    lines = [json.loads(r.getMessage()) for r in records]
    assert [(x["method"], x["path"], x["status"]) for x in lines] == [("GET", "/health", 200), ("POST", "/ask", 415)]
    assert all(x["client"] == "127.0.0.1" and x["ms"] >= 0 for x in lines)


# ----------------------------------------------------------------------------- provenance privacy

def test_public_provenance_hides_server_paths():
    from kgllm.ask.serve import public_provenance

    prov = {"source": "file", "path": "/home/ann/kgllm/examples/data/dbpedia-sample/labels_en.ttl.xz",
            "sha256": "ab" * 32, "format": "turtle", "page": 3,
            "nested": {"where": "~/data/x.nt", "win": "C:\\data\\y.nt", "url": "file:///srv/data/z.nt.gz"},
            "endpoint": "http://ann:secret@db.example:8890/sparql", "query": "dbpedia/airlines",
            "origin": "wordnet-base", "list": ["/etc/graphs/a.nt", "b"]}
    assert public_provenance(prov) == {
        "source": "file", "path": "labels_en.ttl.xz", "sha256": "ab" * 32, "format": "turtle", "page": 3,
        "nested": {"where": "x.nt", "win": "y.nt", "url": "z.nt.gz"},
        "endpoint": "http://db.example:8890/sparql", "query": "dbpedia/airlines", "origin": "wordnet-base",
        "list": ["a.nt", "b"]}
    assert public_provenance({"endpoint": "http://127.0.0.1:8890/sparql"}) == {
        "endpoint": "http://127.0.0.1:8890/sparql"}


@pytest.fixture(scope="module")
def pulled_index(tmp_path_factory) -> Path:
    """An index over a graph pulled from a local file: its provenance names the file by absolute path."""
    from kgllm.registry import run_stage

    d = tmp_path_factory.mktemp("pulled")
    src = d / "data" / "airlines.nt"
    src.parent.mkdir()
    src.write_text("".join(f"<{DBR}{s}> <{p}> {o} .\n" for s, p, o in [
        ("Airline_X", f"{DBO}hubAirport", f"<{DBR}Airport_Y>"),
        ("Airline_X", "http://www.w3.org/2000/01/rdf-schema#label", '"Airline X"@en'),
        ("Airport_Y", "http://www.w3.org/2000/01/rdf-schema#label", '"Airport Y"@en')]))
    run_stage("pull.file", [], d / "graph", {"paths": [str(src)]})
    run_stage("index", [d / "graph"], d / "index", {"vector": {"entities": False}})
    return d / "index"


@pytest.mark.parametrize("full_paths", [False, True])
def test_provenance_without_absolute_paths(pulled_index, tmp_path, full_paths):
    from kgllm.ask.answer import Answerer
    from kgllm.ask.serve import make_server

    data_dir = str(pulled_index.parent / "data")
    with FeedbackStore(FeedbackStore.default_url(tmp_path)) as store:
        srv = make_server(Answerer.from_dir(pulled_index, sparql="off"), "127.0.0.1", 0, store=store,
                          index_sha256=read_manifest(pulled_index).content_sha256, full_paths=full_paths)
        t = start(srv)
        try:
            code, out, _ = post(srv.url, {"question": "What is the hub airport of Airline X?", "retriever": "graph"})
        finally:
            stop(srv, t)
        assert code == 200 and out["answer"] == "Airport Y"
        prov = out["citations"][0]["provenance"]
        stored = json.dumps(store.answer(out["answer_id"])["answer"])
    if full_paths:  # the operator asked for them
        assert prov["path"] == data_dir + "/airlines.nt"
    else:
        assert prov["path"] == "airlines.nt" and prov["source"] == "file"
        assert data_dir not in json.dumps(out) and data_dir not in stored


# ----------------------------------------------------------------------------- a real `kgllm serve` process

class ServeProcess:
    """``python -m kgllm serve`` in its own process group; its URL from the banner on stdout."""

    def __init__(self, *args: str, log: Path, env: dict | None = None):
        self.log = log
        self.proc = subprocess.Popen([sys.executable, "-m", "kgllm", "serve", "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=open(log, "ab"), text=True, cwd=ROOT,
                                     env={**os.environ, **(env or {})}, start_new_session=True)
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(300)
        assert line and line[0].startswith("kgllm serve: http://"), (line, log.read_text()[-3000:])
        self.url = line[0].split()[2]
        deadline = time.monotonic() + 300
        while True:  # the workers load the index and the encoder before they accept
            try:
                if call(self.url, "/health", timeout=10)[0] == 200:
                    break
            except OSError:
                pass
            assert self.proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)  # the parent and its workers, no clean-up
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(params=["sqlite", "postgresql"])
def feedback_db(request):
    """None (the serve directory's SQLite file) or the URL of a private PostgreSQL (in a directory the
    ``postgres`` user can reach: pytest's temp root is mode 700)."""
    if request.param == "sqlite":
        yield None
        return
    from postgres import postgres_or_fail

    work = Path(tempfile.mkdtemp(prefix="kgllm-pg-"))
    work.chmod(0o711)
    try:
        pg = postgres_or_fail(work / "pg")
        yield pg.url
        pg.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.slow
def test_feedback_survives_a_server_kill(rag_index, tmp_path, feedback_db):
    serve_dir = tmp_path / "serve-dir"
    db = ["--feedback-db", feedback_db] if feedback_db else []
    common = ["--index", str(rag_index), "--no-sparql", "--serve-dir", str(serve_dir), "--rate", "100000", *db]
    log = tmp_path / "serve.log"
    srv = ServeProcess(*common, "--workers", "2", log=log, env={"KGLLM_API_KEY": KEY})
    acked: dict[int, str] = {}  # feedback id -> kind, for every 201 the server sent
    try:
        answers = []
        for q in (SAAB, "What is the hub airport of Lufthansa?", "Where is KLM headquartered?"):
            code, out, _ = post(srv.url, {"question": q})
            assert code == 200, out
            answers.append(out)
        # Two workers, one set of metrics: the three answers are counted once each, whichever worker gave them.
        code, text, _ = call(srv.url, "/metrics")
        assert 'kgllm_http_requests_total{method="POST",path="/ask",status="200"} 3.0' in text, text[-2000:]
        stop_flag = threading.Event()
        lock = threading.Lock()

        def client(n: int) -> None:
            a = answers[n % len(answers)]
            bodies = [{"kind": "rating", "rating": 1 if n % 2 else -1},
                      {"kind": "correction", "correction": {"text": f"answer {n}"}},
                      {"kind": "flag", "triple_id": a["citations"][0]["id"], "reason": f"wrong {n}"}]
            i = 0
            while not stop_flag.is_set():
                body = {"answer_id": a["answer_id"], **bodies[i % 3]}
                i += 1
                try:
                    code, r, _ = call(srv.url, "/feedback", body, headers=bearer(), timeout=30)
                except (OSError, http.client.HTTPException, ValueError):
                    return  # the server died under this request (no reply, or a cut one): never acknowledged
                assert code == 201, r
                with lock:
                    acked[r["id"]] = body["kind"]

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 120
        while len(acked) < 150 and time.monotonic() < deadline:
            time.sleep(0.05)
        srv.kill()  # SIGKILL with requests in flight
        stop_flag.set()
        for t in threads:
            t.join(60)
    finally:
        srv.stop()
    assert len(acked) >= 150
    # (A progress bar of the model loader may precede a line without its newline: split at the logger's name.)
    lines = [json.loads(x.split("kgllm.serve: ", 1)[1]) for x in log.read_text().splitlines()
             if "kgllm.serve: {" in x]
    assert {"method", "path", "status", "ms", "client"} <= set(lines[0])
    # Each line is written before its response's last byte: every acknowledged write was logged.
    assert sum(1 for x in lines if x["path"] == "/feedback" and x["status"] == 201) >= len(acked)
    assert [d.name for d in (serve_dir / "metrics").iterdir()] == [str(srv.proc.pid)]  # the workers' metrics
    # Restart on the same serve directory (one worker): everything acknowledged is there.
    srv = ServeProcess(*common, "--api-key", KEY, log=log)
    assert not any((serve_dir / "metrics").iterdir())  # the dead server's metrics files are cleaned up
    try:
        code, counts, _ = call(srv.url, "/feedback/counts", headers=bearer())
        assert code == 200 and counts["answers"] == 3
        for kind, key in (("rating", "ratings"), ("correction", "corrections"), ("flag", "flags")):
            assert counts[key] >= sum(1 for k in acked.values() if k == kind)
        code, out, _ = post(srv.url, {"question": SAAB})  # and it goes on recording
        assert code == 200 and call(srv.url, "/feedback", {"answer_id": out["answer_id"], "kind": "rating",
                                                           "rating": 1}, headers=bearer())[0] == 201
    finally:
        srv.stop()
    url = feedback_db or FeedbackStore.default_url(serve_dir)
    with FeedbackStore(url) as store:
        stored = {r["id"]: r["kind"] for r in store.iter_feedback()}
    assert all(stored.get(i) == kind for i, kind in acked.items())


# ----------------------------------------------------------------------------- the page in a real browser

@pytest.mark.slow
def test_web_page_answers_in_a_real_browser(server, keyed, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser = _chrome_with_profile(tmp_path)
    try:
        browser.get(server.url)
        assert browser.title == "kgllm ask"
        box = browser.find_element(By.ID, "question")
        box.send_keys(SAAB)
        browser.find_element(By.ID, "ask").click()
        wait = WebDriverWait(browser, 60)
        wait.until(lambda b: b.find_element(By.ID, "answer").text.strip() != "")
        assert browser.find_element(By.ID, "answer").text == "Trollhättan"
        rows = browser.find_elements(By.CSS_SELECTOR, "#citations tbody tr")
        assert [r.find_elements(By.TAG_NAME, "td")[2].text for r in rows] == ["manufacturer", "location city"]
        cited = [r.find_elements(By.TAG_NAME, "td")[5].text for r in rows]
        assert "two_hop" in browser.find_element(By.ID, "meta").text
        # The subgraph shows the evidence: the cited edges are highlighted, the topic and answer drawn.
        assert len(browser.find_elements(By.CSS_SELECTOR, "#subgraph line.edge.cited")) == 2
        labels = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#subgraph .node text")]
        assert "Saab 9000" in labels and "Trollhättan" in labels

        # Feedback: rate it, give the right answer (one of the terms shown), flag the second cited triple.
        assert browser.find_element(By.ID, "feedback").is_displayed()
        assert not browser.find_element(By.ID, "key-row").is_displayed()  # this server needs no key
        status = lambda: browser.find_element(By.ID, "feedback-status").text  # noqa: E731
        browser.find_element(By.ID, "rate-down").click()
        wait.until(lambda b: "recorded" in status())
        assert browser.find_element(By.ID, "rate-up").get_attribute("disabled")
        pick = Select(browser.find_element(By.ID, "correct-term"))
        options = [o.text for o in pick.options]
        assert "Saab Automobile" in options and "Trollhättan" in options
        pick.select_by_visible_text("Saab Automobile")
        before = status()
        browser.find_element(By.ID, "correct-send").click()
        wait.until(lambda b: "correction recorded" in status() and status() != before)
        rows[1].find_element(By.CSS_SELECTOR, "button.flag").click()  # picks that triple in the flag form
        assert Select(browser.find_element(By.ID, "flag-triple")).first_selected_option.get_attribute(
            "value") == cited[1]
        browser.find_element(By.ID, "flag-reason").send_keys("the company moved")
        browser.find_element(By.ID, "flag-send").click()
        wait.until(lambda b: "flag recorded" in status())
        # The store holds the three rows, on the answer the page showed.
        rows_by_answer: dict[str, list[dict]] = {}
        for r in server.store.iter_feedback():
            rows_by_answer.setdefault(r["answer_id"], []).append(r)
        mine = [rs for rs in rows_by_answer.values() if rs[0]["question"] == SAAB and len(rs) == 3
                and [r["kind"] for r in rs] == ["rating", "correction", "flag"]]
        assert mine, rows_by_answer
        rating, correction, flag = mine[-1]
        assert rating["rating"] == -1
        assert correction["correction"] == {"term": f"<{DBR}Saab_Automobile>", "label": "Saab Automobile"}
        assert flag["triple_id"] == cited[1] and flag["reason"] == "the company moved"

        # Unsupported questions say so, in the page too; a typed correction still works.
        box.clear()
        box.send_keys("What is the boiling point of Lufthansa?")
        browser.find_element(By.ID, "ask").click()
        wait.until(lambda b: b.find_element(By.ID, "answer").text == "not in the graph")
        assert "unsupported" in browser.find_element(By.ID, "answer").get_attribute("class")
        assert not browser.find_element(By.ID, "citations").is_displayed()
        assert not browser.find_element(By.ID, "flag-form").is_displayed()
        browser.find_element(By.ID, "correct-text").send_keys("about -30 °C (it is an airline)")
        browser.find_element(By.ID, "correct-send").click()
        wait.until(lambda b: "correction recorded" in status())
        last = list(server.store.iter_feedback())[-1]
        assert last["correction"] == {"text": "about -30 °C (it is an airline)"}
        assert last["question"] == "What is the boiling point of Lufthansa?"

        # A server with an API key: the page asks for it, keeps it in memory and sends it.
        browser.get(keyed.url)
        assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-feedback-key") == "required"
        browser.find_element(By.ID, "question").send_keys("What is the hub airport of Lufthansa?")
        browser.find_element(By.ID, "ask").click()
        wait.until(lambda b: b.find_element(By.ID, "feedback").is_displayed())
        assert browser.find_element(By.ID, "key-row").is_displayed()
        n = keyed.store.counts()["ratings"]
        browser.find_element(By.ID, "rate-up").click()
        wait.until(lambda b: "API key" in status())
        browser.find_element(By.ID, "api-key").send_keys(KEY)
        browser.find_element(By.ID, "rate-up").click()
        wait.until(lambda b: "recorded" in status())
        assert keyed.store.counts()["ratings"] == n + 1
        # No script errors on the page (CSP nonce accepted, nothing blocked) other than the 401 just seen.
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "401" not in e["message"]]
        assert errors == []
    finally:
        browser.quit()


def _chrome_with_profile(tmp_path):
    """Chromium with a fresh profile directory (no state from other runs)."""
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must not try to download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "chromium"
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
              f"--user-data-dir={tmp_path / 'chrome-profile'}"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = shutil.which("chromedriver")
    assert driver and shutil.which("chromium"), \
        "install Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)"
    return webdriver.Chrome(service=Service(driver), options=opts)
