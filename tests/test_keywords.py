"""Keywords: whole-message matching, manager-added words, probable opt-outs, the toll-free YES rule."""

from __future__ import annotations

import pytest

from inbox.keywords import (
    DEFAULT_HELP,
    DEFAULT_OPT_IN,
    DEFAULT_OPT_OUT,
    Keyword,
    KeywordSet,
    classify,
    is_probable_opt_out,
    is_toll_free,
    normalise,
    reverses_opt_out,
)

DEFAULTS = (
    [(word, Keyword.OPT_OUT) for word in DEFAULT_OPT_OUT]
    + [(word, Keyword.OPT_IN) for word in DEFAULT_OPT_IN]
    + [(word, Keyword.HELP) for word in DEFAULT_HELP]
)


def _odd_case(word: str) -> str:
    return "".join(c.lower() if i % 2 else c.upper() for i, c in enumerate(word.lower()))


def _variants(word: str) -> list[str]:
    """The same keyword as people and phones actually send it."""
    return [
        word,
        word.lower(),
        _odd_case(word),
        f"  {word.title()}  ",
        f"\t{word.lower()}\r\n",
        f"{word}.",
        f"{word.lower()}!!",
        f" {word} ? ",
        f"\u200b{word}\ufeff",
        f"{word}\u00a0",
        "".join(chr(ord(c) + 0xFEE0) for c in word),  # full-width letters
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [(variant, kind) for word, kind in DEFAULTS for variant in _variants(word)],
)
def test_every_default_word_in_odd_case_and_spacing(body, expected):
    assert classify(body) is expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("sToP\n", Keyword.OPT_OUT),
        (" Stop ", Keyword.OPT_OUT),
        ("STOP.", Keyword.OPT_OUT),
        ("ＳＴＯＰ", Keyword.OPT_OUT),
        ("STOP\u200b", Keyword.OPT_OUT),
        ("ST\u200dOP", Keyword.OPT_OUT),  # zero-width characters go wherever they are
        ("STOP\u2060", Keyword.OPT_OUT),
        ("stop。", Keyword.OPT_OUT),  # ideographic full stop
        ("stop！", Keyword.OPT_OUT),
        ("Stop please", None),
        ("STOP STOP", None),
        ("...STOP", None),  # only trailing punctuation is dropped
        ("STO P", None),
        ("STOPP", None),
        ("", None),
        ("   \n", None),
        (".", None),
        ("yes please", None),
        ("Help me with my order", None),
    ],
)
def test_whole_message_only(body, expected):
    assert classify(body) is expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [("  sToP.\u200b\n", "STOP"), ("ＹＥＳ！", "YES"), ("straße", "STRASSE"), ("Stop please", "STOP PLEASE")],
)
def test_normalise(body, expected):
    assert normalise(body) == expected


EXTRA = KeywordSet.default().with_extra(opt_out=("arrêt", "Baja", " ALTO "), opt_in=("Arriba",), help=("AYUDA",))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("ARRÊT", Keyword.OPT_OUT),
        ("arrêt.", Keyword.OPT_OUT),
        ("baja", Keyword.OPT_OUT),
        ("Alto!", Keyword.OPT_OUT),
        ("arriba", Keyword.OPT_IN),
        ("ayuda ", Keyword.HELP),
        ("stop", Keyword.OPT_OUT),  # the defaults are still there
        ("yes", Keyword.OPT_IN),
        ("arret", None),  # accents are not folded away: ARRET is another word
        ("baja por favor", None),
    ],
)
def test_extra_words(body, expected):
    assert classify(body, EXTRA) is expected


def test_extra_words_leave_the_default_untouched():
    assert classify("baja") is None
    assert "BAJA" in EXTRA.opt_out and "BAJA" not in KeywordSet.default().opt_out


def test_words_are_stored_normalised():
    words = KeywordSet(opt_out=frozenset({" stop."}), opt_in=frozenset({"start"}), help=frozenset())
    assert words.opt_out == {"STOP"} and words.opt_in == {"START"}


@pytest.mark.parametrize(
    "extra",
    [{"opt_out": ("start",)}, {"help": ("Stop",)}, {"opt_in": ("baja",), "opt_out": ("BAJA",)}],
)
def test_a_word_belongs_to_one_set_only(extra):
    with pytest.raises(ValueError, match="both"):
        KeywordSet.default().with_extra(**extra)


@pytest.mark.parametrize("word", ["", "  ", "...", "\u200b"])
def test_an_empty_word_is_refused(word):
    # it would match an empty message
    with pytest.raises(ValueError, match="empty"):
        KeywordSet.default().with_extra(opt_out=(word,))


@pytest.mark.parametrize(
    "body",
    [
        "please stop texting me",
        "Please STOP texting me!",
        "unsubscribe me from this",
        "stop messaging me",
        "remove me from your list",
        "don't text me anymore",
        "Don’t text me anymore",
        "do not contact me again",
        "opt me out",
        "I want to opt-out",
        "Stop please",
        "STOP STOP",
        "please stop",
        "stop it now",
        "stop sending me these messages",
        "stop the texts",
        "Quit texting this number",
        "take me off your text list",
        "delete my number",
        "how do I unsubscribe?",
        "no more texts please",
    ],
)
def test_probable_opt_out(body):
    assert classify(body) is None
    assert is_probable_opt_out(body)


@pytest.mark.parametrize(
    "body",
    [
        "I'll stop by at 3",
        "I’ll stop by at 3",
        "bus stop",
        "Meet me at the bus stop on 5th",
        "can't stop laughing",
        "couldn't stop laughing lol",
        "don't stop texting me!",
        "Stop by the store whenever",
        "We stopped at the gas station",
        "please cancel my appointment",
        "The end of the line",
        "take me off the waitlist? I found another slot",
        "Can you text me the address",
        "Is the shop open?",
        "",
        # exact keywords are keywords, not probable requests
        "STOP",
        "unsubscribe",
        "help",
    ],
)
def test_not_a_probable_opt_out(body):
    assert not is_probable_opt_out(body)


def test_a_manager_word_is_a_keyword_not_a_probable_request():
    assert is_probable_opt_out("stop please")
    custom = KeywordSet.default().with_extra(opt_out=("stop please",))
    assert classify("Stop please!", custom) is Keyword.OPT_OUT
    assert not is_probable_opt_out("Stop please!", custom)


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+18005550100", True),
        ("+18335550100", True),
        ("+18445550100", True),
        ("+18555550100", True),
        ("+18665550100", True),
        ("+18775550100", True),
        ("+18885550100", True),
        (" +18885550100 ", True),
        ("+18225550100", False),  # reserved for toll-free, not in use
        ("+18805550100", False),
        ("+14155550100", False),
        ("+15005550006", False),
        ("+448005550100", False),  # UK freephone is not North American toll-free
        ("+1800555010", False),
        ("+180055501000", False),
        ("18005550100", False),
        ("whatsapp:+18005550100", False),
        ("", False),
    ],
)
def test_is_toll_free(number, expected):
    assert is_toll_free(number) is expected


@pytest.mark.parametrize(
    ("body", "to_number", "expected"),
    [
        ("YES", "+14155550100", True),
        ("yes", "+18005550100", False),  # toll-free: YES does not reverse an opt-out
        ("Yes.", "+18885550100", False),
        ("START", "+18005550100", True),
        ("start", "+14155550100", True),
        ("Unstop!", "+18445550100", True),
        ("unstop", "+14155550100", True),
        ("STOP", "+14155550100", False),
        ("HELP", "+18005550100", False),
        ("start please", "+14155550100", False),
        ("yes", "whatsapp:+18005550100", True),
    ],
)
def test_reverses_opt_out(body, to_number, expected):
    assert reverses_opt_out(body, to_number) is expected


def test_extra_opt_in_words_reverse_only_off_toll_free():
    assert reverses_opt_out("arriba", "+14155550100", EXTRA)
    assert not reverses_opt_out("arriba", "+18005550100", EXTRA)
    assert not reverses_opt_out("arriba", "+14155550100")
