"""Attachments staff send with a reply: what a file is, where its bytes live, when Twilio may fetch it.

    sniff(head) -> (content type | None, what it is in words)       judged by the bytes, never the label
    save_upload(db, storage, staff_id, filename, data) -> MediaFile   refused with AttachmentRefused
    attach(session, ids, public_url, channel, to) -> media entries   once each, limits and MMS countries checked
    settle(session, message)                                         a settled message's files stop being served
    servable(session, token) -> MediaFile | None                     what `GET /media/<token>` may answer

The flow: staff upload each file (`POST /api/media`) and get its id; a reply names the ids
(`media_ids`); the reply's row stores one `{"url", "content_type", "id"}` per file, the url being
`INBOX_PUBLIC_URL/media/<token>` with a random 256-bit token; the outbox gives those URLs to
Twilio as `MediaUrl`; Twilio fetches each without credentials. Once the message is delivered,
undelivered or failed, Twilio has what it needs, so `expires_at` is set and the URL answers 404.
No grace period: Twilio fetches media while it sends (before `sent`), never after the outcome.
A message whose outcome never comes back stops being served FETCH_WINDOW after Twilio took it,
and a scheduled reply's files stop being served when it is canceled.
The bytes stay in storage so staff still see what they sent (through a signed-in route).
"""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import anyio
import msgspec
import phonenumbers
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.clock import utcnow
from inbox.models import Channel, MediaFile, MediaItem, Message, MessageStatus
from inbox.refusals import Refused, Why

MAX_FILE = 5 * 1024 * 1024  # bytes: one file, and all of a message's files together
MAX_FILES = 10  # Twilio takes at most ten MediaUrl per message
ALLOWED = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "application/pdf": "PDF"}
# Twilio sends MMS only to numbers in these countries; elsewhere it converts them or refuses.
MMS_COUNTRIES = {"US", "CA"}
# Names for the refusal (phonenumbers' own names take seconds to load): the countries a small
# business texts most; any other is named by its ISO code.
COUNTRY_NAMES = {
    "GB": "the United Kingdom",
    "IE": "Ireland",
    "AU": "Australia",
    "NZ": "New Zealand",
    "MX": "Mexico",
    "BR": "Brazil",
    "DE": "Germany",
    "FR": "France",
    "ES": "Spain",
    "IT": "Italy",
    "NL": "the Netherlands",
    "PT": "Portugal",
    "IN": "India",
    "PH": "the Philippines",
    "ZA": "South Africa",
    "JM": "Jamaica",
    "PR": "Puerto Rico",
    "DO": "the Dominican Republic",
    "BS": "the Bahamas",
    "TT": "Trinidad and Tobago",
}
SETTLED = {MessageStatus.DELIVERED, MessageStatus.UNDELIVERED, MessageStatus.FAILED, MessageStatus.READ}
# Twilio fetches a message's media while it sends it; a message whose final status never comes
# back (a lost callback) stops being served this long after Twilio took it.
FETCH_WINDOW = timedelta(hours=24)
PUBLIC_PATH = "/media/"


class AttachmentRefused(Refused):
    """A file the inbox will not keep, or will not send with this reply."""


# --- what a file is ---------------------------------------------------------------------------

# (prefix, offset, content type or None when refused, name in words); the first match wins.
_SIGNATURES: list[tuple[bytes, int, str | None, str]] = [
    (b"\xff\xd8\xff", 0, "image/jpeg", "a JPEG image"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png", "a PNG image"),
    (b"GIF87a", 0, "image/gif", "a GIF image"),
    (b"GIF89a", 0, "image/gif", "a GIF image"),
    (b"%PDF-", 0, "application/pdf", "a PDF document"),
    (b"WEBP", 8, None, "a WebP image"),
    (b"ftypheic", 4, None, "a HEIC photo"),
    (b"ftypheix", 4, None, "a HEIC photo"),
    (b"ftypmif1", 4, None, "a HEIF photo"),
    (b"ftypqt", 4, None, "a QuickTime video"),
    (b"ftyp", 4, None, "an MP4 video or audio file"),
    (b"PK\x03\x04", 0, None, "a ZIP archive (or an Office document)"),
    (b"\xd0\xcf\x11\xe0", 0, None, "an old Office document"),
    (b"BM", 0, None, "a BMP image"),
    (b"II*\x00", 0, None, "a TIFF image"),
    (b"MM\x00*", 0, None, "a TIFF image"),
    (b"ID3", 0, None, "an MP3 audio file"),
    (b"\x7fELF", 0, None, "a program"),
    (b"MZ", 0, None, "a Windows program"),
]


def sniff(head: bytes) -> tuple[str | None, str]:
    """(the content type to serve, or None when refused; what the file is, in words)."""
    for prefix, offset, content_type, words in _SIGNATURES:
        if head[offset : offset + len(prefix)] == prefix:
            return content_type, words
    text = head[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")):
        return None, "an HTML page"
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return None, "an SVG image"
    if text.startswith(b"<?xml"):
        return None, "an XML document"
    try:
        head[:512].decode("utf-8")
    except UnicodeDecodeError:
        return None, "a file of an unknown type"
    return None, "a text file"


def refusal_for_type(words: str, label: str | None) -> AttachmentRefused:
    labelled = f" (it was labelled {label[:100]})" if label else ""
    return AttachmentRefused(
        Why.INVALID,
        "unsupported_media",
        f"This file is {words}{labelled}. Attach a JPEG, PNG or GIF image or a PDF.",
    )


def too_large() -> AttachmentRefused:
    return AttachmentRefused(
        Why.TOO_LARGE, "too_large", "This file is larger than 5 MB, the most an attachment may be."
    )


# --- where the bytes live --------------------------------------------------------------------


class MediaGone(Exception):
    """The storage has no file under this key any more (deleted by hand, a lost volume)."""


@runtime_checkable  # Litestar checks an injected value against its annotation
class MediaStorage(Protocol):
    """Somewhere to keep uploaded files by key: a folder on disk, or an S3-compatible bucket.
    `get` raises MediaGone for a key it does not hold."""

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...
    async def get(self, key: str) -> bytes: ...
    async def delete(self, key: str) -> None: ...


class DiskStorage:
    """Files in a folder (INBOX_MEDIA_DIR), one per key; keys are random hex, never paths given to us."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        if not key.isalnum():
            raise ValueError("a storage key is letters and digits only")
        return self.folder / key[:2] / key

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            partial.write_bytes(data)
            partial.replace(path)  # whole or not at all

        await anyio.to_thread.run_sync(write)

    async def get(self, key: str) -> bytes:
        try:
            return await anyio.to_thread.run_sync(self._path(key).read_bytes)
        except FileNotFoundError:
            raise MediaGone(key) from None

    async def delete(self, key: str) -> None:
        await anyio.to_thread.run_sync(lambda: self._path(key).unlink(missing_ok=True))


class S3Storage:
    """Objects in an S3-compatible bucket (AWS, MinIO, R2, …) through boto3, whose calls block, so
    each runs in a worker thread. Credentials: the settings' keys, else boto3's own chain (an
    instance role, AWS_* variables)."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        prefix: str = "media/",
    ) -> None:
        import boto3

        self.bucket, self.prefix = bucket, prefix
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
        )

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await anyio.to_thread.run_sync(
            lambda: self.client.put_object(
                Bucket=self.bucket, Key=self.prefix + key, Body=data, ContentType=content_type
            )
        )

    async def get(self, key: str) -> bytes:
        def read() -> bytes:
            try:
                answer = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            except self.client.exceptions.NoSuchKey:
                raise MediaGone(key) from None
            data: bytes = answer["Body"].read()
            return data

        return await anyio.to_thread.run_sync(read)

    async def delete(self, key: str) -> None:
        await anyio.to_thread.run_sync(lambda: self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key))


def storage_for(settings: Any) -> MediaStorage:
    """The bucket when INBOX_MEDIA_S3_BUCKET is set, else the folder INBOX_MEDIA_DIR."""
    if settings.media_s3_bucket:
        return S3Storage(
            settings.media_s3_bucket,
            endpoint_url=settings.media_s3_endpoint_url,
            region=settings.media_s3_region,
            access_key_id=settings.media_s3_access_key_id,
            secret_access_key=settings.media_s3_secret_access_key,
        )
    return DiskStorage(settings.media_dir)


# --- uploads, replies, serving ----------------------------------------------------------------


class Upload(msgspec.Struct, frozen=True, kw_only=True):
    """A stored upload, as POST /api/media answers it: a reply names it by `id`."""

    id: int
    content_type: str
    size: int
    filename: str


def clean_filename(name: str | None) -> str:
    """The uploaded name, for people only: no folders, no control characters, at most 255 characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(ch for ch in base if ch.isprintable())[:255]


async def save_upload(
    db: Any, storage: MediaStorage, staff_id: int, filename: str | None, label: str | None, data: bytes
) -> Upload:
    if len(data) > MAX_FILE:
        raise too_large()
    if not data:
        raise AttachmentRefused(Why.INVALID, "empty_file", "This file is empty.")
    content_type, words = sniff(data[:1024])
    if content_type is None:
        raise refusal_for_type(words, label)
    key = uuid.uuid4().hex
    await storage.put(key, data, content_type)
    row = MediaFile(
        token=secrets.token_urlsafe(32),
        content_type=content_type,
        size=len(data),
        filename=clean_filename(filename),
        storage_key=key,
        staff_id=staff_id,
    )
    async with db.write() as session:
        session.add(row)
        await session.flush()
        upload = Upload(id=row.id, content_type=content_type, size=len(data), filename=row.filename)
        await session.commit()
    return upload


def mms_refusal(channel: str, to: str) -> str | None:
    """Why an MMS cannot go to this number (None: it can). WhatsApp carries media everywhere."""
    if channel != Channel.SMS:
        return None
    try:
        number = phonenumbers.parse(to)
    except phonenumbers.NumberParseException:
        number = None
    region = phonenumbers.region_code_for_number(number) if number is not None else None
    if number is not None and region is None:  # a number no region claims: its country code's main one
        if number.country_code == 1:
            return None  # +1 fictional and test numbers (+1 500 …) are North American
        region = phonenumbers.region_code_for_country_code(number.country_code or 0)
    if region in MMS_COUNTRIES:
        return None
    name = COUNTRY_NAMES.get(region or "", f"the country {region}" if region and region != "ZZ" else "")
    where = f"this number is in {name}" if name else "this number is not in either"
    return (
        f"Twilio sends picture messages (MMS) only to numbers in the US and Canada; {where}. "
        "Send the text alone, or send the file on WhatsApp."
    )


def parse_ids(raw: Any) -> list[int]:
    """`media_ids` as given: a list of up to ten distinct positive ids, or AttachmentRefused 422."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in raw):
        raise AttachmentRefused(Why.INVALID, "invalid_media_ids", "media_ids must be a list of attachment ids.")
    if len(raw) > MAX_FILES:
        raise AttachmentRefused(Why.INVALID, "too_many_media", f"A message can carry at most {MAX_FILES} attachments.")
    if len(set(raw)) != len(raw) or not all(0 < i < 2**63 for i in raw):
        raise AttachmentRefused(Why.INVALID, "invalid_media_ids", "media_ids must name each attachment once.")
    return list(raw)


async def attach(session: AsyncSession, ids: list[int], message_id: int, public_url: str) -> list[MediaItem]:
    """Ties each uploaded file to this message (once: a file already sent with another message is
    refused, even by a request racing this one) and returns the message's media entries, in order."""
    if not ids:
        return []
    claimed = await session.execute(
        update(MediaFile)
        .where(MediaFile.id.in_(ids), MediaFile.message_id.is_(None))
        .values(message_id=message_id)
        .returning(MediaFile.id, MediaFile.token, MediaFile.content_type)
        .execution_options(synchronize_session=False)
    )
    rows = {row.id: row for row in claimed}
    if len(rows) != len(ids):
        raise AttachmentRefused(
            Why.CONFLICT,
            "media_unavailable",
            "An attachment was already sent with another message, or no longer exists.",
        )
    return [
        {"url": f"{public_url}{PUBLIC_PATH}{rows[i].token}", "content_type": rows[i].content_type, "id": i} for i in ids
    ]


async def check_ids(session: AsyncSession, ids: list[int]) -> None:
    """Before a reply is queued: every id exists, is not attached yet, and together they fit 5 MB."""
    if not ids:
        return
    found = (await session.execute(select(MediaFile).where(MediaFile.id.in_(ids)))).scalars().all()
    if len(found) != len(ids):
        raise AttachmentRefused(Why.INVALID, "unknown_media", "An attachment was not found: upload it again.")
    if any(f.message_id is not None for f in found):
        raise AttachmentRefused(
            Why.CONFLICT, "media_unavailable", "An attachment was already sent with another message."
        )
    total = sum(f.size for f in found)
    if total > MAX_FILE:
        raise AttachmentRefused(
            Why.TOO_LARGE,
            "too_large",
            f"These attachments add up to {total / 1_048_576:.1f} MB; a message may carry at most 5 MB.",
        )


async def settle(session: AsyncSession, message: Message) -> None:
    """Called whenever a message's status changes. Once it is final, or a scheduled one is
    canceled, its files are no longer served; once Twilio has it (it has a SID), they are served
    for FETCH_WINDOW at most, in case its final status never comes back."""
    if not message.media or message.direction != "outbound":
        return
    now = utcnow()
    if message.status in SETTLED or message.status == MessageStatus.CANCELED:
        still_served = or_(MediaFile.expires_at.is_(None), MediaFile.expires_at > now)
        expires_at = now
    elif message.sid is not None:
        still_served, expires_at = MediaFile.expires_at.is_(None), now + FETCH_WINDOW
    else:
        return
    await session.execute(
        update(MediaFile)
        .where(MediaFile.message_id == message.id, still_served)
        .values(expires_at=expires_at)
        .execution_options(synchronize_session=False)
    )


ORPHAN_AGE = timedelta(hours=24)  # an upload nobody sent within a day was abandoned
SWEEP_EVERY = 3600.0  # seconds between sweeps, per process


class OrphanSweeps:
    """When this process next sweeps abandoned uploads: after an upload, at most once per SWEEP_EVERY."""

    def __init__(self, every: float = SWEEP_EVERY) -> None:
        self.every = every
        self.next_at = 0.0  # monotonic time

    async def now_and_then(self, db: Any, storage: MediaStorage) -> None:
        if time.monotonic() < self.next_at:
            return
        self.next_at = time.monotonic() + self.every
        await sweep_orphans(db, storage)


async def sweep_orphans(db: Any, storage: MediaStorage, *, older_than: timedelta = ORPHAN_AGE, limit: int = 500) -> int:
    """Deletes uploads never attached to a reply (the file, then its row); returns how many went.
    Sent files are kept: staff still see what they sent."""
    cutoff = utcnow() - older_than
    async with db.read() as session:
        rows = (
            await session.execute(
                select(MediaFile.id, MediaFile.storage_key)
                .where(MediaFile.message_id.is_(None), MediaFile.created_at < cutoff)
                .order_by(MediaFile.id)
                .limit(limit)
            )
        ).all()
    if not rows:
        return 0
    async with db.write() as session:  # claimed by nobody now: a reply racing in would find it gone (422)
        gone = (
            (
                await session.execute(
                    delete(MediaFile)
                    .where(MediaFile.id.in_([r.id for r in rows]), MediaFile.message_id.is_(None))
                    .returning(MediaFile.storage_key)
                )
            )
            .scalars()
            .all()
        )
        await session.commit()
    for key in gone:
        await storage.delete(key)
    return len(gone)


async def servable(session: AsyncSession, token: str) -> MediaFile | None:
    """The file behind a public URL while Twilio may still need it; None for anything else."""
    if not (20 <= len(token) <= 64) or not token.replace("-", "").replace("_", "").isalnum():
        return None
    row = (await session.execute(select(MediaFile).where(MediaFile.token == token))).scalar_one_or_none()
    if row is None or row.message_id is None:  # never handed to Twilio
        return None
    if row.expires_at is not None and row.expires_at <= utcnow():
        return None
    return row


async def sent_file(session: AsyncSession, message_id: int, index: int) -> MediaFile | None:
    """The stored file of an outbound message's `index`th attachment (for staff, any time)."""
    message = await session.get(Message, message_id)
    if message is None or not 0 <= index < len(message.media or []):
        return None
    media_id = (message.media or [])[index].get("id")
    if not isinstance(media_id, int):
        return None
    row = await session.get(MediaFile, media_id)
    return row if row is not None and row.message_id == message_id else None
