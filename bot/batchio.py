"""Batch: JSON lines in, one JSON answer record per line out (`faqbot batch`), for unattended runs.

Every non-blank input line gets exactly one line of valid JSON back, whatever it holds: a line that is not UTF-8,
not JSON, nested too deeply, with NaN or Infinity, or over `MAX_BATCH_LINE_BYTES` gets an error record with its
line number, and the batch goes on — one bad line in a file of thousands must not stop the rest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from .answer import FaqBot

#: The longest `batch` input line read (a question is cut at 1,000 characters anyway).
MAX_BATCH_LINE_BYTES = 1_000_000


def answer_lines(bot: FaqBot, stream: BinaryIO) -> Iterator[str]:
    """One line of strict JSON per non-blank input line of `stream`: the answer record, or an error record."""
    for number, raw in _batch_lines(stream):
        if raw is not None and not raw.strip():
            continue
        try:
            record = _batch_record(bot, number, raw)
            text = json.dumps(record, ensure_ascii=False, allow_nan=False)
        except Exception as err:  # noqa: BLE001 - one bad line must not stop an unattended batch
            record = _batch_error(number, f"could not answer ({type(err).__name__}: {str(err)[:200]})")
            text = json.dumps(record, ensure_ascii=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates from a "\ud800" escape: keep them escaped
            text = json.dumps(json.loads(text))
        yield text


def _batch_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) of each input line; None instead of the bytes of a line over the size bound."""
    number = 0
    while True:
        raw = stream.readline(MAX_BATCH_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if len(raw) > MAX_BATCH_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest of the line, a block at a time
                raw = stream.readline(MAX_BATCH_LINE_BYTES)
            yield number, None
        else:
            yield number, raw


def _batch_error(number: int, message: str) -> dict:
    return {"line": number, "status": "error", "answered": False, "results": [], "answer": None,
            "error": f"stdin line {number}: {message}"}


def _finite(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range for a JSON number")
    return value


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON; send a number or a string")


def _batch_record(bot: FaqBot, number: int, raw: bytes | None) -> dict:
    """The answer record for one input line, or an error record saying what is wrong with the line."""
    if raw is None:
        return _batch_error(number, f"line over {MAX_BATCH_LINE_BYTES:,} bytes; a question is at most a few kB")
    try:
        row = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite)
    except UnicodeDecodeError as err:
        return _batch_error(number, f"not valid utf-8 ({err.reason} at byte {err.start + 1}); send UTF-8 text")
    except RecursionError:
        return _batch_error(number, "JSON nested too deeply; send one flat object per line")
    except ValueError as err:
        return _batch_error(number, str(err)[:300])
    if not isinstance(row, dict) or not isinstance(row.get("q"), str):
        return _batch_error(number, 'each line must be a JSON object with a text field "q"')
    try:
        record = bot.ask(row["q"]).to_json()
    except Exception as err:  # noqa: BLE001 - one bad question must not stop an unattended batch
        record = _batch_error(number, f"could not answer ({type(err).__name__}: {str(err)[:200]})")
        del record["line"]
    return {**{k: v for k, v in row.items() if k != "q"}, **record}
