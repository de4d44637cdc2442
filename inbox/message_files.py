"""Where a message's attachment is, for whoever may see it; each call owns its (read) transaction.

    await public_file(db, token)                -> the file behind a public URL Twilio fetches, or None
    await attachment(db, message_id, index)     -> the stored file (one staff sent) or Twilio's URL
                                                   (one the customer sent); NoSuchAttachment otherwise

The bytes themselves are in the media storage (inbox.attachments.MediaStorage) or at Twilio.
"""

from __future__ import annotations

from dataclasses import dataclass

from inbox import attachments
from inbox.db import Database
from inbox.models import Direction, MediaFile, Message
from inbox.refusals import Refused, Why


@dataclass(frozen=True)
class StoredFile:
    """A file the inbox keeps (one staff sent): where its bytes are, and how to serve them."""

    storage_key: str
    content_type: str
    filename: str

    @classmethod
    def of(cls, row: MediaFile) -> StoredFile:
        return cls(row.storage_key, row.content_type, row.filename)


class NoSuchAttachment(Refused):
    def __init__(self) -> None:
        super().__init__(Why.NOT_FOUND, "not_found", "This message has no such attachment.")


async def public_file(db: Database, token: str) -> StoredFile | None:
    async with db.read() as session:
        row = await attachments.servable(session, token)
    return None if row is None else StoredFile.of(row)


async def attachment(db: Database, message_id: int, index: int) -> StoredFile | str:
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
        return StoredFile.of(stored)
    return url if isinstance(url, str) else ""
