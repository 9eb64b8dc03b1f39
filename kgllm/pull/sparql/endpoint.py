"""SPARQL endpoints behind one interface: a remote HTTP endpoint and an embedded pyoxigraph store.

Takes: the text of one page (or of the COUNT query) and the query form; an endpoint URL and a
:class:`~.config.HarvestConfig` (timeout, method, default graphs, user agent), or a pyoxigraph store.
Makes: a :class:`Response` (N-Triples lines ``s p o``, the number of results before skipping, the rows
skipped, the response headers), or the count of a COUNT query. The body of a CONSTRUCT (N-Triples,
Turtle, RDF/XML) or SELECT (SPARQL JSON results) answer is parsed here. Faults worth retrying (5xx,
429, timeouts, refused or reset connections, truncated or unparsable bodies) are raised as
:class:`_Retryable`, with the delay of a ``Retry-After`` header; the harvester's pacer retries them.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import email.utils
import http.client
import json
import re
import urllib.error
from dataclasses import dataclass

from ...errors import InputError, UsageError
from ...rdf import XSD_STRING
from .config import HarvestConfig

_RETRY_AFTER_CODES = (405, 429, 503)


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
    elif t.datatype and t.datatype.value != XSD_STRING:
        d["datatype"] = t.datatype.value
    return d
