"""Harvest a SPARQL endpoint (Virtuoso, DBpedia, any SPARQL 1.1 server) into a graph artifact.

Takes: an endpoint (an HTTP URL, or an embedded pyoxigraph store), a CONSTRUCT query (or a
``SELECT ?s ?p ?o`` query: any three projected variables, in subject/predicate/object order) and a
:class:`HarvestConfig`.
Makes: a graph artifact (kind ``graph``, see :mod:`kgllm.rdf`): one gzip N-Triples shard per page, each
with provenance ``{source: sparql, endpoint, query, query_sha256, page, offset, limit, retrieved_at}``;
the manifest keeps the query text, the paged and COUNT query texts, the endpoint's row cap and the
request/retry/truncation counts.

How a query is harvested
  * Paging, two orders (``HarvestConfig.order``). *Ordered*: the WHERE clause is wrapped as an ordered
    sub-select, ``CONSTRUCT {T} WHERE { { SELECT DISTINCT <template vars> WHERE {W} ORDER BY <template
    vars> } } LIMIT n OFFSET k`` (the sub-select form is what Virtuoso needs to sort past its row cap; a
    plain ``ORDER BY ... OFFSET`` beyond ResultSetMaxRows fails with SR353). Ordering by the template
    variables is a total order on what the template can produce, so pages neither overlap nor skip,
    but the endpoint sorts the whole result for every page (quadratic: 200k triples take minutes).
    *Natural*: ``CONSTRUCT {T} WHERE {W} LIMIT n OFFSET k`` in the endpoint's index order, no sort;
    stable on an unchanging store, and the COUNT check proves it. The default, *auto*, pages in
    natural order when a COUNT check is possible and starts over ordered if the check then fails.
  * Row cap and truncation: Virtuoso (and DBpedia, 10,000 rows) silently truncates results to its cap
    and answers HTTP 200. A page never asks for more than ``cap - 1`` solutions; a page that comes back
    with ``cap`` or more rows (CONSTRUCT templates with several triples per solution), or an
    ``X-SPARQL-MaxRows`` header lower than the page, is treated as truncated: the page is halved and
    fetched again, so no triple is lost.
  * Faults: 5xx, timeouts, connection refusals/resets and truncated bodies are retried with exponential
    backoff and full jitter; ``Retry-After`` is honoured on 405/429/503. Requests are spaced to
    ``rate`` per second when set.
  * Resume: pages are written to ``.OUT.harvest/`` beside the output and a checkpoint is replaced
    atomically after each page; ``resume=True`` continues after a crash with no page fetched twice
    into the result and none skipped.
  * COUNT check: where the template has no blank nodes, the endpoint is asked for the number of
    distinct triples the query yields; a mismatch with the harvested count is an error.
  * Zero triples is an :class:`EmptyResultError` (exit 1, nothing written, the work directory removed)
    unless ``allow_empty`` (``--allow-empty``): then a warning.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import email.utils
import gzip
import hashlib
import http.client
import json
import logging
import random
import re
import shutil
import time
import urllib.error
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import EmptyResultError, InputError, UsageError

logger = logging.getLogger("kgllm.pull.sparql")

USER_AGENT = "kgllm/0.1 (knowledge-graph harvester; https://w3id.org/kgllm)"
CHECKPOINT = "checkpoint.json"
CHECKPOINT_VERSION = 2  # 2: the state records its page order ("mode")
_RETRY_AFTER_CODES = (405, 429, 503)


# ----------------------------------------------------------------------------- configuration


@dataclass
class HarvestConfig:
    """How to page, retry and pace requests (shared by ``pull.sparql`` and ``pull.dbpedia``)."""

    page_size: int = 10_000           # solutions per page; clamped to the endpoint's cap - 1
    max_rows: int = 10_000            # the endpoint's row cap when it does not announce one (0: none)
    timeout: float = 120.0            # seconds per request (connect + read)
    retries: int = 8                  # attempts per request after the first
    backoff: float = 1.0              # base of the exponential backoff, seconds
    backoff_max: float = 60.0         # cap of one backoff sleep
    retry_after_max: float = 600.0    # longest Retry-After we agree to wait
    rate: float = 0.0                 # at most this many requests per second (0: no limit)
    default_graph: list[str] = field(default_factory=list)  # default-graph-uri parameters
    method: Literal["auto", "GET", "POST"] = "auto"         # auto: GET unless the query is long
    count_check: bool = True          # compare with the endpoint's COUNT where the query allows
    # Page order. "ordered": ORDER BY sub-select, stable by SPARQL semantics, but the endpoint sorts
    # the whole result for every page. "natural": LIMIT/OFFSET in the endpoint's index order (no sort;
    # needs the COUNT check to prove completeness). "auto": natural where a COUNT check is possible,
    # and if it then fails, the harvest starts over ordered.
    order: Literal["auto", "ordered", "natural"] = "auto"
    validate_query: bool = True       # parse the query locally first (off for vendor extensions)
    resume: bool = False              # continue from the checkpoint of an interrupted harvest
    user_agent: str = USER_AGENT

    def __post_init__(self):
        if self.page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {self.page_size}")
        if self.max_rows < 0 or self.max_rows == 1:
            raise ValueError(f"max_rows must be 0 (no cap) or >= 2, got {self.max_rows}")
        if self.retries < 0 or self.timeout <= 0 or self.rate < 0:
            raise ValueError("retries must be >= 0, timeout > 0 and rate >= 0")


@dataclass
class SparqlConfig:
    """Config of the ``pull.sparql`` stage."""

    endpoint: str = ""
    query: Path | None = None
    harvest: HarvestConfig = field(default_factory=HarvestConfig)
    allow_empty: bool = False        # accept zero triples (a warning) instead of failing (exit 1)


# ----------------------------------------------------------------------------- query analysis


_IRIREF = re.compile(r'<[^<>"{}|^`\\\s]*>')
_VAR = re.compile(r"[?$]([A-Za-z0-9_\u00B7\u00C0-\uFFFF]+)")
_FORM = re.compile(r"\b(SELECT|CONSTRUCT|DESCRIBE|ASK)\b", re.I)
_WHERE = re.compile(r"\bWHERE\b", re.I)
_FROM = re.compile(r"\bFROM\b", re.I)
_FORBIDDEN_MODS = re.compile(r"\b(ORDER\s+BY|LIMIT|OFFSET)\b", re.I)


def _mask(text: str) -> str:
    """``text`` with comments, strings and IRIs blanked (same length), so braces and keywords
    found in the result are real syntax."""
    out = list(text)
    i, n = 0, len(text)

    def blank(a: int, b: int) -> None:
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if c == "#":
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif c in "\"'":
            if text.startswith(c * 3, i):
                j = i + 3
                while j < n and not text.startswith(c * 3, j):
                    j += 2 if text[j] == "\\" else 1
                j = min(n, j + 3)
            else:
                j = i + 1
                while j < n and text[j] != c and text[j] != "\n":
                    j += 2 if text[j] == "\\" else 1
                j = min(n, j + 1)
            blank(i + 1, j - 1)
            i = j
        elif c == "<" and (m := _IRIREF.match(text, i)):
            blank(i + 1, m.end() - 1)
            i = m.end()
        else:
            i += 1
    return "".join(out)


def _match_brace(masked: str, start: int, where: str) -> int:
    """Index just past the ``}`` closing the ``{`` at ``start``."""
    depth = 0
    for k in range(start, len(masked)):
        if masked[k] == "{":
            depth += 1
        elif masked[k] == "}":
            depth -= 1
            if depth == 0:
                return k + 1
    raise InputError(f"{where}: unbalanced braces in the query")


def _line_col(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    return f"{line}:{pos - (text.rfind(chr(10), 0, pos) + 1) + 1}"


@dataclass(frozen=True)
class Query:
    """A harvestable query split into the parts the harvester re-assembles.

    ``where`` is the text inside the WHERE braces; ``modifiers`` what followed it (GROUP BY, HAVING,
    VALUES; ORDER BY/LIMIT/OFFSET are refused because the harvester pages the query itself).
    """

    name: str
    text: str
    form: str                      # "CONSTRUCT" | "SELECT"
    prologue: str
    template: str                  # CONSTRUCT template (inside braces) or the SELECT projection
    dataset: str                   # FROM / FROM NAMED clauses
    where: str
    modifiers: str
    variables: tuple[str, ...]     # ordering/projection variables, without '?'
    blank_template: bool           # template has blank nodes (no COUNT check possible)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def paged(self, limit: int, offset: int, ordered: bool = True) -> str:
        """The query text of one page.

        ``ordered``: an ordered sub-select with LIMIT/OFFSET outside (see module doc), stable by the
        SPARQL semantics but the endpoint sorts the whole result for every page. Unordered: the query
        as written plus LIMIT/OFFSET, in the endpoint's natural (index) order, which is stable on an
        unchanging store and costs no sort; the COUNT check then proves the pages fitted together.
        """
        if not self.variables:  # a constant template: nothing to page
            return self.text
        v = " ".join(f"?{x}" for x in self.variables)
        if not ordered:
            head = f"CONSTRUCT {{\n{self.template}\n}}" if self.form == "CONSTRUCT" else f"SELECT {self.template}"
            return (f"{self.prologue}{head} {self.dataset}\nWHERE {{\n{self.where}\n}} {self.modifiers}\n"
                    f"LIMIT {limit} OFFSET {offset}")
        inner = f"SELECT DISTINCT {v} WHERE {{\n{self.where}\n}} {self.modifiers}\nORDER BY {v}"
        head = f"CONSTRUCT {{\n{self.template}\n}}" if self.form == "CONSTRUCT" else f"SELECT {v}"
        return (f"{self.prologue}{head} {self.dataset}\nWHERE {{ {{ {inner} }} }}\n"
                f"LIMIT {limit} OFFSET {offset}")

    def count_query(self, template_triples: list[tuple[str, str, str]] | None) -> str | None:
        """SELECT (COUNT(*) AS ?n): the number of distinct, valid triples the query yields, or None."""
        if self.form == "SELECT":
            a, b, c = (f"?{x}" for x in self.variables)
            sel = f"{{ SELECT DISTINCT {a} {b} {c} WHERE {{\n{self.where}\n}} {self.modifiers} }}"
            return (f"{self.prologue}SELECT (COUNT(*) AS ?n) {self.dataset} WHERE {{ {{ SELECT DISTINCT {a} {b} {c} "
                    f"WHERE {{ {sel} {_valid_filter(a, b, c)} }} }} }}")
        if self.blank_template or not template_triples or not self.variables:
            return None
        v = " ".join(f"?{x}" for x in self.variables)
        sel = f"{{ SELECT DISTINCT {v} WHERE {{\n{self.where}\n}} {self.modifiers} }}"
        s, p, o = "?kgllm_s", "?kgllm_p", "?kgllm_o"
        if len(template_triples) == 1 and len(set(template_triples[0])) == 3 and all(
                t.startswith("?") for t in template_triples[0]):
            a, b, c = template_triples[0]
            body = f"{sel} {_valid_filter(a, b, c)}"
            return (f"{self.prologue}SELECT (COUNT(*) AS ?n) {self.dataset} WHERE {{ {{ "
                    f"SELECT DISTINCT {a} {b} {c} WHERE {{ {body} }} }} }}")
        branches = " UNION ".join(
            f"{{ {sel} BIND({ts} AS {s}) BIND({tp} AS {p}) BIND({to} AS {o}) }}" for ts, tp, to in template_triples)
        return (f"{self.prologue}SELECT (COUNT(*) AS ?n) {self.dataset} WHERE {{ {{ SELECT DISTINCT {s} {p} {o} "
                f"WHERE {{ {branches} {_valid_filter(s, p, o)} }} }} }}")


def _valid_filter(s: str, p: str, o: str) -> str:
    # The triples CONSTRUCT keeps: every position bound, subject not a literal, predicate an IRI.
    return f"FILTER(BOUND({s}) && BOUND({p}) && BOUND({o}) && !isLiteral({s}) && isIRI({p}))"


def parse_query(text: str, name: str = "query", *, validate: bool = True) -> Query:
    """Split a CONSTRUCT or ``SELECT ?s ?p ?o`` query into its parts; errors name ``name`` and the line."""
    if validate:
        _validate_syntax(text, name)
    masked = _mask(text)
    m = _FORM.search(masked)
    if not m:
        raise InputError(f"{name}: no SELECT or CONSTRUCT found; write a CONSTRUCT query or SELECT ?s ?p ?o")
    form = m.group(1).upper()
    if form not in ("CONSTRUCT", "SELECT"):
        raise InputError(f"{name}:{_line_col(text, m.start())}: {form} queries cannot be harvested; "
                         "use CONSTRUCT (or SELECT ?s ?p ?o)")
    prologue = text[: m.start()]
    pos = m.end()
    blank_template = False
    if form == "CONSTRUCT":
        k = _skip_ws(masked, pos)
        if k < len(masked) and masked[k] == "{":
            end = _match_brace(masked, k, name)
            template = text[k + 1: end - 1]
            blank_template = "_:" in masked[k:end] or "[" in masked[k:end]
            pos = end
            short = False
        else:
            template, short = "", True
    else:
        w = _WHERE.search(masked, pos)
        b = masked.find("{", pos)
        f = _FROM.search(masked, pos)
        stops = [x for x in (w.start() if w else -1, b, f.start() if f else -1) if x >= 0]
        if not stops:
            raise InputError(f"{name}: no WHERE clause found")
        stop = min(stops)
        template = text[pos:stop].strip()
        pos = stop
    brace = masked.find("{", pos)
    if brace < 0:
        raise InputError(f"{name}: no WHERE {{ ... }} clause found")
    between = text[pos:brace]
    dataset = _WHERE.sub("", between).strip() if _WHERE.search(_mask(between)) else between.strip()
    end = _match_brace(masked, brace, name)
    where = text[brace + 1: end - 1]
    modifiers = text[end:].strip()
    bad = _FORBIDDEN_MODS.search(_mask(modifiers))
    if bad:
        raise InputError(f"{name}:{_line_col(text, end + text[end:].find(modifiers) + bad.start())}: remove "
                         f"{bad.group(1).upper()}: the harvester adds its own ORDER BY/LIMIT/OFFSET to page the query")
    if form == "CONSTRUCT":
        if short:  # CONSTRUCT WHERE { pattern }: the pattern is the template
            template = where
            blank_template = "_:" in _mask(where) or "[" in _mask(where)
        variables = tuple(sorted(set(_VAR.findall(_mask(template)))))
    else:
        proj = _mask(template)
        proj_clean = re.sub(r"\b(DISTINCT|REDUCED)\b", "", proj, flags=re.I).strip()
        variables = tuple(_VAR.findall(proj_clean))
        if "*" in proj_clean or "(" in proj_clean or len(variables) != 3:
            raise InputError(f"{name}: a SELECT query must project exactly three variables, subject predicate "
                             f"object (e.g. SELECT ?s ?p ?o), not {template!r}; or use CONSTRUCT")
    return Query(name=name, text=text, form=form, prologue=prologue, template=template, dataset=dataset,
                 where=where, modifiers=modifiers, variables=variables, blank_template=blank_template)


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i].isspace():
        i += 1
    return i


def _validate_syntax(text: str, name: str) -> None:
    from pyparsing import ParseException
    from rdflib.plugins.sparql.parser import parseQuery

    try:
        parseQuery(text)
    except ParseException as e:
        raise InputError(f"{name}:{e.lineno}:{e.col}: malformed SPARQL query: {e.msg} "
                         f"(set harvest.validate_query=false for endpoint-specific syntax)") from None


def template_triples(q: Query) -> list[tuple[str, str, str]] | None:
    """The CONSTRUCT template as triples of SPARQL terms (``?v``, ``<iri>``, literals), or None."""
    if q.form != "CONSTRUCT":
        return None
    try:
        from rdflib import BNode, Variable
        from rdflib.plugins.sparql import prepareQuery

        alg = prepareQuery(q.text).algebra
        out = []
        for t in alg.template or []:
            if any(isinstance(x, BNode) for x in t):
                return None
            out.append(tuple(f"?{x}" if isinstance(x, Variable) else x.n3() for x in t))
        return sorted(set(out)) or None  # sorted: the COUNT query text is deterministic
    except Exception as e:  # vendor syntax rdflib does not know: no COUNT check, said in the manifest
        logger.debug("cannot analyse the template of %s: %s", q.name, e)
        return None


def load_query(query: str | Path, name: str | None = None, *, validate: bool = True) -> Query:
    """A :class:`Query` from a ``.rq`` file (Path) or from query text (str)."""
    if isinstance(query, Path):
        if not query.exists():
            raise InputError(f"{query}: query file does not exist")
        if query.is_dir():
            raise InputError(f"{query}: is a directory, not a query file; give a .rq file")
        try:
            text = query.read_text("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"{query}: query file is not UTF-8 text: {e}") from None
        return parse_query(text, name or str(query), validate=validate)
    return parse_query(query, name or "query", validate=validate)


# ----------------------------------------------------------------------------- endpoints


@dataclass
class Response:
    rows: list[str]        # CONSTRUCT: N-Triples lines "s p o"; SELECT: the same, one per valid row
    results: int           # what the endpoint returned (triples or rows, before any skipping)
    skipped: int           # SELECT rows with an unbound or invalid term
    headers: dict


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class HttpEndpoint:
    """A remote SPARQL endpoint spoken to through SPARQLWrapper."""

    def __init__(self, url: str, config: HarvestConfig):
        if not re.match(r"^https?://", url):
            raise UsageError(f"endpoint {url!r} must be an http(s) URL")
        self.url = url
        self.config = config
        self.cap: int | None = None
        self.paging = True
        self._force_post = False

    def describe(self) -> str:
        return self.url

    def _fetch(self, query: str, accept: str) -> tuple[bytes, dict]:
        from SPARQLWrapper import GET, POST, SPARQLWrapper
        from SPARQLWrapper.SPARQLExceptions import (
            EndPointInternalError,
            EndPointNotFound,
            QueryBadFormed,
            Unauthorized,
            URITooLong,
        )

        c = self.config
        sw = SPARQLWrapper(self.url, agent=c.user_agent)
        for g in c.default_graph:
            sw.addDefaultGraph(g)
        sw.setQuery(query)
        long_query = len(query) > 1500 or self._force_post
        sw.setMethod(POST if c.method == "POST" or (c.method == "auto" and long_query) else GET)
        sw.setOnlyConneg(True)  # no format=/output= parameters: they override Accept on Virtuoso
        sw.addCustomHttpHeader("Accept", accept)
        sw.timeout = c.timeout  # setTimeout() truncates to int
        try:
            result = sw.query()
            resp = result.response
            headers = {k.lower(): v for k, v in resp.headers.items()}
            body = resp.read()
            resp.close()
        except QueryBadFormed as e:
            raise InputError(f"{self.url} rejected the query as malformed (HTTP 400): {_msg(e)}") from None
        except EndPointNotFound:
            raise InputError(f"{self.url}: no SPARQL endpoint there (HTTP 404); check the URL") from None
        except Unauthorized:
            raise InputError(f"{self.url}: access denied (HTTP 401)") from None
        except URITooLong:
            self._force_post = True
            raise _Retryable("URI too long (HTTP 414); retrying with POST") from None
        except EndPointInternalError as e:
            raise _Retryable(f"HTTP 500: {_msg(e)}") from None
        except urllib.error.HTTPError as e:
            ra = _retry_after(e.headers.get("Retry-After")) if e.headers else None
            if e.code >= 500 or e.code == 429 or (e.code in _RETRY_AFTER_CODES and ra is not None):
                raise _Retryable(f"HTTP {e.code} {e.reason}", ra if e.code in _RETRY_AFTER_CODES else None) from None
            raise InputError(f"{self.url}: HTTP {e.code} {e.reason}: {_msg(e)}") from None
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, OSError) as e:
            raise _Retryable(f"{type(e).__name__}: {getattr(e, 'reason', e)}") from None
        if "content-length" in headers and headers["content-length"].isdigit() \
                and int(headers["content-length"]) != len(body):
            raise _Retryable(f"truncated body: {len(body)} of {headers['content-length']} bytes")
        return body, headers

    def request(self, query: str, form: str) -> Response:
        accept = "application/n-triples,text/plain;q=0.9,text/turtle;q=0.8" if form == "CONSTRUCT" \
            else "application/sparql-results+json"
        body, headers = self._fetch(query, accept)
        return _parse_body(body, headers.get("content-type", ""), form, headers)

    def count(self, query: str) -> int:
        body, _ = self._fetch(query, "application/sparql-results+json")
        try:
            return int(json.loads(body)["results"]["bindings"][0]["n"]["value"])
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise _Retryable(f"unreadable COUNT result ({len(body)} bytes): {e}") from None


def _msg(e: Exception) -> str:
    text = str(getattr(e, "msg", "") or e)
    if hasattr(e, "read"):
        with contextlib.suppress(Exception):
            text = e.read().decode("utf-8", "replace") or text
    return " ".join(text.split())[:500]


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, (when - _dt.datetime.now(when.tzinfo or _dt.UTC)).total_seconds())
    return None


def _parse_body(body: bytes, content_type: str, form: str, headers: dict) -> Response:
    import pyoxigraph

    ct = content_type.split(";")[0].strip().lower()
    if form == "CONSTRUCT":
        fmt = {"text/turtle": pyoxigraph.RdfFormat.TURTLE, "application/x-turtle": pyoxigraph.RdfFormat.TURTLE,
               "application/rdf+xml": pyoxigraph.RdfFormat.RDF_XML}.get(ct, pyoxigraph.RdfFormat.N_TRIPLES)
        try:
            rows = [f"{t.subject} {t.predicate} {t.object}" for t in pyoxigraph.parse(body, format=fmt)]
        except (SyntaxError, ValueError) as e:
            # A body cut short mid-line by a dropped connection reads as a syntax error: retry.
            raise _Retryable(f"unparsable {ct or 'response'} ({len(body)} bytes): {e}") from None
        return Response(rows, len(rows), 0, headers)
    try:
        data = json.loads(body)
        bindings = data["results"]["bindings"]
        names = data["head"]["vars"]
    except (ValueError, KeyError, TypeError) as e:
        raise _Retryable(f"unparsable SPARQL JSON results ({len(body)} bytes): {e}") from None
    return _rows_from_bindings(bindings, names, headers)


def _rows_from_bindings(bindings: list[dict], names: list[str], headers: dict) -> Response:
    import pyoxigraph

    def term(b: dict | None):
        if b is None:
            return None
        t = b.get("type")
        v = b.get("value", "")
        if t == "uri":
            return pyoxigraph.NamedNode(v)
        if t == "bnode":
            return pyoxigraph.BlankNode(v)
        if t in ("literal", "typed-literal"):
            if "xml:lang" in b:
                return pyoxigraph.Literal(v, language=b["xml:lang"])
            if "datatype" in b:
                return pyoxigraph.Literal(v, datatype=pyoxigraph.NamedNode(b["datatype"]))
            return pyoxigraph.Literal(v)
        return None

    rows, skipped = [], 0
    a, b, c = names[:3]
    for row in bindings:
        try:
            s, p, o = term(row.get(a)), term(row.get(b)), term(row.get(c))
        except ValueError:
            s = None
        if s is None or p is None or o is None or isinstance(s, pyoxigraph.Literal) \
                or not isinstance(p, pyoxigraph.NamedNode):
            skipped += 1
            continue
        rows.append(f"{s} {p} {o}")
    return Response(rows, len(bindings), skipped, headers)


class StoreEndpoint:
    """An embedded pyoxigraph store behind the same interface (no row cap, no faults)."""

    def __init__(self, store, label: str):
        self.store = store
        self.url = label
        self.cap = None
        # One unordered page: the store is local and consistent, so paging buys nothing (and
        # pyoxigraph 0.5's ORDER BY can panic on mixed literal types, e.g. DBpedia's unit datatypes).
        self.paging = False

    def describe(self) -> str:
        return self.url

    def request(self, query: str, form: str) -> Response:
        try:
            res = self.store.query(query)
        except SyntaxError as e:
            raise InputError(f"{self.url}: the embedded store rejected the query: {e}") from None
        if form == "CONSTRUCT":
            rows = [f"{t.subject} {t.predicate} {t.object}" for t in res]
            return Response(rows, len(rows), 0, {})
        names = [v.value for v in res.variables]
        bindings = []
        for sol in res:
            row = {}
            for n in names:
                t = sol[n]
                if t is not None:
                    row[n] = _oxi_to_json(t)
            bindings.append(row)
        return _rows_from_bindings(bindings, names, {})

    def count(self, query: str) -> int:
        return int(next(iter(self.store.query(query)))["n"].value)


def _oxi_to_json(t) -> dict:
    import pyoxigraph

    if isinstance(t, pyoxigraph.NamedNode):
        return {"type": "uri", "value": t.value}
    if isinstance(t, pyoxigraph.BlankNode):
        return {"type": "bnode", "value": t.value}
    d = {"type": "literal", "value": t.value}
    if t.language:
        d["xml:lang"] = t.language
    elif t.datatype and t.datatype.value != "http://www.w3.org/2001/XMLSchema#string":
        d["datatype"] = t.datatype.value
    return d


# ----------------------------------------------------------------------------- the harvester


class _Pacer:
    """Retries with backoff/jitter and request spacing; counts attempts."""

    def __init__(self, config: HarvestConfig, endpoint_label: str, sleep: Callable[[float], None] = time.sleep):
        self.c = config
        self.label = endpoint_label
        self.sleep = sleep
        self.requests = 0
        self.retries = 0
        self.waited_s = 0.0
        self._last = 0.0
        self._rng = random.Random()

    def call(self, fn: Callable[[], Response], what: str) -> Response:
        attempt = 0
        while True:
            if self.c.rate > 0:
                gap = 1.0 / self.c.rate - (time.monotonic() - self._last)
                if gap > 0:
                    self.sleep(gap)
            self._last = time.monotonic()
            self.requests += 1
            try:
                return fn()
            except _Retryable as e:
                if attempt >= self.c.retries:
                    raise InputError(f"{self.label}: {what} failed after {attempt + 1} attempt(s): {e}; is the "
                                     "endpoint reachable and up? (raise harvest.retries/timeout, or rerun "
                                     "with --resume to continue)") from None
                if e.retry_after is not None:
                    if e.retry_after > self.c.retry_after_max:
                        raise InputError(f"{self.label}: asked to wait {e.retry_after:.0f}s (Retry-After), more "
                                         f"than harvest.retry_after_max={self.c.retry_after_max:.0f}s") from None
                    delay = e.retry_after
                else:  # exponential backoff with full jitter (spreads retries of parallel clients)
                    delay = self._rng.uniform(0, min(self.c.backoff_max, self.c.backoff * 2 ** attempt))
                logger.warning("%s: %s: %s; retry %d/%d in %.2fs", self.label, what, e, attempt + 1,
                               self.c.retries, delay)
                attempt += 1
                self.retries += 1
                self.waited_s += delay
                self.sleep(delay)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def work_dir(out: Path) -> Path:
    """Where pages and the checkpoint of a harvest into ``out`` live until the artifact is written."""
    return out.parent / f".{out.name}.harvest"


def _write_page(path: Path, rows: list[str]) -> None:
    from ..artifacts import atomic_open

    # Level 1: work files are read once, when the artifact is written (which compresses properly).
    with atomic_open(path, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", compresslevel=1, mtime=0) as gz:
        if rows:
            gz.write((" .\n".join(rows) + " .\n").encode("utf-8"))


def harvest(endpoint: str | HttpEndpoint | StoreEndpoint, query: str | Path | Query, out: str | Path,
            config: HarvestConfig | None = None, *, pipeline_key: str | None = None,
            inputs: list[Path] | None = None, extra: dict | None = None, manifest_config: dict | None = None,
            allow_empty: bool = False, _sleep: Callable[[float], None] = time.sleep,
            _stop_after_pages: int | None = None):
    """Harvest ``query`` from ``endpoint`` into the graph artifact ``out``; returns its Manifest.

    ``endpoint`` is a URL or an endpoint object (:class:`StoreEndpoint` for an embedded store);
    ``query`` a ``.rq`` Path, query text, or a parsed :class:`Query`. ``_stop_after_pages`` (tests)
    stops after that many pages as a crash would, leaving the checkpoint for ``resume``.
    ``manifest_config`` is the stage config to record (default: the endpoint and ``config``).
    Zero triples raise :class:`EmptyResultError` unless ``allow_empty``.
    """
    config = config or HarvestConfig()
    out = Path(out)
    q = query if isinstance(query, Query) else load_query(query, validate=config.validate_query)
    ep = HttpEndpoint(endpoint, config) if isinstance(endpoint, str) else endpoint
    label = ep.describe()

    wd = work_dir(out)
    # What must match for a checkpoint to be continued: same endpoint, query and dataset.
    ident = {"endpoint": label, "query_sha256": q.sha256, "default_graph": config.default_graph,
             "max_rows": config.max_rows}
    count_text = q.count_query(template_triples(q)) if config.count_check else None
    if config.order == "natural" and count_text is None:
        raise UsageError(f"{q.name}: harvest.order=natural needs the COUNT check (enabled, and a template "
                         "without blank nodes) to prove that the pages fit together; use order=ordered")
    state = None
    if (wd / CHECKPOINT).exists():
        old = json.loads((wd / CHECKPOINT).read_text("utf-8"))
        if config.resume:
            if old.get("version") != CHECKPOINT_VERSION:
                raise UsageError(f"{wd / CHECKPOINT}: the checkpoint was written by another kgllm version "
                                 f"(checkpoint format {old.get('version')}, this version reads "
                                 f"{CHECKPOINT_VERSION}) and cannot be continued; rerun without --resume to "
                                 "start over (it discards the checkpoint)")
            if old.get("ident") != ident:
                raise UsageError(f"{wd / CHECKPOINT}: the checkpoint is for another endpoint or query "
                                 f"({old.get('ident')}); rerun without --resume to start over")
            state = old
            logger.info("resuming %s at page %d (offset %d)", q.name, len(state["pages"]), state["offset"])
        else:
            logger.warning("%s: discarding the checkpoint of an earlier, unfinished harvest "
                           "(use --resume to continue it)", wd)
    if state is None:
        mode = config.order if config.order != "auto" else ("natural" if count_text else "ordered")
        state = _fresh_state(wd, ident, mode)

    pacer = _Pacer(config, label, _sleep)
    # The pacer counts on from the checkpoint's totals (counts survive resumes and the restart below).
    pacer.requests, pacer.retries = state["requests"], state["retries"]
    t0 = time.perf_counter()
    while True:
        ordered = state["mode"] == "ordered" and ep.paging
        _fetch_pages(q, ep, label, ordered, config, state, wd, pacer, _stop_after_pages)
        # COUNT check: how many distinct triples the endpoint says the query yields.
        expected = None
        if not config.count_check:
            count_note = "disabled"
        elif count_text is None:
            count_note = "not possible: the template has blank nodes or could not be analysed"
        else:
            expected = pacer.call(lambda: ep.count(count_text), "COUNT check")
            count_note = f"ok: {expected} distinct triples"
        state.update(requests=pacer.requests, retries=pacer.retries)
        try:
            return _assemble(q, label, config, state, wd, out, expected, count_note, count_text,
                             round(time.perf_counter() - t0, 3), pipeline_key, inputs, extra, manifest_config,
                             ordered=ordered, allow_empty=allow_empty)
        except _CountMismatch as e:
            if config.order != "auto" or state["mode"] != "natural":
                raise
            logger.warning("%s; harvesting again with ordered pages (harvest.order=ordered)", e)
            state = _fresh_state(wd, ident, "ordered", carry=state)


def _fresh_state(wd: Path, ident: dict, mode: str, carry: dict | None = None) -> dict:
    shutil.rmtree(wd, ignore_errors=True)
    (wd / "pages").mkdir(parents=True)
    keep = {k: carry[k] for k in ("requests", "retries", "truncated", "started")} if carry else {}
    return {"version": CHECKPOINT_VERSION, "ident": ident, "mode": mode, "offset": 0, "limit": None, "cap": None,
            "pages": [], "done": False, "requests": 0, "retries": 0, "truncated": 0, "skipped": 0,
            "started": _now(), **keep}


def _fetch_pages(q: Query, ep, label: str, ordered: bool, config: HarvestConfig, state: dict, wd: Path,
                 pacer: _Pacer, stop_after: int | None) -> None:
    """Fetch pages until the last one, writing each page and the checkpoint atomically.

    ``ordered``: ORDER BY pages (the state's mode on an endpoint that pages)."""
    from ..artifacts import atomic_write_json
    from ..log import progress

    cap = state["cap"] or ep.cap or (config.max_rows or None)
    limit = state["limit"] or (min(config.page_size, cap - 1) if cap else config.page_size)
    if not ep.paging:
        cap, limit = None, 2**31 - 1
    bar = progress(desc=f"harvest {Path(q.name).name}", unit="triples")
    bar.update(sum(p["rows"] for p in state["pages"]))
    fetched_now = 0

    def save() -> None:
        state.update(limit=limit, cap=cap, requests=pacer.requests, retries=pacer.retries)
        atomic_write_json(wd / CHECKPOINT, state)

    try:
        while not state["done"]:
            offset = state["offset"]
            page_no = len(state["pages"])
            text = q.paged(limit, offset, ordered=ordered)
            resp = pacer.call(lambda t=text: ep.request(t, q.form), f"page {page_no} (offset {offset})")
            announced = resp.headers.get("x-sparql-maxrows")
            if announced and announced.isdigit() and (cap is None or int(announced) < cap):
                cap = int(announced)
                logger.info("%s announces a row cap of %d (X-SPARQL-MaxRows)", label, cap)
            if cap is not None and (resp.results >= cap or limit >= cap) and q.variables:
                # Truncated (or possibly): the cap cut the page. Shrink and fetch the same offset again.
                new = max(1, min(limit // 2, cap - 1)) if resp.results >= cap else cap - 1
                if new == limit:
                    raise InputError(f"{label}: a page of {limit} solution(s) still hits the row cap {cap}; "
                                     "the CONSTRUCT template yields too many triples per solution")
                logger.info("page %d: %d results at a cap of %d: truncated, page size %d -> %d",
                            page_no, resp.results, cap, limit, new)
                state["truncated"] += 1
                limit = new
                save()
                continue
            rows = sorted(resp.rows)  # sorted: pages are byte-identical across runs
            fname = f"pages/{page_no:05d}.nt.gz"
            _write_page(wd / fname, rows)
            state["skipped"] += resp.skipped
            state["pages"].append({"file": fname, "page": page_no, "offset": offset, "limit": limit,
                                   "rows": len(rows), "results": resp.results, "retrieved_at": _now()})
            state["offset"] = offset + limit
            # Last page: a SELECT page short of its limit; for CONSTRUCT (several or no triples per
            # solution) only an empty page is conclusive. A constant template is a single request.
            state["done"] = (not q.variables or resp.results == 0 or not ep.paging
                             or (q.form == "SELECT" and resp.results < limit))
            save()
            bar.update(len(rows))
            bar.set_postfix(page=page_no, refresh=False)
            fetched_now += 1
            if stop_after is not None and fetched_now >= stop_after and not state["done"]:
                raise _Interrupted(f"stopped after {fetched_now} page(s) as asked")
    except BaseException:
        if state["pages"]:
            logger.warning("harvest of %s stopped after %d page(s); the checkpoint is kept in %s: rerun with "
                           "--resume (harvest.resume=true) to continue", q.name, len(state["pages"]), wd)
        raise
    finally:
        bar.close()


class _CountMismatch(InputError):
    """The endpoint's COUNT differs from the number of distinct triples harvested."""


def _assemble(q: Query, label: str, config: HarvestConfig, state: dict, wd: Path, out: Path,
              expected: int | None, count_note: str, count_text: str | None, harvest_s: float,
              pipeline_key, inputs, extra, manifest_config, *, ordered: bool, allow_empty: bool = False):
    """Write the graph artifact from the pages (one shard each) and check the COUNT; remove the work dir."""
    from ..rdf import GraphWriter

    queries = [{"name": q.name, "sha256": q.sha256, "text": q.text, "form": q.form,
                "paged_text": q.paged(state["limit"] or 0, 0, ordered=ordered), "count_text": count_text}]
    with GraphWriter(out, config=manifest_config or {"endpoint": label, **asdict(config)}, inputs=inputs,
                     pipeline_key=pipeline_key) as g:
        distinct = 0
        for p in state["pages"]:
            prov = {"source": "sparql", "endpoint": label, "query": q.name, "query_sha256": q.sha256,
                    "page": p["page"], "offset": p["offset"], "limit": p["limit"], "retrieved_at": p["retrieved_at"]}
            with gzip.open(wd / p["file"], "rt", encoding="utf-8") as f, g.shard(prov) as add:
                for line in f:
                    s, pr, o = line[:-3].split(" ", 2)
                    distinct += add(s, pr, o)
        if expected is not None and expected != distinct:
            raise _CountMismatch(
                f"{label}: COUNT check failed for {q.name}: the endpoint counts {expected} distinct triples, "
                f"the harvest ({state['mode']} pages) has {distinct}; the data may have changed during the harvest, "
                f"or the endpoint caps results below harvest.max_rows={config.max_rows} without saying so. "
                "Rerun without --resume (with a smaller harvest.max_rows).")
        if not distinct:
            params = ", ".join(f"{k}={v}" for k, v in ((extra or {}).get("params") or {}).items())
            what = f"{label}: the query {q.name}{f' ({params})' if params else ''} returned 0 triples"
            if not allow_empty:
                shutil.rmtree(wd, ignore_errors=True)  # a complete harvest of nothing: nothing to resume
                raise EmptyResultError(f"{what}; pass --allow-empty to accept an empty graph")
            logger.warning("%s (accepted: allow_empty)", what)
        g.counts.update(pages=len(state["pages"]), results=sum(p["results"] for p in state["pages"]),
                        skipped_rows=state["skipped"], requests=state["requests"], retries=state["retries"],
                        truncated_pages=state["truncated"], expected_triples=expected)
        g.extra.update(source="sparql", endpoint=label, queries=queries, row_cap=state["cap"],
                       page_size=state["limit"], order=state["mode"], count_check=count_note,
                       started=state["started"], harvest_s=harvest_s, **(extra or {}))
    shutil.rmtree(wd, ignore_errors=True)
    return g.manifest


class _Interrupted(RuntimeError):
    """Raised by ``_stop_after_pages`` to simulate a crash in tests."""


# ----------------------------------------------------------------------------- stage and CLI


def run(inputs: list[Path], out: Path, config: SparqlConfig, *, pipeline_key: str | None = None):
    """The ``pull.sparql`` stage (no input artifacts; the query file counts as an input)."""
    if not config.endpoint:
        raise UsageError("pull.sparql: set endpoint (an http(s) SPARQL endpoint URL)")
    if config.query is None:
        raise UsageError("pull.sparql: set query (a .rq file with a CONSTRUCT or SELECT ?s ?p ?o query)")
    return harvest(config.endpoint, Path(config.query), out, config.harvest, pipeline_key=pipeline_key,
                   inputs=[Path(config.query)] if Path(config.query).exists() else [],
                   manifest_config=asdict(config), allow_empty=config.allow_empty)


def register_cli(cmds, group_help: str) -> None:
    from ..commands import add_config_args
    from ._pull_cli import add_allow_empty
    from .dbpedia import _harvest_flags

    p = cmds.subcommand(
        "pull", "sparql", "harvest a CONSTRUCT (or SELECT ?s ?p ?o) query from any SPARQL endpoint",
        _cmd_sparql, group_help=group_help,
        description="Harvest a SPARQL query page by page into a graph artifact: pages under the endpoint's\n"
                    "row cap, truncation detection, retries with backoff and Retry-After, checkpoints\n"
                    "(--resume) and a final COUNT check that proves the pages fitted together.\n\nExamples:\n"
                    "  kgllm pull sparql --endpoint http://localhost:8890/sparql --query q.rq --out runs/q\n"
                    "  kgllm pull sparql --endpoint https://dbpedia.org/sparql --query airlines.rq "
                    "--default-graph http://dbpedia.org --rate 1 --out runs/airlines")
    p.add_argument("--endpoint", help="SPARQL endpoint URL")
    p.add_argument("--query", type=Path, help="a .rq file")
    p.add_argument("--out", type=Path, required=True, help="artifact directory to write")
    _harvest_flags(p)
    add_allow_empty(p)
    add_config_args(p, "pull.sparql")


def _cmd_sparql(args) -> int:
    from ..commands import print_artifact, stage_config
    from ..registry import run_stage
    from .dbpedia import harvest_flag_values

    cfg = stage_config("pull.sparql", args, {
        "endpoint": args.endpoint, "query": str(args.query) if args.query else None,
        "allow_empty": args.allow_empty, **harvest_flag_values(args)})
    man = run_stage("pull.sparql", [], args.out, cfg, force=args.force)
    return print_artifact(args.out, man)
