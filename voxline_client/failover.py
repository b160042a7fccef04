"""Which server to try next, and after what wait: failover across base URLs within one deadline."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit


class Rotation:
    """Attempt bookkeeping for one call: each server is tried as soon as it may be (a server that
    failed waits for its Retry-After, else a doubling backoff), earlier URLs first on ties; no
    attempt starts once the wait for it would reach the deadline."""

    def __init__(
        self,
        servers: int,
        deadline_s: float,
        *,
        backoff: float,
        max_wait: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self.deadline_at = clock() + deadline_s
        self.backoff = backoff
        self.max_wait = max_wait
        self._ready_at = [0.0] * servers
        self._failures = [0] * servers

    def next(self) -> tuple[int, float] | None:
        """(server index, seconds to wait before trying it), or None when time is up."""
        now = self._clock()
        index = min(range(len(self._ready_at)), key=self._ready_at.__getitem__)
        wait = max(0.0, self._ready_at[index] - now)
        if now + wait >= self.deadline_at:
            return None
        return index, wait

    def failed(self, index: int, retry_after: float | None) -> None:
        """Note a failed attempt on server `index`; `retry_after` is what that server asked for."""
        self._failures[index] += 1
        if retry_after is None:
            retry_after = self.backoff * 2 ** (self._failures[index] - 1)
        self._ready_at[index] = self._clock() + min(retry_after, self.max_wait)

    def remaining(self) -> float:
        """Seconds left before the deadline (never negative)."""
        return max(0.0, self.deadline_at - self._clock())


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if seconds == seconds else None  # NaN is not a wait


def split_urls(urls: str | Sequence[str]) -> tuple[str, ...]:
    """Base URLs from one URL, a comma-separated list, or a sequence of either; none empty."""
    items = [urls] if isinstance(urls, str) else list(urls)
    found = tuple(u.strip().rstrip("/") for item in items for u in item.split(",") if u.strip())
    if not found:
        raise ValueError("at least one server URL is needed")
    for url in found:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
    return found
