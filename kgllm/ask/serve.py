"""``kgllm serve``: the answerer over HTTP (FastAPI on uvicorn), a web page, and feedback capture.

Takes: an index artifact (through :class:`~kgllm.ask.answer.Answerer`: optionally a SPARQL endpoint and a
model) and a feedback store (:class:`kgllm.feedback.store.FeedbackStore`: SQLite in the serve directory by
default, PostgreSQL by URL). Makes: an HTTP server with

* ``POST /ask``  body ``{"question": str, "retriever": "hybrid"|"graph"|"vector"}`` -> the answer object of
  ``kgllm ask --json`` plus ``answer_id`` (the store's id of this answer) (200), or ``{"error": ...}`` with
  400 (bad JSON, empty or too long question, unknown retriever), 413 (body over ``max_body`` bytes), 415 (not
  JSON), 429 (over ``rate_per_minute`` requests per client address in the last 60 s; ``Retry-After`` says
  when to come back);
* ``POST /feedback`` ``{"answer_id", "kind": "rating"|"correction"|"flag", "rating"?, "correction"?,
  "triple_id"?, "reason"?, "user_id"?}`` -> 201 ``{"id": N}``; 404 unknown answer id, 422 bad values, 400
  malformed JSON, 413/415/429 as for ``/ask``, 401 without the API key when one is set;
* ``GET /feedback/counts`` (API key) -> ``{"answers", "ratings", "corrections", "flags"}``;
* ``GET /``      the page (kgllm/ask/static/index.html): a question box, the answer, the cited triples with
  their provenance, the SPARQL query, the subgraph around the evidence (SVG), and the feedback controls
  (rate, give the right answer, flag a cited triple);
* ``GET /health`` ``{"status": "ok", "triples": N}``; ``GET /metrics`` (Prometheus text: requests by path and
  status, latency histogram, feedback received and stored); ``GET /docs`` and ``/openapi.json``.

Every request is logged as one JSON line (method, path, status, ms, client) under the ``kgllm.serve``
logger. The API key (``--api-key`` or ``KGLLM_API_KEY``) is sent as ``Authorization: Bearer KEY``; ``/ask``,
the page, ``/health``, ``/metrics`` and the docs stay open.

Answers are computed one at a time per process (a lock): the index and the encoder are shared and CPU-bound,
so parallel requests would only slow each other; ``--workers N`` runs N uvicorn worker processes, each with
the index memory-mapped (the OS shares its pages), configured through :data:`CONFIG_ENV` by the parent
(:func:`create_app` is the factory uvicorn calls in each worker). The rate limit is counted per process: with
N workers a client may get up to N times ``rate_per_minute`` (the kernel spreads connections over them). Citations show each source's file name,
not the server's absolute path, unless ``full_paths`` (``--full-paths``): see :func:`public_provenance`.
The page's script runs under a per-response CSP nonce and writes every value with ``textContent``, so
graph data cannot inject markup into the page.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import shutil
import socket
import sys
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import prometheus_client as prom
import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..artifacts import input_digest, pid_alive, read_manifest
from ..config import check_ranges
from ..errors import InputError, KgllmError, UsageError
from ..feedback.store import MAX_TEXT_CHARS, MAX_USER_ID_CHARS, FeedbackStore, StoreUnavailable, UnknownAnswer
from ..log import logger, setup_logging
from ..train.models import resolve_model
from .answer import Answerer, load_answerer
from .question import check_question

_STARTUP_FAILURE = 3  # uvicorn's exit code for a worker that failed before serving (uvicorn.main.STARTUP_FAILURE)
CONFIG_ENV = "KGLLM_SERVE_CONFIG"  # the JSON the parent hands to each worker (see create_app)
API_KEY_ENV = "KGLLM_API_KEY"
access_log = logging.getLogger("kgllm.serve")
# Paths with their own metrics label; anything else is counted as "other" (no unbounded label values).
_PATHS = {"/", "/index.html", "/ask", "/feedback", "/feedback/counts", "/health", "/metrics", "/docs",
          "/openapi.json"}
_LIMITED = ("/ask", "/feedback")  # POST endpoints behind the rate limit and the body limits

# (flag, ServeConfig field, check, what it must be): checked by check_serve_args (flag names, before the index
# loads) and by ServeConfig (field names).
_LIMITS = (
    ("--port", "port", lambda v: 0 <= v <= 65535, "a port number from 1 to 65535 (0: any free port)"),
    ("--rate", "rate_per_minute", lambda v: v >= 1, "at least 1 request per minute per client"),
    ("--workers", "workers", lambda v: v >= 1, "at least 1 worker process"),
    ("--max-body", "max_body", lambda v: v >= 1024, "at least 1024 bytes"),
)


@dataclass
class ServeConfig:
    """What ``kgllm serve`` runs with (the CLI's flags); the parent hands it to each worker as JSON."""

    index: str                          # index artifact directory (kgllm index)
    model: str | None = None            # local model wording the answers; None: extractive
    ranker: str | None = None           # question/query ranker (kgllm train ranker); None: zero-shot
    decoding: str = "auto"              # with a model: auto, constrained or free (kgllm.ask.generate)
    sparql: str = "store"               # "store" (embedded), "off", or an endpoint URL
    host: str = "127.0.0.1"
    port: int = 8765                    # 0: any free port
    rate_per_minute: int = 60           # per client address and endpoint (POST /ask, POST /feedback)
    max_body: int = 8192                # bytes of a request body
    serve_dir: str = "kgllm-serve"      # holds the default SQLite feedback database
    feedback_db: str | None = None      # SQLAlchemy URL; None: FeedbackStore.default_url(serve_dir)
    api_key: str | None = None          # None: feedback and admin endpoints are open
    workers: int = 1                    # uvicorn worker processes, each with the index memory-mapped
    full_paths: bool = False            # show the server's absolute paths in provenance

    def __post_init__(self):
        values = dataclasses.asdict(self)
        check_ranges([(key, values[key], ok(values[key]), want) for _flag, key, ok, want in _LIMITS])

    @property
    def db_url(self) -> str:
        return self.feedback_db or FeedbackStore.default_url(Path(self.serve_dir).resolve())


def check_serve_args(port: int, rate_per_minute: int, workers: int = 1, max_body: int = 8192) -> None:
    """:class:`UsageError` naming the flag for a port outside 0..65535 (0: any free port), a rate below 1
    request per minute, fewer than 1 worker or a tiny body limit: checked before the index loads."""
    values = {"port": port, "rate_per_minute": rate_per_minute, "workers": workers, "max_body": max_body}
    for flag, key, ok, want in _LIMITS:
        if not ok(values[key]):
            raise UsageError(f"{flag} {values[key]}: must be {want}")


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key (sliding window), in this process."""

    def __init__(self, limit: int, window: float = 60.0):
        self.limit = limit
        self.window = window
        self._events: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, key: str, now: float | None = None) -> float:
        """0 if allowed (and counted), else the seconds until the next request is allowed."""
        now = time.monotonic() if now is None else now
        with self._lock:
            q = self._events[key]
            while q and q[0] <= now - self.window:
                q.popleft()
            if len(q) >= self.limit:
                return max(0.001, q[0] + self.window - now)
            q.append(now)
            return 0.0


def page() -> str:
    return resources.files("kgllm.ask").joinpath("static/index.html").read_text("utf-8")


# ----------------------------------------------------------------------------- provenance privacy

def public_provenance(prov: Any) -> Any:
    """A provenance record without the server's file layout: every absolute path (or ``file:`` URL) among
    its values becomes the file's name, and URLs lose any ``user:password@``. Other values are kept."""
    if isinstance(prov, dict):
        return {k: public_provenance(v) for k, v in prov.items()}
    if isinstance(prov, list):
        return [public_provenance(v) for v in prov]
    if not isinstance(prov, str):
        return prov
    if prov.startswith("file:"):
        return PurePosixPath(urlsplit(prov).path).name or prov
    if "://" in prov:
        u = urlsplit(prov)
        if u.username is not None or u.password is not None:
            host = u.hostname or ""
            host = f"[{host}]" if ":" in host else host
            return urlunsplit(u._replace(netloc=host + (f":{u.port}" if u.port else "")))
        return prov
    if prov.startswith(("/", "~")):
        return PurePosixPath(prov).name or prov
    if len(prov) > 2 and prov[1] == ":" and prov[2] in "\\/":  # C:\data\x.nt
        return PureWindowsPath(prov).name or prov
    return prov


def public_answer(out: dict) -> dict:
    """The answer object with :func:`public_provenance` applied to each citation."""
    cits = [{**c, "provenance": public_provenance(c.get("provenance") or {})} for c in out.get("citations", [])]
    return {**out, "citations": cits}


# ----------------------------------------------------------------------------- request and response models

class ErrorOut(BaseModel):
    error: str


class AskIn(BaseModel):
    question: str = Field(description="the question (1 to 500 characters)", examples=["What is the hub airport "
                                                                                        "of Lufthansa?"])
    retriever: Literal["hybrid", "graph", "vector"] | None = Field(None, description="default: hybrid")

    @field_validator("retriever", mode="before")
    @classmethod
    def _empty_is_default(cls, v):
        return v or None


class AnswerTerm(BaseModel):
    model_config = ConfigDict(extra="allow")
    term: str
    value: str
    label: str
    kind: str


class Citation(BaseModel):
    model_config = ConfigDict(extra="allow")
    n: int
    id: str = Field(description="triple id (16 hex digits)")
    s: str
    p: str
    o: str
    labels: dict[str, str]
    text: str
    provenance: dict[str, Any] = Field(description="where the triple came from (file names, not server paths, "
                                                   "unless the server runs with --full-paths)")


class AskOut(BaseModel):
    """The answer object of ``kgllm ask --json`` (docs/ask.md) plus ``answer_id``."""

    model_config = ConfigDict(extra="allow")
    answer_id: str | None = Field(description="the feedback store's id of this answer: POST /feedback with it "
                                              "(null when the store could not record it)")
    question: str
    answer: str
    answers: list[AnswerTerm]
    supported: bool
    shape: str
    total: int = Field(0, description="number of answers before the cap (answers lists at most 200)")
    confidence: float = Field(0.0, description="the winning candidate query's score (0 when unsupported)")
    retriever: str
    mode: str
    topic: dict[str, Any] | None
    path: list[dict[str, Any]]
    citations: list[Citation]
    context: list[dict[str, Any]]
    sparql: str | None
    scores: dict[str, Any]
    seeds: list[str]
    timings: dict[str, float]
    subgraph: dict[str, Any]


class CorrectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    term: str | None = Field(None, max_length=MAX_TEXT_CHARS, description="an N-Triples term of the graph")
    label: str | None = Field(None, max_length=MAX_TEXT_CHARS, description="with term: the label the person saw")
    text: str | None = Field(None, max_length=MAX_TEXT_CHARS, description="the right answer in words")


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer_id: str = Field(max_length=64)
    kind: Literal["rating", "correction", "flag"]
    rating: Literal[1, -1] | None = Field(None, description="kind rating: +1 (right) or -1 (wrong)")
    correction: CorrectionIn | None = Field(None, description="kind correction: {term} or {text}")
    triple_id: str | None = Field(None, max_length=64, description="kind flag: one of the answer's cited triples")
    reason: str | None = Field(None, max_length=MAX_TEXT_CHARS, description="kind flag: why the triple is wrong")
    user_id: str | None = Field(None, max_length=MAX_USER_ID_CHARS)


class FeedbackOut(BaseModel):
    id: int


class CountsOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    answers: int
    ratings: int
    corrections: int
    flags: int


class HealthOut(BaseModel):
    status: str
    triples: int


_bearer = HTTPBearer(auto_error=False, description="the server's API key (--api-key or KGLLM_API_KEY)")
_ERRORS = {400: {"model": ErrorOut}, 413: {"model": ErrorOut}, 415: {"model": ErrorOut},
           429: {"model": ErrorOut}}


# ----------------------------------------------------------------------------- metrics

class _Metrics:
    """The server's Prometheus metrics. One process: a registry of its own. Several workers
    (``PROMETHEUS_MULTIPROC_DIR`` set by the parent): the values live in that directory and ``/metrics`` sums
    them over the workers. Feedback stored is read from the database at each scrape (every worker agrees)."""

    def __init__(self, store: FeedbackStore | None):
        self.multiproc = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = None if self.multiproc else prom.CollectorRegistry()
        reg = self.registry
        self.requests = prom.Counter("kgllm_http_requests", "HTTP requests by path, method and status",
                                     ["path", "method", "status"], registry=reg)
        self.latency = prom.Histogram("kgllm_http_request_duration_seconds", "request latency by path",
                                      ["path"], registry=reg,
                                      buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
        self.feedback = prom.Counter("kgllm_feedback_received", "feedback accepted by this server, by kind",
                                     ["kind"], registry=reg)
        self.answers = prom.Counter("kgllm_answers", "answers given, by whether the store recorded them",
                                    ["stored"], registry=reg)
        self.store = store

    def render(self) -> bytes:
        if self.multiproc:
            from prometheus_client import multiprocess

            reg = prom.CollectorRegistry()
            multiprocess.MultiProcessCollector(reg)
        else:
            reg = prom.CollectorRegistry()
            reg.register(_Forward(self.registry))
        if self.store is not None:
            reg.register(_StoreCounts(self.store))
        return prom.generate_latest(reg)


class _Forward:
    """Collects another registry (so a scrape can add the store's counts without registering them for good)."""

    def __init__(self, registry):
        self.registry = registry

    def collect(self):
        return self.registry.collect()


class _StoreCounts:
    def __init__(self, store: FeedbackStore):
        self.store = store

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        g = GaugeMetricFamily("kgllm_feedback_stored", "rows in the feedback store, by kind", labels=["kind"])
        try:
            counts = self.store.counts()
        except Exception as e:  # a scrape must not fail because the database is down
            logger.warning("serve: /metrics could not read the feedback store: %s", e)
            counts = {}
        for kind, n in sorted(counts.items()):
            g.add_metric([kind], float(n))
        yield g


# ----------------------------------------------------------------------------- the gate: limits, log, metrics

class _Gate:
    """Pure ASGI middleware in front of every route: for ``POST /ask`` and ``POST /feedback`` the rate limit
    (429), the body limit (413, before and while reading the body), the content type (415) and UTF-8 (400);
    for every request the security headers, one JSON access-log line and the metrics."""

    def __init__(self, app, state):
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        path = scope.get("path", "")
        client = (scope.get("client") or ("-", 0))[0]
        status = {"code": 500, "recorded": False}

        def record() -> None:
            # Before the response's last byte goes out: whoever reads the log or /metrics after a reply sees it.
            status["recorded"] = True
            ms = (time.perf_counter() - t0) * 1000
            label = path if path in _PATHS else "other"
            m = self.state.metrics
            m.requests.labels(label, scope["method"], str(status["code"])).inc()
            m.latency.labels(label).observe(ms / 1000)
            access_log.info(json.dumps({"method": scope["method"], "path": path, "status": status["code"],
                                        "ms": round(ms, 3), "client": client}))

        async def send_wrapped(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store")]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and not message.get("more_body") \
                    and not status["recorded"]:
                record()
            await send(message)

        try:
            if scope["method"] == "POST" and path in _LIMITED:
                refused = self._refuse(scope, path, client)
                if refused is None:
                    body, refused = await self._read_body(receive)
                if refused is not None:
                    await _send_json(send_wrapped, *refused)
                    return
                receive = _replay(body, receive)
            await self.app(scope, receive, send_wrapped)
        finally:
            if not status["recorded"]:  # no complete response (the app failed, or the client went away)
                record()

    def _refuse(self, scope, path: str, client: str):
        """(status, body, headers) when the request is refused before its body is read, else None."""
        st = self.state
        wait = st.limiter.check(f"{path} {client}")
        if wait:
            return 429, {"error": f"too many requests: at most {st.limiter.limit} per minute"}, \
                {"Retry-After": str(int(wait) + 1)}
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        n = headers.get("content-length")
        if n is not None:
            try:
                n = int(n)
            except ValueError:
                n = -1
            if n < 0 or n > st.max_body:
                return 413, {"error": f"request body must be at most {st.max_body} bytes"}, {"Connection": "close"}
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if not (ctype == "application/json" or (ctype.startswith("application/") and ctype.endswith("+json"))):
            what = "the question" if path == "/ask" else "the feedback"
            return 415, {"error": f"send {what} as JSON: Content-Type: application/json"}, None
        return None

    async def _read_body(self, receive):
        """The whole body, at most ``max_body`` bytes (a chunked body without Content-Length included)."""
        limit = self.state.max_body
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"", (400, {"error": "the client went away before sending the whole body"}, None)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return b"", (413, {"error": f"request body must be at most {limit} bytes"}, {"Connection": "close"})
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as e:
            return b"", (400, {"error": f"body is not JSON: not UTF-8 ({e.reason} at byte {e.start})"}, None)
        return body, None


def _replay(body: bytes, receive):
    """A ``receive`` that gives the app the body already read, then waits on the connection as usual."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_json(send, status: int, obj: dict, headers: dict | None = None) -> None:
    body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    hdrs = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    hdrs += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


# ----------------------------------------------------------------------------- the app

@dataclass
class _State:
    answerer: Answerer
    store: FeedbackStore | None
    limiter: RateLimiter
    max_body: int
    api_key: str | None
    full_paths: bool
    index_sha256: str | None
    model: str | None
    model_sha256: str | None
    page: str
    metrics: _Metrics
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


def _self_hosted_docs(app: FastAPI) -> None:
    """``/docs`` with Swagger UI's scripts served by this server (the swagger-ui-bundle package), not a CDN:
    the page works offline and behind firewalls."""
    import swagger_ui_bundle
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="kgllm serve: API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")


def build_app(answerer: Answerer, store: FeedbackStore | None, *, index_sha256: str | None,
              model: str | None = None, model_sha256: str | None = None, rate_per_minute: int = 60,
              max_body: int = 8192, api_key: str | None = None, full_paths: bool = False) -> FastAPI:
    """The FastAPI application over ``answerer`` recording answers and feedback in ``store`` (None: no feedback
    capture, ``answer_id`` is null and ``/feedback`` answers 503). ``index_sha256`` is the index artifact's
    ``content_sha256``, stored with each answer."""
    if store is not None and not index_sha256:
        raise UsageError("build_app: index_sha256 (the index manifest's content_sha256) is required with a store")
    app = FastAPI(title="kgllm serve", version=__version__, docs_url=None, redoc_url=None,
                  description="Answers from a knowledge graph with the triples behind them, and feedback on "
                              "them. Errors are JSON `{\"error\": ...}`. Feedback endpoints need "
                              "`Authorization: Bearer KEY` when the server runs with an API key.")
    _self_hosted_docs(app)
    st = _State(answerer=answerer, store=store, limiter=RateLimiter(rate_per_minute), max_body=max_body,
                api_key=api_key or None, full_paths=full_paths, index_sha256=index_sha256, model=model,
                model_sha256=model_sha256, page=page(), metrics=_Metrics(store))
    app.state.kgllm = st
    app.add_middleware(_Gate, state=st)

    def require_key(cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        if st.api_key is None:
            return
        if cred is None or not secrets.compare_digest(cred.credentials.encode(), st.api_key.encode()):
            raise StarletteHTTPException(401, "this endpoint needs the server's API key: "
                                              "send Authorization: Bearer KEY",
                                         headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        msg = exc.detail
        if exc.status_code == 404 and msg == "Not Found":
            msg = f"no such page: {request.url.path}; see GET /docs (POST /ask, POST /feedback, GET /)"
        elif exc.status_code == 405:
            msg = f"{request.method} is not allowed on {request.url.path}; see GET /docs"
        return JSONResponse({"error": str(msg)}, exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):  # uvicorn still logs the traceback
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, 500)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            e = next(e for e in errors if e.get("type") == "json_invalid")
            return JSONResponse({"error": f"body is not JSON: {(e.get('ctx') or {}).get('error', 'decode error')} "
                                          f"at character {e['loc'][-1]}"}, 400)
        parts = []
        for e in errors:
            loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
            parts.append(f"{loc}: {e.get('msg')}")
        if request.url.path == "/ask":
            return JSONResponse({"error": 'expected {"question": "...", "retriever": "hybrid|graph|vector"}: '
                                          + "; ".join(parts)}, 400)
        return JSONResponse({"error": "; ".join(parts)}, 422)

    @app.get("/", include_in_schema=False)
    @app.get("/index.html", include_in_schema=False)
    def index_page() -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        html = st.page.replace("{{NONCE}}", nonce).replace("{{FEEDBACK_KEY}}",
                                                           "required" if st.api_key else "none")
        return HTMLResponse(html, headers={
            "Content-Security-Policy": f"default-src 'none'; script-src 'nonce-{nonce}'; "
                                       f"style-src 'nonce-{nonce}'; connect-src 'self'; img-src 'self' data:"})

    @app.get("/health", response_model=HealthOut, summary="liveness and the number of live triples")
    def health():
        return {"status": "ok", "triples": int(st.answerer.index.graph.n_live)}

    @app.post("/ask", response_model=AskOut, responses=_ERRORS, summary="answer a question, citing triples")
    def ask(req: AskIn):
        mode = req.retriever or "hybrid"
        try:
            question = check_question(req.question)
            with st.lock:
                out = st.answerer.ask(question, mode)
        except KgllmError as e:
            return JSONResponse({"error": str(e)}, 400)
        except Exception as e:  # one failing question must not take the server down
            logger.exception("serve: /ask failed")
            return JSONResponse({"error": f"{type(e).__name__}: {e}"}, 500)
        shown = out if st.full_paths else public_answer(out)
        answer_id = None
        if st.store is not None:
            try:
                answer_id = st.store.add_answer(question, shown, retriever=mode, model=st.model,
                                                model_sha256=st.model_sha256, index_sha256=st.index_sha256)
            except Exception as e:  # the answer is still worth giving; no feedback can be attached to it
                logger.error("serve: the feedback store did not record an answer: %s: %s", type(e).__name__, e)
        st.metrics.answers.labels("yes" if answer_id else "no").inc()
        return JSONResponse({**shown, "answer_id": answer_id})

    @app.post("/feedback", status_code=201, response_model=FeedbackOut, dependencies=[Depends(require_key)],
              responses={**_ERRORS, 401: {"model": ErrorOut}, 404: {"model": ErrorOut}, 422: {"model": ErrorOut},
                         503: {"model": ErrorOut}},
              summary="rate an answer, give the right answer, or flag a cited triple")
    def feedback(req: FeedbackIn):
        if st.store is None:
            return JSONResponse({"error": "this server records no feedback"}, 503)
        try:
            fid = st.store.add_feedback(req.answer_id, req.kind, rating=req.rating,
                                        correction=req.correction.model_dump(exclude_none=True)
                                        if req.correction is not None else None,
                                        triple_id=req.triple_id, reason=req.reason, user_id=req.user_id)
        except UnknownAnswer as e:
            return JSONResponse({"error": str(e)}, 404)
        except InputError as e:
            return JSONResponse({"error": str(e)}, 422)
        except Exception as e:  # StoreUnavailable (the database is down or kept refusing), or worse
            logger.error("serve: the feedback store failed: %s: %s", type(e).__name__, e)
            why = "the feedback database is unavailable" if isinstance(e, StoreUnavailable) else \
                f"the feedback store failed ({type(e).__name__})"
            return JSONResponse({"error": f"{why}; nothing was recorded, try again"}, 503)
        st.metrics.feedback.labels(req.kind).inc()
        return JSONResponse({"id": int(fid)}, 201)

    @app.get("/feedback/counts", response_model=CountsOut, dependencies=[Depends(require_key)],
             responses={401: {"model": ErrorOut}, 503: {"model": ErrorOut}}, summary="rows in the feedback store")
    def feedback_counts():
        if st.store is None:
            return JSONResponse({"error": "this server records no feedback"}, 503)
        try:
            return st.store.counts()
        except StoreUnavailable as e:
            return JSONResponse({"error": str(e)}, 503)

    @app.get("/metrics", response_class=Response, summary="Prometheus metrics (text format)",
             responses={200: {"content": {"text/plain": {}}}})
    def metrics():
        return Response(st.metrics.render(), media_type=prom.CONTENT_TYPE_LATEST)

    return app


# ----------------------------------------------------------------------------- the server

def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # connections wait in the backlog while the index and encoder load
        sock.set_inheritable(True)
    except OSError as e:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port} ({e.strerror or e}); choose another --port or --host "
                         "(--port 0: any free port)") from e
    return sock


class AskServer:
    """A listening socket and the uvicorn server for ``app`` on it: :meth:`serve_forever` (blocks; run it in a
    thread to serve in the background), :meth:`shutdown` (from another thread), :meth:`server_close`."""

    def __init__(self, app: FastAPI, sock: socket.socket):
        self.app = app
        self.socket = sock
        self._done = threading.Event()
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                                     timeout_graceful_shutdown=10))

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    @property
    def limiter(self) -> RateLimiter:
        return self.app.state.kgllm.limiter

    @limiter.setter
    def limiter(self, value: RateLimiter) -> None:
        self.app.state.kgllm.limiter = value

    def serve_forever(self) -> None:
        self._done.clear()
        try:
            self._server.run(sockets=[self.socket])
        finally:
            self._done.set()

    def shutdown(self, timeout: float = 30.0) -> None:
        self._server.should_exit = True
        self._done.wait(timeout)

    def server_close(self) -> None:
        self.socket.close()


def make_server(answerer: Answerer, host: str = "127.0.0.1", port: int = 8765, *, rate_per_minute: int = 60,
                max_body: int = 8192, store: FeedbackStore | None = None, index_sha256: str | None = None,
                model: str | None = None, model_sha256: str | None = None, api_key: str | None = None,
                full_paths: bool = False) -> AskServer:
    """A server bound to ``host:port`` (port 0: any free port; see ``.url``), not yet serving; the arguments
    after ``port`` are :func:`build_app`'s.

    A bad port or rate, or an address that cannot be bound (in use, not allowed), is a :class:`UsageError`."""
    check_serve_args(port, rate_per_minute, 1, max_body)
    sock = _bind(host, port)
    try:
        app = build_app(answerer, store, index_sha256=index_sha256, model=model, model_sha256=model_sha256,
                        rate_per_minute=rate_per_minute, max_body=max_body, api_key=api_key,
                        full_paths=full_paths)
    except BaseException:
        sock.close()
        raise
    return AskServer(app, sock)


def _serve_dir(config: ServeConfig) -> Path:
    d = Path(config.serve_dir)
    if d.exists() and not d.is_dir():
        raise UsageError(f"--serve-dir {d}: is a file; give a directory (it holds the feedback database)")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--serve-dir {d}: cannot create it ({e.strerror or e})") from e
    return d


def _metrics_dir(serve_dir: Path, *, create: bool) -> Path | None:
    """``SERVE_DIR/metrics/PID``: the workers' shared Prometheus values, removed when the server stops. The
    directories of servers that died without stopping (killed) are removed first."""
    root = serve_dir / "metrics"
    if root.is_dir():
        for d in root.iterdir():
            if d.is_dir() and d.name.isdigit() and not pid_alive(int(d.name)):
                shutil.rmtree(d, ignore_errors=True)
    if not create:
        return None
    d = root / str(os.getpid())
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


def _model_digest(model: str | None) -> str | None:
    """The checkpoint's content hash: a kgllm model artifact's ``content_sha256``, else a hash of its files."""
    return input_digest(resolve_model(model)) if model else None


def serve(config: ServeConfig) -> None:
    """Run ``kgllm serve`` until interrupted: check the index and the serve directory, bind, open the feedback
    store (its migrations run once, here), then serve in this process or in ``config.workers`` uvicorn
    worker processes (each loads the index memory-mapped through :func:`create_app`)."""
    index_sha256 = read_manifest(config.index, "index").content_sha256
    serve_dir = _serve_dir(config)
    model_sha256 = _model_digest(config.model)  # prepares a named model once, before any worker loads it
    sock = _bind(config.host, config.port)
    metrics_dir = None
    try:
        host, port = sock.getsockname()[:2]
        url = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
        store = FeedbackStore(config.db_url)
        banner = (f"kgllm serve: {url}  (POST /ask, POST /feedback, GET /docs, GET /metrics; feedback in "
                  f"{store.display_url}; Ctrl-C stops)")
        if config.workers == 1:
            _metrics_dir(serve_dir, create=False)
            try:
                answerer = load_answerer(config.index, model=config.model, sparql=config.sparql, ranker=config.ranker,
                                       decoding=config.decoding)
                app = build_app(answerer, store, index_sha256=index_sha256, model=config.model,
                                model_sha256=model_sha256, rate_per_minute=config.rate_per_minute,
                                max_body=config.max_body, api_key=config.api_key, full_paths=config.full_paths)
                srv = AskServer(app, sock)
                answerer.warmup()  # the first visitor should not wait for the encoder to load
                print(banner, flush=True)
                srv.serve_forever()
            finally:
                store.close()
            return
        store.close()  # each worker opens its own
        from uvicorn.supervisors import Multiprocess

        metrics_dir = _metrics_dir(serve_dir, create=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)  # read by prometheus_client in each worker
        os.environ[CONFIG_ENV] = json.dumps({"config": dataclasses.asdict(config), "index_sha256": index_sha256,
                                             "model_sha256": model_sha256,
                                             "log_level": logging.getLogger("kgllm").getEffectiveLevel()})
        ucfg = uvicorn.Config("kgllm.ask.serve:create_app", factory=True, workers=config.workers,
                              log_level="warning", access_log=False, timeout_graceful_shutdown=10,
                              timeout_worker_healthcheck=60)  # a worker importing torch may hold the GIL a while
        print(banner.replace("(POST", f"({config.workers} workers; POST"), flush=True)
        supervisor = Multiprocess(ucfg, sockets=[sock])
        supervisor.run()
        if any(p.exitcode == _STARTUP_FAILURE for p in supervisor.processes):
            raise KgllmError("kgllm serve: a worker could not start (its error is in the log above)")
    finally:
        sock.close()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def create_app() -> FastAPI:
    """The app factory uvicorn calls in each worker: the config from :data:`CONFIG_ENV` (set by :func:`serve`),
    the index loaded memory-mapped, the encoder warmed up. A failure ends the worker with uvicorn's
    start-up failure code, so the parent stops instead of restarting it forever."""
    env = json.loads(os.environ[CONFIG_ENV])
    setup_logging()
    logging.getLogger("kgllm").setLevel(env.get("log_level", logging.INFO))
    config = ServeConfig(**env["config"])
    try:
        answerer = load_answerer(config.index, model=config.model, sparql=config.sparql, ranker=config.ranker,
                                       decoding=config.decoding)
        store = FeedbackStore(config.db_url)
        app = build_app(answerer, store, index_sha256=env["index_sha256"], model=config.model,
                        model_sha256=env.get("model_sha256"), rate_per_minute=config.rate_per_minute,
                        max_body=config.max_body, api_key=config.api_key, full_paths=config.full_paths)
        answerer.warmup()
    except Exception as e:
        logger.error("serve: worker %d could not start: %s", os.getpid(), e)
        sys.exit(_STARTUP_FAILURE)  # the parent stops instead of restarting the worker forever
    logger.info("serve: worker %d ready", os.getpid())
    return app


__all__ = ["API_KEY_ENV", "CONFIG_ENV", "AskServer", "RateLimiter", "ServeConfig", "build_app", "check_serve_args",
           "create_app", "make_server", "page", "public_answer", "public_provenance", "serve"]
