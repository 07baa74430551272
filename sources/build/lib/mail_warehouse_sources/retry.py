"""The one retry policy of the loaders and the export: transient failures are retried with exponential
backoff (or after the delay the server asked for), anything else fails at once.

Built on tenacity, which dlt already brings. Each caller says what is transient for its protocol (a dropped
SSH connection, a 5xx or 429, a cut-off body) and wraps the last failure in its own error naming what failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

T = TypeVar("T")


def call_with_retries(
    action: Callable[[], T],
    *,
    attempts: int,
    first_delay: float,
    is_transient: Callable[[BaseException], bool],
    delay_hint: Callable[[BaseException], float | None] | None = None,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> T:
    """Run `action`; retry it while it fails transiently, `attempts` times in all, waiting `first_delay`
    seconds and doubling (or what `delay_hint` says, e.g. a Retry-After). The last failure, or the first that
    is not transient, is raised as it is. `on_retry(attempt, failure, delay)` is told before each wait."""
    backoff = wait_exponential(multiplier=first_delay, exp_base=2, min=0)

    def wait(state) -> float:
        hinted = delay_hint(state.outcome.exception()) if delay_hint else None
        return hinted if hinted is not None else backoff(state)

    def before_sleep(state) -> None:
        if on_retry:
            on_retry(state.attempt_number, state.outcome.exception(), state.next_action.sleep)

    retrying = Retrying(
        stop=stop_after_attempt(max(1, attempts)),
        wait=wait,
        retry=retry_if_exception(is_transient),
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(action)
