"""Compliance keywords (opt-out, opt-in, help) in several languages: exact single word, any
case, accents optional (ARRET = ARRÊT), a trailing full stop or exclamation mark (and an
opening ¡) tolerated.

The words come per language (:data:`DEFAULT_OPT_OUT_WORDS` … and the settings
``SMSHUB_OPT_OUT_WORDS`` … which replace a language's list, see ``docs/opt-outs.md``); a
:class:`KeywordTable` folds them once into one dict, normalised word → (kind, languages),
so that classifying an inbound SMS — which every one of them is — is a strip, a length
check and, for a short text, one normalisation and one dict lookup. This module imports
nothing of the hub: ``hub.settings`` builds the table the running hub uses.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Keyword = Literal["stop", "start", "help"]

#: Opt-out words by language. English: the CTIA / carrier set (Twilio's STOP filtering);
#: the others: what carriers and SMS platforms of those markets answer (Canada requires
#: ARRET, Spain's and Latin America's BAJA, Germany's STOPP, Brazil's SAIR / PARAR).
DEFAULT_OPT_OUT_WORDS: dict[str, tuple[str, ...]] = {
    "en": (
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
        "OPT OUT",
    ),
    "es": ("BAJA", "ALTO", "PARAR", "CANCELAR", "DETENER", "ANULAR"),
    "fr": ("ARRÊT", "ARRÊTER", "STOP", "DÉSABONNER", "DÉSINSCRIRE", "DÉSINSCRIPTION"),
    "de": ("STOPP", "ABMELDEN", "ABBESTELLEN", "AUSTRAGEN", "ENDE", "KÜNDIGEN", "KUENDIGEN"),
    "pt": ("PARAR", "SAIR", "CANCELAR", "DESCADASTRAR", "DESINSCREVER"),
}
#: Opt-in words by language. "Yes" in other languages (SI, OUI, JA, SIM) is deliberately
#: not one: it is an ordinary answer to a flow's question, and an opt-in word never
#: reaches flows (only the English YES has the "opt-in only when opted out" rule).
DEFAULT_OPT_IN_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("START", "YES", "UNSTOP"),
    "es": ("ALTA", "INICIAR", "COMENZAR"),
    "fr": ("COMMENCER", "ABONNER", "RÉABONNER"),
    "de": ("START", "ANMELDEN"),
    "pt": ("INICIAR", "VOLTAR", "RECADASTRAR"),
}
#: Help words by language.
DEFAULT_HELP_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("HELP", "INFO"),
    "es": ("AYUDA",),
    "fr": ("AIDE",),
    "de": ("HILFE",),
    "pt": ("AJUDA",),
}
#: Opt-in words that are also ordinary answers ("Reply YES to confirm"): they opt a contact
#: back in only if it is opted out, and otherwise reach flows like any text.
ANSWER_WORDS = frozenset({"YES"})
#: The combining marks (the Unicode blocks of them) that accents decompose into; a regex
#: drops them in one C pass, a per-character test would cost ten times that.
_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
#: A text this much longer than the longest keyword is no keyword, however it is spaced or
#: accented: the hot path's early exit for ordinary messages.
_SLACK = 16


@dataclass(frozen=True, slots=True)
class KeywordMatch:
    """A message that is a compliance keyword: its kind, the normalised word, and the
    languages whose list has that word (sorted)."""

    kind: Keyword
    word: str
    languages: tuple[str, ...]

    @property
    def language(self) -> str | None:
        """The keyword's language when only one language has it (BAJA → "es"), else None
        (PARAR is Spanish and Portuguese, STOP English and French)."""
        return self.languages[0] if len(self.languages) == 1 else None

    @property
    def is_answer(self) -> bool:
        """True for an opt-in word that is also an ordinary answer (YES)."""
        return self.word in ANSWER_WORDS


def normalize(text: str) -> str:
    """A text as keywords are compared: spaces trimmed and collapsed, a trailing full stop
    or exclamation mark dropped (and Spanish's opening ¡), upper case, accents removed
    (É → E; ß → SS)."""
    word = " ".join(text.strip().lstrip("¡").rstrip(".!").split()).upper()
    if word.isascii():
        return word
    return _MARKS.sub("", unicodedata.normalize("NFKD", word))


class KeywordTable:
    """Every compliance word of every language, folded into one dict (built once per
    settings; a word of two kinds is refused)."""

    def __init__(
        self,
        opt_out: Mapping[str, Iterable[str]],
        opt_in: Mapping[str, Iterable[str]],
        help_words: Mapping[str, Iterable[str]],
    ) -> None:
        found: dict[str, tuple[Keyword, set[str]]] = {}
        kinds: tuple[tuple[Keyword, Mapping[str, Iterable[str]]], ...] = (
            ("stop", opt_out),
            ("start", opt_in),
            ("help", help_words),
        )
        self._lists: dict[Keyword, dict[str, tuple[str, ...]]] = {}
        for kind, words in kinds:
            self._lists[kind] = {language: tuple(listed) for language, listed in words.items()}
            for language, listed in self._lists[kind].items():
                for raw in listed:
                    _add(found, kind, language, raw)
        self._matches = {
            word: KeywordMatch(kind, word, tuple(sorted(languages)))
            for word, (kind, languages) in found.items()
        }
        self._longest = max((len(word) for word in self._matches), default=0) + _SLACK

    def match(self, body: str | None) -> KeywordMatch | None:
        """The keyword a message is, if it is exactly one (see :func:`normalize`)."""
        if not body:
            return None
        text = body.strip()
        if len(text) > self._longest:
            return None
        return self._matches.get(normalize(text))

    def classify(self, body: str | None) -> Keyword | None:
        """Which compliance keyword a message is, if it is exactly one."""
        found = self.match(body)
        return found.kind if found else None

    def is_compliance_reply(self, body: str | None) -> bool:
        """True for the keywords the hub answers itself and flows never see (every one but
        :data:`ANSWER_WORDS`)."""
        found = self.match(body)
        return found is not None and not found.is_answer

    def words(self) -> dict[Keyword, dict[str, tuple[str, ...]]]:
        """The words as configured, by kind and language (for the UI): kind → language →
        words, spelled as listed (ARRÊT, not the ARRET it is compared as)."""
        return {kind: dict(lists) for kind, lists in self._lists.items()}

    def languages(self) -> list[str]:
        """Every language that has a word, English first, then alphabetical."""
        found = {language for lists in self._lists.values() for language, w in lists.items() if w}
        return sorted(found, key=lambda language: (language != "en", language))


def _add(
    found: dict[str, tuple[Keyword, set[str]]], kind: Keyword, language: str, raw: str
) -> None:
    word = normalize(raw)
    if not word:
        raise ValueError(f"an empty {_NAMES[kind]} word for language {language!r}")
    known = found.setdefault(word, (kind, set()))
    if known[0] != kind:
        others = ", ".join(sorted(known[1]))
        raise ValueError(
            f"{raw!r} ({language}) cannot be an {_NAMES[kind]} word: it is already an "
            f"{_NAMES[known[0]]} word ({others})"
        )
    known[1].add(language)


_NAMES: dict[Keyword, str] = {"stop": "opt-out", "start": "opt-in", "help": "help"}


def merged(
    defaults: Mapping[str, tuple[str, ...]], overrides: Mapping[str, Iterable[str]]
) -> dict[str, tuple[str, ...]]:
    """The defaults with each overridden language's list replaced (an empty list drops that
    language; a new language is added)."""
    words = dict(defaults)
    for language, listed in overrides.items():
        words[language] = tuple(listed)
    return words


#: The table of the default words (what :func:`classify` uses when given no table).
DEFAULT_TABLE = KeywordTable(DEFAULT_OPT_OUT_WORDS, DEFAULT_OPT_IN_WORDS, DEFAULT_HELP_WORDS)


def classify(body: str | None, table: KeywordTable = DEFAULT_TABLE) -> Keyword | None:
    """Which compliance keyword a message is, if it is exactly one (surrounding spaces,
    any case, accents or none, and a trailing full stop or exclamation mark are tolerated,
    as phones add them)."""
    return table.classify(body)


def is_compliance_reply(body: str | None, table: KeywordTable = DEFAULT_TABLE) -> bool:
    """True for the keywords the hub answers itself and flows never see.

    "YES" is left out: it re-subscribes an opted-out contact, but for everyone else it is
    an ordinary answer ("Reply YES to confirm")."""
    return table.is_compliance_reply(body)
