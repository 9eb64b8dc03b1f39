"""Make the recorded feedback of the feedback-loop example: real ``kgllm ask --json`` answers, with the ratings,
corrections and flags people gave them.

Takes: examples/feedback_loop.yaml (its ``dbpedia`` step's files and its ``index`` step, which must have no
config: the answers must come from the very index that pipeline builds), the bundled question sets
(examples/data/questions/) and the feedback written below by hand.
Makes, beside this script:

    recorded.jsonl   one line per person and answer, the format `kgllm feedback import` reads:
                     {"question", "retriever", "answer": <kgllm ask --json object>, "feedback": [...], "user_id"}
    questions.jsonl  the question set `eval.qa` scores in the example: every question that received feedback
                     (with its gold answers) plus held-out ones (the bundled DBpedia questions), so the report
                     compares the two groups

Run from anywhere (about a minute; it builds the graph and index in a temporary directory)::

    .venv/bin/python examples/data/feedback/record.py

The answers are recomputed each time (timings differ from run to run); the script stops with an error when
an answer no longer cites a triple the feedback flags, or a question rated good is no longer answered
right, so that the recorded file always describes the index the example builds. The flagged triples are
real errors of the DBpedia 2015-10 data (a city as a hub airport, a job title as a key person, a year 6 as
the closing year of a Roman aqueduct); the people and their words are made up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
EXAMPLES = ROOT / "examples"
DBR = "http://dbpedia.org/resource/"
KGLLM = [sys.executable, "-m", "kgllm"]

# Questions about real errors of the data. "gold": what the graph should answer ([]: nothing, so "not in
# the graph" is right once the wrong triple is gone). "flags": (predicate local name, object value or local
# name, user, reason) of the cited triples people flag; "rating"/"correction" as people gave them.
FLAGGED = [
    {"id": "f01", "question": "Which airports are hubs of Northwest Airlines?", "type": "one_hop",
     "gold": [DBR + x for x in ("Amsterdam_Airport_Schiphol", "Detroit_Metropolitan_Airport", "Haneda_Airport",
                                "Memphis_International_Airport", "Minneapolis–Saint_Paul_International_Airport",
                                "Narita_International_Airport", "Ted_Stevens_Anchorage_International_Airport")],
     "people": [
         {"user": "ana", "rating": -1, "flags": [("hubAirport", "Tokyo", "Tokyo is a city, not an airport; its "
                                                  "airports Haneda and Narita are already listed")]},
         {"user": "kofi", "flags": [("hubAirport", "Tokyo", "not an airport")]}]},
    {"id": "f02", "question": "What is the lounge of Northwest Airlines?", "type": "unanswerable", "gold": [],
     "people": [{"user": "ana", "rating": -1,
                 "flags": [("lounge", "Northwest_Airlines", "an airline is not its own lounge (the lounge was "
                                                            "called WorldClub)")]}]},
    {"id": "f03", "question": "What is the parent company of TAAG Angola Airlines?", "type": "unanswerable",
     "gold": [],
     "people": [{"user": "ben", "rating": -1,
                 "correction": {"text": "TAAG is owned by the Angolan state, not by another company."},
                 "flags": [("parentCompany", "Politics_of_Angola",
                            "'Politics of Angola' is an encyclopedia article, not a company")]}]},
    {"id": "f04", "question": "Who are the key people at Porsche?", "type": "one_hop",
     "gold": [DBR + "Oliver_Blume", DBR + "Wolfgang_Porsche_(businessman)"],
     "people": [{"user": "chen", "flags": [("keyPerson", "Chief_executive_officer",
                                            "'Chief executive officer' is a job title, not a person")]}]},
    {"id": "f05", "question": "What is the ICAO airline code of British Airways?", "type": "one_hop",
     "gold": ["BAW"],
     "people": [{"user": "dana", "rating": -1, "correction": {"text": "BAW"},
                 "flags": [("icaoAirlineCode", "SHT", "SHT is the code of BA's Shuttle flights; the airline's "
                                                      "ICAO code is BAW")]}]},
    {"id": "f06", "question": "What is the closing year of the Pont du Gard?", "type": "unanswerable", "gold": [],
     "people": [{"user": "ben", "rating": -1,
                 "flags": [("closingYear", "0006", "year 6 makes no sense: the aqueduct was built in the 1st "
                                                   "century and used into the 6th century")]}]},
    {"id": "f07", "question": "What is the building end date of RAF Andrews Field?", "type": "unanswerable",
     "gold": [],
     "people": [{"user": "ana", "rating": -1, "correction": {"text": "1943"},
                 "flags": [("buildingEndDate", "-43", "-43 is 43 BC; the airfield was finished in 1943")]}]},
    {"id": "f08", "question": "Who are the key people of Valmet?", "type": "unanswerable", "gold": [],
     "people": [{"user": "chen", "rating": -1,
                 "flags": [("keyPerson", "Chairman", "a job title, not a person"),
                           ("keyPerson", "Chief_executive_officer", "a job title, not a person")]}]},
    {"id": "f09", "question": "What is the product of Valmet Automotive?", "type": "unanswerable", "gold": [],
     "people": [{"user": "dana", "flags": [("product", "Automotive_industry",
                                            "an industry is not a product; Valmet Automotive builds cars "
                                            "under contract")]}]},
    {"id": "f10", "question": "What is the revenue of Air New Zealand?", "type": "unanswerable", "gold": [],
     "people": [{"user": "ben", "rating": -1, "correction": {"text": "about 4.6 billion New Zealand dollars"},
                 "flags": [("revenue", "4618.0", "4,618 US dollars: the figure is in millions (and NZ dollars)")]}]},
]

# Wrong answers people corrected (questions of examples/data/questions/handwritten.jsonl, whose gold the
# eval keeps). A correction naming a graph term is checked against the graph by the export.
CORRECTED = [
    ("h003", [{"user": "ana", "rating": -1, "correction": {"term": f"<{DBR}Ferdinand_Porsche>"}}]),
    ("h005", [{"user": "ben", "rating": -1, "correction": {"term": f"<{DBR}Hébécrevon>"}}]),
    ("h007", [{"user": "chen", "rating": -1, "correction": {"term": f"<{DBR}Ignazio_Marino>"}}]),
    ("h008", [{"user": "dana", "rating": -1,
               "correction": {"text": "meat, leaf vegetables, mushrooms, dumplings and seafood"}}]),
    ("h015", [{"user": "kofi", "rating": -1, "correction": {"term": f"<{DBR}Saab_Group>"}},
              # Not a term of the graph: the export counts it as unverifiable.
              {"user": "ana", "correction": {"term": f"<{DBR}Saab_AB>"}}]),
    ("h017", [{"user": "ben", "rating": -1, "correction": {"term": f"<{DBR}Trollhättan>"}}]),
    ("h025", [{"user": "chen", "rating": -1,
               "correction": {"text": "Lufthansa is an airline; it has no capital."}}]),
]

# Right answers people rated good (ids of the bundled question sets).
RATED_GOOD = [("q0102", "ana"), ("q0108", "ben"), ("q0111", "chen"), ("q0117", "dana"), ("q0120", "kofi"),
              ("q0126", "ana"), ("q0141", "ben"), ("q0162", "chen"), ("q0180", "dana"), ("h000", "kofi"),
              ("h001", "ana"), ("h012", None)]


def _questions(name: str) -> dict[str, dict]:
    rows = [json.loads(line) for line in (EXAMPLES / "data" / "questions" / name).read_text("utf-8").splitlines()]
    return {r["id"]: r for r in rows}


def _local(term: str) -> str:
    """Local name of an IRI term, lexical form of a literal (what FLAGGED names objects by)."""
    if term.startswith("<"):
        return term[1:-1].rsplit("/", 1)[-1]
    return term[1:term.rindex('"')] if term.startswith('"') else term


def _norm(value: str) -> str:
    return value if value.startswith("http") else " ".join(value.split()).casefold()


def build_index(work: Path) -> Path:
    """The example's graph and index, built by the same commands the pipeline runs, from the repository root
    (so provenance names the bundled files by their relative paths)."""
    pipe = yaml.safe_load((EXAMPLES / "feedback_loop.yaml").read_text("utf-8"))
    steps = {s["id"]: s for s in pipe["steps"]}
    if steps["index"].get("config"):
        raise SystemExit("examples/feedback_loop.yaml: the index step has a config; pass it to `kgllm index` here too")
    files = [str((EXAMPLES / p).resolve().relative_to(ROOT)) for p in steps["dbpedia"]["config"]["paths"]]
    env = {**os.environ, "KGLLM_PROGRESS": "0"}
    subprocess.run([*KGLLM, "-q", "pull", "file", *files, "--out", str(work / "graph")], cwd=ROOT, env=env, check=True)
    subprocess.run([*KGLLM, "-q", "index", str(work / "graph"), "--out", str(work / "index")], cwd=ROOT, env=env,
                   check=True)
    return work / "index"


def ask(index: Path, questions: list[str]) -> list[dict]:
    r = subprocess.run([*KGLLM, "-q", "ask", *questions, "--index", str(index), "--json"], cwd=ROOT,
                       env={**os.environ, "KGLLM_PROGRESS": "0"}, check=True, capture_output=True, text=True)
    out = json.loads(r.stdout)
    return out if isinstance(out, list) else [out]


def feedback_items(person: dict, answer: dict, question: str) -> list[dict]:
    items = []
    if "rating" in person:
        items.append({"kind": "rating", "rating": person["rating"]})
    if "correction" in person:
        items.append({"kind": "correction", "correction": person["correction"]})
    for pred, obj, reason in person.get("flags", []):
        hits = [c for c in answer["citations"] if _local(c["p"]) == pred and _local(c["o"]) == obj]
        if len(hits) != 1:
            raise SystemExit(f"{question!r}: the answer cites {len(hits)} triples with {pred} {obj} (expected 1); "
                             f"citations: {[(c['p'], c['o']) for c in answer['citations']]}")
        items.append({"kind": "flag", "triple_id": hits[0]["id"], "reason": reason})
    return items


def main() -> None:
    hand, generated = _questions("handwritten.jsonl"), _questions("dbpedia_wordnet.jsonl")
    known = {**generated, **hand}
    corrected = [(known[qid], people) for qid, people in CORRECTED]
    good = [(known[qid], user) for qid, user in RATED_GOOD]
    asked = [f["question"] for f in FLAGGED] + [q["question"] for q, _ in corrected] + [q["question"] for q, _ in good]
    with tempfile.TemporaryDirectory(prefix="kgllm-record-") as tmp:
        answers = dict(zip(asked, ask(build_index(Path(tmp)), asked), strict=True))

    lines, feedback_qs = [], []
    for f in FLAGGED:
        for person in f["people"]:
            lines.append((f["question"], person))
        feedback_qs.append({"id": f["id"], "question": f["question"], "answers": f["gold"], "type": f["type"]})
    for q, people in corrected:
        lines += [(q["question"], p) for p in people]
        feedback_qs.append({k: q[k] for k in ("id", "question", "answers", "type")})
    for q, user in good:
        a = answers[q["question"]]
        if {_norm(x["value"]) for x in a["answers"]} != {_norm(x) for x in q["answers"]}:
            raise SystemExit(f"{q['id']} {q['question']!r}: rated good but answered {a['answer']!r} "
                             f"(gold {q['answers']})")
        lines.append((q["question"], {"user": user, "rating": 1}))
        feedback_qs.append({k: q[k] for k in ("id", "question", "answers", "type")})

    rows = []
    for question, person in lines:
        a = answers[question]
        row = {"question": question, "retriever": a["retriever"], "answer": a,
               "feedback": feedback_items(person, a, question)}
        if person.get("user"):
            row["user_id"] = person["user"]
        rows.append(row)

    # The eval set: the feedback questions, then held-out DBpedia questions (one-hop, two-hop, unanswerable)
    # and the handwritten ones about DBpedia, each once.
    seen = {q["question"] for q in feedback_qs}
    held = [q for q in generated.values() if q["type"] in ("one_hop", "two_hop", "unanswerable")]
    held += [q for q in hand.values() if q["type"] in ("one_hop", "two_hop", "unanswerable")]
    held = [{k: q[k] for k in ("id", "question", "answers", "type")} for q in held if q["question"] not in seen]
    # Written only now that every check passed.
    (HERE / "recorded.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    (HERE / "questions.jsonl").write_text(
        "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in feedback_qs + held), "utf-8")
    n_fb = sum(len(r[1].get("flags", [])) for r in lines)
    print(f"recorded.jsonl: {len(lines)} answers with feedback ({n_fb} flags); questions.jsonl: "
          f"{len(feedback_qs)} with feedback + {len(held)} held out")


if __name__ == "__main__":
    main()
