"""Breaking-news alerts: raising a post as one in a newsletter, and putting its mail in the
outbox for every reader who opted in, or holding it back for them.

An alert is (newsletter, post), at most once: the ``alerts`` table's unique key says so, however
often or from however many processes it is raised. Its mail is decided set-wise, one timezone
at a time (``alert_timing``): everyone in a zone shares quiet hours and a local day. In each
zone a reader gets a ``queued`` row, due at once or when their quiet hours end, unless the
alert would break their interruption budget for that local day or their quiet hours outlast
it: then a ``held`` row, never sent, whose story goes into their next digest. Every row keeps
the once-key ``"N/alert:ID"``, so the same alert never reaches a reader twice.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlmodel import Session

from digest import newsletters
from digest.alert_history import ALERTED_STATES
from digest.alert_timing import ZoneTiming, alert_key_prefix, once_key, zone_timing
from digest.clock import utcnow
from digest.compose.alert_mail import AlertRenderer
from digest.compose.mail_links import post_links, with_campaign, with_tracking
from digest.compose.utm import Campaign, alert_label
from digest.config import Settings
from digest.db import Database, dialect_insert
from digest.delivery import outbox
from digest.errors import AlertRefused, AlreadyAlerted, PostNotFound
from digest.models import Body, Delivery, Newsletter, Post, Subscriber, Subscription
from digest.models_campaigns import Alert
from digest.newsletter_config import NewsletterConfig, configure
from digest.posts import store
from digest.states import DeliveryKind, DeliveryStatus, SubscriberStatus
from digest.tracking import MailKind, MailRef

log = logging.getLogger(__name__)

A = Alert.__table__  # type: ignore[attr-defined]
D = Delivery.__table__  # type: ignore[attr-defined]
N = Newsletter.__table__  # type: ignore[attr-defined]
S = Subscriber.__table__  # type: ignore[attr-defined]
U = Subscription.__table__  # type: ignore[attr-defined]
READERS = S.join(U, U.c.subscriber_id == S.c.id)
SOURCES = ("editor", "api", "category")
HELD_BUDGET = "held: interruption budget"
HELD_QUIET = "held: quiet hours"
# An alert that counts against a reader's budget: on its way or gone (held ones never go).
_COUNTED = ALERTED_STATES


@dataclass(frozen=True)
class AlertReport:
    """What raising an alert did: how many readers it was queued for and held back from."""

    alert_id: int
    post_id: int
    newsletter: str  # its slug
    source: str
    raised_at: datetime
    expires_at: datetime
    queued: int
    held_budget: int
    held_quiet: int

    def summary(self) -> str:
        """One line for a person: ``queued N, held by budget B, held by quiet hours Q; ...``."""
        return (
            f"queued {self.queued}, held by budget {self.held_budget}, held by quiet hours "
            f"{self.held_quiet}; expires at {self.expires_at:%Y-%m-%d %H:%M} UTC"
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return asdict(self)


def raise_alert(
    db: Database,
    settings: Settings,
    post: str | int,
    *,
    newsletter: str | None = None,
    source: str = "editor",
    now: datetime | None = None,
) -> AlertReport:
    """Raise ``post`` (an id, guid or link) as breaking news in ``newsletter`` (its slug; None:
    the only one) and queue its mail, in one transaction; AlertRefused says why not."""
    now = now or utcnow()
    with db.transaction() as session:
        return raise_named(session, settings, post, newsletter=newsletter, source=source, now=now)


def raise_named(
    session: Session,
    settings: Settings,
    post: str | int,
    *,
    newsletter: str | None,
    source: str,
    now: datetime,
) -> AlertReport:
    """``raise_alert`` within the caller's transaction (the desk's request)."""
    chosen = configure(newsletters.choose(session, newsletter, live=False), settings)
    # The API names a post by its id alone: a number no post has is not a guid to try.
    found = store.find_post(session, post) if isinstance(post, str) else session.get(Post, post)
    if found is None:
        raise PostNotFound(f"no post with id {post}")
    return raise_in(session, settings, chosen, found, source=source, now=now)


def raise_in(
    session: Session,
    settings: Settings,
    newsletter: NewsletterConfig,
    post: Post,
    *,
    source: str,
    now: datetime,
) -> AlertReport:
    """Raise ``post`` in ``newsletter`` at ``now`` within the caller's transaction."""
    if source not in SOURCES:
        raise ValueError(f"unknown alert source {source!r}")
    nid, slug, pid = newsletter.id, newsletter.slug, int(post.id or 0)
    # FOR UPDATE, not hold_live's shared lock: two alerts of one newsletter raised at once
    # must count each reader's budget one after the other, or both would see room for one more.
    # It also waits for an archiving in progress, as an edition does.
    held = session.execute(sa.select(N.c.archived_at).where(N.c.id == nid).with_for_update())
    row = held.first()
    if row is None or row[0] is not None:
        raise AlertRefused(f"newsletter {slug!r} is archived: it sends no alerts")
    if not newsletter.alerts:
        raise AlertRefused(f"newsletter {slug!r} does not offer breaking-news alerts")
    _refuse_repeat(session, newsletter, pid)
    audience = sa.and_(
        U.c.newsletter_id == nid,
        U.c.status == SubscriberStatus.ACTIVE.value,
        U.c.alerts.is_(True),
    )
    zones = sorted(
        session.execute(
            sa.select(S.c.timezone).select_from(READERS).where(audience).group_by(S.c.timezone)
        ).scalars()
    )
    if not zones:
        raise AlertRefused(f"nobody has opted in to alerts from {slug}")
    expires_at = now + newsletter.alert_expiry
    mail = AlertRenderer(settings, newsletter).render(post)
    alert_id = _insert_alert(session, nid, pid, source, now, expires_at)
    if alert_id is None:  # raised by another process since we looked
        _refuse_repeat(session, newsletter, pid)
        raise AlreadyAlerted(f"post {pid} was already alerted in {slug}")
    if newsletter.utm:
        mail = with_campaign(mail, Campaign(slug, alert_label(alert_id)), post_links([post.link]))
    mail = with_tracking(mail, settings, MailRef(MailKind.ALERT, alert_id))
    body = Body(edition_id=None, digest_key=f"alert:{alert_id}", post_ids=[pid], created_at=now)
    body.subject, body.text, body.html = mail.subject, mail.text, mail.html
    body.tracked_text, body.tracked_html = mail.tracked_text, mail.tracked_html
    session.add(body)
    session.flush()
    counts = {"queued": 0, "held_budget": 0, "held_quiet": 0}
    queue = _Queue(session, settings, newsletter, alert_id, int(body.id or 0), now, expires_at)
    for zone in zones:
        timing = zone_timing(newsletter.quiet_hours, _known(zone), now=now, expires_at=expires_at)
        for counter, added in queue.zone(sa.and_(audience, S.c.timezone == zone), timing):
            counts[counter] += added
    session.execute(sa.update(A).where(A.c.id == alert_id).values(body_id=body.id, **counts))
    report = AlertReport(alert_id, pid, slug, source, now, expires_at, **counts)
    log.info("alert raised", extra={"alert": alert_id, "newsletter": slug, **counts})
    return report


class _Queue:
    """The rows of one alert, written zone by zone with ``INSERT ... SELECT``."""

    def __init__(
        self,
        session: Session,
        settings: Settings,
        newsletter: NewsletterConfig,
        alert_id: int,
        body_id: int,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        self.session = session
        self.newsletter = newsletter
        self.key = once_key(newsletter.id, alert_id)
        self.common: dict[str, Any] = {
            "kind": DeliveryKind.ALERT.value,
            "edition_id": None,
            "body_id": body_id,
            "period_key": self.key,
            "message_id_prefix": f"n{alert_id}",
            "domain": settings.from_domain,
        }
        self.now = now
        self.expires_at = expires_at

    def zone(self, readers: sa.ColumnElement[bool], timing: ZoneTiming) -> list[tuple[str, int]]:
        """Queue or hold the alert for ``readers`` (all in ``timing.zone``): (counter, rows)."""
        held = DeliveryStatus.HELD.value
        if timing.planned is None or timing.send_by is None:
            return [("held_quiet", self._insert(readers, held, HELD_QUIET, self.expires_at))]
        used = self._used_that_day(timing)
        budget = self.newsletter.alert_budget
        queued = self._insert(
            sa.and_(readers, used < budget),
            DeliveryStatus.QUEUED.value,
            None,
            timing.send_by,
            timing.planned,
        )
        over = self._insert(
            sa.and_(readers, used >= budget), held, HELD_BUDGET, timing.send_by, timing.planned
        )
        return [("queued", queued), ("held_budget", over)]

    def _insert(
        self,
        readers: sa.ColumnElement[bool],
        status: str,
        reply: str | None,
        send_by: datetime | None,
        due: datetime | None = None,
    ) -> int:
        return outbox.enqueue_select(
            self.session,
            status=status,
            send_by=send_by,
            subscriber_filter=readers,
            reply=reply,
            next_attempt_at=due or self.now,
            **self.common,
        )

    def _used_that_day(self, timing: ZoneTiming) -> sa.ScalarSelect[int]:
        """Per reader: this newsletter's other alerts counted in the local day ``timing`` is
        planned in (by their send-by time, which never passes that day's end)."""
        earlier = D.alias("earlier")
        return (
            sa.select(sa.func.count())
            .select_from(earlier)
            .where(
                earlier.c.subscriber_id == S.c.id,
                earlier.c.period_key.like(f"{alert_key_prefix(self.newsletter.id)}%"),
                earlier.c.period_key != self.key,
                earlier.c.status.in_(_COUNTED),
                earlier.c.send_by > timing.day_start,
                earlier.c.send_by <= timing.day_end,
            )
            .scalar_subquery()
        )


def _known(zone: str) -> str:
    """``zone`` if this machine knows it, else UTC: one odd stored zone must not stop an alert."""
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return zone


def _refuse_repeat(session: Session, newsletter: NewsletterConfig, post_id: int) -> None:
    """AlreadyAlerted when the post was alerted in the newsletter before."""
    raised = session.execute(
        sa.select(A.c.raised_at).where(A.c.newsletter_id == newsletter.id, A.c.post_id == post_id)
    ).scalar_one_or_none()
    if raised is not None:
        when = raised.strftime("%Y-%m-%d %H:%M UTC")
        raise AlreadyAlerted(f"post {post_id} was already alerted in {newsletter.slug} at {when}")


def _insert_alert(
    session: Session, nid: int, pid: int, source: str, now: datetime, expires_at: datetime
) -> int | None:
    """The new alert's id, or None when (newsletter, post) is taken: ON CONFLICT DO NOTHING,
    so a race between two processes ends in one alert and a clear refusal, not an error."""
    values = {
        "newsletter_id": nid,
        "post_id": pid,
        "source": source,
        "raised_at": now,
        "expires_at": expires_at,
        "queued": 0,
        "held_budget": 0,
        "held_quiet": 0,
    }
    insert = dialect_insert(session)(A).values(values).on_conflict_do_nothing()
    found = session.execute(insert.returning(A.c.id)).scalar_one_or_none()
    return None if found is None else int(found)
