"""Where a message's attachment is, for whoever may see it; each call owns its (read) transaction.

    await public_file(db, token)                -> the file behind a public URL Twilio fetches, or None
    await attachment(db, message_id, index)     -> the stored file (one staff sent) or Twilio's URL
                                                   (one the customer sent); NoSuchAttachment otherwise

The bytes themselves are in the media storage (inbox.attachments.MediaStorage) or at Twilio.
"""

from __future__ import annotations

from inbox import attachments
from inbox.db import Database
from inbox.models import Direction, MediaFile, Message
from inbox.refusals import Refused, Why


class NoSuchAttachment(Refused):
    def __init__(self) -> None:
        super().__init__(Why.NOT_FOUND, "not_found", "This message has no such attachment.")


async def public_file(db: Database, token: str) -> MediaFile | None:
    async with db.read() as session:
        return await attachments.servable(session, token)


async def attachment(db: Database, message_id: int, index: int) -> MediaFile | str:
    """A sent file from the inbox's storage, or a received one's URL at Twilio ("" if it has none)."""
    async with db.read() as session:
        message = await session.get(Message, message_id)
        if message is None or not 0 <= index < len(message.media or []):
            raise NoSuchAttachment()
        stored = (
            await attachments.sent_file(session, message_id, index) if message.direction == Direction.OUTBOUND else None
        )
        url = (message.media or [])[index].get("url")
    if stored is not None:
        return stored
    return url if isinstance(url, str) else ""
