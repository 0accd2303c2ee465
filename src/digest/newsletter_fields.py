"""The fields an operator gives a newsletter (from the command line or the admin API), checked
and in the form they are stored: one rule for both faces.

An empty From, Reply-To, List-Id, templates folder, weekly day or quiet hours means "follow the
settings" again: ``newsletter_config.configure`` reads an empty value as unset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from digest.errors import InvalidInput
from digest.hygiene_rules import Policy
from digest.mail.headers import LIST_ID, check_sender
from digest.periods import WEEKDAYS
from digest.quiet_hours import QuietHours
from digest.subscriber_fields import parse_cadence, parse_flag, parse_hour, parse_topics

#: The bounds ``DIGEST_ALERT_BUDGET`` and ``DIGEST_ALERT_EXPIRY_HOURS`` have too.
MAX_ALERT_BUDGET = 24
MAX_ALERT_EXPIRY_HOURS = 48


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


def _alert_budget(value: int | str) -> int:
    try:
        budget = int(str(value).strip())
    except ValueError:
        raise InvalidInput(f"alert budget must be a whole number 0-24, not {value!r}") from None
    if not 0 <= budget <= MAX_ALERT_BUDGET:
        raise InvalidInput(f"alert budget must be 0-{MAX_ALERT_BUDGET} alerts a day, not {budget}")
    return budget


def _quiet_hours(value: str) -> str | None:
    text = str(value).strip()
    if not text:
        return None  # follow DIGEST_QUIET_HOURS again
    try:
        return QuietHours.parse(text).text
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def _alert_expiry_hours(value: float | str) -> float:
    try:
        hours = float(str(value).strip())
    except ValueError:
        raise InvalidInput(f"alert expiry must be a number of hours, not {value!r}") from None
    # ``not`` so that NaN is refused too.
    if not 0 < hours <= MAX_ALERT_EXPIRY_HOURS:
        raise InvalidInput(
            f"alert expiry must be more than 0 and at most {MAX_ALERT_EXPIRY_HOURS} hours, "
            f"not {value!r}"
        )
    return hours


def _hygiene(value: str) -> tuple[int | None, int | None, int | None]:
    """``"N:M[:D]"`` as the three stored numbers; ``"off"`` (or empty) as three Nones."""
    policy = Policy.parse(str(value))
    if policy is None:
        return (None, None, None)
    return (policy.digests, policy.weeks, policy.grace_days)


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
    "alerts": lambda v: parse_flag(v, "alerts"),
    "alert_budget": _alert_budget,
    "quiet_hours": _quiet_hours,
    "alert_expiry_hours": _alert_expiry_hours,
    "alert_categories": parse_topics,
    "hygiene": _hygiene,
    # Engagement
    "utm": lambda v: parse_flag(v, "utm"),
}
