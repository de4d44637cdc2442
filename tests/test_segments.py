"""Segments: known figures for GSM-7 and UCS-2, extension characters, emoji, plain swaps.

COUNT_CASES and SWAP_CASES are plain data: tests/test_segments_js.py runs static/js/segments.js
over the same tables.
"""

from __future__ import annotations

import pytest

from inbox.segments import GSM_BASIC, GSM_EXTENSION, SegmentInfo, count, plain_swaps

GSM, UCS2 = "GSM-7", "UCS-2"


def info(encoding, characters, units, segments, per_segment, remaining, non_gsm=()):
    return SegmentInfo(encoding, characters, units, segments, per_segment, remaining, tuple(non_gsm))


# (id, body, expected)
COUNT_CASES = [
    ("empty", "", info(GSM, 0, 0, 0, 160, 160)),
    ("one char", "a", info(GSM, 1, 1, 1, 160, 159)),
    ("gsm 160", "a" * 160, info(GSM, 160, 160, 1, 160, 0)),
    ("gsm 161", "a" * 161, info(GSM, 161, 161, 2, 153, 145)),
    ("gsm 306", "a" * 306, info(GSM, 306, 306, 2, 153, 0)),
    ("gsm 307", "a" * 307, info(GSM, 307, 307, 3, 153, 152)),
    ("gsm 459", "a" * 459, info(GSM, 459, 459, 3, 153, 0)),
    ("gsm accents", "Café à Zürich, señor? ¿Qué? ÆØÅ ß", info(GSM, 33, 33, 1, 160, 127)),
    ("gsm greek capitals", "ΔΦΓΛΩΠΨΣΘΞ", info(GSM, 10, 10, 1, 160, 150)),
    ("gsm newlines", "line one\r\nline two\n", info(GSM, 19, 19, 1, 160, 141)),
    ("ucs2 70", "Ж" * 70, info(UCS2, 70, 70, 1, 70, 0, "Ж")),
    ("ucs2 71", "Ж" * 71, info(UCS2, 71, 71, 2, 67, 63, "Ж")),
    ("ucs2 134", "Ж" * 134, info(UCS2, 134, 134, 2, 67, 0, "Ж")),
    ("ucs2 135", "Ж" * 135, info(UCS2, 135, 135, 3, 67, 66, "Ж")),
    ("one non-gsm char switches all", "a" * 69 + "ç", info(UCS2, 70, 70, 1, 70, 0, "ç")),
    ("one non-gsm char splits", "a" * 70 + "ç", info(UCS2, 71, 71, 2, 67, 63, "ç")),
    ("emoji", "Hi 👋 see you soon", info(UCS2, 17, 18, 1, 70, 52, "👋")),
    ("emoji 35 fill one", "😀" * 35, info(UCS2, 35, 70, 1, 70, 0, "😀")),
    ("emoji 36", "😀" * 36, info(UCS2, 36, 72, 2, 67, 61, "😀")),
    # 33 pairs fill 66 of 67 units; a pair is never split, so 67 emoji need 3 segments, not 2
    ("emoji pair not split", "😀" * 67, info(UCS2, 67, 134, 3, 67, 65, "😀")),
    ("bmp symbol is one unit", "✓ done", info(UCS2, 6, 6, 1, 70, 64, "✓")),
    ("family emoji", "👨\u200d👩\u200d👧", info(UCS2, 5, 8, 1, 70, 62, ["👨", "\u200d", "👩", "👧"])),
    ("lone surrogate", "a\ud83d", info(UCS2, 2, 2, 1, 70, 68, ["\ud83d"])),
    ("extension two each", "{}", info(GSM, 2, 4, 1, 160, 156)),
    ("all extension", GSM_EXTENSION, info(GSM, 10, 20, 1, 160, 140)),
    ("form feed", "page\fbreak", info(GSM, 10, 11, 1, 160, 149)),
    ("euro 80", "€" * 80, info(GSM, 80, 160, 1, 160, 0)),
    ("euro 81", "€" * 81, info(GSM, 81, 162, 2, 153, 143)),
    ("gsm 159 plus euro", "a" * 159 + "€", info(GSM, 160, 161, 2, 153, 145)),
    ("escape fits one segment", "a" * 152 + "€" + "a" * 6, info(GSM, 159, 160, 1, 160, 0)),
    # split: 152 septets + an escape pair would be 154, so the pair moves whole to segment 2
    ("escape not split", "a" * 152 + "€" + "a" * 7, info(GSM, 160, 161, 2, 153, 144)),
    ("escape not split 3", "a" * 152 + "€" + "a" * 152, info(GSM, 305, 306, 3, 153, 152)),
    ("full basic set", GSM_BASIC, info(GSM, 127, 127, 1, 160, 33)),
    ("escape char is not gsm", "a\x1bb", info(UCS2, 3, 3, 1, 70, 67, "\x1b")),
    ("tab is not gsm", "a\tb", info(UCS2, 3, 3, 1, 70, 67, "\t")),
    ("backtick is not gsm", "`code`", info(UCS2, 6, 6, 1, 70, 64, "`")),
    ("lowercase c cedilla", "Ça ç", info(UCS2, 4, 4, 1, 70, 66, "ç")),
    ("lowercase greek", "Δδ", info(UCS2, 2, 2, 1, 70, 68, "δ")),
    (
        "non_gsm names offenders in order",
        "It’s “fine” — really… ok ’ç",
        info(UCS2, 27, 27, 1, 70, 43, ["’", "“", "”", "—", "…", "ç"]),
    ),
    ("extension in ucs2 counts one", "€ 👋", info(UCS2, 3, 4, 1, 70, 66, "👋")),
    ("nbsp forces ucs2", "10\u00a0€", info(UCS2, 4, 4, 1, 70, 66, "\u00a0")),
]

# (id, body, expected)
SWAP_CASES = [
    ("smart quotes", "‘single’ “double”", "'single' \"double\""),
    ("dashes", "9–5 — daily", "9-5 - daily"),
    ("ellipsis", "wait…", "wait..."),
    ("nbsp", "10\u00a0€", "10 €"),
    ("narrow nbsp", "3:00\u202fPM", "3:00 PM"),
    ("mixed", "It’s “fine” — really…", 'It\'s "fine" - really...'),
    ("untouched", "plain text, {ok} 👋 ç", "plain text, {ok} 👋 ç"),
    ("empty", "", ""),
]


def _ids(cases):
    return [case[0] for case in cases]


@pytest.mark.parametrize(("name", "body", "expected"), COUNT_CASES, ids=_ids(COUNT_CASES))
def test_count(name, body, expected):
    assert count(body) == expected


@pytest.mark.parametrize(("name", "body", "expected"), SWAP_CASES, ids=_ids(SWAP_CASES))
def test_plain_swaps(name, body, expected):
    assert plain_swaps(body) == expected


def test_gsm_tables_are_the_standard_sizes():
    assert len(GSM_BASIC) == len(set(GSM_BASIC)) == 127  # 128 codes minus the escape
    assert len(GSM_EXTENSION) == 10
    assert not set(GSM_BASIC) & set(GSM_EXTENSION)


def test_plain_swaps_bring_a_typical_message_back_to_gsm():
    body = "We’re open 9–5… see you “soon”"
    assert count(body).encoding == UCS2
    swapped = count(plain_swaps(body))
    assert swapped.encoding == GSM and swapped.non_gsm == ()


@pytest.mark.parametrize("length", range(0, 500, 7))
def test_segments_hold_what_they_say(length):
    """Invariants at many lengths: the figures agree with each other."""
    for body in ("a" * length, "Ж" * length, "😀" * length, "€a" * length):
        result = count(body)
        assert result.characters == len(body)
        assert 0 <= result.remaining <= result.per_segment
        if result.segments <= 1:
            assert result.units + result.remaining == result.per_segment
        else:
            assert result.units <= result.segments * result.per_segment
