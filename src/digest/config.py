"""The settings: one pydantic-settings class, every setting with its default and help, loaded once.

Read from the environment (prefix ``DIGEST_``) and a ``.env`` file in the working directory; the
environment wins. ``load_settings()`` is called by the CLI and the web app at start-up and the
result is passed in; nothing here runs at import time. Every check of a setting's shape lives
in the class below, so a bad value stops start-up with one line naming it, whichever command
or part of digest would read it first.
"""

from __future__ import annotations

import ipaddress
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from digest.alert_settings import AlertSettings
from digest.delivery.esp_targets import checked_esp_url, is_esp_url
from digest.desk_settings import DeskSettings
from digest.dkim_settings import DkimSettings
from digest.engagement_settings import EngagementSettings
from digest.errors import SettingsError
from digest.mail import headers as h
from digest.periods import WEEKDAYS, check_timezone
from digest.secret_key import check_secret, machine_secret

# RFC 2919: a List-Id is a dot-atom with at least one dot, e.g. "digest.example.com".


def _split_list(value: Any) -> Any:
    """Accept "a, b" as well as a real list for list settings."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CommaList = Annotated[list[str], NoDecode]


class Settings(AlertSettings, DeskSettings, DkimSettings, EngagementSettings, BaseSettings):
    """Every setting of digest: the ones operators are told about, and the knobs with defaults
    chosen so that nobody needs to set them."""

    model_config = SettingsConfigDict(
        env_prefix="DIGEST_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    database_url: str = Field(
        "sqlite:///var/digest.db",
        description="SQLAlchemy URL of the store: sqlite:///path.db or "
        "postgresql+psycopg://user@host/db (unset: digest.db in DIGEST_VAR_DIR; "
        "digest db upgrade creates it)",
    )
    smtp_url: str = Field(
        "file:var/outbox",
        description="where mail goes: smtp://[user:pass@]host:port (STARTTLS when offered), "
        "smtps://... (implicit TLS), file:FOLDER (one .eml file per message; unset: outbox/ in "
        "DIGEST_VAR_DIR), or an email service: ses://REGION, postmark://TOKEN@, mailgun://KEY@DOMAIN",
    )
    smtp_connections: int = Field(
        8, ge=1, le=256, description="parallel SMTP connections per delivery worker"
    )
    smtp_timeout: float = Field(30.0, gt=0, description="seconds allowed for each SMTP step")
    smtp_max_per_connection: int = Field(
        1000, ge=1, description="messages sent over one SMTP connection before it is renewed"
    )
    send_rate: float = Field(
        0, ge=0, description="most messages per second per worker, 0 for no limit"
    )
    base_url: str = Field(
        "http://127.0.0.1:8000",
        description="public URL of the web app, used in every link in a mail",
    )
    secret_key: str | None = Field(
        None,
        description="key for signed tokens; set it in production "
        "(unset: generated once into secret.key in DIGEST_VAR_DIR)",
    )
    from_: str = Field(
        "digest <digest@localhost>",
        alias="DIGEST_FROM",
        description="the From header, e.g. The Daily Brief <news@example.com>",
    )
    site_name: str = Field("digest", description="the publication's name, in mails and pages")
    timezone: str = Field("UTC", description="default timezone of new subscribers (IANA name)")
    send_hour: int = Field(7, description="default local hour (0-23) at which a digest goes out")
    feeds: CommaList = Field(
        default_factory=list,
        description="comma-separated feed URLs polled on schedule (also managed with digest feeds)",
    )
    templates_dir: Path | None = Field(
        None, description="a folder whose templates override the shipped ones, file by file"
    )
    admin_token: str | None = Field(
        None, description="bearer token of the admin API under /api/; the API is off while unset"
    )

    # Beyond the first contract: defaults chosen so nobody needs to set them.
    soft_bounce_limit: int = Field(
        3, ge=0, description="bounced digests in a row after which a reader counts as bounced"
    )
    return_path: str | None = Field(
        None,
        description="envelope sender, where bounce reports go (unset: the From address; with "
        "DIGEST_VERP bounces@ its domain)",
    )
    verp: bool = Field(
        False, description="true: envelope sender LOCAL+TOKEN@DOMAIN, TOKEN naming the delivery"
    )
    metrics_token: str | None = Field(
        None, description="bearer token a /metrics scrape must carry; /metrics is open while unset"
    )
    var_dir: Path = Field(
        Path("var"), description="folder of the default store, secret key, outbox and demo"
    )
    list_id: str | None = Field(
        None,
        validate_default=True,  # checked when unset too: it is derived from DIGEST_FROM then
        description="the List-Id header, like digest.example.com (unset: digest. and the From "
        "domain)",
    )
    unsubscribe_mailto: str | None = Field(
        None,
        description="an address offered as mailto: in List-Unsubscribe, its mail fed to "
        "digest bounces import (unset: none)",
    )
    weekly_day: str = Field("monday", description="weekday on which weekly digests go out")
    featured_categories: CommaList = Field(
        default_factory=lambda: ["Featured", "Don't Miss"],
        description="comma-separated post categories that make a post featured (Don't Miss)",
    )
    alert_categories: CommaList = Field(
        default_factory=list,
        description="comma-separated post categories that raise a breaking-news alert (none: off)",
    )
    max_featured: int = Field(3, ge=0, le=50, description="most posts under Don't Miss")
    max_latest: int = Field(10, ge=0, le=100, description="most posts under Latest Posts")
    min_new_posts: int = Field(1, ge=1, description="fewest new posts for a digest to go out")
    poll_minutes: int = Field(15, ge=1, description="minutes between feed polls")
    schedule_seconds: int = Field(
        60, ge=1, le=3600, description="seconds between the scheduler's checks for due digests"
    )
    feed_timeout: float = Field(20.0, gt=0, description="seconds allowed for one feed fetch")
    feed_max_bytes: int = Field(10_000_000, ge=1024, description="largest feed read, in bytes")
    allow_private_feeds: bool = Field(
        False, description="allow feed URLs on loopback/private addresses (tests, intranets)"
    )
    confirm_limit: int = Field(3, ge=1, description="confirmation mails per address per 24 hours")
    ip_limit: int = Field(20, ge=1, description="subscribe requests per client IP per hour")
    blocked_domains: CommaList = Field(
        default_factory=list,
        description="comma-separated mail domains (and their subdomains) refused at subscribe",
    )
    cors_origins: CommaList = Field(
        default_factory=list,
        description="comma-separated web origins allowed to POST /subscribe from a browser",
    )
    trusted_proxies: CommaList = Field(
        default_factory=list,
        description="comma-separated proxy addresses or networks whose X-Forwarded-For names "
        "the real client",
    )
    consent_wording: str = Field(
        "v1", description="version of the consent text, kept with each consent record"
    )
    retry_deadline_hours: float = Field(
        24, gt=0, description="hours a deferred mail is retried before it counts as failed"
    )
    lease_seconds: int = Field(
        300,
        ge=10,
        description="seconds a worker's claim on a delivery lasts before another "
        "worker may take it",
    )
    log_json: bool = Field(
        False, description="serve and worker log one JSON object per line (else key=value)"
    )

    @field_validator(
        "feeds",
        "featured_categories",
        "blocked_domains",
        "alert_categories",
        "cors_origins",
        "trusted_proxies",
        mode="before",
    )
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("secret_key", "admin_token", "metrics_token")
    @classmethod
    def _secrets(cls, value: str | None, info: ValidationInfo) -> str | None:
        return check_secret(info.field_name or "", value)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL ({value!r})") from exc
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(f"use sqlite:///FILE or postgresql+psycopg://..., not {value!r}")
        if url.get_backend_name() == "postgresql" and url.get_driver_name() not in ("psycopg",):
            raise ValueError("PostgreSQL URLs must use the psycopg driver: postgresql+psycopg://")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme == "file":
            if not (parts.path or parts.netloc):
                raise ValueError("file: URLs need a folder, e.g. file:var/outbox")
            return value
        if is_esp_url(value):
            return checked_esp_url(value)  # ValueError names what is wrong
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("use smtp://, smtps://, file:, ses://, postmark:// or mailgun:// URLs")
        if not parts.hostname:
            raise ValueError(f"no host in {value!r}")
        try:
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError as exc:
            raise ValueError(f"bad port in {value!r}") from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        check_timezone(value)
        return value

    @field_validator("send_hour")
    @classmethod
    def _hour(cls, value: int) -> int:
        if not 0 <= value <= 23:
            raise ValueError(f"an hour is 0 to 23, not {value}")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http(s) URL, not {value!r}")
        return value.rstrip("/")

    @field_validator("weekly_day")
    @classmethod
    def _weekday(cls, value: str) -> str:
        if value.lower() not in WEEKDAYS:
            raise ValueError(f"must be a weekday name ({', '.join(WEEKDAYS)})")
        return value.lower()

    @field_validator("from_")
    @classmethod
    def _from(cls, value: str) -> str:
        return h.check_sender(value)

    @field_validator("list_id")
    @classmethod
    def _list_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        from_ = info.data.get("from_")
        if not value and from_ is None:
            return None  # DIGEST_FROM is wrong, and that error is the one reported
        list_id = (value or f"digest.{h.sender_domain(from_ or '')}").strip().strip("<>").strip()
        if not h.LIST_ID.fullmatch(list_id):
            raise ValueError(f"not like digest.example.com: {list_id!r}")
        return list_id if value else None

    @field_validator("unsubscribe_mailto")
    @classmethod
    def _unsubscribe_mailto(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            return h.check_address(value.strip().removeprefix("mailto:"))
        except ValueError:
            raise ValueError(f"not an address: {value!r}") from None

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an address or network") from None
        return value

    @field_validator("return_path")
    @classmethod
    def _return_path(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        local, at, domain = value.rpartition("@")
        if not at or not local or not domain or any(c in value for c in "<>\r\n \t,;"):
            raise ValueError("must be one plain address, like bounces@news.example.com")
        return value

    @model_validator(mode="after")
    def _under_var_dir(self) -> Settings:
        # The default store and outbox follow DIGEST_VAR_DIR, with the key, so one setting
        # says where everything digest makes for itself lives.
        if "database_url" not in self.model_fields_set:
            self.database_url = f"sqlite:///{self.var_dir / 'digest.db'}"
        if "smtp_url" not in self.model_fields_set:
            self.smtp_url = f"file:{self.var_dir / 'outbox'}"
        return self

    # -- derived values ---------------------------------------------------------------------

    @property
    def envelope_from(self) -> str:
        """The SMTP envelope sender (VERP's base): ``DIGEST_RETURN_PATH``, else the From
        header's address, or with VERP ``bounces@`` its domain (not a person's mailbox)."""
        if self.return_path:
            return self.return_path
        return f"bounces@{self.from_domain}" if self.verp else parseaddr(self.from_)[1]

    @property
    def from_domain(self) -> str:
        """The domain of the From address, IDNA-encoded and in lower case."""
        return h.sender_domain(self.from_)

    @property
    def list_identifier(self) -> str:
        """The List-Id without its label: ``DIGEST_LIST_ID``, else ``digest.`` + the From domain."""
        return self.list_id or f"digest.{self.from_domain}"

    @property
    def file_outbox(self) -> Path | None:
        """The folder of the file transport, or None when mail goes over SMTP."""
        parts = urlsplit(self.smtp_url)
        if parts.scheme != "file":
            return None
        return Path(unquote(parts.netloc + parts.path))

    @property
    def is_sqlite(self) -> bool:
        """Whether the store is an SQLite file."""
        return make_url(self.database_url).get_backend_name() == "sqlite"

    @property
    def secret(self) -> bytes:
        """The signing key as bytes (load_settings guarantees it is set)."""
        if not self.secret_key:
            raise SettingsError("DIGEST_SECRET_KEY: not set")
        return self.secret_key.encode()


def setting_name(field: str) -> str:
    """The environment variable of a field of Settings (``from_`` is ``DIGEST_FROM``)."""
    if field.upper().startswith("DIGEST_"):
        return field.upper()  # a field's alias, as pydantic names it in its errors
    return "DIGEST_" + field.rstrip("_").upper()


def load_settings(*, make_secret: bool = True, **overrides: Any) -> Settings:
    """Read, validate and complete the settings; a bad one raises SettingsError with one line.

    When no secret key is configured, the one in ``secret.key`` under ``DIGEST_VAR_DIR`` is
    used, generated once (mode 0600) and reused by every later run on this machine. With
    ``make_secret=False`` an existing key file is read but none is made.
    """
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        field = str((err.get("loc") or ("?",))[0])
        raise SettingsError(f"{setting_name(field)}: {msg}") from None
    if not settings.secret_key:
        settings.secret_key = machine_secret(settings.var_dir, make=make_secret)
    return settings
