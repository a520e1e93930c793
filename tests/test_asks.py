"""What a question asks for: a table of real phrasings (ja and en) and the kinds they ask for, and the signal."""

from __future__ import annotations

import pytest

from bot.asks import ASK_KINDS, asked_kinds, asks_other
from bot.entries import load_entries

from .conftest import DATA


@pytest.mark.parametrize("question, kinds", [
    ("LTOドライブの値段は？", {"cost"}),
    ("how much does a jump server cost to run per year?", {"cost"}),
    ("RDPのセッションタイムアウトは何分にすべき？", {"count"}),
    ("how long should we keep VPN logs", {"count"}),
    ("ウイルス対策ソフトは何を買うべき？", {"product"}),
    ("can you recommend an EDR product", {"product"}),
    ("VPNの設定手順を教えて", {"procedure"}),
    ("how do we configure MFA on the VPN", {"procedure"}),
    ("次の研修はいつですか", {"when"}),
    ("who was the attacker", {"who"}),
    ("他の病院での被害事例はありますか", {"case"}),
    ("相談窓口はどこですか", {"where"}),
    ("PC won't boot after the update", {"trouble"}),
    ("ポートスキャンの検知はIDSとEDRのどちらがいい？", {"compare"}),
    ("which is better for detecting port scans, an IDS or EDR?", {"compare"}),
    ("firewall vs edr", {"compare"}),
    ("When will the archive streaming start?", {"when"}),
    # what the sheet's entries do answer: no special kind
    ("RDPのポートを変更する意味は？", set()),
    ("How should we store admin passwords?", set()),
    ("ベンダーがいつでもVPN接続できる状態ってまずい？", set()),  # いつでも is "any time", not a date
    ("Is there a low-cost way to run several jump servers?", set()),  # "low-cost" asks for no price
    # "when" as a conjunction asks for no date
    ("When you moved RDP off 3389, did every machine get a different port?", set()),
    ("What can we demand when an overseas vendor insists on its own remote line?", set()),
])
def test_asked_kinds(question, kinds):
    assert asked_kinds(question) == kinds


def test_asks_other():
    assert asks_other(frozenset({"cost"}), ("fact", "procedure")) == 1.0
    assert asks_other(frozenset({"procedure"}), ("fact", "procedure")) == 0.0
    assert asks_other(frozenset(), ("fact",)) == 0.0
    assert asks_other(frozenset({"cost"}), ()) == 0.0  # nobody said what the entry gives: no penalty


def test_every_official_entry_says_what_it_gives():
    entries = load_entries(DATA)
    assert all(e.asks and set(e.asks) <= set(ASK_KINDS) for e in entries)
    by_id = {e.id: e for e in entries}
    assert "count" in by_id["qa-11"].asks and "cost" not in by_id["qa-10"].asks


def test_unknown_ask_kind_is_reported(data_copy):
    from bot.entries import collect

    path = data_copy / "bilingual.yaml"
    text = path.read_text(encoding="utf-8").replace("  qa-4:\n    asks: [fact]\n", "  qa-4:\n    asks: [fact, price]\n")
    path.write_text(text, encoding="utf-8")
    line = text[: text.index("asks: [fact, price]")].count("\n") + 1
    problems = [str(p) for p in collect(data_copy)[1]]
    assert problems == [f"{path}:{line}: qa-4.asks: unknown kind 'price'; use " + ", ".join(ASK_KINDS)]
