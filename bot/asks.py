"""Asks: what kind of information a question asks for (a price, a number, a product, steps, a date, a name).

A question that shares a rare term with an entry but asks for something the entry never says ("what does
an LTO drive cost?" against the entry about LTO devices' hidden hard disks) is the bot's worst failure: a
confident official answer to the wrong question. Each entry lists in data/bilingual.yaml (`asks:`) which of
these kinds of information its official answer gives; search turns "the question asks for a kind the entry
does not give" into a signal. The patterns are plain Japanese and English phrasings, written from how
people ask, not from the labelled queries.
"""

from __future__ import annotations

import re
import unicodedata

#: Kinds of information a question can ask for, and what each means for `asks:` in bilingual.yaml.
ASK_KINDS = {
    "cost": "a price, fee or budget",
    "count": "a number, duration or frequency (how many, how long, how often)",
    "product": "a product, vendor, service or tool to choose or buy",
    "procedure": "steps or settings to configure or carry out something",
    "when": "a date or time",
    "who": "a person or organisation by name",
    "case": "another incident, hospital or organisation than the one the sheet discusses",
    "where": "a place, web page, link or contact point",
    "compare": "a comparison or choice between named options (which is better, X or Y)",
    "trouble": "a fix for a problem the asker has now (something broke, stopped, is slow)",
    "fact": "none of the above: facts, reasons, yes or no (the answer gives no price, number, product, ...)",
}

#: Alternatives per kind (joined with "|"), matched on the NFKC-normalised, case-folded question.
_PATTERNS: dict[str, tuple[str, ...]] = {
    "cost": (
        r"いくら|幾ら|費用|価格|値段|料金|相場|予算|見積|受講料|\d+\s*円",
        r"how much (is|does|do|would|will|are)|\bprices?\b|\bpricing\b|(what|how)\b.{0,30}\bcosts?\b",
        r"\bcosts? (to|of)\b|\bfees?\b|\bbudget|\bballpark|\bexpensive|\bcheap",
    ),
    "count": (
        r"何(年|日|回|人|台|個|件|社|分|秒|時間|か月|ヶ月|カ月|ケ月|週|層|文字|桁|床|割|%|％|倍|GB|TB)",
        r"(どの|どれ)(くらい|ぐらい|位)|頻度|耐用年数",
        r"how (many|long|often|frequently)|what percentage|\bnumber of\b|\bhow much time",
    ),
    "product": (
        r"おすすめ|オススメ|お勧め|お薦め|推奨(の|する|される)?(製品|ソフト|メーカー|ベンダー|ツール|機種|サービス)",
        r"(どの|どこの|どんな)(製品|ソフト|メーカー|ベンダー|会社|業者|サービス|ツール|機種|ブランド)",
        r"(製品|メーカー|ベンダー|業者|会社|サービス|ソフト)(は|が|を|って)?(どこ|どれ|何|なに|教えて|[?？]|$)",
        r"何を(買|導入|選)|どれを(買|導入|選)|(どれ|どこ)が(いい|良い|おすすめ)",
        r"\brecom+end|what (brand|product|vendor|software|tool)|\bbuy\b|\bpurchase|\bproducts\b",
        r"which (\w+ ){0,2}(products?|vendors?|company|companies|brands?|tools?|software|services?|firms?|clients?"
        r"|appliances?|solutions?|one)\b",
        r"\bbest\b.{0,30}(product|vendor|software|tool|client|appliance|service)",
        r"\balternatives? to\b|\bappliances?\b.{0,40}\?",
    ),
    "procedure": (
        r"設定方法|設定手順|手順|やり方|方法(を教え|は|$|[?？])|設定(は|を教え)?[?？]?$|どう(作|設定|構築)",
        r"(する|設定する|有効にする|無効にする|作る|変える)には",
        r"how (do|can|should) (i|we|you) (set|setup|configure|enable|disable|turn|install|build|add|change"
        r"|register|create)",
        r"\bhow to (set|setup|configure|enable|disable|turn|install|build|add)",
        r"step[- ]by[- ]step|\bprocedure\b|\bset ?up\b|\bconfigur(e|ing|ation steps)",
        r"^(enable|disable|turn (on|off)|install|configure)\b",
    ),
    "when": (
        r"いつ(?!でも|も)|何月|時期",
        r"\bwhen (will|would|is|are|was|were|do|does|did|can|could|should|shall)\b|what date|what time"
        r"|\bby when\b|\bhow soon\b",
    ),
    "who": (
        r"誰|どこの.{0,12}(病院|組織|団体|会社|業者|ベンダー|メーカー)",
        r"^who\b|\bwho('s| is| are| was| were| makes| runs| did)\b",
        r"which (\w+ ){0,2}(hospital|company|organi[sz]ation|firm)\b",
    ),
    "case": (r"事例|経緯|被害例|感染例|他院|他の病院|他病院|他施設|\bexamples? of\b|what happened|other hospitals?\b",),
    "where": (
        r"どこ(で|に|から|を見|に載)|窓口|連絡先|リンク|URL|サイトは",
        r"\bwhere (can|do|does|is|are|to|will|should)\b|\blinks?\b|\burl\b|\bcontact\b|\bwebsite\b",
    ),
    "compare": (
        r"どちらが|どっちが|どちらを|どっちを|のほうが(いい|良い|安全|上)|の方が(いい|良い|安全|上)",
        r"\bwhich (one )?(is|are|works|detects|protects) (better|safer|best|more)|\bvs\.?\b|\bversus\b"
        r"|\bcompared? (to|with)\b|\bbetter\b.{0,40}\bor\b|\bor\b.{0,40}\bwhich (is )?better",
    ),
    "trouble": (
        r"(しな|でき|動かな|使えな|つながらな|繋がらな)くなった|止まっ|起動しな|遅い|おそい|重い|エラーが|どうしよう",
        r"\bwon'?t (boot|start|work|connect)|\bdoesn'?t work|\bnot working|\bstopped working|\bwhat now\b|"
        r"\bblocked\b|\bslow\b|\berror\b|\bcrash",
    ),
}
_COMPILED = {kind: re.compile("|".join(alternatives)) for kind, alternatives in _PATTERNS.items()}


def asked_kinds(question: str) -> frozenset[str]:
    """The kinds of information (`ASK_KINDS` except "fact") a question asks for; empty when none is recognised."""
    text = unicodedata.normalize("NFKC", question).casefold().strip()
    return frozenset(kind for kind, pattern in _COMPILED.items() if pattern.search(text))


def asks_other(question_kinds: frozenset[str], entry_asks: tuple[str, ...]) -> float:
    """1.0 when the question asks for a kind of information the entry's answer does not give, else 0.0.

    An entry without `asks:` (e.g. a hospital's own FAQ) is never penalised: nobody said what it gives.
    """
    if not entry_asks:
        return 0.0
    return 1.0 if question_kinds - set(entry_asks) else 0.0
