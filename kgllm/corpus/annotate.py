"""Renderings of annotated documents: inline entity markup and CoNLL/BIO for NER training.

Takes: documents ``{"text", "spans": [{"start","end","surface","iri","types"}]}``.
Makes:
- inline markup: ``[British Airways](dbr:British_Airways) has its hub at [Heathrow Airport](dbr:Heathrow_Airport).``
  (IRIs shortened with the project prefixes; pronoun spans are left plain);
- CoNLL: one ``token<TAB>tag`` line per token, a blank line between sentences and ``-DOCSTART-`` between
  documents; tags are BIO with the entity's class as label (``B-Company``), ``ENTITY`` for untyped entities.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from ..rdf import DBO, shorten

_TOKEN = re.compile(r"\w+(?:[-'.]\w+)*|[^\w\s]")


def inline_markup(doc: dict) -> str:
    text = doc["text"]
    out = []
    pos = 0
    for sp in sorted(doc["spans"], key=lambda s: s["start"]):
        if sp.get("ref") == "pronoun" or sp["start"] < pos:
            continue
        out.append(text[pos:sp["start"]])
        out.append(f"[{text[sp['start']:sp['end']]}]({shorten('<' + sp['iri'] + '>')})")
        pos = sp["end"]
    out.append(text[pos:])
    return "".join(out)


def default_label(types: list[str], main_type: Callable[[str], str | None] | None = None, iri: str = "") -> str:
    """The span's class for NER: its main type's local name, else a DBpedia class, else ENTITY."""
    if main_type is not None:
        t = main_type("<" + iri + ">")
        if t is not None:
            return t[1:-1].rsplit("/", 1)[-1].rsplit("#", 1)[-1]
    dbo = sorted(t for t in types if t.startswith(DBO))
    if dbo:
        return dbo[0][len(DBO):]
    return "ENTITY"


def conll_lines(docs: Iterable[dict], label: Callable[[dict], str]) -> Iterable[str]:
    for doc in docs:
        yield "-DOCSTART-\tO"
        yield ""
        text = doc["text"]
        spans = sorted((s for s in doc["spans"] if s.get("ref") != "pronoun"), key=lambda s: s["start"])
        for sent in doc["sentences"]:
            inside: tuple[int, int, str] | None = None
            lines = []
            for m in _TOKEN.finditer(text, sent["start"], sent["end"]):
                tag = "O"
                for sp in spans:
                    if sp["start"] <= m.start() and m.end() <= sp["end"]:
                        lab = label(sp)
                        key = (sp["start"], sp["end"], lab)
                        tag = ("I-" if inside == key else "B-") + lab
                        inside = key
                        break
                else:
                    inside = None
                lines.append(f"{m.group()}\t{tag}")
            if lines:
                yield from lines
                yield ""
