"""CLI for trainers: `faqbot review | alt add | oos add | explain | eval` — registered on the main `faqbot` group.

The loop they make: `review` shows what went wrong, `review --accept N` (or `alt add` / `oos add`) fixes
it in the data, `build` reuses cached vectors (seconds), `eval` checks the regressions and the test set.
Like bot/cli.py this is a thin edge: library errors become one line on stderr and exit status 1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from .cli import _emit, _friendly, _open_bot, _settings, main

#: Below this score a suggested entry is only the least bad one: the question may be out of scope.
WEAK_SUGGESTION = 0.1
NEXT_STEPS = "Next: `faqbot build` (reuses cached vectors: seconds), then `faqbot eval data/eval/regressions.jsonl`."


def _since(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per group per line.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
              help="Only questions recorded from this date (UTC) on.")
@click.option("--accept", type=int, metavar="N", help="Add group N's question as an alternate of its suggested "
              "entry (or --to ID) and keep it as a regression query.")
@click.option("--reject", type=int, metavar="N", help="Mark group N reviewed without changing the data.")
@click.option("--to", "to", metavar="ID", help="With --accept: the entry to add the question to.")
@click.option("--limit", type=int, default=20, show_default=True, help="Groups shown (text output).")
@click.pass_context
@_friendly
def review(ctx: click.Context, as_json: bool, since: datetime | None, accept: int | None, reject: int | None,
           to: str | None, limit: int) -> None:
    """The review queue: unanswered, ambiguous, shaky and 👎 questions, grouped, each with a suggested entry."""
    from pathlib import Path

    from .review import ReviewState, build_queue, state_path
    from .review import accept as accept_group
    from .review import open_bot as open_review_bot
    from .review import reject as reject_group
    from .store import open_store

    settings = _settings(ctx)
    if accept is not None and reject is not None:
        raise click.UsageError("use --accept or --reject, not both")
    if to and accept is None:
        raise click.UsageError("--to goes with --accept N")
    target = str(settings.feedback_db)
    if not target.startswith(("postgresql://", "postgres://")) and not Path(target).is_file():
        click.echo(f"No feedback database at {target} yet: nothing to review (set FAQBOT_FEEDBACK_DB to "
                   "where `faqbot serve` keeps it).", err=True)
        return
    store = open_store(target)
    try:
        outcomes, votes = store.outcomes(_since(since)), store.votes(_since(since))
    finally:
        store.close()
    state = ReviewState(state_path(target))
    bot, stale = open_review_bot(settings)
    if stale:
        click.echo("Note: the index is older than the data; suggestions come from the last build (`faqbot build`).",
                   err=True)
    groups = build_queue(bot, outcomes, votes, state)
    number = accept if accept is not None else reject
    if number is not None:
        if not 1 <= number <= len(groups):
            raise click.UsageError(f"there is no group {number}: the queue has {len(groups)} (run `faqbot review`)")
        group = groups[number - 1]
        if accept is not None:
            done = accept_group(settings.data_dir, group, state, to)
            click.echo(f"Accepted group {number}: added {done['question']!r} to {done['entry']}.alt_{done['lang']}"
                       + (" and to data/eval/regressions.jsonl." if done["regression"] else "."))
            click.echo(NEXT_STEPS)
        else:
            reject_group(group, state)
            click.echo(f"Rejected group {number} ({group.kind}, {group.count} question(s)); it won't come back.")
        return
    if as_json:
        for i, g in enumerate(groups, start=1):
            _emit(g.to_json(i))
        return
    if not groups:
        click.echo(f"Nothing to review ({len(outcomes)} outcomes, {len(votes)} votes read).")
        return
    click.echo(f"{len(groups)} group(s) to review from {len(outcomes)} outcomes and {len(votes)} votes"
               + (f"; the first {limit}:" if len(groups) > limit else ":"))
    for i, g in enumerate(groups[:limit], start=1):
        more = f" (+{len(g.questions) - 1} similar)" if len(g.questions) > 1 else ""
        click.echo(f"\n[{i}] {g.kind} x{g.count} [{g.lang}] {g.questions[0][:90]!r}{more}")
        if g.voted_entry:
            click.echo(f"    voted down: {g.voted_entry}")
        if g.suggested:
            s = g.suggested
            click.echo(f"    suggested: {s['id']} ({s['score']:.2f}) {s['question'][:90]}")
            if s["score"] < WEAK_SUGGESTION:
                click.echo(f"    (weak: if no entry answers it, `faqbot oos add {g.lang or 'ja'} \"...\"` and "
                           f"--reject {i})")
    click.echo("\nAccept: faqbot review --accept N [--to ID]   Reject: faqbot review --reject N")


@main.group()
def alt() -> None:
    """Alternate questions of entries (data/bilingual.yaml)."""


@alt.command("add")
@click.argument("entry_id")
@click.argument("lang", type=click.Choice(["ja", "en"]))
@click.argument("question")
@click.option("--regression/--no-regression", default=True, show_default=True,
              help="Also keep the question in data/eval/regressions.jsonl.")
@click.pass_context
@_friendly
def alt_add(ctx: click.Context, entry_id: str, lang: str, question: str, regression: bool) -> None:
    """Append QUESTION to alt_LANG of ENTRY_ID, keeping the file's comments and layout."""
    from .curate import add_alternate, add_regression

    data_dir = _settings(ctx.find_root()).data_dir
    added = add_alternate(data_dir, entry_id, lang, question)
    kept = regression and add_regression(data_dir, added, lang, [entry_id])
    click.echo(f"Added {added!r} to {entry_id}.alt_{lang}" + (" (and a regression query)." if kept else "."))
    click.echo(NEXT_STEPS)


@main.group()
def oos() -> None:
    """Out-of-scope anchor questions (data/out_of_scope.yaml)."""


@oos.command("add")
@click.argument("lang", type=click.Choice(["ja", "en"]))
@click.argument("question")
@click.option("--regression/--no-regression", default=True, show_default=True,
              help="Also keep it in data/eval/regressions.jsonl as a question the bot must not answer.")
@click.pass_context
@_friendly
def oos_add(ctx: click.Context, lang: str, question: str, regression: bool) -> None:
    """Append QUESTION to the LANG list of out-of-scope anchors."""
    from .curate import add_out_of_scope, add_regression

    data_dir = _settings(ctx.find_root()).data_dir
    added = add_out_of_scope(data_dir, lang, question)
    kept = regression and add_regression(data_dir, added, lang, [])
    click.echo(f"Added {added!r} to the {lang} out-of-scope anchors" + (" (and a regression query)." if kept else "."))
    click.echo(NEXT_STEPS)


@main.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Everything as one JSON object.")
@click.option("--top", type=click.IntRange(1, 20), default=5, show_default=True, help="Entries explained.")
@click.pass_context
@_friendly
def explain(ctx: click.Context, question: str, as_json: bool, top: int) -> None:
    """The test pane: scores, every signal's contribution, the matched text, the threshold and the status."""
    from .explain import explain as run_explain
    from .explain import format_explanation

    data = run_explain(_open_bot(_settings(ctx)), question, top=top)
    click.echo(json.dumps(data, ensure_ascii=False) if as_json else format_explanation(data))


@main.command("eval")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the metrics and per-query rows as one JSON object.")
@click.option("--baseline", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="A saved earlier `eval --json` output: list the queries fixed, broken and unchanged since.")
@click.option("--regressions/--no-regressions", default=True, show_default=True,
              help="Also check data/eval/regressions.jsonl (questions fixed by trainers must stay fixed).")
@click.option("--show-failures", is_flag=True,
              help="List the failing queries of the test part too (by default only its counts are shown).")
@click.pass_context
@_friendly
def eval_(ctx: click.Context, file: Path, as_json: bool, baseline: Path | None, regressions: bool,
          show_failures: bool) -> None:
    """Retrieval quality on a labelled query file ({"q", "lang", "expect": [ids]} per line).

    The test part is never tuned on: its table counts failures without listing them (alternates written for them
    would make it a tuning set; docs/evaluation.md, round 7). --show-failures and --json list them on purpose."""
    from .compare import compare, format_comparison, format_failures, load_baseline
    from .curate import REGRESSIONS_FILE, TEST_FILE
    from .eval_report import format_report
    from .evaluate import evaluate_file

    settings = _settings(ctx)
    listed = show_failures or file.resolve() != (settings.data_dir / TEST_FILE).resolve()
    old = load_baseline(baseline) if baseline else None  # a bad baseline fails before the slow part
    bot = _open_bot(settings)
    report = evaluate_file(bot, file)
    extra = settings.data_dir / REGRESSIONS_FILE
    fixed = evaluate_file(bot, extra) if regressions and extra.is_file() and extra.resolve() != file.resolve() \
        else None
    if as_json:
        record = report.to_json()
        if old is not None:
            record["baseline"] = {"file": str(baseline), **compare(old, report)}
        if fixed is not None:
            record["regressions"] = {"file": str(extra), "n_queries": len(fixed.rows),
                                     "failing": [r.to_json() for r in fixed.failures]}
        click.echo(json.dumps(record, ensure_ascii=False))
        return
    click.echo(format_report(report))
    click.echo(format_failures(report.rows, unlisted="" if listed else
                               f"{file} is the test part, never tuned on (--show-failures lists them; fix what "
                               "tune.jsonl and the review queue show instead)."))
    if fixed is not None:
        click.echo(f"\nRegressions ({extra}): {len(fixed.rows) - len(fixed.failures)} of {len(fixed.rows)} still "
                   "fixed" + ("" if not fixed.failures else "\n" + format_failures(fixed.rows, "Broken again")))
    if old is not None:
        click.echo("\n" + format_comparison(compare(old, report), str(baseline), listed))
