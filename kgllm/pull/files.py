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
* On Ray (``--engine ray`` or a Ray address: :func:`_on_ray`) N-Triples/N-Quads files are parsed by Ray
  tasks, a large uncompressed one in byte ranges cut on chunk boundaries (:func:`_byte_ranges`); this
  process writes what they send back in input order, so the artifact, its counts and its errors are those
  of the in-process pull (:func:`pull_files`).
* Resuming: the parts' parsed blocks are kept beside the output, with a checkpoint after each chunk of lines,
  until the pull succeeds (on Ray always; in this process for N-Triples/N-Quads input of :data:`RESUME_BYTES`
  or more); a stopped pull resumes from its finished blocks.
* Zero triples in all is an :class:`EmptyResultError` (exit 1, nothing written) unless
  ``allow_empty`` (``--allow-empty``): then a warning.

Counts add up per file and in total, for the line-based formats:
``lines = statements + bad_lines + blank_lines`` (blank or comment-only lines), and for every format
``statements = triples kept + duplicates`` (duplicates across all files of the pull are dropped once).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import json
import os
import pickle
import re
import shutil
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .. import engine as enginemod
from .. import rdf
from ..artifacts import (
    Manifest,
    atomic_write_json,
    git_commit,
    jsonl_line,
    package_versions,
    resume_dir,
    sha256_file,
)
from ..errors import ArtifactError, ConfigError, EmptyResultError, InputError, UsageError
from ..log import logger, progress
from ..rdf import FORMAT_SHORT, LINE_BASED, GraphWriter, format_name, line_key, open_rdf, oxigraph_format

QUARANTINE = "quarantine.jsonl"

_BOM = b"\xef\xbb\xbf"
_URL = re.compile(r"^(https?|ftp)://?", re.I)  # a Path turns "https://x" into "https:/x"
_CHUNK_LINES = 20_000  # lines parsed per pyoxigraph call: large enough to amortise the call
RANGE_BYTES = 16 << 20  # on Ray: an uncompressed N-Triples/N-Quads file is parsed in ranges of about this size
# In this process: N-Triples/N-Quads input of about this many bytes or more (uncompressed: a compressed file
# counts _PACKED times its size; KGLLM_PULL_RESUME_BYTES) is parsed into blocks kept beside the output until
# the pull succeeds, so that a stopped pull resumes from them (about 7M triples, 40 s of parsing; keeping the
# blocks costs about 20% of the pull's time, and disk for the parsed statements).
RESUME_BYTES = 1 << 30
_PACKED = 6
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
                 quarantine: IO[str] | None, bar, file: Path | None = None):
        import pyoxigraph

        self.path, self.fmt, self.comp, self.config = path, fmt, comp, config
        self.file = file or path  # what is opened (a Ray task: the absolute path); messages name ``path``
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

    def _label(self, value: str) -> str:
        """:meth:`_bnode` of a blank node given by its label in the file (a Ray task's ``_:label``)."""
        label = self.bnodes.get(value)
        if label is None:
            label = self.bnodes[value] = f"{self.bnode_prefix}{len(self.bnodes)}"
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
            with _open(self.file, self.comp) as f:
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

    def read_lines(self, span: tuple[int, int, int] | None = None, skip: int = 0, on_chunk=None) -> None:
        """Parse the whole file, or with ``span = (start, stop, first)`` the bytes ``start..stop`` of an
        uncompressed file: whole lines, the first of them line ``first`` of the file (a byte range of
        :func:`_byte_ranges`). Chunks of ``_CHUNK_LINES`` lines count from line 1 of the file either way,
        since a range starts on a chunk boundary: a range parses exactly as its lines do in a whole-file pull.
        ``skip``: the first lines (a whole number of chunks) were parsed before (a resumed part: read past, not
        parsed); ``on_chunk(lines)`` is called after each chunk with the lines read so far."""
        chunk: list[bytes] = []
        start = first = span[2] if span else 1
        counts = self.counts
        try:
            with (_read_span(self.file, *span[:2]) if span else _open(self.file, self.comp)) as f:
                if skip:
                    first += sum(1 for _ in itertools.islice(f, skip))
                for line in f:
                    chunk.append(line)
                    if len(chunk) >= _CHUNK_LINES:
                        self._chunk(chunk, first)
                        first += len(chunk)
                        chunk = []
                        if on_chunk is not None:
                            on_chunk(first - start)
                if chunk:
                    self._chunk(chunk, first)
                    first += len(chunk)
        except (OSError, EOFError, ValueError) as e:
            raise InputError(f"{self.path}: cannot read (line {first + len(chunk)}): {e}") from e
        counts["lines"] = first - start

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

    def take(self, part: dict, add_keyed) -> None:
        """Add what a Ray task parsed of this file (:func:`_parse_part`: its next byte range, or all of it), as
        the in-process path adds it: blank nodes relabelled in order of appearance, duplicates dropped and
        counted by the shard's ``add_keyed`` (:meth:`kgllm.rdf.GraphWriter.shard`), quarantine records
        written; the error the task met is raised here, so in input order. The task's spill file is read
        block by block, then removed (kept when it is in a resume directory: ``part["keep"]``)."""
        if "error" in part:
            raise InputError(part["error"])
        spill = Path(part["spill"])
        for block in _blocks(spill):
            self._take_block(*block, add_keyed)
        if not part.get("keep"):
            spill.unlink()
        for k in _TASK_COUNTS:
            self.counts[k] += part["counts"][k]

    def parse_here(self, part: tuple, add_keyed) -> None:
        """The in-process pull of a large line-based file: :func:`_parse_part` in this process, each block
        kept in the resume directory (with its checkpoint) and added as :meth:`take` adds it, as it comes; a
        part a stopped run left half-parsed starts with the blocks it had kept."""
        res = _parse_part(self.config, part, on_block=lambda block: self._take_block(*block, add_keyed))
        if "error" in res:
            raise InputError(res["error"])
        for k in _TASK_COUNTS:
            self.counts[k] += res["counts"][k]

    def _take_block(self, text: str, keys: bytes, bnodes: dict, n: int, quarantine: str, add_keyed) -> None:
        lines = text.split("\n") if n else []
        if len(lines) != n:
            raise RuntimeError(f"{self.path}: a Ray task sent {len(lines)} lines for {n} statements")
        label = self._label
        kept = 0
        for i, line in enumerate(lines):
            if bnodes and i in bnodes:
                s, p, o = bnodes[i]
                s = label(s[2:]) if s[:2] == "_:" else s
                o = label(o[2:]) if o[:2] == "_:" else o
                line = f"{s} {p} {o}"
                key = line_key(line)
            else:
                key = keys[8 * i:8 * i + 8]
            kept += add_keyed(line, key)
        self.counts["triples"] += kept
        self.counts["duplicates"] += n - kept
        if quarantine:
            self.quarantine.write(quarantine)
        self.bar.update(n)

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


# ----------------------------------------------------------------------------- on Ray

_TASK_COUNTS = ("statements", "named_graph_quads", "lines", "blank_lines", "bad_lines")  # added up from tasks


def _on_ray(config) -> bool:
    """Whether N-Triples/N-Quads files are parsed by Ray tasks: asked for (``--engine ray``) or a cluster given
    (``auto`` with an address), the rule of the corpus stage. Never in ``auto`` on one machine: the parsed
    statements travel back to this process, which writes them (the speed-up is the parsing's)."""
    return config.mode == "ray" or (config.mode == "auto" and not config.embedded)


def _byte_ranges(path: Path, range_bytes: int) -> list[tuple[int, int, int]]:
    """``(start, stop, first line)`` of the byte ranges, of about ``range_bytes`` each, that cover an
    uncompressed line-based file (after a byte order mark). Each range starts at the first line
    ``1 + k * _CHUNK_LINES`` (a chunk boundary of the in-process pull) at or past its target offset, so it
    parses exactly as the same lines do in one pass; its first line number counts the newlines before it."""
    import mmap

    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        size = len(mm)
        start = len(_BOM) if mm[:len(_BOM)] == _BOM else 0
        line = 1  # the line that starts at ``start``
        out: list[tuple[int, int, int]] = []
        while size - start > range_bytes:
            target = start + range_bytes
            at = line + sum(mm[a:min(a + (64 << 20), target)].count(b"\n")
                            for a in range(start, target, 64 << 20))  # the line byte ``target`` is in
            cut_line = -(-at // _CHUNK_LINES) * _CHUNK_LINES + 1     # the next chunk boundary after it
            pos = target
            for _ in range(cut_line - at):
                pos = mm.find(b"\n", pos) + 1
                if not pos:
                    break
            if not pos or pos >= size:
                break
            out.append((start, pos, line))
            start, line = pos, cut_line
        out.append((start, size, line))
    return out


def _read_span(path: Path, start: int, stop: int) -> io.BytesIO:
    """Bytes ``start..stop`` of a file, to be read line by line."""
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(stop - start)
    if len(data) != stop - start:
        raise EOFError(f"the file is shorter than when it was cut into ranges ({start + len(data)} bytes "
                       f"where {stop} were expected); was it changed during the pull?")
    return io.BytesIO(data)


class _NoBar:
    def update(self, n: int) -> None:
        pass


class _TaskReader(_FileReader):
    """A :class:`_FileReader` in a Ray task: blank nodes keep their label in the file (``_:label``); the
    driver relabels them in order of appearance across the whole file (:meth:`_FileReader.take`)."""

    def _bnode(self, term) -> str:
        return f"_:{term.value}"


_NO_KEY = bytes(8)  # a line with a blank node: the driver relabels it, then computes its key
_SPILL_DIR = ".ray-parts"  # in the artifact's temp directory while the tasks run (when no resume directory)
RESUME_OWNER = "kgllm-pull-resume"   # the owner file of ``.OUT.parts-KEY`` (kgllm.artifacts.resume_dir)


def _parse_part(config: FilePullConfig, part: tuple, on_block=None) -> dict:
    """A Ray task (:meth:`kgllm.engine.Engine.map_tasks`), or a step of the in-process pull
    (:meth:`_FileReader.parse_here`): one byte range of an N-Triples/N-Quads file, or the whole file (``span`` None),
    parsed into the spill file ``spill``: a pickle per block of up to ``_CHUNK_LINES`` statements,
    ``(lines, keys, bnodes, n, quarantine)``: the ``n`` statement lines ``s p o`` as one text, their
    de-duplication keys (8 bytes each), for those with a blank node (still with its label in the file; the
    driver relabels them) the terms by index, and the quarantine records (JSONL text). So neither the task
    nor the driver holds more than a block, whatever the size of the part, and parts that finish before
    their turn wait on disk. Returns ``{spill, counts}``; an :class:`InputError` comes back as
    ``{error: message}``, which the driver raises when it reaches this part (input order: as the in-process
    pull would).

    The blocks go to ``SPILL.partial`` first; after each chunk of input lines a checkpoint
    (``SPILL.at.json``: the partial file's length, the lines read, the counts) is replaced atomically, so a
    part stopped half-way goes on from its last checkpoint (:func:`_resumed`) instead of starting over.
    ``on_block(block)``, when given, gets every block of the part in order, those of the checkpoint first
    (the in-process pull writes them as they come)."""
    path, file, fmt, comp, span, spill = part
    partial, at = _partial(spill), _checkpoint(spill)
    lines: list[str] = []
    keys: list[bytes] = []
    bnodes: dict[int, tuple[str, str, str]] = {}
    q = io.StringIO() if config.skip_bad else None

    def flush() -> None:
        if not lines and not (q and q.tell()):
            return
        block = ("\n".join(lines), b"".join(keys), dict(bnodes), len(lines), q.getvalue() if q else "")
        data = pickle.dumps(block, protocol=pickle.HIGHEST_PROTOCOL)
        out.write(_BLOCK_HEAD.pack(len(data), zlib.crc32(data)))
        out.write(data)
        lines.clear()
        keys.clear()
        bnodes.clear()
        if q:
            q.seek(0)
            q.truncate()
        if on_block is not None:
            on_block(block)

    def add(s: str, p: str, o: str) -> bool:
        line = f"{s} {p} {o}"
        if s[:2] == "_:" or o[:2] == "_:":
            bnodes[len(lines)] = (s, p, o)
            keys.append(_NO_KEY)
        else:
            keys.append(line_key(line))
        lines.append(line)
        if len(lines) >= _CHUNK_LINES:
            flush()
        return True

    def checkpoint(read: int) -> None:
        flush()
        out.flush()
        os.fsync(out.fileno())   # the blocks on disk before the checkpoint that counts them
        atomic_write_json(at, {"spill": str(spill), "bytes": out.tell(), "lines": read,
                               "counts": {k: r.counts[k] for k in _TASK_COUNTS}})

    r = _TaskReader(path, fmt, comp, "", config, add, q, _NoBar(), file=file)
    state = _resumed(spill)
    if state is None:
        out = open(partial, "wb")  # noqa: SIM115  (closed below; left for the rerun after a stop)
    else:
        out = open(partial, "r+b")  # noqa: SIM115
        out.truncate(state["bytes"])
        out.seek(state["bytes"])
        for k in _TASK_COUNTS:
            r.counts[k] = state["counts"][k]
    try:
        if state is not None and on_block is not None:
            for block in _blocks(partial, state["bytes"]):   # the blocks of the checkpoint first
                on_block(block)
        r.read_lines(span, skip=state["lines"] if state else 0, on_chunk=checkpoint)
        flush()
    except InputError as e:
        out.close()
        partial.unlink(missing_ok=True)
        at.unlink(missing_ok=True)
        return {"error": str(e)}
    except BaseException:
        out.close()   # the partial file and its checkpoint stay: a rerun goes on from there
        raise
    out.close()
    os.replace(partial, spill)
    res = {"spill": str(spill), "counts": {k: r.counts[k] for k in _TASK_COUNTS}}
    atomic_write_json(_done_marker(spill), res)   # after the part itself: a marker means a whole part
    at.unlink(missing_ok=True)
    return res


def _partial(spill: str | Path) -> Path:
    return Path(f"{spill}.partial")


def _checkpoint(spill: str | Path) -> Path:
    return Path(spill).with_suffix(".at.json")


def _resumed(spill: str | Path) -> dict | None:
    """The checkpoint of a part a stopped run left half-parsed (its partial file at least as long), or None."""
    try:
        state = json.loads(_checkpoint(spill).read_text())
        size = _partial(spill).stat().st_size
    except (OSError, ValueError):
        return None
    ok = (isinstance(state, dict) and state.get("spill") == str(spill) and isinstance(state.get("bytes"), int)
          and 0 <= state["bytes"] <= size and isinstance(state.get("lines"), int)
          and set(_TASK_COUNTS) <= set(state.get("counts") or {}))
    return state if ok else None


_BLOCK_HEAD = struct.Struct("<QI")   # a kept block: its pickle's length and CRC-32, then the pickle


def _blocks(path: Path, stop: int | None = None) -> Iterator[tuple]:
    """The blocks of a spill file (up to byte ``stop``: a partial part's checkpoint), in order, each checked
    against its length and CRC-32. A damaged one (a disk or a machine that failed under a kept part) is an
    :class:`ArtifactError` naming the file, an input error: :func:`pull_files` then removes the kept parts,
    and a rerun parses them again."""
    with open(path, "rb") as f:
        while stop is None or f.tell() < stop:
            at = f.tell()
            head = f.read(_BLOCK_HEAD.size)
            if not head and stop is None:
                return
            why = None
            if len(head) < _BLOCK_HEAD.size:
                why = "cut short"
            else:
                n, crc = _BLOCK_HEAD.unpack(head)
                data = f.read(n)
                if len(data) < n:
                    why = "cut short"
                elif zlib.crc32(data) != crc:
                    why = "its checksum does not match"
            if why is not None:
                raise ArtifactError(f"{path}: a kept block of the pull is damaged ({why}) at byte {at}; the pull's "
                                    "kept parts are removed: rerun it to parse them again")
            yield pickle.loads(data)


def _done_marker(spill: str | Path) -> Path:
    return Path(spill).with_suffix(".done.json")


def _kept_part(spill: str | Path) -> dict | None:
    """A part a stopped run finished (its spill file and its marker), or None."""
    try:
        res = json.loads(_done_marker(spill).read_text())
    except (OSError, ValueError):
        return None
    return res if Path(spill).exists() and res.get("spill") == str(spill) else None


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
               config: FilePullConfig | None = None, *, pipeline_key: str | None = None,
               range_bytes: int | None = None, resume_bytes: int | None = None) -> Manifest:
    """Pull RDF files into the graph artifact ``out`` (``paths`` default to ``config.paths``).

    Where the engine says Ray (:func:`_on_ray`), the N-Triples/N-Quads files are parsed by Ray tasks
    (:func:`_parse_part`): an uncompressed one larger than ``range_bytes`` (default :data:`RANGE_BYTES`) in
    byte ranges of about that size, any other (compressed: it cannot be cut) in one task; the other formats
    are parsed in this process. The tasks write what they parsed to spill files beside ``out``, in
    ``.NAME.parts-KEY/`` (kgllm.artifacts.resume_dir: kept until the pull succeeds, so that a stopped pull
    parses only the parts it had not finished; on a cluster ``out``, like the input files, must be on
    storage every node sees), which this process reads in input order, writing the graph as the in-process
    pull does: the same shards, counts, ``content_sha256`` and errors; ``extra.engine`` says where it ran.
    In this process, N-Triples/N-Quads input of ``resume_bytes`` or more (default :data:`RESUME_BYTES`, or
    ``KGLLM_PULL_RESUME_BYTES``; a compressed file counts ``_PACKED`` times its size) goes through the same
    parts, one per file, parsed here (:meth:`_FileReader.parse_here`) and written as each block comes, so that
    it resumes too."""
    config = config or FilePullConfig()
    if range_bytes is not None and range_bytes < 1:
        raise ConfigError(f"range_bytes: {range_bytes}; give at least 1")
    files = _resolve_paths(paths, config)
    # The manifest's config names the files actually read (a copy: the caller's config is not touched).
    config = dataclasses.replace(config, paths=files)
    plan = [(p, *detect_format(p, config.format)) for p in files]
    if config.skip_bad and not any(fmt in LINE_BASED for _, fmt, _ in plan):
        logger.warning("--skip-bad applies to N-Triples/N-Quads only; the other formats stop at an error")
    eng_config = enginemod.current()
    ray = _on_ray(eng_config) and any(fmt in LINE_BASED for _, fmt, _ in plan)
    if resume_bytes is None:
        try:
            resume_bytes = int(os.environ.get("KGLLM_PULL_RESUME_BYTES") or RESUME_BYTES)
        except ValueError:
            raise ConfigError(f"KGLLM_PULL_RESUME_BYTES={os.environ['KGLLM_PULL_RESUME_BYTES']!r}: give a number "
                              "of bytes") from None
    here = not ray and sum(p.stat().st_size * (1 if comp is None else _PACKED) for p, fmt, comp in plan
                           if fmt in LINE_BASED) >= resume_bytes
    # The parts of each line-based file (on Ray: its byte ranges, or the whole file; here: the whole file,
    # when the line-based input is large enough to be worth resuming), in input order.
    parts: list[tuple] = []
    tasks: list[range | None] = []
    for path, fmt, comp in plan:
        if not (ray or here) or fmt not in LINE_BASED:
            tasks.append(None)
            continue
        size = range_bytes or RANGE_BYTES
        spans = _byte_ranges(path, size) if ray and comp is None and path.stat().st_size > size else [None]
        tasks.append(range(len(parts), len(parts) + len(spans)))
        parts += [(path, path.absolute(), fmt, comp, span) for span in spans]
    totals = {"files": len(files), "statements": 0, "named_graph_quads": 0, "lines": 0, "blank_lines": 0,
              "bad_lines": 0}
    per_file = []
    split = None
    try:
        with GraphWriter(out, config=config, pipeline_key=pipeline_key) as g, \
                (enginemod.open_engine(eng_config) if ray else contextlib.nullcontext()) as eng:
            split = _Parts(parts, Path(out), g.path.absolute(), config, eng)
            qf = open(g.path / QUARANTINE, "w", encoding="utf-8") if config.skip_bad else None  # noqa: SIM115
            bar = progress(desc="pull file", unit="triple")
            try:
                for (path, fmt, comp), mine in zip(plan, tasks, strict=True):
                    sha = sha256_file(path)
                    shard = g.shard({"source": "file", "path": str(path), "sha256": sha, "format": fmt})
                    with shard as add:
                        r = _FileReader(path, fmt, comp, sha, config, add, qf, bar)
                        if mine is not None:
                            split.read(r, mine, shard.add_keyed)
                        elif fmt in LINE_BASED:
                            r.read_lines()
                        else:
                            r.read_document()
                    per_file.append({"path": str(path), "sha256": sha, "format": fmt,
                                     "compression": comp[1:] if comp else None, **r.counts})
                    for k in totals:
                        totals[k] += r.counts.get(k, 0) if k != "files" else 0
                    logger.info("%s: %d statements (%d kept)", path, r.counts["statements"], r.counts["triples"])
                    if r.counts.get("bad_lines") and not r.counts["statements"]:
                        g.problems.append(
                            f"all {r.counts['bad_lines']} statements of {path} were quarantined "
                            f"(see {Path(out) / QUARANTINE}); is it in another format?")
                split.finish()
            finally:
                split.close()
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
            # Where the parsing ran (no part of any content hash: the files are the same either way).
            g.extra["engine"] = {**(eng if ray else enginemod.Engine(eng_config)).report(), **split.report()}
    except BaseException as e:
        # Parsed parts stay for the rerun after a stop or a crash; a resume directory without one does not,
        # nor one of a pull the input failed (an error in a file, an empty pull: a rerun fails the same way).
        if split is not None:
            split.drop(unless_resumable=not isinstance(e, (InputError, EmptyResultError)))
        raise
    split.drop()   # written: the kept parts are of no more use
    return g.manifest


class _Parts:
    """The parts of the line-based files (:func:`pull_files`): where their blocks go (a resume directory
    beside the output, or ``.ray-parts/`` in the artifact's temp directory when a live run holds that
    one), which ones a stopped run finished (``kept``) or left half-way (``halfway``), and on Ray the tasks'
    results, taken in input order."""

    def __init__(self, parts: list[tuple], out: Path, tmp: Path, config: FilePullConfig, eng):
        self.config, self.eng = config, eng
        self.resume: Path | None = None
        self.spill = tmp / _SPILL_DIR
        self.kept: dict[int, dict] = {}
        self.halfway: list[int] = []
        self.results = self.ordered = None
        if parts:
            # Finished parts are kept beside the output until the pull succeeds, so that a stopped pull
            # resumes from them (same files, sizes and times, config, ranges and code: ``key``).
            key = {"files": [(str(a[1]), a[1].stat().st_size, a[1].stat().st_mtime_ns, a[4]) for a in parts],
                   "config": dataclasses.asdict(config), "code": [package_versions().get("kgllm"), git_commit()]}
            self.resume = resume_dir(out, key, "parts", RESUME_OWNER)
            if self.resume is not None:
                self.spill = self.resume.absolute()
            else:
                self.spill.mkdir()
            parts = [(*a, str(self.spill / f"{i:06d}.pickle")) for i, a in enumerate(parts)]
            if self.resume is not None:
                self.kept = {i: {**r, "keep": True} for i, a in enumerate(parts)
                             if (r := _kept_part(a[-1])) is not None}
                self.halfway = [i for i, a in enumerate(parts) if i not in self.kept and _resumed(a[-1]) is not None]
                if self.kept or self.halfway:
                    logger.info("pull file: %d of %d parts parsed by a stopped run%s", len(self.kept), len(parts),
                                f", {len(self.halfway)} in part" if self.halfway else "")
        self.parts = parts
        self.todo = [i for i in range(len(parts)) if i not in self.kept]

    def read(self, r: _FileReader, mine: range, add_keyed) -> None:
        """Parts ``mine`` (one file's) into the reader's shard: kept ones from their blocks; the others parsed
        here (:meth:`_FileReader.parse_here`), or taken from their Ray tasks (:meth:`_FileReader.take`)."""
        for i in mine:
            if i in self.kept:
                r.take(self.kept[i], add_keyed)
            elif self.eng is None:
                r.parse_here(self.parts[i], add_keyed)
                if self.resume is None:
                    Path(self.parts[i][-1]).unlink()
                    _done_marker(self.parts[i][-1]).unlink()
            else:
                r.take(self._result(i), add_keyed)

    def _result(self, i: int) -> dict:
        """Part ``i`` as parsed by its task (the tasks finish in any order; the parts are used in order)."""
        if self.results is None:
            self.results = self.eng.map_tasks(_parse_part, [self.parts[k] for k in self.todo], shared=self.config,
                                              desc="pull file: parse", unit="part")
            self.ordered = enginemod.in_order(self.results)
        j, res = next(self.ordered)
        assert self.todo[j] == i, (self.todo[j], i)   # the parts are taken in order, each once
        return {**res, "keep": self.resume is not None}

    def finish(self) -> None:
        """Every part taken: the tasks' generator is run to its end (which records the step), and the temp
        spill directory (empty by now) goes."""
        if self.ordered is not None:
            for _ in self.ordered:
                pass
        if self.parts and self.resume is None:
            shutil.rmtree(self.spill)

    def close(self) -> None:
        if self.results is not None:
            self.ordered.close()
            self.results.close()

    def report(self) -> dict:
        out = {"parts": len(self.parts)} if self.parts else {}
        if self.kept or self.halfway:
            out["parts_resumed"] = len(self.kept) + len(self.halfway)
        return out

    def drop(self, unless_resumable: bool = False) -> None:
        """Remove the resume directory; with ``unless_resumable``, only when it holds no finished or
        checkpointed part (a stop or a crash: the rerun goes on from those)."""
        d = self.resume
        if d is None or unless_resumable and (any(d.glob("*.done.json")) or any(d.glob("*.at.json"))):
            return
        shutil.rmtree(d, ignore_errors=True)


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

