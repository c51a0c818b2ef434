"""Compliance keywords in several languages: the table, the settings that change it, and
which confirmation text answers (hub.services.keywords, hub.services.optouts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from hub.services.keywords import (
    DEFAULT_HELP_WORDS,
    DEFAULT_OPT_IN_WORDS,
    DEFAULT_OPT_OUT_WORDS,
    DEFAULT_TABLE,
    KeywordTable,
    classify,
    is_compliance_reply,
    normalize,
)
from hub.services.optouts import confirmation_text, language_candidates
from hub.settings import Settings


@pytest.mark.parametrize(
    ("body", "kind", "languages"),
    [
        ("BAJA", "stop", ("es",)),  # Spanish
        ("baja!", "stop", ("es",)),  # any case, a trailing mark
        ("¡Baja!", "stop", ("es",)),  # with Spanish's opening mark
        ("Detener", "stop", ("es",)),
        ("PARAR", "stop", ("es", "pt")),  # Spanish and Portuguese: no one language
        ("cancelar", "stop", ("es", "pt")),
        ("ARRÊT", "stop", ("fr",)),  # French with its accent
        ("arret", "stop", ("fr",)),  # and without
        ("Arre\u0302t", "stop", ("fr",)),  # a combining accent (decomposed input)
        ("désabonner", "stop", ("fr",)),
        ("Desinscrire.", "stop", ("fr",)),
        ("STOP", "stop", ("en", "fr")),  # English and French
        ("Stopp", "stop", ("de",)),  # German
        ("abmelden", "stop", ("de",)),
        ("ENDE", "stop", ("de",)),
        ("KÜNDIGEN", "stop", ("de",)),  # the umlaut folds to U …
        ("kuendigen", "stop", ("de",)),  # … and its transliteration is listed too
        ("sair", "stop", ("pt",)),  # Portuguese
        ("Descadastrar", "stop", ("pt",)),
        ("opt   out", "stop", ("en",)),  # spaces collapse
        ("ALTA", "start", ("es",)),
        ("Réabonner", "start", ("fr",)),
        ("START", "start", ("de", "en")),
        ("iniciar", "start", ("es", "pt")),
        ("AYUDA", "help", ("es",)),
        ("aide", "help", ("fr",)),
        ("Hilfe!", "help", ("de",)),
        ("AJUDA", "help", ("pt",)),
    ],
)
def test_default_words_of_every_language(body: str, kind: str, languages: tuple[str, ...]) -> None:
    found = DEFAULT_TABLE.match(body)
    assert found is not None
    assert (found.kind, found.languages) == (kind, languages)
    assert found.language == (languages[0] if len(languages) == 1 else None)
    assert classify(body) == kind
    assert is_compliance_reply(body)


@pytest.mark.parametrize(
    "body",
    [
        "Sí",  # "yes" in Spanish is an ordinary answer, not an opt-in word
        "si",
        "OUI",
        "ja",
        "sim",
        "baja por favor",  # not a single keyword
        "ARRÊTEZ DE M'ÉCRIRE",
        "¿Ayuda?",  # question marks are not tolerated (no more than in "HELP?")
        "STOP" + "!" * 40,  # far longer than any keyword: the early exit
        "",
        None,
    ],
)
def test_ordinary_messages_are_no_keyword(body: str | None) -> None:
    assert DEFAULT_TABLE.match(body) is None
    assert not is_compliance_reply(body)


def test_yes_is_an_answer_word_that_flows_still_see() -> None:
    found = DEFAULT_TABLE.match("Yes!")
    assert found is not None and found.kind == "start" and found.is_answer
    assert not is_compliance_reply("Yes!")


def test_normalize_folds_case_space_marks_and_accents() -> None:
    assert normalize("  Désinscription. ") == "DESINSCRIPTION"
    assert normalize("straße") == "STRASSE"  # ß upper-cases to SS on both sides
    assert normalize("опт") == "ОПТ"  # other scripts keep their letters


def test_every_default_list_is_documented() -> None:
    text = (Path(__file__).parents[2] / "docs" / "opt-outs.md").read_text(encoding="utf-8")
    for table in (DEFAULT_OPT_OUT_WORDS, DEFAULT_OPT_IN_WORDS, DEFAULT_HELP_WORDS):
        for language, words in table.items():
            for word in words:
                assert f"`{word}`" in text, f"{word} ({language}) is not in docs/opt-outs.md"


def test_settings_replace_a_language_add_one_and_drop_one() -> None:
    settings = Settings(
        opt_out_words={"ES": ["BAJA", "basta"], "it": ["ALT", "BASTA"], "fr": []},
        help_words={"it": ["AIUTO"]},
    )
    table = settings.keywords
    assert table.classify("Basta") == "stop"
    found = table.match("basta")
    assert found is not None and found.languages == ("es", "it")
    assert table.classify("DETENER") is None  # the Spanish list was replaced
    assert table.classify("ARRET") is None  # French dropped
    assert table.classify("STOP") == "stop"  # … but STOP is still English
    assert table.match("PARAR").languages == ("pt",)  # type: ignore[union-attr]
    assert table.classify("aiuto") == "help"
    assert table.words()["help"]["it"] == ("AIUTO",)
    assert table.words()["stop"]["es"] == ("BAJA", "basta")  # as listed
    assert table.languages() == ["en", "de", "es", "fr", "it", "pt"]  # fr keeps AIDE …


def test_settings_come_from_json_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSHUB_OPT_OUT_WORDS", '{"es": ["BAJA", "BASTA"]}')
    monkeypatch.setenv("SMSHUB_STOP_TEXTS", '{"es": "Baja confirmada", "pt-BR": "Saiu"}')
    monkeypatch.setenv("SMSHUB_STOP_TEXT", "Bye")  # the single text still works
    settings = Settings()
    assert settings.keywords.classify("basta") == "stop"
    assert settings.stop_texts == {"es": "Baja confirmada", "pt-br": "Saiu"}
    assert settings.stop_text == "Bye"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SMSHUB_OPT_OUT_WORDS", '{"es": ["BAJA"', "SMSHUB_OPT_OUT_WORDS is not valid JSON"),
        ("SMSHUB_STOP_TEXTS", "Baja", "SMSHUB_STOP_TEXTS is not valid JSON"),
        ("SMSHUB_HELP_WORDS", '["AYUDA"]', "SMSHUB_HELP_WORDS must be a JSON object"),
        ("SMSHUB_OPT_IN_WORDS", '{"es": "ALTA"}', "Input should be a valid list"),
        ("SMSHUB_START_TEXTS", '{"spanish!": "x"}', "'spanish!' is not a language tag"),
        ("SMSHUB_HELP_TEXTS", '{"es": "  "}', "the text for 'es' is empty"),
        ("SMSHUB_OPT_OUT_WORDS", '{"es": ["!"]}', "an empty opt-out word for language 'es'"),
        # A word cannot both opt out and opt in: refused at startup, naming both.
        ("SMSHUB_OPT_IN_WORDS", '{"pt": ["SAIR"]}', "'SAIR' (pt) cannot be an opt-in word"),
    ],
)
def test_a_bad_setting_fails_at_startup_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as excinfo:
        Settings()
    assert message in str(excinfo.value)


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("pt-BR", ("pt-br", "pt")),
        ("es", ("es",)),
        ("zh-Hant-TW", ("zh-hant-tw", "zh-hant", "zh")),
        ("en_GB", ("en-gb", "en")),  # an underscore, as some systems write it
        (None, ()),
        ("", ()),
    ],
)
def test_language_candidates(tag: str | None, expected: tuple[str, ...]) -> None:
    assert language_candidates(tag) == expected


SETTINGS = Settings(
    stop_texts={"es": "es-stop", "pt": "pt-stop", "fr-CA": "fr-ca-stop"},
    help_texts={"de": "de-help"},
)


@pytest.mark.parametrize(
    ("word", "contact_language", "expected"),
    [
        ("BAJA", None, "es-stop"),  # the keyword's language
        ("BAJA", "pt-BR", "pt-stop"),  # the contact's language wins (pt-BR → pt)
        ("BAJA", "de", "es-stop"),  # no German text: the keyword's
        ("STOP", "es", "es-stop"),  # an English / French word, a Spanish contact
        ("STOP", None, SETTINGS.stop_text),  # two languages, no contact language: default
        ("PARAR", None, SETTINGS.stop_text),  # Spanish and Portuguese: default
        ("PARAR", "pt", "pt-stop"),
        ("ARRET", None, SETTINGS.stop_text),  # French has no text ("fr-CA" is not "fr")
        ("ARRET", "fr-CA", "fr-ca-stop"),
        ("STOPP", None, SETTINGS.stop_text),  # no German stop text
        ("HILFE", None, "de-help"),  # help texts are their own
        ("AYUDA", None, SETTINGS.help_text),
        ("ALTA", "es", SETTINGS.start_text),  # no start texts configured
    ],
)
def test_confirmation_language_order(
    word: str, contact_language: str | None, expected: str
) -> None:
    found = SETTINGS.keywords.match(word)
    assert found is not None
    assert confirmation_text(SETTINGS, found, contact_language) == expected


def test_a_table_refuses_a_word_of_two_kinds() -> None:
    with pytest.raises(ValueError, match="already an opt-out word"):
        KeywordTable({"en": ["STOP"]}, {"fr": ["stop"]}, {})
