"""A log file written by its own thread, so the event loop never waits for a disk.

``write(line)`` puts the line on a queue (well under a microsecond) and returns. The writer
thread takes what has queued, writes it in one call and flushes, so a line reaches the file
within milliseconds of the response. It reopens the file on :meth:`reopen` (SIGUSR1) and by
itself when the path no longer names the file it has open (rotated away by logrotate or
``mv``), checked about once a second. :meth:`close` (a stop, or a reload that turns the log
off or moves it) writes every line queued before it, then closes: a graceful stop loses
nothing. If the disk cannot keep up, at most ``max_queued`` lines wait; beyond that lines are
dropped and counted rather than growing memory without bound.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time

log = logging.getLogger("albatross.logs")

_REOPEN = object()
_STOP = object()


class LogFile:
    def __init__(self, path: str, *, max_queued: int = 100_000) -> None:
        self.path = path
        self.max_queued = max_queued
        self.dropped = 0
        self.written = 0
        self._queued = 0
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.probe(path)  # in the caller's thread: a path that cannot be opened fails now
        self._file = self._open()
        self._thread = threading.Thread(target=self._run, name=f"log {os.path.basename(path)}", daemon=True)
        self._thread.start()

    @staticmethod
    def probe(path: str) -> None:
        """Raise OSError (naming ``path``) if it cannot be opened for appending, creating its directory."""
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with open(path, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, path) from None

    def _open(self):  # type: ignore[no-untyped-def]
        return open(self.path, "a", encoding="utf-8", errors="backslashreplace")

    def write(self, line: str) -> None:
        if self._queued >= self.max_queued:
            self.dropped += 1
            return
        self._queued += 1
        self._queue.put(line)

    def reopen(self) -> None:
        self._queue.put(_REOPEN)

    def close(self, timeout: float = 10.0) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _rotated(self) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        mine = os.fstat(self._file.fileno())
        return (on_disk.st_ino, on_disk.st_dev) != (mine.st_ino, mine.st_dev)

    def _run(self) -> None:
        checked = time.monotonic()
        while True:
            if time.monotonic() - checked >= 1.0:
                checked = time.monotonic()
                if self._rotated():
                    self._swap()
            try:
                first = self._queue.get(timeout=1.0)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < 4096:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            lines = [item for item in batch if isinstance(item, str)]
            if lines:
                self._queued -= len(lines)
                try:
                    self._file.write("".join(lines))
                    self._file.flush()
                    self.written += len(lines)
                except OSError as exc:
                    self.dropped += len(lines)
                    log.error("cannot write %s: %s (%d lines dropped)", self.path, exc, len(lines))
            if _REOPEN in batch:
                self._swap()
            if _STOP in batch:
                self._file.close()
                return

    def _swap(self) -> None:
        try:
            fresh = self._open()
        except OSError as exc:
            log.error("cannot reopen %s: %s (still writing to the old file)", self.path, exc)
            return
        self._file.close()
        self._file = fresh
