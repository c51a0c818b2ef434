"""SMS segment counting: GSM-7 versus UCS-2, single versus concatenated parts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    GSM7_PART,
    GSM7_SINGLE,
    UCS2_PART,
    UCS2_SINGLE,
    Encoding,
    SegmentInfo,
    segment_info,
)

EMOJI = "\U0001f600"  # 😀, outside the BMP: a surrogate pair in UTF-16

CASES = [
    # Empty text still costs one SMS.
    pytest.param("", 1, "GSM-7", 0, id="empty"),
    # Plain ASCII letters are GSM-7, one septet each.
    pytest.param("Hello", 1, "GSM-7", 5, id="hello"),
    # Accented letters in the GSM default alphabet stay GSM-7.
    pytest.param("àèéìòù ÄÖÑÜ äöñü ß", 1, "GSM-7", 18, id="gsm-accents"),
    # Exactly 160 septets fit one SMS.
    pytest.param("a" * 160, 1, "GSM-7", 160, id="gsm-160"),
    # One more septet splits into parts of 153.
    pytest.param("a" * 161, 2, "GSM-7", 161, id="gsm-161"),
    # Two full concatenated parts.
    pytest.param("a" * 306, 2, "GSM-7", 306, id="gsm-306"),
    # One septet past two full parts needs a third.
    pytest.param("a" * 307, 3, "GSM-7", 307, id="gsm-307"),
    # Extension characters count two: 80 euro signs are exactly 160 septets.
    pytest.param("€" * 80, 1, "GSM-7", 160, id="ext-80-euro"),
    # 81 euro signs are 162 septets: two parts.
    pytest.param("€" * 81, 2, "GSM-7", 162, id="ext-81-euro"),
    # Every extension character counts two.
    pytest.param("^{}\\[~]|€", 1, "GSM-7", 18, id="ext-all"),
    # 159 letters plus one extension character is 161 septets: split.
    pytest.param("a" * 159 + "€", 2, "GSM-7", 161, id="ext-tips-over-160"),
    # An escape sequence is never cut between parts: 152 + '{' leaves part one a septet
    # short, so 306 septets need three parts, not two.
    pytest.param("a" * 152 + "{" + "a" * 152, 3, "GSM-7", 306, id="ext-at-split"),
    # The same septets with the '{' elsewhere pack into two parts.
    pytest.param("{" + "a" * 304, 2, "GSM-7", 306, id="ext-not-at-split"),
    # Lower-case c-cedilla is not in the GSM alphabet (only upper-case Ç is): UCS-2.
    pytest.param("ç", 1, "UCS-2", 1, id="c-cedilla-lower"),
    pytest.param("Ç", 1, "GSM-7", 1, id="c-cedilla-upper"),
    # A tab or a backtick is outside GSM-7.
    pytest.param("a\tb", 1, "UCS-2", 3, id="tab"),
    pytest.param("`", 1, "UCS-2", 1, id="backtick"),
    # Cyrillic is UCS-2; 70 code units fit one SMS.
    pytest.param("ж" * 70, 1, "UCS-2", 70, id="ucs2-70"),
    # 71 split into parts of 67.
    pytest.param("ж" * 71, 2, "UCS-2", 71, id="ucs2-71"),
    pytest.param("ж" * 134, 2, "UCS-2", 134, id="ucs2-134"),
    pytest.param("ж" * 135, 3, "UCS-2", 135, id="ucs2-135"),
    # Emoji are surrogate pairs: 35 of them are 70 code units, one SMS.
    pytest.param(EMOJI * 35, 1, "UCS-2", 70, id="emoji-35"),
    # 36 emoji are 72 code units: two parts.
    pytest.param(EMOJI * 36, 2, "UCS-2", 72, id="emoji-36"),
    # A surrogate pair is not cut between parts: 66 + emoji leaves part one a unit short.
    pytest.param("ж" * 66 + EMOJI + "ж" * 66, 3, "UCS-2", 134, id="emoji-at-split"),
    # One emoji turns an otherwise GSM text into UCS-2 as a whole.
    pytest.param("a" * 159 + EMOJI, 3, "UCS-2", 161, id="emoji-switches-encoding"),
    # A GSM extension char in UCS-2 text counts one code unit, not two.
    pytest.param("€ж", 1, "UCS-2", 2, id="euro-in-ucs2"),
]


@pytest.mark.parametrize(("text", "segments", "encoding", "units"), CASES)
def test_segment_info(text: str, segments: int, encoding: Encoding, units: int) -> None:
    assert segment_info(text) == SegmentInfo(segments=segments, encoding=encoding, units=units)


def test_alphabet_sizes() -> None:
    # 128 code points minus the escape septet; the extension table as the README lists it,
    # plus form feed.
    assert len(GSM7_BASIC) == 127
    assert frozenset("^{}\\[~]|€\f") == GSM7_EXTENSION
    assert not GSM7_BASIC & GSM7_EXTENSION


GSM_TEXT = st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=700)


@given(GSM_TEXT)
def test_gsm_parts_hold_at_most_153_septets(text: str) -> None:
    info = segment_info(text)
    assert info.encoding == "GSM-7"
    if info.units <= GSM7_SINGLE:
        assert info.segments == 1
    else:
        # Never fewer parts than a perfect split, at most one septet wasted per part.
        assert math.ceil(info.units / GSM7_PART) <= info.segments
        assert info.segments <= math.ceil(info.units / (GSM7_PART - 1))


@given(
    st.text(min_size=1, max_size=300).filter(
        lambda t: any(c not in GSM7_BASIC | GSM7_EXTENSION for c in t)
    )
)
def test_ucs2_counts_utf16_code_units(text: str) -> None:
    info = segment_info(text)
    assert info.encoding == "UCS-2"
    assert info.units == len(text.encode("utf-16-le")) // 2
    if info.units <= UCS2_SINGLE:
        assert info.segments == 1
    else:
        assert math.ceil(info.units / UCS2_PART) <= info.segments
        assert info.segments <= math.ceil(info.units / (UCS2_PART - 1))
