"""Hardening (issue 13): each door found open by probing, tried again against the real server, CLI and index.

1 uploads and unused routes refused, bodies capped · 2 no question text in the server log, lines bounded, an
omitted optional API argument answered · 4 `faqbot batch` answers every line · 5 an edited manifest refused ·
6 YAML alias amplification refused with file:line · 7 failed logins slowed per address, session ids checked,
feedback rate-limited. (3, the feedback database's faults, is tested in tests/test_store.py.)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from click.testing import CliRunner

from bot import cli as cli_module
from bot.answer import FaqBot
from bot.entries import collect
from bot.errors import DataError, IndexError_
from bot.guard import Limits, LoginThrottle, RateLimit, session_id
from bot.index import MANIFEST, MANIFEST_DIGEST, _sha256
from bot.logsafe import MAX_LINE_CHARS, MAX_LINES, REDACTED, clean
from bot.text import normalize

from .conftest import ROOT, free_port, running_app, wait_for

FAQBOT = str(Path(sys.executable).with_name("faqbot"))
RDP = "RDPのポートを変更する意味は？"


@pytest.fixture(scope="module")
def served(bot, settings, tmp_path_factory):
    """The real page (launch() with its guard) without login, its feedback in a temporary folder."""
    yield from running_app(bot, settings.with_(feedback_db=tmp_path_factory.mktemp("hard") / "feedback.sqlite3"))


def call(client: httpx.Client, url: str, name: str, body: dict) -> tuple[str, object]:
    """A positional API call (`/gradio_api/call/<name>`): the final event and its data."""
    posted = client.post(urljoin(url, f"gradio_api/call/{name}"), json=body, timeout=30)
    assert posted.status_code == 200, posted.text
    stream = client.get(urljoin(url, f"gradio_api/call/{name}/{posted.json()['event_id']}"), timeout=60)
    event, data = "", None
    for line in stream.text.splitlines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event in ("complete", "error"):
            data = json.loads(line.removeprefix("data: "))
    return event, data


# --------------------------------------------------------------------------- 1: uploads, routes, body size


def _upload_files() -> set[Path]:
    from gradio.utils import get_upload_folder

    folder = Path(get_upload_folder())
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def test_upload_and_every_unused_route_are_refused_and_nothing_is_stored(served):
    before = _upload_files()
    with httpx.Client() as client:
        upload = client.post(urljoin(served, "gradio_api/upload"), files={"files": ("x.bin", os.urandom(100_000))})
        assert upload.status_code == 404
        for path in ["gradio_api/upload_progress?upload_id=1", "gradio_api/file=/etc/passwd", "file=/etc/passwd",
                     "gradio_api/stream/s/1/2/playlist.m3u8", "gradio_api/process_recording", "monitoring",
                     "gradio_api/vibe-edit", "gradio_api/mcp/sse", "gradio_api/run-history/buckets", "docs",
                     "gradio_api/dev/reload", "gradio_api/proxy=http://example.com/"]:
            response = client.get(urljoin(served, path)) if "process" not in path else client.post(
                urljoin(served, path))
            assert response.status_code == 404, path
        assert client.get(served).status_code == 200 and "<html" in client.get(served).text.lower()
        assert client.get(urljoin(served, "config")).status_code == 200
    assert _upload_files() == before


def test_request_bodies_over_the_cap_are_refused_with_413(served):
    big = json.dumps({"data": ["天気" * 2_500_000]})  # a 5 MB question
    with httpx.Client() as client:
        assert client.post(urljoin(served, "gradio_api/call/ask"), content=big,
                           headers={"content-type": "application/json"}).status_code == 413

        def chunks():  # no Content-Length: counted as it arrives
            for _ in range(40):
                yield b"x" * 10_000

        assert client.post(urljoin(served, "gradio_api/call/ask"), content=chunks(),
                           headers={"content-type": "application/json"}).status_code == 413
        # a question at the limit of what the page takes still goes through
        event, data = call(client, served, "ask", {"data": [RDP + " " + "あ" * 50_000, "ja"]})
    assert event == "complete" and data[0]["answer"]["id"] == "qa-4" and data[0]["notices"]


def test_an_omitted_optional_api_argument_is_filled_with_its_default(served):
    with httpx.Client() as client:
        event, data = call(client, served, "ask", {"data": [RDP]})
        assert event == "complete" and data[0]["answer"]["id"] == "qa-4" and data[0]["lang"] == "ja"
        event, data = call(client, served, "ask", {"data": ["Does changing the RDP port help?", "ja"]})
        assert event == "complete" and data[0]["lang"] == "ja"  # a given argument is kept


# --------------------------------------------------------------------------- 3: the feedback database, server side


def test_the_server_keeps_answering_while_its_database_is_deleted_or_locked(bot, settings, tmp_path):
    """tests/test_store.py covers the store itself; this is the page's API over it, through the same faults."""
    from bot.store import open_store

    db = tmp_path / "var" / "feedback.sqlite3"
    app = contextlib.contextmanager(running_app)(bot, settings.with_(feedback_db=db))
    with httpx.Client() as client, app as url:
        assert call(client, url, "ask", {"data": [RDP, "ja"]})[0] == "complete"
        assert wait_for(lambda: db.exists(), timeout=20.0)
        db.unlink()  # an operator removes the file while the page runs
        event, data = call(client, url, "ask", {"data": ["Does changing the RDP port help?"]})
        assert event == "complete" and data[0]["answer"]["id"] == "qa-4"
        holder = sqlite3.connect(wait_for(lambda: db if db.exists() else None, timeout=20.0), isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # a backup or a DB browser holds it
        try:
            event, data = call(client, url, "ask", {"data": ["管理者パスワードの保管方法は？"]})
            assert event == "complete" and data[0]["answered"]
            assert call(client, url, "feedback", {"data": [RDP, "up"]})[0] in ("complete", "error")  # returns
        finally:
            holder.rollback()
            holder.close()
        wanted = {normalize("Does changing the RDP port help?"), normalize("管理者パスワードの保管方法は？")}
        with open_store(db) as reader:  # the rows asked while it was gone or locked arrive
            assert wait_for(lambda: wanted <= {normalize(row["question"]) for row in reader.outcomes()}, timeout=20.0)


# --------------------------------------------------------------------------- 7: sessions, feedback rate


def test_session_ids_are_kept_only_when_short_and_plain():
    assert session_id("k3j9x0a1b2") == "k3j9x0a1b2"
    assert session_id("6f1c2d6e-8a4b-4c4e-9a51-0c8f6f1a2b3c") == "6f1c2d6e-8a4b-4c4e-9a51-0c8f6f1a2b3c"
    for bad in ["<script>alert(1)</script>", "a" * 65, "x\ny", "=cmd|' /C calc'!A0", "秘密"]:
        replaced = session_id(bad)
        assert replaced.startswith("h-") and len(replaced) == 32 and replaced == session_id(bad)
        assert session_id(replaced) == replaced
    assert session_id(None) == session_id("") == ""


def test_feedback_api_is_rate_limited_per_session_and_stores_a_checked_session_id(served):
    body = {"data": [RDP, "up", "ja"], "session_hash": "<b>hardening</b>"}
    with httpx.Client() as client:
        results = [call(client, served, "feedback", body) for _ in range(Limits().feedback_per_minute + 2)]
        other = call(client, served, "feedback", {**body, "session_hash": "another-session"})
    events = [event for event, _ in results]
    assert events[:Limits().feedback_per_minute] == ["complete"] * Limits().feedback_per_minute
    assert events[-2:] == ["error", "error"]
    stored = results[0][1][0]
    assert stored["session"] == session_id("<b>hardening</b>") and stored["rating"] == "up"
    assert other[0] == "complete"  # another session is not held back


def test_rate_limit_and_login_throttle_follow_their_clock():
    now = [0.0]
    limit = RateLimit(2, 60.0, clock=lambda: now[0])
    assert [limit.allow("s") for _ in range(3)] == [True, True, False] and limit.allow("t")
    now[0] = 60.0
    assert limit.allow("s")
    throttle = LoginThrottle(Limits(login_free=2, login_delay=1.0), clock=lambda: now[0])
    assert [throttle.failed("a") for _ in range(2)] == [1, 2] and throttle.wait("a") == 1.0
    assert throttle.failed("a") == 3 and throttle.wait("a") == 2.0 and throttle.wait("b") == 0.0
    now[0] += 2.0
    assert throttle.wait("a") == 0.0
    throttle.succeeded("a")
    assert throttle.failed("a") == 1


# --------------------------------------------------------------------------- 2 + 7: `faqbot serve` with a login


def _wait_until_serving(proc: subprocess.Popen, url: str, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"faqbot serve exited with {proc.returncode}"
        try:
            httpx.get(urljoin(url, "config"), timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.5)
    raise AssertionError(f"faqbot serve did not answer at {url} within {timeout:.0f}s")


def _join_with_too_few_inputs(client: httpx.Client, url: str, text: str) -> None:
    """A page event with fewer inputs than it takes: Gradio fails it and would print 'Received inputs'."""
    session = "hardening-join"
    joined = client.post(urljoin(url, "gradio_api/queue/join"),
                         json={"data": [text], "fn_index": 0, "session_hash": session, "trigger_id": None})
    assert joined.status_code == 200, joined.text
    with client.stream("GET", urljoin(url, f"gradio_api/queue/data?session_hash={session}"), timeout=30) as events:
        for line in events.iter_lines():
            if "process_completed" in line:
                assert '"success":false' in line.replace(" ", "")
                break


@pytest.mark.slow
def test_served_log_holds_no_question_and_failed_logins_are_slowed(settings, built_index, tmp_path):
    env = {**os.environ, "FAQBOT_USER": "staff", "FAQBOT_PASSWORD": "correct horse",
           "FAQBOT_FEEDBACK_DB": str(tmp_path / "feedback.sqlite3")}
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = subprocess.Popen([FAQBOT, "--data", str(settings.data_dir), "--index", str(settings.index_dir), "serve",
                             "--port", str(port)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    secret = "患者山田太郎の検査結果"  # stands for anything staff might type
    try:
        _wait_until_serving(proc, url)
        with httpx.Client(timeout=30) as client:
            codes = [client.post(urljoin(url, "login"), data={"username": "staff", "password": f"guess-{i}"})
                     for i in range(20)]
            assert [r.status_code for r in codes[:5]] == [400] * 5
            assert {r.status_code for r in codes[5:]} == {429}
            wait = int(codes[-1].headers["retry-after"])
            assert 1 <= wait <= Limits().login_delay + 1
            time.sleep(wait + 0.2)
            assert client.post(urljoin(url, "login"), data={"username": "staff", "password": "correct horse"}
                               ).status_code == 200
            event, data = call(client, url, "ask", {"data": [RDP]})  # lang omitted
            assert event == "complete" and data[0]["answer"]["id"] == "qa-4"
            assert call(client, url, "ask", {"data": [f"{secret}は？"]})[0] == "complete"
            assert client.post(urljoin(url, "gradio_api/call/ask"),
                               json={"data": [secret * 500_000]}).status_code == 413
            assert call(client, url, "feedback", {"data": [f"{secret} feedback"]})[0] == "error"
            _join_with_too_few_inputs(client, url, f"{secret} join")
            _join_with_too_few_inputs(client, url, secret * 5_000)  # 165 kB: under the body cap, a long echo
    finally:
        proc.terminate()
        output = proc.communicate(timeout=60)[0]
    lines = output.splitlines()
    assert secret not in output and "guess-" not in output and "correct horse" not in output
    assert "failed login from 127.0.0.1 (5 in a row)" in output
    assert f"Received inputs: {REDACTED}" in output  # the framework's echo was reached, and cut
    assert "answered qa-4" in output
    assert max(len(line) for line in lines) <= MAX_LINE_CHARS + 200, max(lines, key=len)[:300]


def test_clean_cuts_echoed_inputs_and_bounds_lines_and_records():
    assert clean("ValueError: bad\nWanted inputs:\n  [textbox]\nReceived inputs:\n  [\"secret\"]") == (
        "ValueError: bad\nWanted inputs:\n  [textbox]\nReceived inputs: " + REDACTED)
    long = clean("x" * 10_000)
    assert len(long) <= MAX_LINE_CHARS + 10
    many = clean("\n".join(f"line {i}" for i in range(1000))).split("\n")
    assert len(many) == MAX_LINES and many[0] == "line 0" and many[-1] == "line 999"


# --------------------------------------------------------------------------- 4: batch


def test_batch_issue_reproduction_answers_every_line(settings, built_index):
    lines = ['{"q":"ok"}', "[" * 1200 + "]" * 1200, '{"q":"after"}']
    result = subprocess.run([sys.executable, "-m", "bot.cli", "--data", str(settings.data_dir), "--index",
                             str(settings.index_dir), "batch"], input="\n".join(lines).encode() + b"\n",
                            capture_output=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr.decode()[-2000:]
    out = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(out) == 3
    assert out[0]["query"] == "ok" and out[2]["query"] == "after"
    assert out[1]["status"] == "error" and "nested too deeply" in out[1]["error"] and out[1]["line"] == 2


def run_batch(bot, stdin: bytes, monkeypatch) -> list[dict]:
    """`faqbot batch` in-process over the session's bot; every output line must be strict JSON."""
    monkeypatch.setattr(cli_module, "_open_bot", lambda settings: bot)
    result = CliRunner().invoke(cli_module.main, ["batch"], input=stdin)
    assert result.exit_code == 0 and result.exception is None, result.output
    return [json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} in output")) for line in
            result.stdout.splitlines()]


def test_batch_bom_nan_infinity_bad_bytes_and_huge_lines_get_one_json_line_each(bot, monkeypatch):
    lines = [
        b'\xef\xbb\xbf{"q": "RDP\xe3\x81\xae\xe3\x83\x9d\xe3\x83\xbc\xe3\x83\x88", "id": 1}',  # BOM first
        b'{"q": "RDP", "id": NaN}',
        b'{"q": "RDP", "id": -Infinity}',
        b'{"q": "RDP", "id": 1e999}',
        b'{"q": "RDP", "id": ' + b"9" * 5000 + b"}",
        os.urandom(64).replace(b"\n", b"") + b"\xff",
        # a real question (a bare "RDP" is below the threshold): the deep line must be answered, not just parsed
        b'{"q": "RDP\xe3\x81\xae\xe3\x83\x9d\xe3\x83\xbc\xe3\x83\x88", "deep": ' + b"[" * 900 + b"]" * 900 + b"}",
        b'{"q": "' + b"a" * 1_200_000 + b'"}',
        b'{"q": "after", "id": 9}',
    ]
    out = run_batch(bot, b"\n".join(lines) + b"\n", monkeypatch)
    assert len(out) == len(lines)
    assert out[0]["id"] == 1 and out[0]["answer"]["id"] == "qa-4"
    assert "NaN is not JSON" in out[1]["error"] and "-Infinity is not JSON" in out[2]["error"]
    assert "out of range" in out[3]["error"] and out[4]["status"] == "error" and out[4]["line"] == 5
    assert out[5]["status"] == "error" and out[5]["line"] == 6
    assert out[6]["answer"]["id"] == "qa-4" and json.dumps(out[6]["deep"]) == "[" * 900 + "]" * 900
    assert "over 1,000,000 bytes" in out[7]["error"] and out[7]["line"] == 8
    assert out[8]["id"] == 9 and out[8]["query"] == "after"


# --------------------------------------------------------------------------- 5: manifest


@pytest.fixture
def index_copy(settings, built_index, tmp_path) -> Path:
    root = tmp_path / "index"
    shutil.copytree(settings.index_dir, root, symlinks=True)
    return root


def _edit_manifest(root: Path, change, *, redigest: bool = False) -> None:
    folder = (root / "current").resolve()
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    change(manifest["calibration"])
    (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    if redigest:  # as someone would who knows about the digest file
        (folder / MANIFEST_DIGEST).write_text(_sha256(folder / MANIFEST), encoding="ascii")


def test_a_manifest_edited_after_the_build_is_refused(settings, model, index_copy, monkeypatch):
    _edit_manifest(index_copy, lambda cal: cal.update(threshold=0.0))
    with pytest.raises(IndexError_, match=r"changed or damaged after the build .*run `faqbot build`"):
        FaqBot.open(settings.with_(index_dir=index_copy), model=model)
    monkeypatch.setattr(cli_module, "_settings", lambda ctx: settings.with_(index_dir=index_copy))
    result = CliRunner().invoke(cli_module.main, ["ask", "今日の天気は？"])
    assert result.exit_code == 1 and "run `faqbot build`" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("change, message", [
    (lambda cal: cal.update(threshold=0.0), r"threshold 0.0 is outside"),
    (lambda cal: cal.update(threshold=1.5), r"threshold 1.5 is outside"),
    (lambda cal: cal["weights"].__setitem__(0, math.inf), "not a finite number"),
    (lambda cal: cal.update(weights=cal["weights"][:-1]), "one length"),
    (lambda cal: cal["scale"].__setitem__(0, 0.0), "scale must be positive"),
    (lambda cal: cal.update(bias="1"), "not a finite number"),
    # an index fitted by another faqbot version, with a signal this one does not compute
    (lambda cal: cal["features"].__setitem__(0, "retired_signal"), r"signals this faqbot does not have"),
])
def test_calibration_out_of_bounds_is_refused_even_with_a_matching_digest(settings, model, index_copy, change,
                                                                           message):
    _edit_manifest(index_copy, change, redigest=True)
    with pytest.raises(IndexError_, match=message) as caught:
        FaqBot.open(settings.with_(index_dir=index_copy), model=model)
    assert "run `faqbot build`" in str(caught.value)


# --------------------------------------------------------------------------- 6: YAML


def _amplified(data_dir: Path) -> Path:
    """The issue's file: a 100,000-character string and ~330 kB of aliases to it as alternates."""
    path = data_dir / "bilingual.yaml"
    text = path.read_text(encoding="utf-8")
    bomb = 'bomb: &a "' + "x" * 100_000 + '"\n'
    aliases = "\n".join(["      - *a"] * 21_000)
    assert 330_000 < len(bomb) + len(aliases) < 332_000
    path.write_text(bomb + text.replace("    alt_ja:\n", "    alt_ja:\n" + aliases + "\n", 1), encoding="utf-8")
    return path


def test_yaml_alias_amplification_is_refused_at_its_line_by_check_and_build(settings, data_copy, tmp_path):
    path = _amplified(data_copy)
    tracemalloc.start()
    started = time.perf_counter()
    result = CliRunner().invoke(cli_module.main, ["--data", str(data_copy), "check"])
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"faqbot check on a {path.stat().st_size:,}-byte alias file: {elapsed:.2f}s, peak {peak / 1e6:.1f} MB")
    assert result.exit_code == 1
    assert f"{path}:1: a text of 100,000 characters" in result.output
    assert peak < 50e6  # the aliases were never expanded
    from bot.build import build

    target = tmp_path / "index"
    with pytest.raises(DataError, match="100,000 characters"):
        build(settings.with_(data_dir=data_copy, index_dir=target))
    assert not target.exists()


def test_yaml_many_aliases_and_nested_expansion_are_refused(data_copy):
    path = data_copy / "bilingual.yaml"
    original = path.read_text(encoding="utf-8")
    short = 'bomb: &a "' + "y" * 4_000 + '"\n'
    path.write_text(short + original.replace("    alt_ja:\n", "    alt_ja:\n" + "\n".join(["      - *a"] * 150)
                                             + "\n", 1), encoding="utf-8")
    problems = collect(data_copy)[1]
    assert [p.message for p in problems if "aliases" in p.message] == [
        "more than 100 aliases (*name); write the text out instead"]
    laughs = ['l0: &l0 "' + "z" * 4_000 + '"'] + [f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}]"
                                                  for i in range(1, 12)]
    path.write_text("\n".join(laughs) + "\n" + original, encoding="utf-8")
    problems = collect(data_copy)[1]
    assert len(problems) == 1 and problems[0].path == path and "expands to over" in problems[0].message
    assert problems[0].line <= 12


@pytest.mark.parametrize("line, hint", [
    ("    question_en: Backups: how often?", "must be quoted"),
    ("    question_en: 'it's here'", "double a quote"),
    ('    alt_en: ["one", "two"', "a [list] is not closed"),
    ('    question_en: "C:\\path"', "a backslash starts an escape"),
    ("\tquestion_en: tab", "spaces, not tabs"),
    ("    question_en: *nowhere", "needs an anchor"),
])
def test_a_yaml_syntax_error_is_one_problem_at_its_line_with_a_hint(data_copy, line, hint):
    path = data_copy / "bilingual.yaml"
    lines = path.read_text(encoding="utf-8").split("\n")
    at = next(i for i, text in enumerate(lines) if text.startswith("    question_en:")) + 1
    lines[at - 1] = line
    while lines[at].startswith("      "):  # the replaced question's folded text
        del lines[at]
    path.write_text("\n".join(lines), encoding="utf-8")
    problems = collect(data_copy)[1]
    assert len(problems) == 1, "\n".join(map(str, problems))  # no "has no English translation" cascade
    assert problems[0].path == path and hint in problems[0].message
    assert abs(problems[0].line - at) <= 1


def test_a_data_file_too_large_to_be_hand_written_is_refused(data_copy):
    path = data_copy / "out_of_scope.yaml"
    with path.open("a", encoding="utf-8") as handle:
        handle.write("# " + "x" * 6_000_000 + "\n")
    problems = collect(data_copy)[1]
    assert len(problems) == 1 and problems[0].path == path and problems[0].line == 1
    assert problems[0].message.endswith("bytes; data files are at most 5,000,000: is this the right file?")


def test_a_broken_source_list_is_one_problem_not_one_per_translation_and_query(data_copy):
    path = data_copy / "sources.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("    name: mhlw\n", "    name: mhlw: x\n", 1),
                    encoding="utf-8")
    at = path.read_text(encoding="utf-8").split("\n").index("    name: mhlw: x") + 1
    result = CliRunner().invoke(cli_module.main, ["--data", str(data_copy), "check"])
    assert result.exit_code == 1
    assert [line for line in result.stdout.splitlines() if line.strip()] == [
        f"{path}:{at}: not valid YAML: mapping values are not allowed here; a text containing ': ' must be quoted "
        '("...") or written as a `|` block']
