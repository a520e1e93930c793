"""Trainers' data commands: `alt add` / `oos add` keep the YAML as people wrote it and refuse bad edits;
`check` reports leaks, alternates shared by two entries and alternates equal to out-of-scope anchors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bot.cli import main


def run(data, *args):
    result = CliRunner().invoke(main, ["--data", str(data), *args])
    return result.exit_code, result.output


def added_lines(before: str, after: str) -> list[str]:
    import difflib

    diff = [d for d in difflib.ndiff(before.splitlines(), after.splitlines()) if d[:2] in ("- ", "+ ")]
    assert not [d for d in diff if d.startswith("- ")], diff  # nothing existing was touched
    return [d[2:] for d in diff]


def test_alt_add_appends_one_line_and_keeps_comments_and_layout(data_copy):
    path = data_copy / "bilingual.yaml"
    before = path.read_text(encoding="utf-8")
    code, out = run(data_copy, "alt", "add", "qa-4", "en", "Is moving RDP off port 3389 worth it?")
    assert code == 0, out
    assert added_lines(before, path.read_text(encoding="utf-8")) == ['      - "Is moving RDP off port 3389 worth it?"']
    assert path.read_text(encoding="utf-8").startswith("# English translations and alternate questions")
    regression = (data_copy / "eval" / "regressions.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in regression][-1] == {"q": "Is moving RDP off port 3389 worth it?",
                                                             "lang": "en", "expect": ["qa-4"]}
    from bot.entries import load_entries

    qa4 = next(e for e in load_entries(data_copy) if e.id == "qa-4")
    assert qa4.alt_en[-1] == "Is moving RDP off port 3389 worth it?"


@pytest.mark.parametrize("args, message", [
    (["qa-999", "en", "a new question"], "unknown entry id 'qa-999'"),
    (["qa-1", "en", "What to do before police seize servers?"], "already a question of qa-1"),  # case, "?"
    (["qa-2", "en", "what to do before police seize servers"], "already a question of qa-1"),
    (["qa-1", "ja", "警察に機器を回収されるまで何をしておけばいいですか？"], "labelled evaluation query"),
    (["qa-1", "ja", "今日の天気は?"], "out-of-scope anchor"),
    (["qa-1", "ja", "   "], "empty"),
    (["qa-1", "ja", "警察にはどこの窓口に被害届を出せばいいですか"], "counter-example (not_ja) of qa-1"),
])
def test_alt_add_refuses_and_changes_nothing(data_copy, args, message):
    path, regressions = data_copy / "bilingual.yaml", data_copy / "eval" / "regressions.jsonl"
    before, kept = path.read_bytes(), regressions.read_bytes() if regressions.exists() else None
    code, out = run(data_copy, "alt", "add", *args)
    assert code == 1 and message in out
    assert path.read_bytes() == before and (regressions.read_bytes() if regressions.exists() else None) == kept


def test_oos_add_appends_to_its_language_list(data_copy):
    path = data_copy / "out_of_scope.yaml"
    before = path.read_text(encoding="utf-8")
    code, out = run(data_copy, "oos", "add", "ja", "売店は何時まで開いていますか")
    assert code == 0, out
    assert added_lines(before, path.read_text(encoding="utf-8")) == ['  - "売店は何時まで開いていますか"']
    from bot.entries import load_out_of_scope

    anchors = load_out_of_scope(data_copy, [])
    assert "売店は何時まで開いていますか" in anchors
    assert anchors.index("売店は何時まで開いていますか") < anchors.index("hello")  # in the ja list, before en
    code, out = run(data_copy, "oos", "add", "en", "What to do before police seize servers")
    assert code == 1 and "an entry answers it" in out


def test_check_reports_a_leak_and_an_alternate_equal_to_an_anchor(data_copy):
    path = data_copy / "bilingual.yaml"
    text = path.read_text(encoding="utf-8")
    anchor = "今日の天気は?"
    test_query = json.loads((data_copy / "eval" / "test.jsonl").read_text(encoding="utf-8").splitlines()[0])["q"]
    marker = '      - "警察 押収 前 やること"\n'
    assert marker in text
    text = text.replace(marker, marker + f'      - "{test_query}"\n      - "{anchor}"\n', 1)
    path.write_text(text, encoding="utf-8")
    lines = text.splitlines()
    code, out = run(data_copy, "check")
    assert code == 1
    leak_line = lines.index(f'      - "{test_query}"') + 1
    anchor_line = lines.index(f'      - "{anchor}"') + 1
    assert f"bilingual.yaml:{leak_line}: qa-1.alt_ja {test_query!r} is the labelled test query" in out
    assert f"bilingual.yaml:{anchor_line}: qa-1.alt_ja {anchor!r} is also an out-of-scope anchor" in out


def test_check_reports_an_alternate_under_two_entries(data_copy):
    path = data_copy / "bilingual.yaml"
    before = path.read_text(encoding="utf-8")
    code, out = run(data_copy, "check")
    assert code == 0, out  # the shipped data is clean
    CliRunner().invoke(main, ["--data", str(data_copy), "alt", "add", "qa-3", "en", "brand new phrasing"])
    text = path.read_text(encoding="utf-8").replace('- "brand new phrasing"', '- "what to do before police seize '
                                                     'servers"')
    path.write_text(text, encoding="utf-8")
    lines = text.splitlines()  # the copy under qa-3, after qa-1's own
    line = lines.index('      - "what to do before police seize servers"', lines.index("  qa-3:")) + 1
    code, out = run(data_copy, "check")
    assert code == 1
    assert f"bilingual.yaml:{line}: qa-3.alt_en 'what to do before police seize servers' is also under qa-1" in out
    assert before != text


def test_alt_add_refuses_an_edit_that_would_rewrite_existing_lines(data_copy):
    path = data_copy / "bilingual.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = lines.index("  qa-12:\n")
    at = next(i for i in range(start, len(lines)) if lines[i] == "    alt_en:\n")
    end = next(i for i in range(at + 1, len(lines)) if not lines[i].startswith("      - "))
    items = [line.strip()[2:] for line in lines[at + 1:end]]
    lines[at:end] = [f"    alt_en: [{', '.join(items)}]\n"]  # the same list, written in flow style
    path.write_text("".join(lines), encoding="utf-8")
    before = path.read_bytes()
    code, out = run(data_copy, "alt", "add", "qa-12", "en", "is the driver why we can't upgrade Windows")
    assert code == 1 and "would rewrite existing lines" in out
    assert path.read_bytes() == before
