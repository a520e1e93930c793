"""Text: normalisation, language guess and lexical tokens (fugashi + unidic-lite for Japanese).

One tokenizer serves both languages, because staff mix them ("RDPのポート"): MeCab splits the text,
Japanese words become the lemmas of content words, Latin words become lower-case Snowball stems.
"""

from __future__ import annotations

import re
import threading
import unicodedata

import fugashi
import snowballstemmer

from .errors import BotError

#: Part-of-speech (unidic pos1) of the words that carry meaning.
_CONTENT_POS = {"名詞", "動詞", "形容詞", "形状詞", "副詞", "接頭辞", "代名詞"}
#: Lemmas too common to help ranking (light verbs, formal nouns, the sheet's politeness).
_JA_STOP = {"為る", "居る", "有る", "成る", "事", "物", "此れ", "其れ", "有り", "下さる", "致す", "頂く", "思う",
            "言う", "良い", "様", "方", "所", "何", "貴方", "私", "御", "お", "ご", "出来る", "無い", "とき", "時",
            "場合", "ため", "為", "もの", "こと"}
_EN_STOP = frozenset("""
a an the and or but if of to in on at for from by with about as is are was were be been being do does did doing
have has had having i you he she it we they me my our your their this that these those what which who whom how why
when where can could should would will shall may might must not no yes so than then there here any some all just
also into out up over again more most very too please tell us know want need get got thanks thank hi hello
""".split())  # noqa: SIM905 - a word list reads best as text
_JA_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uff66-\uff9f]")
_LATIN = re.compile(r"[A-Za-z]")
_WORD = re.compile(r"^[a-z0-9][a-z0-9'._+-]*$")
_LONE_LETTER = re.compile(r"^[a-z]$")  # "s" of "what's", "a", ...: no meaning alone


def normalize(text: str) -> str:
    """NFKC (full-width letters and digits become ASCII), control characters removed, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return re.sub(r"\s+", " ", text).strip()


#: The languages the bot answers in, in display order.
LANGS = ("ja", "en")


def detect_lang(text: str) -> str:
    """`"ja"` or `"en"`: Japanese when a Japanese particle or auxiliary appears (Japanese grammar),
    or when Japanese characters outweigh Latin letters.

    Mixed questions such as "RDPのポート" or "Windows Updateの適用" are Japanese; "What is a 踏み台
    server" is English.
    """
    ja = len(_JA_CHAR.findall(text))
    if ja == 0:
        return "en"
    for word in _tagger()(text):
        if word.feature.pos1 in ("助詞", "助動詞") and not word.surface.isascii():
            return "ja"
    return "ja" if ja * 2 >= len(_LATIN.findall(text)) else "en"


#: One MeCab tagger and one Snowball stemmer per thread: a tagger keeps its lattice between calls and a stemmer
#: the word it is stemming, so two threads sharing one would corrupt each other's words (a shared stemmer
#: raised IndexError under load); they are cheap (the dictionary is memory-mapped and shared).
_local = threading.local()


def _tagger() -> fugashi.Tagger:
    tagger = getattr(_local, "tagger", None)
    if tagger is None:
        try:
            tagger = _local.tagger = fugashi.Tagger()
        except RuntimeError as err:  # fugashi explains dictionary problems; add what to do here
            raise BotError(
                f"Japanese tokenizer could not start ({err}); reinstall it with `pip install unidic-lite fugashi`"
            ) from err
    return tagger


def _stemmer() -> snowballstemmer.stemmer:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = snowballstemmer.stemmer("english")
    return stemmer


def tokens(text: str) -> list[str]:
    """Lexical tokens for BM25: lemmas of Japanese content words and stems of English words."""
    out: list[str] = []
    stem = _stemmer().stemWord
    for word in _tagger()(normalize(text)):
        surface = word.surface.lower()
        if surface.isascii():
            if _WORD.match(surface) and surface not in _EN_STOP and not _LONE_LETTER.match(surface):
                out.append(stem(surface.strip("'._+-")) or surface)
            continue
        feature = word.feature
        if feature.pos1 not in _CONTENT_POS or feature.pos2 == "非自立可能":
            continue
        lemma = (feature.lemma or surface).split("-")[0]  # "ポート-port" -> "ポート"
        if lemma not in _JA_STOP and surface not in _JA_STOP:
            out.append(lemma)
    return out
