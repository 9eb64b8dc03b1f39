"""``pull.dbpedia``: the presets in queries/dbpedia, offline on the bundled sample and on a real Virtuoso.

Offline results are checked against an independent reference: the preset's meaning re-implemented in
plain Python over the same real DBpedia dump files.
"""

from __future__ import annotations

import lzma
import re
from pathlib import Path

import pytest
from conftest import DBPEDIA_SAMPLE
from test_pull_sparql import load_reference_data
from virtuoso import shared

from kgllm.artifacts import read_manifest, verify_artifact
from kgllm.errors import EmptyResultError, UsageError
from kgllm.pull.dbpedia import (
    DbpediaConfig,
    default_data,
    escape,
    list_presets,
    load_preset,
    pull_dbpedia,
)
from kgllm.pull.sparql import HarvestConfig, StoreEndpoint, harvest, parse_query
from kgllm.rdf import (
    DBO,
    FOAF,
    OWL,
    OWL_CLASS,
    RDF_TYPE,
    RDFS_COMMENT,
    RDFS_LABEL,
    RDFS_SUBCLASSOF,
    XSD,
    graph_shards,
    iri,
    iter_graph,
)

TYPE = RDF_TYPE
OWL_THING = iri(OWL + "Thing")
CORE = ["instance_types_transitive_en", "labels_en", "short_abstracts_en", "long_abstracts_en",
        "mappingbased_objects_en", "mappingbased_literals_en", "specific_mappingbased_properties_en"]


@pytest.fixture(scope="session")
def vt(tmp_path_factory):
    """The same shared Virtuoso as test_pull_sparql (one server for both modules)."""
    with shared("kgllm-sparql", lambda: tmp_path_factory.mktemp("virtuoso"), setup=load_reference_data) as v:
        yield v


@pytest.fixture(scope="module")
def sample_triples() -> set[tuple[str, str, str]]:
    """The sample's triples with literals in the store's canonical form: pyoxigraph, like Virtuoso,
    keeps literals by value (xsd:nonNegativeInteger "5" is read back as xsd:integer "5"), so the
    reference goes through a bare store too. Only the query semantics are re-implemented below."""
    return store_triples(sorted(DBPEDIA_SAMPLE.glob("*.ttl.xz")))


@pytest.fixture(scope="module")
def core_triples() -> set[tuple[str, str, str]]:
    return store_triples(core_files())


def store_triples(files: list[Path]) -> set[tuple[str, str, str]]:
    import pyoxigraph

    store = pyoxigraph.Store()
    for f in files:
        store.bulk_load(lzma.decompress(f.read_bytes()), format=pyoxigraph.RdfFormat.N_TRIPLES)
    return {(str(q.subject), str(q.predicate), str(q.object)) for q in store}


def core_files() -> list[Path]:
    return [DBPEDIA_SAMPLE / f"{n}.ttl.xz" for n in CORE]


def _lang_ok(o: str, lang: str) -> bool:
    m = re.search(r'"@([A-Za-z0-9-]+)$', o)
    return not o.startswith('"') or m is None or lang == "*" or m.group(1).lower().split("-")[0] == lang


def class_facts(triples, cls: str, lang: str = "en") -> set:
    """What class-facts.rq means, in plain Python."""
    inst = {s for s, p, o in triples if p == TYPE and o == iri(cls)}
    keep = {TYPE, RDFS_LABEL, RDFS_COMMENT, iri(FOAF + "name")}
    return {(s, p, o) for s, p, o in triples if s in inst and _lang_ok(o, lang) and (
        p in keep or (p.startswith(f"<{DBO}") and not p.startswith(f"<{DBO}wikiPage")))}


def graph_set(out: Path) -> set:
    triples = list(iter_graph(out))
    assert len(triples) == len(set(triples))
    return set(triples)


# ----------------------------------------------------------------------------- presets


def test_every_preset_is_documented_and_valid():
    presets = {p.name: p for p in list_presets()}
    assert {"class-facts", "persons", "places", "organisations", "works", "labels", "ontology"} <= set(presets)
    for p in presets.values():
        assert p.summary, f"{p.path}: no description in the header"
        for prm in p.params:
            assert prm.type in ("iri", "lang", "string", "int") and prm.default and prm.help, prm
        text, used = p.render()
        assert "${" not in text and set(used) == {x.name for x in p.params}
        q = parse_query(text, p.name)  # rdflib validates the syntax
        assert q.form == "CONSTRUCT" and q.variables == ("o", "p", "s")
    assert presets["places"].render()[1] == {"class": "dbo:Place", "lang": "en"}


def test_parameters_are_escaped_not_injected():
    pfx = {"ex": "http://example.org/"}
    assert escape("iri", "dbo:Airline", {}, "t") == f"<{DBO}Airline>"
    assert escape("iri", "ex:x", pfx, "t") == "<http://example.org/x>"
    assert escape("iri", "<http://a.b/c?d=e#f>", {}, "t") == "<http://a.b/c?d=e#f>"
    assert escape("iri", "http://a.b/c", {}, "t") == "<http://a.b/c>"
    assert escape("lang", "pt-BR", {}, "t") == '"pt-BR"' and escape("lang", "*", {}, "t") == '"*"'
    assert escape("int", " 42", {}, "t") == "42"
    lit = escape("string", 'a"b\\c\n} ; DROP ALL', {}, "t")
    assert lit == '"a\\"b\\\\c\\n} ; DROP ALL"'
    parse_query(f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ ?s ?p ?o FILTER(?o = {lit}) }}")  # one literal, still valid
    for kind, bad in [("iri", "dbo:X> } ; DROP ALL ; <y"), ("iri", "nope:x"), ("iri", "a b"), ("iri", "plain"),
                      ("lang", 'en") || true || ("'), ("lang", "e n"), ("int", "1; DROP")]:
        with pytest.raises(UsageError):
            escape(kind, bad, {}, f"param {kind}")
    with pytest.raises(UsageError, match="unknown parameter 'klass'"):
        load_preset("places").render({"klass": "dbo:City"})
    with pytest.raises(UsageError, match="unknown DBpedia preset 'nope'; presets: class-facts"):
        load_preset("nope")


# ----------------------------------------------------------------------------- embedded store (offline)


def test_embedded_class_facts_match_the_dump_files(tmp_path, sample_triples):
    out = tmp_path / "orgs"
    man = pull_dbpedia(out, DbpediaConfig(preset="organisations"))
    want = class_facts(sample_triples, f"{DBO}Organisation")
    assert len(want) > 500 and graph_set(out) == want
    c = man.counts
    assert c["triples"] == c["expected_triples"] == len(want) and c["pages"] == 1
    assert c["results"] == c["triples"] + c["duplicates"] + c["skipped_rows"]  # every row accounted for
    assert man.extra["preset"] == "organisations" and man.extra["params"] == {"class": "dbo:Organisation",
                                                                              "lang": "en"}
    assert {Path(i["path"]) for i in man.inputs} == {load_preset("organisations").path, *default_data()}
    prov = graph_shards(out)[0]["provenance"]
    assert prov["source"] == "sparql" and prov["endpoint"].startswith("embedded:")
    assert prov["query"] == "dbpedia/organisations" and prov["query_sha256"] == man.extra["preset_sha256"]
    verify_artifact(out)


def test_params_class_and_lang(tmp_path, core_triples):
    # The sample types its airlines, carmakers... as dbo:Company (no dbo:Airline in this 2015 sample).
    cfg = DbpediaConfig(preset="class-facts", params={"class": f"<{DBO}Company>", "lang": "*"}, data=core_files())
    pull_dbpedia(tmp_path / "co", cfg)
    want = class_facts(core_triples, f"{DBO}Company", "*")
    assert graph_set(tmp_path / "co") == want and len({s for s, _, _ in want}) == 15 and len(want) > 300
    # The sample is English only: German labels and abstracts come back empty (an error unless
    # allow_empty, and nothing is written), English ones complete.
    with pytest.raises(EmptyResultError, match="0 triples.*--allow-empty"):
        pull_dbpedia(tmp_path / "de", DbpediaConfig(preset="labels", params={"lang": "de"}, data=core_files()))
    assert not (tmp_path / "de").exists()
    de = pull_dbpedia(tmp_path / "de", DbpediaConfig(preset="labels", params={"lang": "de"}, data=core_files(),
                                                     allow_empty=True))
    assert de.counts["triples"] == 0
    en = pull_dbpedia(tmp_path / "en", DbpediaConfig(preset="labels", data=core_files()))
    things = {s for s, p, o in core_triples if p == TYPE and o == OWL_THING}
    props = {RDFS_LABEL, RDFS_COMMENT, iri(DBO + "abstract")}
    want = {t for t in core_triples if t[0] in things and t[1] in props and t[2].endswith('"@en')}
    assert graph_set(tmp_path / "en") == want and en.counts["triples"] == len(want) > 150


def test_ontology_preset(tmp_path):
    man = pull_dbpedia(tmp_path / "dbo", DbpediaConfig(preset="ontology", params={"lang": "en"},
                                                       data=[default_data()[-1]]))
    g = graph_set(tmp_path / "dbo")
    assert (f"<{DBO}Person>", TYPE, OWL_CLASS) in g
    assert (f"<{DBO}Architect>", RDFS_SUBCLASSOF, f"<{DBO}Person>") in g
    assert (f"<{DBO}Person>", RDFS_LABEL, '"person"@en') in g
    assert not any(o.endswith('"@de') for _, _, o in g)
    assert all(s.startswith(f"<{DBO}") for s, _, _ in g) and man.counts["triples"] > 5_000


def test_pipeline_step_and_rerun_skips(tmp_path):
    from kgllm.pipeline import run_pipeline

    data = "\n".join(f"          - {f}" for f in core_files())
    y = tmp_path / "p.yaml"
    y.write_text(f"workdir: runs\nsteps:\n  - id: works\n    stage: pull.dbpedia\n    config:\n"
                 f"      preset: works\n      data:\n{data}\n", "utf-8")
    first = run_pipeline(y)
    second = run_pipeline(y)
    assert first[0].status == "ran" and second[0].status == "skipped"
    man = read_manifest(tmp_path / "runs" / "works")
    assert man.pipeline_key and man.counts["triples"] == first[0].counts["triples"] > 50


# ----------------------------------------------------------------------------- a real endpoint


def test_presets_on_virtuoso_match_embedded(vt, tmp_path):
    """The same preset text on Virtuoso (through the CLI) and on the embedded store: the same facts.

    Virtuoso stores numbers by value, so numeric literals may come back with another XSD integer
    type; everything else must be identical."""
    from kgllm.cli import main

    emb = tmp_path / "emb"
    pull_dbpedia(emb, DbpediaConfig(preset="places"))
    args = ["pull", "dbpedia", "--endpoint", vt.endpoint, "--preset", "places", "--out", str(tmp_path / "vt")]
    for g in vt.dbpedia_graphs:
        args += ["--default-graph", g]
    assert main(args) == 0
    a, b = graph_set(emb), graph_set(tmp_path / "vt")
    assert len(a) == len(b) > 150

    def plain(g):
        return {t for t in g if f"^^<{XSD}" not in t[2]}

    assert plain(a) == plain(b)
    man = read_manifest(tmp_path / "vt")
    assert man.extra["endpoint"] == vt.endpoint and man.counts["expected_triples"] == len(b)
    assert man.config["endpoint"] == vt.endpoint and man.config["preset"] == "places"
    assert man.config["harvest"]["default_graph"] == vt.dbpedia_graphs


def test_cli_list_presets_and_errors(capsys, tmp_path):
    from kgllm.cli import main

    assert main(["pull", "dbpedia", "--list-presets"]) == 0
    out = capsys.readouterr().out
    assert "class-facts:" in out and "class (iri, default dbo:Person)" in out and "ontology:" in out
    assert main(["pull", "dbpedia", "--preset", "places", "--param", "class=dbo:X>}", "--out",
                 str(tmp_path / "x")]) == 2
    assert "not a valid IRI" in capsys.readouterr().err
    cfg = DbpediaConfig()
    assert cfg.harvest.default_graph == ["http://dbpedia.org"] and isinstance(cfg.harvest, HarvestConfig)


def test_select_query_on_the_embedded_store(tmp_path):
    """SELECT ?s ?p ?o through the embedded store: typed, tagged and plain literals survive; rows with
    a literal subject are skipped and counted, not dropped silently."""
    import pyoxigraph

    store = pyoxigraph.Store()
    store.bulk_load(b'<urn:a> <urn:p> "x"@en .\n<urn:a> <urn:p> "2"^^<urn:dt> .\n<urn:a> <urn:q> "plain" .\n'
                    b'<urn:b> <urn:p> <urn:a> .\n', format=pyoxigraph.RdfFormat.N_TRIPLES)
    q = "SELECT ?s ?p ?o WHERE { { ?s ?p ?o } UNION { ?x <urn:q> ?s . BIND(<urn:r> AS ?p) BIND(?x AS ?o) } }"
    man = harvest(StoreEndpoint(store, "embedded:test"), q, tmp_path / "sel", HarvestConfig())
    assert graph_set(tmp_path / "sel") == {("<urn:a>", "<urn:p>", '"x"@en'), ("<urn:a>", "<urn:p>", '"2"^^<urn:dt>'),
                                           ("<urn:a>", "<urn:q>", '"plain"'), ("<urn:b>", "<urn:p>", "<urn:a>")}
    c = man.counts
    assert c["skipped_rows"] == 1 and c["results"] == 5 == c["triples"] + c["duplicates"] + c["skipped_rows"]
    assert c["expected_triples"] == 4
