"""The trained verbalizer on a tiny real model: training stage, checked decoding with retry and template
fallback, re-aligned spans and sentence triple ids, the corpus stage and the CLI with ``--model``.

The tiny Llama (hidden 32, 2 layers) trains a few steps on real WebNLG dev entries (the bundled copy);
its outputs are junk, so every text it writes fails the check and falls back to the templates. The paths
where a model text passes are tested on given texts: the check and :func:`realign.annotate` directly, and
the corpus rewrite with a verbalizer whose ``generate`` writes one plain sentence per input line.
"""

from __future__ import annotations

import json
import lzma
import re
from pathlib import Path

import pytest

from kgllm.corpus import faithfulness as F
from kgllm.corpus import neural, realign
from kgllm.corpus.verbalize import TemplateVerbalizer, referring_expression
from kgllm.rdf import DBO, DBR, iri, literal, triple_id

DEV = Path(__file__).resolve().parent.parent / "examples" / "data" / "webnlg" / "dev.xml.xz"
XSD = "http://www.w3.org/2001/XMLSchema#"
FAST = {"max_steps": 2, "batch_size": 4, "save_steps": 2, "logging_steps": 1, "max_length": 256,
        "max_train_examples": 24}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    import tiny

    d = tmp_path_factory.mktemp("tiny-verbalizer")
    corpus = tiny.write_tiny_corpus(d / "corpus")
    return tiny.write_tiny_model(tiny.train_tiny_tokenizer(corpus, d / "tok"), d / "model")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model) -> Path:
    """A verbalizer trained (2 steps) on dev entries of every category but Monument."""
    from kgllm.registry import run_stage

    out = tmp_path_factory.mktemp("verbalizer") / "model"
    run_stage("train.verbalizer", [], out, {**FAST, "model": str(tiny_model), "webnlg": [str(DEV)], "dev": [str(DEV)],
                                            "exclude_categories": ["Monument"], "max_eval_examples": 8})
    return out


def _junk_verbalizer(path: Path, **kw) -> neural.NeuralVerbalizer:
    return neural.NeuralVerbalizer(path, max_new_tokens=kw.pop("max_new_tokens", 6), retry_beams=kw.pop("retry_beams", 2),
                                   batch_size=8, device="cpu", **kw)


class LineVerbalizer(neural.NeuralVerbalizer):
    """The real checked path (verbalize_many, check, retry, fallback) with a "model" that writes one
    sentence per input line ("S has P O."): its texts pass the check, so the rewrite of documents from
    model texts can be tested without a trained model."""

    def generate(self, prompts, *, num_beams=1, num_return=1, desc=""):
        out = []
        for p in prompts:
            lines = p.split("\n")[1:]
            text = " ".join(f"{s} has {pr} {o}." for s, pr, o in (x.split(" | ") for x in lines))
            out.append([text] * num_return)
        return out


# ----------------------------------------------------------------------------- the check, literals


def test_planted_omission_and_hallucination_are_caught_in_corpus_terms():
    s, bp = iri(DBR + "Walter_Warlimont"), iri(DBO + "birthPlace")
    born = iri(DBR + "Osnabrück")
    date = literal("1894-10-03", datatype=XSD + "date")
    triples = [(s, bp, born), (s, iri(DBO + "birthDate"), date)]
    known = [s, born, iri(DBR + "Kreuth"), iri(DBR + "Berlin")]
    good = F.check("Walter Warlimont was born in Osnabrück on 3 October 1894.", triples, known_entities=known)
    assert good.ok
    omitted = F.check("Walter Warlimont was born in Osnabrück.", triples, known_entities=known)
    assert omitted.omissions == [date] and omitted.omitted_triples == [1]
    # the death place and year are in the graph (a deathPlace fact), but not in these triples
    invented = F.check("Walter Warlimont was born in Osnabrück on 3 October 1894 and died in Kreuth in 1976.",
                       triples, known_entities=known)
    assert [h for h, _ in invented.hallucinations] == ["Kreuth", "1976"] and not invented.omissions


def test_literals_are_realized_in_the_model_input_and_in_the_checked_mentions():
    webnlg = [("Aarhus_Airport", "runwayLength", "2776.0"), ("Alan_Bean", "birthDate", '"1932-03-15"'),
              ("Aarhus_Airport", "elevationAboveTheSeaLevel", "17068.8 (millimetres)")]
    text = neural.linearize(webnlg)
    assert text.splitlines() == ["Aarhus Airport | runway length | 2776", "Alan Bean | birth date | 15 March 1932",
                                 "Aarhus Airport | elevation above the sea level | 17,068.8 millimetres"]
    nt = [(iri(DBR + "Erich_Marcks"), iri(DBO + "birthDate"), literal("1891-06-06", datatype=XSD + "date"))]
    assert neural.linearize(nt, predicate_label=lambda p: "birth date" if p.endswith("birthDate>") else None) \
        == "Erich Marcks | birth date | 6 June 1891"
    # the forms a text may use for those values are mentions
    f = F.check("Erich Marcks was born on June 6th, 1891.", nt)
    assert f.ok
    p = neural.prompt(webnlg[:1])
    assert p.startswith(neural.INSTRUCTION + "\n") and neural.sft_row(p, "It is long.", False) == {
        "prompt": p + "\nText:", "completion": " It is long."}


def test_template_referring_expressions_after_the_first_mention():
    v = TemplateVerbalizer(templates={})
    # five one-fact sentences about one subject: four are joined, the fifth names the subject again
    others = [("fooBar", "Baz"), ("barBaz", "Qux"), ("quxQuux", "Zed"), ("zedZed", "Foo")]
    person = [("Alan_Bean", "birthPlace", "Wheeler,_Texas"), *(("Alan_Bean", p, o) for p, o in others)]
    assert referring_expression("Alan_Bean", person) == "Bean"
    text = v.verbalize(person)
    assert text.startswith("Alan Bean was born in Wheeler, Texas") and text.endswith(" Bean's zed zed is Foo.")
    assert text.count("Alan Bean") == 1
    thing = [("Aarhus_Airport", "cityServed", "Aarhus"), *(("Aarhus_Airport", p, o) for p, o in others)]
    out = v.verbalize(thing)
    assert out.startswith("Aarhus Airport") and out.endswith(" Its zed zed is Foo.")
    assert TemplateVerbalizer(templates={}, referring=False).verbalize(thing).count("Aarhus Airport") == 2
    assert referring_expression("1634:_The_Ram_Rebellion", []) == "It" and referring_expression("1995", []) == "1995"


# ----------------------------------------------------------------------------- re-alignment


def test_annotate_maps_mentions_to_iris_and_sentences_to_triple_ids():
    s, o1, o2 = iri(DBR + "Walter_Warlimont"), iri(DBR + "St._Louis"), iri(DBR + "Kreuth")
    date = literal("1976-04-09", datatype=XSD + "date")
    triples = [(s, iri(DBO + "birthPlace"), o1), (s, iri(DBO + "deathPlace"), o2), (s, iri(DBO + "deathDate"), date)]
    ids = [triple_id(*t) for t in triples]
    text = "Walter Warlimont was born in St. Louis. He died in Kreuth on 9 April 1976."
    f = F.check(text, triples, known_entities=[s, o1, o2])
    assert f.ok
    types = {s: [iri("http://dbpedia.org/ontology/Person")]}
    ann = realign.annotate(text, triples, ids, f, lambda t: types.get(t, ()))
    # every span's surface is its text, and points at the IRI (literals are values, not spans)
    got = [(sp["surface"], sp["iri"], sp["types"]) for sp in ann["spans"]]
    assert got == [("Walter Warlimont", DBR + "Walter_Warlimont", ["http://dbpedia.org/ontology/Person"]),
                   ("St. Louis", DBR + "St._Louis", []), ("Kreuth", DBR + "Kreuth", [])]
    assert all(text[sp["start"]:sp["end"]] == sp["surface"] for sp in ann["spans"])
    # "St. Louis" is no sentence end; the second sentence states death place and date
    assert [(text[x["start"]:x["end"]], x["triple_ids"]) for x in ann["sentences"]] == [
        ("Walter Warlimont was born in St. Louis.", [ids[0]]),
        ("He died in Kreuth on 9 April 1976.", sorted([ids[1], ids[2]]))]


# ----------------------------------------------------------------------------- training and decoding


def test_train_verbalizer_writes_a_model_that_describes_itself(trained):
    from kgllm.artifacts import verify_artifact

    man = verify_artifact(trained)
    assert man.kind == "model.verbalizer"
    assert man.config["exclude_categories"] == ["Monument"]
    c = man.counts
    assert c["train_examples"] + c["train_examples_too_long"] == 24 and c["train_examples"] > 12
    assert c["eval_examples"] + c["eval_examples_too_long"] == 8 and c["steps"] == 2
    assert man.extra["verbalizer"]["exclude_categories"] == ["Monument"]
    assert "Monument" not in man.extra["verbalizer"]["train_categories"]
    tc = json.loads((trained / "training_config.json").read_text())
    assert tc["verbalizer"]["prompt_format"] == neural.PROMPT_FORMAT and tc["chat_format"] == "plain"
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["peak_rss_mb"] > 0 and "eval_runtime" in metrics  # the eval loss of the held-out category
    # the WebNLG data is read in place, never copied into the artifact
    assert not any(f["path"].endswith((".xml", ".xz")) for f in man.files)
    assert [i["path"] for i in man.inputs][:2] == [str(DEV), str(DEV)]


def test_train_verbalizer_names_an_unknown_category(tmp_path, tiny_model):
    from kgllm.errors import InputError
    from kgllm.registry import run_stage

    with pytest.raises(InputError, match="Monuments not in the WebNLG data"):
        run_stage("train.verbalizer", [], tmp_path / "m", {**FAST, "model": str(tiny_model), "webnlg": [str(DEV)],
                                                            "exclude_categories": ["Monuments"]})
    with pytest.raises(Exception, match="webnlg"):
        run_stage("train.verbalizer", [], tmp_path / "m", {**FAST, "model": str(tiny_model)})
    # trl would drop rows whose prompt fills max_length without a word; here they are counted, and none left
    # is an error that says what to do
    with pytest.raises(InputError, match="raise max_length"):
        run_stage("train.verbalizer", [], tmp_path / "m", {**FAST, "model": str(tiny_model), "webnlg": [str(DEV)],
                                                            "max_length": 8})


def test_cli_train_verbalizer(tmp_path, tiny_model, capsys):
    from kgllm.artifacts import read_manifest
    from kgllm.cli import main

    out = tmp_path / "v"
    assert main(["train", "verbalizer", "--webnlg", str(DEV), "--exclude-categories", "Monument, Food",
                 "--model", str(tiny_model), "--max-steps", "1", "--set", "batch_size=2",
                 "--set", "max_train_examples=4", "--out", str(out)]) == 0
    man = read_manifest(out)
    assert man.config["exclude_categories"] == ["Monument", "Food"] and man.counts["steps"] == 1
    assert "model.verbalizer artifact" in capsys.readouterr().out


def test_junk_outputs_fall_back_to_the_templates_and_are_counted(trained):
    from kgllm.corpus.webnlg import read_entries

    entries = [e for e in read_entries([DEV]) if e.category == "Monument"][:6]
    v = _junk_verbalizer(trained)
    results = v.verbalize_many([e.triples for e in entries])
    n = neural.tally(results)
    assert n["texts"] == 6 == n["passed"] + n["retried"] + n["fallbacks"]
    assert n["fallbacks"] == 6 and n["model_omissions"] > 0
    tv = TemplateVerbalizer()
    assert [r.text for r in results] == [tv.verbalize(e.triples) for e in entries]
    assert all(r.path == "templates" and r.first is not None and not r.first.ok for r in results)
    speed = v.speed
    assert speed["generated_tokens"] > 0 and speed["tokens_per_s"] > 0 and speed["device"] == "cpu"


def test_a_passing_output_is_kept_and_a_failing_one_retried(trained):
    class OnRetry(LineVerbalizer):
        def generate(self, prompts, *, num_beams=1, num_return=1, desc=""):
            good = super().generate(prompts, num_beams=num_beams, num_return=num_return)
            if num_beams == 1:  # the first, greedy output of the second set invents a year
                return [good[0], [good[1][0] + " It opened in 1999."]]
            return [["Nothing."] + g[1:] for g in good]  # the best beam fails, the next passes

    v = OnRetry(trained, device="cpu", max_new_tokens=8)
    sets = [[("Alan_Bean", "birthPlace", "Wheeler,_Texas")], [("Aarhus_Airport", "cityServed", "Aarhus")]]
    r = v.verbalize_many(sets)
    assert [x.path for x in r] == ["model", "retry"]
    assert r[0].text == "Alan Bean has birth place Wheeler, Texas." and r[1].first.hallucinations[0][0] == "1999"
    n = neural.tally(r)
    assert (n["passed"], n["retried"], n["fallbacks"], n["model_hallucinations"], n["hallucinations"]) == (1, 1, 0, 1, 0)


# ----------------------------------------------------------------------------- corpus stage, CLI


def test_corpus_stage_with_a_model_verbalizer_records_it_and_counts_add_up(tmp_path, dbpedia_graph, trained):
    from kgllm.artifacts import read_manifest
    from kgllm.registry import run_stage

    templates = run_stage("corpus", [dbpedia_graph], tmp_path / "t", {})
    assert templates.extra["verbalizer"] == {"kind": "templates"}
    man = run_stage("corpus", [dbpedia_graph], tmp_path / "m",
                    {"verbalizer": {"model": str(trained), "max_new_tokens": 4, "retry_beams": 2, "max_triples": 8}})
    vb, c = man.extra["verbalizer"], man.counts
    assert vb["kind"] == "model" and vb["model"] == str(trained)
    assert vb["manifest_sha256"] == read_manifest(trained).content_sha256
    assert any(i["path"] == str(trained) and i["sha256"] == vb["manifest_sha256"] for i in man.inputs)
    assert c["verbalizer_texts"] == c["verbalizer_passed"] + c["verbalizer_retried"] + c["verbalizer_fallbacks"] > 0
    assert c["verbalizer_fallbacks"] == c["verbalizer_texts"]  # the tiny model writes junk
    # the template texts it fell back to are checked too, their "it"/surname mentions credited
    assert c["verbalizer_omissions"] == 0 and c["verbalizer_model_omissions"] > 0
    assert c["triples_in_documents"] == templates.counts["triples_in_documents"]

    def docs(d):
        return sorted(json.loads(x)["text"] for s in ("train", "validation", "test")
                      for x in (d / "pretrain" / f"{s}.jsonl").read_text().splitlines())
    assert docs(tmp_path / "m") == docs(tmp_path / "t")


def test_corpus_documents_from_passing_model_texts_keep_spans_and_triple_ids(dbpedia_graph, trained):
    from kgllm.corpus.kg import KG
    from kgllm.corpus.stage import CorpusConfig, build

    kg = KG.from_graphs([dbpedia_graph])
    cfg = CorpusConfig()
    plans_t, _, _, _ = build(kg, cfg)
    plans_m, _, _, counts = build(kg, cfg, LineVerbalizer(trained, device="cpu", max_new_tokens=8))
    assert counts["verbalizer_texts"] > 50
    assert counts["verbalizer_passed"] + counts["verbalizer_retried"] + counts["verbalizer_fallbacks"] \
        == counts["verbalizer_texts"]
    assert counts["verbalizer_passed"] > counts["verbalizer_texts"] // 2
    written = 0
    for e, pt in plans_t.items():
        dt, dm = pt.doc, plans_m[e].doc
        if dt is None:
            continue
        # the same triples are in the document, each in a sentence
        assert sorted({t for s in dt["sentences"] for t in s["triple_ids"]}) == \
            sorted({t for s in dm["sentences"] for t in s["triple_ids"]})
        for sp in dm["spans"]:
            assert dm["text"][sp["start"]:sp["end"]] == sp["surface"] and sp["iri"]
        for s in dm["sentences"]:
            assert dm["text"][s["start"]:s["end"]].strip() == dm["text"][s["start"]:s["end"]]
        if dm["text"] != dt["text"]:
            written += 1
            # a model sentence "S has P O." carries the id of (S, P, O)
            for s in dm["sentences"]:
                sent = dm["text"][s["start"]:s["end"]]
                if " has " in sent and len(s["triple_ids"]) == 1 and sent.count(".") == 1:
                    [tid] = s["triple_ids"]
                    g = next(g for g in pt.groups if tid in g.ids)
                    obj = g.objects[g.ids.index(tid)]
                    assert sent.startswith(kg.name(g.subject) + " has ")
                    if obj.startswith("<"):
                        assert kg.name(obj) in sent
    assert written > 10


def test_cli_verbalize_and_eval_webnlg_with_a_model(tmp_path, trained, capsys):
    from kgllm.cli import main

    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"id": 1, "triples": ["Alan_Bean | birthPlace | Wheeler,_Texas"]}) + "\n"
                   + json.dumps({"id": 2, "triples": [[DBR + "Rome", DBO + "country", DBR + "Italy"]]}) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["verbalize", "--jsonl", str(inp), "--out", str(out), "--model", str(trained),
                 "--max-new-tokens", "6", "--retry-beams", "2"]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["verbalizer"] for r in rows] == ["templates", "templates"]
    assert rows[0]["text"] == "Alan Bean was born in Wheeler, Texas." and rows[1]["omissions"] == []
    assert "0 by the model, 0 on retry, 2 by the templates" in capsys.readouterr().out
    # eval webnlg --model scores the category the model was trained without
    report = tmp_path / "r.json"
    assert main(["eval", "webnlg", "--xml", str(DEV), "--model", str(trained), "--max-new-tokens", "4",
                 "--retry-beams", "0", "--out", str(report)]) == 0
    r = json.loads(report.read_text())
    [m] = r["reports"]
    monument = sum(1 for _ in re.finditer(r'category="Monument"', lzma.decompress(DEV.read_bytes()).decode()))
    assert m["scored_categories"] == ["Monument"] and m["entries"] == monument
    assert m["verbalizer"]["fallbacks"] == m["entries"] and 0 < m["bleu"] == r["mean_bleu"] and r["models"] == 1
    assert m["model_only"]["bleu"] < m["bleu"]
