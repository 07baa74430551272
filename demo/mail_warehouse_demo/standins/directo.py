"""A stand-in for Directo's XMLCore: `/xmlcore/<db>/xmlcore.asp?get=1&what=customer&key=...[&ts=DD.MM.YYYY]`.

Answers as Directo does, with HTTP 200 for errors too: a wrong key gives `<result type="5" desc="Unauthorized"/>`,
a missing key `<err>token required</err>`, anything else it does not know `<error desc=".." code=".."/>`.
Parameters come as a GET query or as a form POST. `ts` returns customers changed since that day (Estonian
local midnight, inclusive). The answer is streamed from the demo world's tables.

Tests can replace the next answers with any body (`serve_raw`), for hostile and broken XML.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import deque
from pathlib import Path
from urllib.parse import parse_qsl

from mail_warehouse.settings import connect
from mail_warehouse_demo.directo_xml import DIRECTO_TIME_ZONE, render_transport
from mail_warehouse_demo.standins.http import Request, Response, StandinServer
from mail_warehouse_demo.writers import iter_directo_customers

DEMO_DATABASE = "demo_ee"
DEMO_KEY = "demo-directo-key"
PATH_PATTERN = re.compile(r"^/xmlcore/(?P<database>[^/]+)/xmlcore\.asp$")


def _xml(body: str | bytes) -> Response:
    return Response(200, body.encode() if isinstance(body, str) else body, content_type="text/xml")


def _file_chunks(path: Path, size: int = 1 << 20):
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


class DirectoXmlCore:
    def __init__(self, world_dir: Path, key: str = DEMO_KEY, database: str = DEMO_DATABASE) -> None:
        self.world_dir = Path(world_dir)
        self.key = key
        self.database = database
        self.requests: list[dict[str, str]] = []  # the parameters of every call, for tests of `ts`
        self._raw_answers: deque[bytes] = deque()
        self._lock = threading.Lock()
        self._con = connect(self.world_dir / "world.duckdb", read_only=True)

    def close(self) -> None:
        self._con.close()

    def serve_raw(self, *bodies: str | bytes | Path) -> None:
        """The next answers to authorised requests are these bodies, as given (for broken and hostile XML);
        a Path is streamed from disk (for answers too large to hold in memory)."""
        with self._lock:
            self._raw_answers.extend(b.encode() if isinstance(b, str) else b for b in bodies)

    @staticmethod
    def endpoint_name(request: Request) -> str:
        return f"{request.method} /xmlcore.asp"

    def __call__(self, request: Request) -> Response:
        match = PATH_PATTERN.match(request.path)
        if not match or match["database"] != self.database:
            return Response(404, b"Not Found", content_type="text/plain")
        params = dict(request.query)
        if request.method == "POST":
            params.update(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        with self._lock:
            self.requests.append({k: ("***" if k == "key" else v) for k, v in params.items()})
        if not params.get("key"):
            return _xml("<err>token required</err>")
        if params["key"] != self.key:
            return _xml('<?xml version="1.0" encoding="UTF-8"?>\n<result type="5" desc="Unauthorized"/>')
        if params.get("get") != "1" or params.get("what") != "customer":
            return _xml(
                f'<?xml version="1.0" encoding="UTF-8"?>\n<error desc="Unknown request: what='
                f'{params.get("what", "")}" code="1"/>'
            )
        with self._lock:
            raw = self._raw_answers.popleft() if self._raw_answers else None
        if isinstance(raw, Path):
            return Response(200, _file_chunks(raw), content_type="text/xml")
        if raw is not None:
            return _xml(raw)
        since = None
        if params.get("ts"):
            try:
                day = dt.datetime.strptime(params["ts"], "%d.%m.%Y")
            except ValueError:
                return _xml(
                    '<?xml version="1.0" encoding="UTF-8"?>\n<error desc="Invalid ts, expected DD.MM.YYYY" code="2"/>'
                )
            since = day.replace(tzinfo=DIRECTO_TIME_ZONE)
        with self._lock:
            cursor = self._con.cursor()
        return Response(200, self._stream(cursor, since), content_type="text/xml")

    @staticmethod
    def _stream(cursor, since):
        try:
            yield from render_transport(iter_directo_customers(cursor, changed_since=since))
        finally:
            cursor.close()

    def url(self, server: StandinServer) -> str:
        return f"{server.url}/xmlcore/{self.database}/xmlcore.asp"


def serve(world_dir: Path, *, port: int = 0, key: str = DEMO_KEY) -> tuple[StandinServer, DirectoXmlCore]:
    app = DirectoXmlCore(world_dir, key)
    server = StandinServer(app, app.endpoint_name, port=port, on_stop=app.close).start()
    return server, app
