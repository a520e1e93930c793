"""The CLI end to end: build, ask, batch — the real commands on the real index, bad input included.

`faqbot` runs as a real process where that is the point (an answer printed by a fresh interpreter, the exit status
and message of a failing one; tests/test_hardening.py feeds a real `faqbot batch` too); the other runs go through
click in this process with the session's model (tests/conftest.py `cli`), which saves a model load per run."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import ROOT


def faqbot(settings, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "bot.cli", "--data", str(settings.data_dir), "--index", str(settings.index_dir), *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, cwd=ROOT, timeout=300)


def test_ask_prints_the_official_answer_with_its_citation(settings, built_index):
    result = faqbot(settings, "ask", "Does changing the RDP port help?")
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "RDP接続対象マシンで3389/TCPから特定の一意のポートに変更しており" in out  # official Japanese
    assert "English translation (unofficial)" in out
    assert "Source: qa-4 · Q&A #4 · 000_e301f9683733c836.txt:8" in out


def test_ask_json_equals_a_batch_line(settings, built_index, cli):
    where = ("--data", settings.data_dir, "--index", settings.index_dir)
    ask = cli(*where, "ask", "管理者パスワードの保管方法は？", "--json")
    assert ask.exit_code == 0, ask.stderr
    one = json.loads(ask.stdout)
    batch = cli(*where, "batch", input='{"q": "管理者パスワードの保管方法は？"}\n'.encode())
    assert batch.exit_code == 0, batch.stderr
    other = json.loads(batch.stdout)
    one.pop("latency_ms"), other.pop("latency_ms")
    assert one == other
    assert one["answer"]["id"] == "qa-5" and one["answered"] is True


def test_batch_reports_bad_lines_and_goes_on(settings, built_index, cli):
    lines = [
        b'{"q": "RDP\xe3\x81\xae\xe3\x83\x9d\xe3\x83\xbc\xe3\x83\x88\xe5\xa4\x89\xe6\x9b\xb4", "id": 1}',  # valid
        b"this is not json",
        b"\xff\xfe\xfd invalid utf-8",
        b'{"no_q": 1}',
        b'{"q": ""}',
        b'{"q": "' + "あ".encode() * 100_000 + b'", "id": 6}',
        b'{"q": "\\u0000\\u0007<script>alert(1)</script>", "id": 7}',
        b'{"q": "What is the weather today?", "id": 8}',
        b'{"q": "RDP\\ud800\\u202e", "k": "\\udfff"}',  # lone surrogates, bidi override
    ]
    result = cli("--data", settings.data_dir, "--index", settings.index_dir, "batch", input=b"\n".join(lines) + b"\n")
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = [json.loads(line) for line in result.stdout_bytes.decode().splitlines()]
    assert len(out) == 9
    assert out[0]["id"] == 1 and out[0]["answer"]["id"] == "qa-4" and len(out[0]["results"]) == 5
    assert out[1]["error"].startswith("stdin line 2:") and out[1]["results"] == []
    assert "utf-8" in out[2]["error"] and out[2]["line"] == 3
    assert 'text field "q"' in out[3]["error"]
    assert out[4]["error"] == "empty question" and out[4]["message"]
    assert out[5]["id"] == 6 and out[5]["notices"] and len(out[5]["query"]) == 1000
    assert out[6]["query"].startswith("<script>") and out[6]["id"] == 7
    assert out[7]["answered"] is False and len(out[7]["results"]) == 5 and out[7]["answer"] is None
    assert out[8]["k"] == "\udfff" and out[8]["query"] == "RDP"


def test_ask_without_an_index_says_what_to_do(settings, tmp_path):
    result = subprocess.run([sys.executable, "-m", "bot.cli", "--index", str(tmp_path / "nothing"), "ask", "RDP"],
                            capture_output=True, cwd=ROOT, timeout=300)
    assert result.returncode == 1
    assert result.stderr.decode().strip() == f"faqbot: No index at {tmp_path / 'nothing'}/ — run `faqbot build`"
    assert b"Traceback" not in result.stderr


def test_build_with_bad_data_changes_nothing(settings, data_copy, tmp_path):
    path = data_copy / "000_e301f9683733c836.txt"
    path.write_bytes(path.read_bytes().replace("5\t管理者IDと".encode(), "5\t管理者ID\tと".encode()))
    result = subprocess.run([sys.executable, "-m", "bot.cli", "--data", str(data_copy), "--index",
                             str(tmp_path / "index"), "build", "--quiet"], capture_output=True, cwd=ROOT, timeout=300)
    assert result.returncode == 1
    assert f"{path}:9: expected 3 tab-separated columns".encode() in result.stderr
    assert not (tmp_path / "index").exists()
