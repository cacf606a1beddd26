"""Coalesced background writes: judging never waits for the index file.

`request()` costs a lock and a flag on the caller's thread. One background thread calls `write` at
most once per `interval_s` and never twice at a time; a request made before a call starts is covered
by that call. The thread exits when idle, so a dropped curriculum leaves nothing running.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class CoalescingWriter:
    def __init__(self, write: Callable[[], None], interval_s: float, name: str):
        self._write, self._interval_s, self._name = write, interval_s, name
        self._cond = threading.Condition()
        self._requested = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._last_end = float("-inf")

    def request(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._requested = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def withdraw(self) -> None:
        """Drop a pending request: the caller is about to write everything itself."""
        with self._cond:
            self._requested = False

    def close(self) -> None:
        """No more background writes; waits for the one in flight."""
        with self._cond:
            self._closed, self._requested = True, False
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._requested and (wait := self._last_end + self._interval_s - time.monotonic()) > 0:
                    self._cond.wait(wait)
                if not self._requested:
                    self._thread = None
                    return
                self._requested = False
            try:
                self._write()
            except Exception:  # a full disk must not kill the writer: the next request or flush retries
                logger.exception("writing the curriculum index failed; retrying at the next write")
            self._last_end = time.monotonic()
