"""The benchmark: `faqbot bench --short --json` reports every number (printed, never asserted on time),
and the pieces it is made of — synthetic corpora, the FAISS trade-off, the warm short-mode build, the
table — do what they say."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from bot import bench
from bot.bench_report import format_bench
from bot.bench_scale import faiss_tradeoff
from bot.companion import NAME as COMPANION
from bot.companion import companion_version
from bot.entries import data_fingerprint, load_entries
from bot.settings import Settings
from bot.synthetic import EMBEDDED_FIELDS, SOURCE, fingerprint, synthetic_entries
from bot.vectorcache import CACHE_DIR, VectorCache

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"

TOP_KEYS = ("encoder_p50_ms", "pipeline_p50_ms", "pipeline_p95_ms", "faiss_p50_ms", "bm25_p50_ms", "ratio",
            "cold_start_s", "build_s", "peak_rss_mb")
SCALE_KEYS = ("build_s", "index_bytes", "query_p50_ms", "query_p95_ms", "rss_mb", "load_s", "search_p50_ms")
LOAD_KEYS = ("clients", "requests", "errors", "throughput_rps", "throughput_repeat_rps", "p50_ms", "p95_ms",
             "lost_writes", "store", "ask", "feedback")
HTTP_KEYS = ("server_ready_s", "first_answer_s", "p50_ms", "p95_ms", "rest_p50_ms", "rest_p95_ms", "server_rss_mb")


def _positive(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes): what "left unchanged" is checked against."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- synthetic corpora


def test_synthetic_entries_are_marked_and_varied():
    real = load_entries(DATA)
    entries = synthetic_entries(real, 500)
    assert [e.id for e in entries[:2]] == ["synth-000001", "synth-000002"]
    assert {e.source for e in entries} == {SOURCE} and {e.section for e in entries} == {SOURCE}
    assert not {e.id for e in entries} & {e.id for e in real}
    assert len({e.question for e in entries}) > 480  # varied wording, not 500 copies of 17 questions
    base = [real[i % len(real)] for i in range(len(entries))]
    assert all(e.question and e.question_en for e in entries)
    assert [e.has_answer for e in entries] == [b.has_answer for b in base]  # no answer is made up for an entry
    assert EMBEDDED_FIELDS == ("question",)


def test_synthetic_entries_are_reproducible_and_never_touch_data():
    before = data_fingerprint(DATA)
    real = load_entries(DATA)
    assert fingerprint(synthetic_entries(real, 50, seed=1)) == fingerprint(synthetic_entries(real, 50, seed=1))
    assert fingerprint(synthetic_entries(real, 50, seed=1)) != fingerprint(synthetic_entries(real, 50, seed=2))
    assert data_fingerprint(DATA) == before


# --------------------------------------------------------------------------- FAISS trade-off


def test_faiss_tradeoff_flat_is_exact_and_all_methods_reported():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(2000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[:20] + rng.normal(0, 0.05, (20, 32)).astype(np.float32)
    out = faiss_tradeoff(vectors, queries, depth=100)
    assert set(out) == {"flat", "hnsw", "ivf"}
    assert out["flat"]["recall_at_10"] == 1.0
    for method in out.values():
        assert 0.0 <= method["recall_at_10"] <= 1.0
        assert method["search_p50_ms"] >= 0 and method["depth_search_p50_ms"] >= 0


# --------------------------------------------------------------------------- the real sheet's build: warm in short mode


def _cache_of(index: Path, *models: str) -> None:
    """Vectors of one question for each model (the companion under its real name and version)."""
    for name in models:
        cache = VectorCache.under(index, name, companion_version() if name == COMPANION else name)
        cache.encode("query", ["a question"], lambda todo: np.ones((len(todo), 4), np.float32))
        cache.save()


def _fake_build(seen: list):
    """A build that records the cache it starts from, then rewrites every file of it (as a real build may)."""

    def build(settings, progress=False, model=None):
        cache = settings.index_dir / CACHE_DIR
        seen.append(sorted(p.name for p in cache.iterdir()) if cache.is_dir() else [])
        cache.mkdir(parents=True, exist_ok=True)
        for file in [*cache.iterdir(), cache / "new.npz"]:
            file.write_bytes(b"rewritten by the build")
        folder = settings.index_dir / "builds" / "one"
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps({"vector_cache": {"encoded": {"query": 3}}}))
        return folder

    return build


@pytest.mark.parametrize("short, models, warm", [
    (True, ("fake-model", COMPANION, "other-model"), True),  # this model's and the companion's files, not others'
    (False, ("fake-model", COMPANION, "other-model"), False),  # full mode: the build time, always cold
    (True, (COMPANION, "other-model"), False),  # no vectors of this model: nothing to seed
    (True, (), False),  # no cache at all
])
def test_short_mode_seeds_the_build_from_the_index_cache_and_never_writes_it(tmp_path, monkeypatch, short, models,
                                                                             warm):
    user = tmp_path / "index"
    _cache_of(user, *models)
    before = _files(user)
    seen: list = []
    monkeypatch.setattr(bench, "build", _fake_build(seen))
    settings = Settings(data_dir=DATA, index_dir=user, model="fake-model")
    real = settings.with_(index_dir=tmp_path / "bench" / "real")

    folder, built = bench.build_real(settings, real, model=None, short=short)

    expected = sorted(VectorCache.under(user, name, companion_version() if name == COMPANION else name)
                      .path("query").name for name in ("fake-model", COMPANION)) if warm else []
    assert seen == [expected]
    assert built["build_cache"] == ("warm" if warm else "cold")
    assert built["vector_cache"] == {"encoded": {"query": 3}}  # the build's own count, from its manifest
    assert _positive(built["build_s"]) and folder == tmp_path / "bench" / "real" / "builds" / "one"
    assert _files(user) == before  # copied, not linked: the build rewrote its copy, the user's cache is as it was


# --------------------------------------------------------------------------- the short run, end to end


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_bench_short_json(tmp_path, settings, built_index, cli, capsys):
    # an index folder holding only the session build's vectors: the bench's build of the same sheet starts warm,
    # and the session's index is never handed to code that could write it. The command runs in this process with
    # the session's model (tests/conftest.py `cli`); its cold starts, page server and load server are still
    # fresh processes of their own.
    index = tmp_path / "index"
    shutil.copytree(settings.index_dir / CACHE_DIR, index / CACHE_DIR)
    before = _files(index)
    run = cli("--data", DATA, "--index", index, "bench", "--short", "--json")
    assert run.exit_code == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    with capsys.disabled():  # the numbers, for the CI log (pytest keeps a passing test's output); never asserted
        print("\n" + format_bench(result))

    for key in TOP_KEYS:
        assert _positive(result[key]), (key, result[key])
    assert result["mode"] == "short"
    assert result["build_cache"] == "warm"
    assert result["detail"]["build_vector_cache"]["encoded"] == {"query": 0, "passage": 0}  # every text was cached
    targets = {t["target"]: t for t in result["targets"]}
    assert targets["rebuild after one alternate / cold build"]["met"] is None  # a warm build is no cold baseline
    assert [row["entries"] for row in result["scale"]] == [17, 1000]
    assert [row["synthetic"] for row in result["scale"]] == [False, True]
    for row in result["scale"]:
        for key in SCALE_KEYS:
            assert _positive(row[key]), (row["entries"], key, row[key])
        assert set(row["faiss"]) == {"flat", "hnsw", "ivf"}
        assert row["faiss"]["flat"]["recall_at_10"] == 1.0
        for method in row["faiss"].values():
            assert 0.0 <= method["recall_at_10"] <= 1.0 and _positive(method["search_p50_ms"])
    assert any("10,000" in note for note in result["skipped"])  # short mode says what it left out

    http = result["http"]
    if "skipped" in http:
        assert isinstance(http["skipped"], str) and http["skipped"] in result["skipped"]
    else:
        for key in HTTP_KEYS:
            assert _positive(http[key]), (key, http[key])

    load = result["load"]  # `bot.loadtest.run_load` against a server of its own (the only test of the short run)
    assert set(LOAD_KEYS) <= set(load), load
    assert load["store"] == "sqlite" and load["clients"] == 8 and load["requests"] > 0 and load["replicas"] == 1
    assert load["errors"] == 0 and load["lost_writes"] == 0, load.get("error_samples")
    assert load["feedback_posts"] > 0 and load["feedback"]["requests"] == load["feedback_posts"]
    assert _positive(load["throughput_rps"]) and _positive(load["throughput_repeat_rps"])
    assert load["p95_ms"] >= load["p50_ms"]
    assert load["feedback"]["requests"] > 0 and load["ask"]["requests"] > 0  # answers and votes timed apart
    assert load["long"]["long_requests"] > 0 and load["long"]["long_errors"] == 0  # each had the "too long" notice
    assert {t["target"] for t in result["targets"]} >= {"load p95 (ms)", "load lost writes"}

    machine = result["machine"]
    assert machine["cores"] >= 1 and machine["cpu"] and machine["python"].startswith("3.")
    assert {t["target"] for t in result["targets"]} >= {"pipeline p50 / encoder p50", "warm query p50 (ms)"}
    assert _files(index) == before  # the bench builds in its own temporary folder and only reads the cache
