"""How many SMS parts a text takes, and in which encoding (GSM 03.38 / UCS-2)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

#: GSM 03.38 default alphabet, one septet each (0x1B, the escape to the extension table,
#: is left out: it is not a character a user types).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: Extension table, reached through the escape septet, so each costs two septets.
#: Form feed is in the table too, though rarely typed.
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

#: Septets in a single GSM-7 SMS, and per part once split (6 go to the concatenation header).
GSM7_SINGLE, GSM7_PART = 160, 153
#: UTF-16 code units in a single UCS-2 SMS, and per part once split.
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True)
class SegmentInfo:
    """How a text goes over the air."""

    segments: int
    encoding: Encoding
    #: Septets (GSM-7) or UTF-16 code units (UCS-2) in the whole text.
    units: int


def segment_info(text: str) -> SegmentInfo:
    """Count the parts ``text`` takes: GSM-7 when every character allows it, else UCS-2."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        costs = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        return _pack(costs, "GSM-7", GSM7_SINGLE, GSM7_PART)
    # Characters beyond the BMP (most emoji) are a surrogate pair: two code units.
    costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return _pack(costs, "UCS-2", UCS2_SINGLE, UCS2_PART)


def _pack(costs: Iterable[int], encoding: Encoding, single: int, per_part: int) -> SegmentInfo:
    costs = list(costs)
    units = sum(costs)
    if units <= single:
        return SegmentInfo(segments=1, encoding=encoding, units=units)
    # Fill parts one character at a time: an escape sequence or a surrogate pair is never
    # cut in two, so a part may end one unit short and the text may need an extra part.
    segments, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            segments += 1
            used = 0
        used += cost
    return SegmentInfo(segments=segments, encoding=encoding, units=units)
