"""Shared fixtures: the real data, the real bundled model, one real index built once per session."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bot.childserver import free_port  # noqa: E402, F401 - the tests' servers take ports from it
from bot.settings import DEFAULT_MODEL, Settings  # noqa: E402

#: `pg_url`, `pg_database` and `store_target` (SQLite and PostgreSQL) for every test file.
pytest_plugins = ["tests.pg"]

ROOT = Path(__file__).resolve().parents[1]
#: Debian's chromium (`make browser`); Playwright cannot download its own here. The flags keep it off the network.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
DATA = ROOT / "data"


@pytest.fixture(scope="session")
def model():
    from bot.embed import load_model

    return load_model()


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> Settings:
    """Settings over the real data (read only) with the index and feedback in a temporary folder."""
    tmp = tmp_path_factory.mktemp("faqbot")
    return Settings(data_dir=DATA, index_dir=tmp / "index", feedback_db=tmp / "feedback.sqlite3")


@pytest.fixture(scope="session")
def built_index(settings, model) -> Path:
    from bot.build import build
    from bot.vectorcache import CACHE_DIR

    seed = ROOT / "index" / CACHE_DIR  # vectors of an earlier `faqbot build` here: only new texts are encoded
    if seed.is_dir():
        shutil.copytree(seed, settings.index_dir / CACHE_DIR, dirs_exist_ok=True)
    return build(settings, model=model)


@pytest.fixture(scope="session")
def bot(settings, model, built_index):
    from bot.answer import FaqBot

    return FaqBot.open(settings, model=model)


def running_app(bot, settings: Settings) -> Iterator[str]:
    """The real chat page on a free loopback port, without login, for a module-scoped fixture to yield."""
    from bot.web import create_app, launch

    with pytest.MonkeyPatch.context() as env:
        env.delenv("FAQBOT_USER", raising=False)
        env.delenv("FAQBOT_PASSWORD", raising=False)
        demo = create_app(settings, bot=bot)
        url = launch(demo, settings, port=free_port(), prevent_thread_lock=True, quiet=True)
    yield url
    demo.close(verbose=False)


@pytest.fixture
def cli(model, monkeypatch):
    """`faqbot ARGS...` run in this process by click's CliRunner; returns click's `Result` (exit_code, stdout,
    stderr). The real commands on the real index, with the session's model where a command would load the same
    one again: a fresh interpreter spends about 8 s importing and loading the model and the companion encoder."""
    from click.testing import CliRunner

    import bot.answer
    import bot.bench
    from bot.cli import main

    for module in (bot.answer, bot.bench):
        real = module.load_model
        monkeypatch.setattr(module, "load_model", lambda name=DEFAULT_MODEL, real=real: model
                            if name == DEFAULT_MODEL else real(name))

    def run(*args: str, input: bytes | str | None = None):
        return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)

    return run


@pytest.fixture
def data_copy(tmp_path) -> Path:
    """A writable copy of data/ for tests that change or break data files."""
    target = tmp_path / "data"
    shutil.copytree(DATA, target)
    return target


def wait_for(check, timeout: float = 15.0, what: str = "condition"):
    """Poll `check` until it returns something truthy (server-side effects such as store writes land later)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium for one test module."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: install Debian's chromium (`make browser`)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()
