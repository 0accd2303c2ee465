"""Where newsletters are stored: the first one made from the settings, adding, editing, archiving,
and finding one by its slug (or a slug it had before).

A newsletter's unset fields follow the settings; ``newsletter_config.py`` (pure) says what each
one comes to. Newsletters are never deleted: an archived one keeps its editions and archive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from digest.clock import utcnow
from digest.errors import InvalidInput, NewsletterBusy, NewsletterNotFound, NewsletterRequired
from digest.models import Delivery, Newsletter
from digest.newsletter_config import FIRST as NEWSLETTER_ONE
from digest.newsletter_fields import check_fields
from digest.states import Cadence, DeliveryStatus

#: The newsletter the migration made from the settings, and the one a store starts with.
FIRST = NEWSLETTER_ONE
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
EDITABLE = (
    "name",
    "description",
    "cadences",
    "default_cadence",
    "send_hour",
    "weekly_day",
    "topics",
    "featured_categories",
    "templates_dir",
    "sender",
    "reply_to",
    "list_id",
    "public",
    "position",
    "alerts",
    "alert_budget",
    "quiet_hours",
    "alert_expiry_hours",
    "alert_categories",
    # List hygiene: "N:M[:D]" or "off", stored in hygiene_digests / _weeks / _grace_days.
    "hygiene",
    # Engagement: UTM parameters on its post links.
    "utm",
)


def check_slug(slug: str) -> str:
    """A slug as stored: lower-case letters, digits and inner hyphens, at most 64."""
    text = (slug or "").strip().lower()
    if not _SLUG.fullmatch(text):
        raise InvalidInput(
            f"newsletter slug must be lower-case letters, digits and hyphens, not {slug!r}"
        )
    return text


def parse_cadences(value: str | Iterable[str]) -> list[str]:
    """``daily,weekly`` as a list in that order; at least one."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    chosen = {str(p).strip().lower() for p in parts if str(p).strip()}
    known = [c.value for c in Cadence]
    unknown = chosen - set(known)
    if unknown or not chosen:
        raise InvalidInput(f"cadences must be daily, weekly or both, not {value!r}")
    return [c for c in known if c in chosen]


def listed(session: Session, *, archived: bool = False) -> Sequence[Newsletter]:
    """Newsletters in display order; archived ones too with ``archived``."""
    query = select(Newsletter).order_by(col(Newsletter.position), col(Newsletter.id))
    if not archived:
        query = query.where(col(Newsletter.archived_at).is_(None))
    return session.exec(query).all()


def offered(session: Session) -> list[Newsletter]:
    """The newsletters the public page offers: live and public, in display order."""
    return [n for n in listed(session) if n.public]


def by_id(session: Session, newsletter_id: int) -> Newsletter:
    """The newsletter with this id, archived or not."""
    found = session.get(Newsletter, newsletter_id)
    if found is None:
        raise NewsletterNotFound(f"no newsletter #{newsletter_id}")
    return found


def find(session: Session, slug: str) -> Newsletter | None:
    """The newsletter this slug names now, or named before a rename; None when none does."""
    text = (slug or "").strip().lower()
    if not text or "\x00" in text:  # no slug holds one, and PostgreSQL refuses to compare it
        return None
    found = session.exec(select(Newsletter).where(Newsletter.slug == text)).first()
    if found is not None:
        return found
    for newsletter in listed(session, archived=True):
        if text in (newsletter.former_slugs or []):
            return newsletter
    return None


def get(session: Session, slug: str, *, live: bool = False) -> Newsletter:
    """The newsletter ``slug`` names; with ``live`` an archived one is refused too."""
    found = find(session, slug)
    if found is None or (live and found.archived_at is not None):
        raise NewsletterNotFound(f"no newsletter {slug.strip()!r}")
    return found


def choose(session: Session, slug: str | None, *, live: bool = True) -> Newsletter:
    """The newsletter a command means: the one named, or the only live one when none is.

    An archived one is refused unless ``live`` is false (reading its readers or past editions).
    """
    if slug:
        return get(session, slug, live=live)
    live = listed(session)
    if len(live) == 1:
        return live[0]
    if not live:
        return by_id(session, FIRST)
    slugs = ", ".join(n.slug for n in live)
    raise NewsletterRequired(f"there are several newsletters ({slugs}): name one with --newsletter")


def add(session: Session, slug: str, *, name: str, **fields: Any) -> Newsletter:
    """A new newsletter; its slug must be free (and not a former slug of another)."""
    text = check_slug(slug)
    if find(session, text) is not None:
        raise InvalidInput(f"a newsletter {text!r} exists already")
    newsletter = Newsletter(slug=text, name=_name(name))
    _set(newsletter, fields)
    position = fields.get("position")
    newsletter.position = _next_position(session) if position is None else int(position)
    session.add(newsletter)
    session.flush()
    return newsletter


def edit(
    session: Session, newsletter: Newsletter, *, slug: str | None = None, **fields: Any
) -> Newsletter:
    """Change a newsletter; a new slug keeps the old one working for links and forms."""
    if slug is not None:
        text = check_slug(slug)
        if text != newsletter.slug:
            other = find(session, text)
            if other is not None and other.id != newsletter.id:
                raise InvalidInput(f"a newsletter {text!r} exists already")
            former = [s for s in (newsletter.former_slugs or []) if s != text]
            newsletter.former_slugs = [*former, newsletter.slug]
            newsletter.slug = text
    if "name" in fields and fields["name"] is not None:
        fields["name"] = _name(fields["name"])
    _set(newsletter, fields)
    newsletter.updated_at = utcnow()
    session.add(newsletter)
    session.flush()
    return newsletter


def hold_live(session: Session, newsletter_id: int) -> bool:
    """Whether the newsletter is live, holding it so (a shared lock on PostgreSQL) until the
    caller's transaction ends: an edition being made and an archiving wait for each other."""
    archived = session.execute(
        sa.select(col(Newsletter.archived_at))
        .where(col(Newsletter.id) == newsletter_id)
        .with_for_update(read=True)
    ).first()
    return archived is not None and archived[0] is None


def archive(session: Session, newsletter: Newsletter) -> Newsletter:
    """Archive a newsletter: no more editions or sign-ups; refused while one is being sent
    (an edition being made, or its mail or welcomes still in the outbox)."""
    # Taken before counting: an edition being made holds the newsletter until it is written.
    session.execute(
        sa.select(col(Newsletter.id)).where(col(Newsletter.id) == newsletter.id).with_for_update()
    )
    # Its mail is what its once-keys name: the digests of its editions and its welcomes.
    busy = session.execute(
        sa.select(sa.func.count())
        .select_from(Delivery)
        .where(
            col(Delivery.period_key).startswith(f"{newsletter.id}/"),
            col(Delivery.status).in_(
                [
                    DeliveryStatus.QUEUED.value,
                    DeliveryStatus.SENDING.value,
                    DeliveryStatus.DEFERRED.value,
                ]
            ),
        )
    ).scalar_one()
    if busy:
        raise NewsletterBusy(
            f"newsletter {newsletter.slug!r} has an edition being sent ({busy} messages "
            "still to go): archive it once the outbox has sent them"
        )
    if newsletter.archived_at is None:
        newsletter.archived_at = newsletter.updated_at = utcnow()
        session.add(newsletter)
        session.flush()
    return newsletter


def _name(name: str) -> str:
    text = " ".join((name or "").split())
    if not text:
        raise InvalidInput("a newsletter needs a name")
    return text[:200]


def _next_position(session: Session) -> int:
    top = session.execute(sa.select(sa.func.max(col(Newsletter.position)))).scalar_one()
    return int(top or 0) + 1


def _set(newsletter: Newsletter, fields: dict[str, Any]) -> None:
    for key in fields:
        if key not in EDITABLE:
            raise InvalidInput(f"a newsletter has no field {key!r}")
    for key, value in check_fields(fields).items():
        if key == "hygiene":
            newsletter.hygiene_digests, newsletter.hygiene_weeks, newsletter.hygiene_grace_days = (
                value
            )
            continue
        setattr(newsletter, key, parse_cadences(value) if key == "cadences" else value)
    if newsletter.default_cadence not in (newsletter.cadences or []):
        newsletter.default_cadence = (newsletter.cadences or [Cadence.DAILY.value])[0]
