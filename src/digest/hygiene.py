"""List hygiene in the store: one pass over a newsletter's readers (ask "still want this?",
retire the unanswered, close questions answered by a click).

The rule is ``hygiene_rules`` (pure); ``hygiene_review`` gathers each active reader's facts in
one query, in a read transaction; this module writes the verdicts in a transaction per
newsletter, each write conditional on the reader being as read, so a pass is safe to run twice
or at once and an answer committed meanwhile wins. The question is stamped only where none is
(``repermission_sent_at``) and queued under the once-key ``"N/repermission:YYYY-MM-DD"``, so
nobody gets two.

Clicks are known per reader only under ``DIGEST_TRACKING=per-reader``; in another mode a pass
refuses (``HygieneUnavailable``) rather than take every reader for a silent one, and only
weeks wholly under it count (``tracking_state``). Readers who opted out of tracking are never
judged: their clicks are not counted. The reader's answer, the "Yes, keep sending" button, is
``hygiene_answer``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Session

from digest import newsletters, subscriptions, tracking_state
from digest.clock import utcnow
from digest.compose.repermission_mail import RepermissionRenderer
from digest.config import Settings
from digest.db import Database
from digest.delivery import outbox
from digest.errors import HygieneUnavailable, InvalidInput
from digest.hygiene_review import Reviewed, ask_key, review
from digest.hygiene_rules import OFF, Policy, Verdict, judged_from, stored_policy
from digest.links import stay_url
from digest.models import Newsletter, Subscriber, Subscription
from digest.newsletter_config import NewsletterConfig, configure
from digest.states import DeliveryKind, SubscriberStatus
from digest.tracking import TrackingMode

__all__ = ["PassReport", "ask_key", "hygiene_text", "policy_of", "review", "run", "why_not"]

U = Subscription.__table__  # type: ignore[attr-defined]
S = Subscriber.__table__  # type: ignore[attr-defined]
ACTIVE = SubscriberStatus.ACTIVE.value


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


@dataclass
class PassReport:
    """What one pass over a newsletter did (or, dry, would do)."""

    newsletter: str
    policy: str
    dry_run: bool
    asked: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)
    # Questions dropped unjudged (never went out, or asked before per-reader tracking last
    # began): these readers may be asked again.
    dropped: list[str] = field(default_factory=list)
    waiting: int = 0
    notice: str | None = None  # why nobody is asked yet, when that is so

    def as_dict(self) -> dict[str, object]:
        """For ``--json``."""
        return asdict(self)


def _apply(
    session: Session | None,
    settings: Settings,
    config: NewsletterConfig,
    policy: Policy,
    found: list[Reviewed],
    now: datetime,
    report: PassReport,
) -> None:
    """Carry out the verdicts read by ``review`` in the caller's (writing) transaction, or
    with no session (a dry run) only report them. The reading was in a transaction of its
    own, so every write re-checks that the reader is still as read: an answer or a click
    committed meanwhile wins."""
    renderer: RepermissionRenderer | None = None
    for reader in found:
        if reader.verdict is Verdict.WAIT:
            report.waiting += 1
        elif reader.verdict is Verdict.ASK:
            if session is None:
                report.asked.append(reader.email)
                continue
            renderer = renderer or RepermissionRenderer(settings, config, policy)
            if _ask(session, settings, renderer, config.id, reader, policy, now):
                report.asked.append(reader.email)
        elif reader.verdict is Verdict.RETIRE:
            asked = reader.facts.asked_at
            if session is None or (
                asked is not None and subscriptions.retire(session, reader.subscription_id, asked)
            ):
                report.retired.append(reader.email)
        elif reader.verdict in (Verdict.ANSWERED, Verdict.DROP):
            if session is not None:
                _close(session, reader.subscription_id, reader.facts.asked_at, now)
            named = report.answered if reader.verdict is Verdict.ANSWERED else report.dropped
            named.append(reader.email)


def _ask(
    session: Session,
    settings: Settings,
    renderer: RepermissionRenderer,
    newsletter_id: int,
    reader: Reviewed,
    policy: Policy,
    now: datetime,
) -> bool:
    """Stamp the question and queue its mail, unless another pass just did or the reader is
    no longer silent (a click folded, an opt-out since the review); True when asked."""
    start = policy.window_start(now)
    joined = sa.func.coalesce(U.c.active_since, U.c.confirmed_at, U.c.created_at)
    opted_out = sa.select(S.c.id).where(S.c.tracking_opt_out == sa.true())
    stamped = session.execute(
        sa.update(U)
        .where(
            U.c.id == reader.subscription_id,
            U.c.status == ACTIVE,
            U.c.repermission_sent_at.is_(None),
            sa.or_(U.c.last_click_at.is_(None), U.c.last_click_at < start),
            joined <= start,
            U.c.subscriber_id.not_in(opted_out),
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
    """A pass over the newsletter ``slug`` names, or over every live one with hygiene on: for
    each, its readers read in a read transaction and the verdicts written in a transaction of
    their own. HygieneUnavailable unless tracking is per-reader. A dry run writes nothing."""
    reason = why_not(settings)
    if reason is not None:
        raise HygieneUnavailable(reason)
    at = now or utcnow()
    with db.transaction() as session:
        if not dry_run:
            tracking_state.note(session, settings.tracking, at)
        if slug is not None:
            ids = [int(newsletters.get(session, slug, live=True).id or 0)]
        else:
            ids = [int(n.id or 0) for n in newsletters.listed(session) if policy_of(n)]
    reports = []
    for newsletter_id in ids:
        with db.reading() as session:
            newsletter = newsletters.by_id(session, newsletter_id)
            policy = policy_of(newsletter)
            if policy is None:
                raise InvalidInput(
                    f"list hygiene is off for {newsletter.slug}: turn it on with "
                    f"`digest newsletters edit {newsletter.slug} --hygiene N:M[:D]`"
                )
            config = configure(newsletter, settings)
            # A dry run notes nothing: it judges as the pass would right after noting.
            since = tracking_state.per_reader_since(session) or (at if dry_run else None)
            found = review(session, config.id, policy, at, since)
        notice = _notice(policy, since, at)
        report = PassReport(newsletter.slug, policy.text, dry_run, notice=notice)
        if dry_run:
            _apply(None, settings, config, policy, found, at, report)
        else:
            with db.transaction() as session:
                _apply(session, settings, config, policy, found, at, report)
        reports.append(report)
    return reports


def _notice(policy: Policy, since: datetime | None, now: datetime) -> str | None:
    """Why nobody is asked yet, while per-reader tracking has not covered M weeks."""
    start = judged_from(policy, since)
    if start is not None and start <= now:
        return None
    if since is None:
        return "per-reader tracking is not in force: nobody is asked"
    return f"per-reader tracking since {_shown(since)}; readers are judged from {_shown(start)}"


def _shown(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if at else "-"
