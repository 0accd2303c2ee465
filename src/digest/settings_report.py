"""The settings as ``digest settings`` shows them: every one by its ``DIGEST_`` name, with its
effective value, its default and its help text, secrets redacted.

The names, defaults and help come from the settings class itself, where each is declared once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from sqlalchemy.engine import make_url

from digest.config import Settings, setting_name
from digest.delivery.esp_targets import is_esp_url

REDACTED = "***"
# Settings whose whole value is a secret, and settings that are URLs that may carry one.
_SECRETS = frozenset({"secret_key", "admin_token", "metrics_token"})
_URLS = frozenset({"database_url", "smtp_url"})
# Query parameters of a URL that carry credentials (libpq's ``password``, an API token...).
_SECRET_PARAM = re.compile(r"pass|secret|token|key", re.IGNORECASE)

Value = str | int | float | bool | list[str] | None


@dataclass(frozen=True)
class ShownSetting:
    """One setting as people and programs read it."""

    name: str  # the environment variable, e.g. DIGEST_SMTP_URL
    value: Value  # the effective value, secrets replaced by REDACTED
    default: Value
    help: str


def describe(settings: Settings) -> list[ShownSetting]:
    """Every setting in the order the settings class declares them."""
    shown = []
    for field, info in Settings.model_fields.items():
        value = _plain(getattr(settings, field))
        if value is not None and field in _SECRETS:
            value = REDACTED
        elif isinstance(value, str) and field in _URLS:
            value = redact_url(value)
        default = _plain(info.get_default(call_default_factory=True))
        shown.append(
            ShownSetting(setting_name(info.alias or field), value, default, info.description or "")
        )
    return shown


def store_location(database_url: str) -> str:
    """Where the store is, as a person looks for it: an SQLite file's absolute path (a relative
    one is read from the working directory), else the database URL without its password."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return os.path.abspath(url.database or "")
    return redact_url(database_url)


def redact_url(url: str) -> str:
    """``url`` with the password of its user part and credential parameters replaced."""
    parts = urlsplit(url)
    # Replaced in place rather than rebuilt: urlunsplit would turn sqlite:///x into sqlite:/x.
    if is_esp_url(url) and parts.username:
        # postmark://TOKEN@ and mailgun://KEY@DOMAIN: the user part is the secret.
        host = parts.netloc.rpartition("@")[2]
        url = url.replace(parts.netloc, f"{REDACTED}@{host}", 1)
    elif parts.password is not None:
        user_info, _, host = parts.netloc.rpartition("@")
        url = url.replace(parts.netloc, f"{user_info.partition(':')[0]}:{REDACTED}@{host}", 1)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(_SECRET_PARAM.search(key) for key, _ in pairs):
        query = urlencode(
            [(k, REDACTED if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="*"
        )
        url = url.replace("?" + parts.query, "?" + query, 1)
    return url


def _plain(value: Any) -> Value:
    """A value JSON and a terminal show as it was set: folders as text."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [str(item) for item in value]
    return value  # type: ignore[no-any-return]
