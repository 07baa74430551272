"""The Spotler Mail+ HTTP client: OAuth 1.0a signed calls, retries through the loaders' one retry policy,
calls counted per endpoint, and the loader's per-run call budget (the API is paid in calls).

`get` reads (the loader); `send` writes (the export's campaign triggers and audiences) and returns Spotler's
answer, refusals included, for the caller to judge: only a 429, a 5xx or a connection lost without an answer
is retried, so a write retried after its answer was lost reaches Spotler twice, and the caller reads the second
answer knowing that ("Contact already in campaign").
"""

from __future__ import annotations

import json
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import requests
from oauthlib.oauth1 import Client as OAuthClient

from mail_warehouse_sources.retry import call_with_retries
from mail_warehouse_sources.spotler.config import (
    SpotlerCredentialsRefused,
    SpotlerError,
    SpotlerSourceConfiguration,
)


class CallBudgetReached(Exception):
    """max_calls_per_run is spent: the step stops cleanly, what it fetched is kept."""


class _Transient(Exception):
    """A failure worth another attempt: 429, 5xx, a timeout, a dropped connection, a cut-off body."""

    def __init__(self, problem: str, retry_after: float | None = None, *, unanswered: bool = False) -> None:
        super().__init__(problem)
        # unanswered: the request may have reached Spotler and been carried out; only its answer is missing
        self.problem, self.retry_after, self.unanswered = problem, retry_after, unanswered


@dataclass(frozen=True)
class Answer:
    """Spotler's answer to a write: the status, the JSON body (None when empty), and for a refusal its text."""

    status: int
    body: object = None
    after_lost_answer: bool = False  # an earlier attempt of this call went unanswered (it may have been carried out)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def message(self) -> str:
        if isinstance(self.body, dict):
            return str(self.body.get("message") or self.body.get("errorType") or "")
        return "" if self.body is None else str(self.body)[:500]


RETRY_STATUSES = {429, 500, 502, 503, 504}
TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class SpotlerClient:
    """`get(endpoint, path)`: `endpoint` names the call in counts and errors
    (`GET /mailing/{encryptedMailingId}/opens`); `path` is relative to base_url, or a `next` link."""

    def __init__(self, config: SpotlerSourceConfiguration, log: Callable[[str], None] = lambda m: None) -> None:
        self.config = config
        self.calls: Counter[str] = Counter()
        self.log = log
        self._lock = threading.Lock()
        # idle sessions, so connections are kept alive across the calls of a run whichever thread makes them
        self._sessions: queue.SimpleQueue[requests.Session] = queue.SimpleQueue()
        base = urlsplit(config.base_url)
        self._origin, self._base_path = f"{base.scheme}://{base.netloc}", base.path.rstrip("/")

    def url_for(self, path_or_url: str) -> str:
        """A path under base_url, a `next` link as an absolute URL, or as a path that already holds the base
        path (the real server may send either): never the base path twice."""
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        if self._base_path and (path_or_url == self._base_path or path_or_url.startswith(self._base_path + "/")):
            return self._origin + path_or_url
        return self._origin + self._base_path + "/" + path_or_url.lstrip("/")

    def get(self, endpoint: str, path_or_url: str, params: dict | None = None):
        url = self.url_for(path_or_url)
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        return self._with_retries(
            endpoint,
            lambda: self._attempt(endpoint, url),
            "; nothing of this run was loaded and the cursors are where they were",
        )

    def send(self, method: str, endpoint: str, path: str, body=None) -> Answer:
        """A call of the export (a write, or a read whose refusal means something, `GET /audience/{id}`) with
        a JSON body; Spotler's answer, a refusal included. 429s, 5xxs and lost connections are retried; a 401
        raises. These calls are not charged to the loader's call budget."""
        url = self.url_for(path)
        data = None if body is None else json.dumps(body).encode()
        unanswered = []
        answer = self._with_retries(
            endpoint,
            lambda: self._attempt(endpoint, url, method, data, answer=True),
            on_failure=lambda failure: unanswered.append(failure.unanswered),
        )
        return Answer(answer.status, answer.body, after_lost_answer=any(unanswered))

    def _with_retries(
        self,
        endpoint: str,
        action: Callable,
        consequence: str = "",
        on_failure: Callable[[_Transient], None] = lambda failure: None,
    ):
        """`action` under the one retry policy; each transient failure is logged (and told to `on_failure`)
        before its retry; the last one raises a SpotlerError naming the endpoint and `consequence`."""

        def on_retry(attempt: int, failure: BaseException, delay: float) -> None:
            assert isinstance(failure, _Transient)  # only a _Transient is retried (is_transient below)
            on_failure(failure)
            self.log(f"  {endpoint}: {failure}, retrying in {delay:.1f} s")

        try:
            return call_with_retries(
                action,
                attempts=self.config.max_attempts,
                first_delay=self.config.retry_delay_seconds,
                is_transient=lambda e: isinstance(e, _Transient),
                delay_hint=lambda e: getattr(e, "retry_after", None),
                on_retry=on_retry,
            )
        except _Transient as last:
            raise SpotlerError(
                f"{endpoint}: failed after {self.config.max_attempts} attempts (last: {last.problem}){consequence}"
            ) from None

    def pages(self, endpoint: str, path: str, item_key: str, params: dict | None = None) -> Iterator[list[dict]]:
        """Every page of a paged list, following `next` (signed anew) until the last page."""
        body = self.get(endpoint, path, {**(params or {}), "pageSize": self.config.page_size})
        while True:
            yield body.get(item_key) or []
            following = (body.get("paging") or {}).get("next")
            if not following:
                return
            body = self.get(endpoint, following)

    def _charge(self, endpoint: str, *, budgeted: bool = True) -> None:
        """Count the call; a budgeted one (the loader's) first checks max_calls_per_run."""
        with self._lock:
            if budgeted and self.config.max_calls_per_run and sum(self.calls.values()) >= self.config.max_calls_per_run:
                raise CallBudgetReached(endpoint)
            self.calls[endpoint] += 1

    def _attempt(
        self, endpoint: str, url: str, method: str = "GET", data: bytes | None = None, *, answer: bool = False
    ):
        """One call: a read's JSON, or (`answer`) Spotler's Answer whatever it says; raises _Transient for what
        is worth another try."""
        self._charge(endpoint, budgeted=not answer)
        # the JSON body is not signed (OAuth 1.0a signs form bodies only), so the signature covers the URL
        signed_url, headers, _ = OAuthClient(
            self.config.consumer_key, client_secret=self.config.consumer_secret, signature_method="HMAC-SHA1"
        ).sign(url, http_method=method)
        headers["Accept"] = "application/json"
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            session = self._sessions.get_nowait()
        except queue.Empty:
            session = requests.Session()
        try:
            response = session.request(
                method, signed_url, headers=headers, data=data, timeout=self.config.timeout_seconds
            )
            if answer and response.status_code not in RETRY_STATUSES and response.status_code != 401:
                return Answer(response.status_code, _json_or_text(response))
            if not answer and response.status_code == 200:
                return response.json()
        except TRANSIENT_ERRORS as error:
            raise _Transient(type(error).__name__, unanswered=True) from None
        except ValueError:  # a body cut off mid-JSON
            raise _Transient("an incomplete JSON body", unanswered=True) from None
        finally:
            self._sessions.put(session)
        status = response.status_code
        if status in (401, 403):
            raise SpotlerCredentialsRefused(
                f"{endpoint}: Spotler refused the credentials (HTTP {status}): check the secrets "
                "SOURCES__SPOTLER__CONSUMER_KEY and SOURCES__SPOTLER__CONSUMER_SECRET"
            )
        if status not in RETRY_STATUSES:
            raise SpotlerError(f"{endpoint}: HTTP {status} {_error_text(response)}")
        retry_after = response.headers.get("Retry-After", "").strip()
        hint = (
            min(float(retry_after), self.config.max_retry_after_seconds)
            if status == 429 and retry_after.isdigit()
            else None
        )
        raise _Transient(f"HTTP {status}", hint)


def _json_or_text(response: requests.Response):
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
        return f"{body.get('errorType', '')}: {body.get('message', '')}"
    except ValueError:
        return response.text[:200]
