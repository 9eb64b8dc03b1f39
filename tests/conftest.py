"""Shared test set-up: offline, CPU-only, caches in a temp dir, real data from the repo.

Fixtures here build real artifacts from the bundled DBpedia sample (examples/data/dbpedia-sample,
real DBpedia 2015-10 dump files) so every stage's tests start from the same real graph.
"""

from __future__ import annotations

import atexit
import lzma
import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"
DBPEDIA_SAMPLE = DATA / "dbpedia-sample"
ONTOLOGIES = ROOT / "ontologies"

# Offline and quiet before anything imports transformers/datasets/tokenizers.
_TMP = Path(tempfile.mkdtemp(prefix="kgllm-tests-"))
if not os.environ.get("KGLLM_KEEP_TEST_TMP"):  # set it to keep the session's temp dir for debugging
    atexit.register(shutil.rmtree, _TMP, True)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["HF_HOME"] = str(_TMP / "hf")
os.environ["PYSTOW_HOME"] = str(_TMP / "pystow")
os.environ["KGLLM_PROGRESS"] = "0"
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# The stop tests send SIGINT (Ctrl-C) to kgllm processes they start. A test run launched as a background
# job of a non-interactive shell (`cmd &`, nohup) inherits SIGINT ignored, and an ignored signal stays
# ignored across exec, so Python would not turn it into KeyboardInterrupt in those children: give the test
# process a handler, which exec resets to the default for every child.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# Prepared offline resources (WordNet nltk dir, converted models) come from `make`'s KGLLM_HOME;
# without one, tests prepare them into the temp dir.
os.environ.setdefault("KGLLM_HOME", str(_TMP / "kgllm-home"))

# Small, real DBpedia files used by most stage tests (the two large xz files are left out for speed).
DBPEDIA_CORE_FILES = (
    "labels_en.ttl.xz",
    "instance_types_transitive_en.ttl.xz",
    "mappingbased_objects_en.ttl.xz",
    "mappingbased_literals_en.ttl.xz",
    "short_abstracts_en.ttl.xz",
)


def dbpedia_files(names=DBPEDIA_CORE_FILES) -> list[Path]:
    return [DBPEDIA_SAMPLE / n for n in names]


def write_graph(out: Path, files: list[Path]) -> Path:
    """A graph artifact from N-Triples(-compatible) files, one shard per file (provenance = file)."""
    import pyoxigraph

    from kgllm.rdf import GraphWriter

    with GraphWriter(out, config={"files": [f.name for f in files]}) as g:
        for f in files:
            opener = lzma.open if f.suffix == ".xz" else open
            with opener(f, "rb") as fh, g.shard({"source": "file", "path": f.name}) as add:
                for q in pyoxigraph.parse(fh, format=pyoxigraph.RdfFormat.N_TRIPLES):
                    add(str(q.subject), str(q.predicate), str(q.object))
    return out


@pytest.fixture(scope="session")
def session_tmp() -> Path:
    return _TMP


@pytest.fixture(scope="session")
def dbpedia_graph(session_tmp) -> Path:
    """Graph artifact of the core DBpedia sample files (about 1.6k real triples, 98 entities)."""
    out = session_tmp / "graphs" / "dbpedia-core"
    if not (out / "manifest.json").exists():
        write_graph(out, dbpedia_files())
    return out


@pytest.fixture(scope="session")
def dbpedia_ontology_owl(session_tmp) -> Path:
    """The DBpedia ontology (RDF/XML), decompressed from ontologies/dbpedia/dbo.owl.xz."""
    out = session_tmp / "ontologies" / "dbo.owl"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(lzma.decompress((ONTOLOGIES / "dbpedia" / "dbo.owl.xz").read_bytes()))
    return out


def cli_error(capsys) -> str:
    """The one ``kgllm: error:`` line a CLI run wrote to stderr (log lines aside)."""
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("kgllm: error:")]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def here(tmp_path, monkeypatch):
    """Run in a fresh working directory, as a user types relative paths."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def rag_index(session_tmp, dbpedia_graph) -> Path:
    """The ask tests' index: a DBpedia subset and a WordNet subset (see test_ask_answer.build_rag_index)."""
    from test_ask_answer import build_rag_index

    return build_rag_index(session_tmp, dbpedia_graph)


@pytest.fixture(scope="session")
def answerer(rag_index):
    from kgllm.ask.answer import Answerer

    return Answerer.from_dir(rag_index)
