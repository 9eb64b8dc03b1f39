"""train.injection_data (kgllm.train.injection): the closed-book knowledge-injection set, on a real corpus
built from the bundled DBpedia sample, and a short pretrain -> SFT -> eval chain with the tiny model."""

from __future__ import annotations

import json

import pytest

from kgllm.artifacts import iter_jsonl, read_manifest, verify_artifact
from kgllm.eval.facts import score_answer
from kgllm.eval.metrics import contains_words, normalize_answer
from kgllm.registry import run_stage
from kgllm.train.kg_reward import KGReward

CFG = {"facts": 20, "qa_train": 20, "control": 10, "paraphrases": 3, "max_predicate_share": 0.5}


def _rows(d, part, split):
    p = d / part / f"{split}.jsonl"
    return [r for _n, r in iter_jsonl(p)] if p.exists() else []


@pytest.fixture(scope="module")
def built(tmp_path_factory, dbpedia_graph):
    d = tmp_path_factory.mktemp("injection")
    corpus = d / "corpus"
    run_stage("corpus", [dbpedia_graph], corpus, {})
    inj = d / "inject"
    run_stage("train.injection_data", [corpus], inj, CFG)
    return {"dir": d, "corpus": corpus, "inject": inj}


def test_counts_add_up_and_files_match(built):
    inj = built["inject"]
    man = verify_artifact(inj)
    c = man.counts
    assert man.kind == "corpus.injection" and read_manifest(inj, kind="corpus")  # train/eval read it as a corpus
    assert c["qa_test"] == CFG["facts"] and c["qa_train"] == CFG["qa_train"] and 0 < c["control"] <= CFG["control"]
    assert c["candidates"] == c["selected"] + c["not_selected"]
    assert c["selected"] == c["qa_test"] + c["qa_train"]
    assert c["pretrain_train"] == c["selected"] * CFG["paraphrases"]
    assert c["control_candidates"] == c["control"] + c.get("control_mentioned", 0) + c.get("control_not_selected", 0)
    assert c["sft_test"] == c["sft_test_seen"] + c["sft_test_control"] == c["qa_test"] + c["control"]
    assert c["leaks"] == 0
    for part in ("pretrain", "sft", "dpo"):
        for split in ("train", "validation", "test"):
            assert len(_rows(inj, part, split)) == c[f"{part}_{split}"]
    # Each QA-test fact: K different documents (variety), no training question, one family-B test question.
    docs = _rows(inj, "pretrain", "train")
    seen = [r for r in _rows(inj, "sft", "test") if r["group"] == "seen"]
    train_tids = {r["triple_ids"][0] for r in _rows(inj, "sft", "train")}
    for r in seen:
        texts = [d["text"] for d in docs if d["fact"] == r["triple_ids"][0]]
        assert len(texts) == CFG["paraphrases"] == len(set(texts))
        assert r["triple_ids"][0] not in train_tids and r["family"] == "B"
    assert all(r["family"] == "A" and r["group"] == "qa_train" for r in _rows(inj, "sft", "train"))


def test_families_disjoint_and_no_leak(built):
    inj = built["inject"]
    train_texts = [normalize_answer(x) for part in ("pretrain", "sft", "dpo") for r in _rows(inj, part, "train")
                   for x in (r.get("text"), r.get("prompt"), r.get("completion"), r.get("chosen"), r.get("rejected"))
                   if x]
    blob = "\n".join(train_texts)
    test_q = [normalize_answer(r["prompt"]) for r in _rows(inj, "sft", "test")]
    assert test_q and not [q for q in test_q if q in blob]
    assert not {normalize_answer(r["prompt"]) for r in _rows(inj, "sft", "train")} & set(test_q)
    # The question templates of the two families do not overlap: delexicalise by the subject's name.
    labels = {}
    for _n, t in iter_jsonl(inj / "triples.jsonl"):
        if t["p"].endswith("rdf-schema#label>"):
            labels.setdefault(t["s"][1:-1], t["o"].split('"')[1])

    def template(r):
        return r["prompt"].replace(labels.get(r["entity"], "\x00"), "{s}")
    fam_a = {template(r) for r in _rows(inj, "sft", "train")}
    fam_b = {template(r) for r in _rows(inj, "sft", "test")}
    assert fam_a and fam_b and not fam_a & fam_b


def test_control_entities_are_in_no_training_text(built):
    inj = built["inject"]
    control = [r for r in _rows(inj, "sft", "test") if r["group"] == "control"]
    assert control
    doc_entities = {r["entity"] for r in _rows(inj, "pretrain", "train")}
    assert not {r["entity"] for r in control} & doc_entities
    blob = normalize_answer(" \n ".join(r["text"] for r in _rows(inj, "pretrain", "train")))
    kg = KGReward.from_corpus(inj)
    for r in control:
        assert kg.verify(r["completion"]).score > 0  # the reference answer is KG-supported
        subject = next(f for f in kg.facts if f.id == r["triple_ids"][0]).subject_forms
        assert not any(contains_words(blob, s) for s in subject)
    # The control entities come from the corpus's held-out (test, validation) entities.
    held = {r["entity"] for s in ("test", "validation") for r in _rows(built["corpus"], "sft", s)}
    assert {r["entity"] for r in control} <= held


def test_dpo_rejected_is_false_in_the_graph(built):
    inj = built["inject"]
    kg = KGReward.from_corpus(inj)
    triples = {(t["s"], t["p"], t["o"]) for _n, t in iter_jsonl(inj / "triples.jsonl")}
    rows = _rows(inj, "dpo", "train") + _rows(inj, "dpo", "test")
    assert rows and {r["group"] for r in rows} >= {"qa_train", "seen"}
    for r in rows:
        assert kg.verify(r["chosen"]).score > 0, r
        assert kg.verify(r["rejected"]).score <= 0, r
        fact = next(f for f in kg.facts if f.id == r["triple_ids"][0])
        # the rejected sentence names none of the graph's objects for (s, p)
        assert not any(contains_words(normalize_answer(r["rejected"]), o) for o in kg.objects[(fact.s, fact.p)])
        assert (fact.s, fact.p) in {t[:2] for t in triples}


def test_deterministic_and_repeat_mode(built):
    d = built["dir"]
    again = run_stage("train.injection_data", [built["corpus"]], d / "again", CFG)
    first = read_manifest(built["inject"])
    assert again.content_sha256 == first.content_sha256
    rep = run_stage("train.injection_data", [built["corpus"]], d / "repeat", {**CFG, "paraphrase_mode": "repeat"})
    docs = _rows(d / "repeat", "pretrain", "train")
    by_fact = {}
    for r in docs:
        by_fact.setdefault(r["fact"], []).append(r["text"])
    assert rep.counts["pretrain_train"] == len(docs) and all(len(set(v)) == 1 and len(v) == 3
                                                             for v in by_fact.values())
    # the same questions whatever the documents
    assert [r["prompt"] for r in _rows(d / "repeat", "sft", "test")] == \
        [r["prompt"] for r in _rows(built["inject"], "sft", "test")]


def test_answer_f1_scores_the_object_not_the_frame():
    ref = "Rome is in the country Italy."
    assert score_answer("Rome is in the country Italy.", ["Italy"], ref)["answer_f1"] == 1.0
    wrong = score_answer("Rome is in the country France.", ["Italy"], ref)
    assert wrong["answer_f1"] == 0.0 and wrong["f1"] > 0.5  # the sentence F1 rewards the frame
    assert score_answer("Italy", ["Italy"], ref)["answer_f1"] == 1.0


def test_pretrain_sft_chain_and_grouped_eval(built, tmp_path):
    import tiny

    from kgllm.eval.facts import evaluate_model, format_table

    inj = built["inject"]
    tok = tiny.train_tiny_tokenizer(inj, tmp_path / "tok")
    model = tiny.write_tiny_model(tok, tmp_path / "model")
    common = {"max_steps": 2, "batch_size": 4, "max_length": 64, "save_steps": 100, "logging_steps": 1}
    pre = run_stage("train.pretrain", [inj], tmp_path / "pre", {"model": str(model), **common})
    assert pre.counts["train_documents"] == read_manifest(inj).counts["pretrain_train"]
    sft = run_stage("train.sft", [inj, tmp_path / "pre"], tmp_path / "sft", common)
    assert sft.counts["train_examples"] == read_manifest(inj).counts["sft_train"] and sft.counts["steps"] == 2
    r = evaluate_model(tmp_path / "sft", inj, max_new_tokens=4, batch_size=16, parts=("qa", "preference"))
    groups = r["qa"]["by_group"]
    assert set(groups) == {"seen", "control"}
    assert groups["seen"]["n"] == CFG["facts"] and groups["seen"]["n"] + groups["control"]["n"] == r["qa"]["n"]
    assert all(0.0 <= groups[g][k] <= 1.0 for g in groups for k in ("f1", "answer_f1", "kg_supported"))
    assert set(r["preference"]["by_group"]) == {"seen", "control"}
    assert r["perplexity"]["on"] == "not measured"
    assert "group seen" in format_table({"results": [r]})
    json.dumps(r)
