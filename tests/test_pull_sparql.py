"""``pull.sparql``: the harvester against a real, private Virtuoso (ResultSetMaxRows = 10,000 kept).

The server is loaded with the real DBpedia sample (19,009 distinct triples, more than the cap) and a
generated graph of 25,000 triples. The reference graph is read back from the same server by plain
requests that each stay under the cap (one per loaded part graph), so it is independent of the
harvester's paging and carries Virtuoso's own literal forms (it stores numbers by value).

Faults are caused by a real local HTTP proxy in front of Virtuoso that answers 500, 503 with
Retry-After, stalls past the client timeout, drops the connection mid-body, or silently truncates.
"""

from __future__ import annotations

import http.client
import http.server
import json
import lzma
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import DBPEDIA_SAMPLE, ROOT
from virtuoso import Virtuoso, shared

from kgllm.artifacts import verify_artifact
from kgllm.errors import InputError, UsageError
from kgllm.pull.sparql import (
    CHECKPOINT,
    CHECKPOINT_VERSION,
    HarvestConfig,
    harvest,
    parse_query,
    template_triples,
    work_dir,
)
from kgllm.pull.sparql.endpoint import _retry_after
from kgllm.pull.sparql.harvest import _Interrupted
from kgllm.pull.sparql.query import _validate_syntax
from kgllm.rdf import RDFS_LABEL, graph_shards, iter_graph

CAP = 10_000
PART = 6_000                      # lines per loaded part graph: each part reads back under the cap
GEN_GRAPH = "http://kgllm.test/generated"
GEN_TRIPLES = 25_000
ALL = "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"


# ----------------------------------------------------------------------------- fixtures


def generated_triples(n: int = GEN_TRIPLES) -> list[str]:
    """A deterministic graph of IRIs, plain and language-tagged strings (Virtuoso keeps them verbatim)."""
    out = []
    for i in range(n):
        s = f"<http://kgllm.test/e/{i // 5}>"
        k = i % 5
        if k == 0:
            out.append(f'{s} {RDFS_LABEL} "entity {i // 5}"@en')
        elif k == 1:
            out.append(f'{s} <http://kgllm.test/p/name> "name \\"{i}\\" \\u00e9t\\u00e9"')
        else:
            out.append(f"{s} <http://kgllm.test/p/link{k}> <http://kgllm.test/e/{(i * 7919) % (n // 5)}>")
    return out


def _construct(endpoint: str, query: str, graphs: list[str]) -> set[tuple[str, str, str]]:
    import pyoxigraph

    params = [("query", query)] + [("default-graph-uri", g) for g in graphs]
    req = urllib.request.Request(f"{endpoint}?{urllib.parse.urlencode(params)}",
                                 headers={"Accept": "application/n-triples"})
    with urllib.request.urlopen(req, timeout=60) as r:
        body = r.read()
    return {(str(t.subject), str(t.predicate), str(t.object))
            for t in pyoxigraph.parse(body, format=pyoxigraph.RdfFormat.N_TRIPLES)}


def load_reference_data(vt: Virtuoso) -> None:
    """Load the DBpedia sample in parts of PART lines and the generated graph; read the reference back."""
    lines = []
    for f in sorted(DBPEDIA_SAMPLE.glob("*.ttl.xz")):
        lines += [x for x in lzma.decompress(f.read_bytes()).decode("utf-8").splitlines() if x.strip()]
    files = []
    for i in range(0, len(lines), PART):
        f = vt.dir / f"dbpedia-part{i // PART:02d}.nt"
        f.write_text("\n".join(lines[i: i + PART]) + "\n", "utf-8")
        files.append(f)
    vt.dbpedia_graphs = [f"http://kgllm.test/dbpedia/part{i:02d}" for i in range(len(files))]
    gen = vt.dir / "generated.nt"
    gen.write_text("".join(f"{t} .\n" for t in generated_triples()), "utf-8")
    vt.load_graphs({**{g: [f] for g, f in zip(vt.dbpedia_graphs, files, strict=True)}, GEN_GRAPH: [gen]})
    vt.dbpedia = set()
    for g in vt.dbpedia_graphs:
        part = _construct(vt.endpoint, ALL, [g])
        assert len(part) < CAP  # a part read back in one request is complete
        vt.dbpedia |= part
    vt.generated = {tuple(t.split(" ", 2)) for t in _canonical(generated_triples())}


def _canonical(lines: list[str]) -> list[str]:
    import pyoxigraph

    data = "".join(f"{x} .\n" for x in lines).encode()
    return [f"{t.subject} {t.predicate} {t.object}"
            for t in pyoxigraph.parse(data, format=pyoxigraph.RdfFormat.N_TRIPLES)]


@pytest.fixture(scope="session")
def vt(tmp_path_factory):
    """The shared private Virtuoso with the DBpedia sample and the generated graph (fails in CI if absent)."""
    with shared("kgllm-sparql", lambda: tmp_path_factory.mktemp("virtuoso"), setup=load_reference_data) as v:
        yield v


def cfg(vt: Virtuoso, graphs: list[str] | None = None, **kw) -> HarvestConfig:
    base = dict(default_graph=graphs if graphs is not None else vt.dbpedia_graphs, timeout=20.0, backoff=0.01,
                backoff_max=0.05, retries=4)
    return HarvestConfig(**{**base, **kw})


def graph_set(out: Path) -> set[tuple[str, str, str]]:
    triples = list(iter_graph(out))
    assert len(triples) == len(set(triples)), "the artifact has duplicate triples"
    return set(triples)


# ----------------------------------------------------------------------------- fault proxy


class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 in front of an endpoint that misbehaves on cue.

    ``plan`` is consumed one entry per request: ``ok``, ``500``, ``503`` (Retry-After: 1), ``429``
    (Retry-After: 1), ``stall`` (no answer for ``stall_s``), ``drop`` (headers and half the body, then
    the connection is closed) or ``cap:N`` (silently truncate an N-Triples answer to N triples, the
    way a Virtuoso with a smaller ResultSetMaxRows does). After the plan, requests pass through.
    """

    def __init__(self, upstream: str, plan: list[str], stall_s: float = 2.0):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.plan = list(plan)
        self.stall_s = stall_s
        self.log: list[str] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):
                proxy.handle(self, None)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                proxy.handle(self, self.rfile.read(n))

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.upstream.path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def handle(self, h, body: bytes | None) -> None:
        with self.lock:
            fault = self.plan.pop(0) if self.plan else "ok"
            self.log.append(fault)
        try:
            if fault in ("500", "503", "429"):
                payload = b"injected fault"
                h.send_response(int(fault))
                if fault != "500":
                    h.send_header("Retry-After", "1")
                h.send_header("Content-Length", str(len(payload)))
                h.send_header("Connection", "close")
                h.end_headers()
                h.wfile.write(payload)
                return
            if fault == "stall":
                time.sleep(self.stall_s)
                h.close_connection = True
                return
            status, headers, data = self.forward(h, body)
            if fault.startswith("cap:"):
                n = int(fault.split(":")[1])
                data = b"".join(data.splitlines(keepends=True)[:n])
            h.send_response(status)
            for k, v in headers:
                if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                    h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.send_header("Connection", "close")
            h.end_headers()
            if fault == "drop":
                h.wfile.write(data[: len(data) // 2])
                h.wfile.flush()
                h.connection.shutdown(2)
            else:
                h.wfile.write(data)
            h.close_connection = True
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass

    def forward(self, h, body):
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(h.command, h.path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, r.getheaders(), data


# ----------------------------------------------------------------------------- query analysis (no server)


def test_parse_query_splits_and_pages():
    q = parse_query("PREFIX dbo: <http://dbpedia.org/ontology/>\n# a { comment\n"
                    "CONSTRUCT { ?s dbo:name ?n . ?s a dbo:Thing } WHERE { ?s dbo:name ?n FILTER(?n != \"}\") }",
                    "q.rq")
    assert q.form == "CONSTRUCT" and q.variables == ("n", "s")
    assert q.prologue.startswith("PREFIX dbo:") and 'FILTER(?n != "}")' in q.where
    page = q.paged(100, 300)
    assert "ORDER BY ?n ?s" in page and page.rstrip().endswith("LIMIT 100 OFFSET 300")
    _validate_syntax(page, "paged")  # the paged text is itself valid SPARQL
    tt = template_triples(q)
    assert tt == [("?s", "<http://dbpedia.org/ontology/name>", "?n"),
                  ("?s", "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>", "<http://dbpedia.org/ontology/Thing>")]
    _validate_syntax(q.count_query(tt), "count")
    sel = parse_query("SELECT DISTINCT ?a ?b ?c WHERE { ?a ?b ?c }", "s.rq")
    assert sel.form == "SELECT" and sel.variables == ("a", "b", "c")
    short = parse_query("CONSTRUCT WHERE { ?s <urn:p> ?o }")
    assert short.template.strip() == "?s <urn:p> ?o" and short.variables == ("o", "s")
    assert parse_query("CONSTRUCT { ?s ?p [] } WHERE { ?s ?p ?o }").blank_template


@pytest.mark.parametrize("text, message", [
    ("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o } LIMIT 10", "remove LIMIT"),
    ("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o } ORDER BY ?s", "remove ORDER BY"),
    ("SELECT * WHERE { ?s ?p ?o }", "exactly three variables"),
    ("ASK { ?s ?p ?o }", "ASK queries cannot be harvested"),
    ("CONSTRUCT { ?s ?p ?o } WHERE {\n  ?s ?p \n}", "bad.rq:"),
])
def test_query_errors_name_the_file(text, message):
    with pytest.raises(InputError, match=message):
        parse_query(text, "bad.rq")


def test_malformed_query_file_names_file_and_line(tmp_path):
    f = tmp_path / "broken.rq"
    f.write_text("PREFIX dbo: <http://dbpedia.org/ontology/>\nCONSTRUCT { ?s ?p ?o }\nWHERE { ?s ?p ?o .. }\n")
    with pytest.raises(InputError, match=r"broken\.rq:3:\d+: malformed SPARQL query"):
        harvest("http://127.0.0.1:9/sparql", f, tmp_path / "out")


def test_retry_after_parsing():
    assert _retry_after("7") == 7.0
    assert _retry_after(None) is None and _retry_after("soon") is None
    future = time.time() + 30
    from email.utils import formatdate

    assert 25 <= _retry_after(formatdate(future, usegmt=True)) <= 31


def test_unreachable_endpoint_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/sparql"
    with pytest.raises(InputError, match=rf"127\.0\.0\.1:{port}/sparql: page 0 .* failed after 3 attempt"):
        harvest(url, ALL, tmp_path / "out", HarvestConfig(retries=2, backoff=0.01, timeout=2))
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- against Virtuoso


def test_harvest_dbpedia_sample_is_exact(vt, tmp_path):
    out = tmp_path / "g"
    man = harvest(vt.endpoint, ALL, out, cfg(vt))
    assert len(vt.dbpedia) == 19_009
    assert graph_set(out) == vt.dbpedia
    c = man.counts
    assert c["triples"] == 19_009 and c["expected_triples"] == 19_009 and c["truncated_pages"] == 0
    assert c["results"] == c["triples"] + c["duplicates"]  # every triple received is accounted for
    verify_artifact(out)
    shards = graph_shards(out)
    # Pages of 9,999 solutions (under the 10,000 cap); some triples sit in two loaded part graphs, so
    # a page can hold fewer distinct triples than solutions and a third page is needed.
    assert [s["provenance"]["offset"] for s in shards] == [0, 9_999, 19_998] and c["pages"] == 4
    prov = shards[1]["provenance"]
    assert prov["source"] == "sparql" and prov["endpoint"] == vt.endpoint and prov["page"] == 1
    assert prov["limit"] == 9_999 and prov["retrieved_at"] and len(prov["query_sha256"]) == 64
    q = man.extra["queries"][0]
    assert q["text"] == ALL and "COUNT" in q["count_text"]
    assert man.extra["order"] == "natural" and "ORDER BY" not in q["paged_text"]  # auto: natural + COUNT
    assert man.extra["count_check"] == "ok: 19009 distinct triples" and man.extra["row_cap"] == CAP
    assert not work_dir(out).exists()


def test_select_query_and_page_larger_than_cap(vt, tmp_path):
    """SELECT ?s ?p ?o over 25k triples asking for 50k-row pages: clamped under the cap, complete."""
    out = tmp_path / "sel"
    man = harvest(vt.endpoint, "SELECT ?s ?p ?o WHERE { ?s ?p ?o }", out, cfg(vt, [GEN_GRAPH], page_size=50_000))
    assert graph_set(out) == vt.generated
    assert man.counts["pages"] == 3 and man.counts["skipped_rows"] == 0
    assert man.counts["expected_triples"] == GEN_TRIPLES


@pytest.mark.slow
def test_truncated_pages_are_detected_and_shrunk(vt, tmp_path):
    """A template with two triples per solution makes Virtuoso cut pages at the cap (HTTP 200, no
    header): the harvester must notice, halve the page and lose nothing."""
    q = "CONSTRUCT { ?s ?p ?o . ?o <http://kgllm.test/p/from> ?s } WHERE { ?s ?p ?o FILTER(isIRI(?o)) }"
    out = tmp_path / "two"
    man = harvest(vt.endpoint, q, out, cfg(vt, [GEN_GRAPH], order="ordered"))
    assert man.extra["order"] == "ordered" and "ORDER BY ?o ?p ?s" in man.extra["queries"][0]["paged_text"]
    want = {t for t in vt.generated if t[2].startswith("<")}
    want |= {(o, "<http://kgllm.test/p/from>", s) for s, _, o in want}
    assert graph_set(out) == want
    assert man.counts["truncated_pages"] >= 1 and man.counts["expected_triples"] == len(want)
    assert all(s["provenance"]["limit"] < CAP // 2 for s in graph_shards(out)[1:])


@pytest.mark.slow
def test_faults_retried_and_graph_exact(vt, tmp_path):
    # page 0: 500 then ok; page 1: 503, stall, drop, 429 then ok; then ok, and a 500 on a later request
    plan = ["500", "ok", "503", "stall", "drop", "429", "ok", "ok", "500"]
    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        time.sleep(s)

    with FaultProxy(vt.endpoint, plan, stall_s=4.5) as proxy:
        out = tmp_path / "faulty"
        man = harvest(proxy.url, ALL, out, cfg(vt, timeout=4.0, retries=6), _sleep=sleep)
    assert graph_set(out) == vt.dbpedia
    # Every request but those that succeeded (one per page, COUNT) was retried; a busy machine may add
    # a genuine timeout to the 6 injected faults.
    assert man.counts["requests"] == len(proxy.log) >= 10
    assert man.counts["retries"] == len(proxy.log) - (man.counts["pages"] + 1) >= 6
    assert man.counts["expected_triples"] == 19_009
    assert sleeps.count(1.0) == 2  # Retry-After: 1 on the 503 and the 429, waited exactly
    assert {s["provenance"]["endpoint"] for s in graph_shards(out)} == {proxy.url}


def test_malformed_query_rejected_by_endpoint_is_not_retried(vt, tmp_path):
    bad = "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o FILTER(bif:nosuchfunction(?o)) }"
    with FaultProxy(vt.endpoint, []) as proxy, pytest.raises(InputError, match="rejected the query"):
        harvest(proxy.url, bad, tmp_path / "x", cfg(vt, validate_query=False))
    assert len(proxy.log) == 1


def test_silent_smaller_cap_fails_the_count_check(vt, tmp_path):
    """An endpoint that cuts a page below the assumed cap without saying so: the COUNT check catches it."""
    lits = "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o FILTER(isLiteral(?o)) }"  # 10,000 triples
    want = {t for t in vt.generated if not t[2].startswith("<")}
    with FaultProxy(vt.endpoint, ["cap:3000"]) as proxy, pytest.raises(InputError, match="COUNT check failed"):
        harvest(proxy.url, lits, tmp_path / "short", cfg(vt, [GEN_GRAPH], order="natural"))
    assert not (tmp_path / "short").exists()
    # order=auto (the default) starts over with ordered pages and then gets everything.
    with FaultProxy(vt.endpoint, ["cap:3000"]) as proxy:
        man = harvest(proxy.url, lits, tmp_path / "auto", cfg(vt, [GEN_GRAPH]))
    assert graph_set(tmp_path / "auto") == want and man.extra["order"] == "ordered"
    assert man.counts["requests"] == len(proxy.log) == 8  # 3 natural pages + COUNT, 3 ordered pages + COUNT
    # Told the real cap, natural pages are complete at once.
    with FaultProxy(vt.endpoint, ["cap:3000"]) as proxy:
        man = harvest(proxy.url, lits, tmp_path / "ok", cfg(vt, [GEN_GRAPH], max_rows=3_000))
    assert graph_set(tmp_path / "ok") == want and man.extra["order"] == "natural"
    assert man.counts["pages"] == 5 and man.counts["expected_triples"] == 10_000


@pytest.mark.slow
def test_resume_after_abort_is_exact(vt, tmp_path):
    out = tmp_path / "r"
    c = cfg(vt, [GEN_GRAPH], page_size=6_000)
    with pytest.raises(_Interrupted):
        harvest(vt.endpoint, ALL, out, c, _stop_after_pages=3)
    state = json.loads((work_dir(out) / CHECKPOINT).read_text())
    assert len(state["pages"]) == 3 and state["offset"] == 18_000 and not out.exists()
    man = harvest(vt.endpoint, ALL, out, HarvestConfig(**{**c.__dict__, "resume": True}))
    assert graph_set(out) == vt.generated and man.counts["duplicates"] == 0
    assert [s["provenance"]["page"] for s in graph_shards(out)] == list(range(5))
    assert man.counts["requests"] == 7  # 6 pages (the last empty) + COUNT; none fetched twice


@pytest.mark.slow
def test_resume_after_sigkill_is_exact(vt, tmp_path):
    """A harvest killed by SIGKILL in the middle continues with --resume: exact graph, no duplicates."""
    out = tmp_path / "k"
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
              "from kgllm.pull.sparql import harvest, HarvestConfig\n"
              f"harvest({vt.endpoint!r}, {ALL!r}, {str(out)!r}, HarvestConfig(default_graph=[{GEN_GRAPH!r}], "
              "page_size=5000, rate=4))\n")
    env = {**os.environ, "KGLLM_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.DEVNULL)
    ck = work_dir(out) / CHECKPOINT
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if ck.exists() and len(json.loads(ck.read_text())["pages"]) >= 2:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    done = len(json.loads(ck.read_text())["pages"])
    assert 2 <= done < 5 and not out.exists()
    # The CLI path: --resume continues the checkpoint.
    from kgllm.cli import main

    rc = main(["pull", "sparql", "--endpoint", vt.endpoint, "--query", str(_write(tmp_path / "all.rq", ALL)),
               "--out", str(out), "--default-graph", GEN_GRAPH, "--page-size", "5000", "--resume"])
    assert rc == 0
    assert graph_set(out) == vt.generated
    from kgllm.artifacts import read_manifest

    man = read_manifest(out)
    assert man.counts["pages"] == 6 and man.counts["duplicates"] == 0  # 5 full pages + the empty one


def test_changed_query_does_not_resume(vt, tmp_path):
    out = tmp_path / "c"
    with pytest.raises(_Interrupted):
        harvest(vt.endpoint, ALL, out, cfg(vt, [GEN_GRAPH], page_size=5_000), _stop_after_pages=1)
    other = "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o FILTER(isIRI(?o)) }"
    with pytest.raises(UsageError, match="checkpoint is for another endpoint or query"):
        harvest(vt.endpoint, other, out, cfg(vt, [GEN_GRAPH], page_size=5_000, resume=True))


def test_checkpoint_of_another_version_does_not_resume(vt, tmp_path):
    """A checkpoint in an older format (version 1 had no page order, "mode") is refused with a clear
    error naming the file, not continued into a KeyError."""
    out = tmp_path / "v"
    c = cfg(vt, [GEN_GRAPH], page_size=5_000)
    with pytest.raises(_Interrupted):
        harvest(vt.endpoint, ALL, out, c, _stop_after_pages=1)
    ck = work_dir(out) / CHECKPOINT
    state = json.loads(ck.read_text())
    assert state["version"] == CHECKPOINT_VERSION != 1
    state["version"] = 1
    del state["mode"]
    ck.write_text(json.dumps(state))
    with pytest.raises(UsageError, match=rf"{ck.name}: the checkpoint was written by another kgllm version .*"
                                         r"rerun without --resume") as e:
        harvest(vt.endpoint, ALL, out, HarvestConfig(**{**c.__dict__, "resume": True}))
    assert str(ck) in str(e.value)
    # Without --resume the old checkpoint is discarded and the harvest starts over.
    man = harvest(vt.endpoint, ALL, out, c)
    assert graph_set(out) == vt.generated and man.counts["pages"] == 6


def test_stage_and_cli(vt, tmp_path):
    from kgllm.cli import main
    from kgllm.registry import run_stage

    qf = _write(tmp_path / "labels.rq", "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
                "CONSTRUCT { ?s rdfs:label ?l } WHERE { ?s rdfs:label ?l }\n")
    man = run_stage("pull.sparql", [], tmp_path / "st", {
        "endpoint": vt.endpoint, "query": str(qf), "harvest": {"default_graph": vt.dbpedia_graphs}})
    want = {t for t in vt.dbpedia if t[1] == "<http://www.w3.org/2000/01/rdf-schema#label>"}
    assert graph_set(tmp_path / "st") == want and man.counts["pages"] == 2
    assert man.inputs[0]["path"] == str(qf)  # the query file is hashed as an input
    rc = main(["pull", "sparql", "--endpoint", vt.endpoint, "--query", str(qf), "--out", str(tmp_path / "cli"),
               "--set", f"harvest.default_graph=[{', '.join(vt.dbpedia_graphs)}]", "--rate", "50", "--order", "ordered"])
    assert rc == 0 and graph_set(tmp_path / "cli") == want
    # One part without labels: zero triples fail (exit 1, nothing written) unless --allow-empty.
    empty = [g for g in vt.dbpedia_graphs if not any(
        t[1] == "<http://www.w3.org/2000/01/rdf-schema#label>" for t in _construct(vt.endpoint, ALL, [g]))]
    args = ["pull", "sparql", "--endpoint", vt.endpoint, "--query", str(qf), "--out", str(tmp_path / "none"),
            "--default-graph", empty[0]]
    assert main(args) == 1 and not (tmp_path / "none").exists()
    assert main([*args, "--allow-empty"]) == 0
    from kgllm.artifacts import read_manifest

    assert read_manifest(tmp_path / "cli").extra["order"] == "ordered"
    assert main(["pull", "sparql", "--endpoint", "ftp://x", "--query", str(qf), "--out", str(tmp_path / "e")]) == 2


def _write(path: Path, text: str) -> Path:
    path.write_text(text, "utf-8")
    return path
