"""The fields an operator gives a newsletter (from the command line or the admin API), checked
and in the form they are stored: one rule for both faces.

An empty From, Reply-To, List-Id, templates folder or weekly day means "follow the settings"
again: ``newsletter_config.configure`` reads an empty value as unset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from digest.errors import InvalidInput
from digest.mail.headers import LIST_ID, check_sender
from digest.periods import WEEKDAYS
from digest.subscriber_fields import parse_cadence, parse_hour, parse_topics


def check_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` checked and normalised; None values are left out (not given).

    InvalidInput names the field and what is wrong with its value.
    """
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None:
            continue
        out[key] = _CHECKS[key](value) if key in _CHECKS else value
    return out


def _address(label: str) -> Any:
    def check(value: str) -> str:
        text = str(value).strip()
        if not text:
            return ""
        try:
            return check_sender(text)
        except ValueError as exc:
            raise InvalidInput(f"{label}: {exc}") from None

    return check


def _templates_dir(value: str | Path) -> str:
    text = str(value).strip()
    # Checked when it is set, so a typo shows now rather than at the next send.
    if text and not Path(text).expanduser().is_dir():
        raise InvalidInput(f"templates folder {text!r} does not exist")
    return str(Path(text).expanduser()) if text else ""


def _weekly_day(value: str) -> str:
    text = str(value).strip().lower()
    if text and text not in WEEKDAYS:
        raise InvalidInput(f"weekly day must be one of {', '.join(WEEKDAYS)}, not {value!r}")
    return text


def _list_id(value: str) -> str:
    text = str(value).strip().strip("<>").strip()
    if text and not LIST_ID.fullmatch(text):
        raise InvalidInput(f"list id must look like news.example.com, not {value!r}")
    return text


def _position(value: int | str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise InvalidInput(f"position must be a whole number, not {value!r}") from None


_CHECKS: dict[str, Any] = {
    "sender": _address("From"),
    "reply_to": _address("Reply-To"),
    "templates_dir": _templates_dir,
    "weekly_day": _weekly_day,
    "list_id": _list_id,
    "send_hour": lambda v: parse_hour(v, 0),
    "default_cadence": parse_cadence,
    "topics": parse_topics,
    "featured_categories": parse_topics,
    "position": _position,
}
