"""Opt-out, opt-in and help keywords: recognising them in an inbound message body.

Pure: no I/O and nothing imported from the rest of ``inbox``. The rules are those Twilio applies
to its own opt-out keywords (its "Advanced Opt-Out" feature), and the ones US carriers hold
senders to; docs/API.md lists the words:

- a keyword counts only when it is the whole message, ignoring case, surrounding white space,
  trailing punctuation, full-width letters and invisible zero-width characters ("sToP\\n",
  "STOP.", "ＳＴＯＰ" and "STOP\\u200b" are all STOP; "Stop please" is not);
- anything else that reads like a request to stop ("please stop texting me") is not a keyword,
  but staff must still see it flagged (`is_probable_opt_out`), since US rules require honouring
  an opt-out made by "any reasonable means";
- on US and Canadian toll-free numbers only START or UNSTOP (not YES) reverse an opt-out.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass


class Keyword(enum.Enum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


DEFAULT_OPT_OUT = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT")
DEFAULT_OPT_IN = ("START", "UNSTOP", "YES")
DEFAULT_HELP = ("HELP", "INFO")

# Only these reverse an opt-out sent to a toll-free number, whatever words the inbox adds:
# the toll-free opt-out is kept by the carrier, not by Twilio's keyword settings.
TOLL_FREE_OPT_IN = frozenset({"START", "UNSTOP"})

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
# White space and trailing punctuation, ASCII and full-width (NFKC already folds most full-width
# forms to ASCII; they are listed anyway, with the ideographic full stop, which NFKC keeps).
_TRAILING = re.compile(r"[\s.,!?;:\uff0e\uff0c\uff01\uff1f\uff1b\uff1a\u3002]+\Z")
_TOLL_FREE = re.compile(r"\+1(?:800|833|844|855|866|877|888)\d{7}")


def normalise(body: str) -> str:
    """The form keywords are compared in: "  sToP.\\u200b\\n" -> "STOP"."""
    text = unicodedata.normalize("NFKC", body).translate(_ZERO_WIDTH)
    text = _TRAILING.sub("", text).strip()
    return text.casefold().upper()


@dataclass(frozen=True)
class KeywordSet:
    """The words in force. Managers may add their own (ARRET, BAJA, ALTO ...) with `with_extra`.

    Words are stored normalised (so ``KeywordSet(opt_out={"stop"}, ...)`` works). A word may sit
    in one set only, and may not normalise to nothing (it would match an empty message).
    """

    opt_out: frozenset[str]
    opt_in: frozenset[str]
    help: frozenset[str]

    def __post_init__(self) -> None:
        owner: dict[str, str] = {}
        for kind in ("opt_out", "opt_in", "help"):
            words = frozenset(_normalise_word(word) for word in getattr(self, kind))
            object.__setattr__(self, kind, words)  # frozen: the only way to store the normalised set
            for word in words:
                if owner.setdefault(word, kind) != kind:
                    raise ValueError(f"keyword {word!r} is both {owner[word]} and {kind}")

    @classmethod
    def default(cls) -> KeywordSet:
        return cls(
            opt_out=frozenset(DEFAULT_OPT_OUT),
            opt_in=frozenset(DEFAULT_OPT_IN),
            help=frozenset(DEFAULT_HELP),
        )

    def with_extra(
        self,
        *,
        opt_out: Iterable[str] = (),
        opt_in: Iterable[str] = (),
        help: Iterable[str] = (),
    ) -> KeywordSet:
        """A copy with more words; they are normalised the same way as message bodies."""
        return KeywordSet(
            opt_out=self.opt_out | frozenset(opt_out),
            opt_in=self.opt_in | frozenset(opt_in),
            help=self.help | frozenset(help),
        )


def _normalise_word(word: str) -> str:
    normalised = normalise(word)
    if not normalised:
        raise ValueError(f"keyword {word!r} is empty once normalised")
    return normalised


_DEFAULT_SET = KeywordSet.default()


def classify(body: str, words: KeywordSet | None = None) -> Keyword | None:
    """The keyword this whole message is, or None ("Stop please" is None)."""
    words = _DEFAULT_SET if words is None else words
    text = normalise(body)
    if text in words.opt_out:
        return Keyword.OPT_OUT
    if text in words.opt_in:
        return Keyword.OPT_IN
    if text in words.help:
        return Keyword.HELP
    return None


# Probable opt-out requests.
#
# This only raises a flag for staff; it never opts anyone out. The trade-off: a missed request
# may be a legal problem ("any reasonable means"), a false flag costs staff a glance. So the
# patterns take the unambiguous phrasings broadly ("unsubscribe", "opt out" anywhere), but where
# the verb alone is everyday English ("stop by", "bus stop", "can't stop laughing") they demand
# what makes it a request about messages: an object ("me", "this number"), a thing to stop
# ("the texts") or nothing but courtesy around the word ("stop please").
# They run on `_prose(body)`: casefolded, apostrophes straightened, punctuation turned into
# single spaces, so "Opt-out!" reads "opt out" and "don’t" reads "don't".
_STOP_WORD = r"(?:stop|stopall|unsubscribe|unsub|optout|opt out|revoke)"  # not cancel/end: appointments
_COURTESY = r"(?:please|pls|plz|now|thanks|thank you|thx|ok|okay|just|all|it|this|them|asap)"
_NOT_NEGATED = r"(?<!n't )(?<!not )(?<!dont )(?<!cant )(?<!never )"  # "don't stop texting me"
_MESSAGES = r"(?:texts?|text messages|messages|msgs|sms|spam|notifications|alerts|reminders|promotions|promos)"
_OPT_OUT_REQUESTS = tuple(
    re.compile(pattern)
    for pattern in (
        # "stop please", "please stop", "stop stop stop", "unsubscribe thanks"
        rf"^(?:{_COURTESY} )*{_STOP_WORD}(?: (?:{_STOP_WORD}|{_COURTESY}))*$",
        # "stop texting me", "quit messaging this number", "please stop texting"
        rf"{_NOT_NEGATED}\b(?:stop|quit|cease) (?:texting|txting|messaging|msging|sending|contacting"
        rf"|spamming|bothering|emailing)(?: (?:me|us|this number|my number)\b|$)",
        # "stop the texts", "stop sending messages", "stop all these reminders"
        rf"{_NOT_NEGATED}\bstop (?:sending )?(?:(?:me|us|the|these|this|all|your|ur) )*{_MESSAGES}\b",
        # "unsubscribe me from this", "how do I unsub", "opt me out", "I want to opt-out"
        r"\bunsub(?:scribe)?\b|\bopt (?:me |us )?out\b|\boptout\b",
        # "remove me from your list", "take me off the text list", "delete my number"
        r"\b(?:remove|delete|take|drop) (?:me|us|my (?:number|name|details|info)|this number) (?:from|off)"
        r" (?:(?:your|the|this|ur|all|these|any) )?(?:(?:text|texting|sms|mailing|marketing|contact) )?"
        r"(?:list|lists|texts|messages|database|system)\b",
        r"\b(?:remove|delete) (?:my|this) number\b",
        # "don't text me anymore", "do not contact us", "no more texts"
        r"\b(?:do not|don't|dont|never) (?:text|txt|message|msg|sms|contact|spam) (?:me|us|this number)\b",
        rf"\bno more {_MESSAGES}\b",
    )
)


# Every pattern above needs one of these words: a message with none of them (most messages)
# is not searched further. This runs on every inbound message; eight searches cost 9 µs.
_OPT_OUT_TRIGGERS = (
    "stop",
    "quit",
    "cease",
    "unsub",
    "opt",
    "revoke",
    "remove",
    "delete",
    "take",
    "drop",
    "not",
    "don't",
    "dont",
    "never",
    "no more",
)


def _prose(body: str) -> str:
    text = unicodedata.normalize("NFKC", body).translate(_ZERO_WIDTH).casefold()
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    return re.sub(r"[^\w']+", " ", text).strip()


def is_probable_opt_out(body: str, words: KeywordSet | None = None) -> bool:
    """True if the message is not a keyword but reads like a request to stop messages."""
    if classify(body, words) is not None:
        return False  # a keyword is handled as one, not flagged
    return reads_like_opt_out(body)


def reads_like_opt_out(body: str) -> bool:
    """The patterns alone, for a caller that knows the body is no keyword."""
    text = _prose(body)
    if not any(word in text for word in _OPT_OUT_TRIGGERS):
        return False
    return any(pattern.search(text) for pattern in _OPT_OUT_REQUESTS)


def is_toll_free(number_e164: str) -> bool:
    """US/Canada toll-free (+1 800/833/844/855/866/877/888). `whatsapp:+1…` addresses are not."""
    return _TOLL_FREE.fullmatch(number_e164.strip()) is not None


def reverses_opt_out(keyword_body: str, to_number: str, words: KeywordSet | None = None) -> bool:
    """True if this message, sent to `to_number`, reverses an opt-out (YES does not on toll-free)."""
    if is_toll_free(to_number):
        return normalise(keyword_body) in TOLL_FREE_OPT_IN
    return classify(keyword_body, words) is Keyword.OPT_IN
