"""Log safety: no question text in the log, whoever logs it, and no log line longer than a bound.

Questions may hold patient or staff details, so faqbot itself logs what was answered, never what was asked.
The framework is less careful: Gradio prints an event's inputs ("Received inputs: [...]") with the traceback
of a malformed API call, and any exception message may echo a value. `install()` therefore

- wraps the log record factory, so every record of every logger (root, gradio, uvicorn, httpx, faqbot) is
  cleaned when it is made: text after a known echo of inputs is cut, URLs lose their query string in the
  access log, each line is cut to `MAX_LINE_CHARS` and a record (traceback included) to `MAX_LINES` lines.
  A factory rather than a filter on named loggers: a logger's filter misses its children's records, and
  uvicorn replaces its handlers (and their filters) when the server starts;
- routes the tracebacks Gradio prints straight to stderr (`traceback.print_exc()`) into that same log.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from types import ModuleType

__all__ = ["MAX_LINE_CHARS", "MAX_LINES", "clean", "install"]

MAX_LINE_CHARS = 1_000
MAX_LINES = 60
#: Where framework messages start echoing a request's values; everything after it is dropped.
_ECHO = re.compile(r"Received inputs:|value (?:passed to|returned from) the event handler was:"
                   r"|Request headers dictionary:|Query parameters:")
REDACTED = "[inputs not logged]"
#: Gradio modules that call traceback.print_exc() on a failed event.
_PRINTING_MODULES = ("gradio.queueing", "gradio.routes", "gradio.route_utils", "gradio.utils", "gradio.blocks")


def clean(text: str) -> str:
    """`text` without echoed inputs, each line at most MAX_LINE_CHARS, at most MAX_LINES lines (the last kept)."""
    echo = _ECHO.search(text)
    if echo:
        text = text[:echo.end()] + " " + REDACTED
    lines = text.split("\n")
    if len(lines) > MAX_LINES:
        cut = len(lines) - MAX_LINES + 1
        lines = [*lines[:5], f"[... {cut} lines not logged ...]", *lines[cut + 5:]]
    return "\n".join(line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + " [...]" for line in lines)


def _clean_record(record: logging.LogRecord) -> logging.LogRecord:
    if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
        # uvicorn's access formatter reads the args: (client, method, path with query, http version, status)
        client, method, path, version, status = record.args
        record.args = (client, method, clean(str(path).split("?", 1)[0]), version, status)
        return record
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string must not stop logging
        message = f"{record.msg!s} (unformattable arguments)"
    record.msg, record.args = clean(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = clean("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    if record.stack_info:
        record.stack_info = clean(record.stack_info)
    return record


class _Traceback:
    """Stands in for the `traceback` module inside Gradio: print_exc() logs (and so is cleaned) instead."""

    def __getattr__(self, name: str) -> object:
        return getattr(traceback, name)

    @staticmethod
    def print_exc(limit: int | None = None, file: object = None, chain: bool = True) -> None:  # noqa: ARG004
        logging.getLogger("gradio").error("the web framework failed to handle a request", exc_info=True)


def install() -> None:
    """Clean every log record from now on, and send Gradio's printed tracebacks to the log; idempotent."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "faqbot_safe", False):
        def safe_factory(*args: object, **kwargs: object) -> logging.LogRecord:
            return _clean_record(factory(*args, **kwargs))

        safe_factory.faqbot_safe = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(safe_factory)
    for name in _PRINTING_MODULES:
        module = sys.modules.get(name)
        if isinstance(module, ModuleType) and isinstance(getattr(module, "traceback", None), ModuleType):
            module.traceback = _Traceback()  # type: ignore[attr-defined]
