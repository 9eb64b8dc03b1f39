"""``pull.wordnet``: Princeton WordNet 3.0, read through nltk, as an RDF graph artifact.

Takes: WordNet 3.0 in nltk's layout, located (and if need be set up from Debian's ``wordnet-base``) by
:mod:`kgllm.pull.wordnet_data`; nothing is ever downloaded.

Makes: a graph artifact (kind ``graph``, one provenance ``{source: wordnet-3.0, path, nltk_version,
wordnet_version}``) in the vocabulary fixed by the project (Global WordNet Association schema ``wn:``
with WN-LMF relation names, OntoLex-Lemon for entries and senses; IRIs under ``kgllm.rdf.KGWN``):

* synset ``<KGWN/02084071-n>``: ``a ontolex:LexicalConcept, wn:Synset``; ``wn:partOfSpeech``;
  ``dc:identifier "dog.n.01"``; ``rdfs:label "dog"@en``; ``wn:definition``; ``wn:example``;
  ``wn:lexfile "noun.animal"``; synset relations (``wn:hypernym`` ...) to other synsets;
* entry ``<KGWN/entry/dog-n>``: ``a ontolex:LexicalEntry``; ``ontolex:canonicalForm <...#form>``;
  ``<...#form> ontolex:writtenRep "dog"@en``; ``rdfs:label``; ``ontolex:sense`` each of its senses;
* sense ``<KGWN/sense/dog%251%3A05%3A00%3A%3A>`` (quoted sense key): ``a ontolex:LexicalSense``;
  ``ontolex:isLexicalizedSenseOf`` its synset; sense relations (``wn:antonym``, ``wn:derivation``,
  ``wn:pertainym``, and the lexical forms of ``wn:also``, ``wn:participle``, ``wn:domain_*`` ...).

A subset pull (``roots``, ``pos``) keeps the relations of the selected synsets and senses even when
they point outside the subset; each such outside target gets a short description (types, part of
speech, identifier, label, definition, lexfile; for a sense its entry) so the subset is
self-contained. Counts in the manifest add up: ``emitted = triples + duplicates``, where ``emitted``
follows from the synset, sense, entry, definition, example and relation counts. A selection that
yields no triple (e.g. ``roots: [dog.n.01]`` with ``pos: [v]``) is an :class:`EmptyResultError` (exit 1,
nothing written) unless ``allow_empty``.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

from .. import api
from ..artifacts import Manifest
from ..errors import ConfigError, EmptyResultError
from ..log import logger, progress
from ..rdf import DC, KGWN, ONTOLEX, RDF_TYPE, RDFS_LABEL, WN, GraphWriter, iri, literal
from .wordnet_data import open_wordnet

SYNSET_COUNT = 117_659  # WordNet 3.0: 82,115 n + 13,767 v + 18,156 a/s + 3,621 r

#: nltk pointer symbol -> WN-LMF relation name (wninput(5WN) lists the symbols).
POINTER_RELATIONS = {
    "@": "hypernym", "~": "hyponym", "@i": "instance_hypernym", "~i": "instance_hyponym",
    "%m": "mero_member", "#m": "holo_member", "%p": "mero_part", "#p": "holo_part",
    "%s": "mero_substance", "#s": "holo_substance",
    ";c": "domain_topic", "-c": "has_domain_topic", ";r": "domain_region", "-r": "has_domain_region",
    ";u": "exemplifies", "-u": "is_exemplified_by",
    "&": "similar", "^": "also", "$": "verb_group", "=": "attribute", "*": "entails", ">": "causes",
    "!": "antonym", "+": "derivation", "\\": "pertainym", "<": "participle",
}
RELATIONS = tuple(dict.fromkeys(POINTER_RELATIONS.values()))
POS_NAMES = {"n": "noun", "v": "verb", "a": "adjective", "r": "adverb", "s": "adjective_satellite"}
_FILE_ORDER = {"a": 0, "s": 0, "r": 1, "n": 2, "v": 3}  # nltk's all_synsets order (a/s share data.adj)
_SYNSET_NAME = re.compile(r"^\S.*\.[nvasr]\.\d+$")  # lemma.pos.sense: dog.n.01, St._Louis.n.01


@dataclass
class WordNetPullConfig:
    """What to pull from WordNet 3.0 (the defaults pull all of it)."""

    roots: list[str] = field(default_factory=list)   # nltk synset names; keep their hyponym closure
    pos: list[str] = field(default_factory=lambda: ["n", "v", "a", "r"])  # "a" includes satellites ("s")
    relations: list[str] = field(default_factory=lambda: list(RELATIONS))  # WN-LMF names to keep
    include_examples: bool = True
    allow_empty: bool = False        # accept a selection with zero triples (a warning) instead of failing

    def __post_init__(self):
        bad = [r for r in self.roots if not _SYNSET_NAME.match(str(r))]
        if bad:
            raise ConfigError(f"roots: {bad[0]!r} is not a synset name; write lemma.pos.sense like dog.n.01 "
                              "(pos n, v, a, s or r)")
        bad = [p for p in self.pos if p not in POS_NAMES]
        if bad:
            raise ConfigError(f"pos: {bad[0]!r} is not a WordNet part of speech; use some of n, v, a, r, s")
        bad = [r for r in self.relations if r not in RELATIONS]
        if bad:
            raise ConfigError(f"relations: {bad[0]!r} is not a WordNet relation; valid names: "
                              f"{', '.join(RELATIONS)}")


# ----------------------------------------------------------------------------- reading WordNet


# ----------------------------------------------------------------------------- N-Triples building


def _literal(value: str, lang: str | None = None) -> str:
    """:func:`kgllm.rdf.literal`, with a shortcut for what most WordNet text is (printable, no quote, no
    backslash: nothing to escape); a full pull formats about 0.7 million literals."""
    if value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"@{lang}' if lang else f'"{value}"'
    return literal(value, lang)


_T_CONCEPT, _T_SYNSET = iri(ONTOLEX + "LexicalConcept"), iri(WN + "Synset")
_T_ENTRY, _T_SENSE = iri(ONTOLEX + "LexicalEntry"), iri(ONTOLEX + "LexicalSense")
_P_POS, _P_ID, _P_LABEL = iri(WN + "partOfSpeech"), iri(DC + "identifier"), RDFS_LABEL
_P_DEF, _P_EX, _P_LEXFILE = iri(WN + "definition"), iri(WN + "example"), iri(WN + "lexfile")
_P_FORM, _P_REP = iri(ONTOLEX + "canonicalForm"), iri(ONTOLEX + "writtenRep")
_P_SENSE, _P_OF = iri(ONTOLEX + "sense"), iri(ONTOLEX + "isLexicalizedSenseOf")
_POS_TERMS = {p: iri(WN + name) for p, name in POS_NAMES.items()}
_REL_TERMS = {name: iri(WN + name) for name in RELATIONS}


def synset_iri(offset: int, pos: str) -> str:
    return f"<{KGWN}{offset:08d}-{pos}>"


# quote() costs microseconds per call and a full pull quotes ~600k lemmas and sense keys. Almost all
# of them contain only characters quote() keeps, plus "%" and ":" in sense keys: those take a
# plain str.replace, which gives exactly quote()'s result; anything else goes through quote().
_PLAIN = re.compile(r"[A-Za-z0-9_.~/%:-]*").fullmatch


def _quote(text: str) -> str:
    if _PLAIN(text):
        return text.replace("%", "%25").replace(":", "%3A")
    return quote(text)


def entry_iri(lemma: str, pos: str) -> str:
    return f"<{KGWN}entry/{_quote(lemma)}-{pos}>"


def sense_iri(sense_key: str) -> str:
    return f"<{KGWN}sense/{_quote(sense_key)}>"


class _Emitter:
    """Turns nltk synsets into N-Triples term strings, passed to ``add(s, p, o)``.

    Everything is built as plain strings (no RDF term objects), with IRIs made once per synset
    and sense, because a full pull emits 2.5 million triples: per-triple overhead is the run time.
    """

    def __init__(self, reader, config: WordNetPullConfig, add: Callable[[str, str, str], bool]):
        self.reader = reader
        self.add = add
        self.examples = config.include_examples
        keep = set(config.relations)
        self.rel_pred = {sym: _REL_TERMS[name] for sym, name in POINTER_RELATIONS.items() if name in keep}
        self.rel_count = dict.fromkeys(sorted({POINTER_RELATIONS[s] for s in self.rel_pred}), 0)
        self.counts = {"synsets": 0, "senses": 0, "entries": 0, "definitions": 0, "examples": 0,
                       "boundary_synsets": 0, "boundary_senses": 0}
        # Pointer targets give the pos of the data file ("a" also for satellites); nltk knows which
        # adjective offsets are satellites, and the IRI must say "s" for those.
        sats = getattr(reader, "satellite_offsets", None)
        if sats is None:  # older nltk: ask the synset itself
            sats = {ss._offset for ss in reader.all_synsets("s")}
        self.satellites = sats
        self.entries: set[str] = set()
        self.sense_iris: dict[object, str] = {}
        self.selected: set[tuple[str, int]] | None = None  # None: everything is selected
        self.boundary_synsets: set[tuple[str, int]] = set()
        self.boundary_senses: dict[str, object] = {}

    def describe_synset(self, ss, full: bool) -> str:
        add = self.add
        sid = f"<{KGWN}{ss._offset:08d}-{ss._pos}>"
        add(sid, RDF_TYPE, _T_CONCEPT)
        add(sid, RDF_TYPE, _T_SYNSET)
        add(sid, _P_POS, _POS_TERMS[ss._pos])
        add(sid, _P_ID, _literal(ss._name))
        add(sid, _P_LABEL, _literal(ss._lemmas[0]._name.replace("_", " "), "en"))
        if ss._definition:
            add(sid, _P_DEF, _literal(ss._definition, "en"))
            self.counts["definitions"] += 1
        add(sid, _P_LEXFILE, _literal(ss._lexname))
        if full and self.examples:
            for ex in ss._examples:
                add(sid, _P_EX, _literal(ex, "en"))
            self.counts["examples"] += len(ss._examples)
        return sid

    def describe_sense(self, lemma, pos: str, sid: str) -> str:
        add = self.add
        kid = sense_iri(lemma._key)
        add(kid, RDF_TYPE, _T_SENSE)
        add(kid, _P_OF, sid)
        eid = entry_iri(lemma._name, pos)
        if eid not in self.entries:
            self.entries.add(eid)
            text = _literal(lemma._name.replace("_", " "), "en")
            form = eid[:-1] + "#form>"
            add(eid, RDF_TYPE, _T_ENTRY)
            add(eid, _P_FORM, form)
            add(form, _P_REP, text)
            add(eid, _P_LABEL, text)
        add(eid, _P_SENSE, kid)
        return kid

    def synset(self, ss) -> None:
        """All triples of one selected synset: description, senses, synset and sense relations."""
        add, counts = self.add, self.counts
        counts["synsets"] += 1
        pos = ss._pos
        sid = self.describe_synset(ss, True)
        kids = {lemma._name: self.describe_sense(lemma, pos, sid) for lemma in ss._lemmas}
        counts["senses"] += len(ss._lemmas)
        rel_pred, rel_count, selected, sats = self.rel_pred, self.rel_count, self.selected, self.satellites
        for sym, targets in ss._pointers.items():
            pred = rel_pred.get(sym)
            if pred is None:
                continue
            # nltk keeps synset pointers in sets: sort them so the output does not depend on hashing.
            for tpos, toff in sorted(targets):
                if tpos == "a" and toff in sats:
                    tpos = "s"
                add(sid, pred, f"<{KGWN}{toff:08d}-{tpos}>")
                if selected is not None and (tpos, toff) not in selected:
                    self.boundary_synsets.add((tpos, toff))
            rel_count[POINTER_RELATIONS[sym]] += len(targets)
        if ss._lemma_pointers:
            target_synset = self.reader.synset_from_pos_and_offset
            for (name, sym), targets in ss._lemma_pointers.items():
                pred = rel_pred.get(sym)
                if pred is None:
                    continue
                src = kids[name]
                for tpos, toff, tidx in targets:
                    target = target_synset(tpos, toff)._lemmas[tidx]
                    add(src, pred, sense_iri(target._key))
                    if selected is not None and (target._synset._pos, toff) not in selected:
                        self.boundary_senses.setdefault(target._key, target)
                rel_count[POINTER_RELATIONS[sym]] += len(targets)

    def boundary(self) -> None:
        """Short descriptions of outside targets of a subset's relations (sorted, so deterministic)."""
        for key in sorted(self.boundary_senses):
            lemma = self.boundary_senses[key]
            ss = lemma._synset
            self.describe_sense(lemma, ss._pos, synset_iri(ss._offset, ss._pos))
            self.boundary_synsets.add((ss._pos, ss._offset))
            self.counts["boundary_senses"] += 1
        for pos, off in sorted(self.boundary_synsets, key=lambda t: (_FILE_ORDER[t[0]], t[1])):
            self.describe_synset(self.reader.synset_from_pos_and_offset(pos, off), False)
            self.counts["boundary_synsets"] += 1


# ----------------------------------------------------------------------------- the pull


def select_synsets(reader, config: WordNetPullConfig) -> list | None:
    """The synsets a config selects in pull order, or None for "all synsets of the chosen pos"."""
    from nltk.corpus.reader.wordnet import WordNetError

    if not config.roots:
        return None
    todo = []
    for name in config.roots:
        try:
            todo.append(reader.synset(name))
        except (WordNetError, ValueError, AttributeError) as e:
            raise ConfigError(f"roots: {name!r} is not a WordNet 3.0 synset name "
                              f"(expected e.g. 'dog.n.01'): {e}") from e
    seen = {}
    while todo:
        ss = todo.pop()
        key = (ss._pos, ss._offset)
        if key in seen:
            continue
        seen[key] = ss
        todo.extend(ss.hyponyms())
        todo.extend(ss.instance_hyponyms())
    want = _pos_filter(config.pos)
    return [seen[k] for k in sorted(seen, key=lambda t: (_FILE_ORDER[t[0]], t[1])) if k[0] in want]


def _pos_filter(pos: Iterable[str]) -> set[str]:
    want = set(pos)
    if "a" in want:
        want.add("s")  # as in nltk, adjectives include adjective satellites
    return want


def _all_synsets(reader, config: WordNetPullConfig):
    want = _pos_filter(config.pos)
    for pos_file in ("a", "r", "n", "v"):  # each data file once, in nltk's order
        if pos_file == "a" and not want & {"a", "s"} or pos_file != "a" and pos_file not in want:
            continue
        for ss in _data_file_synsets(reader, pos_file):
            if ss._pos in want:
                yield ss


def _data_file_synsets(reader, pos_file: str):
    """What ``reader.all_synsets(pos_file)`` yields, in the same order and through the same cache.

    nltk parses each line (``_synset_from_pos_and_line``), but its own loop asks its seekable
    unicode stream for ``tell()`` and ``readline()`` per line, which costs about as much as the
    parsing; the offset is the line's first field, so a plain buffered text stream does.
    """
    parse = getattr(reader, "_synset_from_pos_and_line", None)
    cache = getattr(reader, "_synset_offset_cache", None)
    if parse is None or cache is None:  # another nltk: its public iterator
        yield from reader.all_synsets(pos_file)
        return
    cache = cache[pos_file]
    with io.TextIOWrapper(reader.root.join(f"data.{reader._FILEMAP[pos_file]}").open(), encoding="utf-8") as f:
        for line in f:
            if line[0].isspace():  # the license header
                continue
            offset = int(line[:8])
            ss = cache.get(offset)
            if ss is None:
                ss = cache[offset] = parse(pos_file, line)
            yield ss


def pull_wordnet(out: str | os.PathLike, config: WordNetPullConfig | None = None, *,
                 pipeline_key: str | None = None, wordnet=None) -> Manifest:
    """Pull WordNet 3.0 (all of it by default) into the graph artifact ``out``.

    ``wordnet``: an ``open_wordnet()`` result to reuse (opening WordNet takes seconds); default a
    fresh one.
    """
    config = config or WordNetPullConfig()
    reader, info = wordnet or open_wordnet()
    selected = select_synsets(reader, config)
    provenance = {"source": "wordnet-3.0", **info}
    with GraphWriter(out, config=config, pipeline_key=pipeline_key) as g:
        with g.shard(provenance) as add:
            em = _Emitter(reader, config, add)
            if selected is None:
                total = SYNSET_COUNT if set(config.pos) >= {"n", "v", "a", "r"} else None
                synsets = _all_synsets(reader, config)
            else:
                em.selected = {(ss._pos, ss._offset) for ss in selected}
                total, synsets = len(selected), selected
            for ss in progress(synsets, desc="wordnet synsets", total=total, unit="synset"):
                em.synset(ss)
            em.boundary()
        c = em.counts
        c["entries"] = len(em.entries)
        # What was handed to the writer, from the fixed shape of each description (6 triples per
        # synset + definition + examples, 3 per sense, 4 per entry, 1 per relation): it must equal
        # triples + duplicates, which the tests check.
        c["emitted"] = (6 * (c["synsets"] + c["boundary_synsets"]) + c["definitions"] + c["examples"]
                        + 3 * (c["senses"] + c["boundary_senses"]) + 4 * c["entries"] + sum(em.rel_count.values()))
        if not c["emitted"]:
            what = (f"pull wordnet: the selection (roots {', '.join(config.roots) or 'all'}, "
                    f"pos {', '.join(config.pos)}) has 0 triples")
            if not config.allow_empty:
                raise EmptyResultError(f"{what}; pass --allow-empty to accept an empty graph")
            logger.warning("%s (accepted: allow_empty)", what)
        g.counts.update(c)
        g.counts["relations"] = dict(sorted(em.rel_count.items()))
        g.extra["wordnet"] = info
    logger.info("wordnet: %d synsets, %d senses, %d triples", em.counts["synsets"], em.counts["senses"],
                g.manifest.counts["triples"])
    return g.manifest


# ``kgllm.pull.wordnet(...)`` runs the stage (kgllm.api): this module is also its stage's function.
api.callable_package(__name__, api.pull_wordnet)
