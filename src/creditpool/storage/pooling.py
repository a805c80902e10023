"""A connection pool that says when a checkout had to wait (the server's metrics).

SQLAlchemy's pool events fire only after a connection was handed out, so they cannot tell
a wait from an instant checkout; this ``QueuePool`` counts the checkouts that found every
connection in use and how long they waited, and tells the listeners (no framework here).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.pool import ConnectionPoolEntry, QueuePool

WaitListener = Callable[[float], None]
_listeners: list[WaitListener] = []


def on_wait(listener: WaitListener) -> Callable[[], None]:
    """Call ``listener(seconds)`` after each checkout that waited for a connection (in the
    waiting thread), in every pool of this process. Returns what removes it."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


class WatchedQueuePool(QueuePool):
    def __init__(self, creator: Any, *, max_overflow: int = 10, **kwargs: Any) -> None:
        super().__init__(creator, max_overflow=max_overflow, **kwargs)
        self._overflow_max = max_overflow

    def _do_get(self) -> ConnectionPoolEntry:
        exhausted = self.checkedin() == 0 and self.overflow() >= self._overflow_max
        if not exhausted or not _listeners:
            return super()._do_get()
        started = time.perf_counter()
        try:
            return super()._do_get()
        finally:
            waited = time.perf_counter() - started
            for listener in list(_listeners):
                listener(waited)
