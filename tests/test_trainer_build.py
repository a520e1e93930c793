"""Incremental build: the vector cache under index/cache/ spares every already-embedded text."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import bot.build as build_module
import bot.heldout as heldout_module
from bot.build import build
from bot.curate import add_alternate
from bot.vectorcache import CACHE_DIR, VectorCache


def test_rebuild_after_one_alternate_encodes_only_that_text(settings, model, built_index, data_copy, tmp_path,
                                                            monkeypatch):
    index_dir = tmp_path / "index"
    shutil.copytree(settings.index_dir / CACHE_DIR, index_dir / CACHE_DIR)  # the session build's cache
    added = add_alternate(data_copy, "qa-4", "en", "is moving remote desktop off 3389 worth the trouble")
    encoded: list[str] = []

    def spy(real):
        def encode(model, texts, *args, **kwargs):
            encoded.extend(texts)
            return real(model, texts, *args, **kwargs)
        return encode

    monkeypatch.setattr(build_module, "encode_documents", spy(build_module.encode_documents))
    monkeypatch.setattr(build_module, "encode_queries", spy(build_module.encode_queries))
    monkeypatch.setattr(heldout_module, "encode_queries", spy(heldout_module.encode_queries))
    folder = build(settings.with_(data_dir=data_copy, index_dir=index_dir), model=model)

    # nothing the session build embedded went to the encoder again; the new alternate went twice: as a text of
    # the index, and as a question the combiner learns from (bot/heldout.py)
    assert encoded == [added, added]
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["vector_cache"]["encoded"] == {"query": 1, "passage": 1}
    assert manifest["vector_cache"]["reused"]["passage"] >= manifest["n_texts"] - 1
    assert manifest["calibration"]["n_queries"] > 0  # the calibration was refitted in the rebuild

    from bot.answer import FaqBot

    rebuilt = FaqBot.open(settings.with_(data_dir=data_copy, index_dir=index_dir), model=model)
    answer = rebuilt.ask(added)
    assert answer.hits[0].entry.id == "qa-4" and answer.hits[0].matched == "alt_en"


def test_cached_vectors_equal_fresh_ones(settings, model, built_index):
    from bot.embed import encode_documents, encode_queries, model_version

    cache = VectorCache.under(settings.index_dir, settings.model, model_version(settings.model))
    texts = ["RDPのポートを変更する意味は？", "How should we store admin passwords?"]
    for kind, encoder in (("passage", encode_documents), ("query", encode_queries)):
        fresh = encoder(model, texts)
        first = cache.encode(kind, texts, lambda todo, e=encoder: e(model, todo))
        again = cache.encode(kind, texts, lambda todo: pytest.fail(f"re-encoded {todo}"))
        assert np.allclose(first, fresh, atol=1e-5) and np.array_equal(first, again)


def test_cache_keys_model_kind_and_text_and_survives_damage(tmp_path):
    calls: list[list[str]] = []

    def fake(todo):  # plumbing only: a known vector per text
        calls.append(list(todo))
        return np.array([[len(t), 1.0] for t in todo], dtype=np.float32)

    cache = VectorCache(tmp_path, "m", "v1")
    out = cache.encode("passage", ["ab", "abc", "ab"], fake)
    assert calls == [["ab", "abc"]] and out[:, 0].tolist() == [2, 3, 2]
    cache.save()
    assert VectorCache(tmp_path, "m", "v1").encode("passage", ["abc"], fake)[0, 0] == 3 and len(calls) == 1
    VectorCache(tmp_path, "m", "v1").encode("query", ["abc"], fake)  # other kind: encoded again
    VectorCache(tmp_path, "m", "v2").encode("passage", ["abc"], fake)  # other model version: again
    assert len(calls) == 3
    cache.path("passage").write_bytes(b"not a cache")  # damaged: ignored, rewritten on save
    damaged = VectorCache(tmp_path, "m", "v1")
    assert damaged.encode("passage", ["abc"], fake)[0, 0] == 3 and len(calls) == 4
    damaged.save()
    assert VectorCache(tmp_path, "m", "v1").encode("passage", ["abc"], fake)[0, 0] == 3 and len(calls) == 4
    with pytest.raises(ValueError, match="unknown text kind"):
        cache.encode("image", ["x"], fake)


def test_bench_rebuild_measures_one_alternate_against_the_cache(settings, model, built_index):
    from bot.vectorcache import time_rebuild_one_alt

    before = sorted(p.name for p in (settings.index_dir / "builds").iterdir())
    result = time_rebuild_one_alt(settings, model)
    assert result["rebuild_one_alt_encoded"] == {"query": 1, "passage": 1}  # a text, and a training question
    assert result["rebuild_one_alt_s"] > 0
    assert sorted(p.name for p in (settings.index_dir / "builds").iterdir()) == before  # caller's index untouched


def test_cache_keeps_the_most_recently_used_when_full(tmp_path, monkeypatch):
    import bot.vectorcache as vectorcache

    monkeypatch.setattr(vectorcache, "MAX_VECTORS", 2)
    calls: list[str] = []

    def fake(todo):
        calls.extend(todo)
        return np.ones((len(todo), 2), dtype=np.float32)

    cache = VectorCache(tmp_path, "m", "v1")
    cache.encode("query", ["a", "b"], fake)
    cache.encode("query", ["a"], fake)  # "a" used again: "b" is now the least recently used
    cache.encode("query", ["c"], fake)
    cache.save()
    calls.clear()
    VectorCache(tmp_path, "m", "v1").encode("query", ["a", "b", "c"], fake)
    assert calls == ["b"]
