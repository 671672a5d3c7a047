"""An HTTP proxy in front of a local server (MLflow, moto): counts requests in flight, and can answer some itself.

Every request is read whole, forwarded on its own connection and answered whole, so `in_flight` counts
requests (not connections), from the moment the request is read until its answer is written. The peak is
what the upstream server saw at most, plus nothing: requests reach it only through the proxy.

`intercept(request, forward)` decides each answer: the default forwards the request unchanged; a fault injector
(`reliability.faults.FaultInjector`) answers some requests with an error of its own instead, or forwards a changed
request and changes the answer.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP_BY_HOP = {
    *("connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"),
    "expect",  # the proxy has read the whole body already; it forwards it in one go
}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None

    def header(self, name: str) -> str:
        """A header's value by case-insensitive name ("" when absent)."""
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), "")


@dataclass
class Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


Forward = Callable[[Request], Answer]
Intercept = Callable[[Request, Forward], Answer]


def _pass_through(request: Request, forward: Forward) -> Answer:
    return forward(request)


class CountingProxy:
    def __init__(self, upstream_port: int, host: str = "127.0.0.1", *, intercept: Intercept | None = None) -> None:
        self.upstream_port = upstream_port
        self.in_flight = 0
        self.peak = 0
        self.requests = 0
        self._lock = threading.Lock()
        self._intercept = intercept or _pass_through
        proxy = self

        def forward(request: Request) -> Answer:
            try:
                upstream = http.client.HTTPConnection(host, proxy.upstream_port, timeout=120)
                try:
                    upstream.request(request.method, request.path, body=request.body, headers=request.headers)
                    response = upstream.getresponse()
                    return Answer(response.status, response.reason, response.getheaders(), response.read())
                finally:
                    upstream.close()
            except OSError:
                return Answer(502, "Bad Gateway", [], b"upstream unavailable")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                return

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                proxy._enter()
                try:
                    answer = proxy._intercept(Request(self.command, self.path, headers, body), forward)
                finally:
                    proxy._leave()
                self.send_response(answer.status, answer.reason)
                head = self.command == "HEAD"  # its Content-Length is the object's, and it has no body
                for name, value in answer.headers:
                    if name.lower() not in _HOP_BY_HOP and (head or name.lower() != "content-length"):
                        self.send_header(name, value)
                if not head:
                    self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                if not head:
                    self.wfile.write(answer.body)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = do_HEAD = _forward

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.requests += 1
            self.peak = max(self.peak, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def start(self) -> CountingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
