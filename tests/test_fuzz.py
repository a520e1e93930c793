"""Fuzz: random bytes and random JSON into `faqbot batch`, random bytes and text into the data loaders.

Bounded for CI (derandomized, 15-150 examples each, ~30 s in all): `batch` must give exactly one line of
strict JSON per non-blank input line and never a traceback; the sheet, CSV and YAML loaders (`faqbot check`)
must report problems with file:line, never raise.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import cli as cli_module
from bot.entries import load_out_of_scope, load_sources, load_translations, parse_sheet, parse_table

from .conftest import DATA

BOM = b"\xef\xbb\xbf"
FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LOADERS = settings(FUZZ, max_examples=150)


@pytest.fixture(scope="module")
def run_batch(bot):
    """`faqbot batch` in-process over the session's bot."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli_module, "_open_bot", lambda settings: bot)
        yield lambda stdin: CliRunner().invoke(cli_module.main, ["batch"], input=stdin)


def expected_lines(stdin: bytes) -> int:
    """Input lines `batch` answers: every line but blank ones (a BOM before the first line is not content)."""
    pieces = stdin.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()
    pieces[:1] = [p.removeprefix(BOM) for p in pieces[:1]]
    return sum(1 for p in pieces if p.strip())


def check_batch(run_batch, stdin: bytes) -> list[dict]:
    result = run_batch(stdin)
    assert result.exception is None and result.exit_code == 0, result.output[-2000:]
    out = [json.loads(line, parse_constant=lambda name: pytest.fail(f"bare {name} in batch output"))
           for line in result.stdout.splitlines()]
    assert len(out) == expected_lines(stdin), result.stdout[-2000:]
    assert all(isinstance(row, dict) and row["status"] in {"answered", "no_official_answer", "ambiguous",
                                                           "no_match", "error"} for row in out)
    return out


@FUZZ
@given(st.lists(st.binary(max_size=120), min_size=1, max_size=5), st.booleans())
def test_batch_random_bytes(run_batch, lines, bom):
    check_batch(run_batch, (BOM if bom else b"") + b"\n".join(lines) + b"\n")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
rows = st.dictionaries(st.sampled_from(["id", "meta", "lang", "results", "status"]), json_values, max_size=3).flatmap(
    lambda extra: st.one_of(st.just(extra), st.text(max_size=60).map(lambda q: {**extra, "q": q}),
                            json_values.map(lambda q: {**extra, "q": q})))


@settings(FUZZ, max_examples=15)  # most of these lines are real questions: each is answered
@given(st.lists(rows | json_values, min_size=1, max_size=4))
def test_batch_random_json(run_batch, values):
    stdin = "\n".join(json.dumps(v, ensure_ascii=bool(len(values) % 2)) for v in values).encode("utf-8", "replace")
    out = check_batch(run_batch, stdin + b"\n")
    for value, row in zip(values, out, strict=True):
        if isinstance(value, dict) and isinstance(value.get("q"), str) and not _has_nonfinite(value):
            assert row["status"] != "error" or row.get("error") == "empty question", row
        else:
            assert row["status"] == "error"


def _has_nonfinite(value) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(_has_nonfinite(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nonfinite(v) for v in value.values())
    return False


# --------------------------------------------------------------------------- loaders


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def check_loader(folder: Path, name: str, content: bytes) -> None:
    """The loader of `name` over `content`: problems with file:line, never an exception."""
    path = folder / name
    path.write_bytes(content)
    problems: list = []
    if name == "sheet.txt":
        parse_sheet(path, "", problems, set())
    elif name == "table.csv":
        parse_table(path, "extra", problems)
    elif name == "bilingual.yaml":
        load_translations(path, problems)
    elif name == "sources.yaml":
        load_sources(folder, problems)
    else:
        load_out_of_scope(folder, problems)
    for problem in problems:
        assert problem.path == path and problem.line >= 1 and str(problem).startswith(f"{path}:{problem.line}: ")


TABLES = st.sampled_from(["sheet.txt", "table.csv"])
YAML_FILES = st.sampled_from(["bilingual.yaml", "sources.yaml", "out_of_scope.yaml"])
SHEET_ALPHABET = st.sampled_from(list("0123456789１２\t\t\n\r,\"<>/ap質疑応答 href=\"http://x\"&;#\x00\x07\ufeff"))
YAML_ALPHABET = st.sampled_from(list(":-[]{}&*!|>'\"#%@`,? \n\n\t\\abqa1あ\ufeff"))


@LOADERS
@given(st.one_of(st.binary(max_size=400), st.text(SHEET_ALPHABET, max_size=300).map(
    lambda t: t.encode("utf-8", "surrogatepass"))), TABLES)
def test_sheet_and_csv_loaders(folder, content, name):
    check_loader(folder, name, content)


@LOADERS
@given(st.one_of(st.binary(max_size=300), st.text(YAML_ALPHABET, max_size=300).map(str.encode)), YAML_FILES)
def test_yaml_loaders_random_bytes_and_syntax(folder, content, name):
    check_loader(folder, name, content)


scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
nodes = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(scalars, inner, max_size=3),
                     max_leaves=10)
FIELDS = ["question_en", "answer_en", "alt_ja", "alt_en", "not_ja", "not_en", "see_also", "other"]
translations = st.dictionaries(st.sampled_from(["qa-1", "qa-2", "archive-2", "nope"]),
                               st.dictionaries(st.sampled_from(FIELDS), nodes, max_size=4) | nodes, max_size=3)
source_items = st.lists(st.dictionaries(st.sampled_from(["file", "name", "format", "official", "title", "url"]),
                                        nodes, max_size=5) | nodes, max_size=3)


@LOADERS
@given(st.one_of(translations.map(lambda t: {"entries": t}), source_items.map(lambda s: {"sources": s}), nodes,
                 st.dictionaries(st.sampled_from(["ja", "en"]), nodes, max_size=2)), YAML_FILES)
def test_yaml_loaders_random_structure(folder, document, name):
    check_loader(folder, name, yaml.safe_dump(document, allow_unicode=True).encode())


def test_check_reports_random_yaml_without_a_traceback(tmp_path):
    """The whole `faqbot check` (trainers' findings included) over a broken and a mis-shaped bilingual file."""
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    for content in ["entries: [qa-1, {a: *x}", "entries:\n  qa-1: [1, 2]\n  qa-2:\n    alt_ja: {a: 1}\n"]:
        (data / "bilingual.yaml").write_text(content, encoding="utf-8")
        result = CliRunner().invoke(cli_module.main, ["--data", str(data), "check"])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output[-2000:]
        assert f"{data / 'bilingual.yaml'}:" in result.output
