"""SMS segment counting: how many billed segments a body makes, and why.

Pure. static/js/segments.js is the same code for the composer and must give identical results
(tests/test_segments_js.py runs both over one table); change the two together.

The rules (GSM 03.38 / 3GPP TS 23.038 for the alphabet, as Twilio bills SMS segments):

- A body made only of GSM 03.38 characters is sent as GSM-7: 160 septets in one segment, 153 per
  segment once split. The extension characters (^ { } \\ [ ~ ] | € and form feed) are an escape
  plus a character, so they count two.
- Any other character (emoji, smart quotes, ç, most accents) switches the whole body to UCS-2:
  70 UTF-16 units in one segment, 67 per segment once split. Characters outside the BMP (most
  emoji) are a surrogate pair: two units.
- Once split, a segment never ends in the middle of an escape pair or a surrogate pair: such a
  character moves whole to the next segment, leaving one unit of the previous one unused. So
  152 "a" + "€" + 152 "a" is 306 septets but 3 segments, not 2. (Combined emoji such as flags or
  families may still be split between their code points; phones reassemble them.)
"""

from __future__ import annotations

from dataclasses import dataclass

# The GSM 03.38 basic character set in code order, 0x00-0x7F, without 0x1B (the escape to the
# extension table, not a character). 0x09 is capital Ç: a lowercase ç is not GSM.
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ"
    "ÆæßÉ"  # 0x1B (escape) sits between Ξ and Æ
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# The extension table: each costs two septets (escape + character).
GSM_EXTENSION = "\f^{}\\[~]|€"

_BASIC = frozenset(GSM_BASIC)
_EXTENSION = frozenset(GSM_EXTENSION)

GSM_SINGLE, GSM_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67

# Look-alikes that force UCS-2 for no good reason, mostly typed by phones and word processors.
# U+202F (narrow no-break space) is what recent macOS/iOS put before "AM"/"PM" in pasted times.
_SWAPS = {
    "\u2018": "'",  # ‘
    "\u2019": "'",  # ’
    "\u201c": '"',  # “
    "\u201d": '"',  # ”
    "\u2013": "-",  # – en dash
    "\u2014": "-",  # — em dash
    "\u2026": "...",  # …
    "\u00a0": " ",  # no-break space
    "\u202f": " ",  # narrow no-break space
}
_SWAP_TABLE = str.maketrans(_SWAPS)


@dataclass(frozen=True)
class SegmentInfo:
    encoding: str  # "GSM-7" or "UCS-2"
    characters: int  # what a person counts: code points
    units: int  # GSM-7 septets (extension characters count 2) or UTF-16 code units
    segments: int  # 0 for an empty body
    per_segment: int  # 160/153 (GSM-7) or 70/67 (UCS-2), single or split
    remaining: int  # units left in the current (last) segment
    non_gsm: tuple[str, ...]  # distinct characters forcing UCS-2, in order of first appearance


def count(body: str) -> SegmentInfo:
    non_gsm = _non_gsm(body)
    if non_gsm:
        encoding, single, multi = "UCS-2", UCS2_SINGLE, UCS2_MULTI
        sizes = [_utf16_units(char) for char in body]
    else:
        encoding, single, multi = "GSM-7", GSM_SINGLE, GSM_MULTI
        sizes = [2 if char in _EXTENSION else 1 for char in body]
    units = sum(sizes)
    if units <= single:
        segments, per_segment, used = (1 if units else 0), single, units
    else:
        segments, used = _pack(sizes, multi)
        per_segment = multi
    return SegmentInfo(
        encoding=encoding,
        characters=len(body),
        units=units,
        segments=segments,
        per_segment=per_segment,
        remaining=per_segment - used,
        non_gsm=non_gsm,
    )


def plain_swaps(body: str) -> str:
    """Smart quotes, dashes, ellipsis and no-break spaces replaced by their GSM look-alikes."""
    return body.translate(_SWAP_TABLE)


def _non_gsm(body: str) -> tuple[str, ...]:
    # dict keeps first-appearance order and drops repeats
    return tuple(dict.fromkeys(char for char in body if char not in _BASIC and char not in _EXTENSION))


def _utf16_units(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def _pack(sizes: list[int], per_segment: int) -> tuple[int, int]:
    """(segments, units used in the last one), never splitting one character's units."""
    segments, used = 1, 0
    for size in sizes:
        if used + size > per_segment:
            segments, used = segments + 1, 0
        used += size
    return segments, used
