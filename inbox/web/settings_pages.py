"""The managers' settings page: the Twilio connection (what to paste into the Console, when the
last webhook came, the last error), the automatic answers and extra keywords, WhatsApp templates.

Forms post back here with the session's CSRF token. Secrets are never shown, only whether set.
"""

from __future__ import annotations

import re
from typing import Any, TypedDict
from urllib.parse import quote

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from inbox import app_settings, whatsapp_templates
from inbox.connection_health import connection_health
from inbox.keywords import Keyword
from inbox.paths import INBOUND_WEBHOOK, STATUS_WEBHOOK
from inbox.refusals import Refused
from inbox.web.auth import identify, manager_form, page_identity, runtime_of
from inbox.web.errors import ApiError
from inbox.web.services import AppSettings, Db


class TemplateItem(TypedDict):
    id: int
    name: str
    content_sid: str
    body: str
    variables: list[str]


class TemplateList(TypedDict):
    templates: list[TemplateItem]


_MANAGERS_ONLY = "Only managers can change the inbox's settings."


def _failed(section: str, message: str) -> Redirect:
    """Back to the settings page, the failure shown in that section's form."""
    return Redirect(f"/settings?error={quote(message[:300])}&section={section}#{section}", status_code=303)


def _words(raw: str) -> list[str]:
    return [word.strip() for word in re.split(r"[,\n]", raw) if word.strip()][:50]


@get("/settings", include_in_schema=False)
async def settings_page(request: Request[Any, Any, Any], db: Db, settings: AppSettings) -> Template | Response[Any]:
    identity = await page_identity(request, managers_only=_MANAGERS_ONLY)
    if isinstance(identity, Response):
        return identity
    keywords = await app_settings.keyword_answers(db, settings)
    health = await connection_health(db)
    templates = await whatsapp_templates.registered(db)
    return Template(
        "settings.html",
        context={
            "staff": identity.staff,
            "csrf_token": identity.csrf_token,
            "business_name": settings.business_name,
            "default_country": settings.default_country,
            "twilio": {
                "account_sid": settings.twilio_account_sid,
                "auth_token_set": bool(settings.twilio_auth_token),
                "secondary_token_set": bool(settings.twilio_auth_token_secondary),
                "api_key_sid": settings.twilio_api_key_sid,
                "messaging_service_sid": settings.twilio_messaging_service_sid,
                "phone_number": settings.twilio_phone_number,
                "whatsapp_from": settings.twilio_whatsapp_from,
                "api_base_url": settings.twilio_api_base_url,
                "inbound_url": settings.public_url + INBOUND_WEBHOOK,
                "status_url": settings.public_url + STATUS_WEBHOOK,
                "keyword_replies": settings.keyword_replies,
            },
            "last_webhook": health.last_inbound_at,
            "last_error": health.last_error,
            "answers": {k.value: keywords.policy.answer(k) for k in Keyword},
            "extra": {family: ", ".join(keywords.extra.get(family, [])) for family in app_settings.KEYWORD_FAMILIES},
            "templates": templates,
            "saved": request.query_params.get("saved"),
            "reconcile": {k: request.query_params.get(k, "0") for k in ("found", "present", "ingested")},
            "error": request.query_params.get("error"),
            "error_section": request.query_params.get("section")
            if request.query_params.get("section") in ("answers", "templates", "reconcile")
            else None,
        },
    )


@post("/settings/answers", status_code=303, include_in_schema=False)
async def save_answers(request: Request[Any, Any, Any], db: Db) -> Response[Any]:
    identity, form = await manager_form(request, _MANAGERS_ONLY)
    if isinstance(identity, Response):
        return identity
    texts = {family: str(form.get(family, "")).strip()[:1600] for family in ("help", "opt_out", "opt_in")}
    extra = {family: _words(str(form.get(f"extra_{family}", ""))) for family in app_settings.KEYWORD_FAMILIES}
    try:
        await app_settings.save_keyword_answers(db, texts, extra)
    except Refused as exc:
        return _failed("answers", exc.detail)
    return Redirect("/settings?saved=answers#answers", status_code=303)


@post("/settings/templates", status_code=303, include_in_schema=False)
async def add_template(request: Request[Any, Any, Any], db: Db) -> Response[Any]:
    identity, form = await manager_form(request, _MANAGERS_ONLY)
    if isinstance(identity, Response):
        return identity
    try:
        await whatsapp_templates.register(
            db,
            name=str(form.get("name", "")).strip()[:200],
            content_sid=str(form.get("content_sid", "")).strip(),
            body=str(form.get("body", "")).strip()[:1600],
            variables=_words(str(form.get("variables", ""))),
            created_by=identity.staff.id,
        )
    except Refused as exc:
        return _failed("templates", exc.detail)
    return Redirect("/settings?saved=templates#templates", status_code=303)


@post("/settings/templates/{template_id:int}/delete", status_code=303, include_in_schema=False)
async def delete_template(request: Request[Any, Any, Any], db: Db, template_id: FromPath[int]) -> Response[Any]:
    identity, _ = await manager_form(request, _MANAGERS_ONLY)
    if isinstance(identity, Response):
        return identity
    await whatsapp_templates.remove(db, template_id)
    return Redirect("/settings?saved=templates#templates", status_code=303)


@get("/api/whatsapp-templates")
async def list_templates(request: Request[Any, Any, Any], db: Db) -> TemplateList:
    """For the composer: the approved templates staff may send outside WhatsApp's 24-hour window."""
    if await identify(request) is None:
        raise ApiError(401, "not_authenticated", "Sign in, or send a valid API token.")
    return {
        "templates": [
            {"id": t.id, "name": t.name, "content_sid": t.content_sid, "body": t.body, "variables": t.variables}
            for t in await whatsapp_templates.registered(db)
        ]
    }


@post("/settings/reconcile", status_code=303, include_in_schema=False)
async def reconcile_now(request: Request[Any, Any, Any]) -> Response[Any]:
    """Runs `inbox reconcile` for the default window (or the form's `since`) and returns to the
    settings page: `?saved=reconcile&found=F&present=P&ingested=I#reconcile`, or `?error=…`."""
    from inbox.reconcile import ReconcileError, parse_since, reconcile

    identity, form = await manager_form(request, "Only managers can reconcile with Twilio.")
    if isinstance(identity, Response):
        return identity
    try:
        since = parse_since(str(form.get("since") or "") or None)
        runtime = runtime_of(request)  # its Twilio sender: started with the app when Twilio is configured
        report = await reconcile(runtime.db, runtime.bus, runtime.settings, runtime.sender, runtime.outbox_waker, since)
    except ReconcileError as exc:
        return _failed("reconcile", str(exc))
    return Redirect(
        f"/settings?saved=reconcile&found={report.found}&present={report.present}&ingested={report.ingested}#reconcile",
        status_code=303,
    )


route_handlers = [settings_page, save_answers, add_template, delete_template, list_templates, reconcile_now]
