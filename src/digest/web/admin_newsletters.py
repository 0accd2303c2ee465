"""The admin API's newsletters, and a person's subscriptions to them.

Mounted like ``web/admin.py`` (same bearer token, same JSON errors): a missing newsletter is a
404, a bad field a 422, archiving one whose edition is still being sent a 409.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from digest import audit, newsletters, subscribers
from digest.audit import changes
from digest.hygiene import hygiene_text
from digest.models import Newsletter
from digest.states import Cadence, SubscriberStatus
from digest.web.admin import admin_router
from digest.web.audited import ApiActorDep
from digest.web.deps import SessionDep

router = admin_router("newsletters")


# -- models ----------------------------------------------------------------------------------


class NewsletterFields(BaseModel):
    """A newsletter's fields an operator sets; left out (or null): unchanged, or for a new one
    the default. An empty string makes From, Reply-To, List-Id, the templates folder or the
    weekly day follow the settings again."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=2000)
    cadences: list[Cadence] | None = Field(None, min_length=1)
    default_cadence: Cadence | None = None
    send_hour: int | None = Field(None, ge=0, le=23)
    weekly_day: str | None = Field(None, max_length=16)
    topics: list[str] | None = Field(None, description="post categories it draws from; []: all")
    featured_categories: list[str] | None = None
    templates_dir: str | None = Field(None, max_length=1000)
    sender: str | None = Field(None, alias="from", max_length=500, description="Name <address>")
    reply_to: str | None = Field(None, max_length=320)
    list_id: str | None = Field(None, max_length=200)
    public: bool | None = None
    position: int | None = Field(None, ge=-1_000_000, le=1_000_000)
    # The breaking-news lane; checked in ``newsletter_fields`` (422 with the reason).
    alerts: bool | None = Field(None, description="offers breaking-news alerts")
    alert_budget: int | None = Field(None, description="most alerts a reader a day, 0-24")
    quiet_hours: str | None = Field(
        None, max_length=16, description='"22:00-07:00" or "off"; "": DIGEST_QUIET_HOURS'
    )
    alert_expiry_hours: float | None = Field(None, description="more than 0, at most 48")
    alert_categories: list[str] | None = Field(
        None, description="feed categories that make a post breaking"
    )
    # List hygiene; checked in ``newsletter_fields`` like the command line's --hygiene.
    hygiene: str | None = Field(
        None, max_length=32, description='"N:M[:D]" (N digests over M weeks, D days) or "off"'
    )
    # Engagement
    utm: bool | None = Field(None, description="UTM parameters on its links to posts")

    def given(self) -> dict[str, Any]:
        """The fields set, as the store takes them."""
        fields = self.model_dump(exclude_none=True, exclude={"name"})
        if self.cadences is not None:
            fields["cadences"] = [c.value for c in self.cadences]
        if self.default_cadence is not None:
            fields["default_cadence"] = self.default_cadence.value
        return fields


class NewsletterIn(NewsletterFields):
    """A new newsletter: its slug and name, the rest optional."""

    slug: str = Field(max_length=64, description="lower-case letters, digits and hyphens")
    name: str = Field(max_length=200)  # type: ignore[assignment]


class NewsletterPatch(NewsletterFields):
    """Changes to a newsletter; a new ``slug`` keeps the old one working."""

    slug: str | None = Field(None, max_length=64)


class NewsletterOut(BaseModel):
    """A newsletter as stored (null: follows the settings), with its subscribers by status."""

    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    id: int
    slug: str
    name: str
    description: str
    public: bool
    archived: bool
    cadences: list[str]
    default_cadence: str
    send_hour: int | None
    weekly_day: str | None
    topics: list[str]
    featured_categories: list[str] | None
    templates_dir: str | None
    sender: str | None = Field(serialization_alias="from")
    reply_to: str | None
    list_id: str | None
    position: int
    alerts: bool
    alert_budget: int | None
    quiet_hours: str | None
    alert_expiry_hours: float | None
    alert_categories: list[str] | None
    hygiene: str = Field(description='list hygiene: "N:M:D" or "off"')
    utm: bool = True
    former_slugs: list[str]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    subscribers: dict[str, int] = Field(description="subscriptions by status")


class SubscriptionOut(BaseModel):
    """One of a person's subscriptions, with its consent record."""

    newsletter: str = Field(description="the newsletter's slug")
    status: SubscriberStatus
    cadence: Cadence
    topics: list[str]
    alerts: bool = Field(description="opted in to the newsletter's breaking-news alerts")
    created_at: datetime
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None
    consent_at: datetime | None
    consent_ip: str | None
    consent_user_agent: str | None
    consent_source: str | None
    consent_wording: str | None


class Subscriptions(BaseModel):
    """A person and every subscription they have."""

    email: str
    name: str
    timezone: str
    send_hour: int
    subscriptions: list[SubscriptionOut]


def _out(session: Session, newsletter: Newsletter) -> NewsletterOut:
    counts = subscribers.count_by_status(session, int(newsletter.id or 0))
    return NewsletterOut.model_validate(
        newsletter.model_dump()
        | {"archived": newsletter.archived_at is not None}
        | {"subscribers": counts}
        | {"hygiene": hygiene_text(newsletter)}
    )


# -- routes ----------------------------------------------------------------------------------

_OUT: dict[str, Any] = {"response_model": NewsletterOut}


@router.get("/newsletters", response_model=list[NewsletterOut], summary="List newsletters")
def list_newsletters(session: SessionDep, archived: bool = False) -> list[NewsletterOut]:
    """Newsletters in display order; archived ones too with ``archived=true``."""
    return [_out(session, n) for n in newsletters.listed(session, archived=archived)]


@router.post("/newsletters", status_code=201, summary="Add a newsletter", **_OUT)
def add_newsletter(body: NewsletterIn, session: SessionDep, actor: ApiActorDep) -> NewsletterOut:
    """A new newsletter; 422 when its slug is taken (now or before a rename) or a field is bad."""
    fields = body.given()
    slug = fields.pop("slug")
    made = newsletters.add(session, slug, name=body.name, **fields)
    after = changes(None, made.model_dump())[1]
    audit.record(session, actor, "newsletter.add", made.slug, after=after)
    return _out(session, made)


@router.get("/newsletters/{slug}", summary="One newsletter", **_OUT)
def get_newsletter(slug: str, session: SessionDep) -> NewsletterOut:
    """The newsletter this slug names, now or before a rename."""
    return _out(session, newsletters.get(session, slug))


@router.patch("/newsletters/{slug}", summary="Change a newsletter", **_OUT)
def edit_newsletter(
    slug: str, body: NewsletterPatch, session: SessionDep, actor: ApiActorDep
) -> NewsletterOut:
    """Change the fields given; a new slug keeps the old one finding it."""
    found = newsletters.get(session, slug)
    target, was = found.slug, found.model_dump()
    fields = body.given()
    new_slug = fields.pop("slug", None)
    newsletters.edit(session, found, slug=new_slug, name=body.name, **fields)
    before, after = changes(was, found.model_dump())
    if after:
        audit.record(session, actor, "newsletter.edit", target, before=before, after=after)
    return _out(session, found)


@router.post("/newsletters/{slug}/archive", summary="Archive a newsletter", **_OUT)
def archive_newsletter(slug: str, session: SessionDep, actor: ApiActorDep) -> NewsletterOut:
    """No more editions or sign-ups; 409 while an edition of it is still being sent."""
    found = newsletters.archive(session, newsletters.get(session, slug))
    audit.record(session, actor, "newsletter.archive", found.slug)
    return _out(session, found)


@router.get(
    "/subscribers/{email}/subscriptions",
    response_model=Subscriptions,
    summary="A person's subscriptions",
)
def subscriptions_of(email: str, session: SessionDep) -> Subscriptions:
    """Every subscription of the person with this address, with its newsletter and consent."""
    person = subscribers.get(session, email)
    slugs = {int(n.id or 0): n.slug for n in newsletters.listed(session, archived=True)}
    rows = [
        SubscriptionOut.model_validate(
            sub.model_dump() | {"newsletter": slugs.get(sub.newsletter_id, "")}
        )
        for sub in subscribers.subscriptions_of(session, int(person.id or 0))
    ]
    return Subscriptions(
        email=person.email,
        name=person.name,
        timezone=person.timezone,
        send_hour=person.send_hour,
        subscriptions=rows,
    )
