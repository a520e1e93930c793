"""Synthetic corpora for the scale benchmark: N entries made from the real ones with varied wording.

A hospital that loads thousands of its own entries is simulated by recombining the real sheet: each
synthetic entry takes a real entry's question or an alternate phrasing, puts it in a varied setting
(department, system, situation, a case number) and recombines answer sentences from two real
entries. The result is marked synthetic everywhere (ids `synth-000123`, section and source
"synthetic") and only ever lives in memory or in a temporary folder, never in data/.

Embedding is the cost of a build (e5 on 2 cores manages a few dozen short texts a second, fewer when
the machine is busy), so a synthetic entry embeds only its Japanese question (`EMBEDDED_FIELDS`): a
10,000-entry build then embeds 10,000 texts and takes minutes, not the better part of an hour. BM25
still sees the whole entry (English question, answers, alternates). The real sheet embeds every text
(about 28 per entry).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from .companion import shared_companion
from .embed import encode_documents
from .entries import Entry
from .index import Index, lexical_document, lexical_index, make_vector_index
from .text import tokens

if TYPE_CHECKING:  # only embed imports sentence-transformers
    from sentence_transformers import SentenceTransformer

#: What a synthetic entry puts into the vector index; everything else reaches BM25 only.
EMBEDDED_FIELDS = ("question",)
SOURCE = "synthetic"

_DEPARTMENTS = [
    ("放射線科", "radiology"), ("薬剤部", "the pharmacy"), ("検査部", "the laboratory"), ("医事課", "medical billing"),
    ("地域連携室", "community liaison"), ("手術部", "the operating theatre"), ("透析室", "the dialysis unit"),
    ("救急外来", "the emergency department"), ("健診センター", "the health-check centre"), ("事務部", "administration"),
    ("看護部", "nursing"), ("リハビリ科", "rehabilitation"), ("栄養管理室", "the nutrition office"),
    ("情報システム課", "the IT office"), ("分院", "the branch clinic"), ("訪問看護ステーション", "home nursing"),
]
_SYSTEMS = [
    ("電子カルテ", "the EHR"), ("PACS", "PACS"), ("部門システム", "the departmental systems"),
    ("医事会計システム", "the billing system"), ("オーダリング", "order entry"), ("検査機器", "the lab analysers"),
    ("VPN装置", "the VPN appliance"), ("バックアップサーバ", "the backup server"), ("Active Directory", "AD"),
    ("院内Wi-Fi", "the in-house Wi-Fi"), ("リモート保守回線", "the remote-maintenance line"),
    ("USBメモリ", "USB sticks"),
]
_SITUATIONS = [
    ("夜間", "at night"), ("休日", "on a holiday"), ("委託業者の作業中", "while a contractor is working"),
    ("クラウド移行後", "after moving to the cloud"), ("新病棟の開設時", "when a new ward opens"),
    ("小規模病院", "in a small hospital"), ("訓練の一環として", "as part of a drill"),
    ("監査の前", "before an audit"), ("システム更新時", "during a system upgrade"), ("災害時", "during a disaster"),
]
_JA_TEMPLATES = [
    "{situation}、{dept}で: {q}",
    "【{dept}・{system}】{q}",
    "{q}（{system}、{situation}の場合）",
    "事例{n}（{dept}）: {q}",
    "{dept}の{system}について: {q}",
    "{q} ※{situation}の{system}",
]
_EN_TEMPLATES = [
    "{situation_en}, in {dept_en}: {q}",
    "[{dept_en} / {system_en}] {q}",
    "{q} (for {system_en}, {situation_en})",
    "Case {n} ({dept_en}): {q}",
    "About {system_en} in {dept_en}: {q}",
    "{q} - {system_en}, {situation_en}",
]
_JA_SENTENCE = re.compile(r"(?<=[。！？])")
_EN_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def synthetic_entries(real: list[Entry], n: int, seed: int = 0) -> list[Entry]:
    """`n` synthetic entries recombined from `real`, reproducibly for a given seed."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        base, other = real[i % len(real)], rng.choice(real)
        (dept, dept_en), (system, system_en), (situation, situation_en) = (
            rng.choice(_DEPARTMENTS), rng.choice(_SYSTEMS), rng.choice(_SITUATIONS))
        fill = {"dept": dept, "dept_en": dept_en, "system": system, "system_en": system_en,
                "situation": situation, "situation_en": situation_en, "n": i // len(real) + 1}
        ja = [base.question, *base.alt_ja]
        en = [t for t in (base.question_en, *base.alt_en) if t] or [base.question]
        question = rng.choice(_JA_TEMPLATES).format(q=rng.choice(ja), **fill)
        question_en = rng.choice(_EN_TEMPLATES).format(q=rng.choice(en), **fill)
        out.append(Entry(
            id=f"synth-{i + 1:06d}", section=SOURCE, section_en="Synthetic", number=i + 1,
            question=question, answer=_recombine(base.answer, other.answer, _JA_SENTENCE, "", rng),
            source=SOURCE, line=0, question_en=question_en,
            answer_en=_recombine(base.answer_en, other.answer_en, _EN_SENTENCE, " ", rng),
            alt_ja=(rng.choice(_JA_TEMPLATES).format(q=rng.choice(ja), **fill),),
            alt_en=(rng.choice(_EN_TEMPLATES).format(q=rng.choice(en), **fill),),
            links=base.links,
        ))
    return out


def _recombine(first: str, second: str, splitter: re.Pattern, joiner: str, rng: random.Random) -> str:
    """The sentences of `first` with one sentence of `second` put in at a random place ("" stays "")."""
    own = [s for s in splitter.split(first) if s.strip()]
    if not own:  # an entry without an official answer stays without one
        return ""
    borrowed = [s for s in splitter.split(second) if s.strip()]
    if borrowed:
        own.insert(rng.randrange(len(own) + 1), rng.choice(borrowed))
    return joiner.join(s.strip() for s in own)


def fingerprint(entries: list[Entry]) -> str:
    """sha256 over the generated entries: the `data_hash` their build's manifest records."""
    digest = hashlib.sha256()
    for e in entries:
        digest.update(json.dumps(e.to_json(), ensure_ascii=False, sort_keys=True).encode())
    return digest.hexdigest()


def index_synthetic(entries: list[Entry], model: SentenceTransformer, real: Index, root: Path,
                    progress: bool = False) -> tuple[Index, np.ndarray]:
    """An in-memory index of synthetic entries (only `EMBEDDED_FIELDS` embedded) and its raw vectors.

    Whatever else a build holds besides entries, both encoders' vectors and BM25 (the off-topic anchors, ...) is
    taken from the real index `real`, so a synthetic build is searched exactly like the real one.
    """
    fields = [(i, f) for i, e in enumerate(entries) for f in EMBEDDED_FIELDS if getattr(e, f)]
    texts = [getattr(entries[i], f) for i, f in fields]
    vectors = encode_documents(model, texts, progress=progress)
    doc_tokens = [tokens(lexical_document(e)) for e in tqdm(entries, desc="Tokens", disable=not progress)]
    index = replace(real, path=root, manifest={}, entries=entries, vectors=make_vector_index(vectors),
                    text_entry=np.array([i for i, _ in fields], dtype=np.int64), text_field=[f for _, f in fields],
                    bm25=lexical_index(doc_tokens), companion_texts=shared_companion().encode(texts))
    return index, vectors
