"""Compare: what changed per query between a saved `faqbot eval --json` run and this one.

A trainer's edit helps some queries and can hurt others; aggregate metrics hide that. Each query of
the current run is matched to the baseline's by its text (normalised, `curate.text_key`) and sorted
into fixed (failed before, passes now), broken (passed before, fails now) and unchanged (still
passing / still failing, with the top entry change if any); queries only one side has are listed as
new or gone. "Fails" is `evaluate.Row.failed`: an in-scope query not answered with an expected entry,
or an out-of-scope query answered.
"""

from __future__ import annotations

import json
from pathlib import Path

from .curate import text_key
from .errors import BotError
from .evaluate import Report, Row

__all__ = ["compare", "failed", "format_comparison", "format_failures", "load_baseline"]


def failed(row: dict) -> bool:
    """`Row.failed` for one query of an `eval --json` file."""
    got = row.get("got") or []
    correct = bool(row.get("answered")) and bool(got) and got[0] in (row.get("expect") or [])
    return not correct if row.get("expect") else bool(row.get("answered"))


def load_baseline(path: Path) -> list[dict]:
    """The per-query rows of a saved `faqbot eval --json` output."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        rows = data["queries"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) and isinstance(r.get("q"), str) for r in rows):
            raise ValueError("`queries` must be a list of {q, expect, got, answered, ...}")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise BotError(f"{path}: not a saved `faqbot eval --json` output ({type(err).__name__}: {err}); "
                       "save one with `faqbot eval FILE --json > OLD.json`") from err
    return rows


def _brief(row: dict) -> dict:
    got = row.get("got") or []
    return {"q": row["q"], "lang": row.get("lang", ""), "expect": list(row.get("expect") or []),
            "top": got[0] if got else None, "answered": bool(row.get("answered")),
            "confidence": row.get("confidence"), "line": row.get("line")}


def compare(baseline: list[dict], report: Report) -> dict:
    """{"fixed", "broken", "still_failing", "still_passing", "new", "gone"}: lists of per-query summaries;
    fixed/broken/still_* items carry `before` and `now` (top entry, answered, confidence)."""
    before = {text_key(r["q"]): r for r in baseline}
    out: dict[str, list] = {"fixed": [], "broken": [], "still_failing": [], "still_passing": [], "new": [],
                            "gone": []}
    seen = set()
    for row in report.rows:
        now = row.to_json()
        key = text_key(row.q)
        seen.add(key)
        old = before.get(key)
        if old is None:
            out["new"].append(_brief(now))
            continue
        item = {**_brief(now), "before": {k: _brief(old)[k] for k in ("top", "answered", "confidence")},
                "now": {k: _brief(now)[k] for k in ("top", "answered", "confidence")}}
        was, now_failed = failed(old), row.failed
        kind = ("broken" if now_failed else "still_passing") if not was else ("still_failing" if now_failed
                                                                              else "fixed")
        out[kind].append(item)
    out["gone"] = [_brief(r) for k, r in before.items() if k not in seen]
    return out


def _describe(item: dict) -> str:
    def side(s: dict) -> str:
        return f"{s['top'] or '-'} {'answered' if s['answered'] else 'declined'} {s['confidence'] or 0:.2f}"

    want = " | ".join(item["expect"]) or "(out of scope)"
    return f"  {item['q'][:70]!r} [{item['lang']}] expect {want}: {side(item['before'])} -> {side(item['now'])}"


def format_comparison(diff: dict, baseline: str, listed: bool = True) -> str:
    """Counts per kind vs the baseline, then (when `listed`) every fixed and broken query and the changed
    failing ones."""
    counts = ", ".join(f"{len(diff[k])} {k.replace('_', ' ')}" for k in diff)
    lines = [f"Against {baseline}: {counts}"]
    if not listed:
        return "\n".join(lines)
    for kind in ("fixed", "broken"):
        if diff[kind]:
            lines.append(f"{kind.capitalize()} ({len(diff[kind])}):")
            lines += [_describe(i) for i in diff[kind]]
    moved = [i for i in diff["still_failing"] if i["before"]["top"] != i["now"]["top"]]
    if moved:
        lines.append(f"Still failing, top entry changed ({len(moved)}):")
        lines += [_describe(i) for i in moved]
    return "\n".join(lines)


def format_failures(rows: list[Row], title: str = "Failing queries", unlisted: str = "") -> str:
    """One line per failing query: file line, text, what was expected, what the bot did; or, given why they are
    `unlisted` (the test part, never tuned on), only how many there are."""
    bad = [r for r in rows if r.failed]
    if unlisted:
        return f"{title}: {len(bad)}, not listed: {unlisted}"
    lines = [f"{title} ({len(bad)}):"]
    for r in bad:
        want = " | ".join(r.expect) or "(out of scope)"
        did = f"answered {r.top}" if r.answered else f"declined (top {r.top or '-'})"
        lines.append(f"  line {r.line:>4} [{r.lang}] {r.q[:70]!r}: expect {want}, {did}, confidence "
                     f"{r.confidence:.2f}")
    return "\n".join(lines)
