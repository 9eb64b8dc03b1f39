"""``kgllm serve``: the answerer over HTTP (standard library only), with a web page.

Takes: an :class:`~kgllm.ask.answer.Answerer` (an index, optionally a SPARQL endpoint and a model).
Makes: an HTTP server with

* ``POST /ask``  body ``{"question": str, "retriever": "hybrid"|"graph"|"vector"}`` -> the answer object of
  ``kgllm ask --json`` (200), or ``{"error": ...}`` with 400 (bad JSON, empty or too long question, unknown
  retriever), 413 (body over ``max_body`` bytes), 415 (not JSON), 429 (over ``rate_per_minute`` requests per
  client address in the last 60 s; ``Retry-After`` says when to come back);
* ``GET /``      the page (kgllm/ask/static/index.html): a question box, the answer, the cited triples with
  their provenance, the SPARQL query and the subgraph around the evidence (SVG);
* ``GET /health`` ``{"status": "ok", "triples": N}``.

Answers are computed one at a time (a lock): the index and the encoder are shared and CPU-bound, so
parallel requests would only slow each other. The page's script runs under a per-response CSP nonce and
writes every value with ``textContent``, so graph data cannot inject markup into the page.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from ..errors import KgllmError, UsageError
from ..log import logger
from .answer import RETRIEVERS, Answerer


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key (sliding window)."""

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


class AskServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, answerer: Answerer, *, rate_per_minute: int = 60, max_body: int = 8192):
        super().__init__(addr, _Handler)
        self.answerer = answerer
        self.limiter = RateLimiter(rate_per_minute)
        self.max_body = max_body
        self.lock = threading.Lock()
        self.page = page()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


class _Handler(BaseHTTPRequestHandler):
    server: AskServer
    server_version = "kgllm-serve"

    def log_message(self, fmt, *args):  # through the kgllm logger, not stderr
        logger.debug("serve %s " + fmt, self.client_address[0], *args)

    def _send(self, code: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, obj, headers: dict | None = None) -> None:
        self._send(code, json.dumps(obj, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8",
                   headers)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            nonce = secrets.token_urlsafe(16)
            body = self.server.page.replace("{{NONCE}}", nonce).encode("utf-8")
            self._send(200, body, "text/html; charset=utf-8", {
                "Content-Security-Policy": f"default-src 'none'; script-src 'nonce-{nonce}'; "
                                           f"style-src 'nonce-{nonce}'; connect-src 'self'; img-src 'self' data:"})
        elif path == "/health":
            self._json(200, {"status": "ok", "triples": int(self.server.answerer.index.graph.n_live)})
        else:
            self._json(404, {"error": f"no such page: {path}; use GET / or POST /ask"})

    def do_POST(self):
        if self.path.split("?", 1)[0] != "/ask":
            self._json(404, {"error": "POST /ask only"})
            return
        wait = self.server.limiter.check(self.client_address[0])
        if wait:
            self._json(429, {"error": f"too many requests: at most {self.server.limiter.limit} per minute"},
                       {"Retry-After": str(int(wait) + 1)})
            return
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            n = -1
        if n < 0 or n > self.server.max_body:
            self._json(413, {"error": f"request body must be at most {self.server.max_body} bytes"})
            self.close_connection = True
            return
        if "json" not in (self.headers.get("Content-Type") or ""):
            self._json(415, {"error": "send the question as JSON: Content-Type: application/json"})
            return
        try:
            req = json.loads(self.rfile.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            self._json(400, {"error": f"body is not JSON: {e}"})
            return
        if not isinstance(req, dict) or not isinstance(req.get("question"), str):
            self._json(400, {"error": 'expected {"question": "...", "retriever": "hybrid|graph|vector"}'})
            return
        mode = req.get("retriever") or "hybrid"
        if mode not in RETRIEVERS:
            self._json(400, {"error": f"retriever must be one of {', '.join(RETRIEVERS)}"})
            return
        try:
            with self.server.lock:
                out = self.server.answerer.ask(req["question"], mode)
        except KgllmError as e:
            self._json(400, {"error": str(e)})
            return
        except Exception as e:  # one failing question must not take the server down
            logger.exception("serve: /ask failed")
            self._json(500, {"error": f"{type(e).__name__}: {e}"})
            return
        self._json(200, out)


def check_serve_args(port: int, rate_per_minute: int) -> None:
    """:class:`UsageError` for a port outside 0..65535 (0: any free port) or a rate below 1 request per
    minute: checked before the index loads."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: must be a port number from 1 to 65535 (0: any free port)")
    if rate_per_minute < 1:
        raise UsageError(f"--rate {rate_per_minute}: must be at least 1 request per minute per client")


def make_server(answerer: Answerer, host: str = "127.0.0.1", port: int = 8765, *, rate_per_minute: int = 60,
                max_body: int = 8192) -> AskServer:
    """A server bound to ``host:port`` (port 0: any free port; see ``.url``), not yet serving.

    A bad port or rate, or an address that cannot be bound (in use, not allowed), is a :class:`UsageError`."""
    check_serve_args(port, rate_per_minute)
    try:
        return AskServer((host, port), answerer, rate_per_minute=rate_per_minute, max_body=max_body)
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port} ({e.strerror or e}); choose another --port or --host "
                         "(--port 0: any free port)") from e


def serve(answerer: Answerer, host: str = "127.0.0.1", port: int = 8765, *, rate_per_minute: int = 60) -> None:
    srv = make_server(answerer, host, port, rate_per_minute=rate_per_minute)
    answerer.warmup()  # the first visitor should not wait for the encoder to load
    print(f"kgllm serve: {srv.url}  (POST /ask, GET /health; Ctrl-C stops)", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
