"""One typed Settings object, read once from the environment (and `.env`) and passed down.

Every field documents itself; a malformed value stops start-up with one line naming the
variable and the shape it should have (`SettingsError`).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from inbox.twilio.payloads import E164

SID_SHAPES = {
    "TWILIO_ACCOUNT_SID": (re.compile(r"^AC[0-9a-fA-F]{32}$"), "AC followed by 32 hex characters"),
    "TWILIO_API_KEY_SID": (re.compile(r"^SK[0-9a-fA-F]{32}$"), "SK followed by 32 hex characters"),
    "TWILIO_MESSAGING_SERVICE_SID": (
        re.compile(r"^MG[0-9a-fA-F]{32}$"),
        "MG followed by 32 hex characters",
    ),
    "TWILIO_AUTH_TOKEN": (re.compile(r"^[0-9a-fA-F]{32}$"), "32 hex characters"),
    "TWILIO_AUTH_TOKEN_SECONDARY": (re.compile(r"^[0-9a-fA-F]{32}$"), "32 hex characters"),
}


class SettingsError(ValueError):
    """A setting has the wrong shape; the message names the variable and the expected shape."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True)

    database_url: str = Field(
        "sqlite+aiosqlite:///./inbox.db",
        alias="INBOX_DATABASE_URL",
        description="Any SQLAlchemy async URL; postgresql+asyncpg://... in production.",
    )
    redis_url: str | None = Field(
        None,
        alias="INBOX_REDIS_URL",
        description="redis://...: live events fan out across every instance. Unset: in-process bus.",
    )
    db_pool_size: int = Field(
        10,
        ge=1,
        le=1000,
        alias="INBOX_DB_POOL_SIZE",
        description="PostgreSQL connections kept per process; as many again may open at a peak.",
    )
    db_pool_timeout: float = Field(
        5.0,
        gt=0,
        le=300,
        alias="INBOX_DB_POOL_TIMEOUT",
        description="Seconds a request waits for a free PostgreSQL connection before it answers 503 busy.",
    )
    public_url: str = Field(
        "http://127.0.0.1:8000",
        alias="INBOX_PUBLIC_URL",
        description="The base URL Twilio calls; signatures and websocket Origins are checked against it.",
    )
    secret_key: str | None = Field(
        None,
        alias="INBOX_SECRET_KEY",
        description="Keys the stored digests of web sessions: a new key signs everyone out. Random per run in "
        "demo; required by serve.",
    )
    twilio_account_sid: str | None = Field(
        None, alias="TWILIO_ACCOUNT_SID", description="AC + 32 hex: the Twilio account; inbound webhooks must name it."
    )
    twilio_auth_token: str | None = Field(
        None, alias="TWILIO_AUTH_TOKEN", description="Checks X-Twilio-Signature; REST auth unless an API key is set."
    )
    twilio_auth_token_secondary: str | None = Field(
        None,
        alias="TWILIO_AUTH_TOKEN_SECONDARY",
        description="During a token rotation, signatures made with it are accepted too.",
    )
    twilio_api_key_sid: str | None = Field(
        None,
        alias="TWILIO_API_KEY_SID",
        description="SK + 32 hex: preferred credentials for REST calls, with its secret.",
    )
    twilio_api_key_secret: str | None = Field(
        None, alias="TWILIO_API_KEY_SECRET", description="The secret of TWILIO_API_KEY_SID."
    )
    twilio_messaging_service_sid: str | None = Field(
        None,
        alias="TWILIO_MESSAGING_SERVICE_SID",
        description="MG + 32 hex: replies go out through it, From pinned to the number the customer wrote to.",
    )
    twilio_phone_number: str | None = Field(
        None, alias="TWILIO_PHONE_NUMBER", description="The SMS sender when there is no Messaging Service."
    )
    twilio_whatsapp_from: str | None = Field(
        None, alias="TWILIO_WHATSAPP_FROM", description="whatsapp:+E.164: the WhatsApp sender."
    )
    twilio_api_base_url: str = Field(
        "https://api.twilio.com",
        alias="TWILIO_API_BASE_URL",
        description="Where REST calls go; the sandbox and the tests point it at a local server.",
    )
    keyword_replies: Literal["inbox", "twilio"] = Field(
        "inbox",
        alias="INBOX_KEYWORD_REPLIES",
        description="inbox: the inbox answers HELP/STOP/START; twilio: Advanced Opt-Out answers, the inbox records.",
    )
    business_name: str = Field(
        "Inbox", alias="INBOX_BUSINESS_NAME", description="Named in the default answers and the page title."
    )
    default_country: str = Field(
        "US",
        alias="INBOX_DEFAULT_COUNTRY",
        description="ISO 3166 country for numbers typed without +country (a new message, the search, export --customer).",
    )
    help_text: str | None = Field(None, alias="INBOX_HELP_TEXT", description="The automatic answer to HELP.")
    stop_text: str | None = Field(None, alias="INBOX_STOP_TEXT", description="The automatic answer to STOP.")
    start_text: str | None = Field(None, alias="INBOX_START_TEXT", description="The automatic answer to START.")
    metrics_token: str | None = Field(
        None,
        alias="INBOX_METRICS_TOKEN",
        description="When set, GET /metrics needs Authorization: Bearer <this token>. Unset: open to anyone "
        "reaching the app port (keep it off the public proxy).",
    )
    trusted_proxies: str = Field(
        "",
        alias="INBOX_TRUSTED_PROXIES",
        description="Comma-separated addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For names "
        "the client; used only to tell sign-in clients apart for throttling. Empty: the peer address.",
    )
    timezone: str = Field(
        "UTC",
        alias="INBOX_TIMEZONE",
        description="The business's IANA time zone (Europe/London): the days and weeks of the reports, and the "
        "date and time staff pick for a scheduled reply.",
    )

    media_dir: str = Field(
        "./media",
        alias="INBOX_MEDIA_DIR",
        description="The folder where attachments staff upload are kept (created when needed); every instance "
        "must see the same folder. Not used when INBOX_MEDIA_S3_BUCKET is set.",
    )
    media_s3_bucket: str | None = Field(
        None,
        alias="INBOX_MEDIA_S3_BUCKET",
        description="An S3-compatible bucket for attachments (under the key prefix media/) instead of the folder.",
    )
    media_s3_endpoint_url: str | None = Field(
        None,
        alias="INBOX_MEDIA_S3_ENDPOINT_URL",
        description="The bucket's service, for S3-compatible stores (MinIO, R2, …); unset: AWS S3.",
    )
    media_s3_region: str | None = Field(None, alias="INBOX_MEDIA_S3_REGION", description="The bucket's region.")
    media_s3_access_key_id: str | None = Field(
        None,
        alias="INBOX_MEDIA_S3_ACCESS_KEY_ID",
        description="Access key for the bucket; unset: boto3's own chain (an instance role, AWS_* variables).",
    )
    media_s3_secret_access_key: str | None = Field(
        None, alias="INBOX_MEDIA_S3_SECRET_ACCESS_KEY", description="The secret of that access key."
    )

    @field_validator("public_url", "twilio_api_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("media_s3_endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("an http:// or https:// URL such as https://s3.example.com")
        return value or None

    @field_validator("default_country")
    @classmethod
    def _country(cls, value: str) -> str:
        import phonenumbers

        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("a two-letter ISO 3166 country code, such as US, GB or BR")
        return value.upper()

    @field_validator("twilio_phone_number")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value and not E164.fullmatch(value):
            raise ValueError("an E.164 number such as +15551234567")
        return value

    @field_validator("twilio_whatsapp_from")
    @classmethod
    def _whatsapp(cls, value: str | None) -> str | None:
        if value and not (value.startswith("whatsapp:") and E164.fullmatch(value.removeprefix("whatsapp:"))):
            raise ValueError("whatsapp: followed by an E.164 number, such as whatsapp:+14155238886")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in filter(None, (p.strip() for p in value.split(","))):
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError("comma-separated IP addresses or networks such as 172.16.0.0/12") from None
        return value

    @property
    def trusted_proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(p.strip(), strict=False) for p in self.trusted_proxies.split(",") if p.strip()]

    @field_validator("database_url")
    @classmethod
    def _async_url(cls, value: str) -> str:
        if not (value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://"))):
            raise ValueError("sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value.strip())
        except (ValueError, ZoneInfoNotFoundError):
            raise ValueError("an IANA time zone name such as Europe/London or America/New_York") from None
        return value.strip()

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value and not re.match(r"^rediss?://", value):
            raise ValueError("redis://host:port/db")
        return value or None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def twilio_configured(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @property
    def auth_tokens(self) -> list[str]:
        """Tokens a webhook signature may be made with: the primary, then the rotation secondary."""
        return [t for t in (self.twilio_auth_token, self.twilio_auth_token_secondary) if t]

    def default_help_text(self) -> str:
        return self.help_text or (f"{self.business_name}: reply here and our team will answer. Reply STOP to opt out.")

    def default_stop_text(self) -> str:
        return self.stop_text or (
            f"{self.business_name}: you are unsubscribed and will get no more messages. Reply START to opt back in."
        )

    def default_start_text(self) -> str:
        return self.start_text or (
            f"{self.business_name}: you are subscribed again. Reply HELP for help, STOP to opt out."
        )


def _check_shapes(settings: Settings) -> None:
    for variable, (pattern, shape) in SID_SHAPES.items():
        field = variable.lower()
        value = getattr(settings, field)
        if value and not pattern.match(value):
            raise SettingsError(f"{variable} must be {shape}")


def load_settings(**overrides: object) -> Settings:
    """Read the settings once; raise SettingsError with one readable line on a bad value."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "?"
        alias = Settings.model_fields[field].alias if field in Settings.model_fields else field
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        raise SettingsError(f"{alias or field.upper()} must be {message}") from None
    _check_shapes(settings)
    if settings.twilio_api_key_sid and not settings.twilio_api_key_secret:
        raise SettingsError("TWILIO_API_KEY_SECRET must be set when TWILIO_API_KEY_SID is")
    return settings
