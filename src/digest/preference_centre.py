"""The preference centre: what a person sees (each newsletter they are on, and the public live
ones they could join) and how a saved form changes them, all or nothing.

The person's fields (zone, send hour, name) are shared by every newsletter and shown once; each
newsletter has its own cadence (only those it offers), topics and, where the newsletter offers
them, breaking-news alerts. ``plan`` reads a form into a ``Plan`` without touching the store,
so a bad value anywhere refuses the whole form; ``apply`` then writes it. Joining from here
activates at once: the link came to the person's own inbox.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlmodel import Session

from digest import newsletters, subscriptions
from digest.addresses import clean_name
from digest.config import Settings
from digest.errors import InvalidInput, NewsletterNotFound
from digest.models import Subscriber, Subscription
from digest.newsletter_config import NewsletterConfig, configure
from digest.posts.topics import known_topics
from digest.states import SubscriberStatus
from digest.subscriber_fields import (
    Consent,
    parse_cadence,
    parse_flag,
    parse_hour,
    parse_timezone,
    parse_topics,
)
from digest.subscribers import Reader, subscriptions_of
from digest.suppressions import lift

#: Statuses in which a person is "on" a newsletter: they get it, or asked for it.
ON = (SubscriberStatus.ACTIVE.value, SubscriberStatus.PENDING.value)
#: Statuses from which a person may join a public newsletter again from here.
REJOINABLE = (None, SubscriberStatus.UNSUBSCRIBED.value, SubscriberStatus.BOUNCED.value)
#: The preference form's "don't count my clicks" box (``subscribers.tracking_opt_out``).
OPT_OUT = "tracking_opt_out"
#: One message for every newsletter that cannot be joined, so none private is told apart.
NO_SUCH = "subscribed: there is no such newsletter to join"
STATUS_LABELS = {
    SubscriberStatus.ACTIVE.value: "Subscribed",
    SubscriberStatus.PENDING.value: "Waiting for you to confirm (see the mail we sent you)",
    SubscriberStatus.UNSUBSCRIBED.value: "Not subscribed (you left)",
    SubscriberStatus.BOUNCED.value: "Paused: our mail to you bounced",
    SubscriberStatus.COMPLAINED.value: "Stopped: you marked our mail as spam",
}


@dataclass(frozen=True)
class Entry:
    """One newsletter on the person's page, with their subscription to it (None: never on)."""

    newsletter: NewsletterConfig
    subscription: Subscription | None
    topic_choices: tuple[str, ...]

    @property
    def id(self) -> int:
        return self.newsletter.id

    @property
    def status(self) -> str | None:
        return self.subscription.status if self.subscription is not None else None

    @property
    def on(self) -> bool:
        """Whether the person gets this newsletter or asked for it."""
        return self.status in ON

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status or "", "Not subscribed")

    @property
    def cadence(self) -> str:
        """The cadence shown: the subscription's, or the newsletter's default to join with."""
        sub = self.subscription
        return sub.cadence if sub is not None and self.on else self.newsletter.default_cadence

    @property
    def topics(self) -> list[str]:
        sub = self.subscription
        return list(sub.topics or []) if sub is not None else []

    @property
    def alerts(self) -> bool:
        """Whether the person gets (or would get) the newsletter's breaking-news alerts."""
        sub = self.subscription
        return bool(sub.alerts) if sub is not None and self.on else False


def entries(session: Session, settings: Settings, person: Subscriber) -> list[Entry]:
    """The newsletters on the person's page, in display order: the live ones they are on, and
    the public live ones they could join. Private ones they are not on stay unnamed."""
    subs = {s.newsletter_id: s for s in subscriptions_of(session, int(person.id or 0))}
    found = []
    everything: list[str] | None = None
    for newsletter in newsletters.listed(session):
        sub = subs.get(int(newsletter.id or 0))
        status = sub.status if sub is not None else None
        if status not in ON and not (newsletter.public and status in REJOINABLE):
            continue
        config = configure(newsletter, settings)
        if config.topics:
            choices = list(config.topics)
        else:
            # A newsletter of every post offers the categories recent posts carry.
            if everything is None:
                everything = known_topics(session, featuring=())
            featured = {c.casefold() for c in config.featured_categories}
            choices = [t for t in everything if t.casefold() not in featured]
        chosen = list(sub.topics or []) if sub is not None else []
        choices += [t for t in chosen if t not in choices]
        found.append(Entry(config, sub, tuple(choices)))
    return found


@dataclass(frozen=True)
class Plan:
    """A preference form, checked: what to write. Every value was valid."""

    timezone: str
    send_hour: int
    name: str | None
    cadences: dict[int, str] = field(default_factory=dict)
    topics: dict[int, list[str]] = field(default_factory=dict)
    alerts: dict[int, bool] = field(default_factory=dict)
    join: tuple[int, ...] = ()
    leave: tuple[int, ...] = ()
    # "Don't count my clicks"; None: the form did not say (a partial post changes nothing).
    tracking_opt_out: bool | None = None


def plan(
    shown: Sequence[Entry], person: Subscriber, fields: Mapping[str, Sequence[str]]
) -> Plan | dict[str, str]:
    """Read a posted form against the entries on the page: the plan, or each field's reason.

    A newsletter's cadence and topics are ``cadence-ID`` and ``topics-ID``; the ``subscribed``
    boxes carry the ids to be on, among the ``listed`` ids the page showed. A form without
    ``listed`` joins and leaves nothing, so a partial post never unsubscribes anyone.
    """

    def one(key: str) -> str | None:
        got = fields.get(key)
        return str(got[0]) if got else None

    errors: dict[str, str] = {}
    zone, hour = person.timezone, person.send_hour
    try:
        typed_zone = (one("timezone_other") or "").strip() or one("timezone")
        zone = parse_timezone(typed_zone, person.timezone)
    except InvalidInput as exc:
        errors["timezone"] = str(exc)
    try:
        hour = parse_hour(one("send_hour"), person.send_hour)
    except InvalidInput as exc:
        errors["send_hour"] = str(exc)
    name = one("name")
    by_id = {e.id: e for e in shown}
    try:
        listed = _ids(fields.get("listed", ()))
        wanted = _ids(fields.get("subscribed", ()))
    except InvalidInput as exc:
        errors["subscribed"] = str(exc)
        listed = wanted = set()
    if (listed | wanted) - set(by_id):
        errors["subscribed"] = NO_SUCH
    cadences: dict[int, str] = {}
    topics: dict[int, list[str]] = {}
    alerts: dict[int, bool] = {}
    for entry in shown:
        key = f"cadence-{entry.id}"
        try:
            cadence = parse_cadence(one(key), entry.cadence)
            if cadence not in entry.newsletter.cadences:
                offered = " or ".join(entry.newsletter.cadences)
                raise InvalidInput(f"{entry.newsletter.name} comes {offered} only, not {cadence!r}")
            cadences[entry.id] = cadence
        except InvalidInput as exc:
            errors[key] = str(exc)
        key = f"topics-{entry.id}"
        # No box ticked sends no field at all: on the full page (``listed``) that is a choice.
        if key in fields or entry.id in listed:
            try:
                topics[entry.id] = parse_topics([str(v) for v in fields.get(key, ())])
            except InvalidInput as exc:
                errors[key] = str(exc)
        key = f"alerts-{entry.id}"
        # Only where the newsletter offers alerts: an opt-in to one that stopped is kept.
        if entry.newsletter.alerts and (key in fields or entry.id in listed):
            try:
                alerts[entry.id] = parse_flag(one(key))
            except InvalidInput as exc:
                errors[key] = str(exc)
    opt_out = None
    # An unticked box sends nothing: the page's ``privacy`` marker says the box was there.
    if "privacy" in fields or OPT_OUT in fields:
        try:
            opt_out = parse_flag(one(OPT_OUT), "don't count my clicks")
        except InvalidInput as exc:
            errors[OPT_OUT] = str(exc)
    join = tuple(i for i in by_id if i in listed and i in wanted and not by_id[i].on)
    leave = tuple(i for i in by_id if i in listed and i not in wanted and by_id[i].on)
    if errors:
        return errors
    return Plan(
        timezone=zone,
        send_hour=hour,
        name=clean_name(name) if name is not None else None,
        cadences=cadences,
        topics=topics,
        alerts=alerts,
        join=join,
        leave=leave,
        tracking_opt_out=opt_out,
    )


def apply(
    session: Session,
    person: Subscriber,
    shown: Sequence[Entry],
    checked: Plan,
    *,
    consent: Consent,
    default_timezone: str = "UTC",
    default_send_hour: int = 7,
) -> None:
    """Write a checked plan: joins (active at once, with their consent record), leaves, then
    each remaining subscription's cadence and topics, and the person's shared fields."""
    if checked.join:
        # The person asked from a link mailed to them: an old bounce no longer holds them back.
        lift(session, person.email)
    for nid in checked.join:
        subscriptions.add(
            session,
            person.email,
            newsletter_id=nid,
            cadence=checked.cadences.get(nid),
            topics=checked.topics.get(nid, []),
            alerts=checked.alerts.get(nid),
            confirmed=True,
            consent=consent,
            default_timezone=default_timezone,
            default_send_hour=default_send_hour,
        )
    for nid in checked.leave:
        subscriptions.unsubscribe(session, person, nid)
    for entry in shown:
        sub = entry.subscription
        if sub is None or not entry.on or entry.id in checked.leave:
            continue
        subscriptions.update_preferences(
            session,
            Reader(person, sub),
            cadence=checked.cadences.get(entry.id),
            topics=checked.topics.get(entry.id),
            alerts=checked.alerts.get(entry.id),
        )
    subs = subscriptions_of(session, int(person.id or 0))
    if subs:
        subscriptions.update_preferences(
            session,
            Reader(person, subs[0]),
            timezone=checked.timezone,
            send_hour=checked.send_hour,
            name=checked.name,
            # Honoured from the next message the worker builds, whatever DIGEST_TRACKING says.
            tracking_opt_out=checked.tracking_opt_out,
        )


def _ids(values: Sequence[str]) -> set[int]:
    """Newsletter ids from form values ("3", or "3,4" in one)."""
    parts = [p.strip() for v in values for p in str(v).split(",") if p.strip()]
    if len(parts) > 100 or not all(p.isdigit() and len(p) < 10 for p in parts):
        raise InvalidInput(NO_SUCH)
    return {int(p) for p in parts}


@dataclass(frozen=True)
class Leaving:
    """What an unsubscribe link leaves: a newsletter's name (None: every newsletter), and
    whether the person still gets any of it."""

    name: str | None
    active: bool


def leaving(session: Session, person: Subscriber, newsletter_id: int | None) -> Leaving:
    """What an unsubscribe link scoped to ``newsletter_id`` (None: all) leaves."""
    subs = subscriptions_of(session, int(person.id or 0))
    name = None
    if newsletter_id is not None:
        try:
            name = newsletters.by_id(session, newsletter_id).name
        except NewsletterNotFound:
            name = "this newsletter"
    left = [s for s in subs if newsletter_id is None or s.newsletter_id == newsletter_id]
    return Leaving(name, any(s.status == SubscriberStatus.ACTIVE.value for s in left))


def remaining(session: Session, person: Subscriber) -> list[str]:
    """The names of the live newsletters the person is still on, in display order."""
    on = {s.newsletter_id for s in subscriptions_of(session, int(person.id or 0)) if s.status in ON}
    return [n.name for n in newsletters.listed(session) if n.id in on]
