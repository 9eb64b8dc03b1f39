"""The template verbalizer: templates learned from WebNLG train, and ``kgllm verbalize``.

Takes: WebNLG entries (:mod:`kgllm.corpus.webnlg`) to learn from, then triple sets (WebNLG-style strings
such as ``("Alan_Bean", "birthPlace", "Wheeler,_Texas")``, or IRIs / N-Triples terms in JSONL) to verbalize.
Makes:
- :func:`learn_templates`: delexicalised templates indexed by the triple set's shape. Each entity of an
  entry gets a slot numbered by first appearance in the canonically sorted triples; a reference whose
  entities are all found (case, accent and dash-insensitive) becomes a template ("{0} is served by
  {1}."); per shape the most typical template (the medoid by word overlap among the most frequent) is
  kept. Templates with a capitalised word outside the slots (a name from the training text, which would
  be a false statement about other entities) are avoided, and a shape with only such templates is
  dropped. Shipped as ``data/webnlg_templates.json.gz`` (learned from the WebNLG 2020 train split only;
  loaded by :func:`kgllm.corpus.lexicon.shipped_templates`).
- :class:`TemplateVerbalizer`: a whole-set template when the shape was seen in train; otherwise the set
  is covered greedily by the largest sub-shapes that have templates, and consecutive single-fact
  sentences about the same subject are aggregated ("X is in A and has B."); predicates never seen alone
  use the curated lexicon or the label fallback of :mod:`kgllm.corpus.lexicon`.
- :func:`verbalize_jsonl`: ``{"id", "triples"}`` lines -> ``{"id", "text"}`` lines (``kgllm verbalize``).

Relearn the shipped templates: ``python -m kgllm.corpus.verbalize TRAIN_DIR OUT.json.gz``.
"""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from functools import lru_cache
from itertools import combinations
from pathlib import Path
from urllib.parse import unquote

from ..artifacts import atomic_open, write_jsonl
from ..errors import InputError
from ..log import progress
from ..rdf import DBO, iri, lexical_form
from .lexicon import RelationLexicon, shipped_templates
from .webnlg import Triple, parse_triple, read_entries

# ----------------------------------------------------------------------------- surfaces


def realize(term: str) -> str:
    """WebNLG entity string -> text: ``Wheeler,_Texas`` -> ``Wheeler, Texas``; quotes dropped."""
    t = term.strip()
    if len(t) >= 2 and t[0] == t[-1] == '"':
        t = t[1:-1]
    t = t.replace("_", " ")
    t = re.sub(r"\s+\([^()]*\)$", "", t) if not t.startswith("(") else t
    return " ".join(t.split())


def _variants(term: str) -> list[str]:
    v = realize(term)
    out = [v, term.replace("_", " ").strip('"')]
    if re.fullmatch(r"-?\d+\.0+", v):
        out.append(v.split(".")[0])
    if re.fullmatch(r"-?\d+(\.\d+)?", v) and "." in v:
        out.append(v.rstrip("0").rstrip("."))
    if "," in v:
        out.append(v.split(",")[0])  # "Wheeler, Texas" is often just "Wheeler"
    if v.lower().startswith("the "):
        out.append(v[4:])
    return sorted({x for x in out if len(x) >= 1}, key=len, reverse=True)


@lru_cache(maxsize=1 << 16)
def _fold_char(c: str) -> str:
    if c in "–—‐‑":
        return "-"
    d = unicodedata.normalize("NFKD", c)
    base = d[0] if d else c
    return base.lower() if len(base.lower()) == 1 else base


def fold(text: str) -> str:
    """Case-, accent- and dash-insensitive form of the same length (so offsets carry over)."""
    return "".join(_fold_char(c) for c in text)


def canonical(triples: list[Triple]) -> tuple[str, list[str]]:
    """Shape key and the entities in slot order."""
    ts = sorted(triples, key=lambda t: (t[1], t[0], t[2]))
    ents: dict[str, int] = {}
    parts = []
    for s, p, o in ts:
        si = ents.setdefault(s, len(ents))
        oi = ents.setdefault(o, len(ents))
        parts.append(f"{p}:{si}>{oi}")
    return ";".join(parts), list(ents)


def delexicalise(text: str, entities: list[str]) -> str | None:
    """Replace every entity's mention by its slot ``{i}``; None if an entity is not found."""
    folded = fold(text)
    taken = [False] * len(text)
    spans: list[tuple[int, int, int]] = []
    order = sorted(range(len(entities)), key=lambda i: -len(realize(entities[i])))
    for i in order:
        found = False
        for v in _variants(entities[i]):
            fv = fold(v)
            for m in re.finditer(r"(?<!\w)" + re.escape(fv) + r"(?!\w)", folded):
                if not any(taken[m.start():m.end()]):
                    spans.append((m.start(), m.end(), i))
                    for k in range(m.start(), m.end()):
                        taken[k] = True
                    found = True
            if found:
                break
        if not found:
            return None
    spans.sort()
    out, pos = [], 0
    for a, b, i in spans:
        out.append(text[pos:a].replace("{", "(").replace("}", ")"))
        out.append(f"{{{i}}}")
        pos = b
    out.append(text[pos:].replace("{", "(").replace("}", ")"))
    return "".join(out)


def fill(template: str, entities: list[str]) -> str:
    return re.sub(r"\{(\d+)\}", lambda m: realize(entities[int(m.group(1))]), template)


# ----------------------------------------------------------------------------- learning


def _words(t: str) -> Counter:
    return Counter(re.findall(r"\w+|\{\d+\}", t.lower()))


def _overlap(a: Counter, b: Counter) -> float:
    common = sum((a & b).values())
    return 2 * common / max(1, sum(a.values()) + sum(b.values()))


def leaks_names(template: str) -> bool:
    """True if the template has a capitalised word outside its slots that does not start a sentence
    ("{0} is from the Nationwide in {1}"): a name from the training text, false for other entities."""
    for m in re.finditer(r"\b[A-Z][a-z]+\b", template):
        before = template[: m.start()]
        if not re.search(r"(?:^|[.!?]\s+)$", before) and m.group() not in _COMMON_CAPS:
            return True
    return False


# Capitalised words that are not names of particular things.
_COMMON_CAPS = {"I", "The", "A", "An", "It", "Its", "He", "She", "His", "Her", "They", "Their", "This", "In", "On"}


def _medoid(cands: Counter) -> str:
    clean = Counter({t: c for t, c in cands.items() if not leaks_names(t)})
    cands = clean or cands
    top = [t for t, _ in sorted(cands.items(), key=lambda kv: (-kv[1], kv[0]))[:12]]
    bags = {t: _words(t) for t in top}
    return max(top, key=lambda t: (sum(cands[u] * _overlap(bags[t], bags[u]) for u in top), cands[t], t))


def learn_templates(paths: Iterable[str | Path]) -> dict:
    """``{"templates": {shape: [template, support]}, "stats": {...}}`` from WebNLG training files."""
    by_shape: dict[str, Counter] = defaultdict(Counter)
    refs = found = 0
    for e in progress(read_entries(paths), desc="delexicalising", unit="entry"):
        key, ents = canonical(e.triples)
        for r in e.references:
            refs += 1
            t = delexicalise(r, ents)
            if t is not None and all(f"{{{i}}}" in t for i in range(len(ents))):
                by_shape[key][t] += 1
                found += 1
    templates = {}
    leaking = 0
    for k, c in sorted(by_shape.items()):
        t = _medoid(c)
        if leaks_names(t):
            leaking += 1  # every reference of this shape names something that is not in its triples
            continue
        templates[k] = [t, sum(c.values())]
    return {"templates": templates, "stats": {"references": refs, "delexicalised": found, "shapes": len(templates),
                                              "shapes_dropped_names_outside_slots": leaking}}


def save_templates(data: dict, path: Path) -> None:
    with atomic_open(path, "wb", encoding=None) as f, gzip.GzipFile(filename="", fileobj=f, mode="wb", mtime=0) as gz:
        gz.write(json.dumps(data, ensure_ascii=False, sort_keys=True, indent=0).encode())


# ----------------------------------------------------------------------------- verbalizing


class TemplateVerbalizer:
    def __init__(self, templates: dict[str, list] | None = None):
        self.templates = shipped_templates() if templates is None else templates
        self.lexicon = RelationLexicon()
        self.stats: Counter = Counter()

    def _fallback(self, p: str) -> str:
        pred = p if p.startswith("<") else iri(DBO + p)
        return self.lexicon.template(pred).sentence.replace("{s}", "{0}").replace("{o}", "{1}")

    def verbalize(self, triples: list[Triple]) -> str:
        if not triples:
            return ""
        key, ents = canonical(triples)
        t = self.templates.get(key)
        if t is not None:
            self.stats["whole_set"] += 1
            return fill(t[0], ents)
        self.stats["composed"] += 1
        return self._compose(triples)

    def _compose(self, triples: list[Triple]) -> str:
        remaining = list(range(len(triples)))
        chunks: list[tuple[list[int], str, list[str]]] = []
        while remaining:
            best = None
            for size in range(len(remaining), 0, -1):
                for combo in combinations(remaining, size):
                    key, ents = canonical([triples[i] for i in combo])
                    t = self.templates.get(key)
                    if t is not None and (best is None or t[1] > best[1][1]):
                        best = (list(combo), t, ents)
                if best is not None:
                    break
            if best is None:  # a predicate never seen alone: curated lexicon or label fallback
                i = remaining[0]
                s, p, o = triples[i]
                best = ([i], [self._fallback(p), 0], [s, o])
                self.stats["fallback_triples"] += 1
            combo, t, ents = best
            chunks.append((combo, t[0], ents))
            remaining = [i for i in remaining if i not in combo]
        chunks.sort(key=lambda c: min(c[0]))
        sentences: list[str] = []
        k = 0
        while k < len(chunks):
            combo, tpl, ents = chunks[k]
            if k + 1 < len(chunks):
                combo2, tpl2, ents2 = chunks[k + 1]
                if (len(combo) == len(combo2) == 1 and ents[0] == ents2[0] and _vp(tpl) and _vp(tpl2)):
                    sentences.append(fill(tpl[:-1], ents) + " and " + fill(tpl2[4:], ents2))
                    k += 2
                    continue
            sentences.append(fill(tpl, ents))
            k += 1
        return " ".join(sentences)


def _vp(tpl: str) -> bool:
    """A one-sentence template "{0} <verb phrase>." whose subject slot appears once."""
    return (tpl.startswith("{0} ") and tpl.endswith(".") and tpl.count("{0}") == 1
            and tpl.count(".") == 1 and "{1}" in tpl)


# ----------------------------------------------------------------------------- JSONL


def to_webnlg(term: str) -> str:
    """IRIs / N-Triples terms -> WebNLG-style strings (``<http://dbpedia.org/resource/X_Y>`` -> ``X_Y``)."""
    t = term.strip()
    if t.startswith("<") and t.endswith(">"):
        t = t[1:-1]
    if t.startswith('"'):
        return lexical_form(t)
    if re.match(r"^[a-z][a-z0-9+.-]*://", t):
        return unquote(t.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1])
    return t


def verbalize_jsonl(inp: Path, out: Path) -> int:
    """Verbalize each ``{"id", "triples"}`` line of ``inp`` into an ``{"id", "text"}`` line of ``out``
    (written atomically); returns the number of lines written."""
    return write_jsonl(out, _verbalized_rows(inp, TemplateVerbalizer()))


def _verbalized_rows(inp: Path, v: TemplateVerbalizer) -> Iterator[dict]:
    with open(inp, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                raw = row["triples"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise InputError(f"{inp}:{lineno}: expected {{\"id\": ..., \"triples\": [[s, p, o], ...]}} ({e})") \
                    from e
            triples = []
            for t in raw:
                if isinstance(t, str):
                    triples.append(parse_triple(t, f"{inp}:{lineno}"))
                elif isinstance(t, (list, tuple)) and len(t) == 3:
                    triples.append(tuple(to_webnlg(str(x)) for x in t))
                else:
                    raise InputError(f"{inp}:{lineno}: a triple must be [s, p, o] or 's | p | o', got {t!r}")
            yield {"id": row.get("id"), "text": v.verbalize(triples)}


if __name__ == "__main__":  # python -m kgllm.corpus.verbalize TRAIN_DIR OUT.json.gz: relearn the shipped templates
    import sys

    data = learn_templates([sys.argv[1]])
    save_templates(data, Path(sys.argv[2]))
    print(json.dumps(data["stats"]))
