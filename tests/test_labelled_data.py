"""The labelled sets and off-topic anchors the trust work is tuned and tested on (no model needed).

They must stay big enough to measure a few per cent per language, cover every confusable pair from
both sides, and never share a question: a test query that is also an alternate, an anchor or a
tuning query would be measured on what the bot was built or tuned with.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bot.entries import OUT_OF_SCOPE_FILE, load_entries, load_out_of_scope
from bot.queries import read_queries
from bot.text import normalize

from .conftest import DATA

SETS = ("tune", "test")
LANGS = ("ja", "en")
#: Fewest labelled queries of each kind per language in each of tune.jsonl and test.jsonl.
MINIMUM = {"in": 90, "far": 30, "near": 60, "confusable": 25}
#: Fewest near-domain anchors (under a `# near-domain: ...` comment in out_of_scope.yaml) per language.
MINIMUM_NEAR_ANCHORS = 60
#: Entries that look alike; every group needs confusable queries for at least two of its entries.
PAIR_GROUPS = {
    "vendors / remote access": {"qa-7", "qa-8", "qa-10"},
    "passwords": {"qa-5", "qa-11"},
    "materials / recordings": {"archive-1", "archive-2", "archive-3", "other-1"},
    "patches": {"qa-8", "qa-12"},
    "forensics": {"qa-1", "qa-2"},
}
MINIMUM_PER_GROUP = 5  # per language, in each of tune and test


def rows(name: str) -> list[dict]:
    lines = (DATA / "eval" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def near_anchors(path: Path) -> Counter:
    """Anchors per language listed under a `# near-domain: ...` comment (the file's own block layout)."""
    counts: Counter = Counter()
    lang, near = "", False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line in ("ja:", "en:"):
            lang, near = line[:-1], False
        elif line.lstrip().startswith("#") and line.startswith("  "):
            near = line.strip().startswith("# near-domain:")
        elif line.startswith("  - ") and near:
            counts[lang] += 1
    return counts


def key(text: str) -> str:
    return normalize(text).casefold()


@pytest.fixture(scope="module")
def entries():
    return load_entries(DATA)


@pytest.mark.parametrize("name", SETS)
def test_every_line_has_a_kind_that_fits_its_expect(name):
    for number, row in enumerate(rows(name), start=1):
        assert row.get("kind") in MINIMUM, f"{name}.jsonl:{number}: kind {row.get('kind')!r}"
        in_scope = row["kind"] in ("in", "confusable")
        assert in_scope == bool(row["expect"]), f"{name}.jsonl:{number}: kind {row['kind']} with {row['expect']}"
        assert row["lang"] in LANGS, f"{name}.jsonl:{number}: lang {row['lang']!r}"


@pytest.mark.parametrize("name", SETS)
def test_counts_per_kind_and_language(name):
    counts = Counter((row["kind"], row["lang"]) for row in rows(name))
    short = {f"{kind}/{lang}": counts[kind, lang] for kind, least in MINIMUM.items() for lang in LANGS
             if counts[kind, lang] < least}
    assert not short, f"{name}.jsonl has too few queries (minimum {MINIMUM}): {short}"


def test_near_domain_anchors_per_language():
    counts = near_anchors(DATA / OUT_OF_SCOPE_FILE)
    assert all(counts[lang] >= MINIMUM_NEAR_ANCHORS for lang in LANGS), counts


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("group", PAIR_GROUPS)
def test_confusable_pairs_covered_from_both_sides(name, group):
    ids = PAIR_GROUPS[group]
    for lang in LANGS:
        found = [row for row in rows(name) if row["kind"] == "confusable" and row["lang"] == lang
                 and set(row["expect"]) <= ids]
        assert len(found) >= MINIMUM_PER_GROUP, f"{name}.jsonl {lang} {group}: {len(found)} confusable queries"
        assert len({i for row in found for i in row["expect"]}) >= 2, f"{name}.jsonl {lang} {group}: one side only"


@pytest.mark.parametrize("name", SETS)
def test_every_expected_id_exists(name, entries):
    read_queries(DATA / "eval" / f"{name}.jsonl", {e.id for e in entries})  # raises DataError naming the line


def test_no_question_in_two_places(entries):
    """tune, test, the anchors (with the per-entry counter-examples) and the alternates share no question."""
    places: dict[str, dict[str, str]] = {name: {key(row["q"]): row["q"] for row in rows(name)} for name in SETS}
    off_topic = load_out_of_scope(DATA, [])
    off_topic += [q for e in entries for q in (*getattr(e, "not_ja", ()), *getattr(e, "not_en", ()))]
    places["anchors"] = {key(q): q for q in off_topic}
    places["alternates"] = {key(q): q for e in entries for q in (*e.alt_ja, *e.alt_en)}
    names = list(places)
    shared = [(a, b, places[a][k]) for i, a in enumerate(names) for b in names[i + 1:]
              for k in places[a].keys() & places[b].keys()]
    assert not shared, f"questions in two places (normalised, casefolded): {shared}"
