"""Where announcements are stored and read: drafts checked and written, looked up, rendered
into their one shared body, and summed up for the faces. ``announcements.py`` sends them."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlmodel import Session, col, select

from digest import announcement_audience as reach
from digest import newsletters
from digest.announcement_rules import (
    DRAFT,
    Audience,
    check_body,
    check_subject,
    check_template,
)
from digest.clock import utcnow
from digest.compose.announcement import AnnouncementRenderer
from digest.compose.mail_links import linked, with_campaign, with_tracking
from digest.compose.utm import Campaign, announcement_label
from digest.config import Settings
from digest.db import in_batches
from digest.delivery import announcement_outbox as mail
from digest.errors import (
    AnnouncementClosed,
    AnnouncementNotFound,
    EmptyAudience,
    NewsletterArchived,
)
from digest.mail.content import MailContent
from digest.models import Body, Newsletter, Post
from digest.models_campaigns import Announcement
from digest.newsletter_config import configure
from digest.tracking import MailKind, MailRef

#: What an editor writes of an announcement (the rest is its schedule and its mail).
_WRITTEN = (
    "newsletter_id",
    "subject",
    "body_markdown",
    "template",
    "topics",
    "cadence",
    "joined_after",
    "joined_before",
    "addresses",
)


@dataclass(frozen=True)
class Draft:
    """What an editor writes: subject, body (Markdown or a template set), audience."""

    subject: str | None
    markdown: str = ""
    template: str | None = None
    audience: Audience | None = None  # its newsletter_id is set from the newsletter chosen


@dataclass(frozen=True)
class Reach:
    """Who an announcement would reach now: how many, the first few, by timezone."""

    count: int
    sample: list[str]
    zones: dict[str, int]


def audience_of(row: Announcement) -> Audience:
    """The stored audience of an announcement."""
    return Audience(
        row.newsletter_id,
        tuple(row.topics or ()),
        row.cadence,
        row.joined_after,
        row.joined_before,
        tuple(row.addresses or ()),
    )


def _live(session: Session, slug: str | None) -> Newsletter:
    """The newsletter named (or the only one); NewsletterArchived when it is archived."""
    found = newsletters.choose(session, slug, live=False)
    if found.archived_at is not None:
        raise NewsletterArchived(f"newsletter {found.slug!r} is archived; it sends nothing more")
    return found


def reach_of(session: Session, audience: Audience) -> Reach:
    """Who the audience reaches now; EmptyAudience when nobody."""
    count = reach.count(session, audience)
    if not count:
        raise EmptyAudience(
            "the audience matches no active reader of the newsletter; nothing to send"
        )
    return Reach(count, reach.sample(session, audience), reach.zones(session, audience))


def plan(
    session: Session, newsletter: str | None, draft: Draft, settings: Settings | None = None
) -> tuple[Announcement, Reach]:
    """The announcement ``draft`` would make, checked, and its reach; nothing is written.

    With ``settings`` it is rendered once too, so a missing or broken template set is
    refused now rather than when it is sent.
    """
    found = _live(session, newsletter)
    audience = replace(draft.audience or Audience(0), newsletter_id=int(found.id or 0))
    template = check_template(draft.template)
    row = Announcement(
        newsletter_id=audience.newsletter_id,
        subject=check_subject(draft.subject),
        body_markdown=check_body(draft.markdown, template),
        template=template,
        topics=list(audience.topics),
        cadence=audience.cadence,
        joined_after=audience.joined_after,
        joined_before=audience.joined_before,
        addresses=list(audience.addresses),
    )
    if settings is not None:
        AnnouncementRenderer(settings, configure(found, settings)).render(
            subject=row.subject, markdown=row.body_markdown, template=row.template
        )
    return row, reach_of(session, audience)


def create(
    session: Session, newsletter: str | None, draft: Draft, settings: Settings | None = None
) -> Announcement:
    """A new draft announcement; refused when it is incomplete or would reach nobody (or,
    with ``settings``, does not render)."""
    row, _ = plan(session, newsletter, draft, settings)
    session.add(row)
    session.flush()
    return row


def revise(
    session: Session,
    announcement_id: int,
    newsletter: str | None,
    draft: Draft,
    settings: Settings | None = None,
) -> Announcement:
    """The draft rewritten: checked as a new one is; AnnouncementClosed once it is scheduled,
    queued or cancelled (its mail may be on its way)."""
    row = get(session, announcement_id, lock=True)
    if row.status != DRAFT:
        raise AnnouncementClosed(
            f"announcement #{announcement_id} is {row.status}; only a draft can be edited"
        )
    made, _ = plan(session, newsletter, draft, settings)
    for name in _WRITTEN:
        setattr(row, name, getattr(made, name))
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return row


def get(session: Session, announcement_id: int, *, lock: bool = False) -> Announcement:
    """The announcement with this id (its row locked until the transaction ends with ``lock``)."""
    query = select(Announcement).where(Announcement.id == announcement_id)
    found = session.exec(query.with_for_update() if lock else query).first()
    if found is None:
        raise AnnouncementNotFound(f"no announcement #{announcement_id}")
    return found


def listed(session: Session) -> list[Announcement]:
    """Every announcement, newest first."""
    return list(session.exec(select(Announcement).order_by(col(Announcement.id).desc())).all())


def current_reach(session: Session, row: Announcement) -> Reach:
    """Who the announcement would reach if it went now (EmptyAudience when nobody)."""
    return reach_of(session, audience_of(row))


def newsletter_slug(session: Session, row: Announcement) -> str:
    """The slug of the announcement's newsletter."""
    return newsletters.by_id(session, row.newsletter_id).slug


def render(session: Session, settings: Settings, row: Announcement) -> MailContent:
    """The announcement's shared body as it renders now, its links to posts with the
    newsletter's UTM parameters (previews and test copies show them as readers get them)."""
    config = configure(newsletters.by_id(session, row.newsletter_id), settings)
    content = AnnouncementRenderer(settings, config).render(
        subject=row.subject, markdown=row.body_markdown, template=row.template
    )
    if not config.utm:
        return content
    campaign = Campaign(config.slug, announcement_label(int(row.id or 0)))
    return with_campaign(content, campaign, _posts_linked(session, content))


def _posts_linked(session: Session, content: MailContent) -> frozenset[str]:
    """Which of the body's links are links to posts (an editor's other links get no UTM)."""
    found: set[str] = set()
    for chunk in in_batches(linked(content)):
        found.update(session.exec(select(Post.link).where(col(Post.link).in_(chunk))).all())
    return frozenset(found)


def body_id(session: Session, settings: Settings, row: Announcement) -> int:
    """The announcement's one stored body, rendered on its first queuing and kept: readers in
    later zones get the very text the first ones got."""
    if row.body_id is not None:
        return row.body_id
    content = with_tracking(
        render(session, settings, row), settings, MailRef(MailKind.ANNOUNCEMENT, int(row.id or 0))
    )
    body = Body(
        edition_id=None,
        digest_key=f"a:{row.id}",
        subject=content.subject,
        text=content.text,
        html=content.html,
        tracked_text=content.tracked_text,
        tracked_html=content.tracked_html,
    )
    session.add(body)
    session.flush()
    row.body_id = int(body.id or 0)
    return row.body_id


def deliveries(session: Session, row: Announcement) -> dict[str, int]:
    """The announcement's deliveries by status."""
    key = mail.once_key(row.newsletter_id, int(row.id or 0))
    return mail.counts(session, key, row.body_id)


def summary(session: Session, row: Announcement) -> dict[str, object]:
    """The announcement as ``show --json`` and the admin API give it."""
    return {
        "id": row.id,
        "newsletter": newsletter_slug(session, row),
        "subject": row.subject,
        "status": row.status,
        "send_at": row.send_at,
        "local_hour": row.local_hour,
        "local_date": row.local_date,
        "recipients": row.recipients,
        "deliveries": deliveries(session, row),
        "template": row.template,
        "topics": list(row.topics or ()),
        "cadence": row.cadence,
        "joined_after": row.joined_after,
        "joined_before": row.joined_before,
        "addresses": len(row.addresses or ()),
        "created_at": row.created_at,
        "queued_at": row.queued_at,
        "cancelled_at": row.cancelled_at,
        "body_markdown": row.body_markdown,
    }
