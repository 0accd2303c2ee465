"""Making an edition: the edition row, one render per distinct selection, and the deliveries
queued set-wise in the database, from the groups ``planning.py`` found.

Each distinct selection is rendered once, and one ``INSERT ... SELECT`` per group queues the
mail. The unique key (subscriber, period) on deliveries makes all of it safe to run twice, from
two processes, or after a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, select

from digest import alert_history, links, newsletters
from digest.clock import utcnow
from digest.compose.mail_links import digest_links, with_tracking
from digest.compose.render import DigestRenderer, RenderedBody, Renderers
from digest.compose.select import Limits, Profile
from digest.compose.select import select as select_posts
from digest.config import Settings
from digest.db import Database, dialect_insert
from digest.delivery import outbox
from digest.left_out import left_out
from digest.mail.content import MailContent
from digest.mail.message import Sender
from digest.mail.message_id import digest_prefix
from digest.models import Body, Delivery, Edition, Subscription
from digest.newsletter_config import NewsletterConfig, configure
from digest.planning import Group, Plan, members, period_key, plan, recipients
from digest.states import Cadence, DeliveryStatus
from digest.tracking import MailKind, MailRef

U = Subscription.__table__  # type: ignore[attr-defined]
D = Delivery.__table__  # type: ignore[attr-defined]
E = Edition.__table__  # type: ignore[attr-defined]
B = Body.__table__  # type: ignore[attr-defined]


@dataclass
class EditionReport:
    """What making an edition did (or, on a dry run, would do)."""

    key: str
    cadence: str
    newsletter: str = ""  # its slug
    edition_id: int | None = None
    recipients: int = 0
    skipped: int = 0
    bodies: int = 0
    groups: list[Group] = field(default_factory=list)
    # Of ``recipients``, those sent ahead of their local send hour (only an operator's
    # edition does that: east of UTC, just after midnight, it uses up the new day's digest).
    ahead: int = 0
    # Active readers left out, by reason (``left_out.left_out``), when asked for.
    left_out: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupRecipients:
    """One group of a dry run and the addresses in it."""

    group: Group
    emails: list[str]


@dataclass(frozen=True)
class DryRun:
    """What making an edition would do, and who is in each group; nothing written."""

    report: EditionReport
    groups: list[GroupRecipients]


def edition_key(newsletter_id: int, cadence: str, now: datetime, *, due_only: bool) -> str:
    """Scheduled editions share one key per newsletter and UTC hour (ticks within it add to
    the same edition); an edition made on demand gets its own."""
    if due_only:
        return f"{newsletter_id}/{cadence}:{now:%Y-%m-%dT%H}Z"
    return f"{newsletter_id}/{cadence}:now:{now:%Y-%m-%dT%H:%M:%S}Z"


def newsletter_config(
    db: Database, settings: Settings, newsletter: NewsletterConfig | str | None
) -> NewsletterConfig:
    """The newsletter an edition is for: given, named by slug, or the only one."""
    if isinstance(newsletter, NewsletterConfig):
        return newsletter
    with db.transaction() as session:
        return configure(newsletters.choose(session, newsletter), settings)


def _counted(key: str, planned: Plan, now: datetime) -> EditionReport:
    """The report of a dry run: the plan counted, nothing written."""
    groups = planned.groups
    sent = [g for g in groups if not g.selection.skip]
    return EditionReport(
        key=key,
        cadence=planned.cadence,
        newsletter=planned.newsletter.slug,
        groups=groups,
        recipients=sum(g.count for g in sent),
        skipped=sum(g.count for g in groups if g.selection.skip),
        bodies=len({g.selection.post_ids for g in sent}),
        ahead=sum(g.count for g in sent if now < g.period.due),
    )


def make_edition(
    db: Database,
    settings: Settings,
    *,
    cadence: str,
    now: datetime,
    due_only: bool = True,
    dry_run: bool = False,
    renderers: Renderers | None = None,
    explain: bool = False,
    newsletter: NewsletterConfig | str | None = None,
) -> EditionReport | None:
    """Make (or add to) a newsletter's edition of ``cadence`` at ``now``; None when nobody is
    due. ``newsletter`` is its config, its slug, or None for the only one.

    ``due_only`` keeps to each subscriber's local send hour (the scheduler); without it every
    active subscriber of the cadence who has not had this period's digest is included (an
    operator's ``digest send``). Either way a subscriber gets at most one digest per period.
    ``renderers`` keeps each newsletter's compiled templates across calls (the scheduler).
    ``explain`` counts who is left out and why (``report.left_out``), and then a report with
    no groups, rather than None, says that nobody was due.
    """
    config = newsletter_config(db, settings, newsletter)
    key = edition_key(config.id, cadence, now, due_only=due_only)
    with db.transaction() as session:
        if not newsletters.hold_live(session, config.id):
            return None  # archived since the caller looked: no edition of it any more
        planned = plan(session, settings, config, cadence=cadence, now=now, due_only=due_only)
        reasons = (
            left_out(session, config, cadence=cadence, now=now, due_only=due_only)
            if explain
            else {}
        )
        if not planned.groups:
            if not explain:
                return None
            return EditionReport(key=key, cadence=cadence, newsletter=config.slug, left_out=reasons)
        if dry_run:
            counted = _counted(key, planned, now)
            counted.left_out = reasons
            return counted
        report = EditionReport(
            key=key,
            cadence=cadence,
            newsletter=config.slug,
            groups=planned.groups,
            left_out=reasons,
        )
        edition_id = _edition_id(session, key, config.id, cadence, now)
        report.edition_id = edition_id
        renderer = (renderers or Renderers(settings)).for_newsletter(config)
        _write(session, settings, renderer, edition_id, planned, now, report)
    return report


def dry_run(
    db: Database,
    settings: Settings,
    *,
    cadence: str,
    now: datetime,
    due_only: bool = False,
    newsletter: NewsletterConfig | str | None = None,
) -> DryRun:
    """What ``make_edition`` would do at ``now``, to whom, and who it leaves out and why."""
    config = newsletter_config(db, settings, newsletter)
    key = edition_key(config.id, cadence, now, due_only=due_only)
    with db.transaction() as session:
        planned = plan(session, settings, config, cadence=cadence, now=now, due_only=due_only)
        reasons = left_out(session, config, cadence=cadence, now=now, due_only=due_only)
        groups = [
            GroupRecipients(g, recipients(session, cadence, g, planned.history))
            for g in planned.groups
        ]
    report = _counted(key, planned, now)
    report.left_out = reasons
    return DryRun(report, groups)


def _edition_id(session: Session, key: str, newsletter_id: int, cadence: str, now: datetime) -> int:
    """The id of the edition ``key``: made now, unless another tick or process made it first."""
    find = sa.select(E.c.id).where(E.c.key == key)
    found = session.execute(find).scalar_one_or_none()
    if found is not None:
        return int(found)
    row = Edition(
        key=key, newsletter_id=newsletter_id, cadence=cadence, edition_at=now, created_at=now
    )
    insert = dialect_insert(session)(E).values(**row.model_dump(exclude={"id"}))
    made = session.execute(
        insert.on_conflict_do_nothing(index_elements=[E.c.key]).returning(E.c.id)
    ).scalar_one_or_none()
    if made is not None:
        return int(made)
    # Another process made it between our look and our insert: use theirs.
    return int(session.execute(find).scalar_one())


def _write(
    session: Session,
    settings: Settings,
    renderer: DigestRenderer,
    edition_id: int,
    planned: Plan,
    now: datetime,
    report: EditionReport,
) -> None:
    edition = session.exec(select(Edition).where(Edition.id == edition_id)).one()
    domain = Sender.from_settings(settings).domain
    prefix = digest_prefix(edition_id)
    # A private newsletter's editions are not in the public archive: no link to a 404.
    archive = links.archive_url(settings, edition_id) if planned.newsletter.public else None
    body_ids: dict[str, int] = {}
    for group in planned.groups:
        # The SQL test of who is in the group is rebuilt here, from the group's plain data.
        where = members(planned.cadence, group, planned.history)
        if group.selection.skip:
            report.skipped += outbox.record_skips(
                session,
                edition_id=edition_id,
                period_key=period_key(group.newsletter_id, group.period),
                subscriber_filter=where,
                message_id_prefix=prefix,
                domain=domain,
                reason=group.selection.reason,
            )
            continue
        local_date = now.astimezone(ZoneInfo(group.timezone)).date()
        rendered = renderer.render_body(
            group.selection, cadence=edition.cadence, local_date=local_date, archive_url=archive
        )
        body_id = body_ids.get(rendered.key)
        if body_id is None:
            # Its post links with UTM parameters, then its tracked variant: once per body.
            tagged = digest_links(
                rendered.content,
                planned.newsletter,
                group.selection,
                cadence=edition.cadence,
                local_date=local_date,
            )
            content = with_tracking(tagged, settings, MailRef(MailKind.EDITION, edition_id))
            body_id = _store_body(session, edition_id, rendered, content)
            body_ids[rendered.key] = body_id
        queued = outbox.enqueue_digests(
            session,
            edition_id=edition_id,
            body_id=body_id,
            period_key=period_key(group.newsletter_id, group.period),
            send_by=group.period.end,
            subscriber_filter=where,
            message_id_prefix=prefix,
            domain=domain,
        )
        # Its held-back alerts' stories are in this body now: no later digest repeats them.
        alert_history.fold(
            session,
            edition_id=edition_id,
            body_id=body_id,
            once_keys=planned.history.alerts.held_keys(group.alert_states),
        )
        report.recipients += queued
        if now < group.period.due:
            report.ahead += queued
    # Their next window starts at this edition: set for everyone this edition queued mail for.
    session.execute(
        sa.update(U)
        .where(
            U.c.newsletter_id == planned.newsletter.id,
            U.c.subscriber_id.in_(
                sa.select(D.c.subscriber_id).where(
                    D.c.edition_id == edition_id, D.c.status != DeliveryStatus.SKIPPED.value
                )
            ),
        )
        .values(last_digest_at=edition.edition_at)
    )
    report.bodies = len(body_ids)
    edition.recipients += report.recipients
    edition.skipped += report.skipped
    if not edition.web_html:
        _set_web_version(settings, renderer, edition, planned, now)
    session.add(edition)
    session.flush()


def _store_body(
    session: Session, edition_id: int, rendered: RenderedBody, content: MailContent
) -> int:
    """Store one shared body (``content``: the render with its links finished); its id."""
    values = {
        "edition_id": edition_id,
        "digest_key": rendered.key,
        "subject": content.subject,
        "text": content.text,
        "html": content.html,
        "tracked_text": content.tracked_text,
        "tracked_html": content.tracked_html,
        "post_ids": list(rendered.post_ids),
        "created_at": utcnow(),
    }
    return int(session.execute(sa.insert(B).values(values).returning(B.c.id)).scalar_one())


def _set_web_version(
    settings: Settings, renderer: DigestRenderer, edition: Edition, planned: Plan, now: datetime
) -> None:
    """The archive page: what a reader of every topic, new this period, would have got."""
    profile = Profile(cadence=edition.cadence)
    selection = select_posts(planned.pool, profile, now, Limits.from_settings(settings))
    if selection.skip:
        return
    local_date = now.astimezone(ZoneInfo(settings.timezone)).date()
    body = renderer.render_body(selection, cadence=edition.cadence, local_date=local_date)
    edition.subject = body.content.subject
    edition.post_ids = list(selection.post_ids)
    edition.web_html = renderer.render_web_version(
        selection, cadence=edition.cadence, local_date=local_date
    )


def run_due(
    db: Database, settings: Settings, now: datetime, *, renderers: Renderers | None = None
) -> list[EditionReport]:
    """The scheduler's tick: each live newsletter's editions, of every cadence it offers, for
    whoever is due at ``now``.

    A long-running caller passes its renderers, so each newsletter's templates are compiled
    once, not per tick.
    """
    renderers = renderers or Renderers(settings)
    with db.transaction() as session:
        live = [configure(n, settings) for n in newsletters.listed(session)]
    reports = []
    for config in live:
        for cadence in Cadence:
            report = make_edition(
                db, settings, cadence=cadence.value, now=now, renderers=renderers, newsletter=config
            )
            if report is not None:
                reports.append(report)
    return reports
