"""The store's side of the per-mail and per-day reports: which mails, what their deliveries,
clicks and readers did, counted with queries that cost one mail's rows, not the outbox's.

An edition's deliveries are read through the (edition, subscriber) unique index, an
announcement's or alert's through the body index; clicks through the primary keys of
``link_clicks`` and ``mail_copies`` (the mail first). ``engagement_report`` shapes the result.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from digest.alert_timing import once_key as alert_key
from digest.deliverability.list_health import is_hard_bounce
from digest.delivery.announcement_outbox import once_key as announcement_key
from digest.delivery.bounces import COMPLAINED
from digest.delivery.outcomes import mail_of
from digest.engagement_report import (
    Link,
    MailHead,
    MailReport,
    Tally,
    report,
)
from digest.errors import NotFound
from digest.models import Delivery, Edition, Newsletter, Post, Subscription
from digest.models_campaigns import Alert, Announcement
from digest.models_engagement import LinkClick, MailCopy
from digest.posts.entries import canonical_link
from digest.states import DeliveryStatus, SubscriberStatus
from digest.stats import status_to_group

D = Delivery.__table__  # type: ignore[attr-defined]
E = Edition.__table__  # type: ignore[attr-defined]
AN = Announcement.__table__  # type: ignore[attr-defined]
AL = Alert.__table__  # type: ignore[attr-defined]
N = Newsletter.__table__  # type: ignore[attr-defined]
P = Post.__table__  # type: ignore[attr-defined]
S = Subscription.__table__  # type: ignore[attr-defined]
LC = LinkClick.__table__  # type: ignore[attr-defined]
MC = MailCopy.__table__  # type: ignore[attr-defined]
_SENT = DeliveryStatus.SENT.value
_BOUNCED = DeliveryStatus.BOUNCED.value
_SLACK = timedelta(days=2)


def slugs(session: Session) -> dict[int, str]:
    """Every newsletter's slug by id."""
    return {int(r.id): str(r.slug) for r in session.execute(sa.select(N.c.id, N.c.slug))}


def _edition_heads(
    session: Session, where: Sequence[sa.ColumnElement[bool]], limit: int
) -> list[MailHead]:
    rows = session.execute(
        sa.select(E.c.id, E.c.newsletter_id, E.c.subject, E.c.key, E.c.edition_at, E.c.post_ids)
        .where(*where)
        .order_by(E.c.edition_at.desc(), E.c.id.desc())
        .limit(limit)
    )
    return [
        MailHead(
            "edition",
            r.id,
            r.newsletter_id,
            r.subject or r.key,
            r.edition_at,
            tuple(r.post_ids or ()),
        )
        for r in rows
    ]


def _announcement_heads(
    session: Session, where: Sequence[sa.ColumnElement[bool]], limit: int
) -> list[MailHead]:
    rows = session.execute(
        sa.select(AN.c.id, AN.c.newsletter_id, AN.c.subject, AN.c.queued_at, AN.c.body_id)
        .where(AN.c.queued_at.is_not(None), *where)
        .order_by(AN.c.queued_at.desc(), AN.c.id.desc())
        .limit(limit)
    )
    return [
        MailHead("announcement", r.id, r.newsletter_id, r.subject, r.queued_at, body_id=r.body_id)
        for r in rows
    ]


def _alert_heads(
    session: Session, where: Sequence[sa.ColumnElement[bool]], limit: int
) -> list[MailHead]:
    rows = session.execute(
        sa.select(
            AL.c.id, AL.c.newsletter_id, P.c.title, AL.c.raised_at, AL.c.body_id, AL.c.post_id
        )
        .join(P, P.c.id == AL.c.post_id)
        .where(*where)
        .order_by(AL.c.raised_at.desc(), AL.c.id.desc())
        .limit(limit)
    )
    return [
        MailHead("alert", r.id, r.newsletter_id, r.title, r.raised_at, (r.post_id,), r.body_id)
        for r in rows
    ]


def latest(
    session: Session, *, newsletter_id: int | None = None, limit: int = 20
) -> list[MailHead]:
    """The ``limit`` latest mails (editions, sent announcements, alerts), of one newsletter or
    all, newest first."""
    found: list[MailHead] = []
    for heads, table in ((_edition_heads, E), (_announcement_heads, AN), (_alert_heads, AL)):
        where = [] if newsletter_id is None else [table.c.newsletter_id == newsletter_id]
        found += heads(session, where, limit)
    found.sort(key=lambda h: (h.at, h.kind, h.id), reverse=True)
    return found[:limit]


def one(session: Session, kind: str, mail_id: int) -> MailHead:
    """The edition, announcement or alert with this id; NotFound when there is none."""
    table, heads = {
        "edition": (E, _edition_heads),
        "announcement": (AN, _announcement_heads),
        "alert": (AL, _alert_heads),
    }[kind]
    found = heads(session, [table.c.id == mail_id], 1)
    if not found:
        sent = " that was sent" if kind == "announcement" else ""
        raise NotFound(f"there is no {kind} #{mail_id}{sent}")
    return found[0]


def _rows_of(head: MailHead) -> sa.ColumnElement[bool]:
    """The deliveries of one mail, by the index that finds them."""
    if head.kind == "edition":
        return D.c.edition_id == head.id
    # The body index finds them; a mail whose body is gone has none left to count.
    return sa.and_(D.c.body_id == head.body_id, D.c.period_key == _once_key(head))


def _deliveries(session: Session, head: MailHead) -> tuple[dict[str, int], int, int]:
    """One mail's deliveries by state, its hard bounces and its complaints, in one pass over
    its rows: a bounced row's reply is its group (the few bounces' replies come back, each
    once with its count), every other row groups by state alone."""
    if head.kind != "edition" and head.body_id is None:
        return {}, 0, 0
    reply = sa.case((D.c.status == _BOUNCED, D.c.last_reply), else_=sa.null())
    complained = sa.func.count(sa.case((D.c.last_reply.startswith(COMPLAINED), 1)))
    status = status_to_group(session)
    by_status: Counter[str] = Counter()
    complaints = hard = 0
    for state, bounce, n, c in session.execute(
        sa.select(status, reply, sa.func.count(), complained)
        .where(_rows_of(head))
        .group_by(status, reply)
    ):
        by_status[state] += int(n)
        complaints += int(c)
        if state == _BOUNCED and is_hard_bounce(bounce or ""):
            hard += int(n)
    return dict(by_status), hard, complaints


def _once_key(head: MailHead) -> str:
    maker = announcement_key if head.kind == "announcement" else alert_key
    return maker(head.newsletter_id, head.id)


def unsubscribes(session: Session, heads: list[MailHead], since: datetime) -> Counter[str]:
    """Readers of the mails' newsletter (all of ``heads`` are of one) unsubscribed since
    ``since``, each counted for the last mail of that newsletter that reached them before
    they left (by mail reference), when it is one of ``heads``."""
    newsletter_id = heads[0].newsletter_id
    # Only readers who got one of these mails are looked into further; each costs a probe of
    # an index per mail, where finding a reader's last mail reads all of their mail.
    got = D.alias("got")
    editions = [h.id for h in heads if h.kind == "edition"]
    keys = [_once_key(h) for h in heads if h.kind != "edition"]
    received = sa.exists().where(
        got.c.subscriber_id == S.c.subscriber_id,
        sa.or_(got.c.edition_id.in_(editions or [0]), got.c.period_key.in_(keys or [""])),
    )
    d2 = D.alias("d2")
    last = (
        sa.select(d2.c.id)
        .where(
            d2.c.subscriber_id == S.c.subscriber_id,
            d2.c.period_key.startswith(f"{newsletter_id}/"),
            d2.c.status == _SENT,
            d2.c.sent_at <= S.c.unsubscribed_at,
        )
        .order_by(d2.c.sent_at.desc(), d2.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = session.execute(
        sa.select(D.c.kind, D.c.edition_id, D.c.period_key, sa.func.count())
        .select_from(S.join(D, D.c.id == last))
        .where(
            S.c.newsletter_id == newsletter_id,
            S.c.status == SubscriberStatus.UNSUBSCRIBED.value,
            S.c.unsubscribed_at >= since,
            received,
        )
        .group_by(D.c.kind, D.c.edition_id, D.c.period_key)
    )
    found: Counter[str] = Counter()
    for kind, edition_id, key, n in rows:
        mail = mail_of(kind, edition_id, key)
        if mail is not None:
            found[str(mail)] += int(n)
    return found


def _clicks(
    session: Session, refs: list[str]
) -> tuple[dict[str, list[Link]], dict[str, tuple[int, int, int]]]:
    links: dict[str, list[Link]] = {r: [] for r in refs}
    for mail, url, human, machine in session.execute(
        sa.select(LC.c.mail, LC.c.url, LC.c.human, LC.c.machine).where(LC.c.mail.in_(refs))
    ):
        links[mail].append(Link(url, int(human), int(machine)))
    copies = {
        mail: (int(clicked), int(opened), int(proxied))
        for mail, clicked, opened, proxied in session.execute(
            sa.select(
                MC.c.mail,
                sa.func.count(MC.c.human_click_at),
                sa.func.count(MC.c.opened_at),
                sa.func.count(MC.c.proxy_open_at),
            )
            .where(MC.c.mail.in_(refs))
            .group_by(MC.c.mail)
        )
    }
    return links, copies


def _posts(session: Session, heads: list[MailHead]) -> dict[str, tuple[int, str]]:
    ids = sorted({i for h in heads for i in h.post_ids})
    if not ids:
        return {}
    rows = session.execute(sa.select(P.c.id, P.c.title, P.c.link).where(P.c.id.in_(ids)))
    return {canonical_link(r.link): (r.id, r.title) for r in rows}


def reports(session: Session, heads: list[MailHead]) -> list[MailReport]:
    """The figures of each mail, in the order given."""
    if not heads:
        return []
    names = slugs(session)
    refs = [h.ref for h in heads]
    links, copies = _clicks(session, refs)
    posts = _posts(session, heads)
    left: Counter[str] = Counter()
    for newsletter_id in sorted({h.newsletter_id for h in heads}):
        theirs = [h for h in heads if h.newsletter_id == newsletter_id]
        # Only a bound on what is read: a mail's copies may go out before its slot's time
        # (sent ahead) or long after (retries), and each unsubscribe is matched to a copy.
        left += unsubscribes(session, theirs, min(h.at for h in theirs) - _SLACK)
    found = []
    for h in heads:
        by_status, hard, complaints = _deliveries(session, h)
        clicked, opened, proxied = copies.get(h.ref, (0, 0, 0))
        tally = Tally(
            by_status, hard, complaints, left[h.ref], links[h.ref], clicked, opened, proxied
        )
        found.append(report(h, names.get(h.newsletter_id, ""), tally, posts))
    return found
