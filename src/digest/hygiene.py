"""List hygiene in the store: one pass over a newsletter's readers (ask "still want this?",
retire the unanswered, close questions answered by a click).

The rule is ``hygiene_rules`` (pure); this module gathers each active reader's facts in one
query, applies the verdict and writes it. A pass is one transaction per newsletter and safe to
run twice or at once: the question is stamped only where none is (``repermission_sent_at``)
and queued under the once-key ``"N/repermission:YYYY-MM-DD"``, so nobody gets two.

Clicks are known per reader only under ``DIGEST_TRACKING=per-reader``; in another mode a pass
refuses (``HygieneUnavailable``) rather than take every reader for a silent one. Readers who
opted out of tracking are never judged: their clicks are not counted. The reader's answer,
the "Yes, keep sending" button, is ``hygiene_answer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from digest import newsletters, subscriptions
from digest.clock import utcnow
from digest.compose.repermission_mail import RepermissionRenderer
from digest.config import Settings
from digest.db import Database, in_batches
from digest.delivery import outbox
from digest.errors import HygieneUnavailable, InvalidInput
from digest.hygiene_rules import OFF, Policy, ReaderFacts, Verdict, stored_policy, verdict
from digest.links import stay_url
from digest.models import Delivery, Edition, Newsletter, Subscriber, Subscription
from digest.newsletter_config import configure
from digest.states import DeliveryKind, DeliveryStatus, SubscriberStatus
from digest.tracking import TrackingMode

U = Subscription.__table__  # type: ignore[attr-defined]
S = Subscriber.__table__  # type: ignore[attr-defined]
D = Delivery.__table__  # type: ignore[attr-defined]
E = Edition.__table__  # type: ignore[attr-defined]
ACTIVE = SubscriberStatus.ACTIVE.value
SENT = DeliveryStatus.SENT.value
REPERMISSION = "repermission"  # what the once-key names: "2/repermission:2026-12-02"
# Editions made up to this long before the window may have digests sent inside it (a weekly
# edition's mail goes out over its send-by time).
_EDITION_MARGIN = timedelta(days=8)


def policy_of(newsletter: Newsletter) -> Policy | None:
    """The newsletter's hygiene policy; None while it is off."""
    return stored_policy(
        newsletter.hygiene_digests, newsletter.hygiene_weeks, newsletter.hygiene_grace_days
    )


def hygiene_text(newsletter: Newsletter) -> str:
    """The newsletter's policy as ``--hygiene`` takes it: ``"8:8:14"`` or ``"off"``."""
    policy = policy_of(newsletter)
    return policy.text if policy is not None else OFF


def why_not(settings: Settings) -> str | None:
    """Why hygiene cannot run with these settings, or None when it can."""
    if settings.tracking is TrackingMode.PER_READER:
        return None
    return (
        f"list hygiene needs DIGEST_TRACKING=per-reader (it is {settings.tracking.value}): "
        "without each reader's clicks every reader would look silent"
    )


def ask_key(newsletter_id: int, at: datetime) -> str:
    """The once-key of a question queued at ``at`` (a UTC day)."""
    return f"{newsletter_id}/{REPERMISSION}:{at.astimezone(UTC).date().isoformat()}"


@dataclass(frozen=True)
class Reviewed:
    """One reader the pass looked at, and its verdict."""

    subscription_id: int
    subscriber_id: int
    email: str
    facts: ReaderFacts
    verdict: Verdict


@dataclass
class PassReport:
    """What one pass over a newsletter did (or, dry, would do)."""

    newsletter: str
    policy: str
    dry_run: bool
    asked: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)
    waiting: int = 0

    def as_dict(self) -> dict[str, object]:
        """For ``--json``."""
        return asdict(self)


def review(session: Session, newsletter_id: int, policy: Policy, now: datetime) -> list[Reviewed]:
    """Every active reader of the newsletter who may be asked, waits for an answer or is due
    to be retired, with the rule's verdict at ``now``; changes nothing."""
    start = policy.window_start(now)
    editions = sa.select(E.c.id).where(
        E.c.newsletter_id == newsletter_id,
        E.c.is_test == sa.false(),
        E.c.edition_at >= start - _EDITION_MARGIN,
    )
    sent = (
        sa.select(D.c.subscriber_id, sa.func.count().label("n"))
        .where(D.c.edition_id.in_(editions), D.c.status == SENT, D.c.sent_at >= start)
        .group_by(D.c.subscriber_id)
        .subquery()
    )
    joined = sa.func.coalesce(U.c.active_since, U.c.confirmed_at, U.c.created_at)
    rows = session.execute(
        sa.select(
            U.c.id,
            U.c.subscriber_id,
            S.c.email,
            joined,
            sa.func.coalesce(sent.c.n, 0),
            U.c.last_click_at,
            U.c.repermission_sent_at,
        )
        .select_from(
            U.join(S, S.c.id == U.c.subscriber_id).outerjoin(
                sent, sent.c.subscriber_id == U.c.subscriber_id
            )
        )
        .where(
            U.c.newsletter_id == newsletter_id,
            U.c.status == ACTIVE,
            S.c.tracking_opt_out == sa.false(),
            # Asked already, or silent through the whole window: nobody else can be touched.
            sa.or_(
                U.c.repermission_sent_at.is_not(None),
                sa.and_(
                    joined <= start,
                    sa.or_(U.c.last_click_at.is_(None), U.c.last_click_at < start),
                ),
            ),
        )
        .order_by(U.c.subscriber_id)
    ).all()
    went_out = _questions_sent(session, newsletter_id, [r[1] for r in rows if r[6] is not None])
    found = []
    for sub_id, person_id, email, since, digests, clicked, asked in rows:
        sent_at = went_out.get((person_id, ask_key(newsletter_id, asked))) if asked else None
        facts = ReaderFacts(since, int(digests), clicked, asked, sent_at)
        found.append(Reviewed(sub_id, person_id, email, facts, verdict(facts, policy, now)))
    return found


def _questions_sent(
    session: Session, newsletter_id: int, person_ids: Sequence[int]
) -> dict[tuple[int, str], datetime]:
    """(reader, once-key) -> when that question was sent, for the readers asked."""
    found: dict[tuple[int, str], datetime] = {}
    for chunk in in_batches(sorted(set(person_ids))):
        for person_id, key, at in session.execute(
            sa.select(D.c.subscriber_id, D.c.period_key, D.c.sent_at).where(
                D.c.subscriber_id.in_(chunk),
                D.c.kind == DeliveryKind.REPERMISSION.value,
                D.c.period_key.startswith(f"{newsletter_id}/{REPERMISSION}:"),
                D.c.status == SENT,
            )
        ):
            found[(person_id, key)] = at
    return found


def run_pass(
    session: Session,
    settings: Settings,
    newsletter: Newsletter,
    now: datetime,
    *,
    dry_run: bool = False,
) -> PassReport:
    """One pass over the newsletter in the caller's transaction; with ``dry_run`` nothing is
    written and the report says who would be asked, retired or taken as having answered."""
    policy = policy_of(newsletter)
    if policy is None:
        raise InvalidInput(
            f"list hygiene is off for {newsletter.slug}: turn it on with "
            f"`digest newsletters edit {newsletter.slug} --hygiene N:M[:D]`"
        )
    report = PassReport(newsletter.slug, policy.text, dry_run)
    config = configure(newsletter, settings)
    renderer: RepermissionRenderer | None = None
    for reader in review(session, config.id, policy, now):
        if reader.verdict is Verdict.WAIT:
            report.waiting += 1
        elif reader.verdict is Verdict.ASK:
            if dry_run:
                report.asked.append(reader.email)
                continue
            renderer = renderer or RepermissionRenderer(settings, config, policy)
            if _ask(session, settings, renderer, config.id, reader, now):
                report.asked.append(reader.email)
        elif reader.verdict is Verdict.RETIRE:
            sub = session.get(Subscription, reader.subscription_id)
            if dry_run or (sub is not None and subscriptions.retire(session, sub)):
                report.retired.append(reader.email)
        elif reader.verdict is Verdict.ANSWERED:
            if not dry_run:
                _close(session, reader.subscription_id, reader.facts.asked_at, now)
            report.answered.append(reader.email)
    return report


def _ask(
    session: Session,
    settings: Settings,
    renderer: RepermissionRenderer,
    newsletter_id: int,
    reader: Reviewed,
    now: datetime,
) -> bool:
    """Stamp the question and queue its mail, unless another pass just did; True when asked."""
    stamped = session.execute(
        sa.update(U)
        .where(
            U.c.id == reader.subscription_id,
            U.c.status == ACTIVE,
            U.c.repermission_sent_at.is_(None),
        )
        .values(repermission_sent_at=now, updated_at=now)
    ).rowcount
    if not stamped:
        return False
    url = stay_url(settings, reader.subscriber_id, reader.email, newsletter_id)
    made = outbox.enqueue_once(
        session,
        kind=DeliveryKind.REPERMISSION,
        once_key=ask_key(newsletter_id, now),
        subscriber_id=reader.subscriber_id,
        to_email=reader.email,
        mail=renderer.render(url),
        domain=settings.from_domain,
    )
    return made is not None


def _close(
    session: Session, subscription_id: int, asked_at: datetime | None, now: datetime
) -> None:
    """A click since the question answered it: clear it (unless it changed meanwhile)."""
    session.execute(
        sa.update(U)
        .where(U.c.id == subscription_id, U.c.repermission_sent_at == asked_at)
        .values(repermission_sent_at=None, updated_at=now)
    )


def run(
    db: Database,
    settings: Settings,
    now: datetime | None = None,
    *,
    slug: str | None = None,
    dry_run: bool = False,
) -> list[PassReport]:
    """A pass over the newsletter ``slug`` names, or over every live one with hygiene on, each
    in a transaction of its own. HygieneUnavailable unless tracking is per-reader."""
    reason = why_not(settings)
    if reason is not None:
        raise HygieneUnavailable(reason)
    at = now or utcnow()
    with db.transaction() as session:
        if slug is not None:
            ids = [int(newsletters.get(session, slug, live=True).id or 0)]
        else:
            ids = [int(n.id or 0) for n in newsletters.listed(session) if policy_of(n)]
    reports = []
    for newsletter_id in ids:
        with db.transaction() as session:
            newsletter = newsletters.by_id(session, newsletter_id)
            reports.append(run_pass(session, settings, newsletter, at, dry_run=dry_run))
    return reports
