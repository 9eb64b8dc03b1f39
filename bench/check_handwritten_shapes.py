"""Check the gold answers of examples/data/questions/handwritten_shapes.jsonl against the bundled graph.

tests/test_ask_shapes.py runs it; by hand:

    .venv/bin/python bench/check_handwritten_shapes.py            # check every question
    .venv/bin/python bench/check_handwritten_shapes.py --file F   # check another question file
    .venv/bin/python bench/check_handwritten_shapes.py --file F --no-minimums   # another mix of types
    .venv/bin/python bench/check_handwritten_shapes.py --query Q  # run one ad-hoc SPARQL query

It loads the bundled DBpedia sample (examples/data/dbpedia-sample) and the DBpedia ontology into an
in-memory pyoxigraph store, runs each question's ``query`` and compares the result with ``answers``:

* ASK -> ["true"] or ["false"];
* SELECT -> the set of values of the first projected variable (an IRI as its full string, a literal
  as its lexical form; a COUNT query therefore gives the count as a decimal string);
* ``"query": null`` is only allowed for ``unanswerable`` questions, whose answers must be [].

Prints every mismatch and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import json
import lzma
import sys
from pathlib import Path

import pyoxigraph

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "data" / "dbpedia-sample"
ONTOLOGY = ROOT / "ontologies" / "dbpedia" / "dbo.owl.xz"
QUESTIONS = ROOT / "examples" / "data" / "questions" / "handwritten_shapes.jsonl"

GRAPH_FILES = (
    "labels_en.ttl.xz",
    "instance_types_transitive_en.ttl.xz",
    "mappingbased_objects_en.ttl.xz",
    "mappingbased_literals_en.ttl.xz",
    "short_abstracts_en.ttl.xz",
    "article_categories_en.ttl.xz",
    "infobox_properties_en.ttl.xz",
)

MIN_PER_TYPE = {
    "list_class": 10,
    "count": 8,
    "yes_no": 10,
    "superlative": 6,
    "literal_inverse": 5,
    "paraphrase": 12,
    "category": 4,
    "two_hop": 5,
    "unanswerable": 10,
}


def load_store() -> pyoxigraph.Store:
    store = pyoxigraph.Store()
    for name in GRAPH_FILES:
        store.bulk_load(lzma.open(SAMPLE / name).read(), format=pyoxigraph.RdfFormat.N_TRIPLES)
    store.bulk_load(lzma.open(ONTOLOGY).read(), format=pyoxigraph.RdfFormat.RDF_XML)
    return store


def _term_value(term) -> str:
    return term.value  # NamedNode -> IRI, Literal -> lexical form, BlankNode -> id


def run_query(store: pyoxigraph.Store, query: str) -> list[str]:
    result = store.query(query)
    if isinstance(result, pyoxigraph.QueryBoolean):
        return ["true" if bool(result) else "false"]
    if isinstance(result, pyoxigraph.QuerySolutions):
        variables = result.variables
        values = []
        for solution in result:
            term = solution[variables[0]]
            if term is not None:
                values.append(_term_value(term))
        return values
    raise ValueError("CONSTRUCT/DESCRIBE queries are not supported")


def check(store: pyoxigraph.Store, path: Path, minimums: bool = True) -> int:
    problems: list[str] = []
    counts: dict[str, int] = {}
    seen_ids: set[str] = set()
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for lineno, line in enumerate(lines, 1):
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {lineno}: bad JSON: {exc}")
            continue
        qid = item.get("id", f"line{lineno}")
        missing = {"id", "question", "answers", "type", "query"} - item.keys()
        if missing:
            problems.append(f"{qid}: missing keys {sorted(missing)}")
            continue
        if qid in seen_ids:
            problems.append(f"{qid}: duplicate id")
        seen_ids.add(qid)
        qtype = item["type"]
        counts[qtype] = counts.get(qtype, 0) + 1
        gold = item["answers"]
        if not isinstance(gold, list) or not all(isinstance(a, str) for a in gold):
            problems.append(f"{qid}: answers must be a list of strings")
            continue
        if len(gold) != len(set(gold)):
            problems.append(f"{qid}: duplicate gold answers")
        if item["query"] is None:
            if qtype != "unanswerable" or gold:
                problems.append(f"{qid}: query is null but type={qtype} answers={gold}")
            continue
        try:
            got = run_query(store, item["query"])
        except Exception as exc:  # noqa: BLE001 - report and go on
            problems.append(f"{qid}: query failed: {exc}")
            continue
        if set(got) != set(gold):
            problems.append(
                f"{qid}: {item['question']!r}\n    gold only: {sorted(set(gold) - set(got))}"
                f"\n    query only: {sorted(set(got) - set(gold))}"
            )
        if qtype in {"count", "superlative", "yes_no"} and len(set(got)) != 1:
            problems.append(f"{qid}: {qtype} question should have exactly one answer, query gave {got}")
    for qtype, minimum in MIN_PER_TYPE.items():
        if minimums and counts.get(qtype, 0) < minimum:
            problems.append(f"type {qtype}: {counts.get(qtype, 0)} questions, want at least {minimum}")
    unknown = set(counts) - set(MIN_PER_TYPE)
    if unknown:
        problems.append(f"unknown types: {sorted(unknown)}")
    for problem in problems:
        print("MISMATCH", problem)
    summary = ", ".join(f"{t}={counts.get(t, 0)}" for t in MIN_PER_TYPE)
    print(f"per type: {summary}")
    if problems:
        print(f"FAIL: {len(problems)} problem(s) in {len(lines)} questions")
        return 1
    print(f"OK: {len(lines)} questions, all gold answers match the bundled graph")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--file",
        "--questions",
        dest="questions",
        metavar="PATH",
        type=Path,
        default=QUESTIONS,
        help="question file to check (default: %(default)s)",
    )
    parser.add_argument("--query", help="run one SPARQL query and print its results instead")
    parser.add_argument("--no-minimums", action="store_true",
                        help="skip the minimum number of questions per type (a set with another mix of shapes)")
    args = parser.parse_args()
    store = load_store()
    if args.query:
        for value in run_query(store, args.query):
            print(value)
        return 0
    return check(store, args.questions, minimums=not args.no_minimums)


if __name__ == "__main__":
    sys.exit(main())
