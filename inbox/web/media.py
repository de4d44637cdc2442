"""Attachments over HTTP: staff upload them, Twilio fetches them, staff see both sides' media.

    POST /api/media                               staff: one file (multipart field `file`) -> 201 {id, content_type, size}
    GET  /media/{token}                           anyone holding the URL, while Twilio may need it; 404 otherwise
    GET  /api/messages/{id}/media/{index}         staff: an inbound file fetched from Twilio with the account's
                                                  credentials and streamed through, or a sent file from storage

Twilio's media URLs need the account's credentials, so a page never links to them: the browser
asks the inbox, which asks Twilio. Credentials go only to the configured Twilio API origin
(TWILIO_API_BASE_URL); Twilio answers with a redirect to its CDN, followed without them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath
from litestar.response import Stream

from inbox import attachments, message_files
from inbox.accounts import StaffMember
from inbox.attachments import MediaStorage
from inbox.settings import Settings
from inbox.web.api_docs import UPLOAD_BODY, errors
from inbox.web.errors import ApiError
from inbox.web.services import AppSettings, Db, Media, MediaSweeps

Staff = NamedDependency[StaffMember]

# The multipart envelope around one file: its headers and boundaries are far below this.
ENVELOPE = 64 * 1024
FETCH_TIMEOUT = 15.0
MAX_INBOUND = 20 * 1024 * 1024  # Twilio's inbound media are at most 5 MB; anything far larger is not theirs
# Shown in the page (thumbnails); every other type is offered as a download, never rendered by
# the browser on the inbox's own origin (an HTML "attachment" would otherwise run as our page).
INLINE = {"image/jpeg", "image/png", "image/gif", "image/webp"}
DOWNLOADABLE = INLINE | {"application/pdf", "audio/mpeg", "audio/ogg", "audio/amr", "video/mp4", "text/vcard"}


# Declared as bytes: the answer's Content-Type is the file's own (an image, a PDF, …).
FILE_ANSWER = ResponseSpec(
    data_container=bytes,
    media_type="application/octet-stream",
    description="The file, with its own Content-Type",
    generate_examples=False,
)


def media_ids(raw: Any) -> list[int]:
    return attachments.parse_ids(raw)  # an AttachmentRefused is answered by the web edge


@post(
    "/media",
    status_code=201,
    responses=errors(401, 403, 413, 422),
    request_max_body_size=attachments.MAX_FILE + ENVELOPE,
    operation_class=UPLOAD_BODY,
)
async def upload_media(
    request: Request[Any, Any, Any], db: Db, media_storage: Media, media_sweeps: MediaSweeps, staff: Staff
) -> attachments.Upload:
    """One attachment (multipart/form-data, field `file`): JPEG, PNG, GIF or PDF judged by its bytes, up to 5 MB."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > attachments.MAX_FILE + ENVELOPE:
        raise ApiError(413, "too_large", "This file is larger than 5 MB; attachments may be at most 5 MB.")
    if "multipart/form-data" not in request.headers.get("content-type", ""):
        raise ApiError(422, "invalid_upload", "Send the file as multipart/form-data in the field `file`.")
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str) or not hasattr(upload, "read"):
        raise ApiError(422, "invalid_upload", "Send the file as multipart/form-data in the field `file`.")
    data = await upload.read(attachments.MAX_FILE + 1)
    try:
        saved = await attachments.save_upload(db, media_storage, staff.id, upload.filename, upload.content_type, data)
    finally:
        await upload.close()
    await media_sweeps.now_and_then(db, media_storage)  # abandoned uploads
    return saved


@get("/media/{token:str}", include_in_schema=False)
async def public_media(db: Db, media_storage: Media, token: FromPath[str]) -> Response[bytes]:
    """What Twilio fetches for a MediaUrl: no login, only this unguessable URL, until the message settles."""
    row = await message_files.public_file(db, token)
    if row is None:
        raise ApiError(404, "not_found", "There is nothing at this address.")
    data = await _read(media_storage, row.storage_key)
    return Response(data, media_type=row.content_type, headers={"Content-Disposition": _disposition(row, "inline")})


@get(
    "/messages/{message_id:int}/media/{index:int}",
    responses={200: FILE_ANSWER, **errors(401, 403, 404, 502)},
)
async def message_media(
    db: Db,
    media_storage: Media,
    settings: AppSettings,
    staff: Staff,
    message_id: FromPath[int],
    index: FromPath[int],
) -> Response[Any]:
    """A message's `index`th attachment (0-based) for staff: an inbound one fetched from Twilio with
    the account's credentials and streamed through; a sent one from the inbox's own storage."""
    found = await message_files.attachment(db, message_id, index)
    if isinstance(found, message_files.StoredFile):
        data = await _read(media_storage, found.storage_key)
        return Response(
            data, media_type=found.content_type, headers={"Content-Disposition": _disposition(found, "inline")}
        )
    return await _from_twilio(settings, found)


async def _from_twilio(settings: Settings, url: str) -> Response[Any]:
    if not settings.twilio_configured or _origin(url) != _origin(settings.twilio_api_base_url):
        # Never hand the account's credentials to another host.
        raise ApiError(404, "not_found", "This attachment is not stored at Twilio, so the inbox cannot fetch it.")
    username = settings.twilio_api_key_sid or settings.twilio_account_sid or ""
    password = (settings.twilio_api_key_secret if settings.twilio_api_key_sid else settings.twilio_auth_token) or ""
    client = httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=True, auth=httpx.BasicAuth(username, password))
    try:
        upstream = await client.send(client.build_request("GET", url), stream=True)
    except httpx.HTTPError:
        await client.aclose()
        raise ApiError(
            502, "twilio_unreachable", "Twilio could not be reached for this attachment; try again."
        ) from None
    if upstream.status_code != 200:
        await upstream.aclose()
        await client.aclose()
        raise ApiError(404, "not_found", "Twilio no longer has this attachment (it may have been deleted).")
    content_type = upstream.headers.get("content-type", "").split(";")[0].strip().lower()

    async def body() -> AsyncIterator[bytes]:
        sent = 0
        try:
            async for chunk in upstream.aiter_bytes():
                sent += len(chunk)
                if sent > MAX_INBOUND:
                    break
                yield chunk
        finally:
            await upstream.aclose()
            await client.aclose()

    inline = content_type in INLINE
    return Stream(
        body(),
        media_type=content_type if content_type in DOWNLOADABLE else "application/octet-stream",
        headers={"Content-Disposition": "inline" if inline else 'attachment; filename="attachment"'},
    )


async def _read(media_storage: MediaStorage, key: str) -> bytes:
    try:
        data: bytes = await media_storage.get(key)
    except attachments.MediaGone:
        raise ApiError(404, "not_found", "This attachment's file is no longer stored.") from None
    return data


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _disposition(row: message_files.StoredFile, kind: str) -> str:
    safe = "".join(ch for ch in row.filename if ch.isascii() and (ch.isalnum() or ch in "._- "))[:100].strip()
    return f'{kind}; filename="{safe}"' if safe else kind


api_handlers = [upload_media, message_media]
route_handlers = [public_media]
