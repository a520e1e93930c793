"""CLI for trainers: `faqbot review | alt add | oos add | explain` — registered on the main `faqbot` group.

The loop they make: `review` shows what went wrong, `review --accept N` (or `alt add` / `oos add`) fixes
it in the data, `build` reuses cached vectors (seconds), `eval` checks the regressions and the test set.
Like bot/cli.py this is a thin edge: library errors become one line on stderr and exit status 1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

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
