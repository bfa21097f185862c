"""The prediction log: every ``/predict`` answer, buffered in memory and appended to ``monitoring.predictions``.

A request only appends to a list under a lock; a daemon thread writes the buffer to Delta (one
append commit, :func:`pitlake.monitoring.predictions.write_predictions`) every ``flush_seconds`` or
once ``max_buffer`` records wait, and :meth:`PredictionLog.close` (the app's shutdown) writes what
is left. A failed write keeps the records in the buffer and is retried at the next flush, so a
Delta hiccup never costs a prediction; only a killed process loses at most one interval.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from pitlake.core.settings import Settings

log = logging.getLogger(__name__)


class PredictionLog:
    def __init__(self, settings: Settings, flush_seconds: float = 5.0, max_buffer: int = 5000) -> None:
        self.settings = settings
        self.flush_seconds = flush_seconds
        self.max_buffer = max_buffer
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.written = 0
        self.versions: list[int] = []
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def append(self, records: list[dict[str, Any]]) -> None:
        with self._lock:
            self._buffer.extend(records)
            full = len(self._buffer) >= self.max_buffer
        if full:
            self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._buffer)

    def flush(self) -> int:
        """Write the buffered records now (one Delta commit); returns how many were written."""
        from pitlake.monitoring.predictions import write_predictions

        with self._flush_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            if not batch:
                return 0
            try:
                version = write_predictions(self.settings, batch)
            except Exception as err:
                with self._lock:
                    self._buffer[:0] = batch  # keep them, oldest first, for the next flush
                self.last_error = str(err).splitlines()[0] if str(err) else type(err).__name__
                log.warning("prediction log: %d records kept for the next flush: %s", len(batch), self.last_error)
                return 0
            self.written += len(batch)
            if version is not None:
                self.versions.append(version)
            self.last_error = None
            return len(batch)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()
