"""Entries: the real sheet parsed exactly, translations complete, every malformed input reported with file:line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.entries import clean_cell, collect, load_entries
from bot.errors import DataError

from .conftest import DATA, ROOT

SHEET = "000_e301f9683733c836.txt"
EXPECTED = [  # id, section, number, line
    ("qa-1", "質疑応答", 1, 5), ("qa-2", "質疑応答", 2, 6), ("qa-3", "質疑応答", 3, 7), ("qa-4", "質疑応答", 4, 8),
    ("qa-5", "質疑応答", 5, 9), ("qa-6", "質疑応答", 6, 10), ("qa-7", "質疑応答", 7, 11), ("qa-8", "質疑応答", 8, 12),
    ("qa-9", "質疑応答", 9, 13), ("qa-10", "質疑応答", 10, 14), ("qa-11", "質疑応答", 11, 15),
    ("qa-12", "質疑応答", 12, 18), ("archive-1", "資料・アーカイブ", 1, 20), ("archive-2", "資料・アーカイブ", 2, 21),
    ("archive-3", "資料・アーカイブ", 3, 22), ("other-1", "その他", 1, 24), ("other-2", "その他", 2, 25),
]


def faqbot(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], input=stdin, capture_output=True, cwd=ROOT,
                          timeout=300)


def test_sheet_is_the_official_copy():
    seed = ROOT.parent / "shared" / "seed" / SHEET
    if seed.exists():  # beside a checkout; CI lays shared/ next to the clone
        assert (DATA / SHEET).read_bytes() == seed.read_bytes()
    assert (DATA / SHEET).read_bytes().count(b"\n") == 24


def test_all_17_rows_with_exact_ids_sections_and_lines():
    entries = load_entries(DATA)
    assert [(e.id, e.section, e.number, e.line) for e in entries] == EXPECTED
    assert {e.source for e in entries} == {SHEET}
    assert {e.section_en for e in entries} == {"Q&A", "Materials and archive", "Other"}


def test_two_entries_have_no_official_answer():
    entries = {e.id: e for e in load_entries(DATA)}
    assert [i for i, e in entries.items() if not e.has_answer] == ["archive-2", "archive-3"]
    assert entries["archive-2"].answer == "" and entries["archive-2"].answer_en == ""


def test_html_becomes_paragraphs_and_links_with_the_official_wording():
    entries = {e.id: e for e in load_entries(DATA)}
    for e in entries.values():
        for text in (e.question, e.answer):
            assert "<p>" not in text and "<a " not in text and "</" not in text
    assert entries["archive-1"].answer == (
        "本事業終了時(年度末頃)に、公開予定です。\n\n"
        "公開した際には、MISTサイト( https://mhlw-training.saj.or.jp/ )からお知らせいたします。"
    )
    assert entries["archive-1"].links == ("https://mhlw-training.saj.or.jp/",)
    assert entries["qa-12"].question.count("\n\n") == 2
    assert entries["qa-12"].answer.startswith("ご指摘通り、最新のセキュリティパッチを適用し")
    # typos of the official text are kept: it is the authority
    assert "ワクシン" in entries["qa-1"].answer and "目録以外に方法は無い" in entries["qa-2"].answer


@pytest.mark.parametrize("cell, text, links", [
    ("plain text", "plain text", ()),
    ("<p>a</p> <p>b</p>", "a\n\nb", ()),
    ('<p>see <a href="https://x.example/">here</a></p>', "see here (https://x.example/)", ("https://x.example/",)),
    ('<a href="javascript:alert(1)">click</a>', "click", ()),
    ("&lt;b&gt; &amp; text", "<b> & text", ()),
])
def test_clean_cell(cell, text, links):
    assert clean_cell(cell) == (text, links)


def test_every_entry_has_a_faithful_translation_and_alternates():
    for e in load_entries(DATA):
        assert e.question_en and (e.answer_en or not e.has_answer), e.id
        assert len(e.alt_ja) >= 4 and len(e.alt_en) >= 4, e.id


def test_entries_json_lines_keep_their_names():
    result = faqbot("entries", "--json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(rows) == 17
    required = {"id", "section", "number", "question", "answer", "has_answer", "question_en", "answer_en",
                "source", "line"}
    assert all(required <= set(r) for r in rows)
    assert rows[13]["id"] == "archive-2" and rows[13]["answer"] == "" and rows[13]["has_answer"] is False


def test_check_passes_on_the_real_data():
    result = faqbot("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert b"OK: 17 entries" in result.stdout


# --------------------------------------------------------------------------- malformed input


def _break(data: Path, name: str, old: bytes, new: bytes) -> None:
    path = data / name
    content = path.read_bytes()
    assert old in content
    path.write_bytes(content.replace(old, new, 1))


def _problems(data: Path) -> list[str]:
    return [str(p) for p in collect(data)[1]]


def test_wrong_column_count_is_reported_with_its_line(data_copy):
    _break(data_copy, SHEET, "5\t管理者IDと".encode(), "5\t管理者ID\tと".encode())
    problems = _problems(data_copy)
    assert problems == [f"{data_copy / SHEET}:9: expected 3 tab-separated columns (number, question, answer), found 4"]


def test_undecodable_bytes_are_reported_with_their_line(data_copy):
    _break(data_copy, SHEET, "今回の公演資料".encode(), b"\xff\xfe\x80")
    problems = _problems(data_copy)
    assert any(p.startswith(f"{data_copy / SHEET}:20: bytes that are not UTF-8") for p in problems), problems


def test_duplicate_ids_are_reported(data_copy):
    _break(data_copy, SHEET, "6\t今回は".encode(), "5\t今回は".encode())
    problems = _problems(data_copy)
    assert f"{data_copy / SHEET}:10: duplicate id qa-5 (also {SHEET}:9)" in problems
    assert not any("qa-6" in p and "unknown" not in p for p in problems if "duplicate" in p)


def test_empty_question_is_reported(data_copy):
    question = "大阪急性期医療センターではHIS系ネットワークはそもそもインターネット抜けしていなかったのですか？"
    _break(data_copy, SHEET, f"7\t{question}\t".encode(), b"7\t\t")
    assert f"{data_copy / SHEET}:11: empty question" in _problems(data_copy)


def test_unknown_id_in_translation_file_is_reported(data_copy):
    path = data_copy / "bilingual.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "  qa-99:\n    question_en: ghost\n", encoding="utf-8")
    line = len(path.read_text(encoding="utf-8").splitlines()) - 1
    assert f"{path}:{line}: unknown entry id 'qa-99': no source row has this id" in _problems(data_copy)


def test_missing_translation_is_reported_at_the_sheet_row(data_copy):
    path = data_copy / "bilingual.yaml"
    text = path.read_text(encoding="utf-8")
    start, end = text.index("  qa-3:\n"), text.index("  qa-4:\n")
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    assert _problems(data_copy) == [f"{data_copy / SHEET}:7: qa-3 has no English translation in {path}"]


def test_control_character_in_data_is_reported(data_copy):
    _break(data_copy, SHEET, "前回、突発事項".encode(), "前回、\x00突発事項".encode())
    assert f"{data_copy / SHEET}:24: question contains a control character; remove it" in _problems(data_copy)


def test_invalid_yaml_is_reported(data_copy):
    (data_copy / "bilingual.yaml").write_text("entries:\n  qa-1: [unclosed\n", encoding="utf-8")
    problems = _problems(data_copy)
    assert problems[0].startswith(f"{data_copy / 'bilingual.yaml'}:") and "not valid YAML" in problems[0]


def test_load_entries_raises_with_every_problem_and_changes_nothing(data_copy):
    before = {p.name: p.read_bytes() for p in data_copy.iterdir() if p.is_file()}
    _break(data_copy, SHEET, "5\t管理者IDと".encode(), "5\t管理者ID\tと".encode())
    _break(data_copy, SHEET, "6\t今回は".encode(), "7\t今回は".encode())
    with pytest.raises(DataError) as caught:
        load_entries(data_copy)
    # the bad row, the duplicate qa-7, and the translation of qa-6 that no row has any more
    qa6_line = (data_copy / "bilingual.yaml").read_text(encoding="utf-8").splitlines().index("  qa-6:") + 1
    assert [p.line for p in caught.value.problems] == [9, 11, qa6_line]
    assert "faqbot check" in str(caught.value)
    after = {p.name: p.read_bytes() for p in data_copy.iterdir() if p.is_file()}
    assert {k for k in before if before[k] != after[k]} == {SHEET}  # only what the test itself broke


def test_faqbot_check_lists_problems_and_fails(data_copy):
    _break(data_copy, SHEET, "5\t管理者IDと".encode(), "5\t管理者ID\tと".encode())
    result = faqbot("--data", str(data_copy), "check")
    assert result.returncode == 1
    assert f"{data_copy / SHEET}:9: expected 3".encode() in result.stdout


# --------------------------------------------------------------------------- more sources


def test_a_hospital_csv_gets_prefixed_ids_that_never_collide(data_copy):
    (data_copy / "ourhosp.csv").write_text(
        'question,answer\n"VPNのパスワードを忘れた","情報システム課（内線 1234）へ連絡してください。"\n'
        '"Who do I call about a phishing mail?","Call the IT desk, ext. 1234."\n', encoding="utf-8")
    with (data_copy / "sources.yaml").open("a", encoding="utf-8") as handle:
        handle.write("  - file: ourhosp.csv\n    name: ourhosp\n    format: table\n")
    entries, problems = collect(data_copy)
    assert problems == []
    extra = [e for e in entries if e.source == "ourhosp.csv"]
    assert [(e.id, e.line, e.section) for e in extra] == [("ourhosp-1", 2, "ourhosp"), ("ourhosp-2", 3, "ourhosp")]
    assert len({e.id for e in entries}) == 19


def test_a_second_sheet_in_the_official_format_is_prefixed(data_copy):
    (data_copy / "extra.txt").write_text("#\t質問\t回答\n1\t質問A\t回答A\nその他\t\t\n1\t質問B\t\n", encoding="utf-8")
    with (data_copy / "sources.yaml").open("a", encoding="utf-8") as handle:
        handle.write("  - file: extra.txt\n    name: extra\n    format: sheet\n")
    entries, problems = collect(data_copy)
    assert problems == []
    assert [(e.id, e.line, e.has_answer) for e in entries if e.source == "extra.txt"] == [
        ("extra-qa-1", 2, True), ("extra-other-1", 4, False)]


def test_a_malformed_csv_row_is_reported(data_copy):
    (data_copy / "bad.tsv").write_text("question\tanswer\nonly one column\n", encoding="utf-8")
    with (data_copy / "sources.yaml").open("a", encoding="utf-8") as handle:
        handle.write("  - file: bad.tsv\n    name: bad\n    format: table\n")
    assert _problems(data_copy) == [f"{data_copy / 'bad.tsv'}:2: expected 2 columns (question, answer), found 1"]


def test_unreadable_source_is_reported(data_copy):
    (data_copy / SHEET).unlink()
    (data_copy / SHEET).mkdir()  # a folder where the sheet should be: unreadable as a file
    problems = _problems(data_copy)
    assert any("does not exist" in p or "cannot be read" in p for p in problems), problems


def test_out_of_scope_anchors_are_validated(data_copy):
    path = data_copy / "out_of_scope.yaml"
    path.write_text("ja:\n  - 今日の天気は？\nfr:\n  - bonjour\nen: oops\n", encoding="utf-8")
    problems = _problems(data_copy)
    assert problems == [f"{path}:3: unknown key 'fr': use ja or en", f"{path}:5: en must be a list of strings"]


# --------------------------------------------------------------------------- see_also and counter-examples


def _add_under(data: Path, entry_id: str, lines: str) -> tuple[Path, int]:
    """Insert `lines` right under `entry_id:` in bilingual.yaml; returns the file and the first inserted line."""
    path = data / "bilingual.yaml"
    text = path.read_text(encoding="utf-8")
    for key in ("see_also", "not_ja", "not_en"):  # replaces the data's own lists of that key
        if f"{key}:" in lines:
            text = re.sub(rf"(?m)^    {key}:.*\n(?:      .*\n)*", "", text)
    head = text.index(f"  {entry_id}:\n") + len(f"  {entry_id}:\n")
    path.write_text(text[:head] + lines + text[head:], encoding="utf-8")
    return path, text[:head].count("\n") + 1


def test_see_also_names_answered_entries(data_copy):
    path, line = _add_under(data_copy, "archive-3", "    see_also: [archive-1, other-1]\n")
    assert _problems(data_copy) == []
    entries = {e.id: e for e in collect(data_copy)[0]}
    assert entries["archive-3"].see_also == ("archive-1", "other-1")
    assert entries["archive-3"].to_json()["see_also"] == ["archive-1", "other-1"]


@pytest.mark.parametrize("targets, message", [
    ("[qa-99]", "archive-3.see_also: unknown entry id 'qa-99'"),
    ("[archive-2]", "archive-3.see_also: archive-2 has no official answer to show; name an entry that has one"),
    ("[archive-3]", "archive-3.see_also names archive-3 itself; name other entries"),
])
def test_bad_see_also_is_reported_with_its_line(data_copy, targets, message):
    path, line = _add_under(data_copy, "archive-3", f"    see_also: {targets}\n")
    assert _problems(data_copy) == [f"{path}:{line}: {message}"]
    with pytest.raises(DataError):
        load_entries(data_copy)


def test_counter_examples_load_and_may_not_be_alternates(data_copy):
    _add_under(data_copy, "qa-3", "    not_en:\n      - \"Which antivirus product should we buy?\"\n")
    assert _problems(data_copy) == []
    qa3 = next(e for e in collect(data_copy)[0] if e.id == "qa-3")
    assert qa3.not_en == ("Which antivirus product should we buy?",)
    alternate = qa3.alt_ja[0]
    path, line = _add_under(data_copy, "qa-3", f"    not_ja:\n      - \"{alternate}\"\n")
    assert _problems(data_copy) == [
        f"{path}:{line + 1}: qa-3.not_ja: {alternate!r} is also an alternate question of qa-3; an entry cannot both "
        "answer and not answer it — remove one"]


def test_a_key_given_twice_is_reported_not_silently_dropped(data_copy):
    """YAML keeps the last of two equal keys: a trainer's first list would vanish without a word."""
    path, line = _add_under(data_copy, "qa-3", "    asks: [fact]\n    asks: [cost]\n")
    problems = _problems(data_copy)
    assert f"{path}:{line + 1}: qa-3: 'asks' appears twice; merge the two into one" in problems
    assert all("appears twice" in p for p in problems) and len(problems) == 2  # and the data's own asks line
    with pytest.raises(DataError):
        load_entries(data_copy)
