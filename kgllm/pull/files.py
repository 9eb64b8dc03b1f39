"""``pull.file``: local RDF files (N-Triples, Turtle, RDF/XML, N-Quads...; plain or .gz/.bz2/.xz) into a
graph artifact.

Takes: file paths; the format comes from each name's extension (``.nt .ttl .rdf .owl .xml .nq``, also
``.n3 .trig .jsonld``, then an optional ``.gz .bz2 .xz``: :func:`kgllm.rdf.detect_format`) or from
``format`` for all of them.
Makes: a graph artifact with one shard (or more, past the writer's shard size) per input file and the
provenance ``{source: file, path, sha256, format}``. Parsing streams through pyoxigraph's parsers.

* Blank nodes are relabelled ``_:b<file sha256 prefix>x<n>`` in order of appearance: deterministic
  (pyoxigraph makes up random labels for anonymous nodes) and distinct across files.
* N-Quads: graph names are dropped; the quads that had one are counted (``named_graph_quads``).
* Malformed input stops the pull with an :class:`InputError` naming the file, line and column
  (exit code 2; for RDF/XML, whose parser gives no position, the position is found by a second pass
  with the XML parser of the standard library). With ``skip_bad`` (N-Triples/N-Quads only: one
  statement per line), bad lines go to ``quarantine.jsonl`` in the artifact (file, line, column,
  parser message, text) and are counted; a file whose every statement was quarantined is recorded as
  a problem in the manifest (exit code 1).
* Every path is checked before any work: a missing file, a directory or a URL is an error (exit 2).
  A UTF-8 byte order mark at the start of a file is skipped.
* Zero triples in all is an :class:`EmptyResultError` (exit 1, nothing written) unless
  ``allow_empty`` (``--allow-empty``): then a warning.

Counts add up per file and in total, for the line-based formats:
``lines = statements + bad_lines + blank_lines`` (blank or comment-only lines), and for every format
``statements = triples kept + duplicates`` (duplicates across all files of the pull are dropped once).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .. import rdf
from ..artifacts import Manifest, jsonl_line, sha256_file
from ..errors import ConfigError, EmptyResultError, InputError, UsageError
from ..log import logger, progress
from ..rdf import FORMAT_SHORT, LINE_BASED, GraphWriter, format_name, open_rdf, oxigraph_format

QUARANTINE = "quarantine.jsonl"

_BOM = b"\xef\xbb\xbf"
_URL = re.compile(r"^(https?|ftp)://?", re.I)  # a Path turns "https://x" into "https:/x"
_CHUNK_LINES = 20_000  # lines parsed per pyoxigraph call: large enough to amortise the call
# pyoxigraph's messages start with the position inside the text it was given (a chunk, for the
# line-based formats); kgllm puts the position in the file in front instead.
_POSITION = re.compile(r"^Parser error (?:at line \d+ between columns \d+ and \d+"
                       r"|(?:at|between) line \d+ column \d+(?: and line \d+ column \d+)?): ")


@dataclass
class FilePullConfig:
    """Which local RDF files to pull and how to read them."""

    paths: list[Path] = field(default_factory=list)
    format: str | None = None        # ntriples | turtle | rdfxml | nquads... (or nt, ttl, xml, nq); None: by extension
    skip_bad: bool = False           # quarantine malformed lines (N-Triples/N-Quads) instead of failing
    base_iri: str | None = None      # base for relative IRIs (Turtle, RDF/XML)
    allow_empty: bool = False        # accept zero triples (a warning) instead of failing (exit 1)

    def __post_init__(self):
        if self.format is not None:
            try:
                format_name(self.format)
            except ValueError as e:
                raise ConfigError(f"format: {e}") from None


def detect_format(path: Path, override: str | None = None) -> tuple[str, str | None]:
    """``(format, compression suffix or None)`` of a file, from ``override`` or its extension
    (:func:`kgllm.rdf.detect_format`); an unknown extension is a usage error: ``--format`` says what it is."""
    try:
        return rdf.detect_format(path, override)
    except InputError as e:
        raise UsageError(f"{e} or pass --format") from None


def _open(path: Path, comp: str | None) -> IO[bytes]:
    """The (decompressed) bytes of a file, after a UTF-8 byte order mark if it starts with one."""
    f = open_rdf(path, comp)
    try:
        if f.read(len(_BOM)) != _BOM:
            f.seek(0)
    except BaseException:
        f.close()
        raise
    return f


def _is_content(line: bytes) -> bool:
    s = line.strip()
    return bool(s) and s[:1] != b"#"


def _message(e: SyntaxError) -> str:
    return _POSITION.sub("", str(e.msg or e))


_XML_POSITION = re.compile(r"^at \d+\.\.\d+: ")  # an offset inside a text node, meaningless to a reader
_QUOTED = re.compile(r"'([^'\n]+)'|`([^`\n]+)`|^(\S+) is not a valid")


def _locate_xml_error(path: Path, comp: str | None, message: str) -> tuple[int | None, int | None]:
    """``(line, column)`` (from 1) in an RDF/XML file of the error pyoxigraph reported without one.

    A second pass with the standard library's XML parser (expat) finds where the XML is not
    well-formed, and the first element without a namespace; a term quoted in the message is looked
    up in the text. The earliest of the places that apply is the one pyoxigraph, which reads in
    order and stops at its first error, reported. ``(None, None)`` when none applies."""
    import xml.sax
    import xml.sax.handler

    found: list[tuple[int, int]] = []
    no_ns: list[tuple[int, int]] = []

    class Handler(xml.sax.handler.ContentHandler):
        def startElementNS(self, name, qname, attrs):
            if name[0] is None and not no_ns:
                no_ns.append((self._locator.getLineNumber(), self._locator.getColumnNumber() + 1))

    parser = xml.sax.make_parser()
    parser.setFeature(xml.sax.handler.feature_namespaces, True)
    parser.setFeature(xml.sax.handler.feature_external_ges, False)
    parser.setContentHandler(Handler())
    try:
        with _open(path, comp) as f:
            parser.parse(f)
    except xml.sax.SAXParseException as e:
        found.append((e.getLineNumber(), e.getColumnNumber() + 1))
    except (OSError, EOFError, ValueError, xml.sax.SAXException):
        pass
    if no_ns and "namespace" in message.lower():
        found.append(no_ns[0])
    tokens = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(message)]
    if tokens:
        try:
            with _open(path, comp) as f:
                text = f.read().decode("utf-8", "replace")
        except (OSError, EOFError, ValueError):
            text = ""
        for tok in tokens:
            # As an attribute value first, then anywhere.
            at = min((i for i in (text.find(f'"{tok}"'), text.find(f"'{tok}'")) if i >= 0), default=-1)
            at = at + 1 if at >= 0 else text.find(tok)
            if at >= 0:
                line_start = text.rfind("\n", 0, at) + 1
                found.append((text.count("\n", 0, at) + 1, at - line_start + 1))
                break
    return min(found) if found else (None, None)


class _FileReader:
    """Parses one file into a shard; keeps that file's counts."""

    def __init__(self, path: Path, fmt: str, comp: str | None, sha256: str, config: FilePullConfig, add,
                 quarantine: IO[str] | None, bar):
        import pyoxigraph

        self.path, self.fmt, self.comp, self.config = path, fmt, comp, config
        self.add, self.quarantine, self.bar = add, quarantine, bar
        self.ox = pyoxigraph
        self.oxfmt = oxigraph_format(fmt)
        self.bnode_prefix = f"_:b{sha256[:12]}x"
        self.bnodes: dict[str, str] = {}
        self.counts = {"statements": 0, "triples": 0, "duplicates": 0, "named_graph_quads": 0}
        if fmt in LINE_BASED:
            self.counts.update(lines=0, blank_lines=0, bad_lines=0)

    # -- terms and statements

    def _bnode(self, term) -> str:
        label = self.bnodes.get(term.value)
        if label is None:
            label = self.bnodes[term.value] = f"{self.bnode_prefix}{len(self.bnodes)}"
        return label

    def _add_all(self, quads) -> None:
        """Add parsed statements; a parse error propagates after the ones before it were added."""
        blank, default = self.ox.BlankNode, self.ox.DefaultGraph
        counts, add = self.counts, self.add
        n = 0
        try:
            for q in quads:
                s, o = q.subject, q.object
                s = self._bnode(s) if type(s) is blank else str(s)
                o = self._bnode(o) if type(o) is blank else str(o)
                if add(s, str(q.predicate), o):
                    counts["triples"] += 1
                else:
                    counts["duplicates"] += 1
                if type(q.graph_name) is not default:
                    counts["named_graph_quads"] += 1
                n += 1
        finally:
            counts["statements"] += n
            self.bar.update(n)

    def _error(self, line: int | None, column: int | None, message: str) -> InputError:
        where = f"{self.path}:{line}" + (f":{column}" if column else "") if line else str(self.path)
        if self.config.format:
            # A format forced for all files: the likeliest cause is that this file is in another one.
            try:
                implied = detect_format(self.path)[0]
            except UsageError:
                implied = None
            if implied != self.fmt:
                said = (f"its extension says {implied}: drop --format or pass --format {FORMAT_SHORT[implied]}"
                        if implied else "check --format")
                return InputError(f"{where}: could not be read as {self.fmt} (--format {self.config.format}): "
                                  f"{message}; {said}")
        hint = " (or rerun with --skip-bad to quarantine malformed lines)" if self.fmt in LINE_BASED else ""
        if "absolute IRI" in message and not self.config.base_iri and self.fmt not in LINE_BASED:
            hint = " or give a base IRI for its relative IRIs (--base-iri / base_iri)"
        return InputError(f"{where}: malformed {self.fmt}: {message}; fix the file{hint}")

    # -- whole documents (Turtle, RDF/XML)

    def read_document(self) -> None:
        try:
            with _open(self.path, self.comp) as f:
                self._add_all(self.ox.parse(f, format=self.oxfmt, base_iri=self.config.base_iri))
        except SyntaxError as e:
            line, column, message = e.lineno, e.offset, _message(e)
            if line is None and self.fmt == "rdfxml":  # pyoxigraph's RDF/XML errors carry no position
                message = _XML_POSITION.sub("", message)
                line, column = _locate_xml_error(self.path, self.comp, message)
            raise self._error(line, column, message) from e
        except (OSError, EOFError, ValueError) as e:  # bad compression, unreadable file
            raise InputError(f"{self.path}: cannot read: {e}") from e

    # -- line-based formats (N-Triples, N-Quads), in chunks of lines

    def read_lines(self) -> None:
        chunk: list[bytes] = []
        first = 1
        counts = self.counts
        try:
            with _open(self.path, self.comp) as f:
                for line in f:
                    chunk.append(line)
                    if len(chunk) >= _CHUNK_LINES:
                        self._chunk(chunk, first)
                        first += len(chunk)
                        chunk = []
                if chunk:
                    self._chunk(chunk, first)
                    first += len(chunk)
        except (OSError, EOFError, ValueError) as e:
            raise InputError(f"{self.path}: cannot read (line {first + len(chunk)}): {e}") from e
        counts["lines"] = first - 1

    def _chunk(self, lines: list[bytes], first: int) -> None:
        self.counts["blank_lines"] += sum(1 for x in lines if not _is_content(x))
        start = 0
        while start < len(lines):
            before = self.counts["statements"]
            try:
                self._add_all(self.ox.parse(b"".join(lines[start:]), format=self.oxfmt))
                return
            except SyntaxError as e:
                bad = start + (e.lineno or 1) - 1
                if not self.config.skip_bad:
                    raise self._error(first + bad, e.offset, _message(e)) from e
                done = self.counts["statements"] - before
                error = e
            # One statement per line: the first unconsumed content line is the one after the
            # ``done`` lines parsed. Lines from there to the reported one are retried one by one,
            # so an error reported past its real line still quarantines the right line.
            i, seen = start, 0
            while i < len(lines) and (not _is_content(lines[i]) or seen < done):
                seen += _is_content(lines[i])
                i += 1
            for j in range(i, min(max(bad, i), len(lines) - 1) + 1):
                if _is_content(lines[j]):
                    self._one_line(lines[j], first + j, error if j == bad else None)
            start = max(bad, i) + 1

    def _one_line(self, line: bytes, lineno: int, error: SyntaxError | None) -> None:
        try:
            quads = list(self.ox.parse(line, format=self.oxfmt))
        except SyntaxError as e:
            # The error seen in context (e.g. "invalid IRI code point") says more than the same
            # line parsed alone ("unexpected end of file"): keep it for the reported line.
            e = error or e
            self.counts["bad_lines"] += 1
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            rec = {"file": str(self.path), "line": lineno, "column": e.offset, "message": _message(e),
                   "text": text}
            self.quarantine.write(jsonl_line(rec))
            return
        self._add_all(quads)


def _resolve_paths(paths, config: FilePullConfig) -> list[Path]:
    ps = [Path(p) for p in (paths if paths else config.paths)]
    if not ps:
        raise UsageError("pull file: no input files; give one or more PATHs (or `paths:` in the config)")
    for p in ps:
        if _URL.match(str(p)):
            url = _URL.sub(lambda m: f"{m.group(1)}://", str(p))
            raise UsageError(f"{url}: is a URL; pull file reads local files: download the file first "
                             "(e.g. curl -LO URL), or harvest a SPARQL endpoint with `kgllm pull sparql`")
        if p.is_dir():
            raise InputError(f"{p}: is a directory, not an RDF file; give the files in it "
                             f"(e.g. {p / '*.nt'})")
        if not p.exists():
            raise InputError(f"{p}: no such file")
        if not p.is_file():
            raise InputError(f"{p}: is not a regular file")
    return ps


def pull_files(paths: list[str | os.PathLike] | None, out: str | os.PathLike,
               config: FilePullConfig | None = None, *, pipeline_key: str | None = None) -> Manifest:
    """Pull RDF files into the graph artifact ``out`` (``paths`` default to ``config.paths``)."""
    config = config or FilePullConfig()
    files = _resolve_paths(paths, config)
    # The manifest's config names the files actually read (a copy: the caller's config is not touched).
    config = dataclasses.replace(config, paths=files)
    plan = [(p, *detect_format(p, config.format)) for p in files]
    if config.skip_bad and not any(fmt in LINE_BASED for _, fmt, _ in plan):
        logger.warning("--skip-bad applies to N-Triples/N-Quads only; the other formats stop at an error")
    totals = {"files": len(files), "statements": 0, "named_graph_quads": 0, "lines": 0, "blank_lines": 0,
              "bad_lines": 0}
    per_file = []
    with GraphWriter(out, config=config, pipeline_key=pipeline_key) as g:
        qf = open(g.path / QUARANTINE, "w", encoding="utf-8") if config.skip_bad else None  # noqa: SIM115
        bar = progress(desc="pull file", unit="triple")
        try:
            for path, fmt, comp in plan:
                sha = sha256_file(path)
                prov = {"source": "file", "path": str(path), "sha256": sha, "format": fmt}
                with g.shard(prov) as add:
                    r = _FileReader(path, fmt, comp, sha, config, add, qf, bar)
                    r.read_lines() if fmt in LINE_BASED else r.read_document()
                per_file.append({"path": str(path), "sha256": sha, "format": fmt,
                                 "compression": comp[1:] if comp else None, **r.counts})
                for k in totals:
                    totals[k] += r.counts.get(k, 0) if k != "files" else 0
                logger.info("%s: %d statements (%d kept)", path, r.counts["statements"], r.counts["triples"])
                if r.counts.get("bad_lines") and not r.counts["statements"]:
                    g.problems.append(
                        f"all {r.counts['bad_lines']} statements of {path} were quarantined "
                        f"(see {Path(out) / QUARANTINE}); is it in another format?")
        finally:
            bar.close()
            if qf is not None:
                qf.close()
        if not sum(f["triples"] for f in per_file) and not g.problems:
            names = ", ".join(str(p) for p in files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
            what = f"pull file: {names}: 0 triples"
            if not config.allow_empty:
                raise EmptyResultError(f"{what}; pass --allow-empty to accept an empty graph")
            logger.warning("%s (accepted: allow_empty)", what)
        g.counts.update(totals)
        g.extra["files"] = per_file
    return g.manifest


def iter_file_triples(path: str | os.PathLike, fmt: str | None = None, base_iri: str | None = None
                      ) -> Iterator[tuple[str, str, str]]:
    """Stream one RDF file's triples as N-Triples term strings (blank nodes as pyoxigraph labels them)."""
    import pyoxigraph

    p = Path(path)
    fmt_, comp = detect_format(p, fmt)
    with _open(p, comp) as f:
        try:
            for q in pyoxigraph.parse(f, format=oxigraph_format(fmt_), base_iri=base_iri):
                yield str(q.subject), str(q.predicate), str(q.object)
        except SyntaxError as e:
            raise InputError(f"{p}:{e.lineno}:{e.offset}: malformed {fmt_}: {_message(e)}") from e

