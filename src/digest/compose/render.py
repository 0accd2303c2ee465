"""A selection as mail: subject, text and HTML of a body shared by everyone who gets the same
posts, with the personal parts left as placeholders for ``mail.message.assemble``.

One ``DigestRenderer`` serves one newsletter in one edition (or one process): it keeps the
compiled templates, each post's view (``compose.views``), and each body rendered and
CSS-inlined once per key. ``Renderers`` keeps one per newsletter for a long-running process.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import css_inline

from digest.addresses import clean_name
from digest.compose.select import Selection
from digest.compose.templates import (
    load_templates,
    make_environment,
    prints_only,
    render,
    template_version,
)
from digest.compose.views import PostViews, edition_line, one_line
from digest.config import Settings
from digest.errors import TemplateProblem
from digest.mail.content import MailContent
from digest.mail.message import (
    EMAIL,
    NAME,
    PREFERENCES_URL,
    UNSUBSCRIBE_ALL_URL,
    UNSUBSCRIBE_URL,
)

if TYPE_CHECKING:
    from digest.newsletter_config import NewsletterConfig

DIGEST_TEMPLATES = ("digest_subject.txt", "digest.txt", "digest.html")
CONFIRM_TEMPLATES = ("confirm_subject.txt", "confirm.txt", "confirm.html")
WELCOME_TEMPLATES = ("welcome_subject.txt", "welcome.txt", "welcome.html")
_SHAPE_CACHE = 64  # confirmation mails by (expiry, newsletters asked for)
_WELCOME_CACHE = 64
_BODY_CACHE = 256
# Links that no escaping changes (text, HTML text, attributes): no & < > " ' or spaces. Signed
# tokens and checked base URLs are made of these; anything else is rendered in full.
_INERT_URL = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!$()*+,;=%-]+")
_URL_MARK = "https://q7zconfirmlinkmarkz7q.invalid/confirm/q7zMARKz7q"
_URL_PROBES = (
    "https://news.example.com/confirm/AbC-1_2.x~y?z=1",
    "http://127.0.0.1:8000/confirm/Zz9%2F0",
    "https://a-much-longer-host-name.example.org/news/confirm/" + "Qx7_-" * 30,
)


@dataclass(frozen=True)
class RenderedBody:
    """One shared digest body: what it says, the posts in it, and ``key``, what makes it unique."""

    content: MailContent
    post_ids: tuple[int, ...]
    key: str


class DigestRenderer:
    """Renders digest bodies, their web version, welcome mails and confirmation mails for one
    newsletter (without one: the installation's first, named after the site)."""

    def __init__(self, settings: Settings, newsletter: NewsletterConfig | None = None) -> None:
        self.site_name = settings.site_name
        self.newsletter_name = newsletter.name if newsletter else settings.site_name
        # The newsletter's own folder first, then DIGEST_TEMPLATES_DIR, then ours, file by file.
        own = newsletter.templates_dir if newsletter else None
        self.env = make_environment(own, settings.templates_dir)
        self.version = template_version(self.env, DIGEST_TEMPLATES)
        self._templates = load_templates(
            self.env, DIGEST_TEMPLATES + CONFIRM_TEMPLATES + WELCOME_TEMPLATES
        )
        # Dark-mode and phone rules live in @media blocks that cannot be inlined; keep them.
        self._inliner = css_inline.CSSInliner(
            keep_at_rules=True, minify_css=True, load_remote_stylesheets=False
        )
        self._views = PostViews()
        self._bodies: OrderedDict[str, RenderedBody] = OrderedDict()
        self._confirm_shapes: dict[tuple[str, tuple[str, ...]], MailContent | None] = {}
        self._welcomes: OrderedDict[tuple[object, ...], MailContent] = OrderedDict()
        self._lock = threading.Lock()  # web requests render welcomes on several threads

    # -- digest --------------------------------------------------------------------------

    def body_key(
        self, selection: Selection, *, cadence: str, local_date: date, archive_url: str | None
    ) -> str:
        """What makes a body unique: sections and posts, cadence, date, link, names, templates.

        A post's words are part of it too, so an edited headline is never served from a body
        rendered before the edit.
        """
        sha = hashlib.sha256()
        for post in (*selection.held, None, *selection.featured, None, *selection.latest):
            if post is None:
                sha.update(b"\1")  # the section break: the same ids split otherwise differ
                continue
            for field in (str(post.id), post.title, post.link, post.summary, post.author,
                          post.image_url or "", post.image_alt):  # fmt: skip
                sha.update(field.encode("utf-8", "surrogatepass") + b"\0")
        parts = (
            sha.hexdigest(),
            cadence,
            local_date.isoformat(),
            archive_url or "",
            self.site_name,
            self.newsletter_name,
            self.version,
        )
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]

    def _context(
        self,
        selection: Selection,
        *,
        cadence: str,
        local_date: date,
        archive_url: str | None,
        personal: bool,
    ) -> dict[str, object]:
        held = [self._views.view(p) for p in selection.held]
        featured = [self._views.view(p) for p in selection.featured]
        latest = [self._views.view(p) for p in selection.latest]
        lead = (held or featured or latest or [None])[0]
        count = len(held) + len(featured) + len(latest)
        return {
            "site_name": self.site_name,
            "newsletter_name": self.newsletter_name,
            "cadence": cadence,
            "date_line": edition_line(cadence, local_date),
            "held": held,
            "featured": featured,
            "latest": latest,
            "lead": lead,
            "count": count,
            "more": count - 1 if lead else 0,
            "archive_url": archive_url,
            "personal": personal,
            "email": EMAIL,
            "name": NAME,
            "unsubscribe_url": UNSUBSCRIBE_URL,
            "unsubscribe_all_url": UNSUBSCRIBE_ALL_URL,
            "preferences_url": PREFERENCES_URL,
        }

    def _html(self, name: str, context: dict[str, object]) -> str:
        # Inlined once per body: the shared HTML, never a per-person copy.
        try:
            return self._inliner.inline(render(self._templates[name], context))
        except css_inline.InlineError as exc:
            raise TemplateProblem(f"template {name}: its CSS cannot be inlined ({exc})") from None

    def render_body(
        self,
        selection: Selection,
        *,
        cadence: str,
        local_date: date,
        archive_url: str | None = None,
    ) -> RenderedBody:
        """The shared body of everyone with this selection, cadence and local date."""
        key = self.body_key(
            selection, cadence=cadence, local_date=local_date, archive_url=archive_url
        )
        cached = self._bodies.get(key)
        if cached is not None:
            self._bodies.move_to_end(key)
            return cached
        context = self._context(
            selection,
            cadence=cadence,
            local_date=local_date,
            archive_url=archive_url,
            personal=True,
        )
        body = RenderedBody(
            content=MailContent(
                subject=one_line(render(self._templates["digest_subject.txt"], context)),
                text=render(self._templates["digest.txt"], context),
                html=self._html("digest.html", context),
            ),
            post_ids=selection.post_ids,
            key=key,
        )
        self._bodies[key] = body
        if len(self._bodies) > _BODY_CACHE:
            self._bodies.popitem(last=False)
        return body

    def render_web_version(
        self,
        selection: Selection,
        *,
        cadence: str,
        local_date: date,
        archive_url: str | None = None,
    ) -> str:
        """The archive page of an edition: the digest HTML without anyone's personal links."""
        context = self._context(
            selection,
            cadence=cadence,
            local_date=local_date,
            archive_url=archive_url,
            personal=False,
        )
        return self._html("digest.html", context)

    # -- welcome -------------------------------------------------------------------------

    def render_welcome(
        self,
        *,
        description: str,
        cadence: str,
        topics: tuple[str, ...],
        first_digest: str,
    ) -> MailContent:
        """The welcome mail of the newsletter: what the reader signed up for, when the first
        digest comes (``first_digest``, already written out in their zone), and how to change
        it. Their address, name and links are placeholders, filled when it is sent."""
        key = (description, cadence, topics, first_digest)
        with self._lock:
            cached = self._welcomes.get(key)
            if cached is not None:
                # An import with --welcome renders one per reader, most of them alike.
                self._welcomes.move_to_end(key)
                return cached
        context = {
            "site_name": self.site_name,
            "newsletter_name": self.newsletter_name,
            "description": description,
            "cadence": cadence,
            "topics": list(topics),
            "first_digest": first_digest,
            "email": EMAIL,
            "name": NAME,
            "unsubscribe_url": UNSUBSCRIBE_URL,
            "unsubscribe_all_url": UNSUBSCRIBE_ALL_URL,
            "preferences_url": PREFERENCES_URL,
        }
        mail = MailContent(
            subject=one_line(render(self._templates["welcome_subject.txt"], context)),
            text=render(self._templates["welcome.txt"], context),
            html=self._html("welcome.html", context),
        )
        with self._lock:
            self._welcomes[key] = mail
            if len(self._welcomes) > _WELCOME_CACHE:
                self._welcomes.popitem(last=False)
        return mail

    # -- transactional -------------------------------------------------------------------

    def render_confirm(
        self,
        *,
        name: str,
        confirm_url: str,
        expiry: str = "7 days",
        newsletters: tuple[str, ...] = (),
    ) -> MailContent:
        """The confirmation mail: complete, addressed to ``name``, with the confirm link; it
        names the ``newsletters`` asked for where the site has several."""
        name = clean_name(name)
        # Every subscribe request renders one, on the one thread that commits them, and Jinja
        # plus CSS inlining is a third of that request's work there. Unaddressed mails differ
        # only by their link: render once with a mark, then put each link in its place.
        if not name and _INERT_URL.fullmatch(confirm_url):
            key = (expiry, newsletters)
            if key not in self._confirm_shapes:
                shape = self._confirm_shape(expiry, newsletters)
                with self._lock:
                    self._confirm_shapes[key] = shape
                    if len(self._confirm_shapes) > _SHAPE_CACHE:
                        self._confirm_shapes.pop(next(iter(self._confirm_shapes)))
            shape = self._confirm_shapes.get(key)
            if shape is not None:
                return _fill(shape, confirm_url)
        return self._render_confirm(name, confirm_url, expiry, newsletters)

    def _confirm_shape(self, expiry: str, newsletters: tuple[str, ...]) -> MailContent | None:
        """The unaddressed confirmation mail with a mark for its link, trusted only where the
        templates print the link as it is and the mark reproduces real renders exactly."""
        if not prints_only(self.env, CONFIRM_TEMPLATES, "confirm_url"):
            return None
        shape = self._render_confirm("", _URL_MARK, expiry, newsletters)
        for probe in _URL_PROBES:
            if _fill(shape, probe) != self._render_confirm("", probe, expiry, newsletters):
                return None
        return shape

    def _render_confirm(
        self, name: str, confirm_url: str, expiry: str, newsletters: tuple[str, ...] = ()
    ) -> MailContent:
        context = {
            "site_name": self.site_name,
            "name": name,
            "confirm_url": confirm_url,
            "expiry": expiry,
            "newsletters": list(newsletters),
        }
        return MailContent(
            subject=one_line(render(self._templates["confirm_subject.txt"], context)),
            text=render(self._templates["confirm.txt"], context),
            html=self._html("confirm.html", context),
        )


def _fill(shape: MailContent, url: str) -> MailContent:
    """``shape`` with ``url`` where its link mark stands."""
    return MailContent(
        *(part.replace(_URL_MARK, url) for part in (shape.subject, shape.text, shape.html))
    )


class Renderers:
    """One ``DigestRenderer`` per newsletter, kept for the life of a process (the scheduler):
    most ticks send nothing, and compiling templates each time would be most of their cost.

    A renderer is made again when its newsletter's name or template folder changes.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._made: dict[int, tuple[tuple[str, str | None], DigestRenderer]] = {}
        self._lock = threading.Lock()

    def for_newsletter(self, newsletter: NewsletterConfig) -> DigestRenderer:
        """The renderer of ``newsletter`` as it is configured now."""
        wanted = (newsletter.name, newsletter.templates_dir)
        with self._lock:
            made = self._made.get(newsletter.id)
            if made is not None and made[0] == wanted:
                return made[1]
            renderer = DigestRenderer(self.settings, newsletter)
            self._made[newsletter.id] = (wanted, renderer)
            return renderer
