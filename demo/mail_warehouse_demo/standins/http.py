"""A small threaded HTTP server on loopback shared by the Spotler and Directo stand-ins.

It counts calls per endpoint and injects faults that tests ask for: an HTTP status (429 with
Retry-After, 5xx), a slow answer, a body cut off midway, a reply held back until released (the test kills
the client meanwhile), or a connection dropped without a reply. A request held or dropped that way was never
carried out; `act_first` carries it out first (a write call acted on, its answer held or lost on the way
back). `skip` lets that many matching requests through first, so a fault hits the Nth. Tests in the same
process use the Python objects; a process outside
(a CLI run under test) uses the admin endpoints under `/_standin/`: `GET /_standin/calls`,
`POST /_standin/faults` (a JSON list of faults), `POST /_standin/release` (every held reply goes out),
`POST /_standin/reset`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

ADMIN_PREFIX = "/_standin/"


@dataclass
class Request:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    base_url: str  # scheme://host:port as the client addressed it

    @property
    def params(self) -> dict[str, str]:
        return dict(self.query)

    @property
    def url(self) -> str:
        return self.base_url + self.path


@dataclass
class Response:
    status: int
    body: bytes | Iterable[bytes] = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload, status: int = 200) -> Response:
        return cls(status, json.dumps(payload, ensure_ascii=False).encode())


@dataclass
class Fault:
    """One injected fault for requests whose path matches `path` (a regex searched in the path)."""

    kind: str  # "status" | "slow" | "cutoff" | "hold" | "drop"
    path: str = ""
    times: int = 1  # how many matching requests it hits; -1 for all
    status: int = 500
    retry_after: int | None = None
    delay: float = 0.0
    skip: int = 0  # matching requests let through before the fault hits
    act_first: bool = False  # "hold" / "drop": the request is carried out before its answer is held or lost
    reached: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    released: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def matches(self, path: str) -> bool:
        return self.times != 0 and re.search(self.path, path) is not None

    def release(self) -> None:
        self.released.set()

    def wait_reached(self, timeout: float) -> bool:
        return self.reached.wait(timeout)


class StandinServer:
    """Serve `app(request) -> Response` on 127.0.0.1; `endpoint(request)` names what a call is counted as."""

    def __init__(
        self,
        app: Callable[[Request], Response],
        endpoint: Callable[[Request], str],
        host: str = "127.0.0.1",
        port: int = 0,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self._on_stop = on_stop
        self.endpoint = endpoint
        self.calls: Counter[str] = Counter()
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StandinServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="standin-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # held replies go out
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._on_stop:
            self._on_stop()

    def __enter__(self) -> StandinServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def reset(self) -> None:
        with self._lock:
            held, self.faults = self.faults, []
            self.calls.clear()
        for fault in held:
            fault.release()

    def release(self) -> None:
        """Let every held reply go out."""
        with self._lock:
            faults = list(self.faults)
        for fault in faults:
            fault.release()

    def total_calls(self) -> int:
        with self._lock:
            return sum(self.calls.values())

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    if fault.times > 0:
                        fault.times -= 1
                    return fault
        return None

    def _count(self, request: Request) -> None:
        name = self.endpoint(request)
        with self._lock:
            self.calls[name] += 1

    def _admin(self, request: Request) -> Response:
        action = request.path[len(ADMIN_PREFIX) :]
        if action == "calls":
            with self._lock:
                return Response.json({"calls": dict(self.calls), "total": sum(self.calls.values())})
        if action == "reset" and request.method == "POST":
            self.reset()
            return Response.json({"ok": True})
        if action == "release" and request.method == "POST":
            self.release()
            return Response.json({"ok": True})
        if action == "faults" and request.method == "POST":
            self.inject(*(Fault(**item) for item in json.loads(request.body or b"[]")))
            return Response.json({"ok": True})
        return Response.json({"error": f"unknown admin action {action!r}"}, 404)

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet: tests and the demo print their own summaries
                pass

            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=self.command,
                    path=split.path,
                    query=parse_qsl(split.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                    base_url=f"http://{self.headers.get('Host') or '{}:{}'.format(*server._httpd.server_address[:2])}",
                )
                if request.path.startswith(ADMIN_PREFIX):
                    self._send(server._admin(request))
                    return
                server._count(request)
                fault = server._take_fault(request.path)
                if fault and fault.kind == "slow":
                    time.sleep(fault.delay)
                acted = None
                if fault and fault.kind in ("hold", "drop") and fault.act_first:
                    acted = self._answer(request)
                if fault and fault.kind in ("hold", "drop"):
                    fault.reached.set()
                    if fault.kind == "drop":  # no answer at all: the client sees the connection close
                        self.close_connection = True
                        return
                    while not fault.released.wait(0.05) and not server.stopping.is_set():
                        pass
                if fault and fault.kind == "status":
                    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                    self._send(
                        Response(
                            fault.status,
                            json.dumps(
                                {"errorType": "BACKEND_EXCEPTION", "message": f"injected fault {fault.status}"}
                            ).encode(),
                            headers=headers,
                        )
                    )
                    return
                self._send(acted or self._answer(request), cut_off=bool(fault and fault.kind == "cutoff"))

            @staticmethod
            def _answer(request: Request) -> Response:
                try:
                    return server.app(request)
                except Exception as exc:  # a bug in a stand-in shows as a 500 with its message
                    return Response.json({"errorType": "BACKEND_EXCEPTION", "message": repr(exc)}, 500)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def _send(self, response: Response, cut_off: bool = False) -> None:
                body = response.body if isinstance(response.body, bytes) else None
                self.send_response(response.status)
                self.send_header("Content-Type", f"{response.content_type}; charset=utf-8")
                for name, value in response.headers.items():
                    self.send_header(name, value)
                if body is None:  # streamed answers (large XML) go out chunked
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for chunk in response.body:
                        if chunk:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                            if cut_off:
                                self.close_connection = True
                                return
                    self.wfile.write(b"0\r\n\r\n")
                    return
                if cut_off:  # promise the whole body, send half, hang up
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
