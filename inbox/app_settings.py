"""Settings managers edit in the app, kept in the database, with the environment as defaults.

await keyword_policy(session, settings) -> KeywordPolicy   (answers, words, who replies)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.keywords import Keyword, KeywordSet
from inbox.models import AppSetting, utcnow
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
