"""Vector cache: embeddings already computed, reused by the next `faqbot build`.

Encoding is nearly all of a build's time, and a trainer's edit (one alternate question) changes one
text out of hundreds. Each vector is stored under the key model + model version + text kind
(`query` or `passage`: e5 embeds them differently) + sha256 of the text, in one file per model and kind
under `index/cache/`, so a rebuild encodes only texts it has never seen. The cache is disposable: an
unreadable or mismatched file is ignored (and rewritten), never an error; deleting `index/cache/`
only makes the next build slow. A model loaded from a folder is keyed by its path: after changing a
model folder in place, delete `index/cache/`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .embed import model_version

__all__ = ["CACHE_DIR", "KINDS", "VectorCache", "cached_encode", "time_rebuild_one_alt"]

#: Folder of the cache inside the index folder (next to `builds/`, untouched by build pruning).
CACHE_DIR = "cache"
KINDS = ("query", "passage")
#: Vectors kept per model and kind; the least recently used are dropped beyond this (about 230 MB at 384 dims).
MAX_VECTORS = 150_000


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest().encode("ascii")


class VectorCache:
    """The cached vectors of one model (name + version), for both text kinds."""

    def __init__(self, folder: Path, model: str, model_version: str) -> None:
        self.folder = Path(folder)
        self.model = model
        self.model_version = model_version
        self._slug = hashlib.sha256(f"{model}\0{model_version}".encode()).hexdigest()[:16]
        self._table: dict[str, dict[bytes, np.ndarray]] = {}
        self._dirty: set[str] = set()
        #: texts sent to the encoder per kind since this cache was opened (what a rebuild really paid for)
        self.encoded = dict.fromkeys(KINDS, 0)
        #: texts answered from the cache per kind
        self.reused = dict.fromkeys(KINDS, 0)

    @classmethod
    def under(cls, index_dir: Path, model: str, model_version: str) -> VectorCache:
        return cls(Path(index_dir) / CACHE_DIR, model, model_version)

    @classmethod
    def of_model(cls, index_dir: Path, model: str) -> VectorCache:
        """The cache of embedding model `model` (a name or folder, as in `Settings.model`) under `index_dir`."""
        return cls.under(index_dir, model, model_version(model))

    def path(self, kind: str) -> Path:
        return self.folder / f"{self._slug}-{kind}.npz"

    def _load(self, kind: str) -> dict[bytes, np.ndarray]:
        if kind not in KINDS:
            raise ValueError(f"unknown text kind {kind!r}: use one of {KINDS}")
        if kind in self._table:
            return self._table[kind]
        table: dict[bytes, np.ndarray] = {}
        # unreadable or from another model: start afresh
        with contextlib.suppress(OSError, ValueError, KeyError, EOFError), \
                np.load(self.path(kind), allow_pickle=False) as data:
            meta = [str(x) for x in data["meta"]]
            keys, vectors = data["keys"], data["vectors"]
            if meta == [self.model, self.model_version, kind] and len(keys) == len(vectors):
                table = dict(zip(keys.tolist(), vectors, strict=True))
        self._table[kind] = table
        return table

    def encode(self, kind: str, texts: Sequence[str], encoder: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """Vectors of `texts` in order; only texts missing from the cache go to `encoder` (once each)."""
        table = self._load(kind)
        keys = [_digest(t) for t in texts]
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in table and key not in missing:
                missing[key] = text
        for key in dict.fromkeys(keys):  # most recently used last: what `save` keeps when over MAX_VECTORS
            if key in table:
                table[key] = table.pop(key)
        if missing:
            fresh = np.asarray(encoder(list(missing.values())), dtype=np.float32)
            table.update(zip(missing, fresh, strict=True))
            self._dirty.add(kind)
        self.encoded[kind] += len(missing)
        self.reused[kind] += len(keys) - len(missing)
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.ascontiguousarray(np.stack([table[k] for k in keys]), dtype=np.float32)

    def save(self) -> None:
        """Write the kinds that gained vectors (atomically: a reader sees the old file or the new one)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for kind in sorted(self._dirty):
            table = self._table[kind]
            keys = list(table)[-MAX_VECTORS:]  # dicts keep insertion order: the most recently used survive
            fd, tmp = tempfile.mkstemp(prefix=f".{self._slug}-{kind}-", suffix=".tmp", dir=self.folder)
            try:
                with os.fdopen(fd, "wb") as handle:
                    np.savez(handle, meta=np.array([self.model, self.model_version, kind]),
                             keys=np.array(keys, dtype="S64"), vectors=np.stack([table[k] for k in keys]))
                os.replace(tmp, self.path(kind))
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        self._dirty.clear()


def cached_encode(cache: VectorCache | None, kind: str, texts: Sequence[str],
                  encoder: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """`encoder(texts)` through `cache` when there is one."""
    return encoder(list(texts)) if cache is None else cache.encode(kind, texts, encoder)


def time_rebuild_one_alt(settings, model) -> dict:
    """Seconds of a `faqbot build` after one alternate question was added, with the cache of a previous build.

    `settings.index_dir` must hold a build of `settings.data_dir` (its cache is copied, not changed);
    the data is copied and the new build goes to a temporary folder, so nothing of the caller's moves.
    Returns `rebuild_one_alt_s` and how many texts per kind that rebuild encoded (`rebuild_one_alt_encoded`).
    """
    from .build import build
    from .curate import add_alternate
    from .entries import load_entries
    from .index import build_manifest

    with tempfile.TemporaryDirectory(prefix="faqbot-rebuild-") as tmp:
        data = Path(tmp) / "data"
        shutil.copytree(settings.data_dir, data)
        index_dir = Path(tmp) / "index"
        if (Path(settings.index_dir) / CACHE_DIR).is_dir():
            shutil.copytree(Path(settings.index_dir) / CACHE_DIR, index_dir / CACHE_DIR)
        first = load_entries(data)[0]
        add_alternate(data, first.id, "en", f"benchmark rephrasing of {first.id} {time.time_ns()}")
        t0 = time.perf_counter()
        folder = build(settings.with_(data_dir=data, index_dir=index_dir), model=model)
        seconds = time.perf_counter() - t0
        manifest = build_manifest(folder)
    return {"rebuild_one_alt_s": round(seconds, 2), "rebuild_one_alt_encoded": manifest["vector_cache"]["encoded"]}
