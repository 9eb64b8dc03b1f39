"""``train.injection_data``: a closed-book knowledge-injection set (seen facts vs an unseen control), from a corpus.

Takes: a corpus artifact (``kgllm corpus``): its ``triples.jsonl`` (the graph, with one verbalised sentence
per triple) and its one-hop SFT questions (``sft/*.jsonl``, the question wordings of the relation lexicon).
Makes: a ``corpus.injection`` artifact in the corpus layout, which ``train pretrain``, ``train sft``,
``train dpo`` and ``eval facts`` read::

    pretrain/train.jsonl   K paraphrased documents per seen fact (id, text, entity, triple_ids, fact, variant)
    pretrain/test.jsonl    the control facts' sentences (never trained; ``eval facts`` perplexity)
    sft/train.jsonl        family-A questions about the QA-train facts (prompt, completion, answers, group)
    sft/test.jsonl         family-B questions: group ``seen`` (QA-test facts) and group ``control``
    dpo/train.jsonl        QA-train facts: family-A prompt, chosen = the true sentence, rejected = a false one
    dpo/test.jsonl         the same for the ``seen`` and ``control`` test facts (family-B prompts)
    triples.jsonl          the corpus's triples (labels, KG-supported checks)

Protocol. A *fact* is a one-hop triple (s, p, o) of the corpus with one object for (s, p), a short object
(``max_answer_words``), a sentence that names s and o and that :class:`~kgllm.train.kg_reward.KGReward`
verifies; objects that answer more than ``max_object_share`` of their predicate's facts (e.g. "city" for
"is an instance of") are left out, as a guess would get them right, and so are ``rdfs:seeAlso`` links. *Seen facts* come from the corpus's
train-split entities: ``facts`` QA-test facts (reported) and ``qa_train`` QA-train facts, drawn alternately
from one seeded order (``max_predicate_share`` caps each predicate). Every seen fact gets ``paraphrases``
documents (``paraphrase_mode: variety``: different sentence shapes, the corpus sentence first;
``repeat``: the corpus sentence K times). The question wordings of each predicate are split into two
disjoint families: A (half of the lexicon's questions + "What is the <relation> of X?") trains SFT and DPO
on the QA-train facts; B (the other half + "X <relation words> what?", "Name the <relation> of X.") asks
the QA-test facts, whose documents were pretrained but whose question was never trained. The *control*
facts are about entities of the corpus's test and validation splits, asked with family B; none of their
subjects is named in any training text (those that are are dropped and counted).

DPO's rejected answer swaps the object for another object of the same predicate (same kind; one sharing an
``rdf:type`` with the true object first) such that the graph has no (s, p, o') triple and the false sentence
is not KG-supported. Everything is deterministic (sorted ids, seeded hashes). Leak-free, asserted: no test
question string occurs in any training text (``leaks`` = 0). Counts add up: ``candidates = selected +
not_selected``; ``selected = qa_test + qa_train``; ``pretrain_train = (qa_test + qa_train) * paraphrases``;
``control_candidates = control + control_mentioned + control_not_selected``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

from .. import api
from ..artifacts import ArtifactWriter, Manifest, iter_jsonl, read_manifest, write_jsonl
from ..errors import InputError
from ..eval.metrics import contains_words, normalize_answer
from ..rdf import RDF_TYPE, RDFS, RDFS_LABEL, lexical_form
from .kg_reward import KGReward, local_name_forms
from .stage import InjectionDataConfig

KIND = "corpus.injection"
SPLITS = ("train", "validation", "test")
# Relation nouns for WordNet predicates whose local names do not read as English.
RELATION_NOUNS = {
    "holo_part": "larger whole", "mero_part": "part", "holo_member": "group", "mero_member": "member",
    "holo_substance": "whole", "mero_substance": "substance", "instance_hypernym": "class",
    "hypernym": "broader kind", "hyponym": "narrower kind", "instance_hyponym": "instance",
    "domain_region": "region", "domain_topic": "topic", "derivation": "related word", "antonym": "opposite",
    "similar": "similar word", "also": "related word", "exemplifies": "example",
}
# Sentence shapes of the paraphrased documents (variant 0 is the corpus's own sentence).
DOC_SHAPES = [
    "The {r} of {s} is {o}.",
    "{o} is the {r} of {s}.",
    "{s} has {o} as its {r}.",
    "Regarding {s}, the {r} is {o}.",
    "A fact about {s}: {f}",
    "It is known that the {r} of {s} is {o}.",
    "{s} ({r}: {o}).",
    "Encyclopedia entry. {s}. {R}: {o}.",
]
GENERIC_A = ["What is the {r} of {s}?"]
GENERIC_B = ["{s} {mid} what?", "Name the {r} of {s}."]
# Links that are not facts one knows ("X is related to Y").
NOT_FACTS = {f"<{RDFS}seeAlso>"}
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)


def _h(*parts) -> float:
    """A seeded hash in [0, 1)."""
    d = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(d, "big") / 2 ** 64


def _hid(prefix: str, *parts) -> str:
    return prefix + "-" + hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).hexdigest()


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def relation_noun(p: str) -> str:
    local = re.split(r"[/#]", p.strip("<>").rstrip("/"))[-1]
    if local in RELATION_NOUNS:
        return RELATION_NOUNS[local]
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", local.replace("_", " ")).split()
    return " ".join(w if (w.isupper() and len(w) > 1) else w.lower() for w in words)


def term_surface(term: str, labels: dict[str, str]) -> str:
    if term.startswith("<"):
        v = term[1:-1]
        return labels.get(v) or local_name_forms(v)[-1]
    return lexical_form(term) if term.startswith('"') else ""


def read_corpus(corpus: Path) -> tuple[list[dict], dict[str, list[dict]]]:
    """The triples and the one-hop single-triple SFT rows of every split, by triple id (sorted)."""
    tpath = corpus / "triples.jsonl"
    if not tpath.is_file():
        raise InputError(f"{corpus}: no triples.jsonl; rebuild the corpus with `kgllm corpus`")
    triples = [r for _n, r in iter_jsonl(tpath)]
    triples.sort(key=lambda t: t["id"])
    rows: dict[str, list[dict]] = defaultdict(list)
    for split in SPLITS:
        path = corpus / "sft" / f"{split}.jsonl"
        if not path.is_file():
            continue
        for _n, r in iter_jsonl(path):
            if r.get("type") == "one_hop" and len(r.get("triple_ids") or []) == 1:
                rows[r["triple_ids"][0]].append({**r, "split": split})
    for v in rows.values():
        v.sort(key=lambda r: r["id"])
    return triples, rows


def _delex(prompt: str, name: str) -> str | None:
    """A question with the subject's name replaced by ``{s}`` (None if the name is not in it once)."""
    i = prompt.lower().find(name.lower())
    if i < 0 or prompt.lower().count(name.lower()) != 1 or "{" in prompt:
        return None
    return prompt[:i] + "{s}" + prompt[i + len(name):]


def _supported(kg: KGReward, sentence: str, subject_forms: tuple[str, ...] | None = None) -> bool:
    """:meth:`KGReward.verify`'s "supported" verdict, looking up the sentence's word n-grams among the graph's
    names (verify scans every name of the graph: too slow for thousands of sentences); ``subject_forms``:
    only the facts of that subject."""
    st = normalize_answer(sentence)
    words = st.split()
    forms = subject_forms if subject_forms is not None else sorted(
        {" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)} & kg.by_subject.keys())
    for form in forms:
        if not contains_words(st, form):
            continue
        for f in kg.by_subject.get(form, ()):
            hits = sum(contains_words(st, c) for c in f.cues)
            if (not f.cues or hits * 3 >= 2 * len(f.cues)) and any(contains_words(st, o) for o in f.object_forms):
                return True
    return False


def _fill(tpl: str, **kw) -> str:
    return _cap(tpl.format(**kw))


def build(corpus: Path, cfg: InjectionDataConfig) -> tuple[dict[str, dict[str, list[dict]]], list[dict], dict]:
    """Rows by part and split, the triples to copy, and the counts (see the module docstring)."""
    triples, sft_rows = read_corpus(corpus)
    kg = KGReward(triples)
    subject_forms = {f.s: f.subject_forms for f in kg.facts}
    labels = {}
    for t in triples:
        if t["p"] == RDFS_LABEL and t["s"].startswith("<") and t["o"].startswith('"'):
            labels.setdefault(t["s"][1:-1], lexical_form(t["o"]))
    by_sp: dict[tuple[str, str], set[str]] = defaultdict(set)
    types: dict[str, set[str]] = defaultdict(set)
    by_id = {}
    for t in triples:
        by_id[t["id"]] = t
        by_sp[(t["s"], t["p"])].add(t["o"])
        if t["p"] == RDF_TYPE:
            types[t["s"]].add(t["o"])
    counts: Counter = Counter()

    # Candidate facts (with their corpus split and question templates).
    facts, templates = [], defaultdict(set)
    for tid in sorted(sft_rows):
        t = by_id.get(tid)
        if t is None or t["p"] in NOT_FACTS:
            counts["facts_filtered"] += 1
            continue
        rows = sft_rows[tid]
        s_name, o_name = term_surface(t["s"], labels), term_surface(t["o"], labels)
        text = t.get("text", "")
        for r in rows:
            d = _delex(r["prompt"], s_name) if s_name else None
            if d:
                templates[t["p"]].add(d)
        ok = (s_name and o_name and len(by_sp[(t["s"], t["p"])]) == 1 and not _URL.match(o_name)
              and len(o_name.split()) <= cfg.max_answer_words and text.count(s_name) >= 1
              and text.count(o_name) == 1 and normalize_answer(o_name) != normalize_answer(s_name)
              and not contains_words(normalize_answer(s_name), normalize_answer(o_name))
              and _supported(kg, text, subject_forms.get(t["s"], ())))
        if not ok:
            counts["facts_filtered"] += 1
            continue
        si = text.find(s_name)
        oi = text.find(o_name)
        mid = text[si + len(s_name):oi].strip() if si == 0 and oi > si + len(s_name) and \
            text[oi + len(o_name):].strip() in (".", "") else ""
        facts.append({"tid": tid, "s": t["s"], "p": t["p"], "o": t["o"], "s_name": s_name, "o_name": o_name,
                      "text": text, "mid": mid, "split": rows[0]["split"], "entity": rows[0]["entity"],
                      "answers": rows[0].get("answers") or [o_name], "r": relation_noun(t["p"])})
    # Objects a guess would get right: the answer of too large a share of the predicate's facts.
    per_p = Counter(f["p"] for f in facts)
    per_po = Counter((f["p"], f["o"]) for f in facts)
    kept = []
    for f in facts:
        if per_po[(f["p"], f["o"])] > max(1, cfg.max_object_share * per_p[f["p"]]):
            counts["facts_common_object"] += 1
        else:
            kept.append(f)
    facts = kept

    # Question families per predicate: lexicon questions alternate A/B (sorted), plus the generic ones.
    fam_a, fam_b = {}, {}
    for p in sorted({f["p"] for f in facts}):
        lex = sorted(templates.get(p, ()))
        fam_a[p] = [q for q in lex[0::2]] + [g for g in GENERIC_A if g not in lex]
        fam_b[p] = [q for q in lex[1::2]] + [g for g in GENERIC_B if g not in lex]

    # Seen facts: train-split entities, seeded order, predicate cap, alternately QA-test / QA-train.
    seen_pool = sorted((f for f in facts if f["split"] == "train"), key=lambda f: _h(cfg.seed, "seen", f["tid"]))
    counts["candidates"] = len(seen_pool)
    want = cfg.facts + cfg.qa_train
    cap = max(1, int(cfg.max_predicate_share * want))
    taken, per_pred = [], Counter()
    for f in seen_pool:
        if len(taken) >= want:
            break
        if per_pred[f["p"]] >= cap:
            continue
        per_pred[f["p"]] += 1
        taken.append(f)
    counts["not_selected"] = len(seen_pool) - len(taken)
    counts["selected"] = len(taken)
    qa_test, qa_train = [], []
    for i, f in enumerate(taken):
        to_test = (i % 2 == 0 and len(qa_test) < cfg.facts) or len(qa_train) >= cfg.qa_train
        (qa_test if to_test else qa_train).append(f)
    if len(qa_test) < cfg.facts:
        counts["facts_short"] = cfg.facts - len(qa_test)

    rows: dict[str, dict[str, list[dict]]] = {p: {s: [] for s in SPLITS} for p in ("pretrain", "sft", "dpo")}
    # Documents: K per seen fact.
    for f in qa_test + qa_train:
        for k in range(cfg.paraphrases):
            if cfg.paraphrase_mode == "repeat" or k == 0:
                text = f["text"]
            else:
                shape = DOC_SHAPES[(k - 1 + int(_h(cfg.seed, "shape", f["tid"]) * len(DOC_SHAPES)))
                                   % len(DOC_SHAPES)]
                text = _fill(shape, s=f["s_name"], o=f["o_name"], r=f["r"], R=_cap(f["r"]), f=f["text"])
            rows["pretrain"]["train"].append({"id": _hid("doc", cfg.seed, f["tid"], k), "text": text,
                                              "entity": f["entity"], "triple_ids": [f["tid"]],
                                              "fact": f["tid"], "variant": k})

    def question(f: dict, tpl: str) -> str:
        return _fill(tpl, s=f["s_name"], r=f["r"], mid=f["mid"]) if ("{mid}" not in tpl or f["mid"]) else ""

    def qa_row(f: dict, q: str, group: str, family: str) -> dict:
        return {"id": _hid("q", group, f["tid"], q), "prompt": q, "completion": f["text"], "type": "one_hop",
                "triple_ids": [f["tid"]], "answers": f["answers"], "entity": f["entity"], "group": group,
                "family": family}

    def b_question(f: dict) -> str:
        forms = [q for q in (question(f, t) for t in fam_b[f["p"]]) if q]
        return forms[int(_h(cfg.seed, "b", f["tid"]) * len(forms))] if forms else ""

    for f in qa_train:
        forms = [q for q in (question(f, t) for t in fam_a[f["p"]]) if q]
        start = int(_h(cfg.seed, "a", f["tid"]) * len(forms))
        for i in range(min(cfg.phrasings, len(forms))):
            rows["sft"]["train"].append(qa_row(f, forms[(start + i) % len(forms)], "qa_train", "A"))
    for f in qa_test:
        rows["sft"]["test"].append(qa_row(f, b_question(f), "seen", "B"))

    # Control: test/validation-split entities whose name no training text holds.
    train_text = normalize_answer(" \n ".join(
        [r["text"] for r in rows["pretrain"]["train"]]
        + [r["prompt"] + " " + r["completion"] for r in rows["sft"]["train"]]))
    control_pool = sorted((f for f in facts if f["split"] in ("test", "validation")),
                          key=lambda f: _h(cfg.seed, "control", f["tid"]))
    counts["control_candidates"] = len(control_pool)
    control = []
    for f in control_pool:
        if contains_words(train_text, normalize_answer(f["s_name"])):
            counts["control_mentioned"] += 1
        elif len(control) >= cfg.control:
            counts["control_not_selected"] += 1
        else:
            control.append(f)
    for f in control:
        rows["sft"]["test"].append(qa_row(f, b_question(f), "control", "B"))
        rows["pretrain"]["test"].append({"id": _hid("doc", cfg.seed, f["tid"], "control"), "text": f["text"],
                                         "entity": f["entity"], "triple_ids": [f["tid"]], "fact": f["tid"],
                                         "variant": 0})

    # DPO: a KG-verified false sentence per fact.
    objs_by_p: dict[str, list[str]] = defaultdict(list)
    for t in triples:
        if t["p"] in fam_a:
            objs_by_p[t["p"]].append(t["o"])
    for p in objs_by_p:
        objs_by_p[p] = sorted(set(objs_by_p[p]))

    def corrupt(f: dict) -> str | None:
        true = by_sp[(f["s"], f["p"])]
        kind = "<" if f["o"].startswith("<") else '"'
        cands = [o for o in objs_by_p[f["p"]] if o not in true and o.startswith(kind)]
        same_type = [o for o in cands if types.get(o, set()) & types.get(f["o"], set())]
        for pool in (same_type, cands):
            pool = sorted(pool, key=lambda o: _h(cfg.seed, "corrupt", f["tid"], o))
            for o in pool:
                name = term_surface(o, labels)
                if (not name or _URL.match(name) or normalize_answer(name) == normalize_answer(f["o_name"])
                        or contains_words(normalize_answer(f["text"]), normalize_answer(name))):
                    continue
                wrong = f["text"].replace(f["o_name"], name)
                # (the fast check of the fact's subject, then the full check: another name in the false
                # sentence may be the subject of a triple that supports it)
                if _supported(kg, wrong, subject_forms.get(f["s"], ())) or _supported(kg, wrong):
                    continue
                return wrong
        return None

    def dpo_row(f: dict, q: str, group: str, split: str) -> None:
        wrong = corrupt(f)
        if wrong is None:
            counts[f"dpo_no_false_{group}"] += 1
            return
        rows["dpo"][split].append({"id": _hid("dpo", group, f["tid"], q), "prompt": q, "chosen": f["text"],
                                   "rejected": wrong, "triple_ids": [f["tid"]], "entity": f["entity"],
                                   "group": group})

    for r in rows["sft"]["train"]:
        f = next(x for x in qa_train if x["tid"] == r["triple_ids"][0])
        dpo_row(f, r["prompt"], "qa_train", "train")
    test_fact = {f["tid"]: f for f in qa_test + control}
    for r in rows["sft"]["test"]:
        dpo_row(test_fact[r["triple_ids"][0]], r["prompt"], r["group"], "test")

    # Leak check: no test question in any training text.
    train_strings = [normalize_answer(x) for part in ("pretrain", "sft", "dpo") for r in rows[part]["train"]
                     for x in (r.get("text"), r.get("prompt"), r.get("completion"), r.get("chosen"), r.get("rejected"))
                     if x]
    train_prompts = {normalize_answer(r["prompt"]) for r in rows["sft"]["train"]}
    blob = "\n".join(train_strings)
    leaks = sum(normalize_answer(r["prompt"]) in blob or normalize_answer(r["prompt"]) in train_prompts
                for r in rows["sft"]["test"])
    if leaks:
        raise InputError(f"{corpus}: {leaks} test question(s) occur in the training text (a bug in the builder)")
    counts["leaks"] = leaks
    control_ents = {f["entity"] for f in control}
    if control_ents & {r["entity"] for r in rows["pretrain"]["train"]}:
        raise InputError(f"{corpus}: a control entity has a training document (a bug in the builder)")
    counts.update(qa_test=len(qa_test), qa_train=len(qa_train), control=len(control),
                  question_families_a=sum(map(len, fam_a.values())),
                  question_families_b=sum(map(len, fam_b.values())),
                  predicates=len({f["p"] for f in qa_test + qa_train}),
                  seen_entities=len({f["entity"] for f in qa_test + qa_train}),
                  control_entities=len(control_ents))
    for part in rows.values():
        for rs in part.values():
            rs.sort(key=lambda r: r["id"])
    return rows, triples, dict(counts)


def run(inputs: list[Path], out: Path, config: InjectionDataConfig, *, pipeline_key: str | None = None) -> Manifest:
    cfg = config
    corpus = Path(inputs[0])
    read_manifest(corpus, kind="corpus")
    rows, triples, counts = build(corpus, cfg)
    if not rows["pretrain"]["train"] or not rows["sft"]["test"]:
        raise InputError(f"{corpus}: no fact fits the injection protocol (one-hop facts with one short object "
                         "whose sentence names subject and object); is it a `kgllm corpus` artifact?")
    with ArtifactWriter(out, KIND, config=cfg, inputs=[corpus], pipeline_key=pipeline_key) as w:
        for part, splits in rows.items():
            (w.path / part).mkdir()
            for split, rs in splits.items():
                write_jsonl(w.path / part / f"{split}.jsonl", rs)
                w.counts[f"{part}_{split}"] = len(rs)
        write_jsonl(w.path / "triples.jsonl", triples)
        w.counts["triples"] = len(triples)
        w.counts.update(counts)
        w.counts["sft_test_seen"] = sum(r["group"] == "seen" for r in rows["sft"]["test"])
        w.counts["sft_test_control"] = sum(r["group"] == "control" for r in rows["sft"]["test"])
        w.extra["families"] = "A: sft/train, dpo/train; B: sft/test, dpo/test"
        (w.path / "families.json").write_text(json.dumps({"doc_shapes": DOC_SHAPES, "generic_a": GENERIC_A,
                                                          "generic_b": GENERIC_B}, indent=1) + "\n", "utf-8")
    return w.manifest


# ``kgllm.train.injection(...)`` runs the stage (kgllm.api): this module is also its stage's function.
api.callable_package(__name__, api.train_injection_data)
