"""Logging to stderr: human-readable by default, one JSON object per line with --log-format json."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

_STD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with `extra=` fields kept as keys (for log shippers)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "@timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "log.level": record.levelname.lower(),
            "log.logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["error.stack_trace"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log is noise for a receiver whose HTTP side only serves health and metrics.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


@dataclass
class _Window:
    start: float
    emitted: int = 0
    held: int = 0  # lines held back
    held_items: int = 0  # documents (or other items) those lines were about


class ThrottledLog:
    """At most ``burst`` lines per ``interval`` seconds for each kind of message (``key``).

    For conditions a flood can repeat without end: refusals of connections, documents refused per
    retry. The operator needs to know that it happens, how much, and what becomes of the data, not
    one line each; the first line of the next window says what was held back (exact totals are in
    the metrics).
    """

    _MAX_KEYS = 1024  # keys may name indices or error types: forget them all rather than grow without end

    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 10,
        interval: float = 10.0,
        unit: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``unit`` names what ``items`` counts ("document") for the held-back note."""
        self.logger = logger
        self.burst = burst
        self.interval = interval
        self.unit = unit
        self.clock = clock
        self._windows: dict[str, _Window] = {}

    def log(self, level: int, key: str, msg: str, *args: object, items: int = 0) -> bool:
        """Log now (True), or count the line as held back (False)."""
        now = self.clock()
        window = self._windows.get(key)
        previous: _Window | None = None
        if window is None or now - window.start >= self.interval:
            if window is None and len(self._windows) >= self._MAX_KEYS:
                self._windows.clear()
            previous, window = window, _Window(now)
            self._windows[key] = window
        if window.emitted >= self.burst:
            window.held += 1
            window.held_items += items
            return False
        window.emitted += 1
        if previous is not None and previous.held:
            about = f" about {previous.held_items} {self.unit}(s)" if self.unit else ""
            msg += f" [%d more such message(s){about} held back in the last %.0f s]"
            args = (*args, previous.held, now - previous.start)
        self.logger.log(level, msg, *args)
        return True

    def warning(self, key: str, msg: str, *args: object, items: int = 0) -> bool:
        return self.log(logging.WARNING, key, msg, *args, items=items)

    def error(self, key: str, msg: str, *args: object, items: int = 0) -> bool:
        return self.log(logging.ERROR, key, msg, *args, items=items)
