"""What one mail did, as editors read it: sent, deferred, bounced (hard and soft), complaints,
unsubscribes after it, readers' and machines' clicks, unique clicks, click rate, top stories.

Pure shaping of what ``engagement_store`` counted: no store, no clock. The rules a reader of
the figures needs to know live here, once, for ``digest stats``, ``/api/stats`` and the desk:

* ``sent``: copies the receiving server accepted and that did not bounce since;
* ``bounced``: copies refused (at sending, or reported back later), ``hard`` when the reply
  says the address does not exist (RFC 3463 5.1.x), ``soft`` otherwise;
* ``unsubscribes``: readers who left the newsletter after this mail reached them, before
  any later mail of that newsletter did: each unsubscribe counts once, for the last mail of
  that newsletter its reader received (still unsubscribed: a reader who came back is not
  counted);
* ``unique_clicks``: copies with at least one reader's click; ``click_rate`` is
  ``unique_clicks / sent``;
* ``machine_clicks``: requests from link scanners (HEAD requests, known agents, bursts),
  counted apart from readers' ``human_clicks``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from digest.posts.entries import canonical_link
from digest.states import DeliveryStatus
from digest.tracking import MailKind, MailRef

#: The figures ``digest stats --json`` promises for every mail and in its totals.
CONTRACT_KEYS = (
    "sent",
    "bounced",
    "complaints",
    "unsubscribes",
    "human_clicks",
    "machine_clicks",
    "unique_clicks",
)
#: How many links a report lists, most clicked by readers first.
TOP_LINKS = 10
#: The mail kinds reported, by the name they carry in reports.
KINDS: dict[str, MailKind] = {
    "edition": MailKind.EDITION,
    "announcement": MailKind.ANNOUNCEMENT,
    "alert": MailKind.ALERT,
}


@dataclass(frozen=True)
class MailHead:
    """One mail as its table has it: which, whose, what about, when."""

    kind: str  # a key of KINDS
    id: int
    newsletter_id: int
    subject: str
    at: datetime  # an edition's slot, an announcement's queueing, an alert's raising
    post_ids: tuple[int, ...] = ()
    body_id: int | None = None  # an announcement's or alert's shared body: finds its mail

    @property
    def ref(self) -> str:
        """The mail as clicks name it (``tracking.MailRef``): ``e12``, ``a3``, ``l7``."""
        return str(MailRef(KINDS[self.kind], self.id))


@dataclass(frozen=True)
class Link:
    """Clicks on one link of a mail."""

    url: str
    human: int
    machine: int


@dataclass(frozen=True)
class Tally:
    """What the store counted for one mail."""

    by_status: Mapping[str, int]
    hard_bounces: int = 0
    complaints: int = 0
    unsubscribes: int = 0
    links: Sequence[Link] = ()
    unique_clicks: int = 0
    opens: int = 0
    proxy_opens: int = 0


@dataclass(frozen=True)
class TopLink:
    """A link of the mail with its clicks, and the post it leads to when it is one."""

    url: str
    human_clicks: int
    machine_clicks: int
    post_id: int | None = None
    title: str | None = None


@dataclass(frozen=True)
class MailReport:
    """One mail's figures (see the module docstring for what each means)."""

    kind: str
    id: int
    mail: str
    newsletter: str
    subject: str
    sent_at: datetime
    sent: int
    deferred: int
    waiting: int  # queued or being sent
    bounced: int
    bounced_hard: int
    bounced_soft: int
    failed: int
    complaints: int
    unsubscribes: int
    human_clicks: int
    machine_clicks: int
    unique_clicks: int
    click_rate: float | None
    opens: int
    proxy_opens: int
    top_links: list[TopLink] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return asdict(self)


@dataclass(frozen=True)
class DayReport:
    """One newsletter's readers on one day (UTC)."""

    newsletter: str
    day: date
    joined: int  # became active: confirmed, added, imported, came back
    unsubscribes: int
    bounces: int  # readers whose mail stopped for a bounce
    complaints: int

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return asdict(self)


def click_rate(unique_clicks: int, sent: int) -> float | None:
    """Unique clicks per copy sent, rounded to 4 places; None before anything went."""
    return round(unique_clicks / sent, 4) if sent > 0 else None


def top_links(
    links: Iterable[Link], posts: Mapping[str, tuple[int, str]], limit: int = TOP_LINKS
) -> list[TopLink]:
    """The ``limit`` links most clicked by readers (then by URL), each named by its post when
    its URL, UTM parameters and fragment left out, is a post's link (``posts`` maps canonical
    links to (id, title)). Links only machines clicked are left out."""
    ranked = sorted((k for k in links if k.human > 0), key=lambda k: (-k.human, k.url))
    found = []
    for k in ranked[:limit]:
        post = posts.get(canonical_link(k.url))
        found.append(
            TopLink(k.url, k.human, k.machine, *(post if post is not None else (None, None)))
        )
    return found


def report(
    head: MailHead, newsletter: str, tally: Tally, posts: Mapping[str, tuple[int, str]]
) -> MailReport:
    """The figures of one mail from what was counted for it."""
    counts = tally.by_status
    sent = counts.get(DeliveryStatus.SENT.value, 0)
    bounced = counts.get(DeliveryStatus.BOUNCED.value, 0)
    hard = min(tally.hard_bounces, bounced)
    waiting = counts.get(DeliveryStatus.QUEUED.value, 0) + counts.get(
        DeliveryStatus.SENDING.value, 0
    )
    return MailReport(
        kind=head.kind,
        id=head.id,
        mail=head.ref,
        newsletter=newsletter,
        subject=head.subject,
        sent_at=head.at,
        sent=sent,
        deferred=counts.get(DeliveryStatus.DEFERRED.value, 0),
        waiting=waiting,
        bounced=bounced,
        bounced_hard=hard,
        bounced_soft=bounced - hard,
        failed=counts.get(DeliveryStatus.FAILED.value, 0),
        complaints=tally.complaints,
        unsubscribes=tally.unsubscribes,
        human_clicks=sum(k.human for k in tally.links),
        machine_clicks=sum(k.machine for k in tally.links),
        unique_clicks=tally.unique_clicks,
        click_rate=click_rate(tally.unique_clicks, sent),
        opens=tally.opens,
        proxy_opens=tally.proxy_opens,
        top_links=top_links(tally.links, posts),
    )


def totals(reports: Iterable[MailReport]) -> dict[str, Any]:
    """The contract's figures summed over ``reports``, and their click rate."""
    summed = dict.fromkeys(CONTRACT_KEYS, 0)
    for r in reports:
        for key in CONTRACT_KEYS:
            summed[key] += getattr(r, key)
    return summed | {"click_rate": click_rate(summed["unique_clicks"], summed["sent"])}
