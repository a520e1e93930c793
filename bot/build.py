"""Build: entries -> embeddings + BM25 -> intent classifier -> calibration -> a published index build."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from sentence_transformers import SentenceTransformer
from tqdm import tqdm

from .calibrate import counter_examples, fit
from .companion import NAME as COMPANION
from .companion import companion_version, shared_companion
from .embed import encode_documents, encode_queries, load_model, model_version
from .entries import TUNE_FILE, Entry, data_fingerprint, load_entries, load_out_of_scope
from .heldout import alternate_rows, alternate_vectors, held_out_alternates
from .highlight import answer_sentences
from .index import Index, lexical_document, lexical_index, make_vector_index, text_rows, write_build
from .intent import Intent, fit_intent
from .queries import read_queries
from .search import Searcher
from .settings import Settings
from .text import normalize, tokens
from .vectorcache import VectorCache, cached_encode


def index_entries(entries: list[Entry], model: SentenceTransformer, root: Path, progress: bool = False,
                  anchors: list[str] | None = None, cache: VectorCache | None = None,
                  companion_cache: VectorCache | None = None) -> Index:
    """An in-memory, not yet calibrated index of `entries` (vectors of every searchable text + BM25),
    with the out-of-scope anchor questions embedded as queries (they stand for users' questions), and the
    companion encoder's vectors of both (bot/companion.py). With caches, only texts they have not seen are
    encoded."""
    rows = text_rows(entries)
    texts = [t for _, _, t in rows]
    anchors = anchors or []
    companion = shared_companion()
    vectors = cached_encode(cache, "passage", texts, lambda todo: encode_documents(model, todo, progress=progress))
    doc_tokens = [tokens(lexical_document(e)) for e in tqdm(entries, desc="Tokens", disable=not progress)]
    return Index(path=root, manifest={}, entries=entries, vectors=make_vector_index(vectors),
                 text_entry=np.array([i for i, _, _ in rows], dtype=np.int64), text_field=[f for _, f, _ in rows],
                 bm25=lexical_index(doc_tokens),
                 anchors=cached_encode(cache, "query", anchors, lambda todo: encode_queries(model, todo)) if anchors
                 else np.zeros((0, vectors.shape[1]), np.float32),
                 # the companion has no query/passage distinction: one kind for all its texts
                 companion_texts=cached_encode(companion_cache, "query", texts, companion.encode),
                 companion_anchors=cached_encode(companion_cache, "query", anchors, companion.encode))


def intent_of(index: Index, alternates: np.ndarray) -> Intent:
    """The intent classifier of `index` (bot/intent.py), from the alternates' query vectors (`alternate_vectors`)
    and the off-topic questions and counter-examples, which the index holds as anchors."""
    rows = alternate_rows(index)
    owners = np.full(len(index.anchors), -1, dtype=np.int64)
    for example in counter_examples(index):
        owners[example.row] = example.entry
    return fit_intent(alternates, index.companion_texts[rows], index.text_entry[rows], index.anchors,
                      index.companion_anchors, owners)


def build(settings: Settings, progress: bool = False, model: SentenceTransformer | None = None) -> Path:
    """Validate data, index it, fit the calibration on the tuning queries, publish; returns the build folder."""
    started = time.perf_counter()
    data_hash = data_fingerprint(settings.data_dir)
    entries = load_entries(settings.data_dir)
    anchors = load_out_of_scope(settings.data_dir, [])  # validated by load_entries already
    # an entry's counter-examples (not_ja / not_en: questions it looks like but does not answer) are off-topic too
    anchors += [t for e in entries for t in (*e.not_ja, *e.not_en)]
    queries = read_queries(settings.data_dir / TUNE_FILE, {e.id for e in entries})
    model = model or load_model(settings.model)
    # vectors of texts an earlier build already embedded are reused (bot/vectorcache.py)
    cache = VectorCache.of_model(settings.index_dir, settings.model)
    companion_cache = VectorCache.under(settings.index_dir, COMPANION, companion_version())
    index = index_entries(entries, model, settings.index_dir, progress, anchors, cache, companion_cache)
    # the tuning queries are searched exactly as users' questions will be
    q_vectors = cached_encode(cache, "query", [normalize(q.q) for q in queries],
                              lambda todo: encode_queries(model, todo))
    # every answer sentence, for the page's highlight of the sentences that match a question (bot/highlight.py)
    cached_encode(cache, "passage", answer_sentences(entries), lambda todo: encode_documents(model, todo))
    # every alternate is also a training question, searched without its fold (bot/heldout.py)
    alternates = alternate_vectors(index, model, cache)
    cache.save()
    companion_cache.save()
    index = replace(index, intent=intent_of(index, alternates))
    calibration = fit(Searcher(index, model, calibration={}), queries, q_vectors,
                      held_out=held_out_alternates(index, model, alternates))
    manifest = {"model": settings.model, "model_version": model_version(settings.model),
                "companion": COMPANION, "companion_version": companion_version(),
                "data_hash": data_hash, "calibration": calibration,
                "build_seconds": round(time.perf_counter() - started, 2),
                "vector_cache": {"encoded": cache.encoded, "reused": cache.reused}}
    return write_build(settings.index_dir, index, manifest)
