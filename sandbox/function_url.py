"""A Lambda function URL on 127.0.0.1: HTTP requests in, the real handler called with function URL events.

The sandbox runs one for the webhook function (`functions.routing.WEBHOOK`), so a local MLflow server can deliver
signed webhooks to it exactly as it would to the function URL on AWS. Each request becomes a payload-format 2.0
event (lower-case headers, `requestContext.http`, the body as text or base64, as Lambda does), the handler's
`{"statusCode", "headers", "body"}` becomes the response, and a handler that raises answers 502 like Lambda.
Bodies over Lambda's 6 MB request limit are refused with 413 before the handler runs.

    python -m sandbox.function_url --handler functions.handlers.webhook.lambda_handler --port 8011

`GET /_sandbox/health` answers 200 once the handler is imported (the sandbox waits for it); every other path and
method goes to the handler.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandbox.event_source import LambdaContext
from sandbox.processes import LOCALHOST
from sandbox.worker import HandlerImportError, import_handler, log_json

HEALTH_PATH = "/_sandbox/health"
MAX_REQUEST_BYTES = 6 * 1024 * 1024
"""Lambda's limit on a synchronous request payload."""
_TEXT_TYPES = ("application/json", "text/", "application/xml", "application/x-www-form-urlencoded")


def function_url_event(
    *, method: str, path: str, query: str, headers: dict[str, str], body: bytes, source_ip: str, url_id: str
) -> dict[str, Any]:
    """The payload-format 2.0 event Lambda builds for a function URL request."""
    now = datetime.now(UTC)
    content_type = headers.get("content-type", "")
    is_text = content_type.startswith(_TEXT_TYPES)
    try:
        text = body.decode("utf-8") if is_text else None
    except UnicodeDecodeError:
        text = None
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": url_id,
            "domainName": f"{url_id}.lambda-url.us-east-1.on.aws",
            "domainPrefix": url_id,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": text if text is not None else base64.b64encode(body).decode(),
        "isBase64Encoded": text is None,
    }


def http_response(answer: Any) -> tuple[int, dict[str, str], bytes]:
    """Lambda's reading of a function URL handler's return value."""
    if isinstance(answer, dict) and "statusCode" in answer:
        body = answer.get("body") or ""
        data = base64.b64decode(body) if answer.get("isBase64Encoded") else str(body).encode()
        headers = {str(k): str(v) for k, v in (answer.get("headers") or {}).items()}
        return int(answer["statusCode"]), headers, data
    return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()


def make_server(
    handler: Callable[[dict, Any], Any],
    *,
    host: str = LOCALHOST,
    port: int = 0,
    function_name: str = "function-url",
    memory_mb: int = 256,
    timeout_seconds: int = 30,
) -> ThreadingHTTPServer:
    """An HTTP server that calls `handler` for every request (serve it with `serve_forever`)."""
    url_id = uuid.uuid4().hex[:20]
    # One invocation at a time, as one Lambda execution environment runs them (the logger's keys are per process).
    invocation = threading.Lock()

    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            path, _, query = self.path.partition("?")
            if self.command == "GET" and path == HEALTH_PATH:
                self._send(200, {"Content-Type": "application/json"}, b'{"status": "ok"}')
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_REQUEST_BYTES:
                self.close_connection = True
                self._send(413, {"Content-Type": "application/json"}, b'{"message": "Request Entity Too Large"}')
                return
            body = self.rfile.read(length) if length else b""
            headers: dict[str, str] = {}
            for name, value in self.headers.items():
                key = name.lower()
                headers[key] = f"{headers[key]},{value}" if key in headers else value
            event = function_url_event(
                method=self.command,
                path=path,
                query=query,
                headers=headers,
                body=body,
                source_ip=self.client_address[0],
                url_id=url_id,
            )
            context = LambdaContext(
                function_name=function_name, memory_limit_in_mb=memory_mb, timeout_seconds=timeout_seconds
            )
            try:
                with invocation:
                    answer = handler(event, context)
                status, response_headers, data = http_response(answer)
            except Exception as error:  # noqa: BLE001 - a handler error is Lambda's 502, never a dead server
                log_json(
                    "ERROR",
                    "handler raised",
                    error=f"{type(error).__name__}: {error}",
                    traceback=traceback.format_exc(),
                )
                status, response_headers, data = (
                    502,
                    {"Content-Type": "application/json"},
                    b'{"message": "Internal Server Error"}',
                )
            self._send(status, response_headers, data)

        def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            log_json("INFO", "request", client=self.client_address[0], line=format % args)

    server = ThreadingHTTPServer((host, port), RequestHandler)
    server.daemon_threads = True
    return server


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.function_url", description=__doc__.splitlines()[0])
    parser.add_argument("--handler", required=True, help="package.module.function")
    parser.add_argument("--host", default=LOCALHOST)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--function-name", default="function-url")
    parser.add_argument("--memory-mb", type=int, default=256)
    parser.add_argument("--timeout-seconds", type=int, default=30)
    parser.add_argument("--parent-pid", type=int, help="stop when this process is gone (no orphans)")
    args = parser.parse_args(argv)
    try:
        handler = import_handler(args.handler)
    except HandlerImportError as error:
        log_json("ERROR", "handler cannot be imported", error=str(error), traceback=traceback.format_exc())
        return 3
    server = make_server(
        handler,
        host=args.host,
        port=args.port,
        function_name=args.function_name,
        memory_mb=args.memory_mb,
        timeout_seconds=args.timeout_seconds,
    )

    def stop(_signum: int, _frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.parent_pid is not None:

        def watch_parent() -> None:
            while os.getppid() == args.parent_pid:
                time.sleep(0.5)
            server.shutdown()

        threading.Thread(target=watch_parent, daemon=True).start()
    log_json("INFO", "function URL ready", url=f"http://{args.host}:{args.port}/", handler=args.handler)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
