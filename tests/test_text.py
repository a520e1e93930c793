"""Text: NFKC, language guess and fugashi tokens, as tables of real Japanese and English text."""

from __future__ import annotations

import pytest

from bot.text import detect_lang, normalize, tokens


@pytest.mark.parametrize("text, expected", [
    ("ＲＤＰ　ポート", "RDP ポート"),  # full-width letters and space
    ("パスワード\x00保管\t方法\n", "パスワード 保管 方法"),  # control characters
    ("  16桁の  PW ", "16桁の PW"),
    ("ｶﾀｶﾅ", "カタカナ"),  # half-width katakana
])
def test_normalize(text, expected):
    assert normalize(text) == expected


@pytest.mark.parametrize("text, lang", [
    ("RDPのポートを変更する意味は？", "ja"),
    ("パスワード保存場所どこ？", "ja"),
    ("Windows Updateの適用", "ja"),  # a Japanese particle makes it Japanese
    ("LTO HDD 暗号化", "ja"),
    ("Does changing the RDP port help?", "en"),
    ("What is a 踏み台 server", "en"),  # one Japanese term in an English sentence
    ("vpn jump server vendors", "en"),
    ("", "en"),
])
def test_detect_lang(text, lang):
    assert detect_lang(text) == lang


@pytest.mark.parametrize("text, expected", [
    ("RDPのポートを変更する意味は？", ["rdp", "ポート", "変更", "意味"]),
    ("管理者IDとパスワードの保管は、どのようにするのが安全でしょうか。", ["管理", "id", "パスワード", "保管", "安全"]),
    ("踏み台サーバを使用したVPN接続", ["踏み台", "サーバー", "使用", "vpn", "接続"]),  # lemma: サーバ -> サーバー
    ("LTO装置のハードディスクも暗号化されていた", ["lto", "装置", "ハードディスク", "暗号"]),
    ("Does changing the RDP port help?", ["chang", "rdp", "port", "help"]),
    ("passwords stored safely", ["password", "store", "safe"]),
    ("？！…", []),
])
def test_tokens(text, expected):
    assert tokens(text) == expected
