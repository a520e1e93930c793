"""The feedback/outcome store on real SQLite files and a real PostgreSQL: write-behind, idempotent, loses no row."""

from __future__ import annotations

import csv
import io
import logging
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from bot import store as store_module
from bot import store_writer
from bot.cli import main
from bot.errors import BotError
from bot.store import EXPORT_COLUMNS, SCHEMA_VERSION, StoreError, excel_safe, open_store, utc_text

SECRET = "患者 山田太郎 の端末がランサムウェアに感染"  # a question with personal details: must never reach a log


def outcome(key: str | None = None, **changes) -> dict:
    row = {"key": key or uuid.uuid4().hex, "session": "s1", "lang": "ja", "question": "RDPのポートを変更する意味は？",
           "status": "answered", "entry_id": "qa-4", "confidence": 0.91, "margin": 0.3,
           "top": [{"id": "qa-4", "score": 0.91}, {"id": "qa-5", "score": 0.2}, {"id": "qa-1", "score": 0.1}],
           "build": "20261126-abc"}
    return {**row, **changes}


def vote(key: str, rating: str | None, **changes) -> dict:
    row = {"key": key, "session": "s1", "rating": rating, "reason": "", "comment": "", "question": "q",
           "entry_id": "qa-4", "lang": "ja", "confidence": 0.91, "status": "answered"}
    return {**row, **changes}


@pytest.fixture
def store(store_target):
    opened = open_store(store_target)
    yield opened
    opened.close()


def sqlite_store(tmp_path, **kwargs):
    return open_store(tmp_path / "var" / "feedback.sqlite3", **kwargs)


def test_writes_return_at_once_and_arrive_with_every_field(store):
    pendings = [store.record_outcome(outcome(f"k{i}", question=f"質問{i}")) for i in range(300)]
    assert all(p.wait(20) for p in pendings)
    rows = store.outcomes()
    assert [r["key"] for r in rows] == [f"k{i}" for i in range(300)]  # oldest first
    first = rows[0]
    assert (first["question"], first["status"], first["entry_id"], first["lang"], first["session"], first["build"]) == (
        "質問0", "answered", "qa-4", "ja", "s1", "20261126-abc")
    assert first["confidence"] == pytest.approx(0.91) and first["margin"] == pytest.approx(0.3)
    assert first["top"] == outcome()["top"]
    assert first["created_at"].endswith("Z") and datetime.fromisoformat(first["created_at"]) <= datetime.now(UTC)


def test_a_retried_write_never_duplicates(store):
    key = uuid.uuid4().hex
    for _ in range(3):
        store.record_outcome(outcome(key, status="no_match"))
    store.record_outcome(outcome(key, status="answered"))  # a retry after a lost acknowledgement: first one wins
    store.set_vote(vote(key, "up"))
    store.set_vote(vote(key, "up"))
    assert store.flush(20)
    assert [(r["key"], r["status"]) for r in store.outcomes()] == [(key, "no_match")]
    assert [(v["key"], v["rating"]) for v in store.votes()] == [(key, "up")]


def test_a_later_vote_replaces_the_earlier_one_and_none_removes_it(store):
    a, b = uuid.uuid4().hex, uuid.uuid4().hex
    store.set_vote(vote(a, "up"))
    assert store.flush(20)
    created = store.votes()[0]["created_at"]
    store.set_vote(vote(a, "down", reason="outdated", comment="=もう古い"))
    store.set_vote(vote(b, "up"))
    store.set_vote(vote(b, None))
    assert store.flush(20)
    [row] = store.votes()
    assert (row["key"], row["rating"], row["reason"], row["comment"]) == (a, "down", "outdated", "=もう古い")
    assert row["created_at"] == created and row["updated_at"] > created


def test_an_older_write_arriving_late_does_not_overwrite_a_newer_vote(store):
    key = uuid.uuid4().hex
    old = store_module.vote_row(vote(key, "up"))
    new = store_module.vote_row(vote(key, "down"))
    store.backend.write([("vote", new)])
    store.backend.write([("vote", old), ("unvote", old)])  # a replayed spill file, older than what is stored
    assert [v["rating"] for v in store.votes()] == ["down"]


def test_bad_rows_are_refused_and_nothing_is_queued(store):
    missing = {k: v for k, v in outcome().items() if k != "key"}
    for bad in ({**outcome(), "key": ""}, missing, {**outcome(), "key": 42}, outcome("x" * 201),
                outcome(status="maybe"), outcome(top=[{"id": "x"}]), outcome(confidence="high")):
        with pytest.raises(StoreError):
            store.record_outcome(bad)
    for bad in (vote("k", "sideways"), vote("k", "up", reason="because"), vote("", "up")):
        with pytest.raises(StoreError):
            store.set_vote(bad)
    assert store.flush(20)
    assert store.outcomes() == [] and store.votes() == []
    assert isinstance(StoreError("x"), BotError)


def test_schema_version_is_recorded(store):
    store.record_outcome(outcome())
    assert store.flush(20)
    query = "SELECT version FROM schema_version"
    if store.backend.where.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(store.backend._pool.conninfo) as conn:
            assert conn.execute(query).fetchall() == [(SCHEMA_VERSION,)]
    else:
        assert sqlite3.connect(store.backend.path).execute(query).fetchall() == [(SCHEMA_VERSION,)]


def test_prune_deletes_rows_older_than_keep_days(store_target):
    with open_store(store_target, keep_days=30) as store:
        old = utc_text(datetime.now(UTC) - timedelta(days=31))
        store.record_outcome(outcome("old", created_at=old))
        store.record_outcome(outcome("new"))
        assert store.flush(20)
        assert store.prune() == 1
        assert [r["key"] for r in store.outcomes()] == ["new"]
        since = datetime.now(UTC) + timedelta(seconds=5)
        assert store.outcomes(since=since) == [] and store.votes(since=since) == []


def test_prune_runs_at_open_and_keep_days_0_keeps_everything(tmp_path, monkeypatch):
    old = utc_text(datetime.now(UTC) - timedelta(days=400))
    with sqlite_store(tmp_path, keep_days=0) as store:
        store.record_outcome(outcome("ancient", created_at=old))
        assert store.flush(10) and store.prune() == 0
    monkeypatch.setenv("FAQBOT_KEEP_DAYS", "90")
    with sqlite_store(tmp_path) as store:  # the writer prunes when it starts
        deadline = time.monotonic() + 10
        while store.outcomes() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.outcomes() == [] and store.keep_days == 90


@pytest.mark.parametrize("value", ["-1", "ninety", "1.5"])
def test_a_bad_keep_days_is_refused(tmp_path, monkeypatch, value):
    monkeypatch.setenv("FAQBOT_KEEP_DAYS", value)
    with pytest.raises(StoreError, match="FAQBOT_KEEP_DAYS"):
        sqlite_store(tmp_path)


def test_a_deleted_sqlite_file_is_recreated_and_later_rows_kept(tmp_path, caplog):
    with sqlite_store(tmp_path) as store:
        store.record_outcome(outcome("before"))
        assert store.flush(10)
        for suffix in ("", "-wal", "-shm"):
            (tmp_path / "var" / f"feedback.sqlite3{suffix}").unlink(missing_ok=True)
        after = [store.record_outcome(outcome(f"after{i}")) for i in range(5)]
        assert all(p.wait(10) for p in after)
        store.set_vote(vote("after0", "down")).wait(10)
        assert [r["key"] for r in store.outcomes()] == [f"after{i}" for i in range(5)]
        assert [v["key"] for v in store.votes()] == ["after0"]
    assert "deleted or replaced" in caplog.text


def test_a_deleted_folder_is_recreated_too(tmp_path):
    import shutil

    with sqlite_store(tmp_path) as store:
        store.record_outcome(outcome("before")).wait(10)
        shutil.rmtree(tmp_path / "var")
        assert store.record_outcome(outcome("after")).wait(10)
        assert [r["key"] for r in store.outcomes()] == ["after"]


def test_a_locked_sqlite_file_delays_only_the_writer(tmp_path, caplog):
    with sqlite_store(tmp_path) as store:
        store.record_outcome(outcome("first")).wait(10)
        holder = sqlite3.connect(store.backend.path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # a backup tool or a DB browser
        released = threading.Event()
        try:
            start = time.perf_counter()
            pending = store.record_outcome(outcome("while-locked", question=SECRET))
            voted = store.set_vote(vote("first", "down", question=SECRET))
            returned_s = time.perf_counter() - start
            assert not released.is_set()  # the calls came back while the lock was still held
            assert not pending.wait(0.8) and not store.flush(0.2)  # not durable yet: still queued
        finally:
            released.set()
            holder.execute("ROLLBACK")
            holder.close()
        print(f"\nrecord_outcome + set_vote on a locked database returned in {returned_s * 1000:.2f} ms")
        assert pending.wait(10) and voted.wait(10)
        assert [r["key"] for r in store.outcomes()] == ["first", "while-locked"]
    assert "locked" in caplog.text and SECRET not in caplog.text


def test_a_damaged_sqlite_file_is_moved_aside_and_a_new_one_used(tmp_path, caplog):
    path = tmp_path / "var" / "feedback.sqlite3"
    path.parent.mkdir()
    path.write_bytes(b"this is not sqlite " * 100)
    with open_store(path) as store:
        assert store.record_outcome(outcome("fresh")).wait(10)
        assert [r["key"] for r in store.outcomes()] == ["fresh"]
    [aside] = path.parent.glob("feedback.sqlite3.damaged-*")
    assert aside.read_bytes() == b"this is not sqlite " * 100  # kept for recovery
    assert "moved it aside" in caplog.text


def test_an_unusable_sqlite_path_says_so(tmp_path):
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match="FAQBOT_FEEDBACK_DB"):
        open_store(tmp_path / "dir.db")
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="can't create the folder"):
        open_store(tmp_path / "file" / "f.db")


def test_rows_of_the_old_feedback_table_are_migrated_once(tmp_path):
    path = tmp_path / "var" / "feedback.sqlite3"
    path.parent.mkdir()
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, kind TEXT, "
                "session TEXT, lang TEXT, question TEXT, entry_id TEXT, answered INTEGER, confidence REAL)")
    rows = [("2026-01-05T10:00:00Z", "down", "s", "en", "Does changing the RDP port help?", "qa-4", 1, 0.8),
            ("2026-01-05T10:01:00Z", "unanswered", "s", "ja", "今日の天気は？", "", 0, 0.1)]
    old.executemany("INSERT INTO feedback (created_at, kind, session, lang, question, entry_id, answered, confidence) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    with open_store(path, keep_days=0) as store:
        assert store.flush(10)
        store.record_outcome(outcome("new")).wait(10)
        [v] = store.votes()
        assert (v["key"], v["rating"], v["question"], v["entry_id"], v["created_at"]) == (
            "legacy-1", "down", "Does changing the RDP port help?", "qa-4", "2026-01-05T10:00:00.000000Z")
        assert [(r["key"], r["status"], r["question"]) for r in store.outcomes()] == [
            ("legacy-2", "no_match", "今日の天気は？"), ("new", "answered", outcome()["question"])]
    old.execute("INSERT INTO feedback (created_at, kind, session, lang, question, entry_id, answered, confidence) "
                "VALUES ('2026-01-06T00:00:00Z', 'up', 's', 'ja', 'q3', 'qa-5', 1, 0.9)")
    with open_store(path, keep_days=0) as store:  # reopened: copied rows are not copied again, the new one is
        store.record_outcome(outcome("newer")).wait(10)
        assert [v["key"] for v in store.votes()] == ["legacy-1", "legacy-3"]
        assert len(store.outcomes()) == 3
    assert old.execute("SELECT count(*) FROM feedback").fetchone() == (3,)  # the old table is kept as it was


def test_cli_export_of_an_old_database_includes_its_rows(tmp_path):
    path = tmp_path / "feedback.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, kind TEXT, "
                "session TEXT, lang TEXT, question TEXT, entry_id TEXT, answered INTEGER, confidence REAL)")
    old.execute("INSERT INTO feedback (created_at, kind, session, lang, question, entry_id, answered, confidence) "
                "VALUES ('2026-01-05T10:00:00Z', 'down', 's', 'en', '+danger', 'qa-4', 1, 0.8)")
    old.close()
    result = CliRunner().invoke(main, ["feedback", "export"], env={"FAQBOT_FEEDBACK_DB": str(path),
                                                                   "FAQBOT_KEEP_DAYS": "0"})
    assert result.exit_code == 0, result.output
    assert "vote,1,legacy-1,2026-01-05T10:00:00.000000Z" in result.output and "'+danger" in result.output


def test_an_overflowing_queue_spills_to_disk_and_is_replayed(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(store_writer, "MAX_QUEUE", 5)
    with sqlite_store(tmp_path) as store:
        store.record_outcome(outcome("k0")).wait(10)
        holder = sqlite3.connect(store.backend.path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            pendings = [store.record_outcome(outcome(f"k{i}")) for i in range(1, 21)]
            pendings.append(store.set_vote(vote("k20", "up")))
            [spill] = (tmp_path / "var").glob("feedback.sqlite3.spill-*.jsonl")
            assert len(spill.read_text(encoding="utf-8").splitlines()) >= 15
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert all(p.wait(15) for p in pendings) and store.flush(10)
        assert [r["key"] for r in store.outcomes()] == [f"k{i}" for i in range(21)]
        assert [v["key"] for v in store.votes()] == ["k20"]
        assert not list((tmp_path / "var").glob("*.jsonl"))
    assert "nothing is lost" in caplog.text


def test_rows_the_database_did_not_take_before_close_are_written_at_the_next_start(tmp_path):
    store = sqlite_store(tmp_path)
    store.record_outcome(outcome("k0")).wait(10)
    holder = sqlite3.connect(store.backend.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        store.record_outcome(outcome("k1"))
        store.set_vote(vote("k1", "down"))
        store.close(timeout=0.5)
        assert list((tmp_path / "var").glob("feedback.sqlite3.spill-*.jsonl"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with sqlite_store(tmp_path) as again:
        assert again.flush(15)
        assert [r["key"] for r in again.outcomes()] == ["k0", "k1"]
        assert [v["key"] for v in again.votes()] == ["k1"]
    assert not list((tmp_path / "var").glob("*.jsonl"))


def test_an_unreachable_postgresql_keeps_the_rows(tmp_path, monkeypatch):
    from bot.childserver import free_port

    monkeypatch.setenv("FAQBOT_SPILL_DIR", str(tmp_path))
    store = open_store(f"postgresql://nobody:secret-pw@127.0.0.1:{free_port()}/none")
    start = time.perf_counter()
    pending = store.record_outcome(outcome("k1"))
    assert time.perf_counter() - start < 1.0  # generous: the point is that it does not wait for the 5 s connect
    assert not pending.wait(0.5)
    store.close(timeout=0.5)
    [spill] = tmp_path.glob("faqbot-store-*.spill-*.jsonl")
    assert '"k1"' in spill.read_text(encoding="utf-8") and "secret-pw" not in store.backend.where


def test_two_replicas_on_one_postgresql_lose_and_duplicate_nothing(pg_database):
    stores = [open_store(pg_database), open_store(pg_database)]
    threads, per_thread = 6, 60

    def work(store, t):
        for i in range(per_thread):
            key = f"t{t}-{i}"
            store.record_outcome(outcome(key))
            store.record_outcome(outcome(key))  # the same row retried
            if i % 3 == 0:
                store.set_vote(vote(key, "down"))
                store.set_vote(vote(key, "up"))

    workers = [threading.Thread(target=work, args=(stores[t % 2], t)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    # both replicas also record the same keys at once (a client retrying against the other replica)
    shared = [threading.Thread(target=lambda s=s: [s.record_outcome(outcome(f"shared-{i}")) for i in range(100)])
              for s in stores]
    for w in shared:
        w.start()
    for w in shared:
        w.join()
    assert all(s.flush(30) for s in stores)
    keys = [r["key"] for r in stores[0].outcomes()]
    assert len(keys) == len(set(keys)) == threads * per_thread + 100
    votes = stores[1].votes()
    assert len(votes) == threads * per_thread // 3 and {v["rating"] for v in votes} == {"up"}
    for s in stores:
        s.close()


def test_export_writes_outcomes_and_votes_excel_safe(store_target):
    with open_store(store_target) as store:
        store.record_outcome(outcome("k1", question="=cmd|' /C calc'!A0", session="@s"))
        store.set_vote(vote("k1", "down", comment="+danger", question="管理者パスワードの保管は？"))
        assert store.flush(20)
        out = io.StringIO()
        assert store.export_csv(out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    assert [r["kind"] for r in rows] == ["outcome", "vote"]
    assert rows[0]["question"] == "'=cmd|' /C calc'!A0" and rows[0]["session"] == "'@s"
    assert rows[1]["comment"] == "'+danger" and rows[1]["question"] == "管理者パスワードの保管は？"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())


@pytest.mark.parametrize("cell, shown", [
    ("=HYPERLINK(\"http://evil\",\"x\")", "'=HYPERLINK(\"http://evil\",\"x\")"),
    ("+1+1", "'+1+1"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"),
    ("RDPのポート", "RDPのポート"), ("a=b", "a=b"), (0.5, 0.5),
])
def test_excel_safe(cell, shown):
    assert excel_safe(cell) == shown


def test_cli_export_reads_either_backend(store_target, tmp_path):
    with open_store(store_target) as store:
        store.record_outcome(outcome("k1", question="-danger"))
        assert store.flush(20)
    out = tmp_path / "feedback.csv"
    result = CliRunner().invoke(main, ["feedback", "export", "--db", store_target, "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8-sig")
    assert text.startswith("kind,") and "'-danger" in text and "outcome,1,k1," in text


def test_cli_export_refuses_a_missing_database_and_creates_none(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FAQBOT_FEEDBACK_DB", raising=False)
    result = CliRunner().invoke(main, ["feedback", "export"])
    assert result.exit_code == 1
    assert "no feedback database at var/feedback.sqlite3" in result.output and "FAQBOT_FEEDBACK_DB" in result.output
    assert not (tmp_path / "var").exists()


def test_cli_export_of_a_damaged_database_is_one_clear_line_and_keeps_the_file(tmp_path):
    db = tmp_path / "f.db"
    db.write_bytes(b"garbage" * 50)
    result = CliRunner().invoke(main, ["feedback", "export"], env={"FAQBOT_FEEDBACK_DB": str(db)})
    assert result.exit_code == 1
    assert "damaged or not a SQLite file" in result.output and "Traceback" not in result.output
    assert db.read_bytes() == b"garbage" * 50 and not list(tmp_path.glob("*.damaged-*"))


def test_the_log_never_holds_a_question(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "var" / "feedback.sqlite3"
    path.parent.mkdir()
    path.write_bytes(b"garbage" * 50)
    with open_store(path) as store:
        store.record_outcome(outcome(question=SECRET)).wait(10)
        (tmp_path / "var" / "feedback.sqlite3").unlink()
        store.set_vote(vote("k", "down", question=SECRET, comment=SECRET)).wait(10)
    assert caplog.text and SECRET not in caplog.text


def test_a_row_the_database_refuses_is_set_aside_and_does_not_block_the_others(store, tmp_path, caplog):
    bad = {**store_module.vote_row(vote("k1", "up")), "rating": "sideways"}  # past validation: the CHECK refuses it
    refused = store._writer.put("vote", bad)
    good = [store.record_outcome(outcome(f"k{i}")) for i in range(3)]
    assert all(p.wait(20) for p in good) and store.flush(20)
    assert not refused.wait(0.1)
    assert [r["key"] for r in store.outcomes()] == ["k0", "k1", "k2"] and store.votes() == []
    [kept] = store._writer._spill._dir.glob("*.rejected.jsonl")
    assert '"sideways"' in kept.read_text(encoding="utf-8")
    assert "refused the vote row with key k1" in caplog.text


def test_text_postgresql_or_utf8_would_refuse_is_cleaned_not_lost(store):
    store.record_outcome(outcome("nul", question="before\x00after \ud800 end", session="s\x00"))
    assert store.flush(20)
    [row] = store.outcomes()
    assert row["question"] == "before\ufffdafter ? end" and row["session"] == "s\ufffd"


@pytest.mark.parametrize("created, stored", [
    ("2026-01-05T10:00:00Z", "2026-01-05T10:00:00.000000Z"),
    ("2026-01-05T19:00:00+09:00", "2026-01-05T10:00:00.000000Z"),
    (datetime(2026, 1, 5, 10, tzinfo=UTC), "2026-01-05T10:00:00.000000Z"),
])
def test_a_given_created_at_is_stored_in_utc(created, stored):
    assert store_module.outcome_row(outcome(created_at=created))["created_at"] == stored


@pytest.mark.parametrize("created", ["yesterday", "2026-01-05T10:00:00"])
def test_a_bad_created_at_is_refused(created):
    with pytest.raises(StoreError, match="created_at"):
        store_module.outcome_row(outcome(created_at=created))


def test_rows_queued_when_the_process_exits_without_close_are_kept(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "feedback.sqlite3"
    script = ("import sys; from bot.store import open_store; s = open_store(sys.argv[1]); "
              "[s.record_outcome({'key': f'k{i}', 'status': 'no_match', 'question': 'q'}) for i in range(500)]")
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=60)
    with open_store(path) as store:
        assert len(store.outcomes()) == 500


def test_several_processes_on_one_sqlite_file_lose_no_row(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "feedback.sqlite3"
    script = ("import sys; from bot.store import open_store; s = open_store(sys.argv[1]); "
              "[s.record_outcome({'key': f'{sys.argv[2]}-{i}', 'status': 'answered'}) for i in range(300)]; "
              "s.close()")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), f"p{n}"]) for n in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    with open_store(path) as store:
        keys = [r["key"] for r in store.outcomes()]
    assert len(keys) == len(set(keys)) == 900


def test_a_dropped_postgresql_connection_is_retried_without_loss(pg_database):
    import psycopg

    with open_store(pg_database) as store:
        assert store.record_outcome(outcome("k0")).wait(20)
        name = pg_database.rsplit("/", 1)[1]
        with psycopg.connect(pg_database, autocommit=True) as admin:  # a server restart, a failover, a proxy
            ended = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = %s AND pid <> pg_backend_pid()", (name,)).fetchall()
        assert ended and all(ok for (ok,) in ended)
        pendings = [store.record_outcome(outcome(f"k{i}")) for i in range(1, 50)]
        assert all(p.wait(30) for p in pendings)
        assert [r["key"] for r in store.outcomes()] == [f"k{i}" for i in range(50)]
