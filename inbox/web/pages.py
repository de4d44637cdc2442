"""Server-rendered pages. Customer text never reaches them unescaped: the templates autoescape,
and everything the scripts add goes through `textContent`."""

from __future__ import annotations

from litestar import Request, Response, get
from litestar.response import Redirect, Template

from inbox import store
from inbox.web.auth import page_identity, runtime_of


@get("/")
async def inbox_page(request: Request) -> Template | Redirect | Response:
    identity = await page_identity(request)
    if isinstance(identity, Response):
        return identity
    runtime = runtime_of(request)
    async with runtime.db.read() as session:
        last_event_id = await store.latest_event_id(session)
    return Template(
        "inbox.html",
        context={
            "staff": identity.staff,
            "csrf_token": identity.csrf_token,
            "business_name": runtime.settings.business_name,
            "last_event_id": last_event_id,
        },
    )
