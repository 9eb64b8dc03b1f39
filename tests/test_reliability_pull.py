"""Reliability of the pull commands, each through the user's own command line (``kgllm.cli.main``):
the destination is checked before any work, zero triples fail unless ``--allow-empty``, a pull whose
every line was quarantined exits 1, and each error says what is wrong in one line (directories, URLs,
byte order marks, a wrong ``--format``, RDF/XML positions, WordNet synset names, dbpedia's usage)."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse

import pytest
from conftest import DBPEDIA_SAMPLE, cli_error

from kgllm.artifacts import read_manifest
from kgllm.cli import main
from kgllm.rdf import iter_graph

GOOD_NT = b"<http://x.org/a> <http://x.org/p> <http://x.org/b> .\n<http://x.org/a> <http://x.org/q> \"x\"@en .\n"
GOOD_TTL = b"@prefix ex: <http://x.org/> .\nex:a ex:p ex:b ;\n  ex:q \"x\"@en .\n"
RDF_HEAD = ('<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
            ' xmlns:ex="http://x.org/">\n')
# Small real DBpedia files for the embedded store (types, so the labels preset finds its things).
DBPEDIA_DATA = ["--data", str(DBPEDIA_SAMPLE / "instance_types_transitive_en.ttl.xz"),
                "--data", str(DBPEDIA_SAMPLE / "labels_en.ttl.xz")]


@pytest.fixture
def here(here):
    """A fresh working directory holding good.nt."""
    (here / "good.nt").write_bytes(GOOD_NT)
    return here


err_line = cli_error


def fake_artifact(path, kind: str = "corpus") -> None:
    path.mkdir()
    (path / "manifest.json").write_text(json.dumps({"kind": kind, "content_sha256": "0" * 64}))


class EmptyEndpoint:
    """A SPARQL endpoint on 127.0.0.1 answering every query from an empty pyoxigraph store."""

    def __init__(self):
        import pyoxigraph

        store = pyoxigraph.Store()
        self.requests = 0
        ep = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                self.answer(urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)["query"][0])

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                self.answer(urllib.parse.parse_qs(body)["query"][0])

            def answer(self, query: str) -> None:
                ep.requests += 1
                r = store.query(query)
                if isinstance(r, pyoxigraph.QueryTriples):
                    data, ct = pyoxigraph.serialize(r, format=pyoxigraph.RdfFormat.N_TRIPLES), "application/n-triples"
                else:
                    data, ct = r.serialize(format=pyoxigraph.QueryResultsFormat.JSON), "application/sparql-results+json"
                self.send_response(200)
                self.send_header("Content-Type", ct)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sparql"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    ep = EmptyEndpoint()
    yield ep
    ep.close()


QUERY = "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }\n"


# ----------------------------------------------------------------------------- 1. destination first


def test_every_pull_checks_the_destination_before_any_work(here, capsys, endpoint):
    (here / "foreign").mkdir()
    (here / "foreign" / "notes.txt").write_text("mine")
    (here / "q.rq").write_text(QUERY)
    commands = {
        "file": ["pull", "file", "good.nt"],
        "wordnet": ["pull", "wordnet", "--root", "dog.n.01"],
        "dbpedia": ["pull", "dbpedia", *DBPEDIA_DATA],
        "sparql": ["pull", "sparql", "--endpoint", endpoint.url, "--query", "q.rq"],
    }
    for name, cmd in commands.items():
        assert main([*cmd, "--out", "foreign"]) == 2, name
        assert err_line(capsys).startswith("kgllm: error: foreign: is a directory that is not a kgllm artifact")
        assert (here / "foreign" / "notes.txt").read_text() == "mine"
    assert endpoint.requests == 0  # nothing was asked of the endpoint


def test_force_reaches_the_pull_commands(here, capsys):
    fake_artifact(here / "c")
    assert main(["pull", "file", "good.nt", "--out", "c"]) == 2
    assert "holds a kgllm 'corpus' artifact, not 'graph'; pass --force" in err_line(capsys)
    assert main(["pull", "file", "good.nt", "--out", "c", "--force"]) == 0
    assert read_manifest(here / "c").kind == "graph"
    fake_artifact(here / "w")
    assert main(["pull", "wordnet", "--root", "dog.n.01", "--relation", "hypernym", "--out", "w"]) == 2
    assert "pass --force" in err_line(capsys)
    assert main(["pull", "wordnet", "--root", "dog.n.01", "--relation", "hypernym", "--out", "w", "--force"]) == 0


# ----------------------------------------------------------------------------- 2. zero triples


def test_empty_file_fails_unless_allowed(here, capsys):
    (here / "empty.ttl").write_bytes(b"# nothing here\n")
    assert main(["pull", "file", "empty.ttl", "--out", "g"]) == 1
    assert err_line(capsys) == ("kgllm: error: pull file: empty.ttl: 0 triples; "
                                "pass --allow-empty to accept an empty graph")
    assert not (here / "g").exists()
    assert main(["pull", "file", "empty.ttl", "--out", "g", "--allow-empty"]) == 0
    err = capsys.readouterr().err
    assert "WARNING" in err and "empty.ttl: 0 triples" in err and "kgllm: error" not in err
    man = read_manifest(here / "g")
    assert man.counts["triples"] == 0 and man.config["allow_empty"] is True
    assert main(["pull", "file", "empty.ttl", "--out", "h", "--set", "allow_empty=true"]) == 0  # the config key
    capsys.readouterr()


def test_dbpedia_lang_must_be_a_language_tag(here, capsys):
    assert main(["pull", "dbpedia", "--param", "lang=english", "--out", "g"]) == 2
    line = err_line(capsys)
    assert line.startswith("kgllm: error: preset class-facts: parameter lang: 'english' is not a language tag")
    assert "like en or de" in line
    assert not (here / "g").exists()


def test_dbpedia_zero_triples_fails_unless_allowed(here, capsys):
    cmd = ["pull", "dbpedia", "--preset", "labels", "--param", "lang=de", *DBPEDIA_DATA, "--out", "g"]
    assert main(cmd) == 1
    line = err_line(capsys)
    assert "the query dbpedia/labels (class=owl:Thing, lang=de) returned 0 triples" in line
    assert line.endswith("pass --allow-empty to accept an empty graph")
    assert not (here / "g").exists() and not (here / ".g.harvest").exists()
    assert main([*cmd, "--allow-empty"]) == 0
    assert "returned 0 triples" in capsys.readouterr().err
    assert read_manifest(here / "g").counts["triples"] == 0
    en = ["pull", "dbpedia", "--preset", "labels", "--param", "lang=en", *DBPEDIA_DATA, "--out", "en"]
    assert main(en) == 0 and read_manifest(here / "en").counts["triples"] > 50
    capsys.readouterr()


def test_wordnet_zero_triples_fails_unless_allowed(here, capsys):
    assert main(["pull", "wordnet", "--root", "dog.n.01", "--pos", "v", "--out", "g"]) == 1
    assert err_line(capsys) == ("kgllm: error: pull wordnet: the selection (roots dog.n.01, pos v) has 0 triples; "
                                "pass --allow-empty to accept an empty graph")
    assert not (here / "g").exists()
    assert main(["pull", "wordnet", "--root", "dog.n.01", "--pos", "v", "--out", "g", "--allow-empty"]) == 0
    assert read_manifest(here / "g").counts["triples"] == 0
    capsys.readouterr()


def test_sparql_zero_triples_fails_unless_allowed(here, capsys, endpoint):
    (here / "q.rq").write_text(QUERY)
    cmd = ["pull", "sparql", "--endpoint", endpoint.url, "--query", "q.rq", "--out", "g"]
    assert main(cmd) == 1
    assert err_line(capsys) == (f"kgllm: error: {endpoint.url}: the query q.rq returned 0 triples; "
                                "pass --allow-empty to accept an empty graph")
    assert not (here / "g").exists() and not (here / ".g.harvest").exists()
    assert main([*cmd, "--allow-empty"]) == 0
    assert read_manifest(here / "g").counts["triples"] == 0
    capsys.readouterr()


# ----------------------------------------------------------------------------- 3. all quarantined


def test_skip_bad_that_quarantines_everything_exits_1(here, capsys):
    (here / "bad.nt").write_bytes(b"garbage\n\nnot a triple either\n")
    assert main(["pull", "file", "bad.nt", "--skip-bad", "--out", "g"]) == 1
    problems = [x for x in capsys.readouterr().err.splitlines() if x.startswith("kgllm: problem:")]
    assert problems == ["kgllm: problem: all 2 statements of bad.nt were quarantined (see g/quarantine.jsonl); "
                        "is it in another format?"]
    man = read_manifest(here / "g")  # written, with its quarantine and the problem
    assert man.problems and man.counts["bad_lines"] == 2 and man.counts["triples"] == 0
    assert len((here / "g" / "quarantine.jsonl").read_text().splitlines()) == 2
    # Partly bad input: the good lines are kept and the pull is a success.
    (here / "some.nt").write_bytes(GOOD_NT + b"garbage\n")
    assert main(["pull", "file", "some.nt", "--skip-bad", "--out", "h"]) == 0
    assert "kgllm: problem" not in capsys.readouterr().err
    assert read_manifest(here / "h").counts["triples"] == 2


# ----------------------------------------------------------------------------- 4. messages


def test_a_directory_is_not_an_input_file(here, capsys):
    (here / "data").mkdir()
    assert main(["pull", "file", "data", "--out", "g"]) == 2
    assert err_line(capsys) == "kgllm: error: data: is a directory, not an RDF file; give the files in it (e.g. data/*.nt)"


def test_a_url_is_not_an_input_file(here, capsys):
    assert main(["pull", "file", "https://example.org/data.ttl", "--out", "g"]) == 2
    line = err_line(capsys)
    assert line.startswith("kgllm: error: https://example.org/data.ttl: is a URL;")
    assert "download the file first" in line and "kgllm pull sparql" in line


@pytest.mark.parametrize("name,data", [("bom.ttl", GOOD_TTL), ("bom.nt", GOOD_NT), ("bom.nt.gz", GOOD_NT)])
def test_a_utf8_byte_order_mark_is_accepted(here, capsys, name, data):
    import gzip

    data = b"\xef\xbb\xbf" + data
    (here / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    assert main(["pull", "file", name, "--out", "g"]) == 0
    assert set(iter_graph(here / "g")) == {("<http://x.org/a>", "<http://x.org/p>", "<http://x.org/b>"),
                                           ("<http://x.org/a>", "<http://x.org/q>", '"x"@en')}
    capsys.readouterr()


def test_a_wrong_format_says_so(here, capsys):
    (here / "data.ttl").write_bytes(GOOD_TTL)
    assert main(["pull", "file", "data.ttl", "--format", "xml", "--out", "g"]) == 2
    line = err_line(capsys)
    assert line.startswith("kgllm: error: data.ttl:1:1: could not be read as rdfxml (--format xml): ")
    assert line.endswith("its extension says turtle: drop --format or pass --format ttl")
    assert "fix the file" not in line
    (here / "data.dat").write_bytes(GOOD_TTL)  # no telling extension: check --format
    assert main(["pull", "file", "data.dat", "--format", "nt", "--out", "g"]) == 2
    line = err_line(capsys)
    assert line.startswith("kgllm: error: data.dat:1:") and "could not be read as ntriples (--format nt)" in line
    assert line.endswith("check --format")
    assert not (here / "g").exists()


@pytest.mark.parametrize("body,where", [
    ('<rdf:Description rdf:about="http://x.org/a">\n  <p>x</p>\n</rdf:Description>\n', "5:3"),  # no namespace
    ('<rdf:Description rdf:about="http://x.org/a">\n  <ex:p>x</ex:q>\n</rdf:Description>\n', "5:10"),  # ill-formed
    ('<rdf:Description rdf:about="http://x.org/a">\n <ex:p rdf:resource="not an iri"/>\n</rdf:Description>\n',
     "5:22"),  # a bad IRI
])
def test_rdfxml_errors_carry_the_line(here, capsys, body, where):
    (here / "bad.rdf").write_text(RDF_HEAD + "\n" + body + "</rdf:RDF>\n")
    assert main(["pull", "file", "bad.rdf", "--out", "g"]) == 2
    line = err_line(capsys)
    assert line.startswith(f"kgllm: error: bad.rdf:{where}: malformed rdfxml: "), line


def test_wordnet_root_must_be_a_synset_name(here, capsys):
    assert main(["pull", "wordnet", "--root", "dog", "--out", "x"]) == 2
    line = err_line(capsys)
    assert line == ("kgllm: error: roots: 'dog' is not a synset name; write lemma.pos.sense like dog.n.01 "
                    "(pos n, v, a, s or r)")
    assert "unpack" not in line and not (here / "x").exists()


# ----------------------------------------------------------------------------- 5. dbpedia usage


def test_dbpedia_usage_shows_out_is_required(here, capsys):
    with pytest.raises(SystemExit) as e:
        main(["pull", "dbpedia", "--help"])
    assert e.value.code == 0
    usage = capsys.readouterr().out.split("\n\n")[0]
    assert "(--out OUT | --list-presets)" in " ".join(usage.split())
    assert "[--out OUT]" not in usage
    assert main(["pull", "dbpedia"]) == 2
    assert err_line(capsys) == "kgllm: error: kgllm pull dbpedia: one of the arguments --out --list-presets is required"
    assert main(["pull", "dbpedia", "--list-presets"]) == 0
    assert "class-facts:" in capsys.readouterr().out


# ----------------------------------------------------------------------------- 6. inputs checked first


def test_every_input_is_checked_before_any_work(here, capsys, endpoint):
    (here / "data").mkdir()
    assert main(["pull", "file", "good.nt", "missing.nt", "--out", "g"]) == 2
    assert err_line(capsys) == "kgllm: error: missing.nt: no such file"
    assert main(["pull", "file", "good.nt", "data", "--out", "g"]) == 2
    assert "data: is a directory" in err_line(capsys)
    assert not (here / "g").exists() and not list(here.glob(".g.*"))
    assert main(["pull", "dbpedia", *DBPEDIA_DATA, "--data", "data", "--out", "g"]) == 2
    assert err_line(capsys) == "kgllm: error: data: is a directory, not a data file; give the dump files in it"
    assert main(["pull", "dbpedia", "--data", "missing.ttl", "--out", "g"]) == 2
    assert err_line(capsys) == "kgllm: error: missing.ttl: data file does not exist"
    assert main(["pull", "sparql", "--endpoint", endpoint.url, "--query", "data", "--out", "g"]) == 2
    assert err_line(capsys) == "kgllm: error: data: is a directory, not a query file; give a .rq file"
    assert main(["pull", "sparql", "--endpoint", endpoint.url, "--query", "nope.rq", "--out", "g"]) == 2
    assert err_line(capsys) == "kgllm: error: nope.rq: query file does not exist"
    assert endpoint.requests == 0 and not (here / "g").exists()
