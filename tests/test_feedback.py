"""Feedback store: rows survive restarts and concurrent writers, bad databases explain themselves, CSV is Excel-safe."""

from __future__ import annotations

import csv
import io
import multiprocessing
import sqlite3
import threading

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.errors import BotError
from bot.feedback import COLUMNS, Feedback, FeedbackError, FeedbackStore, excel_safe


def _rate(store: FeedbackStore, n: int, session: str = "s") -> list[int]:
    return [store.add(Feedback(kind="up", question=f"q{i}", entry_id=f"qa-{i}", answered=True, confidence=0.9,
                               lang="ja", session=session)) for i in range(n)]


def test_rows_are_stored_with_every_field_and_survive_a_restart(tmp_path):
    path = tmp_path / "nested" / "feedback.sqlite3"  # the folder is created too
    store = FeedbackStore(path)
    store.add(Feedback(kind="down", question="RDPのポートを変更する意味は？", entry_id="qa-4", answered=True,
                       confidence=0.87, lang="ja", session="abc"))
    store.add(Feedback(kind="unanswered", question="今日の天気は？", confidence=0.1, lang="ja", session="abc"))
    del store
    rows = FeedbackStore(path).rows()  # a new process would see the same file
    assert [(r["kind"], r["entry_id"], r["answered"], r["lang"], r["session"]) for r in rows] == [
        ("down", "qa-4", 1, "ja", "abc"), ("unanswered", "", 0, "ja", "abc")]
    assert rows[0]["question"] == "RDPのポートを変更する意味は？" and rows[0]["confidence"] == pytest.approx(0.87)
    assert rows[0]["created_at"].endswith("Z")
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        FeedbackStore(tmp_path / "f.db").add(Feedback(kind="meh", question="q"))


def test_concurrent_threads_lose_no_row(tmp_path):
    store = FeedbackStore(tmp_path / "f.db")
    threads = [threading.Thread(target=_rate, args=(store, 25, f"t{i}")) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = store.rows()
    assert len(rows) == 12 * 25
    assert {r["session"] for r in rows} == {f"t{i}" for i in range(12)}


def _write_from_process(path: str, session: str) -> None:
    _rate(FeedbackStore(path), 30, session)


def test_concurrent_processes_lose_no_row(tmp_path):
    path = str(tmp_path / "f.db")
    FeedbackStore(path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_from_process, args=(path, f"p{i}")) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert len(FeedbackStore(path).rows()) == 4 * 30


def test_a_locked_database_says_so_and_what_to_do(tmp_path):
    path = tmp_path / "f.db"
    store = FeedbackStore(path, timeout=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(FeedbackError, match="locked by another program") as err:
            _rate(store, 1)
        assert isinstance(err.value, BotError) and str(path) in str(err.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert _rate(store, 1)  # works again once released


def test_a_file_that_is_not_a_database_says_so_and_what_to_do(tmp_path):
    path = tmp_path / "f.db"
    path.write_bytes(b"this is not sqlite " * 100)
    with pytest.raises(FeedbackError, match="damaged or not a SQLite file.*move it aside"):
        FeedbackStore(path)


def test_an_unusable_path_says_so(tmp_path):
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(FeedbackError, match="FAQBOT_FEEDBACK_DB"):
        FeedbackStore(tmp_path / "dir.db")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FeedbackError, match="can't create the folder"):
        FeedbackStore(tmp_path / "file" / "f.db")


@pytest.mark.parametrize("cell, shown", [
    ("=HYPERLINK(\"http://evil\",\"x\")", "'=HYPERLINK(\"http://evil\",\"x\")"),
    ("+1+1", "'+1+1"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    ("RDPのポート", "RDPのポート"),
    ("a=b", "a=b"),
    (0.5, 0.5),
])
def test_excel_safe(cell, shown):
    assert excel_safe(cell) == shown


def test_export_csv_neutralises_formulas(tmp_path):
    store = FeedbackStore(tmp_path / "f.db")
    store.add(Feedback(kind="unanswered", question="=cmd|' /C calc'!A0", session="@s", lang="ja"))
    store.add(Feedback(kind="up", question="管理者パスワードの保管は？", entry_id="qa-5", answered=True,
                       confidence=0.99, lang="ja"))
    out = io.StringIO()
    assert store.export_csv(out) == 2
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == list(COLUMNS)
    record = dict(zip(COLUMNS, rows[1], strict=True))
    assert record["question"] == "'=cmd|' /C calc'!A0" and record["session"] == "'@s"
    assert dict(zip(COLUMNS, rows[2], strict=True))["question"] == "管理者パスワードの保管は？"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_cli_feedback_export(tmp_path):
    db = tmp_path / "var" / "f.db"
    FeedbackStore(db).add(Feedback(kind="down", question="+danger", entry_id="qa-4", answered=True, lang="en"))
    out = tmp_path / "feedback.csv"
    result = CliRunner().invoke(main, ["feedback", "export", "--out", str(out)], env={"FAQBOT_FEEDBACK_DB": str(db)})
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8-sig")
    assert "'+danger" in text and "qa-4" in text


def test_cli_feedback_export_of_a_damaged_database_is_one_clear_line(tmp_path):
    db = tmp_path / "f.db"
    db.write_bytes(b"garbage" * 50)
    result = CliRunner().invoke(main, ["feedback", "export"], env={"FAQBOT_FEEDBACK_DB": str(db)})
    assert result.exit_code == 1
    assert "damaged or not a SQLite file" in result.output and "Traceback" not in result.output
