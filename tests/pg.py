"""A throw-away PostgreSQL 15 for the tests, and `store_target`: the same test against SQLite and PostgreSQL.

`pg_url` (session) runs `initdb` in a temp folder (as the `postgres` user when we are root, as in CI), starts
the server on a free loopback port with its unix socket in that folder, and stops it (`pg_ctl stop -m fast`)
at the end. `pg_database` (per test) is a fresh, empty database on it. Registered for every test file by
`pytest_plugins` in tests/conftest.py.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.childserver import free_port

_NAMES = itertools.count(1)


def _as_owner(args: list[str]) -> list[str]:
    """initdb and postgres refuse root: run them as the `postgres` user when we are root."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a running throw-away PostgreSQL cluster (superuser `postgres`, trust auth on 127.0.0.1 only)."""
    missing = [b for b in ("initdb", "pg_ctl") if shutil.which(b) is None]
    if missing:
        pytest.fail(f"PostgreSQL binaries {missing} are not on PATH: install Debian's `postgresql` package "
                    "(the CI image has it) or add /usr/lib/postgresql/15/bin to PATH", pytrace=False)
    folder = Path(tempfile.mkdtemp(prefix="faqbot-pg-"))  # not under pytest's 0700 root-only tmp: postgres must enter
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    port = free_port()
    log = folder / "server.log"
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    try:
        subprocess.run(_as_owner(["initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                                  "--no-sync"]), **run)
        subprocess.run(_as_owner(["pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
                                  f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start"]),
                       **run)
    except subprocess.CalledProcessError as err:
        detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"could not start a throw-away PostgreSQL: {' '.join(err.cmd)} -> {err.stderr}\n{detail}",
                    pytrace=False)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_owner(["pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"]), capture_output=True,
                       timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_database(pg_url, tmp_path, monkeypatch) -> str:
    """URL of a fresh empty database on the session's server (dropped with the server at the end); the store's
    overflow files for it go to the test's own temp folder."""
    import psycopg

    monkeypatch.setenv("FAQBOT_SPILL_DIR", str(tmp_path))
    name = f"faqbot_test_{os.getpid()}_{next(_NAMES)}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return pg_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request, tmp_path) -> str:
    """Where a store lives: a fresh SQLite file, then a fresh PostgreSQL database (the same test runs twice)."""
    if request.param == "sqlite":
        return str(tmp_path / "var" / "feedback.sqlite3")
    return request.getfixturevalue("pg_database")
