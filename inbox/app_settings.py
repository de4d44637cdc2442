"""Settings managers edit in the app, kept in the database, with the environment as defaults.

await keyword_policy(session, settings) -> KeywordPolicy   (answers, words, who replies)
await keyword_answers(db, settings) -> KeywordAnswers         (what the settings page shows)
await save_keyword_answers(db, texts, extra)                  (or SettingRefused)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.clock import utcnow
from inbox.keywords import Keyword, KeywordSet
from inbox.models import AppSetting
from inbox.refusals import Refused, Why
from inbox.store import _insert

if TYPE_CHECKING:
    from inbox.db import Database
    from inbox.settings import Settings

KEYWORD_TEXTS = "keyword_texts"  # {"help": str, "opt_out": str, "opt_in": str}
EXTRA_KEYWORDS = "extra_keywords"  # {"opt_out": [...], "opt_in": [...], "help": [...]}
LAST_WEBHOOK_AT = "last_webhook_at"
LAST_TWILIO_ERROR = "last_twilio_error"
INSTALLATION_ID = "installation_id"


async def get(session: AsyncSession, key: str, default: Any = None) -> Any:
    value = await session.scalar(select(AppSetting.value).where(AppSetting.key == key))
    return default if value is None else value


async def put(session: AsyncSession, key: str, value: Any) -> None:
    statement = _insert(session, AppSetting).values(key=key, value=value, updated_at=utcnow())
    statement = statement.on_conflict_do_update(index_elements=["key"], set_={"value": value, "updated_at": utcnow()})
    await session.execute(statement)


@dataclass(frozen=True)
class KeywordPolicy:
    words: KeywordSet
    answers: dict[Keyword, str]
    inbox_replies: bool  # False: Twilio's Advanced Opt-Out answers; the inbox only records consent

    def answer(self, keyword: Keyword) -> str:
        return self.answers[keyword]


_POLICY_TTL = 1.0  # seconds: a manager's edit reaches every instance within a second
_policy_cache: dict[int, tuple[float, KeywordPolicy]] = {}


async def cached_keyword_policy(session: AsyncSession, settings: Settings) -> KeywordPolicy:
    """keyword_policy, read at most once a second per process (it is asked for on every webhook batch)."""
    now = time.monotonic()
    cached = _policy_cache.get(id(settings))
    if cached is not None and cached[0] > now:
        return cached[1]
    policy = await keyword_policy(session, settings)
    _policy_cache[id(settings)] = (now + _POLICY_TTL, policy)
    return policy


def forget_keyword_policy() -> None:
    _policy_cache.clear()


async def keyword_policy(session: AsyncSession, settings: Settings) -> KeywordPolicy:
    rows: dict[str, Any] = dict(  # key -> its JSON value
        (
            await session.execute(
                select(AppSetting.key, AppSetting.value).where(AppSetting.key.in_([KEYWORD_TEXTS, EXTRA_KEYWORDS]))
            )
        ).all()
    )
    texts = rows.get(KEYWORD_TEXTS) or {}
    extra = rows.get(EXTRA_KEYWORDS) or {}
    words = KeywordSet.default().with_extra(
        opt_out=extra.get("opt_out", ()), opt_in=extra.get("opt_in", ()), help=extra.get("help", ())
    )
    answers = {
        Keyword.HELP: texts.get("help") or settings.default_help_text(),
        Keyword.OPT_OUT: texts.get("opt_out") or settings.default_stop_text(),
        Keyword.OPT_IN: texts.get("opt_in") or settings.default_start_text(),
    }
    return KeywordPolicy(words, answers, settings.keyword_replies == "inbox")


class SettingRefused(Refused):
    """A setting the inbox will not save."""


KEYWORD_FAMILIES = ("opt_out", "opt_in", "help")


@dataclass(frozen=True)
class KeywordAnswers:
    policy: KeywordPolicy
    extra: dict[str, list[str]]  # the words managers added, by family (KEYWORD_FAMILIES)


async def keyword_answers(db: Database, settings: Settings) -> KeywordAnswers:
    async with db.read() as session:
        return KeywordAnswers(await keyword_policy(session, settings), await get(session, EXTRA_KEYWORDS, {}))


async def save_keyword_answers(db: Database, texts: dict[str, str], extra: dict[str, list[str]]) -> None:
    """The answers to HELP, STOP and START (a blank one falls back to the default) and the extra
    words of each family; every instance uses them within a second (the policy's cache)."""
    try:
        KeywordSet.default().with_extra(**extra)
    except ValueError as exc:  # a word that is empty once normalised, or claimed by two families
        raise SettingRefused(Why.INVALID, "invalid_keywords", str(exc)) from None
    async with db.write() as session:
        await put(session, KEYWORD_TEXTS, {family: text for family, text in texts.items() if text})
        await put(session, EXTRA_KEYWORDS, extra)
        await session.commit()
    forget_keyword_policy()


async def installation_id(db: Database) -> str:
    """A random id made once per database: every instance on that database reads the same one."""
    import secrets

    async with db.write() as session:
        statement = (
            _insert(session, AppSetting)
            .values(key=INSTALLATION_ID, value=secrets.token_hex(8), updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["key"])
        )
        await session.execute(statement)
        value = await get(session, INSTALLATION_ID)
        await session.commit()
    return str(value)
