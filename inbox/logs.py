"""Structured JSON logs: one JSON object per line on stderr, for the inbox's own structlog loggers
and for every stdlib logger (Litestar, uvicorn, SQLAlchemy, alembic, twilio) alike.

    configure_logging()                     once per process, before the app is built
    log = structlog.get_logger(__name__)    then log.info("what happened", message_id=...)

Message text, tokens, passwords, cookies, signatures and full phone numbers never belong in a
log line: log ids, and `phones.mask(number)`. Every line also passes `redact`, the second line
of defence, which
- replaces the values of sensitive keys (body, password, token, cookie, authorization, …),
- masks the values of number keys (to, from, phone, …) to their last four digits,
- masks any run of 8 to 15 digits (an E.164 number, `+` or `whatsapp:` or not) in any text,
- blanks the inbox's API tokens (`inbox_…`) anywhere, and the value of a secret-looking query
  parameter (`?token=`, `&key=` …: uvicorn logs a websocket's path with its query string),
- blanks 32-hex strings (Twilio auth tokens, API key secrets) and SQLAlchemy's
  `[parameters: …]` lines in exception text (they hold a row's values: bodies, numbers).

`request_id` is bound per HTTP request and websocket by `inbox.web.middleware` (contextvars),
so every line logged while serving one carries it, Litestar's and uvicorn's lines included.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

import msgspec
import structlog
from litestar.logging import LoggingConfig
from structlog.typing import EventDict, Processor, WrappedLogger

if TYPE_CHECKING:
    from litestar.types import Scope
    from litestar.types.callable_types import GetLogger
    from litestar.types.protocols import Logger

from inbox.phones import mask

# Keys whose values are never logged, whatever they hold.
SECRET_KEYS = frozenset(
    {
        "body",
        "text",
        "message_body",
        "password",
        "token",
        "api_token",
        "auth_token",
        "secret",
        "secret_key",
        "api_key_secret",
        "authorization",
        "cookie",
        "cookies",
        "set_cookie",
        "session",
        "csrf_token",
        "signature",
        "x_twilio_signature",
        "content_variables",
        "evidence",
        "form",
        "headers",
    }
)
# Keys whose values are phone addresses: only the last four digits survive.
NUMBER_KEYS = frozenset({"to", "from", "from_", "to_addr", "from_addr", "phone", "number", "customer_phone", "wa_id"})
REDACTED = "[redacted]"

_PHONE = re.compile(r"(?<![\w.])\+?\d{8,15}(?!\d)")
_HEX_SECRET = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{32}(?![0-9A-Za-z])")
_SQL_PARAMETERS = re.compile(r"\[parameters: [^\n]*")
# The inbox's API tokens (`inbox_` + 43 URL-safe characters), wherever they appear, and the value
# of any secret-looking query parameter (uvicorn logs a websocket's path with its query string).
_INBOX_TOKEN = re.compile(r"inbox_[A-Za-z0-9_\-]{16,}")
_SECRET_QUERY = re.compile(
    r"([?&](?:token|access_token|api_token|auth|key|secret|password|signature|session)=)[^&\s\"']*", re.IGNORECASE
)
# A request id of the UUID form (the inbox's own, or a balancer's) is logged whole: its first
# group is all digits in about one request in forty, which the phone rule would mask, and then the
# log line no longer matches the X-Request-Id the client was given.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_QUIET = ("httpx", "httpcore", "twilio.http_client", "twilio.async_http_client", "hpack", "asyncio")
_PASS_THROUGH = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "litestar", "alembic", "sqlalchemy")


def scrub_text(text: str) -> str:
    """Phone-like digit runs masked to their last four, token-like hex blanked, SQL parameters cut."""
    if len(text) < 8:  # too short for a number or a token
        return text
    if "[parameters: " in text:
        text = _SQL_PARAMETERS.sub("[parameters: " + REDACTED + "]", text)
    if "inbox_" in text:
        text = _INBOX_TOKEN.sub(REDACTED, text)
    if "=" in text:
        text = _SECRET_QUERY.sub(lambda m: m.group(1) + REDACTED, text)
    text = _HEX_SECRET.sub(REDACTED, text)
    return _PHONE.sub(lambda m: mask(m.group(0)), text)


def scrub_request_id(request_id: str) -> str:
    """A UUID as it is; any other id (a client may send anything) through scrub_text."""
    return request_id if _UUID.fullmatch(request_id) else scrub_text(request_id)


def _normal(key: str) -> str:
    return key.lower().replace("-", "_")


def _scrub(value: object, depth: int = 0) -> object:
    if isinstance(value, str):
        return scrub_text(value)
    if depth > 4:
        return value
    if isinstance(value, dict):
        return {k: _scrub_item(k, v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v, depth + 1) for v in value]
    return value


def _scrub_item(key: object, value: object, depth: int) -> object:
    name = _normal(str(key))
    if name in SECRET_KEYS:
        return REDACTED if value not in (None, "") else value
    if name in NUMBER_KEYS and isinstance(value, str):
        return mask(value)
    if name == "request_id" and isinstance(value, str):
        return scrub_request_id(value)
    return _scrub(value, depth)


_OWN_FIELDS = frozenset({"timestamp", "level", "logger"})  # added by the pipeline itself


def redact(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the last step before rendering (see the module docstring)."""
    for key in list(event_dict):
        if key.startswith("_") or key in _OWN_FIELDS:
            continue
        event_dict[key] = _scrub_item(key, event_dict[key], 0)
    return event_dict


class _NamedWriteLogger(structlog.WriteLogger):
    """structlog's plain line writer, with the name it was asked for (`add_logger_name` reads it)."""

    def __init__(self, file: TextIO, name: str | None) -> None:
        super().__init__(file)
        self.name = name


def configure_logging(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """JSON lines on `stream` (stderr) for structlog and stdlib loggers; safe to call again.

    The inbox's own structlog lines are rendered by structlog and written straight to the stream
    (one access line per request is on the webhook's hot path: the stdlib round trip tripled its
    cost); stdlib loggers' records (uvicorn, Litestar, …) go through a handler that renders them
    the same way."""
    global _access_stream
    stream = stream or sys.stderr
    _access_stream = stream if level <= logging.INFO else None
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    render: list[Processor] = [
        structlog.processors.format_exc_info,
        redact,
        structlog.processors.JSONRenderer(serializer=_json),
    ]
    structlog.reset_defaults()
    structlog.configure(
        processors=[*shared, *render],
        logger_factory=lambda *args: _NamedWriteLogger(stream, args[0] if args else None),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Litestar's and uvicorn's loggers carry no handlers of their own: their records reach the
    # root handler above and come out as the same JSON (uvicorn must run with log_config=None).
    for name in _PASS_THROUGH:
        logger = logging.getLogger(name)
        for old in logger.handlers[:]:
            logger.removeHandler(old)
        logger.propagate = True
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    # Request lines of our own HTTP clients (the sandbox's callbacks, Twilio calls) are noise,
    # and twilio-python logs each request's form (bodies, numbers) at INFO.
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)


_encoder = msgspec.json.Encoder(enc_hook=str)


def _json(value: Any, **_options: Any) -> str:
    return _encoder.encode(value).decode()


class _ThroughRoot(LoggingConfig):
    """Litestar's logging config without its own handlers or dictConfig: its records (uncaught
    exceptions, with their traceback) propagate to the root handler of `configure_logging`."""

    def configure(self) -> GetLogger:
        logger = logging.getLogger("litestar")
        for old in logger.handlers[:]:
            logger.removeHandler(old)
        logger.propagate = True
        return logging.getLogger


def _log_exception(logger: Logger, scope: Scope, _traceback: list[str]) -> None:
    """A 4xx (a refused login, a 404, a bad form, a 409) is an answer, not an error: the request's
    own info line (inbox.web.middleware) is all it gets. Anything else: an error with its traceback.

    Litestar's own filter (`disable_stack_trace`) reads the status from the exception's class, so
    an ApiError(404) looked like a 500 to it; this reads it from the exception itself."""
    import sys

    from inbox.refusals import Refused

    exc = sys.exc_info()[1]
    if isinstance(exc, Refused):  # the domain said no: an answer
        return
    status = getattr(exc, "status_code", 500)
    if isinstance(status, int) and 400 <= status < 500:
        return
    logger.exception("Uncaught exception (connection_type=%s, path=%r):", scope["type"], scope["path"])


def litestar_logging_config() -> LoggingConfig:
    """For `Litestar(logging_config=...)`: every unhandled error is logged with its traceback;
    routine refusals (4xx) are not (see _log_exception)."""
    return _ThroughRoot(log_exceptions="always", exception_logging_handler=_log_exception)


# ---- the access line ------------------------------------------------------------------------

_access_stream: TextIO | None = None  # where configure_logging sends lines, while INFO is logged


def access_line(request_id: str, method: str, path: str, status: int, duration_ms: float) -> None:
    """The one line per HTTP request (logger `inbox.access`), exactly as structlog would write
    `get_logger("inbox.access").info("request", method=…, path=…, status=…, duration_ms=…)` with
    the request id bound: the same keys in the same order, through the same redaction. Built here
    because it is on every webhook's path, where structlog's generic processor chain cost several
    times more than the line itself (a test holds the two equal)."""
    stream = _access_stream
    if stream is None:
        return
    line = {
        "method": scrub_text(method),
        "path": scrub_text(path),
        "status": status,
        "duration_ms": duration_ms,
        "event": "request",
        "request_id": scrub_request_id(request_id),
        "level": "info",
        "logger": "inbox.access",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    stream.write(_encoder.encode(line).decode() + "\n")
    stream.flush()
