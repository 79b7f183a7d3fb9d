"""Per-process memos of small rows that every inbound event reads and that rarely change (an
organization's webhook subscriptions, its opt-out keywords, which numbers an assistant answers).

Reading them from the database for every message was a real share of the webhook drain. A change
is seen at once in the process that made it (``forget``), and within ``ttl`` seconds elsewhere.
"""

import time
from collections.abc import Callable, Hashable
from typing import Any

from django.db import transaction

_all: list["ProcessMemo"] = []


class ProcessMemo:
    def __init__(self, ttl: float = 2.0):
        self.ttl = ttl
        self._values: dict[Hashable, tuple[float, Any]] = {}
        _all.append(self)

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        now = time.monotonic()
        hit = self._values.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        value = load()
        self._values[key] = (now, value)
        return value

    def forget(self, key: Hashable) -> None:
        """Now and after commit, so that rows read in between are not kept."""
        self._values.pop(key, None)
        transaction.on_commit(lambda: self._values.pop(key, None))

    def discard(self, key: Hashable) -> None:
        """Drop ``key`` now (a value not worth keeping, e.g. a miss)."""
        self._values.pop(key, None)


def forget_all() -> None:
    """Tests start without memos (ids come back after a rollback)."""
    for memo in _all:
        memo._values.clear()
