"""Reading WebNLG XML: the entries of the WebNLG benchmark (triple sets and their reference texts).

Takes: WebNLG XML files (``<entry category=... eid=...>`` with ``<modifiedtripleset>`` and ``<lex>``
references; plain, .xz or .gz; a directory is searched recursively), or one ``"s | p | o"`` triple string.
Makes: :class:`Entry` records (category, eid, triples as WebNLG-style strings, references, source file) for
template learning (:mod:`kgllm.corpus.verbalize`) and scoring (:mod:`kgllm.eval.webnlg`).
"""

from __future__ import annotations

import gzip
import lzma
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

Triple = tuple[str, str, str]


@dataclass
class Entry:
    category: str
    eid: str
    triples: list[Triple]
    references: list[str] = field(default_factory=list)
    source: str = ""


def xml_files(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(x for x in p.rglob("*") if x.name.endswith((".xml", ".xml.xz", ".xml.gz")))
        elif p.exists():
            out.append(p)
        else:
            raise InputError(f"{p}: no such WebNLG XML file or directory")
    return out


def read_entries(paths: Iterable[str | Path]) -> list[Entry]:
    entries = []
    for f in xml_files(paths):
        opener = lzma.open if f.name.endswith(".xz") else gzip.open if f.name.endswith(".gz") else open
        try:
            with opener(f, "rb") as fh:
                root = ET.parse(fh).getroot()
        except ET.ParseError as e:
            raise InputError(f"{f}: not a WebNLG XML file ({e})") from e
        for n, e in enumerate(root.iter("entry")):
            triples = [parse_triple(t.text or "", f"{f}: entry {e.get('eid', n)}")
                       for t in e.iter("mtriple")]
            refs = [" ".join((x.text or "").split()) for x in e.iter("lex") if (x.text or "").strip()]
            refs = [r for r in refs if r]
            entries.append(Entry(e.get("category", ""), e.get("eid", str(n)), triples, refs,
                                 f"{f.parent.name}/{f.name}"))
    return entries


def parse_triple(text: str, where: str = "") -> Triple:
    parts = [x.strip() for x in text.split(" | ")]
    if len(parts) != 3:
        raise InputError(f"{where}: triple {text!r} is not 'subject | property | object'")
    return parts[0], parts[1], parts[2]
